//! Test images and the pipeline's stages, shared by `benches/pipeline.rs` (criterion) and
//! `examples/stage_table.rs` (the per-megapixel table in docs/PERFORMANCE.md).
#![allow(dead_code)]

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, Rgb, RgbImage};
use ndarray::Array2;
use trichometer::enhance::RidgeMap;
use trichometer::synth::{render_phantom, PhantomOptions};
use trichometer::trace::Trace;
use trichometer::{load, Settings};

/// JPEG quality of the test images (a typical camera setting).
pub const JPEG_QUALITY: u8 = 90;

/// One test image: its JPEG bytes and a label.
pub struct Case {
    pub label: String,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

impl Case {
    pub fn megapixels(&self) -> f64 {
        self.width as f64 * self.height as f64 / 1e6
    }
}

pub fn encode_jpeg(img: &RgbImage) -> Vec<u8> {
    let mut buf = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut buf), JPEG_QUALITY)
        .encode_image(img)
        .expect("JPEG encodes");
    buf
}

/// A realistic synthetic trichoscopy image (`synth` phantom, fixed seed) of the given size.
pub fn realistic(width: u32, height: u32) -> Case {
    let opts = PhantomOptions {
        width,
        height,
        ..PhantomOptions::default()
    };
    let (img, _truth) = render_phantom(trichometer::synth::image_seed(7, 0), 0, &opts);
    Case {
        label: format!("realistic {width}x{height}"),
        width,
        height,
        jpeg: encode_jpeg(&img),
    }
}

/// Small deterministic generator (xorshift64*), so the images never change.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.next()
    }
}

/// `hairs` straight dark hairs (2–8 px wide, 100–300 px long, any direction, crossing
/// freely) on even skin, blurred (σ 1 px) with mild noise: the dense-hair case.
pub fn dense(width: u32, height: u32, hairs: usize) -> Case {
    let (w, h) = (width as usize, height as usize);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ hairs as u64);
    let mut lin = Array2::<f32>::from_elem((h, w), 0.35);
    for _ in 0..hairs {
        let (cx, cy) = (rng.range(0.0, w as f64), rng.range(0.0, h as f64));
        let angle = rng.range(0.0, std::f64::consts::PI);
        let half_w = rng.range(1.0, 4.0);
        let half_l = rng.range(50.0, 150.0);
        let transmission = rng.range(0.2, 0.5) as f32;
        let (s, c) = angle.sin_cos();
        let ext = half_l * c.abs() + half_w * s.abs() + 2.0;
        let eyt = half_l * s.abs() + half_w * c.abs() + 2.0;
        let x0 = (cx - ext).floor().max(0.0) as usize;
        let x1 = ((cx + ext).ceil() as usize).min(w - 1);
        let y0 = (cy - eyt).floor().max(0.0) as usize;
        let y1 = ((cy + eyt).ceil() as usize).min(h - 1);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (px, py) = (x as f64 - cx, y as f64 - cy);
                let along = px * c + py * s;
                let across = -px * s + py * c;
                // Area coverage of the pixel, separable approximation.
                let fa = (half_w - across.abs() + 0.5).clamp(0.0, 1.0);
                let fl = (half_l - along.abs() + 0.5).clamp(0.0, 1.0);
                let f = (fa * fl) as f32;
                if f > 0.0 {
                    lin[[y, x]] *= 1.0 - f * (1.0 - transmission);
                }
            }
        }
    }
    let lin = blur(&lin, 1.0);
    let img = RgbImage::from_fn(width, height, |x, y| {
        let v = (lin[[y as usize, x as usize]] + 0.004 * (rng.next() as f32 - 0.5) * 3.46)
            .clamp(0.0, 1.0);
        let e = if v <= 0.003_130_8 {
            12.92 * v
        } else {
            1.055 * v.powf(1.0 / 2.4) - 0.055
        };
        let b = (e * 255.0).round() as u8;
        Rgb([b, (b as f32 * 0.8) as u8, (b as f32 * 0.7) as u8])
    });
    Case {
        label: format!("dense {width}x{height}, {hairs} hairs"),
        width,
        height,
        jpeg: encode_jpeg(&img),
    }
}

/// Separable Gaussian blur, clamped edges (the bench's own, independent of `enhance`).
fn blur(a: &Array2<f32>, sigma: f32) -> Array2<f32> {
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / sum).collect();
    let (h, w) = a.dim();
    let pass = |src: &Array2<f32>, horizontal: bool| {
        Array2::from_shape_fn((h, w), |(y, x)| {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let d = j as isize - r;
                let (yy, xx) = if horizontal {
                    (y as isize, (x as isize + d).clamp(0, w as isize - 1))
                } else {
                    ((y as isize + d).clamp(0, h as isize - 1), x as isize)
                };
                acc += kv * src[[yy as usize, xx as usize]];
            }
            acc
        })
    };
    pass(&pass(a, true), false)
}

// The stages, as `trichometer::analyze_luminance` chains them.

pub fn decode(jpeg: &[u8]) -> DynamicImage {
    load::decode(jpeg, u64::MAX).expect("decodes")
}

pub fn luminance(img: &DynamicImage) -> Array2<f32> {
    load::linear_luminance(img)
}

pub fn ridges(lum: &Array2<f32>) -> RidgeMap {
    trichometer::enhance::ridges(lum, Settings::default().max_width_px)
}

pub fn trace(ridge: &RidgeMap) -> Vec<Trace> {
    trichometer::trace::trace(ridge)
}

/// Profiles along every trace, the blur estimate and the per-hair widths; returns the
/// number of hairs kept.
pub fn measure(ridge: &RidgeMap, traces: Vec<Trace>) -> usize {
    use trichometer::measure;
    let settings = Settings::default();
    let raws = trichometer::profile_traces(ridge, traces, None, settings.max_width_px);
    let blur = measure::blur_or_default(&raws).0;
    raws.iter()
        .filter(|r| measure::finish(r, blur, settings.min_length_px).is_ok())
        .count()
}

/// The whole analysis of a decoded image (what `analyze` does per image after decoding).
pub fn whole(img: &DynamicImage) -> usize {
    trichometer::analyze(img, &Settings::default())
        .expect("analyses")
        .hairs
        .len()
}

/// Median wall time of `reps` runs of `f` (after one warm-up run).
pub fn median_time<T>(reps: usize, mut f: impl FnMut() -> T) -> Duration {
    std::hint::black_box(f());
    let mut t: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(f());
            s.elapsed()
        })
        .collect();
    t.sort();
    t[t.len() / 2]
}
