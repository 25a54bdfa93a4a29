//! Stage 7: rejection of measured lines that are not hairs: lines that run inside or
//! along a wider hair (a highlight stripe, a medulla, the edge response beside a dark
//! shaft), and lines that bend far more than a hair over a few millimetres does (rims of
//! air bubbles, ragged scales), lines whose cross-section averages out along them (traced
//! through noise or skin texture), wide faint dark lines with the skin's own colour
//! (skin folds and furrows: shading, not pigment), and, last, the stretches where two
//! hairs lie one over the other, read as one wider line that a member runs on from
//! ([`union_stretches`]), and the lines where hairs reported on their own meet
//! ([`unions_of_reported_hairs`]). Soft furrows and low-contrast lines are
//! rejected earlier, in [`crate::measure::finish`]. Lines kept whose cross-section fades
//! along them have their widths flagged ([`flag_faded`]).

use crate::link::{in_disc, DiscCells};
use crate::load::Colour;
use crate::measure::resample_f64 as resample;
use crate::report::{Hair, Polarity};
use ndarray::Array2;

/// Curvature (1/px) of a line's fitted arc ([`fitted_curvature`]) above which it is not
/// a hair: a bubble rim of radius 60 px reads 0.017. Phantom hairs stay below 0.005
/// (radius ≥ 200 px), but real body hair curls tighter: on `ISIC_0009944` four segments
/// of curly hairs read 0.010–0.014 (radius 70–100 px), so the limit stays at the radius
/// (67 px) the windows' median had.
pub const MAX_CURVATURE: f64 = 0.015;
/// Share of a line's points, those farthest from the first fit, left out of the refit.
const CURVATURE_TRIM: f64 = 0.2;
/// ...and the median turn over windows ([`mean_curvature`]) above which a line is not
/// reported either: a line kinked all along, whose arc can still be flat. On the tuning
/// phantoms (seeds 100, 501, 600, 700, 701; linked lines ≥ 40 px that pass the length
/// rule) this median alone rejected 280 lines on no hair and 92 on a hair, with the fitted
/// arc 298 and 94. Lowering the fitted limit to 0.01 or loosening this one to 0.02 scored
/// better on the phantoms and lost curly hairs, or kept zigzag lines, on the real images.
pub const MAX_WINDOW_CURVATURE: f64 = 0.015;

/// Span (px) over which the direction is taken when measuring curvature.
const CURVATURE_SPAN_PX: f64 = 12.0;
/// A line narrower than this share of a wider hair's width, lying mostly within that
/// hair's band, is a part of it (highlight, medulla, edge) rather than a hair beside it.
const SUBSTRUCTURE_WIDTH_RATIO: f64 = 0.7;
/// Share of a line's length inside a wider hair's band that makes it a substructure.
const SUBSTRUCTURE_SHARE: f64 = 0.6;
/// Shaft of a hair for lines of its own polarity: half its width plus this (px).
const SHAFT_MARGIN_PX: f64 = 0.5;
/// Band around a hair for lines of the other polarity: half its width plus this many blur
/// σ plus 1 px.
const BAND_MARGIN_SIGMAS: f64 = 2.0;

/// Dark lines fainter than this (relative contrast) are judged by their colour: opaque
/// shafts show their own colour, whatever the skin's, but a faint line is skin seen
/// through the hair (or the skin's shading alone). Dark lines at least this clear are the
/// image's reference of what its hairs do to the skin's colour.
const SHADING_MAX_CONTRAST: f64 = 0.3;
/// ...and only lines at least this wide (px): real faint blond and grey hairs can be as
/// neutral as shading (four narrow ones, 0.4–1.9 px, on ISIC_0010844), while on the real
/// images every wider neutral faint line lay on a pigment network, a vessel or glare.
const SHADING_MIN_WIDTH_PX: f64 = 5.0;
/// Fewest clear dark lines for a reference.
const SHADING_MIN_CLEAR: usize = 5;
/// Chroma shift per unit of contrast under which a faint dark line has the skin's colour,
/// only darker: shading (folds, furrows), not pigment. Melanin absorbs blue more than red,
/// so a translucent pigmented hair turns the skin browner (faint hairs on the realistic
/// tuning phantoms: median 0.25), while a shadow darkens every channel alike.
const SHADING_CHROMA_SHIFT: f64 = 0.1;
/// ...where the image's clear dark lines show at least this shift (median): on the
/// phantoms they read 0.05 and up per image (median 0.14–0.21 by set), on eight of the ten
/// ISIC images 0.11–0.45, but 0.08 and −0.05 on a lesion under grey hairs and a blue-cast
/// image, whose faint hairs are as neutral as shading: colour cannot tell them there.
const SHADING_MIN_HAIR_SHIFT: f64 = 0.1;
/// Skin is sampled this far (px) beyond a line's edges.
const SHADING_SKIN_GAP_PX: f64 = 3.0;
/// Colour samples along a line every this many px...
const SHADING_STEP_PX: f64 = 2.0;
/// ...and at least this many of them to judge it.
const SHADING_MIN_SAMPLES: usize = 5;
/// Skin whose chroma is within this of neutral is a grey image (or grey light): its lines'
/// colour tells nothing.
const SHADING_MIN_SKIN_CHROMA: f64 = 0.02;

/// For each hair, whether it is shading rather than a hair: a faint dark line (contrast
/// under `SHADING_MAX_CONTRAST`, at least `SHADING_MIN_WIDTH_PX` wide) whose colour shift
/// from the skin beside it ([`chroma_shift`]) is under `SHADING_CHROMA_SHIFT`, in an image
/// whose clear dark lines show at least `SHADING_MIN_HAIR_SHIFT` (median). All false where
/// the image has too few clear dark lines or no colour to tell by.
pub fn shading(hairs: &[Hair], colour: &Colour) -> Vec<bool> {
    let dark = |h: &Hair| h.polarity == Polarity::Dark;
    let candidate = |h: &Hair| {
        dark(h) && h.contrast < SHADING_MAX_CONTRAST && h.width_px >= SHADING_MIN_WIDTH_PX
    };
    if !hairs.iter().any(candidate) {
        return vec![false; hairs.len()];
    }
    let clear: Vec<f64> = hairs
        .iter()
        .filter(|h| dark(h) && h.contrast >= SHADING_MAX_CONTRAST)
        .filter_map(|h| chroma_shift(h, colour))
        .collect();
    let hair_shift = if clear.len() >= SHADING_MIN_CLEAR {
        crate::stats::median(&clear)
    } else {
        0.0
    };
    hairs
        .iter()
        .map(|h| {
            hair_shift >= SHADING_MIN_HAIR_SHIFT
                && candidate(h)
                && chroma_shift(h, colour).is_some_and(|s| s.abs() < SHADING_CHROMA_SHIFT)
        })
        .collect()
}

/// Chroma shift from the skin on both sides to the middle of a line, per unit of its
/// contrast (median along the line): positive where the line is redder than the skin.
/// `None` for lines too short to sample and where the skin is grey.
pub fn chroma_shift(hair: &Hair, colour: &Colour) -> Option<f64> {
    let pts = resample(&hair.points, SHADING_STEP_PX);
    let half = 0.5 * hair.width_px;
    let skin_at = half + SHADING_SKIN_GAP_PX;
    // The middle of the line: its centre, and halfway to the edges when it is wide enough
    // for those to be inside the shaft.
    let inner: &[f64] = if hair.width_px > 4.0 {
        &[0.0, -0.5, 0.5]
    } else {
        &[0.0]
    };
    let (mut shifts, mut skins) = (Vec::new(), Vec::new());
    for k in 1..pts.len().saturating_sub(1) {
        let (a, b) = (pts[k - 1], pts[k + 1]);
        let len = (b[0] - a[0]).hypot(b[1] - a[1]);
        if len < 1e-9 {
            continue;
        }
        let n = [(a[1] - b[1]) / len, (b[0] - a[0]) / len];
        let at = |d: f64| {
            let (x, y) = (pts[k][0] + d * n[0], pts[k][1] + d * n[1]);
            colour.chroma(x as f32, y as f32).map(f64::from)
        };
        let line: Option<f64> = inner.iter().map(|&f| at(f * half)).sum();
        if let (Some(line), Some(l), Some(r)) = (line, at(-skin_at), at(skin_at)) {
            let skin = 0.5 * (l + r);
            shifts.push(line / inner.len() as f64 - skin);
            skins.push(skin.abs());
        }
    }
    (shifts.len() >= SHADING_MIN_SAMPLES
        && crate::stats::median(&skins) >= SHADING_MIN_SKIN_CHROMA
        && hair.contrast > 0.0)
        .then(|| crate::stats::median(&shifts) / hair.contrast)
}

