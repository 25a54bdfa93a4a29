//! Typed results: what the analysis of one image returns ([`ImageAnalysis`]) and the rows
//! and per-image JSON document written from it ([`ImageRow`], [`HairRow`], [`ImageReport`]).

use serde::{Deserialize, Serialize};

use crate::settings::{HairClass, Settings};
use crate::stats::{Histogram, WidthSummary};

/// The educational-only disclaimer stored in every report.
pub const DISCLAIMER: &str = "For research and educational purposes only. Not a medical \
device; not evaluated by any medical body. It does not diagnose, treat, cure or prevent any \
disease. Consult a qualified clinician about hair loss.";

/// Name and version of the tool, stored in every report.
pub const TOOL_VERSION: &str = concat!("trichometer ", env!("CARGO_PKG_VERSION"));

/// Histogram bin width in µm (5 µm resolves the 30/60 µm class limits).
pub const HISTOGRAM_BIN_UM: f64 = 5.0;
/// Histogram bin width in px when no scale is known.
pub const HISTOGRAM_BIN_PX: f64 = 1.0;

/// Whether a hair is darker or lighter than the skin around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    Dark,
    Light,
}

/// One measured hair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hair {
    /// Robust central width along the shaft (px).
    pub width_px: f64,
    /// Spread (robust SD) of the local widths along the shaft (px).
    pub width_sd_px: f64,
    /// Length of the centreline (px), to where the hair ends in the image.
    pub length_px: f64,
    pub polarity: Polarity,
    /// Relative contrast against the skin around it (|hair − skin| / skin, linear light).
    pub contrast: f64,
    /// Local width measurements that went into `width_px`.
    pub profiles: usize,
    /// Why the width is uncertain, if it is (e.g. narrower than the blur resolves).
    pub flag: Option<String>,
    /// Centreline `[x, y]` in pixels; pixel (column i, row j) has its centre at (i, j).
    pub points: Vec<[f64; 2]>,
}

/// Everything the analysis of one image finds, in pixels; scale applied by the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageAnalysis {
    pub width_px: u32,
    pub height_px: u32,
    /// Estimated blur of the image, Gaussian σ in px, not counting the pixel's own area
    /// (calibrated on rendered hairs: [`crate::measure::reported_blur`]).
    pub blur_sigma_px: f64,
    /// Relative contrast a thin hair needs to be found in this image, with its noise and
    /// skin texture: about half the hairs this faint are found, few at half of it (see
    /// [`crate::FAINT_LIMIT_WIDTH_UM`] for the width it is given at).
    #[serde(default)]
    pub faint_limit: f64,
    /// Hairs in reading order of their first point (top to bottom, left to right).
    pub hairs: Vec<Hair>,
    /// Warnings about this image's measurement (one line each).
    pub warnings: Vec<String>,
}

/// One row of `images.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ImageRow {
    pub image: String,
    pub status: String,
    pub error: String,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub um_per_px: Option<f64>,
    /// Where the scale came from: `flag`, `manifest`, `folder`, or `none`.
    pub scale_source: String,
    pub hair_count: Option<usize>,
    pub mean_um: Option<f64>,
    pub median_um: Option<f64>,
    pub sd_um: Option<f64>,
    pub cv: Option<f64>,
    pub thin_count: Option<usize>,
    pub thin_fraction: Option<f64>,
    pub intermediate_fraction: Option<f64>,
    pub terminal_fraction: Option<f64>,
    pub mean_px: Option<f64>,
    pub median_px: Option<f64>,
    pub sd_px: Option<f64>,
    /// Hairs whose width is flagged as uncertain.
    pub flagged_count: Option<usize>,
    /// Estimated blur σ (px).
    pub blur_sigma_px: Option<f64>,
    /// SHA-256 of the input file's bytes.
    pub sha256: String,
    // Calibration and study tags (see `calibration`): appended after the original columns.
    /// The file the scale came from (manifest or `trichometer.toml`); empty otherwise.
    #[serde(default)]
    pub scale_file: String,
    /// Manifest tags; empty when not given.
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub visit: String,
    /// Relative contrast a thin hair needs to be found in this image (see
    /// [`ImageAnalysis::faint_limit`]).
    #[serde(default)]
    pub faint_limit: Option<f64>,
}

/// One row of `hairs.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HairRow {
    pub image: String,
    pub hair_id: usize,
    pub width_um: Option<f64>,
    pub width_px: f64,
    pub width_sd_um: Option<f64>,
    pub width_sd_px: f64,
    pub length_um: Option<f64>,
    pub length_px: f64,
    pub x_start: f64,
    pub y_start: f64,
    pub x_end: f64,
    pub y_end: f64,
    pub class: Option<HairClass>,
    pub polarity: Polarity,
    pub contrast: f64,
    /// Empty when the width is trusted; otherwise why it is uncertain.
    pub flag: String,
}

/// A hair in the per-image JSON: its `hairs.csv` row plus its centreline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HairReport {
    #[serde(flatten)]
    pub row: HairRow,
    pub points: Vec<[f64; 2]>,
}

/// The per-image JSON document `images/<path>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    pub tool: String,
    pub disclaimer: String,
    #[serde(flatten)]
    pub row: ImageRow,
    pub settings: Settings,
    pub histogram: Option<Histogram>,
    pub warnings: Vec<String>,
    pub hairs: Vec<HairReport>,
}

