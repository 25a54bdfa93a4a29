//! The skin and everything on it that is not a hair: mottled tone, fine texture and pores,
//! furrows, vessels, follicular openings, yellow and black dots, scales, bubbles,
//! immersion-fluid glitter, glare and vignetting.

use std::f64::consts::{PI, TAU};

use super::canvas::{arc_lengths, integrate_curve, lum, Canvas, NearField, Noise1, Noise2};
use super::hairs::Opening;
use super::rng::Rng;
use super::Look;

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Base tone with low-frequency mottling, blotchy redness, fine texture and pores.
pub(crate) fn paint_skin(c: &mut Canvas, r: &mut Rng, look: &Look) {
    let (w, h) = (c.w, c.h);
    let big = w.max(h) as f64;
    let m = look.mottle as f32;
    let lum_oct: Vec<(Noise2, f32)> = [(2.5, 0.08), (5.0, 0.055), (10.0, 0.035), (20.0, 0.02)]
        .iter()
        .map(|&(div, amp)| (Noise2::new(r, w, h, big / div), amp * m))
        .collect();
    let mut red_oct: Vec<(Noise2, f32)> = [(3.0, 0.7), (7.0, 0.4)]
        .iter()
        .map(|&(div, amp)| (Noise2::new(r, w, h, big / div), amp))
        .collect();
    // Mid-frequency reddish blotches (capillary blush) at 40–150 µm.
    let blush = r.range(0.2, 0.5) as f32;
    for um in [150.0, 70.0, 40.0] {
        let cell = look.px(um).max(4.0);
        red_oct.push((Noise2::new(r, w, h, cell), blush));
    }
    let tex_cell = r.range(2.0, 3.5);
    let fine: Vec<(Noise2, f32)> = vec![
        (Noise2::new(r, w, h, tex_cell), 0.03 * m.max(0.7)),
        (Noise2::new(r, w, h, 1.3), 0.015),
        (Noise2::new(r, w, h, look.px(60.0).max(5.0)), 0.03),
        (Noise2::new(r, w, h, look.px(150.0).max(10.0)), 0.03),
    ];
    let red_amp = (0.06 + 0.12 * look.redness) as f32;
    let sk = [
        look.skin[0] as f32,
        look.skin[1] as f32,
        look.skin[2] as f32,
    ];
    let mut a = vec![0.0f32; w];
    let mut b = vec![0.0f32; w];
    for y in 0..h {
        a.iter_mut().for_each(|v| *v = 0.0);
        b.iter_mut().for_each(|v| *v = 0.0);
        for (n, amp) in lum_oct.iter().chain(fine.iter()) {
            n.add_row(y, *amp, &mut a);
        }
        for (n, amp) in &red_oct {
            n.add_row(y, *amp, &mut b);
        }
        let row = &mut c.px[y * w..(y + 1) * w];
        for x in 0..w {
            let l = 1.0 + a[x];
            let rd = b[x].clamp(-1.0, 1.0) * red_amp;
            row[x] = [
                sk[0] * l * (1.0 + 0.3 * rd),
                sk[1] * l * (1.0 - rd),
                sk[2] * l * (1.0 - 0.8 * rd),
            ];
        }
    }
    paint_network(c, r, look);
    // Pores and pits: tiny soft darker dots.
    let pores = r.about((w * h) as f64 / 900.0);
    for _ in 0..pores {
        let (cx, cy) = (r.range(0.0, w as f64), r.range(0.0, h as f64));
        let rad = r.range(0.7, 2.2);
        let depth = r.range(0.03, 0.10) as f32;
        c.disc(
            cx,
            cy,
            rad * 2.0,
            |d| (-(d * d) / (2.0 * rad * rad * 0.5)).exp(),
            |p, g| {
                let f = 1.0 - depth * g as f32;
                p[0] *= f;
                p[1] *= f * 0.99;
                p[2] *= f * 0.99;
            },
        );
    }
}

