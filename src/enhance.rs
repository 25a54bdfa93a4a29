//! Stage 2: flat-field the image into relative contrast, then find line-like structures at
//! many scales with a Hessian ridge filter, for dark and light hairs at once.
//!
//! Scale normalisation: the response at scale σ is σ²·(|λn| − |λt|) where λn is the
//! Hessian eigenvalue across the line and λt the one along it. With γ = 2 a bar of
//! contrast A and any width w peaks at σ = w/2 with the same value 0.484·A, so a 2 px
//! vellus hair and a 30 px terminal hair of equal contrast score alike (an unnormalised
//! response would favour the smallest scale). Subtracting |λt| suppresses blobs
//! (follicular openings, dots, glare), whose two eigenvalues are equal.
//!
//! Scale selection: each pixel keeps the scale whose response stands out most from that
//! scale's own noise (response ÷ robust noise level), not the largest response. Skin
//! texture is strongest at coarse scales, so by raw response a faint 2 px vellus hair
//! lost to the mottling around it; by significance it is found at its own fine scale.
//!
//! Large scales are computed on a 2×-decimated pyramid, so each scale costs about the
//! same as the finest one divided by 4 per level.

use ndarray::Array2;

use crate::stats::quantile;

/// Side of the blocks whose medians estimate the skin background (px); must be well above
/// the widest hair so the median is skin, not hair.
const BACKGROUND_BLOCK_MIN: usize = 32;
/// Lowest background level accepted when dividing (linear light), avoids blowing up noise
/// in black borders.
const BACKGROUND_FLOOR: f32 = 1e-3;
/// Ratio between successive ridge-filter scales (σ). 1.5 keeps the loss between
/// scales under 4% for a bar profile.
const SCALE_RATIO: f32 = 1.5;
/// Finest ridge-filter scale (px): a 2 px hair peaks at σ = 1.
const SCALE_MIN: f32 = 1.0;
/// Pixels whose response is below this share of the detection floor are left out of the
/// full-resolution maps (they cannot become centreline pixels).
const UPDATE_MARGIN: f32 = 0.5;
/// Smallest σ computed on a pyramid level, in that level's pixels: finite second
/// differences stay within 2% of the Gaussian derivatives from here on.
const LEVEL_SIGMA_MIN: f32 = 1.6;

/// Output of the ridge filter, full resolution, shape (height, width).
pub struct RidgeMap {
    /// Relative contrast of the flat-fielded image: (I − skin) / skin, linear light.
    pub contrast: Array2<f32>,
    /// Scale-normalised line response at the most significant scale (contrast units, ≥ 0).
    pub strength: Array2<f32>,
    /// `strength` divided by the robust noise level of the response at that scale.
    pub snr: Array2<f32>,
    /// Index into `scales` of the most significant scale (highest `snr`); meaningless
    /// where strength is 0.
    pub scale: Array2<u8>,
    /// +1 for a dark line (valley), −1 for a light line (ridge), 0 for none.
    pub polarity: Array2<i8>,
    /// Unit normal across the line at the best scale (x, y components).
    pub normal: Array2<[f32; 2]>,
    /// Offset (px, along `normal`) from the pixel centre to the line's sub-pixel centre.
    pub offset: Array2<f32>,
    /// The σ (px) of each scale.
    pub scales: Vec<f32>,
    /// Robust noise level (response units) of each scale.
    pub noise: Vec<f32>,
}

