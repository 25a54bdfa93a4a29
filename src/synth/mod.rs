//! Synthetic trichoscopy phantoms with exact ground truth: the project's measuring stick.
//!
//! A phantom is rendered in linear light, from the bottom up:
//! skin (tone, mottling, fine texture and pores) → furrows → follicular openings,
//! yellow dots, scales → hairs (cylinder absorption profile, pixel-integrated by
//! supersampling, with highlight stripes and medullae) → bubbles, immersion-fluid glitter,
//! glare → vignetting → Gaussian optical blur → photon and read noise → 8-bit sRGB
//! (→ JPEG in [`write_suite`]).
//!
//! The truth ([`TruthImage`]) holds every hair's visible centreline (clipped to the frame
//! `[-0.5, W-0.5] × [-0.5, H-0.5]`, points about 1 px apart) and its mean true width over
//! that visible part. Rendering uses the same centreline (as chords of at most 2 px
//! between truth samples), so the geometry agrees to a few hundredths of a pixel.
//!
//! Truth conventions worth knowing when scoring:
//! - every hair is in the truth even where it is hidden under another hair, a scale, a
//!   bubble or glare, and near its root, where it is drawn faded (seen through the skin);
//!   the runs of its centreline lying inside another hair's shaft (under it, or over a
//!   hair of the same polarity, composited in nearly the same colour) are listed in
//!   `hidden`, and `validate` counts recall over the rest (the visible length);
//! - `light` is true when the hair's own colour is brighter than the image's base skin
//!   (white/grey hairs, and hypopigmented hairs on dark skin); every hair is kept at least
//!   25% away from the skin's luminance so the flag is unambiguous;
//! - widths are the geometric shaft diameter (the cylinder's), averaged over the visible
//!   centreline; highlight stripes and medullae lie inside it;
//! - `blur_sigma_px` is the Gaussian applied after pixel integration (the same as before
//!   it, since both are convolutions). Skin, confounders and hairs are all blurred.
//!
//! Everything is drawn from a self-contained generator ([`rng`]) so a seed gives the same
//! phantom on every platform and with every dependency version.

pub(crate) mod canvas;
mod hairs;
pub mod rng;
mod skin;

use std::fmt;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::stats::WidthSummary;
use crate::truth::TruthImage;

use canvas::{lum, srgb_to_linear, Canvas};
use rng::Rng;

/// How hard a phantom is to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    /// Light skin, few confounders, mostly dark hairs, low noise, small blur.
    Easy,
    /// The full mixture at moderate levels.
    Realistic,
    /// More blur and noise, darker skin, more furrows, glare, scales, crossings, touching
    /// pairs, white hairs and low-contrast vellus hairs; lower JPEG quality.
    Hard,
}

impl Difficulty {
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Realistic, Difficulty::Hard];

    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Realistic => "realistic",
            Difficulty::Hard => "hard",
        }
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Difficulty {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "easy" => Ok(Difficulty::Easy),
            "realistic" => Ok(Difficulty::Realistic),
            "hard" => Ok(Difficulty::Hard),
            other => Err(format!(
                "unknown difficulty `{other}` (expected easy, realistic or hard)"
            )),
        }
    }
}

/// Options of a phantom suite.
#[derive(Clone, Debug, PartialEq)]
pub struct PhantomOptions {
    pub width: u32,
    pub height: u32,
    /// Scale in µm per pixel (clamped to 0.5..=50); `None` draws one per image, uniformly
    /// in 2.5..=8.
    pub um_per_px: Option<f64>,
    pub difficulty: Difficulty,
    /// JPEG quality; `None` writes lossless PNG. At `Hard`, each image is written at a
    /// quality up to 20 lower (drawn from its seed, not below 50).
    pub jpeg_quality: Option<u8>,
    /// Share of hairs that curl (0..=1): each bends along a circle of radius drawn in
    /// [`CURL_RADIUS_UM`], either way. At 0 (the default) no curl is drawn and a seed gives
    /// the same images as before the option existed.
    pub curly_share: f64,
    /// Whether hairs show their specular highlight stripes (the default). Without them a
    /// seed gives the same hairs, truth and everything else, for measuring what the
    /// highlights cost.
    pub highlights: bool,
}