/// Honeycomb pigment network: a faint brownish net of rounded cells (strong on dark
/// skin, faint on light skin), patchy.
fn paint_network(c: &mut Canvas, r: &mut Rng, look: &Look) {
    let strength = (0.02 + 0.16 * look.tone) * r.range(0.3, 1.0);
    let cell = look.px(r.range(90.0, 180.0)).max(6.0);
    let (w, h) = (c.w, c.h);
    let gw = (w as f64 / cell).ceil() as usize + 2;
    let gh = (h as f64 / cell).ceil() as usize + 2;
    let pts: Vec<[f64; 2]> = (0..gw * gh)
        .map(|i| {
            let (gx, gy) = ((i % gw) as f64, (i / gw) as f64);
            [
                (gx - 1.0 + r.range(0.1, 0.9)) * cell,
                (gy - 1.0 + r.range(0.1, 0.9)) * cell,
            ]
        })
        .collect();
    let patch_cell = cell * r.range(3.0, 8.0);
    let patch = Noise2::new(r, w, h, patch_cell);
    let line = cell * r.range(0.1, 0.2);
    for y in 0..h {
        let gy = (y as f64 / cell) as usize + 1;
        for x in 0..w {
            let gx = (x as f64 / cell) as usize + 1;
            let (mut f1, mut f2) = (f64::INFINITY, f64::INFINITY);
            for j in gy - 1..=(gy + 1).min(gh - 1) {
                for i in gx - 1..=(gx + 1).min(gw - 1) {
                    let p = pts[j * gw + i];
                    let d = (x as f64 - p[0]).powi(2) + (y as f64 - p[1]).powi(2);
                    if d < f1 {
                        f2 = f1;
                        f1 = d;
                    } else if d < f2 {
                        f2 = d;
                    }
                }
            }
            let z = (f2.sqrt() - f1.sqrt()) / line;
            let g =
                (-0.5 * z * z).exp() * (0.5 + 0.8 * patch.at(x as f64, y as f64)).clamp(0.0, 1.0);
            let a = (strength * g) as f32;
            let p = &mut c.px[y * w + x];
            p[0] *= 1.0 - 0.8 * a;
            p[1] *= 1.0 - a;
            p[2] *= 1.0 - 1.1 * a;
        }
    }
}

/// A long gently curved line crossing the frame near direction `theta`.
fn crossing_curve(r: &mut Rng, look: &Look, theta: f64) -> Vec<[f64; 2]> {
    let (w, h) = (look.w as f64, look.h as f64);
    let diag = (w * w + h * h).sqrt();
    let c = [r.range(0.0, w), r.range(0.0, h)];
    let start = [
        c[0] - diag * 0.75 * theta.cos(),
        c[1] - diag * 0.75 * theta.sin(),
    ];
    let k0 = r.gauss(0.0, 0.3) / diag;
    integrate_curve(
        start,
        theta,
        diag * 1.5,
        3.0,
        k0,
        1.0 / diag,
        diag / 4.0,
        4.0 / diag,
        r,
    )
}

/// Skin furrows: soft, wide, low-contrast valleys in a couple of dominant directions, and
/// (realistic, hard) a few finer skin lines.
pub(crate) fn paint_furrows(c: &mut Canvas, field: &mut NearField, r: &mut Rng, look: &Look) {
    let dirs = [r.range(0.0, PI), 0.0];
    let second = dirs[0] + r.range(PI / 4.0, PI / 2.0) * if r.chance(0.5) { 1.0 } else { -1.0 };
    let total = look.furrows + look.fine_lines;
    for k in 0..total {
        let fine = k >= look.furrows;
        let theta = if r.chance(0.6) { dirs[0] } else { second } + r.gauss(0.0, 0.12);
        let pts = crossing_curve(r, look, theta);
        let cum = arc_lengths(&pts);
        let (fwhm, depth) = if fine {
            (r.range(3.5, 6.0), r.range(0.02, 0.04))
        } else {
            (
                r.range(6.0, 20.0),
                r.range(look.furrow_depth.0, look.furrow_depth.1),
            )
        };
        let sigma = fwhm / 2.355;
        let fade = Noise1::new(*cum.last().unwrap(), r.range(150.0, 500.0), r);
        let fade_bias = r.range(0.0, 0.8);
        let shade = r.range(-0.4, 0.4);
        field.splat(&pts, &cum, 3.0 * sigma);
        field.each(|idx, n| {
            let along = ((fade.at(n.s as f64) + fade_bias).clamp(0.0, 1.0)) as f32;
            if along <= 0.0 {
                return;
            }
            let z = n.d / sigma as f32;
            let g = (-0.5 * z * z).exp();
            let f = 1.0 - depth as f32 * along * g * (1.0 - shade as f32 * z);
            let p = &mut c.px[idx];
            p[0] *= f;
            p[1] *= f;
            p[2] *= f;
        });
    }
    field.clear();
}