/// Divides the luminance by a smooth estimate of the skin under it and returns relative
/// contrast (I − B) / B. The background is a bilinear surface through block medians. A
/// second pass leaves out the pixels the first pass found far darker (hairs) or far
/// lighter (glare, white hairs) than it, so densely haired regions keep a skin level.
pub fn flatten(lum: &Array2<f32>, max_hair_width_px: f64) -> Array2<f32> {
    let (h, w) = lum.dim();
    let block = (BACKGROUND_BLOCK_MIN.max((2.0 * max_hair_width_px).ceil() as usize))
        .min(h.max(w))
        .max(1);
    let first = divide(lum, &block_medians(lum, block, None), block);
    let s = first.as_slice().expect("standard layout");
    let step = (s.len() / 100_000).max(1);
    let sample: Vec<f64> = s.iter().step_by(step).map(|&v| v as f64).collect();
    let sd = crate::stats::robust_sd(&sample).max(BACKGROUND_SD_FLOOR) as f32;
    let keep = (-BACKGROUND_DARK_SIGMAS * sd, BACKGROUND_LIGHT_SIGMAS * sd);
    divide(lum, &block_medians(lum, block, Some((&first, keep))), block)
}

/// Least skin texture level assumed for the mask (relative contrast): on a flat, clean
/// image the first-pass SD is ~0 and would mask the smooth shading itself.
const BACKGROUND_SD_FLOOR: f64 = 0.01;
/// Pixels darker than this many robust SDs of the first-pass contrast are left out of the
/// second background pass (hairs).
const BACKGROUND_DARK_SIGMAS: f32 = 3.0;
/// Same for lighter pixels: generous, so skin in a dense patch of dark hairs (which the
/// first pass sees as light) stays in.
const BACKGROUND_LIGHT_SIGMAS: f32 = 6.0;
/// Share of a block that must survive the mask for its second-pass median to be used.
const BACKGROUND_MIN_KEPT: usize = 8;

/// 3×3-median-smoothed grid of block medians; with `mask`, only pixels whose first-pass
/// contrast lies within the given range count (falling back to all pixels of a block
/// where fewer than 1/`BACKGROUND_MIN_KEPT` survive).
fn block_medians(
    lum: &Array2<f32>,
    block: usize,
    mask: Option<(&Array2<f32>, (f32, f32))>,
) -> Array2<f32> {
    let (h, w) = lum.dim();
    let gh = h.div_ceil(block);
    let gw = w.div_ceil(block);
    let mut grid = Array2::<f32>::zeros((gh, gw));
    let mut buf = Vec::with_capacity(block * block);
    let mut all = Vec::with_capacity(block * block);
    for gy in 0..gh {
        for gx in 0..gw {
            buf.clear();
            all.clear();
            for y in gy * block..((gy + 1) * block).min(h) {
                for x in gx * block..((gx + 1) * block).min(w) {
                    let v = lum[[y, x]];
                    all.push(v);
                    match mask {
                        Some((c, (lo, hi))) if c[[y, x]] < lo || c[[y, x]] > hi => {}
                        _ => buf.push(v),
                    }
                }
            }
            let src = if buf.len() * BACKGROUND_MIN_KEPT >= all.len() {
                &mut buf
            } else {
                &mut all
            };
            let mid = src.len() / 2;
            let (_, m, _) = src.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
            grid[[gy, gx]] = *m;
        }
    }
    median3(&grid)
}

/// Relative contrast of `lum` against the bilinear surface through a block grid.
fn divide(lum: &Array2<f32>, grid: &Array2<f32>, block: usize) -> Array2<f32> {
    let (h, w) = lum.dim();
    let (gh, gw) = grid.dim();
    let mut out = Array2::<f32>::zeros((h, w));
    // Bilinear through block centres, extrapolated linearly over the outer half blocks.
    let cell = |f: f32, n: usize| -> (usize, usize, f32) {
        if n == 1 {
            return (0, 0, 0.0);
        }
        let i0 = (f.max(0.0) as usize).min(n - 2);
        (i0, i0 + 1, (f - i0 as f32).clamp(-0.5, n as f32))
    };
    for y in 0..h {
        let (y0, y1, ty) = cell((y as f32 + 0.5) / block as f32 - 0.5, gh);
        for x in 0..w {
            let (x0, x1, tx) = cell((x as f32 + 0.5) / block as f32 - 0.5, gw);
            let b = (1.0 - ty) * ((1.0 - tx) * grid[[y0, x0]] + tx * grid[[y0, x1]])
                + ty * ((1.0 - tx) * grid[[y1, x0]] + tx * grid[[y1, x1]]);
            let b = b.max(BACKGROUND_FLOOR);
            out[[y, x]] = lum[[y, x]] / b - 1.0;
        }
    }
    out
}

