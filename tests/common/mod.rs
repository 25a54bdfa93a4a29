//! Shared helpers for integration tests: render hairs of known width, run the binary.
#![allow(dead_code)]

use image::{Rgb, RgbImage};
use ndarray::Array2;
use trichometer::enhance::gaussian_blur;

/// A straight hair for [`render`]: a line through `centre` at `angle_deg`, `width_px` wide,
/// `length_px` long; `transmission` (at the centre line) < 1 is darker than skin, > 1
/// lighter. The cross-section is that of light absorbed through a cylinder of centre
/// optical depth `HAIR_DEPTH`: 1 − (1 − t)·(1 − e^(−τ√(1−x²)))/(1 − e^(−τ)).
#[derive(Clone, Copy, Debug)]
pub struct Bar {
    pub centre: [f64; 2],
    pub angle_deg: f64,
    pub width_px: f64,
    pub length_px: f64,
    pub transmission: f64,
}

/// Renders bars on skin of linear level `skin` with 4×4 supersampling, Gaussian blur
/// `blur` px and deterministic pseudo-noise of standard deviation `noise` (linear light),
/// encoded as 8-bit sRGB.
pub fn render(w: usize, h: usize, bars: &[Bar], skin: f32, blur: f32, noise: f32) -> RgbImage {
    render_layers(w, h, &[(bars, blur)], skin, noise)
}

/// [`render`] with layers of bars, each under its own blur (px): e.g. sharp hairs over
/// soft patches. The layers' transmissions multiply.
pub fn render_layers(
    w: usize,
    h: usize,
    layers: &[(&[Bar], f32)],
    skin: f32,
    noise: f32,
) -> RgbImage {
    render_layers_deep(w, h, layers, HAIR_DEPTH, skin, noise)
}

/// [`render`] with the bars' cylinders of centre optical depth `depth` instead of
/// `HAIR_DEPTH`: e.g. 30 for opaque (black) shafts, which look like bars.
pub fn render_deep(
    w: usize,
    h: usize,
    bars: &[Bar],
    depth: f64,
    skin: f32,
    blur: f32,
    noise: f32,
) -> RgbImage {
    render_layers_deep(w, h, &[(bars, blur)], depth, skin, noise)
}

fn render_layers_deep(
    w: usize,
    h: usize,
    layers: &[(&[Bar], f32)],
    depth: f64,
    skin: f32,
    noise: f32,
) -> RgbImage {
    let mut lin = Array2::<f32>::from_elem((h, w), skin);
    for &(bars, blur) in layers {
        let layer = gaussian_blur(&paint(w, h, bars, depth), blur);
        lin.zip_mut_with(&layer, |v, &t| *v *= t);
    }
    encode(&lin, noise)
}

/// A hair bent along a circle for [`render_arcs`]: centred on `centre`, of `radius`, from
/// `from_deg` to `to_deg` (image angles, y down), with the cross-section of a [`Bar`].
#[derive(Clone, Copy, Debug)]
pub struct Arc {
    pub centre: [f64; 2],
    pub radius: f64,
    pub from_deg: f64,
    pub to_deg: f64,
    pub width_px: f64,
    pub transmission: f64,
}

/// [`render`] with curved hairs (`arcs`) as well as straight ones, all under one blur.
pub fn render_arcs(
    w: usize,
    h: usize,
    arcs: &[Arc],
    bars: &[Bar],
    skin: f32,
    blur: f32,
    noise: f32,
) -> RgbImage {
    let mut field = paint(w, h, bars, HAIR_DEPTH);
    for a in arcs {
        let (lo, hi) = (a.from_deg.to_radians(), a.to_deg.to_radians());
        absorb(
            &mut field,
            a.centre,
            a.transmission,
            HAIR_DEPTH,
            |px, py| {
                let mut t = py.atan2(px);
                while t < lo {
                    t += std::f64::consts::TAU;
                }
                (t <= hi).then(|| 2.0 * (px.hypot(py) - a.radius) / a.width_px)
            },
        );
    }
    let mut lin = gaussian_blur(&field, blur);
    lin.mapv_inplace(|t| t * skin);
    encode(&lin, noise)
}

/// Optical depth of the rendered hairs' cylinders at their centre.
const HAIR_DEPTH: f64 = 2.0;