/// Thin red wavy vessels (arborizing / comma vessels): hair-like red lines.
pub(crate) fn paint_vessels(c: &mut Canvas, field: &mut NearField, r: &mut Rng, look: &Look) {
    let (w, h) = (look.w as f64, look.h as f64);
    for _ in 0..look.vessels {
        let p = [r.range(0.0, w), r.range(0.0, h)];
        let len = look.px(r.range(300.0, 1500.0));
        let per = 1.0 / look.px(400.0);
        let pts = integrate_curve(
            p,
            r.range(0.0, TAU),
            len,
            0.5,
            r.gauss(0.0, 0.5 * per),
            1.5 * per,
            look.px(150.0),
            1.5 * per,
            r,
        );
        let cum = arc_lengths(&pts);
        let width = r.range(1.0, 3.0);
        let strength = r.range(0.15, 0.4) as f32;
        let sigma = (width / 2.355) as f32;
        field.splat(&pts, &cum, 3.0 * sigma as f64 + 1.0);
        field.each(|idx, n| {
            let z = n.d / sigma;
            let g = strength * (-0.5 * z * z).exp();
            let p = &mut c.px[idx];
            p[0] *= 1.0 - 0.15 * g;
            p[1] *= 1.0 - g;
            p[2] *= 1.0 - 0.8 * g;
        });
    }
    field.clear();
}

/// Follicular openings: small darker, pinkish-brown round depressions, some with a
/// brownish peripilar halo.
pub(crate) fn paint_openings(c: &mut Canvas, r: &mut Rng, look: &Look, openings: &[Opening]) {
    for o in openings {
        let a = r.range(0.08, 0.28) * if o.has_hair { 1.0 } else { 0.8 };
        let rad = o.radius;
        let soft = (0.3 * rad).max(0.8);
        let tint = [r.range(0.5, 0.75), 1.0, r.range(0.8, 1.0)];
        c.disc(
            o.c[0],
            o.c[1],
            rad + 3.0 * soft,
            |d| 1.0 / (1.0 + ((d - rad) / soft).exp()),
            |p, g| {
                for k in 0..3 {
                    p[k] *= (1.0 - a * tint[k] * g) as f32;
                }
            },
        );
        if o.has_hair && r.chance(0.15 + 0.2 * look.tone) {
            let hr = rad * r.range(1.8, 2.8);
            let ha = r.range(0.04, 0.1);
            c.disc(
                o.c[0],
                o.c[1],
                hr * 1.5,
                |d| (-(d * d) / (2.0 * (hr * 0.6).powi(2))).exp(),
                |p, g| {
                    p[0] *= (1.0 - ha * 0.8 * g) as f32;
                    p[1] *= (1.0 - ha * g) as f32;
                    p[2] *= (1.0 - ha * 1.1 * g) as f32;
                },
            );
        }
    }
}

/// Yellow dots: round yellowish (sebum/keratin) blobs, mostly in empty openings.
pub(crate) fn paint_yellow_dots(c: &mut Canvas, r: &mut Rng, look: &Look, openings: &[Opening]) {
    let empties: Vec<&Opening> = openings.iter().filter(|o| !o.has_hair).collect();
    let sl = look.skin_lum;
    for _ in 0..look.yellow_dots {
        let (cx, cy) = if !empties.is_empty() && r.chance(0.6) {
            let o = empties[r.count(0, empties.len() - 1)];
            (o.c[0], o.c[1])
        } else {
            (r.range(0.0, look.w as f64), r.range(0.0, look.h as f64))
        };
        let rad = r.range(5.0, 15.0);
        let soft = rad * r.range(0.15, 0.35);
        let bright = (sl * r.range(1.2, 1.6) + 0.05).min(0.8);
        let col = [
            bright * 1.25,
            bright * 1.25 * r.range(0.6, 0.7),
            bright * 1.25 * r.range(0.15, 0.25),
        ];
        let alpha = r.range(0.35, 0.75);
        let dark_core = r.chance(0.3);
        c.disc(
            cx,
            cy,
            rad + 3.0 * soft,
            |d| 1.0 / (1.0 + ((d - rad) / soft).exp()),
            |p, g| {
                let a = (alpha * g) as f32;
                for k in 0..3 {
                    p[k] = p[k] * (1.0 - a) + col[k] as f32 * a;
                }
            },
        );
        if dark_core {
            let cr = rad * r.range(0.2, 0.4);
            c.disc(
                cx,
                cy,
                cr * 2.0,
                |d| (-(d * d) / (2.0 * cr * cr * 0.5)).exp(),
                |p, g| {
                    let f = (1.0 - 0.3 * g) as f32;
                    p.iter_mut().for_each(|v| *v *= f);
                },
            );
        }
    }
}

