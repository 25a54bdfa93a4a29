//! A hair's median cross-section fitted by a model of its shaft: a blurred cylinder
//! ([`crate::profile_model`]'s), alone and with a narrow specular highlight stripe along
//! it. A highlight that dips below half the shaft's contrast stops the edge walk of
//! [`crate::measure::edges_across`] at the stripe, and the hair reads several px narrow;
//! the colour test there fails on dark skin and on grey hairs. The stripe's evidence here
//! is its shape instead: a narrow dip inside the shaft that the stripe model explains and
//! the plain cylinder cannot. Only then, and only when the stripe model's shaft is wider
//! than the edges said, is its width taken.

use std::cell::RefCell;

use crate::measure::{RawHair, SAMPLE_STEP_PX};

/// Clear (not crowded) profiles a hair needs for its median profile to be fitted.
const MIN_PROFILES: usize = 8;
/// Ratio of the plain cylinder's RMS residual to the stripe model's above which the
/// stripe is taken as real (chosen on the tuning phantoms with the two tests below: at 2,
/// without them, most of the widths it changed got worse).
const STRIPE_MIN_RMS_RATIO: f64 = 4.0;
/// A highlight's σ is under this share of the shaft's width...
const STRIPE_NARROW_SHARE: f64 = 0.1;
/// ...and the profile's outermost half-peak crossings lie within this many times the
/// edge width: wider, and the window holds a neighbour whose gap the stripe fits.
const MAX_OUTER_RATIO: f64 = 1.3;
/// Least widening (px, and share of the edge width) for the stripe model's width to
/// replace the edges': below it the edges crossed the stripe and are the better reading.
const MIN_GAIN_PX: f64 = 0.5;
const MIN_GAIN_SHARE: f64 = 0.08;
/// A highlight stripe is narrow: its σ at most this share of the shaft's radius...
const STRIPE_MAX_SIGMA_SHARE: f64 = 0.25;
/// ...plus this (px).
const STRIPE_MAX_SIGMA_PX: f64 = 0.5;
/// Narrowest stripe σ fitted (px).
const STRIPE_MIN_SIGMA_PX: f64 = 0.1;
/// The stripe's centre lies within this share of the radius from the shaft's centre.
const STRIPE_MAX_OFFSET_SHARE: f64 = 0.85;
/// The fitted window ends where the profile has stayed below this share of its peak for
/// `SKIN_RUN_SIGMAS` blur σ (skin, past the blurred edge)...
const SKIN_LEVEL: f64 = 0.1;
const SKIN_RUN_SIGMAS: f64 = 3.0;
/// Hairs narrower than this (px) by their edges are not fitted: a stripe on a shaft a
/// few px wide cannot be told from its blurred top.
const MIN_WIDTH_PX: f64 = 3.0;
/// Levenberg-Marquardt iterations per fit.
const LM_ITERATIONS: usize = 40;
/// ...which stop when a step lowers the residual sum of squares by less than this share.
const LM_MIN_GAIN: f64 = 1e-4;
/// Nodes of the cumulative cross-section table (per unit radius on each side).
const SHAPE_NODES: usize = 200;
/// Profile samples fitted: every this many (0.5 px apart; the blur σ is at least 0.5 px).
const FIT_STRIDE: usize = 2;
/// The stripe model also starts from the plain fit's shaft this much wider.
const STRIPE_START_WIDENING: f64 = 1.3;
/// SD of the median of n normal samples, in units of their SD over √n.
const MEDIAN_NOISE_FACTOR: f64 = 1.2533;

/// Nonlinear parameters of the plain cylinder: centre (px), radius (px), ln τ (its
/// amplitude is solved for at each evaluation)...
const PLAIN_PARAMS: usize = 3;
/// ...and with the stripe: also its offset from the centre (share of the radius) and σ
/// (share of its largest, `STRIPE_MAX_SIGMA_*`).
const STRIPE_PARAMS: usize = 5;
/// Centre optical depths fitted, and the start.
const MIN_DEPTH: f64 = 0.05;
const MAX_DEPTH: f64 = 20.0;
const START_DEPTH: f64 = 4.0;