/// Radii (µm) of a curly hair's bend: afro-textured hair forms ringlets a few
/// millimetres across; down to 0.3 mm for a shaft bending where it leaves the skin.
pub const CURL_RADIUS_UM: (f64, f64) = (300.0, 2500.0);

impl Default for PhantomOptions {
    fn default() -> Self {
        PhantomOptions {
            width: 1280,
            height: 960,
            um_per_px: None,
            difficulty: Difficulty::Realistic,
            jpeg_quality: Some(90),
            curly_share: 0.0,
            highlights: true,
        }
    }
}

/// Seed of image `index` of a suite with seed `seed` (independent of the suite's size).
pub fn image_seed(seed: u64, index: usize) -> u64 {
    rng::mix(seed, 0x1000_0000 + index as u64)
}

/// File name (without folder) of image `index`: `phantom_NNNN.jpg` or `.png`.
pub fn image_file_name(index: usize, opts: &PhantomOptions) -> String {
    let ext = if opts.jpeg_quality.is_some() {
        "jpg"
    } else {
        "png"
    };
    format!("phantom_{index:04}.{ext}")
}

/// JPEG quality an image rendered with `seed` is written at (`None`: PNG).
pub fn effective_jpeg_quality(seed: u64, opts: &PhantomOptions) -> Option<u8> {
    let q = opts.jpeg_quality?.clamp(1, 100);
    if opts.difficulty == Difficulty::Hard {
        let mut r = Rng::stream(seed, 0x4A50_4547);
        let drop = r.int(0, 20) as u8;
        Some(q.saturating_sub(drop).max(50.min(q)))
    } else {
        Some(q)
    }
}

/// Per-image parameters drawn from the seed and the difficulty.
#[derive(Clone, Debug)]
pub(crate) struct Look {
    pub w: usize,
    pub h: usize,
    pub um_per_px: f64,
    pub blur_sigma: f64,
    /// 0 = very light skin … 1 = dark skin.
    pub tone: f64,
    /// Base skin colour, linear RGB.
    pub skin: [f64; 3],
    pub skin_lum: f64,
    pub mottle: f64,
    pub redness: f64,
    pub photon_gain: f64,
    pub read_noise: f64,
    pub vignette: f64,
    pub furrows: usize,
    pub furrow_depth: (f64, f64),
    pub fine_lines: usize,
    /// Follicular units per mm².
    pub unit_density: f64,
    pub dir_spread: f64,
    pub random_dir_share: f64,
    pub thin_share: f64,
    pub intermediate_share: f64,
    pub white_share: f64,
    pub hypo_share: f64,
    /// Multiplies the absorption of hypopigmented (vellus) hairs.
    pub vellus_contrast: f64,
    pub highlight_prob: f64,
    pub medulla_prob: f64,
    /// Share of hairs that curl (`PhantomOptions::curly_share`).
    pub curly_share: f64,
    /// Whether highlight stripes are drawn (`PhantomOptions::highlights`).
    pub highlights: bool,
    pub pairs: usize,
    pub empty_opening_share: f64,
    pub yellow_dots: usize,
    pub black_dots: usize,
    pub scales: usize,
    pub scales_over: usize,
    pub glare: usize,
    pub glitter: usize,
    pub bubbles: usize,
    pub vessels: usize,
    /// Pigmented hair colour of this person.
    pub hair: HairColour,
}

/// Colour of a person's pigmented hairs (each hair varies around it).
#[derive(Clone, Debug)]
pub(crate) struct HairColour {
    /// Absorption per µm of path (red channel).
    pub mu_um: f64,
    /// Green and blue absorption relative to red.
    pub mu_ratio: [f64; 2],
    /// Back-scattered colour, red channel (linear).
    pub colour: f64,
    /// Green and blue of the back-scattered colour relative to red.
    pub hue: [f64; 2],
}

