//! The linear-light canvas and the drawing tools shared by the skin and hair layers:
//! smooth value noise, nearest-point fields around polylines, blur and sRGB encoding.

use image::{Rgb, RgbImage};

use super::rng::Rng;

/// Linear-light RGB image, row-major; 1.0 is the brightest diffuse white.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub px: Vec<[f32; 3]>,
}

impl Canvas {
    pub fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![[0.0; 3]; w * h],
        }
    }

    /// Calls `f(pixel, weight)` for every pixel within `radius` of `(cx, cy)`, with
    /// `weight = profile(distance)`.
    pub fn disc(
        &mut self,
        cx: f64,
        cy: f64,
        radius: f64,
        profile: impl Fn(f64) -> f64,
        mut f: impl FnMut(&mut [f32; 3], f64),
    ) {
        let (x0, x1, y0, y1) =
            match self.clip_box(cx - radius, cx + radius, cy - radius, cy + radius) {
                Some(b) => b,
                None => return,
            };
        for y in y0..=y1 {
            let dy = y as f64 - cy;
            for x in x0..=x1 {
                let dx = x as f64 - cx;
                let r2 = dx * dx + dy * dy;
                if r2 > radius * radius {
                    continue;
                }
                let wgt = profile(r2.sqrt());
                if wgt > 0.0 {
                    f(&mut self.px[y * self.w + x], wgt);
                }
            }
        }
    }

    /// Integer pixel box covering `[xa, xb] × [ya, yb]`, clipped to the frame.
    pub fn clip_box(
        &self,
        xa: f64,
        xb: f64,
        ya: f64,
        yb: f64,
    ) -> Option<(usize, usize, usize, usize)> {
        clip_box(self.w, self.h, xa, xb, ya, yb)
    }

    /// Separable Gaussian blur with standard deviation `sigma` (px); edges replicate.
    pub fn gaussian_blur(&mut self, sigma: f64) {
        if sigma <= 0.05 {
            return;
        }
        let rad = (sigma * 3.5).ceil() as isize;
        let mut k: Vec<f32> = (-rad..=rad)
            .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
            .collect();
        let sum: f32 = k.iter().sum();
        k.iter_mut().for_each(|v| *v /= sum);
        let (w, h) = (self.w as isize, self.h as isize);
        let mut tmp = vec![[0.0f32; 3]; self.px.len()];
        // Horizontal.
        for y in 0..h {
            let row = &self.px[(y * w) as usize..((y + 1) * w) as usize];
            let out = &mut tmp[(y * w) as usize..((y + 1) * w) as usize];
            for x in 0..w {
                let mut acc = [0.0f32; 3];
                for (j, kv) in k.iter().enumerate() {
                    let xx = (x + j as isize - rad).clamp(0, w - 1) as usize;
                    let p = row[xx];
                    acc[0] += kv * p[0];
                    acc[1] += kv * p[1];
                    acc[2] += kv * p[2];
                }
                out[x as usize] = acc;
            }
        }
        // Vertical.
        let mut acc_row = vec![[0.0f32; 3]; w as usize];
        for y in 0..h {
            acc_row.iter_mut().for_each(|a| *a = [0.0; 3]);
            for (j, kv) in k.iter().enumerate() {
                let yy = (y + j as isize - rad).clamp(0, h - 1) as usize;
                let src = &tmp[yy * w as usize..(yy + 1) * w as usize];
                for (a, p) in acc_row.iter_mut().zip(src) {
                    a[0] += kv * p[0];
                    a[1] += kv * p[1];
                    a[2] += kv * p[2];
                }
            }
            self.px[(y * w) as usize..((y + 1) * w) as usize].copy_from_slice(&acc_row);
        }
    }

    /// Adds photon (signal-dependent) and read noise: variance `gain * I + read²`.
    pub fn add_noise(&mut self, rng: &mut Rng, gain: f64, read: f64) {
        let (g, r2) = (gain as f32, (read * read) as f32);
        for p in self.px.iter_mut() {
            for c in p.iter_mut() {
                let sd = (g * c.max(0.0) + r2).sqrt();
                *c += sd * rng.normal() as f32;
            }
        }
    }

    /// 8-bit sRGB encoding (clipped).
    pub fn to_srgb8(&self) -> RgbImage {
        let mut img = RgbImage::new(self.w as u32, self.h as u32);
        for (i, p) in self.px.iter().enumerate() {
            let x = (i % self.w) as u32;
            let y = (i / self.w) as u32;
            img.put_pixel(x, y, Rgb([srgb8(p[0]), srgb8(p[1]), srgb8(p[2])]));
        }
        img
    }
}

