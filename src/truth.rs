//! Ground truth for an image: what `synth` writes beside each phantom and what
//! `validate` scores reports against.
//!
//! File layout written by `trichometer synth --out DIR`:
//! `DIR/<name>.jpg` (or .png) and `DIR/<name>.truth.json` holding one [`TruthImage`].

use serde::{Deserialize, Serialize};

use crate::settings::HairClass;
use crate::stats::WidthSummary;

/// Ground truth of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthImage {
    /// Image file name relative to the truth folder, `/`-separated.
    pub image: String,
    pub width_px: u32,
    pub height_px: u32,
    /// Scale, micrometres per pixel.
    pub um_per_px: f64,
    /// Standard deviation of the optical blur (px), before pixel integration.
    pub blur_sigma_px: f64,
    /// Difficulty the phantom was rendered at (`easy`, `realistic`, `hard`).
    pub difficulty: String,
    /// Seed of this image.
    pub seed: u64,
    /// Every hair, visible part only.
    pub hairs: Vec<TruthHair>,
    /// Image-level figures over `hairs` (widths in µm; classes with 30/60 µm limits).
    pub summary: WidthSummary,
}

/// One true hair, restricted to its part inside the frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthHair {
    pub id: usize,
    /// Centreline of the visible part, `[x, y]` in pixels, spaced about 1 px apart.
    /// Same convention as reports: the centre of pixel (column i, row j) is at (i, j).
    pub points: Vec<[f64; 2]>,
    /// Mean shaft width over the visible part, µm.
    pub width_um: f64,
    /// Mean shaft width over the visible part, px.
    pub width_px: f64,
    /// Visible centreline length, px.
    pub length_px: f64,
    pub class: HairClass,
    /// True when the hair is lighter than the skin around it (grey/white hair).
    pub light: bool,
    /// Runs `[start, end)` of `points` indices whose centre lies inside another hair's
    /// shaft (under it, or over a hair of the same colour): not separately visible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<[usize; 2]>,
}

impl TruthHair {
    /// Length of the hidden runs, px: each hidden point carries half of its two steps.
    pub fn hidden_length_px(&self) -> f64 {
        let p = &self.points;
        let half_step = |j: usize| 0.5 * (p[j + 1][0] - p[j][0]).hypot(p[j + 1][1] - p[j][1]);
        let mask = self.hidden_mask();
        (0..p.len())
            .filter(|&k| mask[k])
            .map(|k| {
                (if k > 0 { half_step(k - 1) } else { 0.0 })
                    + (if k + 1 < p.len() { half_step(k) } else { 0.0 })
            })
            .sum()
    }

    /// Centreline length not hidden by another hair, px: what a detector can see.
    pub fn visible_length_px(&self) -> f64 {
        (self.length_px - self.hidden_length_px()).max(0.0)
    }

    /// Whether each of `points` is hidden by another hair.
    pub fn hidden_mask(&self) -> Vec<bool> {
        let n = self.points.len();
        let mut m = vec![false; n];
        for &[a, b] in &self.hidden {
            m[a.min(n)..b.min(n)].fill(true);
        }
        m
    }
}
