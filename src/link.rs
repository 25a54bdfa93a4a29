//! Stage 6: measured pieces into whole hairs. A hair's ridge breaks where a wider hair
//! crosses it (no profile can be measured inside the crossing), where it fades against
//! the skin, or where tracing followed another branch; each break would otherwise count as
//! one more hair and skew the count, the thin fraction and the cv. Pieces are joined end to
//! end when they continue each other in position, direction and measured width. Pieces
//! that retrace a hair already measured (the ridge of one of its edges, measured from the
//! side, ends up on the same centre with the same width; or a short stretch measured
//! across a neighbour, on the same centre but wider) are dropped first, and again once
//! joined hairs may cover each other.

use std::collections::HashMap;

use ndarray::Array2;

use crate::enhance::bilinear;
use crate::measure::{optical_blur, width_spread_and_flag, Measured};
use crate::stats::{median, robust_sd};

/// One measured piece and its polarity (+1 dark, −1 light).
#[derive(Debug, Clone)]
pub struct Piece {
    pub m: Measured,
    pub polarity: i8,
}

/// Longest gap (px) bridged between two pieces: a terminal hair crossing at a shallow
/// angle, plus the margins where the profiles are disturbed on either side.
const LINK_MAX_GAP_PX: f64 = 60.0;
/// Longer gaps, up to this (px), are bridged only where the image shows the hair along the
/// bridge: a faint stretch between two measured pieces, or a run of crossings.
const LINK_EVIDENCE_GAP_PX: f64 = 250.0;
/// For those: tighter alignment (each end within this angle of the chord, and of the
/// other end's direction), and this share of the bridge's points must look like
/// the hair (centre darker, or lighter, than both sides by `BRIDGE_MIN_CONTRAST_SHARE` of
/// the pieces' contrast).
const LINK_EVIDENCE_MAX_ANGLE_DEG: f64 = 10.0;
const BRIDGE_MIN_SHARE: f64 = 0.5;
const BRIDGE_MIN_CONTRAST_SHARE: f64 = 0.3;
/// Spacing of the bridge's test points (px).
const BRIDGE_STEP_PX: f64 = 2.0;
/// Largest turn (degrees) between the two ends' directions, and between each end and the
/// bridge: measured centrelines are accurate to a fraction of a pixel over 10 px.
const LINK_MAX_ANGLE_DEG: f64 = 20.0;
/// Lateral offset allowed between an end's extended line and the other end: this much,
/// plus `LINK_LATERAL_WIDTH_SHARE` of the hair's width (a centre pulled aside near a
/// crossing stays inside the shaft; a touching neighbour's centre is a whole width away),
/// plus `LINK_LATERAL_SLOPE` × gap (a hair's own curvature over the gap).
const LINK_LATERAL_PX: f64 = 2.0;
const LINK_LATERAL_WIDTH_SHARE: f64 = 0.35;
/// Over gaps shorter than this (px) the ends may turn by up to `LINK_NEAR_MAX_ANGLE_DEG`:
/// a centreline bends where a crossing hair pulls it.
const LINK_NEAR_GAP_PX: f64 = 15.0;
const LINK_NEAR_MAX_ANGLE_DEG: f64 = 30.0;
/// Pieces may overlap end to end by up to this (px, plus half the width): one hair traced
/// twice past a crossing. The overlap is trimmed when they are joined.
const LINK_MAX_OVERLAP_PX: f64 = 12.0;
const LINK_LATERAL_SLOPE: f64 = 0.1;
/// Measured widths of joined pieces differ by at most this share of the wider, or
/// `LINK_WIDTH_TOLERANCE_PX`, whichever is larger.
const LINK_WIDTH_TOLERANCE: f64 = 0.3;
const LINK_WIDTH_TOLERANCE_PX: f64 = 1.0;
/// An end's direction is that of the chord between these distances (px) from its tip:
/// far enough to average the centres' jitter, skipping the tip itself.
const END_NEAR_PX: usize = 2;
const END_FAR_PX: usize = 20;
/// A piece whose points lie within this share of another's width (at least
/// `DUPLICATE_MIN_PX`) of that other's centreline for `DUPLICATE_SHARE` of its length, with
/// a similar width, is the same hair measured twice.
const DUPLICATE_RADIUS_SHARE: f64 = 0.25;
const DUPLICATE_MIN_PX: f64 = 1.5;
const DUPLICATE_SHARE: f64 = 0.6;
const DUPLICATE_WIDTH_TOLERANCE: f64 = 0.35;

/// Points every ~1 px along a polyline.
fn resample(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    crate::measure::resample_f64(points, 1.0)
}

