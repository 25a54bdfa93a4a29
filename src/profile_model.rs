//! The cross-section of a hair as light absorbed through a cylinder, blurred by the
//! optics, and the correction table that turns a measured edge separation into a width.
//!
//! A hair of width w and centre optical depth τ (absorption × w) darkens the skin by
//! `a · (1 − exp(−τ·√(1 − (2x/w)²)))` across it. Dark terminal hairs (τ ≫ 1) look like a
//! bar; light vellus and grey hairs (τ < 1) look like a half-ellipse whose blurred edges
//! sit inside the true edges. Measuring them as bars would read them up to 1 px too
//! thin, so the shape is estimated from the profile (its fill ratio) and the width read
//! from a table computed for that shape, under the image's blur.
//!
//! All table quantities are in units of the blur σ.

use std::sync::OnceLock;

use crate::measure::{edges_with_step, SAMPLE_STEP_PX};

/// Centre optical depths tabulated (dimensionless), from nearly transparent to opaque.
const TAUS: [f64; 13] = [
    0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 20.0,
];
/// Edge windows for the area of a profile: this many σ beyond each edge.
pub const AREA_MARGIN_SIGMAS: f64 = 2.0;

/// Blurred cylinder profile (σ = 1, amplitude 1) at positions `xs` (σ units).
pub fn cylinder_profile(w: f64, tau: f64, xs: &[f64]) -> Vec<f64> {
    let r = 0.5 * w;
    // Nodes x = r·sin θ: dense near the edges where the profile is steep.
    let n = (8.0 * r).ceil().max(64.0) as usize;
    let dtheta = std::f64::consts::PI / n as f64;
    let nodes: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let th = -std::f64::consts::FRAC_PI_2 + (i as f64 + 0.5) * dtheta;
            let u = r * th.sin();
            let weight = (1.0 - (-tau * th.cos()).exp()) * r * th.cos() * dtheta;
            (u, weight)
        })
        .collect();
    let norm = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
    // The nodes are sorted by u (sin is increasing here), so x − u decreases along them
    // and the nodes passing the |x − u| < 6 test are one run: start at the first with
    // x − u < 6 and stop at the first with x − u ≤ −6. Same terms, same order, without
    // visiting the others (most of them for wide hairs).
    let sorted = nodes.windows(2).all(|p| p[0].0 <= p[1].0);
    xs.iter()
        .map(|&x| {
            let start = if sorted {
                nodes.partition_point(|&(u, _)| x - u >= 6.0)
            } else {
                0
            };
            let mut s = 0.0;
            for &(u, wgt) in &nodes[start..] {
                let d = x - u;
                if d.abs() < 6.0 {
                    s += wgt * (-0.5 * d * d).exp();
                } else if sorted && d <= -6.0 {
                    break;
                }
            }
            s * norm
        })
        .collect()
}

/// Area of a profile between `left − margin` and `right + margin` over level × separation,
/// where the level is the mean over the central third between the edges (a mean, not a
/// maximum, so noise does not bias it): 1 for a wide bar, about 0.77 for a wide
/// half-ellipse. `q` is sampled at `step` from `-half`.
pub fn fill_ratio(q: &[f32], half: f32, step: f32, left: f32, right: f32, margin: f32) -> f64 {
    let last = q.len().saturating_sub(1);
    let idx = |x: f32| ((x + half) / step).clamp(0.0, last as f32);
    let (i0, i1) = (
        idx(left - margin).floor() as usize,
        idx(right + margin).ceil() as usize,
    );
    let area: f64 = q[i0..=i1].iter().map(|&v| v as f64).sum::<f64>() * step as f64;
    let third = (right - left) / 6.0;
    let c = 0.5 * (left + right);
    let (j0, j1) = (
        idx(c - third).round() as usize,
        idx(c + third).round() as usize,
    );
    let level = q[j0..=j1].iter().map(|&v| v as f64).sum::<f64>() / (j1 - j0 + 1) as f64;
    area / (level * (right - left) as f64)
}