/// A fitted model of a hair's median cross-section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShaftFit {
    /// Shaft width (px).
    pub width: f64,
    /// Centre (px, relative to the traced centreline).
    pub centre: f64,
    /// RMS residual (contrast units).
    pub rms: f64,
    /// Highlight stripe: amplitude, offset from the centre (px), σ before the blur (px).
    pub stripe: Option<[f64; 3]>,
}

/// The width (px) of a hair read `edge_width` px by its edges under blur `sigma` (px) when
/// its median profile shows a highlight stripe that cut those edges short; `None` when the
/// hair is not fitted or the stripe is not evident.
pub fn stripe_width(raw: &RawHair, sigma: f64, edge_width: f64) -> Option<f64> {
    let gain = (MIN_GAIN_PX).max(MIN_GAIN_SHARE * edge_width);
    let (y, centre, sign, floor) = median_profile(raw, edge_width)?;
    let half = raw.half as f64;
    let w = window(&y, half, sigma, centre, edge_width)?;
    // Not fitted: profiles whose outermost half-peak crossings lie far beyond the edges (a
    // neighbour in the window, whose gap a stripe would fit), and profiles with less area
    // than a bar of the peak's height between the edges (a stripe that cut the edges
    // leaves shaft outside them).
    if 2.0 * w.outer.1 >= MAX_OUTER_RATIO * edge_width || w.mass_width(&y) < edge_width - gain {
        return None;
    }
    let (plain, striped) = fit_window(&y, &w, half, sigma, sign, floor)?;
    let striped = striped?;
    let [_, _, s] = striped.stripe?;
    (plain.rms > STRIPE_MIN_RMS_RATIO * striped.rms
        && s < STRIPE_NARROW_SHARE * striped.width
        && striped.width > edge_width + gain)
        .then_some(striped.width)
}

/// The median of `raw`'s clear profiles (samples as in [`RawHair::samples`]), the median
/// centre of their edges (px), the sign a highlight adds with (see [`fit_profile`]) and
/// the SD of the median's noise; `None` for hairs too narrow or with too few clear
/// profiles to fit.
fn median_profile(raw: &RawHair, edge_width: f64) -> Option<(Vec<f64>, f64, f64, f64)> {
    if edge_width < MIN_WIDTH_PX {
        return None;
    }
    let clear = raw.clear_profiles(MIN_PROFILES)?;
    let n = raw.samples[clear[0]].len();
    let mut column = Vec::with_capacity(clear.len());
    let y: Vec<f64> = (0..n)
        .map(|k| {
            column.clear();
            column.extend(clear.iter().map(|&i| raw.samples[i][k] as f64));
            crate::stats::median_mut(&mut column)
        })
        .collect();
    let mut centres: Vec<f64> = clear
        .iter()
        .map(|&i| 0.5 * (raw.profiles[i].left + raw.profiles[i].right) as f64)
        .collect();
    let centre = crate::stats::median_mut(&mut centres);
    let sign = if raw.trace.polarity > 0 { -1.0 } else { 1.0 };
    let mut noise: Vec<f64> = clear
        .iter()
        .map(|&i| raw.profiles[i].noise as f64)
        .collect();
    let floor =
        MEDIAN_NOISE_FACTOR * crate::stats::median_mut(&mut noise) / (clear.len() as f64).sqrt();
    Some((y, centre, sign, floor))
}

/// The part of a profile a fit looks at: from skin to skin around the hair.
#[derive(Clone, Copy)]
struct Window {
    /// First and last sample.
    a: usize,
    b: usize,
    /// Peak near the centre.
    peak: f64,
    /// Centre and half-distance (px) of the outermost half-peak crossings.
    outer: (f64, f64),
}

impl Window {
    /// Width (px) of a bar of the peak's height with the profile's area.
    fn mass_width(&self, y: &[f64]) -> f64 {
        y[self.a..=self.b].iter().sum::<f64>() * SAMPLE_STEP_PX as f64 / self.peak
    }
}