/// Spatial grid of the resampled points of many polylines: (line, point) pairs by cell,
/// stored densely over the cells the points span (no hashing per lookup).
struct PointGrid {
    cell: f64,
    /// Cell coordinates of the first stored cell, and the number of cells along x and y.
    origin: (i64, i64),
    size: (i64, i64),
    /// The entries of cell k are `entries[start[k]..start[k + 1]]`, in the order given.
    start: Vec<usize>,
    entries: Vec<(usize, [f64; 2])>,
}

impl PointGrid {
    fn new(lines: &[Vec<[f64; 2]>], cell: f64) -> Self {
        let keys = || {
            lines
                .iter()
                .enumerate()
                .flat_map(|(i, l)| l.iter().map(move |&p| (Self::key(p, cell), i, p)))
        };
        let (mut lo, mut hi) = ((i64::MAX, i64::MAX), (i64::MIN, i64::MIN));
        for ((x, y), _, _) in keys() {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
        let size = if lo.0 > hi.0 {
            (0, 0)
        } else {
            (hi.0 - lo.0 + 1, hi.1 - lo.1 + 1)
        };
        let index = |(x, y): (i64, i64)| ((y - lo.1) * size.0 + (x - lo.0)) as usize;
        let mut start = vec![0usize; (size.0 * size.1) as usize + 1];
        for (k, _, _) in keys() {
            start[index(k) + 1] += 1;
        }
        for c in 1..start.len() {
            start[c] += start[c - 1];
        }
        let mut next = start.clone();
        let mut entries = vec![(0, [0.0; 2]); start[start.len() - 1]];
        for (k, i, p) in keys() {
            let slot = &mut next[index(k)];
            entries[*slot] = (i, p);
            *slot += 1;
        }
        PointGrid {
            cell,
            origin: lo,
            size,
            start,
            entries,
        }
    }
    fn key(p: [f64; 2], cell: f64) -> (i64, i64) {
        ((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64)
    }
    /// The entries of the cells within one cell of `p`.
    fn around(&self, p: [f64; 2]) -> impl Iterator<Item = &(usize, [f64; 2])> {
        let (cx, cy) = Self::key(p, self.cell);
        (cy - 1..=cy + 1).flat_map(move |gy| {
            (cx - 1..=cx + 1).flat_map(move |gx| {
                let (x, y) = (gx - self.origin.0, gy - self.origin.1);
                let cell: &[(usize, [f64; 2])] =
                    if (0..self.size.0).contains(&x) && (0..self.size.1).contains(&y) {
                        let k = (y * self.size.0 + x) as usize;
                        &self.entries[self.start[k]..self.start[k + 1]]
                    } else {
                        &[]
                    };
                cell.iter()
            })
        })
    }
}

fn widths_agree(a: f64, b: f64, share: f64) -> bool {
    (a - b).abs() <= (share * a.max(b)).max(LINK_WIDTH_TOLERANCE_PX)
}

/// Drops pieces that retrace a longer piece of the same polarity and width.
pub fn deduplicate(pieces: Vec<Piece>) -> Vec<Piece> {
    let lines: Vec<Vec<[f64; 2]>> = pieces.iter().map(|p| resample(&p.m.points)).collect();
    let max_w = pieces.iter().map(|p| p.m.width_px).fold(0.0, f64::max);
    let cell = (DUPLICATE_RADIUS_SHARE * max_w)
        .max(DUPLICATE_MIN_PX)
        .max(2.0);
    let grid = PointGrid::new(&lines, cell);
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    // Longest first: a piece is compared with the longer ones still kept.
    order.sort_by(|&a, &b| {
        pieces[b]
            .m
            .length_px
            .total_cmp(&pieces[a].m.length_px)
            .then(a.cmp(&b))
    });
    let mut kept = vec![false; pieces.len()];
    // Points of the current piece near each other piece, and the pieces counted.
    let mut on = vec![0usize; pieces.len()];
    let mut counted: Vec<usize> = Vec::new();
    // For one point: the smallest squared distance to each kept piece's points within
    // one cell, and the pieces met.
    let mut nearest2 = vec![f64::INFINITY; pieces.len()];
    let mut met: Vec<usize> = Vec::new();
    for &i in &order {
        let pi = &pieces[i];
        for j in counted.drain(..) {
            on[j] = 0;
        }
        for &p in &lines[i] {
            for &(j, q) in grid.around(p) {
                if j == i || !kept[j] || pieces[j].polarity != pi.polarity {
                    continue;
                }
                if nearest2[j] == f64::INFINITY {
                    met.push(j);
                }
                nearest2[j] = nearest2[j].min((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2));
            }
            for j in met.drain(..) {
                let r = (DUPLICATE_RADIUS_SHARE * pieces[j].m.width_px).max(DUPLICATE_MIN_PX);
                if std::mem::replace(&mut nearest2[j], f64::INFINITY) <= r * r {
                    if on[j] == 0 {
                        counted.push(j);
                    }
                    on[j] += 1;
                }
            }
        }
        // A shorter piece along a kept one's centre is that hair again: measured alike,
        // or measured wider (across a neighbour at a crossing or a touching hair).
        let duplicate = counted.iter().map(|&j| (j, on[j])).any(|(j, n)| {
            n as f64 >= DUPLICATE_SHARE * lines[i].len() as f64
                && (widths_agree(
                    pi.m.width_px,
                    pieces[j].m.width_px,
                    DUPLICATE_WIDTH_TOLERANCE,
                ) || pi.m.width_px > pieces[j].m.width_px)
        });
        kept[i] = !duplicate;
    }
    pieces
        .into_iter()
        .zip(kept)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}

/// An end of a piece: position and unit direction pointing out of the piece.
#[derive(Clone, Copy)]
struct End {
    pos: [f64; 2],
    dir: [f64; 2],
}

fn end_of(line: &[[f64; 2]], at_start: bool) -> End {
    let n = line.len();
    let far = END_FAR_PX.min(n - 1);
    let near = END_NEAR_PX.min(far / 2);
    let (tip, outer, inner) = if at_start {
        (line[0], line[near], line[far])
    } else {
        (line[n - 1], line[n - 1 - near], line[n - 1 - far])
    };
    let d = [outer[0] - inner[0], outer[1] - inner[1]];
    let l = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-9);
    End {
        pos: tip,
        dir: [d[0] / l, d[1] / l],
    }
}

fn angle_deg(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] * b[0] + a[1] * b[1])
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// What `join_cost` needs to know about the two pieces and the image.
struct JoinContext<'a> {
    contrast: &'a Array2<f32>,
    /// Pixels inside some measured piece (crossings on a bridge): within half its width
    /// (plus 1 px) of its centreline.
    covered: &'a DiscCells<'a>,
    /// The pieces' widths (px).
    widths: &'a [f64],
    /// Hair sign: +1 for hairs brighter than skin in `contrast`, −1 for darker.
    sign: f32,
    wa: f64,
    wb: f64,
    /// The weaker piece's contrast (relative, sign removed).
    piece_contrast: f64,
}