/// Rounds to `digits` decimals so reports are stable and readable.
pub fn round_to(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

#[cfg(test)]
impl Hair {
    /// A test hair: dark, contrast 0.5, 50 profiles, spread 0.1 px, length 100 px, unflagged.
    pub(crate) fn for_test(points: Vec<[f64; 2]>, width: f64) -> Hair {
        Hair {
            width_px: width,
            width_sd_px: 0.1,
            length_px: 100.0,
            polarity: Polarity::Dark,
            contrast: 0.5,
            profiles: 50,
            flag: None,
            points,
        }
    }
}

impl ImageReport {
    /// Report of a successfully analysed image. `settings.um_per_px` is the scale used.
    pub fn from_analysis(
        image: &str,
        analysis: &ImageAnalysis,
        settings: &Settings,
        scale_source: &str,
        sha256: &str,
    ) -> ImageReport {
        let scale = settings.um_per_px;
        let um = |px: f64| scale.map(|s| round_to(px * s, 3));
        let hairs: Vec<HairReport> = analysis
            .hairs
            .iter()
            .enumerate()
            .map(|(id, h)| {
                let first = h.points.first().copied().unwrap_or([0.0, 0.0]);
                let last = h.points.last().copied().unwrap_or(first);
                HairReport {
                    row: HairRow {
                        image: image.to_string(),
                        hair_id: id,
                        width_um: um(h.width_px),
                        width_px: round_to(h.width_px, 3),
                        width_sd_um: um(h.width_sd_px),
                        width_sd_px: round_to(h.width_sd_px, 3),
                        length_um: scale.map(|s| round_to(h.length_px * s, 1)),
                        length_px: round_to(h.length_px, 2),
                        x_start: round_to(first[0], 2),
                        y_start: round_to(first[1], 2),
                        x_end: round_to(last[0], 2),
                        y_end: round_to(last[1], 2),
                        class: settings.class_of_px(h.width_px),
                        polarity: h.polarity,
                        contrast: round_to(h.contrast, 4),
                        flag: h.flag.clone().unwrap_or_default(),
                    },
                    points: h
                        .points
                        .iter()
                        .map(|p| [round_to(p[0], 2), round_to(p[1], 2)])
                        .collect(),
                }
            })
            .collect();
        let px: Vec<f64> = analysis.hairs.iter().map(|h| h.width_px).collect();
        let sum_px = WidthSummary::of(&px, None);
        let (sum_um, histogram) = match scale {
            Some(s) => {
                let w: Vec<f64> = px.iter().map(|p| p * s).collect();
                (
                    Some(WidthSummary::of(
                        &w,
                        Some((settings.thin_um, settings.terminal_um)),
                    )),
                    Histogram::of(&w, HISTOGRAM_BIN_UM, settings.terminal_um * 2.0, "um"),
                )
            }
            None => (None, Histogram::of(&px, HISTOGRAM_BIN_PX, 10.0, "px")),
        };
        let r3 = |v: Option<f64>| v.map(|x| round_to(x, 3));
        let r4 = |v: Option<f64>| v.map(|x| round_to(x, 4));
        let row = ImageRow {
            image: image.to_string(),
            status: "ok".into(),
            error: String::new(),
            width_px: Some(analysis.width_px),
            height_px: Some(analysis.height_px),
            um_per_px: scale,
            scale_source: scale_source.to_string(),
            hair_count: Some(hairs.len()),
            mean_um: r3(sum_um.as_ref().and_then(|s| s.mean)),
            median_um: r3(sum_um.as_ref().and_then(|s| s.median)),
            sd_um: r3(sum_um.as_ref().and_then(|s| s.sd)),
            cv: r4(sum_px.cv),
            thin_count: sum_um.as_ref().and_then(|s| s.thin_count),
            thin_fraction: r4(sum_um.as_ref().and_then(|s| s.thin_fraction)),
            intermediate_fraction: r4(sum_um.as_ref().and_then(|s| s.intermediate_fraction)),
            terminal_fraction: r4(sum_um.as_ref().and_then(|s| s.terminal_fraction)),
            mean_px: r3(sum_px.mean),
            median_px: r3(sum_px.median),
            sd_px: r3(sum_px.sd),
            flagged_count: Some(analysis.hairs.iter().filter(|h| h.flag.is_some()).count()),
            blur_sigma_px: Some(round_to(analysis.blur_sigma_px, 3)),
            sha256: sha256.to_string(),
            faint_limit: Some(round_to(analysis.faint_limit, 4)),
            ..Default::default()
        };
        ImageReport {
            tool: TOOL_VERSION.to_string(),
            disclaimer: DISCLAIMER.to_string(),
            row,
            settings: settings.clone(),
            histogram: Some(histogram),
            warnings: analysis.warnings.clone(),
            hairs,
        }
    }

    /// Report of an image that could not be analysed.
    pub fn failed(
        image: &str,
        error: &str,
        settings: &Settings,
        scale_source: &str,
        sha256: &str,
    ) -> ImageReport {
        ImageReport {
            tool: TOOL_VERSION.to_string(),
            disclaimer: DISCLAIMER.to_string(),
            row: ImageRow {
                image: image.to_string(),
                status: "error".into(),
                error: one_line(error),
                um_per_px: settings.um_per_px,
                scale_source: scale_source.to_string(),
                sha256: sha256.to_string(),
                ..Default::default()
            },
            settings: settings.clone(),
            histogram: None,
            warnings: vec![],
            hairs: vec![],
        }
    }

    /// Per-hair widths in µm (or px without a scale).
    pub fn hair_widths(&self) -> Vec<f64> {
        self.hairs
            .iter()
            .map(|h| h.row.width_um.unwrap_or(h.row.width_px))
            .collect()
    }
}

/// Collapses any text to one line (newlines and tabs become spaces).
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