/// Integer pixel box covering `[xa, xb] × [ya, yb]`, clipped to a `w × h` frame.
pub fn clip_box(
    w: usize,
    h: usize,
    xa: f64,
    xb: f64,
    ya: f64,
    yb: f64,
) -> Option<(usize, usize, usize, usize)> {
    let x0 = xa.ceil().max(0.0);
    let x1 = xb.floor().min(w as f64 - 1.0);
    let y0 = ya.ceil().max(0.0);
    let y1 = yb.floor().min(h as f64 - 1.0);
    if x0 > x1 || y0 > y1 {
        return None;
    }
    Some((x0 as usize, x1 as usize, y0 as usize, y1 as usize))
}

/// Linear value → 8-bit sRGB.
pub fn srgb8(v: f32) -> u8 {
    let v = v.clamp(0.0, 1.0);
    let e = if v <= 0.003_130_8 {
        12.92 * v
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    };
    (e * 255.0 + 0.5) as u8
}

/// 8-bit sRGB → linear value.
pub fn srgb_to_linear(v: f64) -> f64 {
    let e = v / 255.0;
    if e <= 0.04045 {
        e / 12.92
    } else {
        ((e + 0.055) / 1.055).powf(2.4)
    }
}

/// Luminance of a linear RGB colour.
pub fn lum(c: [f64; 3]) -> f64 {
    0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
}

fn smooth5(t: f64) -> f64 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

/// Smooth 2-D value noise on a lattice of `cell` px, values in about [-1, 1].
#[derive(Clone, Debug)]
pub struct Noise2 {
    cell: f64,
    gw: usize,
    gh: usize,
    v: Vec<f32>,
}

impl Noise2 {
    pub fn new(rng: &mut Rng, w: usize, h: usize, cell: f64) -> Noise2 {
        let cell = cell.max(0.5);
        let gw = (w as f64 / cell).ceil() as usize + 2;
        let gh = (h as f64 / cell).ceil() as usize + 2;
        let v = (0..gw * gh).map(|_| rng.range(-1.0, 1.0) as f32).collect();
        Noise2 { cell, gw, gh, v }
    }

    pub fn at(&self, x: f64, y: f64) -> f64 {
        let fx = (x / self.cell).clamp(0.0, (self.gw - 2) as f64);
        let fy = (y / self.cell).clamp(0.0, (self.gh - 2) as f64);
        let (ix, iy) = (fx.floor() as usize, fy.floor() as usize);
        let (tx, ty) = (smooth5(fx - ix as f64), smooth5(fy - iy as f64));
        let g = |i: usize, j: usize| self.v[j * self.gw + i] as f64;
        let a = g(ix, iy) + (g(ix + 1, iy) - g(ix, iy)) * tx;
        let b = g(ix, iy + 1) + (g(ix + 1, iy + 1) - g(ix, iy + 1)) * tx;
        a + (b - a) * ty
    }

    /// Adds `amp × noise` along row `y` into `out` (one value per column).
    pub fn add_row(&self, y: usize, amp: f32, out: &mut [f32]) {
        let fy = (y as f64 / self.cell).clamp(0.0, (self.gh - 2) as f64);
        let iy = fy.floor() as usize;
        let ty = smooth5(fy - iy as f64) as f32;
        let col: Vec<f32> = (0..self.gw)
            .map(|i| {
                let a = self.v[iy * self.gw + i];
                let b = self.v[(iy + 1) * self.gw + i];
                a + (b - a) * ty
            })
            .collect();
        let inv = 1.0 / self.cell;
        for (x, o) in out.iter_mut().enumerate() {
            let fx = x as f64 * inv;
            let ix = (fx.floor() as usize).min(self.gw - 2);
            let tx = smooth5(fx - ix as f64) as f32;
            *o += amp * (col[ix] + (col[ix + 1] - col[ix]) * tx);
        }
    }
}

/// Smooth 1-D value noise along a curve's arc length, values in about [-1, 1].
#[derive(Clone, Debug)]
pub struct Noise1 {
    cell: f64,
    v: Vec<f32>,
}

impl Noise1 {
    pub fn new(length: f64, cell: f64, rng: &mut Rng) -> Noise1 {
        let cell = cell.max(0.5);
        let n = (length.max(0.0) / cell).ceil() as usize + 3;
        Noise1 {
            cell,
            v: (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect(),
        }
    }

    pub fn at(&self, s: f64) -> f64 {
        let f = (s / self.cell).clamp(0.0, (self.v.len() - 2) as f64);
        let i = f.floor() as usize;
        let t = smooth5(f - i as f64);
        let (a, b) = (self.v[i] as f64, self.v[i + 1] as f64);
        a + (b - a) * t
    }
}

/// Nearest point of a polyline, seen from one pixel centre.
#[derive(Clone, Copy, Debug, Default)]
pub struct Near {
    /// Signed distance along the local normal `(-ty, tx)` (px).
    pub d: f32,
    /// Arc length of the nearest point; beyond `[0, L]` past the two ends.
    pub s: f32,
    /// Unit tangent of the nearest segment.
    pub tx: f32,
    pub ty: f32,
}

/// For each pixel within `reach` of a polyline, its nearest segment's frame, recorded
/// sparsely (only touched pixels) so one frame-sized buffer serves every curve.
pub struct NearField {
    w: usize,
    h: usize,
    best: Vec<f32>,
    info: Vec<Near>,
    touched: Vec<u32>,
}

impl NearField {
    pub fn new(w: usize, h: usize) -> NearField {
        NearField {
            w,
            h,
            best: vec![f32::INFINITY; w * h],
            info: vec![Near::default(); w * h],
            touched: Vec::new(),
        }
    }