/// Black dots (cadaverised hairs): small round dark dots, not hairs.
pub(crate) fn paint_black_dots(c: &mut Canvas, r: &mut Rng, look: &Look) {
    for _ in 0..look.black_dots {
        let (cx, cy) = (r.range(0.0, look.w as f64), r.range(0.0, look.h as f64));
        let rad = r.range(1.5, 5.0);
        let a = r.range(0.5, 0.85);
        c.disc(
            cx,
            cy,
            rad + 2.0,
            |d| 1.0 / (1.0 + ((d - rad) / 0.6).exp()),
            |p, g| {
                let f = (1.0 - a * g) as f32;
                p[0] *= f;
                p[1] *= f * 0.95;
                p[2] *= f * 0.92;
            },
        );
    }
}

/// White/yellowish irregular flakes of scale, half of them around follicular openings.
pub(crate) fn paint_scales(
    c: &mut Canvas,
    r: &mut Rng,
    look: &Look,
    count: usize,
    openings: &[Opening],
) {
    let (w, h) = (look.w as f64, look.h as f64);
    for _ in 0..count {
        let (cx, cy) = if !openings.is_empty() && r.chance(0.5) {
            let o = &openings[r.count(0, openings.len() - 1)];
            (
                o.c[0] + r.gauss(0.0, o.radius * 2.0),
                o.c[1] + r.gauss(0.0, o.radius * 2.0),
            )
        } else {
            (r.range(0.0, w), r.range(0.0, h))
        };
        let r0 = look.px(r.range(30.0, 200.0)).max(4.0);
        let aspect = r.range(1.0, 2.8);
        let rot = r.range(0.0, PI);
        let harm: Vec<(f64, f64)> = (2..9)
            .map(|k| (r.range(0.0, 0.45) / (k as f64).powf(0.8), r.range(0.0, TAU)))
            .collect();
        let alpha = r.range(0.15, 0.55);
        let b = r.range(0.72, 0.95);
        let col = [b, b * r.range(0.95, 1.0), b * r.range(0.8, 0.95)];
        let tex_cell = r.range(4.0, 12.0);
        let ext = r0 * aspect * 2.2 + 3.0;
        let Some((x0, x1, y0, y1)) = c.clip_box(cx - ext, cx + ext, cy - ext, cy + ext) else {
            continue;
        };
        let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
        let tex = Noise2::new(r, bw, bh, tex_cell);
        let ragged = Noise2::new(r, bw, bh, r0.clamp(3.0, 12.0) * 0.6);
        let (cs, sn) = (rot.cos(), rot.sin());
        // Outline r(θ) tabulated over 512 angles.
        const NA: usize = 512;
        let table: Vec<f64> = (0..NA)
            .map(|i| {
                let ang = (i as f64 / NA as f64) * TAU - PI;
                1.0 + harm
                    .iter()
                    .enumerate()
                    .map(|(k, (a, ph))| a * ((k + 2) as f64 * ang + ph).cos())
                    .sum::<f64>()
            })
            .collect();
        let rmax = r0 * (table.iter().cloned().fold(0.0, f64::max) + 0.35) + 1.0;
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                let u = (dx * cs + dy * sn) / aspect;
                let v = -dx * sn + dy * cs;
                let rho = (u * u + v * v).sqrt();
                if rho > rmax {
                    continue;
                }
                let ang = v.atan2(u);
                let (lx, ly) = ((x - x0) as f64, (y - y0) as f64);
                let ai = (((ang + PI) / TAU * NA as f64) as usize).min(NA - 1);
                let rr = r0 * (table[ai] + 0.3 * ragged.at(lx, ly));
                let inside = smoothstep(0.8, -0.8, rho - rr);
                if inside <= 0.0 {
                    continue;
                }
                let rim = (-((rho - rr + 1.2) / 1.2).powi(2)).exp() * 0.6;
                let t = (0.75 + 0.35 * tex.at(lx, ly)).clamp(0.2, 1.0);
                let a = (alpha * inside * (t + rim)).clamp(0.0, 0.9) as f32;
                let p = &mut c.px[y * c.w + x];
                for k in 0..3 {
                    p[k] = p[k] * (1.0 - a) + col[k] as f32 * a;
                }
            }
        }
    }
}