/// [`fill_ratio`] of each half of a profile (left of the edges' midpoint, right of it),
/// each over its own half of the central third: equal on a symmetric shaft (the sample at
/// the midpoint counts in both, so each reads about 0.02 above the whole's); a highlight
/// stripe off the centre takes area from its half only.
pub fn half_fill_ratios(
    q: &[f32],
    half: f32,
    step: f32,
    left: f32,
    right: f32,
    margin: f32,
) -> (f64, f64) {
    let last = q.len().saturating_sub(1) as f32;
    let idx = |x: f32| ((x + half) / step).clamp(0.0, last).round() as usize;
    // Sum and count of the samples from position a to b.
    let sum = |a: f32, b: f32| {
        let (i0, i1) = (idx(a), idx(b));
        let s: f64 = q[i0..=i1].iter().map(|&v| v as f64).sum();
        (s, (i1 - i0 + 1) as f64)
    };
    let (c, third) = (0.5 * (left + right), (right - left) / 6.0);
    let half_separation = 0.5 * (right - left) as f64;
    let side = |outer: f32, level_end: f32| {
        let (area, _) = sum(outer.min(c), outer.max(c));
        let (level, n) = sum(level_end.min(c), level_end.max(c));
        area * step as f64 / (level / n * half_separation)
    };
    (
        side(left - margin, c - third),
        side(right + margin, c + third),
    )
}

/// Edge separation and fill ratio of blurred cylinders over a grid of widths and depths.
pub struct ShapeTable {
    /// Widths (σ units), increasing.
    pub widths: Vec<f64>,
    /// Per τ in `TAUS`: measured edge separation (σ units) per width, made non-decreasing.
    pub separation: Vec<Vec<f64>>,
    /// Per τ: fill ratio per width.
    pub fill: Vec<Vec<f64>>,
    /// Per τ: blurred peak of a unit-amplitude profile per width.
    pub peak: Vec<Vec<f64>>,
    /// Per τ: edge spread (σ units, as [`crate::measure::edges`] reports it) per width.
    pub edge: Vec<Vec<f64>>,
}

/// Optical depth assumed for narrow hairs when their contrast allows it: thin hairs are
/// mostly hypopigmented (τ 0.1–1); 0.5 keeps the worst-case error within about ±0.25σ.
const TAU_PRIOR: f64 = 0.5;

fn width_grid() -> Vec<f64> {
    let mut w = Vec::new();
    let mut x = 0.5;
    while x < 12.0 {
        w.push(x);
        x += 0.25;
    }
    while x < 30.0 {
        w.push(x);
        x += 1.0;
    }
    while x <= 100.0 {
        w.push(x);
        x += 5.0;
    }
    w
}

/// Measures a noise-free model profile the way the pipeline measures image profiles.
pub fn model_features(w: f64, tau: f64) -> Option<(f64, f64)> {
    model_features_peak(w, tau).map(|(m, f, _)| (m, f))
}

/// [`model_features`] plus the blurred peak of the unit-amplitude profile.
pub fn model_features_peak(w: f64, tau: f64) -> Option<(f64, f64, f64)> {
    model_measure(w, tau).map(|(m, f, p, _)| (m, f, p))
}

/// Edge separation, fill ratio, peak and edge spread of a noise-free model profile.
pub fn model_measure(w: f64, tau: f64) -> Option<(f64, f64, f64, f64)> {
    let step = SAMPLE_STEP_PX;
    let half = (0.5 * w + 8.0) as f32;
    let n = (2.0 * half / step).round() as usize + 1;
    let xs: Vec<f64> = (0..n).map(|k| (-half + k as f32 * step) as f64).collect();
    let q: Vec<f32> = cylinder_profile(w, tau, &xs)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let (l, r, peak, es) = edges_with_step(&q, half, step, (0.5 * w + 2.0) as f32, 1e-9)?;
    let fill = fill_ratio(&q, half, step, l, r, AREA_MARGIN_SIGMAS as f32);
    Some(((r - l) as f64, fill, peak as f64, es as f64))
}

mod table_data;

/// The table: its values are stored in the source (`table_data.rs`, the output of
/// [`compute_table`], checked by a unit test), so a process no longer spends ~0.4 G
/// instructions (40–60 ms) computing a thousand model profiles before its first image.
pub fn table() -> &'static ShapeTable {
    static TABLE: OnceLock<ShapeTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let widths = width_grid();
        assert_eq!(widths.len(), table_data::WIDTHS, "table_data.rs is stale");
        let rows = |d: &[[u64; table_data::WIDTHS]; TAUS.len()]| -> Vec<Vec<f64>> {
            d.iter()
                .map(|r| r.iter().map(|&b| f64::from_bits(b)).collect())
                .collect()
        };
        ShapeTable {
            widths,
            separation: rows(&table_data::SEPARATION),
            fill: rows(&table_data::FILL),
            peak: rows(&table_data::PEAK),
            edge: rows(&table_data::EDGE),
        }
    })
}