/// 3×3 median of a small grid (edges use the available neighbours).
fn median3(g: &Array2<f32>) -> Array2<f32> {
    let (h, w) = g.dim();
    let mut out = g.clone();
    let mut v = Vec::with_capacity(9);
    for y in 0..h {
        for x in 0..w {
            v.clear();
            // Edges replicated, so a smooth gradient is kept at the borders.
            for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                    let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                    v.push(g[[yy, xx]]);
                }
            }
            let mid = v.len() / 2;
            let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
            out[[y, x]] = *m;
        }
    }
    out
}

/// Normalised 1-D Gaussian kernel of standard deviation `sigma`, radius ⌈3σ⌉.
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as i32;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// Separable Gaussian blur with edge pixels replicated. `sigma` in pixels.
pub fn gaussian_blur(src: &Array2<f32>, sigma: f32) -> Array2<f32> {
    let (h, w) = src.dim();
    if sigma <= 0.0 || h == 0 || w == 0 {
        return src.clone();
    }
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as isize;
    let s = src.as_slice().expect("standard layout");
    // Horizontal pass, row by row, with a padded row buffer.
    let mut tmp = vec![0f32; h * w];
    let mut row = vec![0f32; w + 2 * r as usize];
    for y in 0..h {
        let line = &s[y * w..(y + 1) * w];
        for (i, v) in row.iter_mut().enumerate() {
            let x = (i as isize - r).clamp(0, w as isize - 1) as usize;
            *v = line[x];
        }
        let out = &mut tmp[y * w..(y + 1) * w];
        for (x, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                acc += kv * row[x + j];
            }
            *o = acc;
        }
    }
    // Vertical pass, accumulating whole rows (cache friendly).
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        let o = &mut out[y * w..(y + 1) * w];
        for (j, kv) in k.iter().enumerate() {
            let yy = (y as isize + j as isize - r).clamp(0, h as isize - 1) as usize;
            let src_row = &tmp[yy * w..(yy + 1) * w];
            for (ov, sv) in o.iter_mut().zip(src_row) {
                *ov += kv * sv;
            }
        }
    }
    Array2::from_shape_vec((h, w), out).expect("shape")
}

/// Halves an image by 2×2 box averaging (odd edges replicate).
fn downsample2(src: &Array2<f32>) -> Array2<f32> {
    let (h, w) = src.dim();
    let (h2, w2) = (h.div_ceil(2).max(1), w.div_ceil(2).max(1));
    let mut out = Array2::<f32>::zeros((h2, w2));
    for y in 0..h2 {
        let ya = (2 * y).min(h - 1);
        let yb = (2 * y + 1).min(h - 1);
        for x in 0..w2 {
            let xa = (2 * x).min(w - 1);
            let xb = (2 * x + 1).min(w - 1);
            out[[y, x]] = 0.25 * (src[[ya, xa]] + src[[ya, xb]] + src[[yb, xa]] + src[[yb, xb]]);
        }
    }
    out
}

/// Derivatives of a blurred image at one pixel: gradient and Hessian (per pixel units).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Derivs {
    pub gx: f32,
    pub gy: f32,
    pub xx: f32,
    pub xy: f32,
    pub yy: f32,
}