/// Cost of joining end `a` to end `b` (lower is better), or `None` when they do not
/// continue each other.
fn join_cost(a: End, b: End, ctx: &JoinContext) -> Option<f64> {
    let (wa, wb) = (ctx.wa, ctx.wb);
    let v = [b.pos[0] - a.pos[0], b.pos[1] - a.pos[1]];
    let d = (v[0] * v[0] + v[1] * v[1]).sqrt();
    if d > LINK_EVIDENCE_GAP_PX || !widths_agree(wa, wb, LINK_WIDTH_TOLERANCE) {
        return None;
    }
    let far = d > LINK_MAX_GAP_PX;
    let max_turn = if far {
        LINK_EVIDENCE_MAX_ANGLE_DEG
    } else if d < LINK_NEAR_GAP_PX {
        LINK_NEAR_MAX_ANGLE_DEG
    } else {
        LINK_MAX_ANGLE_DEG
    };
    let turn = angle_deg(a.dir, [-b.dir[0], -b.dir[1]]);
    if turn > max_turn {
        return None;
    }
    // b lies ahead of a, or overlaps it end to end by a little (not beside it).
    let ahead = v[0] * a.dir[0] + v[1] * a.dir[1];
    let back = -(v[0] * b.dir[0] + v[1] * b.dir[1]);
    let overlap = LINK_MAX_OVERLAP_PX + 0.5 * wa.max(wb);
    if ahead < -overlap || back < -overlap {
        return None;
    }
    let lateral_a = (v[0] * a.dir[1] - v[1] * a.dir[0]).abs();
    let lateral_b = (v[0] * b.dir[1] - v[1] * b.dir[0]).abs();
    let allowed = LINK_LATERAL_PX + LINK_LATERAL_WIDTH_SHARE * wa.max(wb);
    if far {
        // Long gaps: each end points along the chord, as on one gently curved hair.
        let u = [v[0] / d, v[1] / d];
        if angle_deg(a.dir, u) > LINK_EVIDENCE_MAX_ANGLE_DEG
            || angle_deg(b.dir, [-u[0], -u[1]]) > LINK_EVIDENCE_MAX_ANGLE_DEG
        {
            return None;
        }
    } else if lateral_a.max(lateral_b) > allowed + LINK_LATERAL_SLOPE * d {
        return None;
    }
    if far && bridge_support(a, b, 0.5 * (wa + wb), ctx) < BRIDGE_MIN_SHARE {
        return None;
    }
    let width_gap = (wa - wb).abs() / wa.max(wb).max(1e-9);
    Some(d / LINK_EVIDENCE_GAP_PX + turn / max_turn + width_gap / LINK_WIDTH_TOLERANCE)
}