/// Share of a line's own contrast (the median peak of its profiles, each read where that
/// profile is darkest or lightest) that its cross-section averaged along the line must
/// keep ([`coherent_share`]). A hair darkens (or lightens) the skin all along one smooth
/// path, so its averaged cross-section keeps nearly all of it (median 0.95–0.98 on the
/// phantoms' hair lines); a line traced through noise or skin texture is made of the
/// extreme of every profile, and across its smoothed path that averages out. On the tuning
/// phantoms (realistic 100 and 501, hard 901, easy 701) 0.4 marked 41 of the 159 reported
/// lines on no hair and 9 of 1,649 on a hair (6 of the 9 off their hair's width by 1–10
/// px: 15.1 px for 10.7, 11.9 for 22.0); on a microscope image of hair snippets
/// (`fibermorph/027_demo_nocurv`) a 0.7 px line across the bare slide read 0.24 and the
/// snippets 0.94–0.97.
pub const MIN_COHERENT_SHARE: f64 = 0.4;
/// Half-window (px) of the moving average that smooths a line's path for that test: a
/// hair's path is smooth over tens of px, a noise line's wanders within a few.
const COHERENCE_SMOOTH_PX: usize = 10;
/// Skin (px) beyond each edge in the cross-section; its outer 3 px give the baseline.
const COHERENCE_SKIN_PX: f64 = 6.0;
/// Sampling step (px) across the line.
const COHERENCE_STEP_PX: f64 = 0.5;
/// Samples at each end of the cross-section that give the skin's level (3 px).
const COHERENCE_BASE_SAMPLES: usize = 6;
/// Samples each side of the centre averaged for the line's own level (±1 px): the
/// smoothed path of a hair stays within that of its centre.
const COHERENCE_CENTRE_SAMPLES: usize = 2;

/// The contrast of a line's cross-section, averaged (median per offset) along its path
/// smoothed over ±`COHERENCE_SMOOTH_PX`, as a share of the line's own contrast, on the
/// flat-fielded `contrast` image: about 0.9 for a hair, near 0 for a line made of the
/// extremes of noise or texture. 1 when the line is too short to tell or has no contrast.
pub fn coherent_share(hair: &Hair, contrast: &Array2<f32>) -> f64 {
    let f32_points: Vec<[f32; 2]> = hair
        .points
        .iter()
        .map(|p| [p[0] as f32, p[1] as f32])
        .collect();
    let pts = crate::measure::resample(&f32_points, 1.0);
    let n = pts.len();
    if n < 3 || hair.contrast <= 0.0 {
        return 1.0;
    }
    // The centreline smoothing of the measuring stage, over a wider window.
    let path: Vec<[f64; 2]> = crate::measure::smooth(&pts, COHERENCE_SMOOTH_PX)
        .iter()
        .map(|p| [p[0] as f64, p[1] as f64])
        .collect();
    let reach = ((0.5 * hair.width_px + COHERENCE_SKIN_PX) / COHERENCE_STEP_PX).floor() as usize;
    let offsets = 2 * reach + 1;
    let grid = crate::enhance::Bilinear::new(contrast);
    let (h, w) = contrast.dim();
    let inside =
        |x: f64, y: f64| x >= 0.0 && y >= 0.0 && x <= (w - 1) as f64 && y <= (h - 1) as f64;
    if offsets < 2 * (COHERENCE_BASE_SAMPLES + COHERENCE_CENTRE_SAMPLES) + 1 {
        return 1.0;
    }
    // Only the offsets the skin and the centre are read from: the outer ones on both sides,
    // then the central ones.
    let used: Vec<usize> = (0..COHERENCE_BASE_SAMPLES)
        .chain(offsets - COHERENCE_BASE_SAMPLES..offsets)
        .chain(reach - COHERENCE_CENTRE_SAMPLES..=reach + COHERENCE_CENTRE_SAMPLES)
        .collect();
    // Samples outside the image are left out (clamped, they would repeat the border).
    let mut columns = vec![Vec::with_capacity(n); used.len()];
    for i in 0..n {
        let (p, q) = (path[i.saturating_sub(1)], path[(i + 1).min(n - 1)]);
        let (tx, ty) = (q[0] - p[0], q[1] - p[1]);
        let len = tx.hypot(ty);
        if len < 1e-9 {
            continue;
        }
        let normal = [-ty / len, tx / len];
        for (&j, column) in used.iter().zip(columns.iter_mut()) {
            let o = (j as f64 - reach as f64) * COHERENCE_STEP_PX;
            let (x, y) = (path[i][0] + normal[0] * o, path[i][1] + normal[1] * o);
            if inside(x, y) {
                column.push(grid.at(x as f32, y as f32) as f64);
            }
        }
    }
    let mut level = columns
        .iter_mut()
        .map(|c| (!c.is_empty()).then(|| crate::stats::median_mut(c)));
    let outer: Vec<f64> = level
        .by_ref()
        .take(2 * COHERENCE_BASE_SAMPLES)
        .flatten()
        .collect();
    let core: Vec<f64> = level.flatten().collect();
    if outer.is_empty() || core.is_empty() {
        return 1.0;
    }
    let skin = crate::stats::median(&outer);
    let centre = core.iter().sum::<f64>() / core.len() as f64;
    // Dark hairs have negative contrast.
    let depth = match hair.polarity {
        Polarity::Dark => skin - centre,
        Polarity::Light => centre - skin,
    };
    depth / hair.contrast
}

/// Share under which a reported line's width is flagged as uncertain: its cross-section
/// fades along it (a crossing, a neighbour or a second hair alongside over part of it, or a
/// line that runs off its hair). On the tuning phantoms (0.3.0's lines matched to one truth
/// hair each, ≥ 3 px) the width error grows as the share falls: p90 0.43–0.45 px at ≥ 0.95
/// on the realistic sets (1.15 hard), 0.53–0.73 (1.02) at 0.90–0.95, 0.82–2.3 (2.0) at
/// 0.85–0.90, and several px below. Flagging under 0.85 or under 0.9 took the unflagged p90
/// of realistic seeds 100 and 501 alike from 0.539 and 0.636 px to 0.52 and 0.55, and 0.9
/// flagged a third more hairs (74 and 92 against 57 and 76; 33 and 42 before).
pub const FADED_SHARE: f64 = 0.85;

/// Flags the width of each unflagged hair whose [`coherent_share`] (`shares`, one per hair
/// in order) is under [`FADED_SHARE`]; the lines and widths stay.
pub fn flag_faded(hairs: &mut [Hair], shares: &[f64]) {
    for (h, &share) in hairs.iter_mut().zip(shares) {
        if h.flag.is_none() && share < FADED_SHARE {
            h.flag = Some(format!(
                "its cross-section averaged along it keeps {:.0}% of its contrast (a crossing, a neighbour or a second hair alongside?): width uncertain",
                100.0 * share
            ));
        }
    }
}

/// Whether a line bends more than a hair does: its fitted curvature over `MAX_CURVATURE`,
/// or its median turn over windows over `MAX_WINDOW_CURVATURE`.
pub fn too_curved(points: &[[f64; 2]]) -> bool {
    // Both measures on the same 1 px resampling, done once.
    let pts = resample(points, 1.0);
    arc_curvature(&pts) > MAX_CURVATURE || window_curvature(&pts) > MAX_WINDOW_CURVATURE
}

/// Curvature (1/px) of a polyline from the parabola fitted by least squares in the frame
/// of its chord, refitted without the `CURVATURE_TRIM` share of its points farthest from
/// the first fit (a kink where two pieces were linked): the circle through the parabola's
/// ends and its middle, whose sagitta is the parabola's. Jitter along the line averages
/// out over the whole line instead of biasing each window, and a circular arc reads its
/// curvature whatever its turn (a half-turn's parabola alone reads twice it). 0 for lines
/// too short to tell (as [`mean_curvature`]); a line whose ends meet reads `f64::INFINITY`.
pub fn fitted_curvature(points: &[[f64; 2]]) -> f64 {
    arc_curvature(&resample(points, 1.0))
}