/// Central finite-difference derivatives of `b` at (x, y), edges replicated.
pub fn derivs_at(b: &Array2<f32>, x: usize, y: usize) -> Derivs {
    let (h, w) = b.dim();
    let xm = x.saturating_sub(1);
    let xp = (x + 1).min(w - 1);
    let ym = y.saturating_sub(1);
    let yp = (y + 1).min(h - 1);
    let c = b[[y, x]];
    Derivs {
        gx: 0.5 * (b[[y, xp]] - b[[y, xm]]),
        gy: 0.5 * (b[[yp, x]] - b[[ym, x]]),
        xx: b[[y, xp]] - 2.0 * c + b[[y, xm]],
        yy: b[[yp, x]] - 2.0 * c + b[[ym, x]],
        xy: 0.25 * (b[[yp, xp]] - b[[yp, xm]] - b[[ym, xp]] + b[[ym, xm]]),
    }
}

/// Line analysis of a Hessian: (signed response, unit normal). The response is
/// |λn| − |λt| (≥ 0), signed + for a valley (dark line), − for a ridge (light line).
pub fn line_response(d: &Derivs) -> (f32, [f32; 2]) {
    let half_tr = 0.5 * (d.xx + d.yy);
    let disc = (0.25 * (d.xx - d.yy) * (d.xx - d.yy) + d.xy * d.xy).sqrt();
    let l1 = half_tr + disc;
    let l2 = half_tr - disc;
    let (ln, lt) = if l1.abs() >= l2.abs() {
        (l1, l2)
    } else {
        (l2, l1)
    };
    // Eigenvector of ln: (xy, ln − xx) or (ln − yy, xy), whichever is better conditioned.
    let (ax, ay) = (d.xy, ln - d.xx);
    let (bx, by) = (ln - d.yy, d.xy);
    let (mut nx, mut ny) = if ax * ax + ay * ay >= bx * bx + by * by {
        (ax, ay)
    } else {
        (bx, by)
    };
    let norm = (nx * nx + ny * ny).sqrt();
    if norm > 0.0 {
        nx /= norm;
        ny /= norm;
    } else {
        nx = 1.0;
        ny = 0.0;
    }
    let r = (ln.abs() - lt.abs()).max(0.0);
    (if ln >= 0.0 { r } else { -r }, [nx, ny])
}

/// The scales (σ, px) searched for hairs up to `max_width_px` wide: σ = w/2 at the peak.
pub fn scales_for(max_width_px: f64) -> Vec<f32> {
    let mut s = vec![SCALE_MIN];
    while *s.last().unwrap() < (max_width_px as f32 / 2.0) {
        let next = s.last().unwrap() * SCALE_RATIO;
        s.push(next);
    }
    s
}