/// Points every `BRIDGE_STEP_PX` (about) strictly between ends `a` and `b` on the cubic
/// Hermite curve leaving `a` along its direction and arriving at `b` against its
/// direction: a curved hair's gap is bridged along its curve, not its chord.
fn hermite(a: End, b: End) -> Vec<([f64; 2], [f64; 2])> {
    let v = [b.pos[0] - a.pos[0], b.pos[1] - a.pos[1]];
    let d = (v[0] * v[0] + v[1] * v[1]).sqrt();
    let steps = (d / BRIDGE_STEP_PX).floor() as usize;
    let (ta, tb) = ([d * a.dir[0], d * a.dir[1]], [-d * b.dir[0], -d * b.dir[1]]);
    (1..steps.max(1))
        .map(|k| {
            let t = k as f64 / steps as f64;
            let (t2, t3) = (t * t, t * t * t);
            let (h00, h10, h01, h11) = (
                2.0 * t3 - 3.0 * t2 + 1.0,
                t3 - 2.0 * t2 + t,
                -2.0 * t3 + 3.0 * t2,
                t3 - t2,
            );
            let (d00, d10, d01, d11) = (
                6.0 * t2 - 6.0 * t,
                3.0 * t2 - 4.0 * t + 1.0,
                -6.0 * t2 + 6.0 * t,
                3.0 * t2 - 2.0 * t,
            );
            let p = [
                h00 * a.pos[0] + h10 * ta[0] + h01 * b.pos[0] + h11 * tb[0],
                h00 * a.pos[1] + h10 * ta[1] + h01 * b.pos[1] + h11 * tb[1],
            ];
            let g = [
                d00 * a.pos[0] + d10 * ta[0] + d01 * b.pos[0] + d11 * tb[0],
                d00 * a.pos[1] + d10 * ta[1] + d01 * b.pos[1] + d11 * tb[1],
            ];
            let l = (g[0] * g[0] + g[1] * g[1]).sqrt().max(1e-9);
            (p, [-g[1] / l, g[0] / l])
        })
        .collect()
}

/// Share of the points along the bridge from end `a` to end `b` where the image shows a
/// hair of width `w` (px): its centre stands out from both sides, in the hair's sign, by
/// at least `BRIDGE_MIN_CONTRAST_SHARE` of the pieces' contrast. Points inside another
/// measured hair (a crossing) do not count either way.
fn bridge_support(a: End, b: End, w: f64, ctx: &JoinContext) -> f64 {
    let need = (BRIDGE_MIN_CONTRAST_SHARE * ctx.piece_contrast) as f32;
    let at = |c: [f64; 2], n: [f64; 2], s: f64| {
        bilinear(
            ctx.contrast,
            (c[0] + s * n[0]) as f32,
            (c[1] + s * n[1]) as f32,
        )
    };
    let (h, wd) = ctx.contrast.dim();
    let side = 0.5 * w + 2.0;
    let (mut good, mut counted) = (0usize, 0usize);
    for (c, n) in hermite(a, b) {
        let (x, y) = (c[0].round(), c[1].round());
        if x < 0.0 || y < 0.0 || x >= wd as f64 || y >= h as f64 {
            continue;
        }
        let (x, y) = (x as usize, y as usize);
        if ctx
            .covered
            .near(x, y)
            .any(|(i, q)| in_disc(x, y, q, 0.5 * ctx.widths[i] + 1.0))
        {
            continue;
        }
        counted += 1;
        let centre = (at(c, n, -0.25 * w) + at(c, n, 0.0) + at(c, n, 0.25 * w)) / 3.0;
        let (l, r) = (at(c, n, -side), at(c, n, side));
        if ctx.sign * (centre - l) >= need && ctx.sign * (centre - r) >= need {
            good += 1;
        }
    }
    if counted == 0 {
        // Hidden all along under other hairs: the alignment has to decide.
        return 1.0;
    }
    good as f64 / counted as f64
}

/// Whether pixel (x, y) lies in the disc of radius `r` around `c`: `disc_rows`'s test.
#[inline]
pub(crate) fn in_disc(x: usize, y: usize, c: [f64; 2], r: f64) -> bool {
    (x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) <= r * r
}

/// Side (px, a power of two) of the cells of `DiscCells`: a few lines' discs per cell, and
/// a small cell table.
const DISC_CELL_SHIFT: u32 = 3;