/// [`fitted_curvature`] of a polyline resampled at 1 px.
fn arc_curvature(pts: &[[f64; 2]]) -> f64 {
    if pts.len() < 2 * CURVATURE_SPAN_PX as usize + 1 {
        return 0.0;
    }
    let (a, b) = (pts[0], pts[pts.len() - 1]);
    let chord = (b[0] - a[0]).hypot(b[1] - a[1]);
    if chord < 1.0 {
        return f64::INFINITY;
    }
    let u = [(b[0] - a[0]) / chord, (b[1] - a[1]) / chord];
    // Along the chord, scaled to [0, 1] for a well-conditioned fit; across it in px.
    let (s, y): (Vec<f64>, Vec<f64>) = pts
        .iter()
        .map(|p| {
            let (dx, dy) = (p[0] - a[0], p[1] - a[1]);
            ((dx * u[0] + dy * u[1]) / chord, dy * u[0] - dx * u[1])
        })
        .unzip();
    let mut keep = vec![true; pts.len()];
    let mut c = quadratic_fit(&s, &y, &keep);
    let resid: Vec<f64> = s
        .iter()
        .zip(&y)
        .map(|(&s, &y)| (y - c[0] - c[1] * s - c[2] * s * s).abs())
        .collect();
    let mut sorted = resid.clone();
    let limit = crate::stats::quantile_mut(&mut sorted, 1.0 - CURVATURE_TRIM);
    for (k, r) in keep.iter_mut().zip(&resid) {
        *k = *r <= limit;
    }
    c = quadratic_fit(&s, &y, &keep);
    // The parabola's deviation from its chord at the middle (s = 1/2), in px.
    let sagitta = 0.25 * c[2].abs();
    let half = 0.5 * chord;
    2.0 * sagitta / (half * half + sagitta * sagitta)
}

/// Least-squares coefficients [c0, c1, c2] of y = c0 + c1·s + c2·s² over the kept points
/// (normal equations, solved by Cramer's rule; zeros when they are singular).
fn quadratic_fit(s: &[f64], y: &[f64], keep: &[bool]) -> [f64; 3] {
    // Sums of s^k (k = 0..4) and of y·s^k (k = 0..2).
    let (mut m, mut r) = ([0.0f64; 5], [0.0f64; 3]);
    for ((&s, &y), _) in s.iter().zip(y).zip(keep).filter(|(_, &k)| k) {
        let mut p = 1.0;
        for k in 0..5 {
            m[k] += p;
            if k < 3 {
                r[k] += y * p;
            }
            p *= s;
        }
    }
    let a = [[m[0], m[1], m[2]], [m[1], m[2], m[3]], [m[2], m[3], m[4]]];
    let det = |a: &[[f64; 3]; 3]| {
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    };
    let d = det(&a);
    if d.abs() < 1e-12 {
        return [0.0; 3];
    }
    let mut out = [0.0; 3];
    for (col, o) in out.iter_mut().enumerate() {
        let mut b = a;
        for row in 0..3 {
            b[row][col] = r[row];
        }
        *o = det(&b) / d;
    }
    out
}

/// Typical absolute curvature (rad/px) of a polyline: the median over windows of
/// `CURVATURE_SPAN_PX` of the direction change per px. A median, so the odd kink where a
/// trace meets a crossing hair does not count, while a bubble rim (curved all along) does.
/// 0 for lines too short to tell.
pub fn mean_curvature(points: &[[f64; 2]]) -> f64 {
    window_curvature(&resample(points, 1.0))
}

/// [`mean_curvature`] of a polyline resampled at 1 px.
fn window_curvature(pts: &[[f64; 2]]) -> f64 {
    let k = CURVATURE_SPAN_PX as usize;
    if pts.len() < 2 * k + 1 {
        return 0.0;
    }
    let mut turns = Vec::new();
    let mut i = k;
    while i + k < pts.len() {
        let a = (pts[i][1] - pts[i - k][1]).atan2(pts[i][0] - pts[i - k][0]);
        let b = (pts[i + k][1] - pts[i][1]).atan2(pts[i + k][0] - pts[i][0]);
        let mut d = b - a;
        while d > std::f64::consts::PI {
            d -= 2.0 * std::f64::consts::PI;
        }
        while d < -std::f64::consts::PI {
            d += 2.0 * std::f64::consts::PI;
        }
        turns.push(d.abs() / CURVATURE_SPAN_PX);
        i += k;
    }
    crate::stats::median(&turns)
}

/// For each hair, whether it is a substructure of a wider hair (see module doc).
/// `size` is (width, height) of the image, `blur` the blur σ (px).
pub fn substructures(hairs: &[Hair], size: (usize, usize), blur: f64) -> Vec<bool> {
    let (w, h) = size;
    // Same-polarity lines are parts of a hair only inside its shaft (a line centred beyond
    // its edge is a hair lying along it); lines of the other polarity also in the band
    // beyond the edges, where a dark shaft's flanks respond as light lines.
    let shaft_r = |i: usize| 0.5 * hairs[i].width_px + SHAFT_MARGIN_PX;
    let band_r = |i: usize| 0.5 * hairs[i].width_px + BAND_MARGIN_SIGMAS * blur + 1.0;
    let mut order: Vec<usize> = (0..hairs.len()).collect();
    order.sort_by(|&a, &b| {
        hairs[b]
            .width_px
            .total_cmp(&hairs[a].width_px)
            .then(a.cmp(&b))
    });
    let pts: Vec<Vec<[f64; 2]>> = hairs.iter().map(|h| resample(&h.points, 1.0)).collect();
    // At a pixel, the owner is the widest hair (first in `order`) whose band covers it and
    // the shaft the widest whose shaft does, each the union of the discs around its points.
    let cells = DiscCells::new(&pts, &order, |i| shaft_r(i).max(band_r(i)), (h, w));
    // (owner, shaft) at pixel (x, y) of the image, `u32::MAX` where none covers it.
    let cover = |x: usize, y: usize| {
        let (mut owner, mut shaft) = (u32::MAX, u32::MAX);
        for (i, c) in cells.near(x, y) {
            if owner == u32::MAX && in_disc(x, y, c, band_r(i)) {
                owner = i as u32;
            }
            if shaft == u32::MAX && in_disc(x, y, c, shaft_r(i)) {
                shaft = i as u32;
            }
            if owner != u32::MAX && shaft != u32::MAX {
                break;
            }
        }
        (owner, shaft)
    };
    hairs
        .iter()
        .zip(&pts)
        .enumerate()
        .map(|(i, (hair, pts))| {
            let inside = pts
                .iter()
                .filter(|p| {
                    let (x, y) = (p[0].round() as i64, p[1].round() as i64);
                    if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                        return false;
                    }
                    let (o, s) = cover(x as usize, y as usize);
                    // The widest hair covering the point, within its shaft for the same
                    // polarity.
                    let o = if s != u32::MAX && hairs[s as usize].polarity == hair.polarity {
                        s
                    } else if o != u32::MAX && hairs[o as usize].polarity != hair.polarity {
                        o
                    } else {
                        u32::MAX
                    };
                    o != u32::MAX
                        && o as usize != i
                        && hair.width_px < SUBSTRUCTURE_WIDTH_RATIO * hairs[o as usize].width_px
                })
                .count();
            !pts.is_empty() && inside as f64 >= SUBSTRUCTURE_SHARE * pts.len() as f64
        })
        .collect()
}

/// Share of a line's length along which a narrower line of its polarity must run inside
/// its measured extent, on one side of its centre, to count as one member of a pair.
const PAIR_MEMBER_SHARE: f64 = 0.5;
/// Members of a pair that [`substructures`] would take for parts of it (narrower than
/// `SUBSTRUCTURE_WIDTH_RATIO` of it) must add up to at least this share of its width: two
/// touching shafts make up the whole pair (the gap between them adds 0–1 px)...
const PAIR_MIN_WIDTH_SUM_SHARE: f64 = 0.85;
/// ...and lie side by side: their centrelines at least this share of their mean width
/// apart (median over the narrower one's points). The two halves of a shaft split by a
/// medulla or a highlight stripe are each measured as a whole hair, wider than they are,
/// so their measured extents overlap (on realistic seed 502, a 21 px shaft's halves
/// read 8.8 and 13.5 px with centrelines 10.1 px apart).
const PAIR_MIN_SPACING_SHARE: f64 = 0.95;
/// Slack (px) of the cell lookup around a line's extent (points are looked up by pixel).
const PAIR_LOOKUP_SLACK_PX: f64 = 2.0;

/// For each hair, whether it is two touching hairs read as one: two narrower hairs of its
/// polarity, each reported on its own, run inside its measured extent (centre ± half its
/// width) along at least `PAIR_MEMBER_SHARE` of its length, one on each side of its
/// centre. Such a line sits on the seam between the two shafts and measures both (on the
/// phantoms, 13 such lines in 130 images: 7 on a truth hair reading 8–40 px too wide, 6
/// on none). `substructures` runs first: a highlight-split shaft's two halves are parts of
/// it, and are gone by then.
pub fn merged_pairs(hairs: &[Hair], size: (usize, usize)) -> Vec<bool> {
    pairs_read_as_one(hairs, size, |_, _, _, _| true)
}