impl HairColour {
    fn sample(r: &mut Rng, d: Difficulty) -> HairColour {
        // black, dark brown, brown, light brown / auburn
        let weights = match d {
            Difficulty::Easy => [0.5, 0.5, 0.0, 0.0],
            Difficulty::Realistic => [0.3, 0.35, 0.25, 0.1],
            Difficulty::Hard => [0.25, 0.3, 0.3, 0.15],
        };
        let (mu, c, g, b) = match r.pick(&weights) {
            0 => ((0.04, 0.06), (0.012, 0.025), (0.5, 0.6), (0.3, 0.4)),
            1 => ((0.025, 0.04), (0.02, 0.04), (0.45, 0.55), (0.2, 0.3)),
            2 => ((0.015, 0.025), (0.04, 0.08), (0.45, 0.55), (0.2, 0.3)),
            _ => ((0.01, 0.016), (0.07, 0.12), (0.38, 0.48), (0.15, 0.25)),
        };
        HairColour {
            mu_um: r.range(mu.0, mu.1),
            mu_ratio: [r.range(1.2, 1.45), r.range(1.45, 1.9)],
            colour: r.range(c.0, c.1),
            hue: [r.range(g.0, g.1), r.range(b.0, b.1)],
        }
    }
}

impl Look {
    fn sample(seed: u64, opts: &PhantomOptions) -> Look {
        let mut r = Rng::stream(seed, 0x4C4F_4F4B);
        let d = opts.difficulty;
        let (w, h) = (opts.width.max(1) as usize, opts.height.max(1) as usize);
        let um_per_px = match opts.um_per_px {
            Some(s) if s.is_finite() && s > 0.0 => s.clamp(0.5, 50.0),
            _ => r.range(2.5, 8.0),
        };
        let area_scale = (w * h) as f64 / (1280.0 * 960.0);
        let n = |r: &mut Rng, lo: f64, hi: f64| {
            let m = r.range(lo, hi);
            r.about(m * area_scale)
        };
        let tone = match d {
            Difficulty::Easy => r.range(0.0, 0.3),
            Difficulty::Realistic => r.range(0.0, 0.85),
            Difficulty::Hard => r.range(0.45, 1.0),
        };
        let skin = skin_colour(&mut r, tone);
        let skin_lum = lum(skin);
        let mut look = Look {
            w,
            h,
            um_per_px,
            blur_sigma: 0.0,
            tone,
            skin,
            skin_lum,
            mottle: 1.0,
            redness: r.range(0.3, 1.0),
            photon_gain: 0.0,
            read_noise: 0.0,
            vignette: 0.0,
            furrows: 0,
            furrow_depth: (0.04, 0.08),
            fine_lines: 0,
            unit_density: 0.0,
            dir_spread: 0.0,
            random_dir_share: 0.0,
            thin_share: r.range(0.05, 0.40),
            intermediate_share: 0.0,
            white_share: 0.0,
            hypo_share: 0.0,
            vellus_contrast: 1.0,
            highlight_prob: 0.0,
            medulla_prob: 0.0,
            curly_share: opts.curly_share.clamp(0.0, 1.0),
            highlights: opts.highlights,
            pairs: 0,
            empty_opening_share: 0.0,
            yellow_dots: 0,
            black_dots: 0,
            scales: 0,
            scales_over: 0,
            glare: 0,
            glitter: 0,
            bubbles: 0,
            vessels: 0,
            hair: HairColour::sample(&mut r, d),
        };
        let rest = 1.0 - look.thin_share;
        match d {
            Difficulty::Easy => {
                look.blur_sigma = r.range(0.5, 0.9);
                look.mottle = r.range(0.5, 0.9);
                look.photon_gain = r.range(2e-5, 8e-5);
                look.read_noise = r.range(0.0005, 0.0015);
                look.vignette = r.range(0.05, 0.15);
                look.furrows = n(&mut r, 0.0, 2.5);
                look.furrow_depth = (0.03, 0.05);
                look.unit_density = r.range(0.25, 0.45);
                look.dir_spread = 0.3;
                look.random_dir_share = 0.05;
                look.thin_share = r.range(0.05, 0.25);
                look.intermediate_share = (1.0 - look.thin_share) * r.range(0.15, 0.35);
                look.white_share = 0.0;
                look.hypo_share = 0.25;
                look.vellus_contrast = 1.3;
                look.highlight_prob = 0.15;
                look.medulla_prob = 0.1;
                look.pairs = r.count(0, 1);
                look.empty_opening_share = r.range(0.0, 0.1);
                look.yellow_dots = n(&mut r, 0.0, 2.5);
                look.scales = n(&mut r, 0.0, 2.5);
                look.glare = n(&mut r, 0.0, 3.5);
                look.glitter = n(&mut r, 0.0, 50.0);
            }
            Difficulty::Realistic => {
                look.blur_sigma = r.range(0.6, 1.5);
                look.mottle = r.range(0.7, 1.3);
                look.photon_gain = r.range(1e-4, 3e-4);
                look.read_noise = r.range(0.001, 0.003);
                look.vignette = r.range(0.1, 0.3);
                look.furrows = n(&mut r, 3.0, 8.5);
                look.fine_lines = n(&mut r, 0.0, 3.0);
                look.unit_density = r.range(0.4, 0.7);
                look.dir_spread = 0.5;
                look.random_dir_share = 0.12;
                look.intermediate_share = rest * r.range(0.2, 0.45);
                look.white_share = if r.chance(0.5) {
                    r.range(0.0, 0.15)
                } else {
                    0.0
                };
                look.hypo_share = 0.6;
                look.vellus_contrast = 1.0;
                look.highlight_prob = 0.4;
                look.medulla_prob = 0.25;
                look.pairs = r.count(1, 4);
                look.empty_opening_share = r.range(0.05, 0.3);
                look.yellow_dots = n(&mut r, 0.0, 15.0);
                look.black_dots = n(&mut r, 0.0, 3.0);
                look.scales = n(&mut r, 2.0, 15.0);
                look.scales_over = n(&mut r, 0.0, 1.5);
                look.glare = n(&mut r, 2.0, 10.0);
                look.glitter = n(&mut r, 50.0, 600.0);
                look.bubbles = n(&mut r, 0.0, 2.5);
                look.vessels = n(&mut r, 0.0, 4.0);
            }
            Difficulty::Hard => {
                look.blur_sigma = r.range(1.0, 2.4);
                look.mottle = r.range(1.0, 1.6);
                look.photon_gain = r.range(3e-4, 9e-4);
                look.read_noise = r.range(0.002, 0.005);
                look.vignette = r.range(0.2, 0.45);
                look.furrows = n(&mut r, 6.0, 14.0);
                look.furrow_depth = (0.05, 0.1);
                look.fine_lines = n(&mut r, 2.0, 8.0);
                look.unit_density = r.range(0.6, 1.0);
                look.dir_spread = 0.65;
                look.random_dir_share = 0.2;
                look.thin_share = r.range(0.15, 0.45);
                look.intermediate_share = (1.0 - look.thin_share) * r.range(0.25, 0.5);
                look.white_share = r.range(0.1, 0.35);
                look.hypo_share = 0.8;
                look.vellus_contrast = 0.7;
                look.highlight_prob = 0.6;
                look.medulla_prob = 0.35;
                look.pairs = r.count(3, 8);
                look.empty_opening_share = r.range(0.15, 0.4);
                look.yellow_dots = n(&mut r, 5.0, 30.0);
                look.black_dots = n(&mut r, 1.0, 8.0);
                look.scales = n(&mut r, 10.0, 40.0);
                look.scales_over = n(&mut r, 1.0, 5.0);
                look.glare = n(&mut r, 5.0, 15.0);
                look.glitter = n(&mut r, 200.0, 1200.0);
                look.bubbles = n(&mut r, 1.0, 5.0);
                look.vessels = n(&mut r, 1.0, 8.0);
            }
        }
        look
    }