/// Discs around the points of lines, looked up one pixel at a time instead of painted
/// into an image-sized map: each point is listed, in the order its line is given, in the
/// cells its disc's window (`disc_rows`'s, for the line's largest radius) reaches, so
/// the discs that may cover a pixel are those listed in its cell; with `in_disc` they
/// cover the pixels `disc_rows` paints.
pub(crate) struct DiscCells<'a> {
    lines: &'a [Vec<[f64; 2]>],
    /// Cells along x.
    gw: usize,
    /// The entries (line, point index) of cell k are `entries[start[k]..start[k + 1]]`.
    start: Vec<u32>,
    entries: Vec<(u32, u32)>,
}

impl<'a> DiscCells<'a> {
    /// The discs of `lines[i]` for i in `order`, radius at most `reach(i)` (px), on an
    /// image of `size` (height, width).
    pub(crate) fn new(
        lines: &'a [Vec<[f64; 2]>],
        order: &[usize],
        reach: impl Fn(usize) -> f64,
        (h, w): (usize, usize),
    ) -> Self {
        let gw = w.div_ceil(1 << DISC_CELL_SHIFT);
        let gh = h.div_ceil(1 << DISC_CELL_SHIFT);
        let windows = || {
            order.iter().flat_map(|&i| {
                let ri = reach(i).ceil() as i64;
                lines[i].iter().enumerate().filter_map(move |(k, p)| {
                    let (cx, cy) = (p[0].round() as i64, p[1].round() as i64);
                    let (x0, x1) = ((cx - ri).max(0), (cx + ri).min(w as i64 - 1));
                    let (y0, y1) = ((cy - ri).max(0), (cy + ri).min(h as i64 - 1));
                    let cells = |a: i64, b: i64| {
                        (a as usize >> DISC_CELL_SHIFT)..=(b as usize >> DISC_CELL_SHIFT)
                    };
                    (x0 <= x1 && y0 <= y1)
                        .then(|| ((i as u32, k as u32), cells(y0, y1), cells(x0, x1)))
                })
            })
        };
        let mut start = vec![0u32; gw * gh + 1];
        for (_, ys, xs) in windows() {
            for gy in ys {
                for gx in xs.clone() {
                    start[gy * gw + gx + 1] += 1;
                }
            }
        }
        for c in 1..start.len() {
            start[c] += start[c - 1];
        }
        let mut next = start.clone();
        let mut entries = vec![(0, 0); start[start.len() - 1] as usize];
        for (e, ys, xs) in windows() {
            for gy in ys {
                for gx in xs.clone() {
                    let slot = &mut next[gy * gw + gx];
                    entries[*slot as usize] = e;
                    *slot += 1;
                }
            }
        }
        DiscCells {
            lines,
            gw,
            start,
            entries,
        }
    }

    /// The (line, disc centre) pairs whose discs may cover pixel (x, y) of the image, in
    /// the lines' order.
    pub(crate) fn near(&self, x: usize, y: usize) -> impl Iterator<Item = (usize, [f64; 2])> + '_ {
        self.near_indices(x, y).map(|(i, k)| (i, self.lines[i][k]))
    }

    /// `near` as (line, point index) pairs.
    pub(crate) fn near_indices(
        &self,
        x: usize,
        y: usize,
    ) -> impl Iterator<Item = (usize, usize)> + '_ {
        let cell = (y >> DISC_CELL_SHIFT) * self.gw + (x >> DISC_CELL_SHIFT);
        self.entries[self.start[cell] as usize..self.start[cell + 1] as usize]
            .iter()
            .map(|&(i, k)| (i as usize, k as usize))
    }
}

/// The pixels (x, y) of an image of `size` (height, width) with
/// `(x − c₀)² + (y − c₁)² ≤ r²` (px), row by row: calls `row(y, x range)` for each row
/// that has some. The ends of each row's run are found by a square root and checked
/// with the test itself, so the pixels are exactly those of the per-pixel test.
#[cfg(test)]
pub(crate) fn disc_rows(
    c: [f64; 2],
    r: f64,
    size: (usize, usize),
    mut row: impl FnMut(usize, std::ops::Range<usize>),
) {
    let (h, w) = size;
    let ri = r.ceil() as i64;
    let (cx, cy) = (c[0].round() as i64, c[1].round() as i64);
    let (lo, hi) = ((cx - ri).max(0), (cx + ri).min(w as i64 - 1));
    if lo > hi {
        return;
    }
    // The test only grows with |x − c₀|, and is smallest at the pixel nearest c₀.
    let near = cx.clamp(lo, hi);
    for y in (cy - ri).max(0)..=(cy + ri).min(h as i64 - 1) {
        let dy2 = (y as f64 - c[1]).powi(2);
        let inside = |x: i64| (x as f64 - c[0]).powi(2) + dy2 <= r * r;
        if !inside(near) {
            continue;
        }
        // First guesses (truncated, not rounded: the steps below find the exact ends).
        let s = (r * r - dy2).max(0.0).sqrt();
        let mut a = ((c[0] - s) as i64).clamp(lo, near);
        while a > lo && inside(a - 1) {
            a -= 1;
        }
        while !inside(a) {
            a += 1;
        }
        let mut b = ((c[0] + s) as i64).clamp(near, hi);
        while b < hi && inside(b + 1) {
            b += 1;
        }
        while !inside(b) {
            b -= 1;
        }
        row(y as usize, a as usize..b as usize + 1);
    }
}