/// The window of profile `y` (see [`fit_profile`]) around a hair centred near `centre`
/// (px) and about `edge_width` (px) wide; `None` when the hair has no positive peak there.
fn window(y: &[f64], half: f64, sigma: f64, centre: f64, edge_width: f64) -> Option<Window> {
    let step = SAMPLE_STEP_PX as f64;
    let n = y.len();
    let pos = |k: usize| -half + k as f64 * step;
    let ic = (((centre + half) / step).round().max(0.0) as usize).min(n - 1);
    // The peak near the centre, then out to the skin on each side.
    let reach = ((0.5 * edge_width + sigma) / step).ceil() as usize;
    let (lo, hi) = (ic.saturating_sub(reach), (ic + reach).min(n - 1));
    let peak = y[lo..=hi].iter().copied().fold(f64::MIN, f64::max);
    if peak <= 0.0 {
        return None;
    }
    let run = ((SKIN_RUN_SIGMAS * sigma / step).ceil() as usize).max(4);
    let skin_end = |dir: isize| -> usize {
        let (mut k, mut below) = (ic as isize, 0usize);
        while k + dir >= 0 && k + dir < n as isize {
            k += dir;
            below = if y[k as usize] < SKIN_LEVEL * peak {
                below + 1
            } else {
                0
            };
            if below >= run {
                break;
            }
        }
        k as usize
    };
    let (a, b) = (skin_end(-1), skin_end(1));
    if b - a < 8 {
        return None;
    }
    // The outermost half-peak crossings: the shaft's extent if a stripe cut the edges.
    let left = (a..=b).find(|&k| y[k] >= 0.5 * peak).unwrap_or(ic);
    let right = (a..=b).rev().find(|&k| y[k] >= 0.5 * peak).unwrap_or(ic);
    let outer = (
        0.5 * (pos(left) + pos(right)),
        0.5 * (pos(right) - pos(left)),
    );
    Some(Window { a, b, peak, outer })
}

/// Fits the plain cylinder and, unless its residual is within `STRIPE_MIN_RMS_RATIO` times
/// `noise_floor`, the cylinder with a stripe, under blur `sigma` (px), to profile `y` (hair
/// positive, baseline 0) sampled every `SAMPLE_STEP_PX` from `-half`, of a hair centred
/// near `centre` and about `edge_width` wide (px); a highlight adds `stripe_sign` × its
/// light to `y` (−1 on dark hairs, +1 on light ones).
pub fn fit_profile(
    y: &[f64],
    half: f64,
    sigma: f64,
    centre: f64,
    edge_width: f64,
    stripe_sign: f64,
    noise_floor: f64,
) -> Option<(ShaftFit, Option<ShaftFit>)> {
    let w = window(y, half, sigma, centre, edge_width)?;
    fit_window(y, &w, half, sigma, stripe_sign, noise_floor)
}