    /// Micrometres to pixels.
    pub fn px(&self, um: f64) -> f64 {
        um / self.um_per_px
    }
}

/// Skin colour (linear RGB) for a tone in [0, 1], with per-image jitter.
fn skin_colour(r: &mut Rng, tone: f64) -> [f64; 3] {
    // sRGB anchors of polarised-dermoscopy scalp skin, light → dark.
    const ANCHORS: [[f64; 3]; 4] = [
        [236.0, 208.0, 200.0],
        [214.0, 176.0, 160.0],
        [168.0, 128.0, 108.0],
        [110.0, 80.0, 66.0],
    ];
    let f = tone.clamp(0.0, 1.0) * 3.0;
    let i = (f.floor() as usize).min(2);
    let t = f - i as f64;
    let mut c = [0.0; 3];
    for (k, ck) in c.iter_mut().enumerate() {
        let a = srgb_to_linear(ANCHORS[i][k]);
        let b = srgb_to_linear(ANCHORS[i + 1][k]);
        *ck = a + (b - a) * t;
    }
    let jit = [
        r.range(0.96, 1.04),
        r.range(0.97, 1.03),
        r.range(0.94, 1.06),
    ];
    let bright = r.range(0.9, 1.05);
    [
        c[0] * jit[0] * bright,
        c[1] * jit[1] * bright,
        c[2] * jit[2] * bright,
    ]
}