/// Joins pieces that continue each other into whole hairs; `blur` (σ, px) sets the flags
/// of the joined widths. Pieces that join nothing are returned as they are.
pub fn link(pieces: Vec<Piece>, blur: f64, contrast: &Array2<f32>) -> Vec<Piece> {
    let lines: Vec<Vec<[f64; 2]>> = pieces.iter().map(|p| resample(&p.m.points)).collect();
    let ends: Vec<End> = lines
        .iter()
        .flat_map(|l| [end_of(l, true), end_of(l, false)])
        .collect();
    let widths: Vec<f64> = pieces.iter().map(|p| p.m.width_px).collect();
    let all: Vec<usize> = (0..pieces.len()).collect();
    let covered = DiscCells::new(&lines, &all, |i| 0.5 * widths[i] + 1.0, contrast.dim());
    // Candidate pairs through a grid of end positions, one gap wide.
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for (e, end) in ends.iter().enumerate() {
        grid.entry(PointGrid::key(end.pos, LINK_EVIDENCE_GAP_PX))
            .or_default()
            .push(e);
    }
    let mut cands: Vec<(f64, usize, usize)> = Vec::new();
    for (e, a) in ends.iter().enumerate() {
        let (cx, cy) = PointGrid::key(a.pos, LINK_EVIDENCE_GAP_PX);
        for gy in cy - 1..=cy + 1 {
            for gx in cx - 1..=cx + 1 {
                for &f in grid.get(&(gx, gy)).map(|v| v.as_slice()).unwrap_or(&[]) {
                    let (pa, pb) = (e / 2, f / 2);
                    if f <= e || pa == pb || pieces[pa].polarity != pieces[pb].polarity {
                        continue;
                    }
                    let ctx = JoinContext {
                        contrast,
                        covered: &covered,
                        widths: &widths,
                        sign: -(pieces[pa].polarity as f32),
                        wa: pieces[pa].m.width_px,
                        wb: pieces[pb].m.width_px,
                        piece_contrast: pieces[pa].m.contrast.min(pieces[pb].m.contrast),
                    };
                    if let Some(c) = join_cost(*a, ends[f], &ctx) {
                        cands.push((c, e, f));
                    }
                }
            }
        }
    }
    cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut link: Vec<Option<usize>> = vec![None; ends.len()];
    let mut parent: Vec<usize> = (0..pieces.len()).collect();
    for (_, e, f) in cands {
        if link[e].is_some() || link[f].is_some() {
            continue;
        }
        let (re, rf) = (
            crate::trace::find(&mut parent, e / 2),
            crate::trace::find(&mut parent, f / 2),
        );
        if re == rf {
            continue; // would close a loop
        }
        parent[re] = rf;
        link[e] = Some(f);
        link[f] = Some(e);
    }
    // Walk each chain from a free end; pieces in a loop-free chain are each visited once.
    let mut done = vec![false; pieces.len()];
    let mut out = Vec::new();
    for start in 0..ends.len() {
        if done[start / 2] || link[start].is_some() {
            continue;
        }
        let mut chain: Vec<(usize, bool)> = Vec::new(); // (piece, reversed)
        let mut e = start;
        loop {
            let p = e / 2;
            done[p] = true;
            // Entering at the start end: forward; at the end end: reversed.
            chain.push((p, e % 2 == 1));
            let other = e ^ 1;
            match link[other] {
                Some(next) => e = next,
                None => break,
            }
        }
        out.push(merge(&pieces, &chain, blur));
    }
    out
}