/// Runs the flat-field and the multi-scale ridge filter on linear luminance.
pub fn ridges(lum: &Array2<f32>, max_width_px: f64) -> RidgeMap {
    let contrast = flatten(lum, max_width_px);
    let (h, w) = contrast.dim();
    let scales = scales_for(max_width_px);
    let mut strength = Array2::<f32>::zeros((h, w));
    let mut snr = Array2::<f32>::zeros((h, w));
    let mut scale_idx = Array2::<u8>::zeros((h, w));
    let mut polarity = Array2::<i8>::zeros((h, w));
    let mut normal = Array2::<[f32; 2]>::from_elem((h, w), [1.0, 0.0]);
    let mut offset = Array2::<f32>::zeros((h, w));
    let mut noise = Vec::with_capacity(scales.len());

    // Pyramid of the contrast image, built lazily.
    let mut pyramid = vec![contrast.clone()];
    for (si, &sigma) in scales.iter().enumerate() {
        let mut level = 0usize;
        while sigma / (1 << (level + 1)) as f32 >= LEVEL_SIGMA_MIN
            && pyramid[level].dim().0 >= 16
            && pyramid[level].dim().1 >= 16
        {
            level += 1;
            if pyramid.len() <= level {
                let next = downsample2(&pyramid[level - 1]);
                pyramid.push(next);
            }
        }
        let f = (1 << level) as f32;
        let s_level = sigma / f;
        let blurred = gaussian_blur(&pyramid[level], s_level);
        // Response on the level grid (scale-normalised, so comparable across levels).
        let resp = response_map(&blurred, s_level * s_level);
        let ns = noise_level(&resp);
        noise.push(ns);
        // Only pixels that can pass detection need the full-resolution update; the
        // margin covers interpolation between level pixels.
        let floor = UPDATE_MARGIN * (crate::trace::SNR_LOW * ns).max(crate::trace::STRENGTH_MIN);
        let mut update = |x: usize, y: usize, r: f32, derivs: &dyn Fn() -> Derivs| {
            if r.abs() < floor || r.abs() / ns <= snr[[y, x]] {
                return;
            }
            let dv = derivs();
            let (_, n) = line_response(&dv);
            strength[[y, x]] = r.abs();
            snr[[y, x]] = r.abs() / ns;
            scale_idx[[y, x]] = si as u8;
            polarity[[y, x]] = if r >= 0.0 { 1 } else { -1 };
            normal[[y, x]] = n;
            // Sub-pixel centre along the normal (Steger): t = −(g·n)/(nᵀHn).
            let gn = dv.gx * n[0] + dv.gy * n[1];
            let hnn = dv.xx * n[0] * n[0] + 2.0 * dv.xy * n[0] * n[1] + dv.yy * n[1] * n[1];
            offset[[y, x]] = if hnn.abs() > 1e-12 {
                -gn / hnn
            } else {
                f32::INFINITY
            };
        };
        if level == 0 {
            let rs = resp.as_slice().expect("standard layout");
            for (i, &r) in rs.iter().enumerate() {
                let (y, x) = (i / w, i % w);
                update(x, y, r, &|| derivs_at(&blurred, x, y));
            }
        } else {
            let (lh, lw) = resp.dim();
            let fi = 1usize << level;
            for ly in 0..lh {
                for lx in 0..lw {
                    // A level pixel near one above the floor: its block may interpolate above it.
                    let mut any = false;
                    for yy in ly.saturating_sub(1)..(ly + 2).min(lh) {
                        for xx in lx.saturating_sub(1)..(lx + 2).min(lw) {
                            any |= resp[[yy, xx]].abs() >= floor;
                        }
                    }
                    if !any {
                        continue;
                    }
                    for y in ly * fi..((ly + 1) * fi).min(h) {
                        let v = (y as f32 + 0.5) / f - 0.5;
                        for x in lx * fi..((lx + 1) * fi).min(w) {
                            let u = (x as f32 + 0.5) / f - 0.5;
                            let r = bilinear(&resp, u, v);
                            update(x, y, r, &|| derivs_bilinear(&blurred, u, v, f));
                        }
                    }
                }
            }
        }
    }
    RidgeMap {
        contrast,
        strength,
        snr,
        scale: scale_idx,
        polarity,
        normal,
        offset,
        scales,
        noise,
    }
}

/// Scale-normalised signed line response of every pixel of a blurred image.
fn response_map(b: &Array2<f32>, norm: f32) -> Array2<f32> {
    let (h, w) = b.dim();
    let mut out = Array2::<f32>::zeros((h, w));
    let s = b.as_slice().expect("standard layout");
    let o = out.as_slice_mut().expect("standard layout");
    for y in 0..h {
        let interior_row = y > 0 && y + 1 < h;
        for x in 0..w {
            let d = if interior_row && x > 0 && x + 1 < w {
                let i = y * w + x;
                let c = s[i];
                Derivs {
                    gx: 0.0,
                    gy: 0.0,
                    xx: s[i + 1] - 2.0 * c + s[i - 1],
                    yy: s[i + w] - 2.0 * c + s[i - w],
                    xy: 0.25 * (s[i + w + 1] - s[i + w - 1] - s[i - w + 1] + s[i - w - 1]),
                }
            } else {
                derivs_at(b, x, y)
            };
            o[y * w + x] = norm * line_response(&d).0;
        }
    }
    out
}

