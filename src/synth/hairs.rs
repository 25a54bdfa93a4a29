//! Hairs: geometry (follicular units, curves, touching pairs), truth extraction and
//! rendering with a pixel-integrated cylinder-absorption profile.

use std::f64::consts::TAU;

use super::canvas::{arc_lengths, integrate_curve, lum, Canvas, NearField, Noise1};
use super::rng::Rng;
use super::{Look, CURL_RADIUS_UM};
use crate::settings::HairClass;
use crate::truth::TruthHair;

/// A follicular opening (with or without hairs).
#[derive(Clone, Debug)]
pub(crate) struct Opening {
    pub c: [f64; 2],
    pub radius: f64,
    pub has_hair: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Pigmented,
    Vellus,
    White,
}

#[derive(Clone, Debug)]
pub(crate) struct Highlight {
    /// Centre of the stripe, as a fraction of the local radius (signed).
    offset: f64,
    /// Width (sd) of the stripe, px.
    sigma: f64,
    /// Added linear intensity at the stripe's peak.
    amp: f64,
    along: Noise1,
}

#[derive(Clone, Debug)]
pub(crate) struct Medulla {
    /// Radius of the core, as a fraction of the local radius.
    radius: f64,
    /// Share of the absorption removed inside the core.
    strength: f64,
    along: Noise1,
    bias: f64,
}

/// One hair: a centreline sampled every 0.5 px from the root, and its optics.
#[derive(Clone, Debug)]
pub(crate) struct Hair {
    pub pts: Vec<[f64; 2]>,
    pub cum: Vec<f64>,
    pub length: f64,
    /// Nominal width (px) before taper and slow variation.
    pub w0: f64,
    taper: f64,
    taper_start: f64,
    wvar: Noise1,
    wvar_amp: f64,
    /// Absorption per px of path, per channel.
    mu: [f64; 3],
    /// Colour the hair scatters back (linear RGB): dark for pigmented hairs, bright for white.
    colour: [f64; 3],
    pub light: bool,
    pigment: Noise1,
    pigment_amp: f64,
    highlight: Option<Highlight>,
    medulla: Option<Medulla>,
    opening: Option<usize>,
    /// Near the root the shaft is seen through the skin: its contrast rises from
    /// `root_min` to 1 over the first `root_fade` px.
    root_fade: f64,
    root_min: f64,
}

impl Hair {
    /// True shaft width (px) at arc length `s`.
    pub fn width(&self, s: f64) -> f64 {
        let s = s.clamp(0.0, self.length);
        let u = s / self.length.max(1e-9);
        let mut w = self.w0 * (1.0 + self.wvar_amp * self.wvar.at(s));
        if u > self.taper_start && self.taper > 0.0 {
            let f = ((u - self.taper_start) / (1.0 - self.taper_start)).clamp(0.0, 1.0);
            w *= 1.0 - self.taper * f * f * (3.0 - 2.0 * f);
        }
        w
    }

    fn max_width(&self) -> f64 {
        self.w0 * (1.0 + self.wvar_amp)
    }