/// Absorption across a cylinder of centre optical depth `depth`, normalised to 1 at the
/// centre, at `u` = offset / half-width (|u| ≤ 1).
fn cylinder(u: f64, depth: f64) -> f64 {
    (1.0 - (-depth * (1.0 - u * u).sqrt()).exp()) / (1.0 - (-depth).exp())
}

/// Linear light plus deterministic pseudo-noise of SD `noise`, encoded as 8-bit sRGB grey.
fn encode(lin: &Array2<f32>, noise: f32) -> RgbImage {
    let (h, w) = lin.dim();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut gauss = move || {
        // Sum of 4 uniforms: close enough to normal for test noise.
        let mut acc = 0.0f32;
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            acc += (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        acc * (12.0f32 / 4.0).sqrt()
    };
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let v = (lin[[y as usize, x as usize]] + noise * gauss()).clamp(0.0, 1.0);
        let e = if v <= 0.003_130_8 {
            12.92 * v
        } else {
            1.055 * v.powf(1.0 / 2.4) - 0.055
        };
        let b = (e * 255.0).round() as u8;
        Rgb([b, b, b])
    })
}

/// Transmission (1 = skin) of `bars` (cylinders of centre optical depth `depth`) over a
/// w×h field, 4×4 supersampled, unblurred.
fn paint(w: usize, h: usize, bars: &[Bar], depth: f64) -> Array2<f32> {
    let mut lin = Array2::<f32>::from_elem((h, w), 1.0);
    for b in bars {
        let (s, c) = b.angle_deg.to_radians().sin_cos();
        absorb(&mut lin, b.centre, b.transmission, depth, |px, py| {
            let along = px * c + py * s;
            (along.abs() <= b.length_px / 2.0).then(|| 2.0 * (-px * s + py * c) / b.width_px)
        });
    }
    lin
}

/// Multiplies `field` by the transmission of one hair of centre-line `transmission`, a
/// cylinder of centre optical depth `depth`, 4×4 supersampled: `across(px, py)` gives, for
/// a point relative to `centre`, its offset across the hair in half-widths (`None` beyond
/// the hair's ends).
fn absorb(
    field: &mut Array2<f32>,
    centre: [f64; 2],
    transmission: f64,
    depth: f64,
    across: impl Fn(f64, f64) -> Option<f64>,
) {
    const SS: usize = 4;
    let (h, w) = field.dim();
    for y in 0..h {
        for x in 0..w {
            let mut gain = 0.0;
            for j in 0..SS {
                for i in 0..SS {
                    let px = x as f64 - 0.5 + (i as f64 + 0.5) / SS as f64 - centre[0];
                    let py = y as f64 - 0.5 + (j as f64 + 0.5) / SS as f64 - centre[1];
                    if let Some(u) = across(px, py).filter(|u| u.abs() <= 1.0) {
                        gain += (transmission - 1.0) * cylinder(u, depth);
                    }
                }
            }
            let v = field[[y, x]] as f64;
            field[[y, x]] = (v * (1.0 + gain / (SS * SS) as f64)) as f32;
        }
    }
}

/// A small test image with a few hairs of known width (px): 3, 6 and 10 px, dark, plus
/// one light 5 px hair, on 320x240 skin.
pub fn sample_image(seed: u64) -> RgbImage {
    let s = seed as f64;
    let bars = [
        Bar {
            centre: [160.0 + s, 60.0],
            angle_deg: 8.0 + s,
            width_px: 3.0,
            length_px: 260.0,
            transmission: 0.35,
        },
        Bar {
            centre: [150.0, 120.0 + s],
            angle_deg: 95.0,
            width_px: 6.0,
            length_px: 200.0,
            transmission: 0.25,
        },
        Bar {
            centre: [170.0, 180.0],
            angle_deg: 170.0 - s,
            width_px: 10.0,
            length_px: 250.0,
            transmission: 0.2,
        },
        Bar {
            centre: [60.0, 120.0],
            angle_deg: 60.0,
            width_px: 5.0,
            length_px: 150.0,
            transmission: 1.5,
        },
    ];
    render(320, 240, &bars, 0.35, 1.0, 0.004)
}

/// Path to the built binary.
pub fn bin() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("trichometer").expect("binary built")
}

/// Reads a CSV file into header + rows of strings.
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("csv opens");
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}