/// Least noise level of a response (≈ 0.4% contrast): scales compete by response-to-noise,
/// and a noise-free image must fall back to comparing responses.
const NOISE_FLOOR: f32 = 0.002;

/// Robust noise level of a response map: 1.4826 × median |r| over a subsample
/// (most pixels are skin, so this is the texture-plus-noise level), floored to avoid 0.
fn noise_level(resp: &Array2<f32>) -> f32 {
    let s = resp.as_slice().expect("standard layout");
    let step = (s.len() / 200_000).max(1);
    let v: Vec<f64> = s.iter().step_by(step).map(|r| r.abs() as f64).collect();
    let med = quantile(&v, 0.5) as f32;
    (1.4826 * med).max(NOISE_FLOOR)
}

/// The four pixels around (x, y), clamped to an h×w grid, and the fractional offsets:
/// (x0, y0, x1, y1, tx, ty).
fn bilinear_cell(h: usize, w: usize, x: f32, y: f32) -> (usize, usize, usize, usize, f32, f32) {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    (
        x0,
        y0,
        (x0 + 1).min(w - 1),
        (y0 + 1).min(h - 1),
        x - x0 as f32,
        y - y0 as f32,
    )
}

/// Bilinear sample with clamped coordinates.
pub fn bilinear(a: &Array2<f32>, x: f32, y: f32) -> f32 {
    let (h, w) = a.dim();
    let (x0, y0, x1, y1, tx, ty) = bilinear_cell(h, w, x, y);
    (1.0 - ty) * ((1.0 - tx) * a[[y0, x0]] + tx * a[[y0, x1]])
        + ty * ((1.0 - tx) * a[[y1, x0]] + tx * a[[y1, x1]])
}