/// Computes the table from the model (about a thousand model profiles): what
/// `table_data.rs` holds.
pub fn compute_table() -> ShapeTable {
    let widths = width_grid();
    let mut separation = Vec::new();
    let mut fill = Vec::new();
    let mut peak = Vec::new();
    let mut edge = Vec::new();
    for &tau in &TAUS {
        let mut erow = Vec::with_capacity(widths.len());
        let mut srow = Vec::with_capacity(widths.len());
        let mut frow = Vec::with_capacity(widths.len());
        let mut prow = Vec::with_capacity(widths.len());
        for &w in &widths {
            let (m, f, p, e) = model_measure(w, tau).unwrap_or((2.0, 0.8, 0.0, 1.0));
            erow.push(e);
            let prev = srow.last().copied().unwrap_or(0.0);
            srow.push(f64::max(m, prev + 1e-9));
            frow.push(f);
            prow.push(p);
        }
        separation.push(srow);
        fill.push(frow);
        peak.push(prow);
        edge.push(erow);
    }
    ShapeTable {
        widths,
        separation,
        fill,
        peak,
        edge,
    }
}

/// Linear interpolation of `ys` over increasing `xs` at `x` (clamped at the ends).
fn interp(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    if x <= xs[0] {
        return ys[0];
    }
    if x >= xs[xs.len() - 1] {
        return ys[ys.len() - 1];
    }
    let i = xs.partition_point(|&v| v < x);
    let t = (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
    ys[i - 1] + t * (ys[i] - ys[i - 1])
}

impl ShapeTable {
    /// Width (σ units) of a cylinder of depth row `j` whose edges are `m` σ apart.
    fn width_in_row(&self, j: usize, m: f64) -> f64 {
        let row = &self.separation[j];
        let last = row.len() - 1;
        if m >= row[last] {
            // Beyond the table the bias is constant in px: shift by the last offset.
            return self.widths[last] + (m - row[last]);
        }
        interp(row, &self.widths, m)
    }

    /// Edge spread (σ units) of the model with edge separation `m` (σ units) and depth
    /// `tau`: 1 for a wide bar, more for translucent shafts.
    pub fn edge_spread(&self, m: f64, tau: f64) -> f64 {
        let (j, t) = row_of(tau.clamp(TAUS[0], TAUS[TAUS.len() - 1]).ln());
        let a = interp(&self.widths, &self.edge[j - 1], self.width_in_row(j - 1, m));
        let b = interp(&self.widths, &self.edge[j], self.width_in_row(j, m));
        (1.0 - t) * a + t * b
    }

    /// Width (σ units) for edge separation `m` (σ units) and depth `tau`.
    pub fn width(&self, m: f64, tau: f64) -> f64 {
        let (j, t) = row_of(tau.clamp(TAUS[0], TAUS[TAUS.len() - 1]).ln());
        (1.0 - t) * self.width_in_row(j - 1, m) + t * self.width_in_row(j, m)
    }

    /// Optical depth τ of a hair from its edge separation `m` (σ units), fill ratio
    /// (with its standard error) and relative peak contrast: the most probable τ under a
    /// weak prior around `TAU_PRIOR`, no less than what the contrast needs if the hair
    /// absorbed all light it crossed (amplitude 1). Where blurred cylinders look alike
    /// (narrow hairs) the prior decides; where the fill tells them apart, the fill does.
    pub fn depth(&self, m: f64, fill: f64, fill_se: f64, peak: f64) -> f64 {
        self.depth_from(m, fill, fill_se, peak, None)
    }

    /// [`Self::depth`] with the edge spread as evidence too: `edges` is the measured edge
    /// spread (σ units) and its standard error. A few blurs wide, blurred cylinders of any
    /// depth have nearly the same fill ratio (at an edge separation of 5σ it ranges over
    /// 1.022–1.026 from τ 0.05 to 20, within the measurement's scatter), so the most
    /// probable depth followed noise between far apart values (about 1.2 and 4.9 for a 9 px
    /// τ = 2 shaft under blur 1.5 px, 0.75 px of width apart); the edge spread still tells
    /// them apart there (1.00–1.12σ), a translucent shaft's edges being softer.
    pub fn depth_with_edges(
        &self,
        m: f64,
        fill: f64,
        fill_se: f64,
        peak: f64,
        edges: (f64, f64),
    ) -> f64 {
        self.depth_from(m, fill, fill_se, peak, Some(edges))
    }

    fn depth_from(
        &self,
        m: f64,
        fill: f64,
        fill_se: f64,
        peak: f64,
        edges: Option<(f64, f64)>,
    ) -> f64 {
        let fill_se = fill_se.max(FILL_SE_MIN);
        // The model's fill, peak and edge spread at this separation, per depth row (they
        // depend on the row and `m` only, not on the step).
        let mut row_fill = [0.0; TAUS.len()];
        let mut row_peak = [0.0; TAUS.len()];
        let mut row_edge = [0.0; TAUS.len()];
        for j in 0..TAUS.len() {
            let w = self.width_in_row(j, m);
            row_fill[j] = interp(&self.widths, &self.fill[j], w);
            row_peak[j] = interp(&self.widths, &self.peak[j], w);
            if edges.is_some() {
                row_edge[j] = interp(&self.widths, &self.edge[j], w);
            }
        }
        let prior = TAU_PRIOR.ln();
        let mut best = (f64::INFINITY, TAU_PRIOR);
        for (k, step) in depth_steps().iter().enumerate() {
            let (lt, j, t) = (step.log_tau, step.row, step.blend);
            let f = (1.0 - t) * row_fill[j - 1] + t * row_fill[j];
            let p = (1.0 - t) * row_peak[j - 1] + t * row_peak[j];
            if p < peak && k < DEPTH_STEPS {
                continue; // cannot reach this contrast even if fully absorbing
            }
            let mut cost =
                ((f - fill) / fill_se).powi(2) + ((lt - prior) / TAU_PRIOR_LOG_SD).powi(2);
            if let Some((es, es_se)) = edges {
                let e = (1.0 - t) * row_edge[j - 1] + t * row_edge[j];
                cost += ((e - es) / es_se.max(EDGE_SE_MIN)).powi(2);
            }
            if cost < best.0 {
                best = (cost, lt.exp());
            }
        }
        best.1
    }
}

/// Row index j (≥ 1) and blend t between rows j−1 and j for log-depth `lt`.
fn row_of(lt: f64) -> (usize, f64) {
    let log_taus = log_taus();
    let j = log_taus
        .partition_point(|&t| t < lt)
        .clamp(1, TAUS.len() - 1);
    let (a, b) = (log_taus[j - 1], log_taus[j]);
    (j, ((lt - a) / (b - a)).clamp(0.0, 1.0))
}

/// ln of each of `TAUS`, computed once per process.
fn log_taus() -> &'static [f64; TAUS.len()] {
    static LOG_TAUS: OnceLock<[f64; TAUS.len()]> = OnceLock::new();
    LOG_TAUS.get_or_init(|| TAUS.map(f64::ln))
}