/// [`merged_pairs`] for members narrower than [`substructures`] keeps beside a wide line,
/// run before it: two touching hairs read as one line of their summed width, whose
/// members are too narrow beside it to survive as hairs (two 14 and 13 px hairs read as
/// one 28 px line; realistic seed 502, image 14). Such members must add up to the
/// line's width (`PAIR_MIN_WIDTH_SUM_SHARE`) and lie side by side
/// (`PAIR_MIN_SPACING_SHARE`), which the halves of a split shaft do not.
pub fn side_by_side_pairs(hairs: &[Hair], size: (usize, usize)) -> Vec<bool> {
    pairs_read_as_one(hairs, size, |i, x, y, pts| {
        let sum = hairs[x].width_px + hairs[y].width_px;
        let narrow =
            hairs[x].width_px.min(hairs[y].width_px) < SUBSTRUCTURE_WIDTH_RATIO * hairs[i].width_px;
        narrow
            && sum >= PAIR_MIN_WIDTH_SUM_SHARE * hairs[i].width_px
            && spacing(&pts[x], &pts[y]) >= PAIR_MIN_SPACING_SHARE * 0.5 * sum
    })
}

/// Lines with a member of their polarity inside their extent on each side (see
/// [`merged_pairs`]) for which `pair(line, left member, right member, points)` holds.
fn pairs_read_as_one(
    hairs: &[Hair],
    size: (usize, usize),
    pair: impl Fn(usize, usize, usize, &[Vec<[f64; 2]>]) -> bool,
) -> Vec<bool> {
    let (w, h) = size;
    let pts: Vec<Vec<[f64; 2]>> = hairs.iter().map(|h| resample(&h.points, 1.0)).collect();
    let half = |i: usize| 0.5 * hairs[i].width_px;
    let order: Vec<usize> = (0..hairs.len()).collect();
    let cells = DiscCells::new(&pts, &order, |i| half(i) + PAIR_LOOKUP_SLACK_PX, (h, w));
    // (wide line, narrower line) -> points of the narrower one inside the wide one's
    // extent, on the left and on the right of its centreline.
    let mut sides: std::collections::BTreeMap<(usize, usize), [usize; 2]> =
        std::collections::BTreeMap::new();
    let mut nearest: Vec<(usize, f64, usize)> = Vec::new();
    for (j, pj) in pts.iter().enumerate() {
        for p in pj {
            let (x, y) = (p[0].round() as i64, p[1].round() as i64);
            if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                continue;
            }
            // The nearest point of each wider line of this polarity whose extent holds p.
            nearest.clear();
            for (i, k) in cells.near_indices(x as usize, y as usize) {
                if i == j
                    || hairs[i].polarity != hairs[j].polarity
                    || hairs[i].width_px <= hairs[j].width_px
                {
                    continue;
                }
                let c = pts[i][k];
                let d2 = (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2);
                if d2 > half(i) * half(i) {
                    continue;
                }
                match nearest.iter_mut().find(|e| e.0 == i) {
                    Some(e) if e.1 <= d2 => {}
                    Some(e) => *e = (i, d2, k),
                    None => nearest.push((i, d2, k)),
                }
            }
            for &(i, _, k) in &nearest {
                let line = &pts[i];
                let (a, b) = (line[k.saturating_sub(1)], line[(k + 1).min(line.len() - 1)]);
                let c = line[k];
                let cross = (b[0] - a[0]) * (p[1] - c[1]) - (b[1] - a[1]) * (p[0] - c[0]);
                sides.entry((i, j)).or_default()[(cross > 0.0) as usize] += 1;
            }
        }
    }
    // Per wide line, the members found on each side; merged when two different lines are.
    let mut members: Vec<[Vec<usize>; 2]> = vec![[Vec::new(), Vec::new()]; hairs.len()];
    for (&(i, j), counts) in &sides {
        let need = PAIR_MEMBER_SHARE * pts[i].len() as f64;
        for (s, &n) in counts.iter().enumerate() {
            if n as f64 >= need {
                members[i][s].push(j);
            }
        }
    }
    members
        .iter()
        .enumerate()
        .map(|(i, [a, b])| {
            a.iter()
                .any(|&x| b.iter().any(|&y| x != y && pair(i, x, y, &pts)))
        })
        .collect()
}