/// Air bubbles in the immersion fluid: a thin dark ring with a bright inner rim and a
/// specular spot.
pub(crate) fn paint_bubbles(c: &mut Canvas, r: &mut Rng, look: &Look) {
    for _ in 0..look.bubbles {
        let (cx, cy) = (r.range(0.0, look.w as f64), r.range(0.0, look.h as f64));
        let rad = r.range(15.0, 80.0);
        let dark = r.range(0.2, 0.5);
        let rw = r.range(1.0, 2.5);
        c.disc(
            cx,
            cy,
            rad + 4.0 * rw,
            |d| d,
            |p, d| {
                let z = (d - rad) / rw;
                let ring = (-0.5 * z * z).exp();
                let zi = (d - rad * 0.88) / (rw * 1.5);
                let inner = 0.12 * (-0.5 * zi * zi).exp();
                let f = (1.0 - dark * ring) as f32;
                for v in p.iter_mut() {
                    *v = *v * f + inner as f32;
                }
            },
        );
        let (sx, sy) = (cx - rad * 0.4, cy - rad * 0.4);
        let sr = rad * 0.12 + 1.0;
        c.disc(
            sx,
            sy,
            sr * 2.5,
            |d| (-(d * d) / (2.0 * sr * sr)).exp(),
            |p, g| {
                for v in p.iter_mut() {
                    *v += (0.8 * g) as f32;
                }
            },
        );
    }
}

/// Immersion-fluid glitter (many tiny bright specks, partly clustered) and glare spots
/// (small saturated white spots).
pub(crate) fn paint_glitter_and_glare(c: &mut Canvas, r: &mut Rng, look: &Look) {
    let (w, h) = (look.w as f64, look.h as f64);
    let clusters: Vec<([f64; 2], f64)> = (0..r.count(1, 4))
        .map(|_| ([r.range(0.0, w), r.range(0.0, h)], r.range(20.0, 120.0)))
        .collect();
    for _ in 0..look.glitter {
        let (x, y) = if r.chance(0.5) {
            let (cc, sd) = clusters[r.count(0, clusters.len() - 1)];
            (cc[0] + r.gauss(0.0, sd), cc[1] + r.gauss(0.0, sd))
        } else {
            (r.range(0.0, w), r.range(0.0, h))
        };
        let sg = r.range(0.3, 0.9);
        let peak = r.range(0.15, 1.2);
        let tint = [r.range(0.9, 1.0), r.range(0.95, 1.0), 1.0];
        c.disc(
            x,
            y,
            3.0 * sg + 0.5,
            |d| (-(d * d) / (2.0 * sg * sg)).exp(),
            |p, g| {
                for k in 0..3 {
                    p[k] += (peak * tint[k] * g) as f32;
                }
            },
        );
    }
    for _ in 0..look.glare {
        let (x, y) = (r.range(0.0, w), r.range(0.0, h));
        let sg = r.range(0.8, 3.5);
        let peak = r.range(0.8, 3.0);
        let elong = r.range(1.0, 2.5);
        let rot = r.range(0.0, PI);
        let (cs, sn) = (rot.cos(), rot.sin());
        let Some((x0, x1, y0, y1)) = c.clip_box(
            x - 4.0 * sg * elong,
            x + 4.0 * sg * elong,
            y - 4.0 * sg * elong,
            y + 4.0 * sg * elong,
        ) else {
            continue;
        };
        for yy in y0..=y1 {
            for xx in x0..=x1 {
                let (dx, dy) = (xx as f64 - x, yy as f64 - y);
                let u = (dx * cs + dy * sn) / elong;
                let v = -dx * sn + dy * cs;
                let g = (-(u * u + v * v) / (2.0 * sg * sg)).exp();
                if g > 1e-3 {
                    let p = &mut c.px[yy * c.w + xx];
                    for q in p.iter_mut() {
                        *q += (peak * g) as f32;
                    }
                }
            }
        }
    }
    let _ = lum;
}

/// Illumination falloff from an off-centre point, plus a slight tilt.
pub(crate) fn apply_vignette(c: &mut Canvas, r: &mut Rng, look: &Look) {
    let (w, h) = (look.w as f64, look.h as f64);
    let cx = w / 2.0 + r.gauss(0.0, 0.08 * w);
    let cy = h / 2.0 + r.gauss(0.0, 0.08 * h);
    let rmax = (w * w + h * h).sqrt() / 2.0;
    let v = look.vignette;
    let tilt = r.range(-0.05, 0.05);
    let ta = r.range(0.0, TAU);
    let (tc, ts) = (ta.cos(), ta.sin());
    for y in 0..c.h {
        for x in 0..c.w {
            let (dx, dy) = ((x as f64 - cx) / rmax, (y as f64 - cy) / rmax);
            let q = dx * dx + dy * dy;
            let f = ((1.0 - v * q - 0.3 * v * q * q) * (1.0 + tilt * (dx * tc + dy * ts))).max(0.05)
                as f32;
            let p = &mut c.px[y * c.w + x];
            p[0] *= f;
            p[1] *= f;
            p[2] *= f;
        }
    }
}