/// Steps of the search over log τ.
const DEPTH_STEPS: usize = 120;

/// One step of the search over log τ: ln τ, and its row and blend in the table.
struct DepthStep {
    log_tau: f64,
    row: usize,
    blend: f64,
}

/// The `DEPTH_STEPS + 1` steps of the search over log τ, computed once per process.
fn depth_steps() -> &'static [DepthStep] {
    static STEPS: OnceLock<Vec<DepthStep>> = OnceLock::new();
    STEPS.get_or_init(|| {
        let (lo, hi) = (TAUS[0].ln(), TAUS[TAUS.len() - 1].ln());
        (0..=DEPTH_STEPS)
            .map(|k| {
                let lt = lo + (hi - lo) * k as f64 / DEPTH_STEPS as f64;
                let (row, blend) = row_of(lt);
                DepthStep {
                    log_tau: lt,
                    row,
                    blend,
                }
            })
            .collect()
    })
}

/// Spread of the prior on ln τ: weak (a factor e² either way costs as much as 2 SE of fill).
const TAU_PRIOR_LOG_SD: f64 = 2.0;
/// Floor on the fill ratio's standard error (model and sampling imperfections).
const FILL_SE_MIN: f64 = 0.004;
/// Floor on the edge spread's standard error (σ units): the blur it is measured against
/// is itself known to a few percent.
const EDGE_SE_MIN: f64 = 0.06;

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive blurred cylinder by brute-force integration on a fine grid.
    fn naive(x: f64, w: f64, tau: f64) -> f64 {
        let r = w / 2.0;
        let n = 20000;
        let du = w / n as f64;
        let mut s = 0.0;
        for i in 0..n {
            let u = -r + (i as f64 + 0.5) * du;
            let a = 1.0 - (-tau * (1.0 - (u / r).powi(2)).max(0.0).sqrt()).exp();
            s += a * (-(x - u).powi(2) / 2.0).exp() * du;
        }
        s / (2.0 * std::f64::consts::PI).sqrt()
    }

    #[test]
    fn cylinder_profile_matches_naive_integration() {
        for &(w, tau) in &[(1.0, 0.1), (4.0, 1.0), (15.0, 5.0)] {
            let xs = [0.0, 0.3 * w, 0.5 * w, 0.5 * w + 1.0, 0.5 * w + 3.0];
            let fast = cylinder_profile(w, tau, &xs);
            for (x, f) in xs.iter().zip(&fast) {
                let n = naive(*x, w, tau);
                assert!(
                    (f - n).abs() < 2e-3 * (1.0 - (-tau).exp()),
                    "w {w} tau {tau} x {x}: {f} vs {n}"
                );
            }
        }
    }

    /// `table_data.rs` as [`compute_table`] gives it.
    fn table_data_source(t: &ShapeTable) -> String {
        let mut out = String::from(
            "//! The shape table of `profile_model` (f64 bits, rows in `TAUS` order, columns in\n\
             //! `width_grid` order), as `profile_model::compute_table` gives it. Generated by\n\
             //! `TRICHOMETER_WRITE_SHAPE_TABLE=1 cargo test --release --lib stored_shape_table`:\n\
             //! rerun after any change to the model profiles or to how profiles are measured.\n\n",
        );
        out += &format!("pub(super) const WIDTHS: usize = {};\n", t.widths.len());
        for (name, rows) in [
            ("SEPARATION", &t.separation),
            ("FILL", &t.fill),
            ("PEAK", &t.peak),
            ("EDGE", &t.edge),
        ] {
            out += &format!(
                "\n#[rustfmt::skip]\npub(super) const {name}: [[u64; WIDTHS]; {}] = [\n",
                rows.len()
            );
            for r in rows {
                out += "    [\n";
                for c in r.chunks(4) {
                    let vals: Vec<String> = c
                        .iter()
                        .map(|v| format!("0x{:016x},", v.to_bits()))
                        .collect();
                    out += &format!("        {}\n", vals.join(" "));
                }
                out += "    ],\n";
            }
            out += "];\n";
        }
        out
    }

    #[test]
    fn stored_shape_table_is_the_computed_one() {
        let computed = compute_table();
        let source = table_data_source(&computed);
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/profile_model/table_data.rs"
        );
        if std::env::var_os("TRICHOMETER_WRITE_SHAPE_TABLE").is_some() {
            std::fs::write(path, &source).expect("writes table_data.rs");
            return; // checked by the next run, which compiles it
        }
        let stored = table();
        assert_eq!(stored.widths, computed.widths);
        for (name, a, b) in [
            ("separation", &stored.separation, &computed.separation),
            ("fill", &stored.fill, &computed.fill),
            ("peak", &stored.peak, &computed.peak),
            ("edge", &stored.edge, &computed.edge),
        ] {
            for (j, (ra, rb)) in a.iter().zip(b).enumerate() {
                for (i, (&x, &y)) in ra.iter().zip(rb).enumerate() {
                    // Bit for bit where it was generated; other maths libraries may differ
                    // in the last digits of exp and sin.
                    let exact = cfg!(all(target_os = "linux", target_arch = "x86_64"));
                    assert!(
                        if exact { x.to_bits() == y.to_bits() } else { (x - y).abs() <= 1e-9 * y.abs().max(1.0) },
                        "{name}[{j}][{i}]: stored {x}, computed {y}: regenerate src/profile_model/table_data.rs \
                         (TRICHOMETER_WRITE_SHAPE_TABLE=1 cargo test --release --lib stored_shape_table)"
                    );
                }
            }
        }
    }

    #[test]
    fn half_fill_ratios_agree_on_a_cylinder_and_a_stripe_lowers_its_half() {
        let step = SAMPLE_STEP_PX;
        let (w, half) = (10.0f64, 14.0f32);
        let n = (2.0 * half / step).round() as usize + 1;
        let xs: Vec<f64> = (0..n).map(|k| (-half + k as f32 * step) as f64).collect();
        for tau in [0.5, 2.0, 8.0] {
            let q: Vec<f32> = cylinder_profile(w, tau, &xs)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            let (l, r, _, _) = edges_with_step(&q, half, step, 7.0, 1e-9).unwrap();
            let whole = fill_ratio(&q, half, step, l, r, 2.0);
            let (fl, fr) = half_fill_ratios(&q, half, step, l, r, 2.0);
            assert!((fl - fr).abs() < 0.01, "tau {tau}: halves {fl:.3} {fr:.3}");
            assert!(
                (0.0..0.04).contains(&(fl - whole)),
                "tau {tau}: half {fl:.3} whole {whole:.3}"
            );
            // A light stripe 0.55 of the radius right of the centre.
            let dipped: Vec<f32> = q
                .iter()
                .zip(&xs)
                .map(|(&v, &x)| v - 0.2 * v * (-0.5 * ((x - 2.75) / 0.8).powi(2)).exp() as f32)
                .collect();
            let (dl, dr) = half_fill_ratios(&dipped, half, step, l, r, 2.0);
            assert!(
                (dl - fl).abs() < 0.005,
                "tau {tau}: left {fl:.3} -> {dl:.3}"
            );
            assert!(dr < fr - 0.01, "tau {tau}: right {fr:.3} -> {dr:.3}");
        }
    }

    #[test]
    fn opaque_wide_cylinders_are_bars_and_transparent_ones_ellipses() {
        let (m, fill) = model_features(30.0, 20.0).unwrap();
        assert!((m - 30.0).abs() < 0.1, "{m}");
        assert!(fill > 0.97, "{fill}");
        let (m, fill) = model_features(30.0, 0.05).unwrap();
        assert!(m < 29.5, "transparent edges read inside: {m}");
        assert!(fill < 0.85, "{fill}");
    }

    #[test]
    fn opaque_rows_agree_with_the_analytic_blurred_bar() {
        // τ = 20 absorbs all but e⁻²⁰ of the light: a bar, whose edge separation under
        // blur has a closed form (crate::measure::bar_edge_separation).
        let t = table();
        for &w in &[2.5, 3.0, 5.0, 10.0, 20.0] {
            let m = crate::measure::bar_edge_separation(w);
            let back = t.width(m, 20.0);
            assert!((back - w).abs() < 0.06, "w {w}: {back}");
        }
    }

    #[test]
    fn table_inverts_model_features() {
        let t = table();
        // Wide hairs: the shape is read from the profile; the width within 0.05σ.
        for &(w, tau) in &[(9.0, 0.15), (12.0, 1.2), (20.0, 4.0), (40.0, 0.7)] {
            let (m, fill, peak) = model_features_peak(w, tau).unwrap();
            let est_tau = t.depth(m, fill, 0.0, 0.2 * peak);
            let est_w = t.width(m, est_tau);
            assert!(
                (est_w - w).abs() < 0.05,
                "w {w} tau {tau}: {est_w} (tau {est_tau})"
            );
        }
        // Narrow hairs: within 0.5σ whatever the depth (the inherent ambiguity); exact at the
        // prior depth.
        for &(w, tau) in &[(2.5, 0.1), (3.0, 0.5), (4.0, 0.5), (5.0, 3.0), (6.0, 20.0)] {
            let (m, fill, peak) = model_features_peak(w, tau).unwrap();
            let est_w = t.width(m, t.depth(m, fill, 0.0, 0.2 * peak));
            let tol = if tau == 0.5 { 0.03 } else { 0.5 };
            assert!((est_w - w).abs() < tol, "w {w} tau {tau}: {est_w}");
        }
        // An opaque-looking contrast forces a large depth.
        let (m, fill, peak) = model_features_peak(4.0, 8.0).unwrap();
        let est_tau = t.depth(m, fill, 0.0, peak * (1.0 - (-8.0f64).exp()));
        assert!(est_tau > 5.0, "{est_tau}");
        assert!((t.width(m, est_tau) - 4.0).abs() < 0.05);
    }
}