/// [`fit_profile`] over its [`window`] `w`.
fn fit_window(
    y: &[f64],
    w: &Window,
    half: f64,
    sigma: f64,
    stripe_sign: f64,
    noise_floor: f64,
) -> Option<(ShaftFit, Option<ShaftFit>)> {
    let step = SAMPLE_STEP_PX as f64;
    let pos = |k: usize| -half + k as f64 * step;
    let Window {
        a,
        b,
        outer: (c_out, r_out),
        ..
    } = *w;
    // Every FIT_STRIDE-th sample: the blurred profile has no detail finer.
    let fit_step = FIT_STRIDE as f64 * step;
    let ys: Vec<f64> = y[a..=b].iter().step_by(FIT_STRIDE).copied().collect();
    let model = Model::new(pos(a), fit_step, sigma, stripe_sign, &ys);
    let window = (pos(a), pos(b));
    let r_max = 0.5 * (window.1 - window.0);
    let rms = |rss: f64| (rss / ys.len() as f64).sqrt();
    // The plain cylinder: centre, radius, ln τ (the amplitude is solved for).
    let lo3 = [window.0, 0.3, MIN_DEPTH.ln()];
    let hi3 = [window.1, r_max, MAX_DEPTH.ln()];
    // From the outermost half-peak crossings (the edges may have stopped at a stripe).
    let (pp, prss) = levenberg_marquardt(
        &model,
        &[c_out, r_out.max(0.5), START_DEPTH.ln()],
        &lo3,
        &hi3,
    );
    let plain_fit = ShaftFit {
        width: 2.0 * pp[1],
        centre: pp[0],
        rms: rms(prss),
        stripe: None,
    };
    // A residual within the noise leaves nothing for a stripe to explain.
    if plain_fit.rms < STRIPE_MIN_RMS_RATIO * noise_floor {
        return Some((plain_fit, None));
    }
    // The stripe starts where the plain model's residual goes most its way (a dip on a
    // dark hair) inside the shaft.
    let mut fitted = vec![0.0; ys.len()];
    model.predict(&pp, &mut fitted);
    let (mut worst, mut at) = (0.0, pp[0]);
    for (k, (&v, &f)) in ys.iter().zip(&fitted).enumerate() {
        let x = model.x0 + k as f64 * fit_step;
        let e = stripe_sign * (v - f);
        if (x - pp[0]).abs() < STRIPE_MAX_OFFSET_SHARE * pp[1] && e > worst {
            (worst, at) = (e, x);
        }
    }
    // Shaft starts: the plain fit's, and the same wider (the edge beyond the stripe).
    let (c0, r0) = (pp[0], pp[1]);
    // With the stripe: also its offset (share of the radius) and σ (share of its largest).
    let lo5 = [lo3[0], lo3[1], lo3[2], -STRIPE_MAX_OFFSET_SHARE, 0.0];
    let hi5 = [hi3[0], hi3[1], hi3[2], STRIPE_MAX_OFFSET_SHARE, 1.0];
    let starts = [r0, STRIPE_START_WIDENING * r0].map(|r| {
        let r = r.min(r_max);
        [c0, r, pp[2], ((at - c0) / r).clamp(-0.8, 0.8), 0.5]
    });
    let mut striped: Option<(Vec<f64>, f64)> = None;
    for p0 in starts {
        let fit = levenberg_marquardt(&model, &p0, &lo5, &hi5);
        if striped.as_ref().map_or(true, |p| fit.1 < p.1) {
            striped = Some(fit);
        }
    }
    let striped_fit = striped.map(|(p, rss)| {
        let mut out = vec![0.0; ys.len()];
        let [_, h] = model.predict(&p, &mut out);
        ShaftFit {
            width: 2.0 * p[1],
            centre: p[0],
            rms: rms(rss),
            stripe: Some([h, p[3] * p[1], stripe_sigma(p[1], p[4])]),
        }
    });
    Some((plain_fit, striped_fit))
}

/// Stripe σ (px) on a shaft of radius `r` (px) at share `t` of its largest.
fn stripe_sigma(r: f64, t: f64) -> f64 {
    (t * (STRIPE_MAX_SIGMA_SHARE * r + STRIPE_MAX_SIGMA_PX)).max(STRIPE_MIN_SIGMA_PX)
}

/// A depth τ and its cumulative cross-section table (see [`Model::cylinder`]).
type Shape = (f64, Vec<f64>);

/// The blurred shaft model over a window of profile samples `y`, `step` apart from `x0`.
struct Model<'a> {
    x0: f64,
    step: f64,
    sigma: f64,
    stripe_sign: f64,
    y: &'a [f64],
    /// The blur's kernel (normalised, `radius` samples each side).
    kernel: Vec<f64>,
    radius: usize,
    /// Cumulative cross-sections for the last two depths evaluated (a fit alternates
    /// between its current depth and a trial or Jacobian step): τ and F(u) = ∫₋₁ᵘ f on
    /// `SHAPE_NODES` intervals over [-1, 1], f normalised to 1 at the centre; and the
    /// slot used last.
    shapes: RefCell<([Shape; 2], usize)>,
    /// Scratch: the stripe's unit profile.
    stripe: RefCell<Vec<f64>>,
}