/// Derivatives at fractional level coordinates, converted to full-resolution pixel units
/// (a level pixel is `f` full pixels: first derivatives / f, second / f²).
fn derivs_bilinear(b: &Array2<f32>, u: f32, v: f32, f: f32) -> Derivs {
    let (h, w) = b.dim();
    let (x0, y0, x1, y1, tx, ty) = bilinear_cell(h, w, u, v);
    let d00 = derivs_at(b, x0, y0);
    let d10 = derivs_at(b, x1, y0);
    let d01 = derivs_at(b, x0, y1);
    let d11 = derivs_at(b, x1, y1);
    let mix = |g: fn(&Derivs) -> f32| {
        (1.0 - ty) * ((1.0 - tx) * g(&d00) + tx * g(&d10))
            + ty * ((1.0 - tx) * g(&d01) + tx * g(&d11))
    };
    Derivs {
        gx: mix(|d| d.gx) / f,
        gy: mix(|d| d.gy) / f,
        xx: mix(|d| d.xx) / (f * f),
        xy: mix(|d| d.xy) / (f * f),
        yy: mix(|d| d.yy) / (f * f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive 2-D Gaussian blur by direct summation, for checking the separable one.
    fn naive_blur(src: &Array2<f32>, sigma: f32) -> Array2<f32> {
        let (h, w) = src.dim();
        let k = gaussian_kernel(sigma);
        let r = (k.len() / 2) as isize;
        let mut out = Array2::zeros((h, w));
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut acc = 0.0;
                for j in -r..=r {
                    for i in -r..=r {
                        let yy = (y + j).clamp(0, h as isize - 1) as usize;
                        let xx = (x + i).clamp(0, w as isize - 1) as usize;
                        acc += k[(j + r) as usize] * k[(i + r) as usize] * src[[yy, xx]];
                    }
                }
                out[[y as usize, x as usize]] = acc;
            }
        }
        out
    }

    #[test]
    fn separable_blur_matches_naive() {
        let src = Array2::from_shape_fn((23, 31), |(y, x)| ((x * 7 + y * 13) % 11) as f32 / 11.0);
        for sigma in [0.8f32, 1.7, 3.0] {
            let a = gaussian_blur(&src, sigma);
            let b = naive_blur(&src, sigma);
            for (p, q) in a.iter().zip(b.iter()) {
                assert!((p - q).abs() < 1e-5, "sigma {sigma}: {p} vs {q}");
            }
        }
    }

    #[test]
    fn line_response_signs_and_normal() {
        // A vertical dark valley: curvature across x is positive.
        let d = Derivs {
            xx: 2.0,
            yy: 0.0,
            xy: 0.0,
            ..Default::default()
        };
        let (r, n) = line_response(&d);
        assert!(r > 1.9 && n[0].abs() > 0.99);
        // A light horizontal ridge.
        let d = Derivs {
            xx: 0.0,
            yy: -3.0,
            xy: 0.0,
            ..Default::default()
        };
        let (r, n) = line_response(&d);
        assert!(r < -2.9 && n[1].abs() > 0.99);
        // A blob: equal eigenvalues give nothing.
        let d = Derivs {
            xx: 1.0,
            yy: 1.0,
            xy: 0.0,
            ..Default::default()
        };
        assert_eq!(line_response(&d).0, 0.0);
        // A diagonal valley.
        let d = Derivs {
            xx: 1.0,
            yy: 1.0,
            xy: 1.0,
            ..Default::default()
        };
        let (r, n) = line_response(&d);
        assert!(r > 1.9);
        assert!((n[0].abs() - n[1].abs()).abs() < 1e-5);
    }

    #[test]
    fn flatten_removes_illumination_gradient() {
        let lum = Array2::from_shape_fn((200, 300), |(_, x)| 0.2 + 0.4 * x as f32 / 300.0);
        let c = flatten(&lum, 10.0);
        let max = c.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max < 0.05, "residual contrast {max}");
    }

    fn bar_image(width_px: f32, contrast: f32, dark: bool) -> Array2<f32> {
        let (h, w) = (120usize, 160usize);
        let cx = 80.3f32;
        Array2::from_shape_fn((h, w), |(_, x)| {
            // Exact pixel-area coverage of the bar [cx − w/2, cx + w/2].
            let lo = (x as f32 - 0.5).max(cx - width_px / 2.0);
            let hi = (x as f32 + 0.5).min(cx + width_px / 2.0);
            let cover = (hi - lo).max(0.0);
            let k = if dark {
                1.0 - contrast * cover
            } else {
                1.0 + contrast * cover
            };
            0.3 * k
        })
    }

    #[test]
    fn ridge_peaks_at_bar_centre_for_both_polarities_and_widths() {
        for &(wpx, dark) in &[(2.0f32, true), (6.0, true), (14.0, false), (25.0, true)] {
            let lum = bar_image(wpx, 0.3, dark);
            let m = ridges(&lum, 48.0);
            let row = 60;
            let (mut best, mut bx) = (0f32, 0usize);
            for x in 0..160 {
                if m.strength[[row, x]] > best {
                    best = m.strength[[row, x]];
                    bx = x;
                }
            }
            assert!((bx as f32 - 80.3).abs() <= 1.0, "width {wpx}: peak at {bx}");
            assert_eq!(m.polarity[[row, bx]], if dark { 1 } else { -1 });
            // Scale-normalised: the response is about 0.48 × contrast for every width.
            assert!(
                best > 0.3 * 0.3 && best < 0.6 * 0.3,
                "width {wpx}: strength {best}"
            );
            let sigma = m.scales[m.scale[[row, bx]] as usize];
            assert!(
                sigma >= wpx / 4.0 && sigma <= wpx.max(2.0),
                "width {wpx}: sigma {sigma}"
            );
            assert!(m.normal[[row, bx]][0].abs() > 0.95);
        }
    }
}