/// Renders one phantom. Deterministic in `(seed, opts)`; `index` only names the file.
/// Returns the 8-bit sRGB image (before any JPEG compression) and its truth.
pub fn render_phantom(seed: u64, index: usize, opts: &PhantomOptions) -> (RgbImage, TruthImage) {
    let look = Look::sample(seed, opts);
    let (w, h) = (look.w, look.h);
    let mut canvas = Canvas::new(w, h);
    let mut field = canvas::NearField::new(w, h);

    let mut r_skin = Rng::stream(seed, 0x534B_494E);
    let mut r_hair = Rng::stream(seed, 0x4841_4952);
    let mut r_top = Rng::stream(seed, 0x544F_5050);
    let mut r_noise = Rng::stream(seed, 0x4E4F_4953);

    let scene = hairs::generate(&mut r_hair, &look);

    skin::paint_skin(&mut canvas, &mut r_skin, &look);
    skin::paint_furrows(&mut canvas, &mut field, &mut r_skin, &look);
    skin::paint_vessels(&mut canvas, &mut field, &mut r_skin, &look);
    skin::paint_openings(&mut canvas, &mut r_skin, &look, &scene.openings);
    skin::paint_yellow_dots(&mut canvas, &mut r_skin, &look, &scene.openings);
    skin::paint_scales(
        &mut canvas,
        &mut r_skin,
        &look,
        look.scales,
        &scene.openings,
    );
    hairs::render(&mut canvas, &mut field, &look, &scene.hairs);
    skin::paint_scales(
        &mut canvas,
        &mut r_top,
        &look,
        look.scales_over,
        &scene.openings,
    );
    skin::paint_black_dots(&mut canvas, &mut r_top, &look);
    skin::paint_bubbles(&mut canvas, &mut r_top, &look);
    skin::paint_glitter_and_glare(&mut canvas, &mut r_top, &look);
    skin::apply_vignette(&mut canvas, &mut r_top, &look);

    canvas.gaussian_blur(look.blur_sigma);
    canvas.add_noise(&mut r_noise, look.photon_gain, look.read_noise);
    let img = canvas.to_srgb8();

    let truth_hairs = hairs::truth(&look, &scene.hairs);
    let widths: Vec<f64> = truth_hairs.iter().map(|t| t.width_um).collect();
    let truth = TruthImage {
        image: image_file_name(index, opts),
        width_px: w as u32,
        height_px: h as u32,
        um_per_px: look.um_per_px,
        blur_sigma_px: look.blur_sigma,
        difficulty: opts.difficulty.as_str().to_string(),
        seed,
        summary: WidthSummary::of(&widths, Some((30.0, 60.0))),
        hairs: truth_hairs,
    };
    (img, truth)
}

/// Writes `n` phantoms into `out` (created if needed): `phantom_NNNN.jpg` (or `.png`) and
/// `phantom_NNNN.truth.json` each. Image `i` uses seed [`image_seed`]`(seed, i)`, so it is
/// the same whatever `n` is. Renders in parallel; returns the image paths in order.
pub fn write_suite(
    out: &Path,
    n: usize,
    seed: u64,
    opts: &PhantomOptions,
) -> anyhow::Result<Vec<PathBuf>> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    (0..n)
        .into_par_iter()
        .map(|i| {
            let s = image_seed(seed, i);
            let (img, truth) = render_phantom(s, i, opts);
            let path = out.join(&truth.image);
            match effective_jpeg_quality(s, opts) {
                Some(q) => {
                    let f = fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut enc =
                        image::codecs::jpeg::JpegEncoder::new_with_quality(BufWriter::new(f), q);
                    enc.encode_image(&img)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                None => img
                    .save_with_format(&path, image::ImageFormat::Png)
                    .with_context(|| format!("writing {}", path.display()))?,
            }
            let stem = truth
                .image
                .rsplit_once('.')
                .map(|(a, _)| a)
                .unwrap_or(&truth.image);
            let tpath = out.join(format!("{stem}.truth.json"));
            let json = serde_json::to_string_pretty(&truth)? + "\n";
            fs::write(&tpath, json).with_context(|| format!("writing {}", tpath.display()))?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests;