/// One piece from a chain of pieces, each taken forward or reversed.
fn merge(pieces: &[Piece], chain: &[(usize, bool)], blur: f64) -> Piece {
    if chain.len() == 1 && !chain[0].1 {
        return pieces[chain[0].0].clone();
    }
    let mut points = Vec::new();
    let mut local = Vec::new();
    let (mut contrast_sum, mut profiles) = (0.0, 0usize);
    for &(p, reversed) in chain {
        let m = &pieces[p].m;
        let mut next: Vec<[f64; 2]> = m.points.clone();
        let mut widths = m.local_widths.clone();
        if reversed {
            next.reverse();
            widths.reverse();
        }
        // Points of this piece behind the joined line's end (an overlap) are dropped.
        if points.len() >= 2 {
            let end = end_of(&resample(&points), false);
            let skip = next
                .iter()
                .take_while(|q| {
                    (q[0] - end.pos[0]) * end.dir[0] + (q[1] - end.pos[1]) * end.dir[1] <= 0.0
                })
                .count()
                .min(next.len() - 1);
            next.drain(..skip);
            // A gap is bridged along the curve the two ends describe.
            if next.len() >= 2 {
                let start = end_of(&resample(&next), true);
                points.extend(hermite(end, start).into_iter().map(|(p, _)| p));
            }
        }
        points.extend(next);
        local.extend(widths);
        contrast_sum += m.contrast * m.profiles as f64;
        profiles += m.profiles;
    }
    let width = median(&local);
    let (sd, flag) = width_spread_and_flag(width, robust_sd(&local), optical_blur(blur));
    let length = crate::measure::centreline_length(&points);
    Piece {
        m: Measured {
            width_px: width,
            width_sd_px: sd,
            local_widths: local,
            contrast: contrast_sum / profiles.max(1) as f64,
            points,
            length_px: length,
            profiles,
            flag,
        },
        polarity: pieces[chain[0].0].polarity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::RESOLVABLE_WIDTH_SIGMAS;

    #[test]
    fn disc_rows_are_the_pixels_of_the_per_pixel_test() {
        let size = (23, 31);
        let mut next = crate::stats::test_uniform(0x2545_F491_4F6C_DD1Du64);
        for k in 0..2000 {
            // Centres inside, near and beyond the edges, on and off half pixels.
            let mut c = [40.0 * next() - 5.0, 30.0 * next() - 4.0];
            if k % 4 == 0 {
                c = [c[0].round() + 0.5, c[1].round()];
            }
            let r = if k % 5 == 0 {
                (8.0 * next()).round()
            } else {
                9.0 * next()
            };
            let mut fast = Array2::from_elem(size, false);
            disc_rows(c, r, size, |y, xs| {
                for x in xs {
                    assert!(!fast[[y, x]], "pixel given twice");
                    fast[[y, x]] = true;
                }
            });
            let naive = Array2::from_shape_fn(size, |(y, x)| {
                (x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) <= r * r
            });
            assert_eq!(fast, naive, "centre {c:?}, radius {r}");
        }
    }

    #[test]
    fn disc_cells_list_every_disc_covering_a_pixel_in_order() {
        let (h, w) = (41, 57);
        let mut next = crate::stats::test_uniform(0x2545_F491_4F6C_DD1Du64);
        for _ in 0..50 {
            // Lines of points, some beyond the edges, with radii up to 12 px.
            let lines: Vec<Vec<[f64; 2]>> = (0..1 + (next() * 6.0) as usize)
                .map(|_| {
                    let (x, y, dx, dy) = (
                        70.0 * next() - 7.0,
                        55.0 * next() - 7.0,
                        next() - 0.5,
                        next() - 0.5,
                    );
                    (0..30)
                        .map(|k| [x + k as f64 * dx, y + k as f64 * dy])
                        .collect()
                })
                .collect();
            let radii: Vec<f64> = lines.iter().map(|_| 12.0 * next()).collect();
            let mut order: Vec<usize> = (0..lines.len()).collect();
            order.reverse();
            let cells = DiscCells::new(&lines, &order, |i| radii[i], (h, w));
            // The first line in `order` whose discs cover each pixel, painted and looked up.
            let mut painted = vec![usize::MAX; h * w];
            for &i in &order {
                for &c in &lines[i] {
                    disc_rows(c, radii[i], (h, w), |y, xs| {
                        for o in &mut painted[y * w + xs.start..y * w + xs.end] {
                            if *o == usize::MAX {
                                *o = i;
                            }
                        }
                    });
                }
            }
            for y in 0..h {
                for x in 0..w {
                    let found = cells
                        .near(x, y)
                        .find(|&(i, c)| in_disc(x, y, c, radii[i]))
                        .map_or(usize::MAX, |(i, _)| i);
                    assert_eq!(found, painted[y * w + x], "pixel ({x}, {y})");
                }
            }
        }
    }

    fn piece(from: [f64; 2], to: [f64; 2], width: f64) -> Piece {
        let n = 20;
        let points: Vec<[f64; 2]> = (0..=n)
            .map(|i| {
                let t = i as f64 / n as f64;
                [
                    from[0] + t * (to[0] - from[0]),
                    from[1] + t * (to[1] - from[1]),
                ]
            })
            .collect();
        let length = ((to[0] - from[0]).powi(2) + (to[1] - from[1]).powi(2)).sqrt();
        Piece {
            m: Measured {
                width_px: width,
                width_sd_px: 0.1,
                local_widths: vec![width; n / 2],
                contrast: 0.3,
                points,
                length_px: length,
                profiles: n / 2,
                flag: None,
            },
            polarity: 1,
        }
    }

    #[test]
    fn pieces_across_a_crossing_become_one_hair_and_neighbours_stay_apart() {
        let pieces = vec![
            // One hair of width 4 broken by a 30 px crossing, the second piece reversed.
            piece([0.0, 100.0], [80.0, 102.0], 4.0),
            piece([190.0, 104.5], [110.0, 102.8], 4.2),
            // A parallel hair 12 px away: must not be joined to either.
            piece([0.0, 112.0], [80.0, 114.0], 4.0),
            // A hair continuing the first one's line but three times as wide.
            piece([200.0, 105.0], [260.0, 106.0], 12.0),
            // A hair leaving the end of the first at 40 degrees.
            piece([82.0, 100.0], [140.0, 50.0], 4.0),
        ];
        let out = link(pieces, 1.0, &Array2::zeros((300, 300)));
        assert_eq!(
            out.len(),
            4,
            "{:?}",
            out.iter().map(|p| p.m.length_px).collect::<Vec<_>>()
        );
        let joined = out
            .iter()
            .find(|p| p.m.length_px > 150.0)
            .expect("joined hair");
        assert_eq!(joined.m.profiles, 20);
        assert!((joined.m.width_px - 4.1).abs() < 0.11);
        // Ends at the two outer tips.
        let (a, b) = (joined.m.points[0], *joined.m.points.last().unwrap());
        let xs = [a[0].min(b[0]), a[0].max(b[0])];
        assert_eq!(xs, [0.0, 190.0]);
    }

    #[test]
    fn a_joined_hair_is_flagged_narrow_against_the_optical_blur_as_its_pieces_are() {
        // Profiles are read under blur 1.13 px, 0.5 px of it the profile smoothing: the
        // optics' σ is 1.01 px, so 2.7 px is resolved (2.5 σ = 2.53 px), as `finish`
        // judges each piece; against the profiles' σ it would not be (2.83 px).
        let blur = 1.13;
        assert!(2.7 > RESOLVABLE_WIDTH_SIGMAS * optical_blur(blur));
        assert!(2.7 < RESOLVABLE_WIDTH_SIGMAS * blur);
        let pieces = vec![
            piece([0.0, 100.0], [80.0, 101.0], 2.7),
            piece([110.0, 101.5], [190.0, 102.5], 2.7),
        ];
        let out = link(pieces, blur, &Array2::zeros((300, 300)));
        assert_eq!(out.len(), 1);
        assert!(out[0].m.flag.is_none(), "{:?}", out[0].m.flag);
        // A hair narrower than the optics resolve is still flagged.
        let pieces = vec![
            piece([0.0, 100.0], [80.0, 101.0], 2.3),
            piece([110.0, 101.5], [190.0, 102.5], 2.3),
        ];
        let out = link(pieces, blur, &Array2::zeros((300, 300)));
        assert_eq!(out.len(), 1);
        assert!(out[0]
            .m
            .flag
            .as_deref()
            .unwrap_or("")
            .starts_with("narrower"));
    }

    #[test]
    fn a_retraced_piece_is_dropped_but_a_touching_neighbour_is_kept() {
        let pieces = vec![
            piece([0.0, 100.0], [200.0, 100.0], 10.0),
            // The same hair measured from its edge ridge: same centre, same width.
            piece([30.0, 100.8], [150.0, 100.6], 9.6),
            // A touching neighbour: centre 8 px away.
            piece([0.0, 108.0], [200.0, 108.0], 6.0),
            // A thin hair lying along the wide one's centre but much narrower (a
            // highlight stripe is judged later, by `reject`).
            piece([20.0, 100.0], [180.0, 100.0], 3.0),
            // A short stretch of it measured across a neighbour: same centre, wider.
            piece([60.0, 100.5], [110.0, 100.5], 17.0),
        ];
        let out = deduplicate(pieces);
        let widths: Vec<f64> = out.iter().map(|p| p.m.width_px).collect();
        assert_eq!(widths, vec![10.0, 6.0, 3.0]);
    }
}
