//! Settings for one analysis: the scale, the class limits and the detector's knobs.

use serde::{Deserialize, Serialize};

/// Default thin-hair limit (µm): the literature's anisotrichosis cut-off (Rakowska 2009).
pub const DEFAULT_THIN_UM: f64 = 30.0;
/// Default terminal-hair limit (µm): healthy scalp means are 57–63 µm.
pub const DEFAULT_TERMINAL_UM: f64 = 60.0;
/// Default shortest centreline kept (px): shorter pieces are dots, scales and noise.
pub const DEFAULT_MIN_LENGTH_PX: f64 = 40.0;
/// Default widest hair searched for (px): 100 µm at 2.5 µm/px is 40 px; keep a margin.
pub const DEFAULT_MAX_WIDTH_PX: f64 = 48.0;

/// Everything that changes the numbers of an analysis. Stored in every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Scale in micrometres per pixel; `None` measures in pixels only.
    pub um_per_px: Option<f64>,
    /// Hairs narrower than this (µm) are `thin`.
    pub thin_um: f64,
    /// Hairs at least this wide (µm) are `terminal`.
    pub terminal_um: f64,
    /// Centrelines shorter than this (px) are not reported as hairs.
    pub min_length_px: f64,
    /// Widest hair the detector looks for (px).
    pub max_width_px: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            um_per_px: None,
            thin_um: DEFAULT_THIN_UM,
            terminal_um: DEFAULT_TERMINAL_UM,
            min_length_px: DEFAULT_MIN_LENGTH_PX,
            max_width_px: DEFAULT_MAX_WIDTH_PX,
        }
    }
}

/// Width class of a hair, by the settings' limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HairClass {
    Thin,
    Intermediate,
    Terminal,
}

impl HairClass {
    /// Class of a width in micrometres under the given limits.
    pub fn of_width_um(width_um: f64, thin_um: f64, terminal_um: f64) -> HairClass {
        if width_um < thin_um {
            HairClass::Thin
        } else if width_um >= terminal_um {
            HairClass::Terminal
        } else {
            HairClass::Intermediate
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HairClass::Thin => "thin",
            HairClass::Intermediate => "intermediate",
            HairClass::Terminal => "terminal",
        }
    }
}

impl Settings {
    /// Class of a width in pixels, or `None` without a scale.
    pub fn class_of_px(&self, width_px: f64) -> Option<HairClass> {
        self.um_per_px
            .map(|s| HairClass::of_width_um(width_px * s, self.thin_um, self.terminal_um))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_limits_are_half_open() {
        assert_eq!(HairClass::of_width_um(29.99, 30.0, 60.0), HairClass::Thin);
        assert_eq!(
            HairClass::of_width_um(30.0, 30.0, 60.0),
            HairClass::Intermediate
        );
        assert_eq!(
            HairClass::of_width_um(59.9, 30.0, 60.0),
            HairClass::Intermediate
        );
        assert_eq!(
            HairClass::of_width_um(60.0, 30.0, 60.0),
            HairClass::Terminal
        );
    }

    #[test]
    fn no_scale_no_class() {
        let s = Settings::default();
        assert_eq!(s.class_of_px(10.0), None);
        let s = Settings {
            um_per_px: Some(4.0),
            ..Settings::default()
        };
        assert_eq!(s.class_of_px(10.0), Some(HairClass::Intermediate));
    }
}