/// Median distance (px) from the points of `a` to the nearest point of `b` (1 px apart).
fn spacing(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::INFINITY;
    }
    let d: Vec<f64> = a
        .iter()
        .map(|p| {
            b.iter()
                .map(|q| (p[0] - q[0]).hypot(p[1] - q[1]))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    crate::stats::median(&d)
}

/// A flagged line continued end to end by a narrower line of its polarity is the stretch
/// where two hairs overlap ([`union_stretches`]): its end lies within this distance (px)
/// of the narrower line's end...
const UNION_END_GAP_PX: f64 = 30.0;
/// ...the two ends face each other within this angle (°)...
const UNION_MAX_ANGLE_DEG: f64 = 25.0;
/// ...the narrower end lies within half the flagged line's width (+ this slack, px) of its
/// centreline continued (a member leaves the overlap from one side of its middle)...
const UNION_LATERAL_SLACK_PX: f64 = 1.0;
/// ...and the flagged line is this many times as wide as the narrower one: wider than one
/// shaft whose width varies along it...
const UNION_MIN_WIDTH_RATIO: f64 = 1.35;
/// ...but not more than two such shafts side by side (a thick hair met end to end by a thin
/// one is wider still)...
const UNION_MAX_WIDTH_RATIO: f64 = 2.1;
/// ...with room for another member at least this wide (px; the widths' difference): a
/// smaller step is what one tapering or unevenly read shaft shows (real images)...
const UNION_MIN_OTHER_PX: f64 = 3.0;
/// ...and the narrower end off the flagged line's centreline by at least this much (px)
/// and this share of that other member's width: a member leaves the overlap half the
/// other member's width off its middle, a tapering shaft goes on along it (the real
/// images' such pairs lie 0–1.3 px off, the phantoms' overlaps 1.7–17 px).
const UNION_MIN_LATERAL_PX: f64 = 1.5;
const UNION_MIN_LATERAL_SHARE: f64 = 0.15;
/// Arc length (px) from a line's end over which its end direction is taken.
const UNION_END_SPAN_PX: f64 = 12.0;

/// A line's end: the end point and the outward unit direction over `UNION_END_SPAN_PX`.
fn outward_end(points: &[[f64; 2]], at_start: bool) -> ([f64; 2], [f64; 2]) {
    let at = |k: usize| {
        if at_start {
            points[k]
        } else {
            points[points.len() - 1 - k]
        }
    };
    let tip = at(0);
    let (mut arc, mut k) = (0.0, 0);
    while k + 1 < points.len() && arc < UNION_END_SPAN_PX {
        k += 1;
        arc += (at(k)[0] - at(k - 1)[0]).hypot(at(k)[1] - at(k - 1)[1]);
    }
    let d = [tip[0] - at(k)[0], tip[1] - at(k)[1]];
    let n = d[0].hypot(d[1]);
    if n > 0.0 {
        (tip, [d[0] / n, d[1] / n])
    } else {
        (tip, [0.0, 0.0])
    }
}

/// Whether the end `(e, d)` of the wider line `u` is continued by the end `(f, g)` of the
/// narrower line `a` (see `UNION_END_GAP_PX` and the constants after it).
fn continues(
    u: &Hair,
    a: &Hair,
    (e, d): ([f64; 2], [f64; 2]),
    (f, g): ([f64; 2], [f64; 2]),
) -> bool {
    let ratio = u.width_px / a.width_px.max(1e-9);
    let gap = [f[0] - e[0], f[1] - e[1]];
    let along = gap[0] * d[0] + gap[1] * d[1];
    let lateral = (gap[1] * d[0] - gap[0] * d[1]).abs();
    let facing = -(d[0] * g[0] + d[1] * g[1]);
    let other = u.width_px - a.width_px;
    u.polarity == a.polarity
        && (UNION_MIN_WIDTH_RATIO..=UNION_MAX_WIDTH_RATIO).contains(&ratio)
        && other >= UNION_MIN_OTHER_PX
        && gap[0].hypot(gap[1]) <= UNION_END_GAP_PX
        && along >= -u.width_px
        && lateral <= 0.5 * u.width_px + UNION_LATERAL_SLACK_PX
        && lateral >= UNION_MIN_LATERAL_PX.max(UNION_MIN_LATERAL_SHARE * other)
        && facing >= UNION_MAX_ANGLE_DEG.to_radians().cos()
}

/// For each hair, whether it is the stretch where two hairs overlap, read as one line of
/// about their summed width: its width is flagged (it varies along it, or it fades, or it
/// stands out) and a narrower line of its polarity continues it end to end, a member
/// leaving the overlap (`continues`). The linker keeps such lines apart for their
/// disagreeing widths; reported, the overlap is an extra hair 1.35–2.1 times as wide as
/// the hairs it holds, and in `validate` it is scored against one of them. Its members
/// are reported where they run apart. Ends are looked up on a grid of
/// `UNION_END_GAP_PX` cells: the cost grows with the number of lines, not its square.
pub fn union_stretches(hairs: &[Hair]) -> Vec<bool> {
    let cell = |p: [f64; 2]| {
        (
            (p[0] / UNION_END_GAP_PX).floor() as i64,
            (p[1] / UNION_END_GAP_PX).floor() as i64,
        )
    };
    let ends: Vec<[([f64; 2], [f64; 2]); 2]> = hairs
        .iter()
        .map(|h| [outward_end(&h.points, true), outward_end(&h.points, false)])
        .collect();
    let mut grid: std::collections::HashMap<(i64, i64), Vec<(usize, usize)>> =
        std::collections::HashMap::new();
    for (i, e) in ends.iter().enumerate() {
        for (k, end) in e.iter().enumerate() {
            grid.entry(cell(end.0)).or_default().push((i, k));
        }
    }
    hairs
        .iter()
        .enumerate()
        .map(|(i, u)| {
            u.flag.is_some()
                && ends[i].iter().any(|&end| {
                    let (cx, cy) = cell(end.0);
                    (cx - 1..=cx + 1).any(|x| {
                        (cy - 1..=cy + 1).any(|y| {
                            grid.get(&(x, y)).is_some_and(|v| {
                                v.iter().any(|&(j, k)| {
                                    j != i && continues(u, &hairs[j], end, ends[j][k])
                                })
                            })
                        })
                    })
                })
        })
        .collect()
}

/// A line whose measured extent (centre ± half its width) holds narrower lines of its
/// polarity along at least this share of its length is where those hairs, reported on
/// their own, lie together or cross ([`unions_of_reported_hairs`])...
const UNION_HELD_SHARE: f64 = 0.5;
/// ...each at least this many times narrower: widths read along one shaft differ by less,
/// and an overlap of two hairs is wider than either. Lines more than
/// `UNION_MAX_WIDTH_RATIO` times narrower do not count: a thin hair crossing a thick one
/// at a small angle lies inside its extent for several of its widths (easy seed 702,
/// image 0: a 4.1 px hair along 59% of a 10.0 px one).
const UNION_HELD_WIDTH_RATIO: f64 = 1.15;

/// For each hair, whether it is the union of hairs reported on their own: narrower lines of
/// its polarity run inside its measured extent along at least `UNION_HELD_SHARE` of its
/// length. Where hairs of one opening converge, or cross at a small angle, the union is
/// traced as one more line of about their summed width, which `validate` scores against
/// one of them (tuning phantoms: 11 such lines of 1,740, each reading its truth hair
/// 0.6–17 px too wide; on the real images, lines that hop from hair to hair across
/// crossings). Unlike [`merged_pairs`], one member is enough, and the members may run on
/// beyond the line: they are the hairs, it is their meeting.
pub fn unions_of_reported_hairs(hairs: &[Hair], size: (usize, usize)) -> Vec<bool> {
    let (w, h) = size;
    let pts: Vec<Vec<[f64; 2]>> = hairs.iter().map(|h| resample(&h.points, 1.0)).collect();
    let half = |i: usize| 0.5 * hairs[i].width_px;
    let order: Vec<usize> = (0..hairs.len()).collect();
    let cells = DiscCells::new(&pts, &order, |i| half(i) + PAIR_LOOKUP_SLACK_PX, (h, w));
    // Points of each line with a narrower line's point inside its extent.
    let mut held: Vec<Vec<bool>> = pts.iter().map(|p| vec![false; p.len()]).collect();
    for (j, pj) in pts.iter().enumerate() {
        for q in pj {
            let (x, y) = (q[0].round() as i64, q[1].round() as i64);
            if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                continue;
            }
            for (i, k) in cells.near_indices(x as usize, y as usize) {
                if i == j
                    || hairs[i].polarity != hairs[j].polarity
                    || hairs[i].width_px < UNION_HELD_WIDTH_RATIO * hairs[j].width_px
                    || hairs[i].width_px > UNION_MAX_WIDTH_RATIO * hairs[j].width_px
                {
                    continue;
                }
                let c = pts[i][k];
                if (q[0] - c[0]).powi(2) + (q[1] - c[1]).powi(2) <= half(i) * half(i) {
                    held[i][k] = true;
                }
            }
        }
    }
    held.iter()
        .map(|m| {
            !m.is_empty()
                && m.iter().filter(|&&b| b).count() as f64 >= UNION_HELD_SHARE * m.len() as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Polarity;

    fn hair(points: Vec<[f64; 2]>, width: f64) -> Hair {
        Hair::for_test(points, width)
    }

    fn line(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<[f64; 2]> {
        (0..=100)
            .map(|i| {
                let t = i as f64 / 100.0;
                [x0 + t * (x1 - x0), y0 + t * (y1 - y0)]
            })
            .collect()
    }

    /// The painted owner maps `substructures` replaced (reference for the lookup).
    fn substructures_painted(hairs: &[Hair], (w, h): (usize, usize), blur: f64) -> Vec<bool> {
        let mut owner = vec![u32::MAX; w * h];
        let mut shaft = vec![u32::MAX; w * h];
        let mut order: Vec<usize> = (0..hairs.len()).collect();
        order.sort_by(|&a, &b| {
            hairs[b]
                .width_px
                .total_cmp(&hairs[a].width_px)
                .then(a.cmp(&b))
        });
        for (map, own_shaft) in [(&mut owner, false), (&mut shaft, true)] {
            for &i in &order {
                let r = 0.5 * hairs[i].width_px
                    + if own_shaft {
                        SHAFT_MARGIN_PX
                    } else {
                        BAND_MARGIN_SIGMAS * blur + 1.0
                    };
                for p in resample(&hairs[i].points, 1.0) {
                    crate::link::disc_rows(p, r, (h, w), |y, xs| {
                        for o in &mut map[y * w + xs.start..y * w + xs.end] {
                            if *o == u32::MAX {
                                *o = i as u32;
                            }
                        }
                    });
                }
            }
        }
        hairs
            .iter()
            .enumerate()
            .map(|(i, hair)| {
                let pts = resample(&hair.points, 1.0);
                let inside = pts
                    .iter()
                    .filter(|p| {
                        let (x, y) = (p[0].round() as i64, p[1].round() as i64);
                        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                            return false;
                        }
                        let (o, s) = (
                            owner[y as usize * w + x as usize],
                            shaft[y as usize * w + x as usize],
                        );
                        let o = if s != u32::MAX && hairs[s as usize].polarity == hair.polarity {
                            s
                        } else if o != u32::MAX && hairs[o as usize].polarity != hair.polarity {
                            o
                        } else {
                            u32::MAX
                        };
                        o != u32::MAX
                            && o as usize != i
                            && hair.width_px < SUBSTRUCTURE_WIDTH_RATIO * hairs[o as usize].width_px
                    })
                    .count();
                !pts.is_empty() && inside as f64 >= SUBSTRUCTURE_SHARE * pts.len() as f64
            })
            .collect()
    }

    #[test]
    fn lookup_matches_the_painted_maps() {
        let mut next = crate::stats::test_uniform(0x9E37_79B9_7F4A_7C15u64);
        let size = (97, 61);
        let mut rejected = 0;
        for _ in 0..300 {
            // Clusters of nearly parallel lines of mixed widths and polarities, some
            // reaching beyond the image, some bent.
            let n = 1 + (next() * 12.0) as usize;
            let (cx, cy, a) = (next() * 97.0, next() * 61.0, next() * 3.2);
            let hairs: Vec<Hair> = (0..n)
                .map(|_| {
                    let (dx, dy) = (a + 0.3 * next()).sin_cos();
                    let (ox, oy) = (cx + 10.0 * next() - 5.0, cy + 10.0 * next() - 5.0);
                    let (l0, l1, bend) = (-60.0 * next(), 60.0 * next(), next() - 0.5);
                    let pts: Vec<[f64; 2]> = (0..=30)
                        .map(|k| {
                            let t = l0 + (l1 - l0) * k as f64 / 30.0;
                            let b = bend * 0.02 * t * t;
                            [ox + t * dx - b * dy, oy + t * dy + b * dx]
                        })
                        .collect();
                    let mut hr = hair(pts, 0.5 + 14.0 * next());
                    if next() < 0.4 {
                        hr.polarity = Polarity::Light;
                    }
                    hr
                })
                .collect();
            let blur = 0.5 + 2.0 * next();
            let fast = substructures(&hairs, size, blur);
            assert_eq!(fast, substructures_painted(&hairs, size, blur));
            rejected += fast.iter().filter(|&&r| r).count();
        }
        assert!(rejected > 50, "the cases reject too little: {rejected}");
    }

    #[test]
    fn straight_lines_have_no_curvature_and_circles_do() {
        assert!(mean_curvature(&line(0.0, 0.0, 200.0, 50.0)) < 1e-6);
        let circle: Vec<[f64; 2]> = (0..=300)
            .map(|i| {
                let a = i as f64 / 300.0 * 1.5 * std::f64::consts::PI;
                [100.0 + 50.0 * a.cos(), 100.0 + 50.0 * a.sin()]
            })
            .collect();
        let k = mean_curvature(&circle);
        assert!((k - 1.0 / 50.0).abs() < 0.002, "{k}");
    }

    #[test]
    fn quadratic_fit_recovers_a_parabola_and_ignores_left_out_points() {
        let s: Vec<f64> = (0..40).map(|i| i as f64 / 39.0).collect();
        let mut y: Vec<f64> = s.iter().map(|&s| 1.5 - 2.0 * s + 7.0 * s * s).collect();
        let mut keep = vec![true; s.len()];
        // An outlier, left out of the fit.
        y[20] += 50.0;
        keep[20] = false;
        let c = quadratic_fit(&s, &y, &keep);
        for (got, want) in c.iter().zip([1.5, -2.0, 7.0]) {
            assert!((got - want).abs() < 1e-9, "{c:?}");
        }
    }

    #[test]
    fn fitted_curvature_reads_arcs_and_is_not_fooled_by_a_kink_or_jitter() {
        let arc = |r: f64, turn: f64| -> Vec<[f64; 2]> {
            (0..=200)
                .map(|i| {
                    let a = i as f64 / 200.0 * turn;
                    [300.0 + r * a.cos(), 300.0 + r * a.sin()]
                })
                .collect()
        };
        assert!(fitted_curvature(&line(0.0, 0.0, 200.0, 50.0)) < 1e-9);
        // A quarter turn of radius 60 px (a bubble rim) and of 250 px (a curved hair), and
        // a curly hair of radius 150 px over half a turn and 0.65 of a turn.
        let k = fitted_curvature(&arc(60.0, 0.5 * std::f64::consts::PI));
        assert!((k - 1.0 / 60.0).abs() < 0.002 && k > MAX_CURVATURE, "{k}");
        let k = fitted_curvature(&arc(250.0, 0.5 * std::f64::consts::PI));
        assert!((k - 1.0 / 250.0).abs() < 0.0005, "{k}");
        for turn in [1.0, 1.3] {
            let k = fitted_curvature(&arc(150.0, turn * std::f64::consts::PI));
            assert!((k - 1.0 / 150.0).abs() < 0.001, "{turn}: {k}");
        }
        // Three quarters of a rim and a closed ring are curved too.
        assert!(too_curved(&arc(60.0, 1.5 * std::f64::consts::PI)));
        assert!(too_curved(&arc(40.0, 2.0 * std::f64::consts::PI)));
        // A straight 80 px hair whose linked pieces zigzag by 3 px in the middle, and one
        // whose centres jitter by ±1 px: the fit reads them straight.
        let mut kinked = line(0.0, 0.0, 80.0, 0.0);
        for (i, p) in kinked.iter_mut().enumerate() {
            if (45..=52).contains(&i) {
                p[1] = -3.0;
            }
        }
        assert!(fitted_curvature(&kinked) < 0.2 * MAX_CURVATURE);
        assert!(!too_curved(&kinked));
        let jittered: Vec<[f64; 2]> = (0..=60)
            .map(|i| [2.0 * i as f64, if i % 5 < 2 { 1.0 } else { -1.0 }])
            .collect();
        assert!(fitted_curvature(&jittered) < 0.2 * MAX_CURVATURE);
        assert!(!too_curved(&jittered));
    }

    #[test]
    fn narrow_line_inside_a_wide_hair_is_a_substructure_but_a_crossing_or_a_neighbour_is_not() {
        let hairs = vec![
            hair(line(10.0, 100.0, 290.0, 100.0), 20.0), // wide hair
            hair(line(20.0, 104.0, 280.0, 104.0), 4.0),  // stripe inside it
            hair(line(150.0, 10.0, 150.0, 190.0), 4.0),  // crossing it
            hair(line(10.0, 130.0, 290.0, 130.0), 18.0), // parallel neighbour of similar width
        ];
        assert_eq!(
            substructures(&hairs, (300, 200), 1.0),
            vec![false, true, false, false]
        );
    }

    #[test]
    fn line_on_the_seam_of_two_touching_hairs_is_a_merged_pair() {
        let hairs = vec![
            hair(line(10.0, 100.0, 290.0, 100.0), 14.0), // upper shaft, edges 93..107
            hair(line(10.0, 118.0, 290.0, 118.0), 22.0), // lower shaft, edges 107..129
            hair(line(40.0, 109.0, 260.0, 109.0), 38.0), // the pair read as one
            hair(line(150.0, 10.0, 150.0, 190.0), 4.0),  // a hair crossing them all
        ];
        assert_eq!(
            merged_pairs(&hairs, (300, 200)),
            vec![false, false, true, false]
        );
    }

    #[test]
    fn a_pair_read_as_one_gives_way_to_its_members_before_they_count_as_its_parts() {
        // Two touching 14 and 13 px hairs, and their union read as one 28 px line (phantom
        // seed 502, image 14): the members are narrower than 0.7 of the union, so taken
        // alone `substructures` would drop them as its parts.
        let pair = vec![
            hair(line(10.0, 93.0, 290.0, 93.0), 14.0),
            hair(line(10.0, 106.5, 290.0, 106.5), 13.0),
            hair(line(40.0, 100.0, 260.0, 100.0), 28.0),
        ];
        assert_eq!(
            substructures(&pair, (300, 200), 1.0),
            vec![true, true, false]
        );
        let merged = side_by_side_pairs(&pair, (300, 200));
        assert_eq!(merged, vec![false, false, true]);
        let members: Vec<Hair> = pair
            .iter()
            .zip(&merged)
            .filter(|(_, &m)| !m)
            .map(|(h, _)| h.clone())
            .collect();
        assert_eq!(substructures(&members, (300, 200), 1.0), vec![false, false]);
        // A 20 px shaft split by a highlight stripe 5 px wide into halves of 9 and 6 px:
        // the halves add up to 15 px, not the shaft; they are its parts.
        let split = vec![
            hair(line(10.0, 95.5, 290.0, 95.5), 9.0),
            hair(line(10.0, 107.0, 290.0, 107.0), 6.0),
            hair(line(10.0, 100.0, 290.0, 100.0), 20.0),
        ];
        assert_eq!(side_by_side_pairs(&split, (300, 200)), vec![false; 3]);
        assert_eq!(
            substructures(&split, (300, 200), 1.0),
            vec![true, true, false]
        );
        // Halves of a 21 px shaft with a medulla, each read as a whole hair (8.8 and 13.5
        // px) with centrelines 10.1 px apart (seed 502, image 19): their extents overlap.
        let medulla = vec![
            hair(line(10.0, 94.6, 290.0, 94.6), 8.8),
            hair(line(10.0, 104.7, 290.0, 104.7), 13.5),
            hair(line(10.0, 100.0, 290.0, 100.0), 20.2),
        ];
        assert_eq!(side_by_side_pairs(&medulla, (300, 200)), vec![false; 3]);
    }

    #[test]
    fn wide_hair_with_a_neighbour_on_one_side_or_of_the_other_polarity_is_kept() {
        let mut light = hair(line(10.0, 92.0, 290.0, 92.0), 6.0);
        light.polarity = Polarity::Light;
        let hairs = vec![
            hair(line(10.0, 100.0, 290.0, 100.0), 20.0), // wide hair, edges 90..110
            hair(line(10.0, 107.0, 290.0, 107.0), 6.0),  // a dark line inside, one side
            light,                                       // a light one on the other
            hair(line(10.0, 160.0, 290.0, 160.0), 20.0), // wide hair with two short ones
            hair(line(10.0, 155.0, 60.0, 155.0), 6.0),
            hair(line(10.0, 165.0, 60.0, 165.0), 6.0),
        ];
        assert_eq!(merged_pairs(&hairs, (300, 200)), vec![false; 6]);
    }

    #[test]
    fn hair_touching_a_wider_one_is_kept_but_its_light_flank_is_not() {
        let mut flank = hair(line(20.0, 112.0, 280.0, 112.0), 3.0);
        flank.polarity = Polarity::Light;
        let hairs = vec![
            hair(line(10.0, 100.0, 290.0, 100.0), 20.0), // wide hair, edge at y = 110
            hair(line(20.0, 112.5, 280.0, 112.5), 4.0),  // thin hair touching it
            flank,                                       // light line along its edge
        ];
        assert_eq!(
            substructures(&hairs, (300, 200), 1.0),
            vec![false, false, true]
        );
    }

    /// Horizontal dark bands on pink skin (linear light), each (row, width, contrast, blue
    /// absorption relative to red): 1.0 is neutral shading, 1.6 a melanin-like hair.
    /// `grey` paints everything in grey.
    fn banded(bands: &[(f64, f64, f64, f64)], grey: bool) -> image::RgbImage {
        let skin = if grey { [0.4; 3] } else { [0.5, 0.3, 0.25] };
        let srgb = |v: f64| {
            let e = if v <= 0.003_130_8 {
                12.92 * v
            } else {
                1.055 * v.powf(1.0 / 2.4) - 0.055
            };
            (255.0 * e).round() as u8
        };
        image::RgbImage::from_fn(300, 40 * bands.len() as u32 + 40, |_, y| {
            let mut rgb = skin;
            for &(row, width, contrast, blue) in bands {
                // A soft-edged band: full depth across its width, Gaussian flanks.
                let d = ((y as f64 - row).abs() - 0.5 * width).max(0.0);
                let a = contrast * (-0.5 * d * d).exp();
                let k = if grey {
                    [1.0; 3]
                } else {
                    [1.0, 0.5 * (1.0 + blue), blue]
                };
                for c in 0..3 {
                    rgb[c] *= 1.0 - (a * k[c]).min(0.95);
                }
            }
            image::Rgb(rgb.map(srgb))
        })
    }

    /// Hairs on `bands` as the pipeline reports them (centre row, width, contrast).
    fn band_hairs(bands: &[(f64, f64, f64, f64)]) -> Vec<Hair> {
        bands
            .iter()
            .map(|&(row, width, contrast, _)| Hair {
                contrast,
                ..hair(line(20.0, row, 280.0, row), width)
            })
            .collect()
    }

    /// Five clear pigmented hairs, then (faint) a wide neutral band, a wide pigmented hair
    /// and a narrow neutral line.
    const BANDS: [(f64, f64, f64, f64); 8] = [
        (20.0, 10.0, 0.6, 1.6),
        (60.0, 10.0, 0.6, 1.6),
        (100.0, 10.0, 0.6, 1.6),
        (140.0, 10.0, 0.6, 1.6),
        (180.0, 10.0, 0.6, 1.6),
        (220.0, 8.0, 0.15, 1.0),
        (260.0, 8.0, 0.15, 1.6),
        (300.0, 3.0, 0.15, 1.0),
    ];

    #[test]
    fn wide_faint_neutral_lines_are_shading_where_the_hairs_show_colour() {
        let img = banded(&BANDS, false);
        let colour = Colour::new(&img);
        let hairs = band_hairs(&BANDS);
        let shifts: Vec<Option<f64>> = hairs.iter().map(|h| chroma_shift(h, &colour)).collect();
        // Pigmented lines redden the skin; neutral ones do not.
        for i in [0, 6] {
            assert!(
                shifts[i].unwrap() > 2.0 * SHADING_CHROMA_SHIFT,
                "{i}: {shifts:?}"
            );
        }
        for i in [5, 7] {
            assert!(
                shifts[i].unwrap().abs() < 0.5 * SHADING_CHROMA_SHIFT,
                "{i}: {shifts:?}"
            );
        }
        let expected = [false, false, false, false, false, true, false, false];
        assert_eq!(shading(&hairs, &colour), expected);
    }

    #[test]
    fn colour_judges_nothing_without_a_coloured_reference() {
        // A grey image: no colour anywhere.
        let grey = banded(&BANDS, true);
        let hairs = band_hairs(&BANDS);
        assert!(chroma_shift(&hairs[5], &Colour::new(&grey)).is_none());
        assert!(!shading(&hairs, &Colour::new(&grey)).contains(&true));
        // Colour, but the clear hairs are as neutral as the faint band (grey hairs): no
        // reference for what a hair does to the skin's colour here.
        let mut neutral = BANDS;
        neutral[..5].iter_mut().for_each(|b| b.3 = 1.0);
        let img = banded(&neutral, false);
        assert!(!shading(&hairs, &Colour::new(&img)).contains(&true));
        // Too few clear hairs for a reference.
        let img = banded(&BANDS, false);
        assert!(!shading(&hairs[3..], &Colour::new(&img)).contains(&true));
    }

    /// A 240x120 contrast image: white noise of SD `noise` (seeded), plus a horizontal bar
    /// of `depth` (negative: dark) 6 px wide centred on row 60, its edges a 1 px ramp.
    fn bar_image(depth: f32, noise: f32) -> Array2<f32> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        Array2::from_shape_fn((120, 240), |(y, _)| {
            let d = (y as f32 - 60.0).abs();
            let cover = (3.5 - d).clamp(0.0, 1.0);
            depth * cover + noise * (rng.gen::<f32>() - 0.5) * 12f32.sqrt()
        })
    }

    fn line_hair(y: f64, contrast: f64, polarity: Polarity) -> Hair {
        let mut h = hair(line(20.0, y, 220.0, y), 6.0);
        h.contrast = contrast;
        h.polarity = polarity;
        h
    }

    #[test]
    fn coherent_share_matches_the_rows_of_a_clean_bar() {
        // Naive reference: on a straight row, the cross-section is the image's rows (every
        // sample lies on or halfway between rows); the skin is 0 and the centre the mean
        // of rows 59, 59.5, 60, 60.5, 61.
        let img = bar_image(-0.3, 0.0);
        let row = |y: f64| {
            let (a, b) = (
                img[[y.floor() as usize, 100]],
                img[[y.ceil() as usize, 100]],
            );
            0.5 * (a + b) as f64
        };
        let centre = [59.0, 59.5, 60.0, 60.5, 61.0].map(row).iter().sum::<f64>() / 5.0;
        let share = coherent_share(&line_hair(60.0, 0.25, Polarity::Dark), &img);
        assert!(
            (share - (-centre) / 0.25).abs() < 1e-6,
            "{share} vs {}",
            -centre / 0.25
        );
    }

    #[test]
    fn a_hair_keeps_its_contrast_and_a_line_of_noise_does_not() {
        // A dark bar under noise of 1/10 its depth, read with its own contrast: kept.
        let img = bar_image(-0.3, 0.03);
        let share = coherent_share(&line_hair(60.0, 0.3, Polarity::Dark), &img);
        assert!(share > 0.85, "{share}");
        assert!(share >= MIN_COHERENT_SHARE);
        // The same as a light bar.
        let img = bar_image(0.3, 0.03);
        let share = coherent_share(&line_hair(60.0, 0.3, Polarity::Light), &img);
        assert!(share > 0.85, "{share}");
        // A line across bare noise, whose profiles each found 2 noise SDs of contrast:
        // nothing along it on average.
        let img = bar_image(-0.3, 0.03);
        for polarity in [Polarity::Dark, Polarity::Light] {
            let share = coherent_share(&line_hair(25.0, 0.06, polarity), &img);
            assert!(share.abs() < 0.25, "{polarity:?}: {share}");
            assert!(share < MIN_COHERENT_SHARE);
        }
        // A line wandering a px either way along the bar (a trace's jitter) still is
        // the bar: the path is smoothed before the cross-section is taken.
        let mut wavy = line_hair(60.0, 0.3, Polarity::Dark);
        for (i, p) in wavy.points.iter_mut().enumerate() {
            p[1] += if i % 2 == 0 { 1.0 } else { -1.0 };
        }
        assert!(coherent_share(&wavy, &img) > 0.85);
    }
    #[test]
    fn a_line_whose_cross_section_fades_is_flagged_and_kept() {
        // Against a line contrast of 0.3: a bar of that depth keeps it (no flag); one of
        // 0.7 of it (the line's profiles read more than the hair shows along it) is
        // flagged, with its share; an earlier flag stays.
        for (depth, flagged) in [(-0.3, false), (-0.21, true)] {
            let img = bar_image(depth, 0.0);
            let mut hairs = vec![line_hair(60.0, 0.3, Polarity::Dark)];
            let shares = [coherent_share(&hairs[0], &img)];
            flag_faded(&mut hairs, &shares);
            assert_eq!(hairs.len(), 1);
            assert_eq!(
                hairs[0].flag.is_some(),
                flagged,
                "{depth}: {:?}",
                hairs[0].flag
            );
            if flagged {
                let share = coherent_share(&hairs[0], &img);
                assert!((0.6..FADED_SHARE).contains(&share), "{share}");
                let text = hairs[0].flag.as_deref().unwrap();
                assert!(text.contains(&format!("{:.0}%", 100.0 * share)), "{text}");
            }
        }
        let mut hairs = vec![line_hair(60.0, 0.3, Polarity::Dark)];
        hairs[0].flag = Some("earlier".into());
        let shares = [coherent_share(&hairs[0], &bar_image(-0.21, 0.0))];
        assert!(shares[0] < FADED_SHARE);
        flag_faded(&mut hairs, &shares);
        assert_eq!(hairs[0].flag.as_deref(), Some("earlier"));
    }
    #[test]
    fn a_hair_along_the_border_is_read_from_the_skin_inside_the_image() {
        // The bar of `bar_image` moved to 2 px from the top edge, which it covers: the
        // outer samples on that side fall outside the image and are left out (clamped to
        // the edge they would read the bar as skin).
        let img = bar_image(-0.3, 0.0);
        let near_top = img.slice(ndarray::s![58.., ..]).to_owned();
        let share = coherent_share(&line_hair(2.0, 0.3, Polarity::Dark), &near_top);
        let away = coherent_share(&line_hair(60.0, 0.3, Polarity::Dark), &img);
        assert!((share - away).abs() < 1e-9, "{share} vs {away}");
    }

    fn flagged(points: Vec<[f64; 2]>, width: f64) -> Hair {
        let mut h = hair(points, width);
        h.flag = Some("local widths vary".into());
        h
    }

    #[test]
    fn an_overlap_left_by_a_member_is_dropped_a_tapering_shaft_is_not() {
        // A 20 px overlap ending at x = 200; an 11 px member running on 4 px off its
        // middle (half the other member's width, 9 px, would be 4.5).
        let overlap = || flagged(line(0.0, 100.0, 200.0, 100.0), 20.0);
        let member = |dy: f64, w: f64| hair(line(206.0, 100.0 + dy, 400.0, 100.0 + dy), w);
        assert_eq!(
            union_stretches(&[overlap(), member(4.0, 11.0)]),
            [true, false]
        );
        // Unflagged, it is measured as one shaft: kept.
        let plain = hair(line(0.0, 100.0, 200.0, 100.0), 20.0);
        assert_eq!(union_stretches(&[plain, member(4.0, 11.0)]), [false, false]);
        // Lines that are not members of the overlap: both lines are kept.
        let kept_beside = |a: Hair| assert_eq!(union_stretches(&[overlap(), a]), [false, false]);
        // On its centreline: a shaft that tapers or reads narrower further on.
        kept_beside(member(0.5, 11.0));
        // Too narrow to be one of two members (ratio 4), or too wide (ratio 1.25).
        kept_beside(member(4.0, 5.0));
        kept_beside(member(4.0, 16.0));
        // Further than the half width off its middle: a neighbour, not a member.
        kept_beside(member(12.0, 11.0));
        // A step too small for another member (6 against 4 px).
        let thin = flagged(line(0.0, 100.0, 200.0, 100.0), 6.0);
        assert_eq!(union_stretches(&[thin, member(2.0, 4.0)]), [false, false]);
        // Across, or far along.
        kept_beside(hair(line(203.0, 104.0, 203.0, 300.0), 11.0));
        kept_beside(hair(line(240.0, 104.0, 400.0, 104.0), 11.0));
        // Of the other polarity.
        let mut light = member(4.0, 11.0);
        light.polarity = Polarity::Light;
        kept_beside(light);
        // At the start of the line as at its end, whichever way the member runs.
        let back = hair(line(-194.0, 96.0, -6.0, 96.0), 11.0);
        assert_eq!(union_stretches(&[back, overlap()]), [false, true]);
    }

    #[test]
    fn a_line_holding_reported_hairs_is_dropped_a_hair_crossed_is_not() {
        // A 20 px line, 100 px long, in a 400 x 300 image.
        let union = || hair(line(100.0, 150.0, 200.0, 150.0), 20.0);
        let size = (400, 300);
        // A 12 px hair along its upper half for 60 px, running on beyond it: the union
        // goes, the hair stays.
        let member = hair(line(140.0, 145.0, 390.0, 145.0), 12.0);
        assert_eq!(
            unions_of_reported_hairs(&[union(), member.clone()], size),
            [true, false]
        );
        // Two members, each along 30 px, one on each side: 60% together.
        let left = hair(line(0.0, 145.0, 130.0, 145.0), 12.0);
        let right = hair(line(170.0, 155.0, 390.0, 155.0), 11.0);
        assert_eq!(
            unions_of_reported_hairs(&[union(), left.clone(), right], size),
            [true, false, false]
        );
        let kept = |a: Hair| {
            assert_eq!(
                unions_of_reported_hairs(&[union(), a], size),
                [false, false]
            );
        };
        // One member along 30 px only.
        kept(left);
        // Read alike (18 px: the same shaft again, ratio 1.1).
        kept(hair(line(140.0, 145.0, 390.0, 145.0), 18.0));
        // A thin hair along it (ratio 2.5): crossing at a small angle, or lying on it.
        kept(hair(line(100.0, 145.0, 390.0, 155.0), 8.0));
        // Across it.
        kept(hair(line(150.0, 0.0, 150.0, 300.0), 12.0));
        // Beside it, its centre beyond the half width.
        kept(hair(line(100.0, 161.0, 390.0, 161.0), 12.0));
        // Of the other polarity.
        let mut light = member;
        light.polarity = Polarity::Light;
        kept(light);
    }

    #[test]
    fn unions_of_reported_hairs_match_every_point_pair() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        let size = (300, 300);
        let hairs: Vec<Hair> = (0..120)
            .map(|_| {
                let (x, y) = (rng.gen_range(-10.0..310.0), rng.gen_range(-10.0..310.0));
                let a: f64 = rng.gen_range(0.0..0.5);
                let l = rng.gen_range(20.0..200.0);
                let mut h = hair(
                    line(x, y, x + l * a.cos(), y + l * a.sin()),
                    rng.gen_range(3.0..25.0),
                );
                if rng.gen_bool(0.3) {
                    h.polarity = Polarity::Light;
                }
                h
            })
            .collect();
        let pts: Vec<Vec<[f64; 2]>> = hairs.iter().map(|h| resample(&h.points, 1.0)).collect();
        let inside = |q: [f64; 2]| q[0] >= -0.5 && q[1] >= -0.5 && q[0] < 299.5 && q[1] < 299.5;
        let naive: Vec<bool> = (0..hairs.len())
            .map(|i| {
                let r = 0.5 * hairs[i].width_px;
                let held = pts[i]
                    .iter()
                    .filter(|c| {
                        (0..hairs.len()).any(|j| {
                            let ratio = hairs[i].width_px / hairs[j].width_px;
                            j != i
                                && hairs[j].polarity == hairs[i].polarity
                                && (UNION_HELD_WIDTH_RATIO..=UNION_MAX_WIDTH_RATIO).contains(&ratio)
                                && pts[j].iter().any(|&q| {
                                    inside(q)
                                        && (q[0] - c[0]).powi(2) + (q[1] - c[1]).powi(2) <= r * r
                                })
                        })
                    })
                    .count();
                held as f64 >= UNION_HELD_SHARE * pts[i].len() as f64
            })
            .collect();
        assert!(
            naive.iter().filter(|&&u| u).count() >= 3,
            "the test needs unions"
        );
        assert_eq!(unions_of_reported_hairs(&hairs, size), naive);
    }

    #[test]
    fn union_stretches_grid_matches_every_pair() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        let hairs: Vec<Hair> = (0..150)
            .map(|_| {
                let (x, y) = (rng.gen_range(0.0..400.0), rng.gen_range(0.0..400.0));
                let a: f64 = rng.gen_range(0.0..0.6);
                let l = rng.gen_range(20.0..150.0);
                let mut h = hair(
                    line(x, y, x + l * a.cos(), y + l * a.sin()),
                    rng.gen_range(3.0..25.0),
                );
                if rng.gen_bool(0.5) {
                    h.flag = Some("flagged".into());
                }
                h
            })
            .collect();
        let ends: Vec<_> = hairs
            .iter()
            .map(|h| [outward_end(&h.points, true), outward_end(&h.points, false)])
            .collect();
        let naive: Vec<bool> = (0..hairs.len())
            .map(|i| {
                hairs[i].flag.is_some()
                    && (0..hairs.len()).any(|j| {
                        j != i
                            && ends[i].iter().any(|&e| {
                                ends[j]
                                    .iter()
                                    .any(|&f| continues(&hairs[i], &hairs[j], e, f))
                            })
                    })
            })
            .collect();
        assert!(
            naive.iter().filter(|&&u| u).count() >= 3,
            "the test needs overlaps"
        );
        assert_eq!(union_stretches(&hairs), naive);
    }
}