    fn bbox(&self) -> [f64; 4] {
        let mut b = [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for p in &self.pts {
            b[0] = b[0].min(p[0]);
            b[1] = b[1].max(p[0]);
            b[2] = b[2].min(p[1]);
            b[3] = b[3].max(p[1]);
        }
        b
    }
}

pub(crate) struct Scene {
    pub hairs: Vec<Hair>,
    pub openings: Vec<Opening>,
}

/// Distance from a point to the frame rectangle (0 inside).
fn dist_to_frame(p: [f64; 2], w: usize, h: usize) -> f64 {
    let dx = (-0.5 - p[0]).max(p[0] - (w as f64 - 0.5)).max(0.0);
    let dy = (-0.5 - p[1]).max(p[1] - (h as f64 - 0.5)).max(0.0);
    (dx * dx + dy * dy).sqrt()
}

fn width_um(r: &mut Rng, look: &Look) -> f64 {
    let terminal = 1.0 - look.thin_share - look.intermediate_share;
    match r.pick(&[look.thin_share, look.intermediate_share, terminal.max(0.0)]) {
        0 => r.range(10.0, 30.0),
        1 => r.range(30.0, 60.0),
        _ => r.gauss(75.0, 10.0).clamp(60.0, 100.0),
    }
}

/// Optics of a hair of width `w_um`.
fn optics(r: &mut Rng, look: &Look, w_um: f64) -> (Kind, [f64; 3], [f64; 3]) {
    let thin = w_um < 30.0;
    let kind = if r.chance(look.white_share) {
        Kind::White
    } else if thin && r.chance(look.hypo_share) {
        Kind::Vellus
    } else {
        Kind::Pigmented
    };
    let s = look.um_per_px;
    let (mu_um, ratios, mut colour) = match kind {
        Kind::Pigmented => {
            // The person's hair colour, varied per hair.
            let hc = &look.hair;
            let c = hc.colour * r.range(0.8, 1.25);
            (
                hc.mu_um * r.range(0.75, 1.25),
                [
                    1.0,
                    hc.mu_ratio[0] * r.range(0.95, 1.05),
                    hc.mu_ratio[1] * r.range(0.95, 1.05),
                ],
                [
                    c,
                    c * hc.hue[0] * r.range(0.93, 1.07),
                    c * hc.hue[1] * r.range(0.9, 1.1),
                ],
            )
        }
        Kind::Vellus => {
            let target = look.skin_lum * r.range(0.45, 0.7);
            let t = [1.0, r.range(0.55, 0.7), r.range(0.25, 0.4)];
            let l = lum(t);
            (
                r.range(0.008, 0.02) * look.vellus_contrast,
                [1.0, r.range(1.1, 1.3), r.range(1.3, 1.6)],
                [t[0] * target / l, t[1] * target / l, t[2] * target / l],
            )
        }
        Kind::White => {
            let target = r
                .range(0.45, 0.85)
                .max(look.skin_lum * r.range(1.35, 1.6))
                .min(0.92);
            let t = [1.0, r.range(0.93, 0.98), r.range(0.78, 0.9)];
            let l = lum(t);
            (
                r.range(0.008, 0.02),
                [1.0, 1.0, 1.02],
                [t[0] * target / l, t[1] * target / l, t[2] * target / l],
            )
        }
    };
    // Keep every hair clearly darker or clearly lighter than the skin, so `light` is
    // unambiguous.
    let q = lum(colour) / look.skin_lum;
    if q > 0.75 && q < 1.3 {
        let f = if kind == Kind::White {
            1.3 / q
        } else {
            0.7 / q
        };
        colour.iter_mut().for_each(|c| *c = (*c * f).min(0.95));
    }
    let mu = [
        mu_um * s * ratios[0],
        mu_um * s * ratios[1],
        mu_um * s * ratios[2],
    ];
    (kind, mu, colour)
}

#[allow(clippy::too_many_arguments)]
fn make_hair(
    r: &mut Rng,
    look: &Look,
    pts: Vec<[f64; 2]>,
    w_um: f64,
    taper: f64,
    taper_start: f64,
    wvar_amp: f64,
    opening: Option<usize>,
) -> Hair {
    let cum = arc_lengths(&pts);
    let length = *cum.last().unwrap_or(&0.0);
    let w0 = look.px(w_um);
    let (kind, mu, colour) = optics(r, look, w_um);
    let light = lum(colour) > look.skin_lum;
    let wvar = Noise1::new(length, look.px(r.range(600.0, 1500.0)), r);
    let pigment = Noise1::new(length, look.px(r.range(200.0, 800.0)), r);
    let pigment_amp = r.range(0.03, 0.12);
    let highlight =
        (w0 >= 4.0 && kind != Kind::Vellus && r.chance(look.highlight_prob)).then(|| {
            let sign = if r.chance(0.5) { 1.0 } else { -1.0 };
            Highlight {
                offset: sign * r.range(0.2, 0.55),
                sigma: (r.range(0.08, 0.18) * w0 / 2.0).max(0.35),
                amp: r.range(0.04, 0.2),
                along: Noise1::new(length, r.range(15.0, 80.0), r),
            }
        });
    let medulla =
        (w_um >= 50.0 && kind != Kind::Vellus && r.chance(look.medulla_prob)).then(|| Medulla {
            radius: r.range(0.15, 0.35),
            strength: r.range(0.4, 0.9),
            along: Noise1::new(length, r.range(10.0, 60.0), r),
            bias: r.range(-0.3, 0.6),
        });
    let root_fade = look.px(r.range(40.0, 160.0));
    let root_min = r.range(0.35, 0.8);
    Hair {
        pts,
        cum,
        length,
        w0,
        taper,
        taper_start,
        wvar,
        wvar_amp,
        mu,
        colour,
        light,
        pigment,
        pigment_amp,
        highlight,
        medulla,
        opening,
        root_fade,
        root_min,
    }
}

/// A hair leaving `root` heading `theta`.
fn grow(
    r: &mut Rng,
    look: &Look,
    root: [f64; 2],
    theta: f64,
    opening: Option<usize>,
) -> Option<Hair> {
    let w_um = width_um(r, look);
    let thin = w_um < 30.0;
    let len_mm = if thin {
        r.range(0.4, 3.0)
    } else {
        r.range(0.4, 6.0)
    };
    let length = look.px(len_mm * 1000.0);
    let per_mm = look.um_per_px / 1000.0; // (1/mm) → (1/px)
    let mut kappa0 = r.gauss(0.0, 0.15) * per_mm;
    let mut wiggle = r.range(0.1, 0.6) * per_mm;
    let cell = look.px(r.range(400.0, 1200.0));
    // Curly hairs (drawn only when asked for, so other suites keep their random draws).
    if look.curly_share > 0.0 && r.chance(look.curly_share) {
        let radius = look.px(r.range(CURL_RADIUS_UM.0, CURL_RADIUS_UM.1));
        kappa0 = if r.chance(0.5) { 1.0 } else { -1.0 } / radius;
        wiggle *= 0.2;
    }
    let kmax = 1.0 / look.px(200.0);
    let (taper, taper_start) = if thin {
        (r.range(0.1, 0.35), r.range(0.55, 0.85))
    } else if r.chance(0.3) {
        (r.range(0.03, 0.12), r.range(0.6, 0.9))
    } else {
        (0.0, 1.0)
    };
    // Hairs that cannot reach the frame are not grown.
    if dist_to_frame(root, look.w, look.h) > length + look.px(w_um) + 2.0 {
        return None;
    }
    let pts = integrate_curve(root, theta, length, 0.5, kappa0, wiggle, cell, kmax, r);
    Some(make_hair(
        r,
        look,
        pts,
        w_um,
        taper,
        taper_start,
        0.02,
        opening,
    ))
}

/// A hair lying along `base`, touching it (edge gap `gap` px) on side `side`, over
/// `[0, frac]` of its length, from the same opening.
fn companion(
    r: &mut Rng,
    look: &Look,
    base: &Hair,
    side: f64,
    gap: f64,
    frac: f64,
) -> Option<Hair> {
    let w_um = width_um(r, look);
    let w2 = look.px(w_um);
    let n = base.pts.len();
    let end = ((n as f64 - 1.0) * frac) as usize;
    if end < 8 {
        return None;
    }
    let mut pts = Vec::with_capacity(end + 1);
    for i in 0..=end {
        let a = base.pts[i.saturating_sub(1)];
        let b = base.pts[(i + 1).min(n - 1)];
        let (tx, ty) = (b[0] - a[0], b[1] - a[1]);
        let l = (tx * tx + ty * ty).sqrt().max(1e-9);
        let (nx, ny) = (-ty / l, tx / l);
        let off = side * (base.width(base.cum[i]) / 2.0 + w2 / 2.0 + gap);
        pts.push([base.pts[i][0] + off * nx, base.pts[i][1] + off * ny]);
    }
    Some(make_hair(r, look, pts, w_um, 0.0, 1.0, 0.0, base.opening))
}

/// Draws the follicular units, their hairs and the touching pairs.
pub(crate) fn generate(r: &mut Rng, look: &Look) -> Scene {
    let (w, h) = (look.w as f64, look.h as f64);
    // Hairs are up to 6 mm long: units up to 6 mm outside the frame can reach into it.
    let margin = look.px(6000.0);
    let mm = look.um_per_px / 1000.0;
    let area_mm2 = (w + 2.0 * margin) * (h + 2.0 * margin) * mm * mm;
    let units = r.about(look.unit_density * area_mm2).min(5000);
    let theta_d = r.range(0.0, TAU);
    let mut hairs: Vec<Hair> = Vec::new();
    let mut openings: Vec<Opening> = Vec::new();
    for _ in 0..units {
        let c = [r.range(-margin, w + margin), r.range(-margin, h + margin)];
        let nh = 1 + r.pick(&[0.45, 0.4, 0.15]);
        let theta = if r.chance(look.random_dir_share) {
            r.range(0.0, TAU)
        } else {
            theta_d + r.gauss(0.0, look.dir_spread)
        };
        let oi = openings.len();
        let mut max_w: f64 = 0.0;
        for j in 0..nh {
            let th = if j == 0 {
                theta
            } else {
                theta + r.gauss(0.0, 0.2)
            };
            let root = [c[0] + r.gauss(0.0, 0.6), c[1] + r.gauss(0.0, 0.6)];
            if let Some(hair) = grow(r, look, root, th, Some(oi)) {
                max_w = max_w.max(hair.w0);
                hairs.push(hair);
            }
        }
        let radius = (max_w / 2.0) * r.range(1.4, 2.1) + r.range(1.0, 3.0);
        if max_w > 0.0 {
            openings.push(Opening {
                c,
                radius,
                has_hair: true,
            });
        } else {
            // Keep indices of the hairs consistent: an opening is pushed only when used.
            debug_assert!(hairs.iter().all(|h| h.opening != Some(oi)));
        }
    }
    // Touching parallel pairs.
    let candidates: Vec<usize> = (0..hairs.len())
        .filter(|&i| {
            hairs[i].length > 40.0
                && dist_to_frame(hairs[i].pts[0], look.w, look.h) < hairs[i].length * 0.5
        })
        .collect();
    let mut pairs: Vec<(usize, Hair)> = Vec::new();
    for _ in 0..look.pairs {
        if candidates.is_empty() {
            break;
        }
        let i = candidates[r.count(0, candidates.len() - 1)];
        let side = if r.chance(0.5) { 1.0 } else { -1.0 };
        let gap = r.range(0.0, 1.0);
        let frac = r.range(0.5, 1.0);
        if let Some(c) = companion(r, look, &hairs[i], side, gap, frac) {
            if let Some(o) = hairs[i].opening {
                let need = c.w0 + hairs[i].w0 / 2.0 + gap + 1.0;
                openings[o].radius = openings[o].radius.max(need);
            }
            pairs.push((i, c));
        }
    }
    // Insert each companion right after its base (draw order = list order).
    pairs.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (i, c) in pairs {
        hairs.insert(i + 1, c);
    }
    // Empty openings (no hair), mostly inside the frame.
    let in_frame_units = openings
        .iter()
        .filter(|o| dist_to_frame(o.c, look.w, look.h) == 0.0)
        .count()
        .max(3);
    let empties = r.about(in_frame_units as f64 * look.empty_opening_share);
    for _ in 0..empties {
        let c = [r.range(0.0, w), r.range(0.0, h)];
        let radius = look.px(r.range(25.0, 60.0)) + r.range(1.0, 2.5);
        openings.push(Opening {
            c,
            radius,
            has_hair: false,
        });
    }
    Scene { hairs, openings }
}

/// Composites every hair onto the canvas, in list order (later hairs lie on top).
pub(crate) fn render(canvas: &mut Canvas, field: &mut NearField, look: &Look, hairs: &[Hair]) {
    let (w, h) = (look.w as f64, look.h as f64);
    for hair in hairs {
        let reach = hair.max_width() / 2.0 + 1.5;
        let b = hair.bbox();
        if b[1] + reach < -0.5
            || b[0] - reach > w - 0.5
            || b[3] + reach < -0.5
            || b[2] - reach > h - 0.5
        {
            continue;
        }
        // Chords of at most 2 px between the 0.5 px samples.
        let stride = ((reach / 5.0).round() as usize).clamp(1, 4);
        let n = hair.pts.len();
        let mut rp = Vec::with_capacity(n / stride + 2);
        let mut rc = Vec::with_capacity(n / stride + 2);
        let mut i = 0;
        while i < n {
            rp.push(hair.pts[i]);
            rc.push(hair.cum[i]);
            if i == n - 1 {
                break;
            }
            i = (i + stride).min(n - 1);
        }
        field.splat(&rp, &rc, reach);
        let len = hair.length;
        field.each(|idx, near| {
            let d0 = near.d as f64;
            let s0 = near.s as f64;
            let r0 = hair.width(s0) / 2.0;
            if d0.abs() > r0 + 0.75 || s0 < -0.75 || s0 > len + 0.75 {
                return;
            }
            let (tx, ty) = (near.tx as f64, near.ty as f64);
            let (nx, ny) = (-ty, tx);
            let edge = (d0.abs() - r0).abs() < 1.0 || r0 < 2.5 || s0 < 1.0 || s0 > len - 1.0;
            let ns = if edge { 4 } else { 2 };
            let pig = 1.0 + hair.pigment_amp * hair.pigment.at(s0);
            let med = hair.medulla.as_ref().map(|m| {
                let on = ((m.along.at(s0) + m.bias) / 0.3 + 0.5).clamp(0.0, 1.0);
                (m.radius * r0, m.strength * on)
            });
            let hl = hair
                .highlight
                .as_ref()
                .filter(|_| look.highlights)
                .map(|hl| {
                    let on = (0.6 + 0.6 * hl.along.at(s0)).clamp(0.0, 1.0);
                    (hl.offset * r0, hl.sigma, hl.amp * on)
                });
            let mut tsum = [0.0f64; 3];
            let mut hsum = 0.0;
            let inv = 1.0 / ns as f64;
            for j in 0..ns {
                let oy = (j as f64 + 0.5) * inv - 0.5;
                for i in 0..ns {
                    let ox = (i as f64 + 0.5) * inv - 0.5;
                    let ds = d0 + ox * nx + oy * ny;
                    let ss = s0 + ox * tx + oy * ty;
                    if ss < 0.0 || ss > len || ds.abs() >= r0 {
                        tsum[0] += 1.0;
                        tsum[1] += 1.0;
                        tsum[2] += 1.0;
                        continue;
                    }
                    let mut chord = 2.0 * (r0 * r0 - ds * ds).sqrt();
                    if let Some((rm, st)) = med {
                        if ds.abs() < rm {
                            chord -= st * 2.0 * (rm * rm - ds * ds).sqrt();
                        }
                    }
                    let path = chord * pig;
                    tsum[0] += (-hair.mu[0] * path).exp();
                    tsum[1] += (-hair.mu[1] * path).exp();
                    tsum[2] += (-hair.mu[2] * path).exp();
                    if let Some((off, sg, amp)) = hl {
                        let z = (ds - off) / sg;
                        hsum += amp * (-0.5 * z * z).exp();
                    }
                }
            }
            let k = inv * inv;
            let cf = if s0 < hair.root_fade {
                let u = (s0 / hair.root_fade).clamp(0.0, 1.0);
                hair.root_min + (1.0 - hair.root_min) * u * u * (3.0 - 2.0 * u)
            } else {
                1.0
            };
            let p = &mut canvas.px[idx];
            for c in 0..3 {
                let t = 1.0 - cf * (1.0 - tsum[c] * k);
                p[c] = (p[c] as f64 * t + hair.colour[c] * (1.0 - t) + cf * hsum * k * 0.95) as f32;
            }
        });
    }
    field.clear();
}

/// Clips the segment `a → b` to the frame; returns the parameter range inside.
fn clip_segment(a: [f64; 2], b: [f64; 2], w: f64, h: f64) -> Option<(f64, f64)> {
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    let d = [b[0] - a[0], b[1] - a[1]];
    let lo = [-0.5, -0.5];
    let hi = [w - 0.5, h - 0.5];
    for k in 0..2 {
        if d[k].abs() < 1e-12 {
            if a[k] < lo[k] || a[k] > hi[k] {
                return None;
            }
        } else {
            let mut ta = (lo[k] - a[k]) / d[k];
            let mut tb = (hi[k] - a[k]) / d[k];
            if ta > tb {
                std::mem::swap(&mut ta, &mut tb);
            }
            t0 = t0.max(ta);
            t1 = t1.min(tb);
            if t0 > t1 {
                return None;
            }
        }
    }
    Some((t0, t1))
}

/// The parts of a polyline inside the frame, as (point, arc length) runs.
fn visible_runs(pts: &[[f64; 2]], cum: &[f64], w: f64, h: f64) -> Vec<Vec<([f64; 2], f64)>> {
    let mut runs = Vec::new();
    let mut cur: Vec<([f64; 2], f64)> = Vec::new();
    for k in 0..pts.len().saturating_sub(1) {
        let (a, b) = (pts[k], pts[k + 1]);
        let seg = cum[k + 1] - cum[k];
        let lerp = |t: f64| {
            (
                [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t],
                cum[k] + seg * t,
            )
        };
        match clip_segment(a, b, w, h) {
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
            Some((t0, t1)) => {
                if t0 > 0.0 && !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
                if cur.is_empty() {
                    cur.push(lerp(t0));
                }
                cur.push(lerp(t1));
                if t1 < 1.0 {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// Ground truth of every visible hair part at least 5 px long.
pub(crate) fn truth(look: &Look, hairs: &[Hair]) -> Vec<TruthHair> {
    let (w, h) = (look.w as f64, look.h as f64);
    let mut out = Vec::new();
    let mut owner = Vec::new();
    for (hi, hair) in hairs.iter().enumerate() {
        for run in visible_runs(&hair.pts, &hair.cum, w, h) {
            let (sa, sb) = (run[0].1, run[run.len() - 1].1);
            let len = sb - sa;
            if len < 5.0 {
                continue;
            }
            // Mean true width over [sa, sb] (trapezoid, ≤ 0.25 px steps).
            let m = (len / 0.25).ceil() as usize;
            let step = len / m as f64;
            let mut acc = 0.5 * (hair.width(sa) + hair.width(sb));
            for i in 1..m {
                acc += hair.width(sa + i as f64 * step);
            }
            let width_px = acc / m as f64;
            // Resample the run about every 1 px (exact ends).
            let k = len.ceil().max(1.0) as usize;
            let mut points = Vec::with_capacity(k + 1);
            let mut j = 0;
            for i in 0..=k {
                let s = if i == k {
                    sb
                } else {
                    sa + len * i as f64 / k as f64
                };
                while j + 2 < run.len() && run[j + 1].1 < s {
                    j += 1;
                }
                let (p, q) = (run[j], run[(j + 1).min(run.len() - 1)]);
                let t = if q.1 > p.1 {
                    ((s - p.1) / (q.1 - p.1)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                points.push([
                    p.0[0] + (q.0[0] - p.0[0]) * t,
                    p.0[1] + (q.0[1] - p.0[1]) * t,
                ]);
            }
            let width_um = width_px * look.um_per_px;
            out.push(TruthHair {
                id: out.len(),
                points,
                width_um,
                width_px,
                length_px: len,
                class: HairClass::of_width_um(width_um, 30.0, 60.0),
                light: hair.light,
                hidden: Vec::new(),
            });
            owner.push(hi);
        }
    }
    mark_hidden(&mut out, &owner, hairs, look);
    out
}

/// Grid cell (px) of the shaft samples searched by [`mark_hidden`].
const HIDDEN_CELL_PX: f64 = 8.0;

/// Marks the truth points whose centre lies inside another hair's shaft: under a hair
/// drawn later (occluded), or over one of the same polarity drawn earlier (composited
/// in nearly the same colour). Such parts cannot be seen apart from the other hair.
fn mark_hidden(out: &mut [TruthHair], owner: &[usize], hairs: &[Hair], look: &Look) {
    let rmax = hairs
        .iter()
        .map(|h| h.max_width() / 2.0)
        .fold(0.0, f64::max);
    let (gw, gh) = (
        (look.w as f64 / HIDDEN_CELL_PX).ceil() as usize + 1,
        (look.h as f64 / HIDDEN_CELL_PX).ceil() as usize + 1,
    );
    let cell = |v: f64, n: usize| ((v / HIDDEN_CELL_PX).floor().max(0.0) as usize).min(n - 1);
    // Shaft samples (hair, x, y, radius) in the frame, bucketed by cell.
    let mut grid: Vec<Vec<(usize, [f64; 2], f64)>> = vec![Vec::new(); gw * gh];
    for (hj, hair) in hairs.iter().enumerate() {
        for (p, &s) in hair.pts.iter().zip(&hair.cum) {
            let r = hair.width(s) / 2.0;
            if p[0] < -r || p[1] < -r || p[0] > look.w as f64 + r || p[1] > look.h as f64 + r {
                continue;
            }
            grid[cell(p[1], gh) * gw + cell(p[0], gw)].push((hj, *p, r));
        }
    }
    let reach = (rmax / HIDDEN_CELL_PX).ceil() as usize + 1;
    for (t, &hi) in out.iter_mut().zip(owner) {
        let hides = |hj: usize| hj != hi && (hj > hi || hairs[hj].light == hairs[hi].light);
        let mask: Vec<bool> = t
            .points
            .iter()
            .map(|p| {
                let (cx, cy) = (cell(p[0], gw), cell(p[1], gh));
                (cy.saturating_sub(reach)..=(cy + reach).min(gh - 1)).any(|y| {
                    (cx.saturating_sub(reach)..=(cx + reach).min(gw - 1)).any(|x| {
                        grid[y * gw + x].iter().any(|&(hj, q, r)| {
                            hides(hj) && (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) < r * r
                        })
                    })
                })
            })
            .collect();
        t.hidden
            .extend(crate::enhance::true_runs(&mask).map(|(a, b)| [a, b]));
    }
}

#[cfg(test)]
pub(crate) fn clip_runs_for_test(pts: &[[f64; 2]], w: f64, h: f64) -> Vec<Vec<([f64; 2], f64)>> {
    visible_runs(pts, &arc_lengths(pts), w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Look, PhantomOptions};

    /// An opaque black hair on white: the darkened area equals width × length, so the
    /// rendered geometry (supersampled coverage) agrees with the truth.
    #[test]
    fn synth_opaque_hair_area_matches_truth() {
        let opts = PhantomOptions {
            width: 200,
            height: 160,
            um_per_px: Some(5.0),
            ..Default::default()
        };
        let look = Look::sample(1, &opts);
        let mut r = Rng::new(3);
        for (w_um, curve) in [(36.5, 0.0), (12.0, 0.004), (81.0, -0.006)] {
            let pts = integrate_curve([30.0, 40.0], 0.4, 120.0, 0.5, curve, 0.0, 50.0, 1.0, &mut r);
            let mut hair = make_hair(&mut r, &look, pts, w_um, 0.0, 1.0, 0.0, None);
            hair.mu = [1e3; 3];
            hair.colour = [0.0; 3];
            hair.highlight = None;
            hair.medulla = None;
            hair.root_fade = 0.0;
            let mut c = Canvas::new(200, 160);
            c.px.iter_mut().for_each(|p| *p = [1.0; 3]);
            let mut field = NearField::new(200, 160);
            render(&mut c, &mut field, &look, std::slice::from_ref(&hair));
            let area: f64 = c.px.iter().map(|p| 1.0 - p[0] as f64).sum();
            let t = truth(&look, std::slice::from_ref(&hair));
            assert_eq!(t.len(), 1);
            let expect = t[0].width_px * t[0].length_px;
            eprintln!("w {w_um}: area {area:.3} vs {expect:.3}");
            assert!((t[0].width_px - w_um / 5.0).abs() < 1e-9);
            assert!(
                (area - expect).abs() < 0.004 * expect + 0.5,
                "w {w_um}: area {area:.2} vs {expect:.2}"
            );
        }
    }
}