impl<'a> Model<'a> {
    fn new(x0: f64, step: f64, sigma: f64, stripe_sign: f64, y: &'a [f64]) -> Model<'a> {
        let radius = (4.0 * sigma / step).ceil() as usize;
        let s = sigma / step;
        let k: Vec<f64> = (0..=2 * radius)
            .map(|i| {
                let d = i as f64 - radius as f64;
                (-0.5 * d * d / (s * s)).exp()
            })
            .collect();
        let total: f64 = k.iter().sum();
        Model {
            x0,
            step,
            sigma,
            stripe_sign,
            y,
            kernel: k.into_iter().map(|v| v / total).collect(),
            radius,
            shapes: RefCell::new((
                [
                    (f64::NAN, vec![0.0; SHAPE_NODES + 1]),
                    (f64::NAN, vec![0.0; SHAPE_NODES + 1]),
                ],
                0,
            )),
            stripe: RefCell::new(vec![0.0; y.len()]),
        }
    }

    /// The blurred cylinder of unit amplitude with centre `c`, radius `r` (px) and depth
    /// `tau`, at the window's samples.
    fn cylinder(&self, c: f64, r: f64, tau: f64, out: &mut [f64]) {
        let step = self.step;
        let du = 2.0 / SHAPE_NODES as f64;
        let mut shapes = self.shapes.borrow_mut();
        let (slots, last) = &mut *shapes;
        // The other slot holds τ or is the one to replace.
        let slot = if slots[*last].0 == tau {
            *last
        } else {
            1 - *last
        };
        *last = slot;
        let shape = &mut slots[slot];
        if shape.0 != tau {
            let norm = 1.0 / (-(-tau).exp_m1());
            let f = |u: f64| -(-tau * (1.0 - u * u).max(0.0).sqrt()).exp_m1() * norm;
            let cum = &mut shape.1;
            let mut prev = f(-1.0);
            for j in 1..=SHAPE_NODES {
                let v = f(-1.0 + j as f64 * du);
                cum[j] = cum[j - 1] + 0.5 * (prev + v) * du;
                prev = v;
            }
            shape.0 = tau;
        }
        let cum = &shape.1;
        let big_f = |u: f64| -> f64 {
            let t = ((u.clamp(-1.0, 1.0) + 1.0) / du).min(SHAPE_NODES as f64);
            let j = (t.floor() as usize).min(SHAPE_NODES - 1);
            cum[j] + (cum[j + 1] - cum[j]) * (t - j as f64)
        };
        // Bin means of the unblurred shaft on the grid padded by the blur's reach (index
        // i is at x0 + (i - radius)·step), over the bins the shaft touches.
        let (n, radius) = (out.len(), self.radius);
        let index = |x: f64| ((x - self.x0) / step + radius as f64).round();
        let top = (n + 2 * radius - 1) as f64;
        let first = index(c - r).clamp(0.0, top) as usize;
        let last = index(c + r).clamp(0.0, top) as usize;
        let shaft: Vec<f64> = (first..=last)
            .map(|i| {
                let x = self.x0 + (i as f64 - radius as f64) * step;
                let (ua, ub) = ((x - 0.5 * step - c) / r, (x + 0.5 * step - c) / r);
                r * (big_f(ub) - big_f(ua)) / step
            })
            .collect();
        // Output k sees padded bins k..=k + 2·radius through the kernel.
        for (k, o) in out.iter_mut().enumerate() {
            let (lo, hi) = (k.max(first), (k + 2 * radius).min(last));
            *o = if lo > hi {
                0.0
            } else {
                self.kernel[lo - k..=hi - k]
                    .iter()
                    .zip(&shaft[lo - first..=hi - first])
                    .map(|(w, v)| w * v)
                    .sum()
            };
        }
    }

    /// The model for nonlinear parameters `p` (`PLAIN_PARAMS` or `STRIPE_PARAMS`) with its
    /// amplitudes fitted to `y` by least squares (neither negative), into `out`. Returns
    /// the cylinder's and the stripe's amplitudes.
    fn predict(&self, p: &[f64], out: &mut [f64]) -> [f64; 2] {
        let (c, r, tau) = (p[0], p[1].max(1e-3), p[2].exp());
        self.cylinder(c, r, tau, out);
        let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        let (uu, uy) = (dot(out, out), dot(out, self.y));
        let alone = |out: &mut [f64]| {
            let a = if uu > 0.0 { (uy / uu).max(0.0) } else { 0.0 };
            out.iter_mut().for_each(|o| *o *= a);
            [a, 0.0]
        };
        debug_assert!(p.len() == PLAIN_PARAMS || p.len() == STRIPE_PARAMS);
        if p.len() != STRIPE_PARAMS {
            return alone(out);
        }
        // The stripe: a Gaussian of σ s before the blur, of unit area-free height s/√var.
        let s = stripe_sigma(r, p[4]);
        let at = c + p[3] * r;
        let var = s * s + self.sigma * self.sigma;
        let height = self.stripe_sign * s / var.sqrt();
        let mut stripe = self.stripe.borrow_mut();
        for (k, v) in stripe.iter_mut().enumerate() {
            let d = self.x0 + k as f64 * self.step - at;
            *v = height * (-0.5 * d * d / var).exp();
        }
        let (uv, vv, vy) = (
            dot(out, &stripe),
            dot(&stripe, &stripe),
            dot(&stripe, self.y),
        );
        let det = uu * vv - uv * uv;
        if det <= 1e-12 * uu * vv {
            return alone(out);
        }
        let (a, h) = ((uy * vv - vy * uv) / det, (vy * uu - uy * uv) / det);
        if a < 0.0 || h < 0.0 {
            // One amplitude at its bound: the better of the two alone.
            let mut with_cylinder = out.to_vec();
            let ac = alone(&mut with_cylinder);
            let hs = if vv > 0.0 { (vy / vv).max(0.0) } else { 0.0 };
            let rss = |m: &[f64]| {
                m.iter()
                    .zip(self.y)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            };
            let stripe_only: Vec<f64> = stripe.iter().map(|v| hs * v).collect();
            return if rss(&with_cylinder) <= rss(&stripe_only) {
                out.copy_from_slice(&with_cylinder);
                ac
            } else {
                out.copy_from_slice(&stripe_only);
                [0.0, hs]
            };
        }
        for (o, v) in out.iter_mut().zip(stripe.iter()) {
            *o = a * *o + h * v;
        }
        [a, h]
    }
}

/// Least-squares fit of `model` to its profile from nonlinear parameters `p0` within the
/// box `lo`..`hi` (Levenberg-Marquardt, forward-difference Jacobian, amplitudes solved at
/// each evaluation). Returns the parameters and the residual sum of squares.
fn levenberg_marquardt(model: &Model, p0: &[f64], lo: &[f64], hi: &[f64]) -> (Vec<f64>, f64) {
    let (m, n, y) = (p0.len(), model.y.len(), model.y);
    let clamp = |p: &mut [f64]| {
        for ((v, &l), &h) in p.iter_mut().zip(lo).zip(hi) {
            *v = v.clamp(l, h);
        }
    };
    let mut p = p0.to_vec();
    clamp(&mut p);
    let mut f = vec![0.0; n];
    let rss_of = |f: &[f64]| f.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
    model.predict(&p, &mut f);
    let mut rss = rss_of(&f);
    let mut lambda = 1e-3;
    let mut jac = vec![0.0; m * n];
    let mut trial = vec![0.0; n];
    for _ in 0..LM_ITERATIONS {
        // Jacobian, one parameter at a time; the depth (index 2) last, so that the other
        // columns share the model's shape table.
        for j in (0..m).filter(|&j| j != 2).chain([2]) {
            let h = 1e-4 * (hi[j] - lo[j]).max(1e-6);
            let mut q = p.clone();
            // Step inward at the upper bound.
            q[j] = if p[j] + h <= hi[j] {
                p[j] + h
            } else {
                p[j] - h
            };
            let dh = q[j] - p[j];
            model.predict(&q, &mut trial);
            for i in 0..n {
                jac[j * n + i] = (trial[i] - f[i]) / dh;
            }
        }
        let mut jtj = vec![0.0; m * m];
        let mut jtr = vec![0.0; m];
        for a in 0..m {
            for b in a..m {
                let s: f64 = (0..n).map(|i| jac[a * n + i] * jac[b * n + i]).sum();
                jtj[a * m + b] = s;
                jtj[b * m + a] = s;
            }
            jtr[a] = (0..n).map(|i| jac[a * n + i] * (y[i] - f[i])).sum();
        }
        let mut improved = false;
        for _ in 0..10 {
            let mut a = jtj.clone();
            for d in 0..m {
                a[d * m + d] += lambda * jtj[d * m + d].max(1e-12);
            }
            let Some(delta) = solve(&mut a, &jtr, m) else {
                lambda *= 10.0;
                continue;
            };
            let mut q: Vec<f64> = p.iter().zip(&delta).map(|(a, b)| a + b).collect();
            clamp(&mut q);
            model.predict(&q, &mut trial);
            let r = rss_of(&trial);
            if r < rss {
                let gain = rss - r;
                p = q;
                std::mem::swap(&mut f, &mut trial);
                rss = r;
                lambda = (lambda * 0.3).max(1e-9);
                improved = gain > LM_MIN_GAIN * rss;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (p, rss)
}

/// Solves the symmetric positive system `a x = b` (`m`×`m`, row-major) by Cholesky;
/// `None` when it is not positive definite.
fn solve(a: &mut [f64], b: &[f64], m: usize) -> Option<Vec<f64>> {
    for j in 0..m {
        let mut d = a[j * m + j];
        for k in 0..j {
            d -= a[j * m + k] * a[j * m + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * m + j] = d;
        for i in j + 1..m {
            let mut s = a[i * m + j];
            for k in 0..j {
                s -= a[i * m + k] * a[j * m + k];
            }
            a[i * m + j] = s / d;
        }
    }
    let mut x = b.to_vec();
    for i in 0..m {
        for k in 0..i {
            x[i] -= a[i * m + k] * x[k];
        }
        x[i] /= a[i * m + i];
    }
    for i in (0..m).rev() {
        for k in i + 1..m {
            x[i] -= a[k * m + i] * x[k];
        }
        x[i] /= a[i * m + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile_model::cylinder_profile;

    /// A cylinder of width `w` (px), depth `tau` and amplitude `amp` under blur `sigma`
    /// (px), centred at `c`, minus a Gaussian stripe of amplitude `h`, offset `o` and σ `s`
    /// (before the blur), sampled like a measured profile over ±`half`.
    fn rendered(
        w: f64,
        tau: f64,
        amp: f64,
        sigma: f64,
        c: f64,
        stripe: [f64; 3],
        half: f64,
    ) -> Vec<f64> {
        let step = SAMPLE_STEP_PX as f64;
        let n = (2.0 * half / step).round() as usize + 1;
        let xs: Vec<f64> = (0..n)
            .map(|k| (-half + k as f64 * step - c) / sigma)
            .collect();
        // cylinder_profile is unnormalised: scale its centre to 1 - exp(-tau) of `amp`.
        let norm = amp / (1.0 - (-tau).exp());
        let [h, o, s] = stripe;
        let var = s * s + sigma * sigma;
        cylinder_profile(w / sigma, tau, &xs)
            .into_iter()
            .zip(&xs)
            .map(|(v, &x)| {
                let d = x * sigma - o;
                norm * (1.0 - (-tau).exp()) * v - h * s / var.sqrt() * (-0.5 * d * d / var).exp()
            })
            .collect()
    }

    #[test]
    fn the_plain_cylinder_recovers_a_rendered_width() {
        for (w, tau, sigma) in [(8.0, 3.0, 1.2), (14.0, 0.5, 1.5), (5.0, 8.0, 1.0)] {
            let y = rendered(w, tau, 0.4, sigma, 0.3, [0.0, 0.0, 1.0], w + 8.0);
            let (plain, _) = fit_profile(&y, w + 8.0, sigma, 0.0, 0.8 * w, -1.0, 0.0).unwrap();
            assert!((plain.width - w).abs() < 0.1, "w {w} tau {tau}: {plain:?}");
            assert!((plain.centre - 0.3).abs() < 0.05, "{plain:?}");
            assert!(plain.rms < 1e-3, "{plain:?}");
        }
    }

    #[test]
    fn a_stripe_that_cuts_the_edges_is_found_and_the_width_read_through_it() {
        // A dark 16 px shaft with a highlight a third of the way out from its centre, deep
        // enough to dip below half the contrast.
        let (w, sigma) = (16.0, 1.3);
        let y = rendered(w, 4.0, 0.5, sigma, 0.0, [0.6, 3.0, 0.9], w + 8.0);
        // The edge walk stops at the stripe: the edges say ~10 px.
        let (plain, striped) = fit_profile(&y, w + 8.0, sigma, -1.5, 10.0, -1.0, 0.0).unwrap();
        let striped = striped.unwrap();
        assert!(
            plain.rms > STRIPE_MIN_RMS_RATIO * striped.rms,
            "{plain:?} {striped:?}"
        );
        assert!((striped.width - w).abs() < 0.2, "{striped:?}");
        let [_, o, s] = striped.stripe.unwrap();
        assert!(
            (o - 3.0).abs() < 0.2 && (s - 0.9).abs() < 0.2,
            "{striped:?}"
        );
    }

    #[test]
    fn without_a_stripe_the_stripe_model_gains_little() {
        let (w, sigma) = (12.0, 1.2);
        let mut y = rendered(w, 2.0, 0.3, sigma, 0.0, [0.0, 0.0, 1.0], w + 8.0);
        // Skin-like noise, deterministic.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for v in &mut y {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v += 0.01 * (((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5);
        }
        let (plain, striped) = fit_profile(&y, w + 8.0, sigma, 0.0, w, -1.0, 0.0).unwrap();
        let striped = striped.unwrap();
        assert!(
            plain.rms < STRIPE_MIN_RMS_RATIO * striped.rms,
            "{plain:?} {striped:?}"
        );
        assert!((plain.width - w).abs() < 0.3, "{plain:?}");
        // Told the noise (uniform ±0.005: SD 0.0029 per sample), the stripe is not tried.
        let (_, striped) = fit_profile(&y, w + 8.0, sigma, 0.0, w, -1.0, 0.0029).unwrap();
        assert_eq!(striped, None);
    }

    #[test]
    fn the_model_cylinder_matches_the_direct_integral() {
        // profile_model::cylinder_profile sums the blurred cylinder over nodes directly; the
        // model bins the shaft on the fitted 0.5 px grid, which costs up to 0.6% of the
        // amplitude at the edges of a sharp hair under σ 1 (widths: the test above).
        for (w, tau, sigma, c) in [
            (6.0, 0.3, 0.8, 0.2),
            (15.0, 3.0, 1.6, -1.1),
            (3.0, 12.0, 1.0, 0.0),
        ] {
            let step = FIT_STRIDE as f64 * SAMPLE_STEP_PX as f64;
            let xs: Vec<f64> = (0..80).map(|k| -20.0 + k as f64 * step).collect();
            let model = Model::new(xs[0], step, sigma, -1.0, &xs);
            let mut got = vec![0.0; xs.len()];
            model.cylinder(c, 0.5 * w, tau, &mut got);
            let u: Vec<f64> = xs.iter().map(|x| (x - c) / sigma).collect();
            let norm = 1.0 / (1.0 - (-tau).exp());
            for ((g, e), x) in got
                .iter()
                .zip(cylinder_profile(w / sigma, tau, &u))
                .zip(&xs)
            {
                assert!(
                    (g - norm * e).abs() < 1e-2,
                    "w {w} tau {tau} at {x}: {g} vs {}",
                    norm * e
                );
            }
        }
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        let mut a = vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        let got = solve(&mut a, &b, 3).unwrap();
        for (g, e) in got.iter().zip(x) {
            assert!((g - e).abs() < 1e-12);
        }
        assert!(solve(&mut [1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
    }
}