    /// Records every pixel within `reach` of the polyline `pts` (arc lengths `cum`).
    /// Past the two ends, `s` and `d` are extrapolated along the end segments so callers
    /// can cut the curve square at its ends.
    pub fn splat(&mut self, pts: &[[f64; 2]], cum: &[f64], reach: f64) {
        self.clear();
        let n = pts.len();
        if n < 2 {
            return;
        }
        for k in 0..n - 1 {
            let (p0, p1) = (pts[k], pts[k + 1]);
            let (ex, ey) = (p1[0] - p0[0], p1[1] - p0[1]);
            let l = (ex * ex + ey * ey).sqrt();
            if l < 1e-9 {
                continue;
            }
            let (tx, ty) = (ex / l, ey / l);
            let (nx, ny) = (-ty, tx);
            let Some((x0, x1, y0, y1)) = clip_box(
                self.w,
                self.h,
                p0[0].min(p1[0]) - reach,
                p0[0].max(p1[0]) + reach,
                p0[1].min(p1[1]) - reach,
                p0[1].max(p1[1]) + reach,
            ) else {
                continue;
            };
            let first = k == 0;
            let last = k == n - 2;
            for y in y0..=y1 {
                let vy = y as f64 - p0[1];
                let row = y * self.w;
                for x in x0..=x1 {
                    let vx = x as f64 - p0[0];
                    let a = vx * tx + vy * ty;
                    let dn = vx * nx + vy * ny;
                    let (ac, e) = if a < 0.0 {
                        (0.0, (vx * vx + vy * vy).sqrt())
                    } else if a > l {
                        let (ux, uy) = (x as f64 - p1[0], y as f64 - p1[1]);
                        (l, (ux * ux + uy * uy).sqrt())
                    } else {
                        (a, dn.abs())
                    };
                    if e > reach {
                        continue;
                    }
                    let idx = row + x;
                    let e32 = e as f32;
                    if e32 < self.best[idx] {
                        if self.best[idx] == f32::INFINITY {
                            self.touched.push(idx as u32);
                        }
                        self.best[idx] = e32;
                        let (s, d) = if (first && a < 0.0) || (last && a > l) {
                            (cum[k] + a, dn)
                        } else {
                            (cum[k] + ac, if dn < 0.0 { -e } else { e })
                        };
                        self.info[idx] = Near {
                            d: d as f32,
                            s: s as f32,
                            tx: tx as f32,
                            ty: ty as f32,
                        };
                    }
                }
            }
        }
    }

    /// Visits every recorded pixel: `f(index, near)`.
    pub fn each(&self, mut f: impl FnMut(usize, &Near)) {
        for &i in &self.touched {
            f(i as usize, &self.info[i as usize]);
        }
    }

    pub fn clear(&mut self) {
        for &i in &self.touched {
            self.best[i as usize] = f32::INFINITY;
        }
        self.touched.clear();
    }
}

/// Cumulative arc length of a polyline.
pub fn arc_lengths(pts: &[[f64; 2]]) -> Vec<f64> {
    let mut cum = Vec::with_capacity(pts.len());
    let mut s = 0.0;
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            let q = pts[i - 1];
            s += ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
        }
        cum.push(s);
    }
    cum
}

/// A smooth curve by integrating curvature: starts at `p`, heading `theta`, `length` px
/// long, sampled every `ds` px. Curvature (1/px) is `kappa0` plus a smooth wiggle of
/// amplitude `wiggle` on a length scale `cell`, clamped to `±kmax`.
#[allow(clippy::too_many_arguments)]
pub fn integrate_curve(
    p: [f64; 2],
    theta: f64,
    length: f64,
    ds: f64,
    kappa0: f64,
    wiggle: f64,
    cell: f64,
    kmax: f64,
    rng: &mut Rng,
) -> Vec<[f64; 2]> {
    let noise = Noise1::new(length, cell, rng);
    let n = (length / ds).ceil().max(1.0) as usize;
    let step = length / n as f64;
    let mut pts = Vec::with_capacity(n + 1);
    let (mut x, mut y, mut th) = (p[0], p[1], theta);
    pts.push([x, y]);
    for i in 0..n {
        let s = (i as f64 + 0.5) * step;
        let k = (kappa0 + wiggle * noise.at(s)).clamp(-kmax, kmax);
        // Midpoint rule: turn half, step, turn half.
        th += 0.5 * k * step;
        x += step * th.cos();
        y += step * th.sin();
        th += 0.5 * k * step;
        pts.push([x, y]);
    }
    pts
}
