//! Stage 5: touching parallel pairs (and pairs a narrow gap apart, traced along the skin
//! between them: [`split_straddled`]). Two hairs lying side by side (from one follicular
//! opening, edges touching) look like one wide line to the ridge filter and are traced and
//! measured as one hair of their summed width. Their cross-section tells them apart from
//! one hair with a lighter medulla or a highlight stripe: each member is a full dip of its
//! own, the two darkest points lie about half the pair's width apart (a medulla's lie
//! closer, on either side of a core at most a third of the shaft), and between them the
//! contrast falls most of the way to skin, where a medulla or highlight removes only a
//! small share of the absorption. Where a run of consecutive profiles shows two such dips,
//! that stretch is replaced by its two members, each measured from its own outer edge: the
//! member's outer half is mirrored about its centre, which is exactly the profile of a lone
//! hair of that width under the same blur, so the width model of
//! [`crate::measure::finish`] applies unchanged.
//!
//! A hair beside a neighbour a few px away ([`measure_clean_halves`]) is measured the same
//! way: where the skin rises again within a few edge spreads of one edge, the neighbour's
//! blurred tail spreads that edge (two 10-14 px hairs 2-4 px apart read up to 1.6 px
//! narrow), so the profile is replaced by its clean half mirrored about its centre.

use crate::load::Colour;
use crate::measure::{
    edges, rises_beside, sample_index, Profile, RawHair, NEUTRAL_SHIFT, SAMPLE_STEP_PX,
};
use crate::stats::robust_sd_mut;

/// Narrowest member (edge to junction, px) looked for: narrower dips are not resolved.
const MIN_MEMBER_PX: f32 = 2.0;
/// The junction falls below this share of the lower member's peak: a medulla or highlight
/// stripe removes at most about a quarter of a shaft's absorption, a gap between two
/// shafts nearly all of it.
const MAX_JUNCTION_SHARE: f32 = 0.7;
/// Each member's densest point lies at least this share of its span (junction to outer
/// edge) from the junction: a round shaft is densest at its middle (0.5).
const MIN_CENTRE_SHARE: f32 = 0.3;
/// Dips tried per profile, deepest first, for one that is not a highlight.
const MAX_JUNCTION_CANDIDATES: usize = 3;
/// Transmittance floor for the optical density of dark profiles (noise on black).
const MIN_TRANSMITTANCE: f32 = 0.02;
/// The dip at the junction must exceed this many noise SDs.
const MIN_DIP_NOISES: f32 = 4.0;
/// Skin is read this far outside the pair's edges (px).
const SKIN_OFFSET_PX: f32 = 4.0;
/// Consecutive pair profiles (2 px apart) needed to split a stretch: shorter runs are
/// crossings or noise.
const MIN_RUN_PROFILES: usize = 6;
/// A single profile failing the test inside a run does not end it (noise, a crossing).
const MAX_RUN_HOLE: usize = 1;

/// Where a profile `q` (hair positive, baseline 0, sampled every `SAMPLE_STEP_PX` from
/// `-half`) with edges `left`, `right` may hold two touching hairs: the candidate
/// junctions' positions (px, same frame as the edges), deepest first; empty for one hair.
/// The colour decides between them (a highlight stripe is a dip too).
pub fn junction(q: &[f32], half: f32, edges: (f32, f32), noise: f32, dark: bool) -> Vec<Junction> {
    junction_lazy(q, half, edges, || noise, dark)
}

/// [`junction`] with the noise SD asked of `noise` only when a dip gets as far as its test
/// (most profiles have none, so the caller need not compute it).
fn junction_lazy(
    q: &[f32],
    half: f32,
    (left, right): (f32, f32),
    noise: impl Fn() -> f32,
    dark: bool,
) -> Vec<Junction> {
    let idx = |x: f32| ((x + half) / SAMPLE_STEP_PX).round() as isize;
    let (il, ir) = (
        idx(left).max(0) as usize,
        idx(right).min(q.len() as isize - 1),
    );
    if ir < 0 || ir as usize <= il + 2 || right - left < 2.0 * MIN_MEMBER_PX {
        return Vec::new();
    }
    let ir = ir as usize;
    // Light smoothing over ±2 samples (±0.5 px) against sample noise, then (dark hairs)
    // optical density: a dark shaft's contrast saturates, its density does not.
    let s: Vec<f32> = (il..=ir)
        .map(|i| {
            let (a, b) = (i.saturating_sub(2).max(il), (i + 2).min(ir));
            let v = q[a..=b].iter().sum::<f32>() / (b - a + 1) as f32;
            if dark {
                -(1.0 - v).max(MIN_TRANSMITTANCE).ln()
            } else {
                v
            }
        })
        .collect();
    let n = s.len();
    // Running maxima from either side: the dip at j is min(best left, best right) − s[j].
    let mut from_left = Vec::with_capacity(n);
    let mut m = (f32::MIN, 0usize);
    for (i, &v) in s.iter().enumerate() {
        if v > m.0 {
            m = (v, i);
        }
        from_left.push(m);
    }
    let mut from_right = vec![(f32::MIN, 0usize); n];
    let mut m = (f32::MIN, n - 1);
    for i in (0..n).rev() {
        if s[i] > m.0 {
            m = (s[i], i);
        }
        from_right[i] = m;
    }
    let member = (MIN_MEMBER_PX / SAMPLE_STEP_PX).round() as usize;
    if n <= 2 * member + 2 {
        return Vec::new();
    }
    // Each member's densest point lies inside it, well away from the junction (a shaft's
    // centre); the flanks of a medulla or the sliver beside a highlight stripe are densest
    // next to it.
    let inside = |x: usize, from: usize, to: usize| {
        let span = from.abs_diff(to).max(1) as f32;
        x.abs_diff(from) as f32 >= MIN_CENTRE_SHARE * span
    };
    // Every local minimum that passes, deepest dip first.
    let mut found: Vec<(f32, [usize; 3])> = (member..n - member)
        .filter(|&j| s[j] <= s[j - 1] && s[j] < s[j + 1])
        .filter_map(|j| {
            let ((p1, x1), (p2, x2)) = (from_left[j], from_right[j]);
            let dip = p1.min(p2) - s[j];
            let pair = s[j] <= MAX_JUNCTION_SHARE * p1.min(p2)
                && dip >= MIN_DIP_NOISES * noise()
                && inside(x1, j, 0)
                && inside(x2, j, n - 1);
            pair.then_some((dip, [j, x1, x2]))
        })
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = |i: usize| -half + (il + i) as f32 * SAMPLE_STEP_PX;
    found
        .into_iter()
        .take(MAX_JUNCTION_CANDIDATES)
        .map(|(_, [j, x1, x2])| Junction {
            at: pos(j),
            densest: [pos(x1), pos(x2)],
        })
        .collect()
}

/// A candidate junction between two members: its position and each member's densest
/// point (px along the profile's normal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Junction {
    pub at: f32,
    pub densest: [f32; 2],
}

/// Robust noise SD of a profile's outer bands (the same bands as its baseline).
fn band_noise(q: &[f32]) -> f32 {
    let m = q.len();
    let band = (m / 6).max(3).min(m);
    let mut v: Vec<f64> = q[..band]
        .iter()
        .chain(&q[m - band..])
        .map(|&x| x as f64)
        .collect();
    (robust_sd_mut(&mut v) as f32).max(1e-4)
}

/// The two members' profiles at one pair profile: (profile, samples) for the left and
/// the right member, or `None` when either cannot be measured.
fn members(
    p: &Profile,
    q: &[f32],
    half: f32,
    j: f32,
    noise: f32,
) -> Option<[(Profile, Vec<f32>); 2]> {
    let one = |outer: f32, dir: f32| -> Option<(Profile, Vec<f32>)> {
        // Centre halfway between the outer edge and the junction: the junction is the true
        // boundary, the outer edge (steepest slope) lies slightly inside the true edge, so
        // the member is measured a little narrow; the width model corrects lone hairs'
        // edges the same way, and the mirrored profile is one.
        let c = 0.5 * (outer + j);
        let m = mirrored(q, half, c, dir);
        let (l, r, peak, edge_sigma) = edges(&m, half, 0.5 * (j - outer).abs() + 1.0, noise)?;
        let at = [p.at[0] + c * p.normal[0], p.at[1] + c * p.normal[1]];
        let k = ((c + half) / SAMPLE_STEP_PX)
            .round()
            .clamp(0.0, (q.len() - 1) as f32) as usize;
        let k0 = ((0.5 * (p.left + p.right) + half) / SAMPLE_STEP_PX)
            .round()
            .clamp(0.0, (q.len() - 1) as f32) as usize;
        let profile = Profile {
            at,
            left: l,
            right: r,
            peak,
            edge_sigma,
            level: p.level + (q[k] - q[k0]),
            ..*p
        };
        Some((profile, m))
    };
    Some([one(p.left, -1.0)?, one(p.right, 1.0)?])
}

/// One pair profile: the junction (px along the normal from the profile's point) and the
/// two members' profiles with their (mirrored) samples, left member first.
struct Split {
    junction: Junction,
    members: [(Profile, Vec<f32>); 2],
}

/// Splits the stretches of `raw` where it is two touching hairs into their members; the
/// rest of the hair stays as it was (pieces are rejoined by [`crate::link`]). Only colour
/// images are split: in grey ones a specular highlight along a shaft cannot be told from
/// the gap between two shafts.
pub fn split(raw: RawHair, colour: Option<&Colour>) -> Vec<RawHair> {
    let n = raw.profiles.len();
    let Some(colour) = colour else {
        return vec![raw];
    };
    if n < MIN_RUN_PROFILES {
        return vec![raw];
    }
    let found: Vec<Option<Split>> = raw
        .profiles
        .iter()
        .zip(&raw.samples)
        .map(|(p, q)| {
            // Computed once, and only when needed.
            let noise = std::cell::OnceCell::new();
            let noise = || *noise.get_or_init(|| band_noise(q));
            let dark = raw.trace.polarity > 0;
            // The deepest dip whose colour is not a highlight's (or the deepest).
            let candidates = junction_lazy(q, raw.half, (p.left, p.right), noise, dark);
            let junction = candidates
                .iter()
                .copied()
                .find(|j| chroma_shift(colour, p, j).is_some_and(|v| v >= -NEUTRAL_SHIFT))
                .or(candidates.first().copied())?;
            let members = members(p, q, raw.half, junction.at, noise())?;
            Some(Split { junction, members })
        })
        .collect();
    let runs: Vec<(usize, usize)> = runs(&found.iter().map(Option::is_some).collect::<Vec<_>>())
        .into_iter()
        .filter(|&(a, b)| {
            let shifts: Vec<f64> = (a..b)
                .filter_map(|k| {
                    let s = found[k].as_ref()?;
                    chroma_shift(colour, &raw.profiles[k], &s.junction).map(|v| v as f64)
                })
                .collect();
            !shifts.is_empty() && crate::stats::median(&shifts) >= -NEUTRAL_SHIFT as f64
        })
        .collect();
    replace_runs(&raw, &runs, |k, side| {
        found[k].as_ref().map(|s| s.members[side].clone())
    })
    .unwrap_or_else(|| vec![raw])
}

/// `raw` with each run [a, b) of its profiles replaced by its two members (`member(k,
/// side)`, side 0 the left one); the rest stays as pieces of the whole. `None` without runs.
fn replace_runs(
    raw: &RawHair,
    runs: &[(usize, usize)],
    member: impl Fn(usize, usize) -> Option<(Profile, Vec<f32>)>,
) -> Option<Vec<RawHair>> {
    if runs.is_empty() {
        return None;
    }
    let whole = |range: std::ops::Range<usize>| {
        sub_hair(
            raw,
            range.map(|k| (raw.profiles[k], raw.samples[k].clone())),
        )
    };
    let mut out = Vec::new();
    let mut next = 0;
    for &(a, b) in runs {
        if a > next {
            out.extend(whole(next..a));
        }
        for side in 0..2 {
            out.extend(sub_hair(raw, (a..b).filter_map(|k| member(k, side))));
        }
        next = b;
    }
    if next < raw.profiles.len() {
        out.extend(whole(next..raw.profiles.len()));
    }
    Some(out)
}

/// A profile whose measured hair lies at least this share of its width off the trace: the
/// trace runs beside the hair, not along it.
const STRADDLE_MIN_OFFSET_SHARE: f32 = 0.4;
/// The hair on the trace's other side must be at least this share of the first's peak.
const STRADDLE_MIN_PEAK_SHARE: f32 = 0.5;
/// Largest change (px, 10th to 90th percentile) of the two hairs' spacing along a split
/// stretch: parallel hairs keep it, hairs crossing at a small angle do not.
const STRADDLE_MAX_SPACING_CHANGE_PX: f64 = 3.0;

/// `q` moved by `k` samples: the profile re-centred `k` samples along the normal (ends
/// replicated).
fn shifted(q: &[f32], k: isize) -> Vec<f32> {
    let n = q.len() as isize;
    (0..n)
        .map(|i| q[(i + k).clamp(0, n - 1) as usize])
        .collect()
}

/// The two members of a pair profile, left first: each profile with its samples.
type Members = [(Profile, Vec<f32>); 2];

/// The two hairs either side of a profile taken across the skin between them, re-centred on
/// each (left first), or `None` when the profile is across one hair.
fn straddled(p: &Profile, q: &[f32], half: f32, colour: Option<&Colour>) -> Option<Members> {
    let step = SAMPLE_STEP_PX;
    let w = p.separation();
    let c = 0.5 * (p.left + p.right);
    if c.abs() < STRADDLE_MIN_OFFSET_SHARE * w {
        return None;
    }
    // The densest point on the trace's other side, within a hair's width of the trace.
    let idx = |x: f32| ((x + half) / step).round() as isize;
    let (lo, hi) = if c > 0.0 {
        (idx(-(c + w + 2.0)).max(0), idx(0.0))
    } else {
        (idx(0.0), idx(-c + w + 2.0).min(q.len() as isize - 1))
    };
    let (mut io, mut vo) = (lo, f32::MIN);
    for i in lo..=hi {
        if q[i as usize] > vo {
            (io, vo) = (i, q[i as usize]);
        }
    }
    if vo < STRADDLE_MIN_PEAK_SHARE * p.peak {
        return None;
    }
    let noise = band_noise(q);
    let centre = idx(0.0);
    let kc = idx(c) - centre;
    let ko = io - centre;
    let qo = shifted(q, ko);
    let (l, r, _, _) = edges(&qo, half, 0.5 * w + 2.0, noise)?;
    let xo = ko as f32 * step;
    // The two hairs must not overlap: skin lies between them.
    let (a, b) = if c > 0.0 {
        ((xo + l, xo + r), (p.left, p.right))
    } else {
        ((p.left, p.right), (xo + l, xo + r))
    };
    if a.1 >= b.0 {
        return None;
    }
    if let Some(colour) = colour {
        let j = Junction {
            at: 0.5 * (a.1 + b.0),
            densest: [0.5 * (a.0 + a.1), 0.5 * (b.0 + b.1)],
        };
        // A highlight stripe between two halves of one shaft is not a gap.
        if chroma_shift(colour, p, &j).is_some_and(|v| v < -NEUTRAL_SHIFT) {
            return None;
        }
    }
    // Each measured from its outer edge: its outer half mirrored about its centre, so the
    // neighbour is out of its window (as for touching pairs).
    let out = c.signum();
    let member = |centre: f32, dir: f32, level: f32| -> Option<(Profile, Vec<f32>)> {
        let m = mirrored(q, half, centre, dir);
        let (l, r, peak, edge_sigma) = edges(&m, half, 0.5 * w + 2.0, noise)?;
        let at = [
            p.at[0] + centre * p.normal[0],
            p.at[1] + centre * p.normal[1],
        ];
        Some((
            Profile {
                at,
                left: l,
                right: r,
                peak,
                edge_sigma,
                level,
                ..*p
            },
            m,
        ))
    };
    let co = xo + 0.5 * (l + r);
    let own = member(c, out, p.level)?;
    let other = member(
        co,
        -out,
        p.level + (q[io as usize] - q[(centre + kc).clamp(0, q.len() as isize - 1) as usize]),
    )?;
    Some(if c > 0.0 { [other, own] } else { [own, other] })
}

/// Splits the stretches of `raw` traced along the skin between two hairs a small gap
/// apart (the ridge filter found the pair as one wide line at a coarse scale) into the two
/// hairs; each profile there had read one of them, the nearer or the darker. The rest of
/// the trace stays as it was.
pub fn split_straddled(raw: RawHair, colour: Option<&Colour>) -> Vec<RawHair> {
    let n = raw.profiles.len();
    if n < MIN_RUN_PROFILES {
        return vec![raw];
    }
    let found: Vec<Option<Members>> = raw
        .profiles
        .iter()
        .zip(&raw.samples)
        .map(|(p, q)| straddled(p, q, raw.half, colour))
        .collect();
    // Parallel pairs keep their spacing; two hairs crossing at a small angle do not.
    let runs: Vec<(usize, usize)> = runs(&found.iter().map(Option::is_some).collect::<Vec<_>>())
        .into_iter()
        .filter(|&(a, b)| {
            let mut d: Vec<f64> = found[a..b]
                .iter()
                .flatten()
                .map(|[(p, _), (o, _)]| {
                    ((p.at[0] - o.at[0]) as f64).hypot((p.at[1] - o.at[1]) as f64)
                })
                .collect();
            let lo = crate::stats::quantile_mut(&mut d, 0.1);
            let hi = crate::stats::quantile_mut(&mut d, 0.9);
            hi - lo <= STRADDLE_MAX_SPACING_CHANGE_PX
        })
        .collect();
    replace_runs(&raw, &runs, |k, side| {
        found[k].as_ref().map(|s| s[side].clone())
    })
    .unwrap_or_else(|| vec![raw])
}

/// How much more neutral (less chromatic) junction `j` is than both members' densest
/// points and the skin beside the pair (negative: a highlight), from the colour image.
fn chroma_shift(colour: &Colour, p: &Profile, j: &Junction) -> Option<f32> {
    let along = |d: f32| colour.chroma(p.at[0] + d * p.normal[0], p.at[1] + d * p.normal[1]);
    let lowest = [
        along(j.densest[0])?,
        along(j.densest[1])?,
        along(p.left - SKIN_OFFSET_PX)?,
        along(p.right + SKIN_OFFSET_PX)?,
    ]
    .into_iter()
    .fold(f32::MAX, f32::min);
    Some(along(j.at)? - lowest)
}

/// Runs [start, end) of `true` at least `MIN_RUN_PROFILES` long, holes of up to
/// `MAX_RUN_HOLE` bridged.
fn runs(hit: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hit.len() {
        if !hit[i] {
            i += 1;
            continue;
        }
        let (start, mut end, mut count) = (i, i + 1, 1);
        let mut k = i + 1;
        while k < hit.len() {
            if hit[k] {
                end = k + 1;
                count += 1;
                k += 1;
            } else if k + MAX_RUN_HOLE < hit.len()
                && hit[k + 1..=k + MAX_RUN_HOLE].iter().any(|&h| h)
            {
                k += 1;
            } else {
                break;
            }
        }
        if count >= MIN_RUN_PROFILES {
            out.push((start, end));
        }
        i = end.max(i + 1);
    }
    out
}

/// A piece of `raw` made of the given profiles (and samples), with a path through their
/// centres.
fn sub_hair(raw: &RawHair, items: impl Iterator<Item = (Profile, Vec<f32>)>) -> Option<RawHair> {
    let (profiles, samples): (Vec<Profile>, Vec<Vec<f32>>) = items.unzip();
    let spacing = crate::measure::PROFILE_SPACING_PX as usize;
    if profiles.is_empty() {
        return None;
    }
    // The path: the parent's path between the first and last profile, moved by each
    // profile's offset from the parent (interpolated between profiles).
    let lo = profiles[0].index.saturating_sub(spacing / 2);
    let hi = (profiles[profiles.len() - 1].index + spacing / 2).min(raw.path.len() - 1);
    let shift = |p: &Profile| {
        let q = raw.path[p.index.min(raw.path.len() - 1)];
        [p.at[0] - q[0], p.at[1] - q[1]]
    };
    let mut path = Vec::with_capacity(hi - lo + 1);
    let mut k = 0;
    for i in lo..=hi {
        while k + 1 < profiles.len() && profiles[k + 1].index <= i {
            k += 1;
        }
        let s0 = shift(&profiles[k]);
        let s = if k + 1 < profiles.len() && i > profiles[k].index {
            let s1 = shift(&profiles[k + 1]);
            let t = (i - profiles[k].index) as f32
                / (profiles[k + 1].index - profiles[k].index).max(1) as f32;
            [s0[0] + (s1[0] - s0[0]) * t, s0[1] + (s1[1] - s0[1]) * t]
        } else {
            s0
        };
        path.push([raw.path[i][0] + s[0], raw.path[i][1] + s[1]]);
    }
    let profiles: Vec<Profile> = profiles
        .into_iter()
        .map(|mut p| {
            p.index -= lo;
            p
        })
        .collect();
    Some(RawHair {
        trace: raw.trace.clone(),
        path,
        profiles,
        attempted: (hi - lo) / spacing + 1,
        samples,
        half: raw.half,
    })
}

/// A profile re-centred on `centre`: its half from `centre` outward on side `dir` (−1 left,
/// +1 right) mirrored about `centre`, over the same window (a pair member's outer half, a
/// crowded hair's clean half).
fn mirrored(q: &[f32], half: f32, centre: f32, dir: f32) -> Vec<f32> {
    let at = |x: f32| -> f32 {
        let f = ((x + half) / SAMPLE_STEP_PX).clamp(0.0, (q.len() - 1) as f32);
        let i = (f.floor() as usize).min(q.len() - 2);
        let t = f - i as f32;
        q[i] * (1.0 - t) + q[i + 1] * t
    };
    (0..q.len())
        .map(|k| {
            let x = -half + k as f32 * SAMPLE_STEP_PX;
            at(centre + dir * x.abs())
        })
        .collect()
}

/// Level (share of the peak) whose outermost crossings bound a shaft's core: a neighbour
/// whose tail spreads an edge adds little there, so their midpoint is the shaft's centre.
const CORE_LEVEL: f32 = 0.8;

/// Centre (px along the profile) of the shaft between edges `left` and `right` of profile
/// `q`: the midpoint of the outermost crossings of `CORE_LEVEL` of its peak inside them.
fn core_centre(q: &[f32], half: f32, (left, right): (f32, f32), peak: f32) -> Option<f32> {
    let level = CORE_LEVEL * peak;
    let (lo, hi) = (
        sample_index(left, half, q.len()),
        sample_index(right, half, q.len()),
    );
    let first = (lo..=hi).find(|&i| q[i] >= level)?;
    let last = (lo..=hi).rev().find(|&i| q[i] >= level)?;
    // Sub-sample crossings: linear between the sample below the level and the one above.
    let cross = |below: usize, above: usize| {
        let (a, b) = (q[below], q[above]);
        let t = if b > a { (level - a) / (b - a) } else { 1.0 };
        below as f32 + t * (above as f32 - below as f32)
    };
    let l = if first > 0 {
        cross(first - 1, first)
    } else {
        first as f32
    };
    let r = if last + 1 < q.len() {
        cross(last + 1, last)
    } else {
        last as f32
    };
    Some(-half + 0.5 * (l + r) * SAMPLE_STEP_PX)
}

/// Each profile of `raw` with a neighbour beside one edge only (see
/// [`crate::measure::Profile::crowded`]) measured on its other half, mirrored about the
/// centre of its core; its samples replaced by the mirrored ones. A profile crowded on both
/// sides, or whose mirrored half shows no hair, is kept as it is (and stays out of the blur
/// and depth estimates).
pub fn measure_clean_halves(mut raw: RawHair) -> RawHair {
    let half = raw.half;
    for (p, q) in raw.profiles.iter_mut().zip(raw.samples.iter_mut()) {
        if !p.crowded {
            continue;
        }
        let sides = rises_beside(q, half, (p.left, p.right), p.peak, p.edge_sigma, p.noise);
        if sides[0] == sides[1] {
            continue;
        }
        let clean = if sides[0] { 1.0 } else { -1.0 };
        let Some(c) = core_centre(q, half, (p.left, p.right), p.peak) else {
            continue;
        };
        let m = mirrored(q, half, c, clean);
        let search = 0.5 * p.separation() + 2.0;
        if let Some((left, right, peak, edge_sigma)) = edges(&m, half, search, p.noise.max(1e-4)) {
            *p = Profile {
                at: [p.at[0] + c * p.normal[0], p.at[1] + c * p.normal[1]],
                left,
                right,
                peak,
                edge_sigma,
                crowded: false,
                ..*p
            };
            *q = m;
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enhance::gaussian_blur;
    use image::RgbImage;
    use ndarray::Array2;

    /// Skin colour (linear RGB) and a brown shaft's absorption per px and channel.
    const SKIN: [f32; 3] = [0.55, 0.38, 0.30];
    const MU: [f32; 3] = [0.25, 0.33, 0.42];

    /// A round shaft across y: centre `c`, width `w`, optional lighter core (radius share,
    /// absorption removed) and neutral highlight (offset share of the radius, amplitude).
    struct Shaft {
        c: f32,
        w: f32,
        core: Option<(f32, f32)>,
        highlight: Option<(f32, f32)>,
    }

    /// A plain shaft: no core, no highlight.
    fn plain(c: f32, w: f32) -> Shaft {
        Shaft {
            c,
            w,
            core: None,
            highlight: None,
        }
    }

    /// Renders horizontal shafts on skin (rows `h`, columns `w`), 4x supersampled across,
    /// blurred with σ `blur`, to 8-bit sRGB.
    fn render(shafts: &[Shaft], (h, w): (usize, usize), blur: f32) -> RgbImage {
        let mut planes = [0, 1, 2].map(|_| Array2::<f32>::zeros((h, w)));
        for y in 0..h {
            let mut acc = [0.0f32; 3];
            for s in 0..4 {
                let yy = y as f32 + (s as f32 + 0.5) / 4.0 - 0.5;
                let mut t = [1.0f32; 3];
                let mut spec = 0.0;
                for sh in shafts {
                    let (r, d) = (0.5 * sh.w, yy - sh.c);
                    if d.abs() >= r {
                        continue;
                    }
                    let mut chord = 2.0 * (r * r - d * d).sqrt();
                    if let Some((share, removed)) = sh.core {
                        let rc = share * r;
                        if d.abs() < rc {
                            chord -= removed * 2.0 * (rc * rc - d * d).sqrt();
                        }
                    }
                    for (c, t) in t.iter_mut().enumerate() {
                        *t *= (-MU[c] * chord).exp();
                    }
                    if let Some((off, amp)) = sh.highlight {
                        let z = (d - off * r) / (0.15 * r);
                        spec += amp * (-0.5 * z * z).exp();
                    }
                }
                for c in 0..3 {
                    acc[c] += (SKIN[c] * t[c] + spec) / 4.0;
                }
            }
            for (c, p) in planes.iter_mut().enumerate() {
                p.row_mut(y).fill(acc[c]);
            }
        }
        let planes = planes.map(|p| gaussian_blur(&p, blur));
        let to8 = |v: f32| {
            let v = v.clamp(0.0, 1.0);
            let s = if v <= 0.003_130_8 {
                12.92 * v
            } else {
                1.055 * v.powf(1.0 / 2.4) - 0.055
            };
            (s * 255.0).round() as u8
        };
        RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let (x, y) = (x as usize, y as usize);
            image::Rgb([0, 1, 2].map(|c| to8(planes[c][[y, x]])))
        })
    }

    fn analyse(img: &RgbImage) -> Vec<crate::Hair> {
        let dynamic = image::DynamicImage::ImageRgb8(img.clone());
        crate::analyze(&dynamic, &crate::Settings::default())
            .unwrap()
            .hairs
    }

    /// Width and first point of each hair, for failure messages.
    fn listing(hairs: &[crate::Hair]) -> String {
        format!(
            "{:?}",
            hairs
                .iter()
                .map(|h| (h.width_px, h.points[0]))
                .collect::<Vec<_>>()
        )
    }

    /// Hairs lying along the rows near `y` (within 2 px), with their widths.
    fn widths_near(hairs: &[crate::Hair], y: f64) -> Vec<f64> {
        let mut v: Vec<f64> = hairs
            .iter()
            .filter(|h| {
                let m = h.points[h.points.len() / 2];
                (m[1] - y).abs() <= 2.0 && h.length_px >= 100.0
            })
            .map(|h| h.width_px)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn touching_pair_is_split_into_its_two_members() {
        // 9 px and 6 px shafts 0.5 px apart (edges at y = 60 and 60.5), blur σ 1.
        let shafts = [plain(55.5, 9.0), plain(63.5, 6.0)];
        let hairs = analyse(&render(&shafts, (120, 240), 1.0));
        let (a, b) = (widths_near(&hairs, 55.5), widths_near(&hairs, 63.5));
        assert_eq!((a.len(), b.len()), (1, 1), "hairs: {}", listing(&hairs));
        // Each member is measured from the junction, the middle of the 0.5 px gap: up to
        // about half the gap too wide on top of the usual error.
        assert!((a[0] - 9.0).abs() < 0.8, "wide member {}", a[0]);
        assert!((b[0] - 6.0).abs() < 0.8, "narrow member {}", b[0]);
        assert!(
            widths_near(&hairs, 59.5).iter().all(|&w| w < 12.0),
            "no 15 px hair"
        );
    }

    #[test]
    #[ignore = "known failure: the seam's light line takes the pair's centre; see docs/ACCURACY.md"]
    fn a_touching_pair_a_fraction_of_a_px_apart_is_found() {
        // 14 px and 13.4 px shafts 0.5 px apart under blur σ 0.9 (a pair on the realistic
        // phantom seed 502, image 14): the gap's light line wins the pair's centre at the
        // finest scales, the pair's scale wins the members' centres, and nothing is traced
        // (with the gap closed, both are found within 0.2 px).
        let shafts = [plain(50.0, 14.0), plain(64.2, 13.4)];
        let hairs = analyse(&render(&shafts, (160, 240), 0.9));
        let (a, b) = (widths_near(&hairs, 50.0), widths_near(&hairs, 64.2));
        assert_eq!((a.len(), b.len()), (1, 1), "hairs: {}", listing(&hairs));
        assert!((a[0] - 14.0).abs() < 0.8, "first member {}", a[0]);
        assert!((b[0] - 13.4).abs() < 0.8, "second member {}", b[0]);
    }

    #[test]
    fn medulla_and_highlight_keep_one_hair() {
        for sh in [
            Shaft {
                c: 60.0,
                w: 14.0,
                core: Some((0.3, 0.9)),
                highlight: None,
            },
            Shaft {
                c: 60.0,
                w: 14.0,
                core: None,
                highlight: Some((0.4, 0.25)),
            },
        ] {
            let what = if sh.core.is_some() {
                "medulla"
            } else {
                "highlight"
            };
            let hairs = analyse(&render(&[sh], (120, 240), 1.0));
            let w = widths_near(&hairs, 60.0);
            assert_eq!(w.len(), 1, "{what}: {}", listing(&hairs));
            assert!((w[0] - 14.0).abs() < 1.0, "{what}: width {}", w[0]);
        }
    }

    #[test]
    fn skin_between_two_shafts_is_not_taken_for_a_highlight() {
        // Two 10 px shafts 2.5 px of skin apart: the skin between them is a light line
        // inside a dark band, like a highlight, but skin-coloured; the two stay apart (a
        // veto on light lines in dark regions, tried against highlights, merged them).
        let shafts = [plain(54.0, 10.0), plain(66.5, 10.0)];
        let hairs = analyse(&render(&shafts, (120, 240), 1.0));
        let (a, b) = (widths_near(&hairs, 54.0), widths_near(&hairs, 66.5));
        assert_eq!((a.len(), b.len()), (1, 1), "hairs: {}", listing(&hairs));
        assert!(
            (a[0] - 10.0).abs() < 1.2 && (b[0] - 10.0).abs() < 1.2,
            "{a:?} {b:?}"
        );
        assert!(
            widths_near(&hairs, 60.25).iter().all(|&w| w < 14.0),
            "no merged hair: {}",
            listing(&hairs)
        );
    }

    #[test]
    fn junction_found_between_two_dips_not_in_one() {
        // Hair-positive profiles sampled every SAMPLE_STEP_PX from -half.
        let half = 16.0;
        let n = (2.0 * half / SAMPLE_STEP_PX) as usize + 1;
        let profile = |f: &dyn Fn(f32) -> f32| -> Vec<f32> {
            // Box-blur the exact profile over ±1 px (about σ 0.6).
            (0..n)
                .map(|i| {
                    let x = -half + i as f32 * SAMPLE_STEP_PX;
                    (-4..=4).map(|k| f(x + k as f32 * 0.25)).sum::<f32>() / 9.0
                })
                .collect()
        };
        let cyl = |x: f32, c: f32, w: f32| {
            let (r, d) = (0.5 * w, x - c);
            if d.abs() >= r {
                0.0
            } else {
                1.0 - (-0.3 * 2.0 * (r * r - d * d).sqrt()).exp()
            }
        };
        let pair = profile(&|x| cyl(x, -4.0, 8.0) + cyl(x, 3.0, 6.0));
        let found = junction(&pair, half, (-8.0, 6.0), 0.001, true);
        let j = found.first().expect("a pair");
        assert!(j.at.abs() < 0.5, "junction at {}", j.at);
        // The members' densest points: their centres, -4 and +3.
        assert!(
            (j.densest[0] + 4.0).abs() < 1.0 && (j.densest[1] - 3.0).abs() < 1.0,
            "{j:?}"
        );
        let one = profile(&|x| cyl(x, 0.0, 12.0));
        assert!(junction(&one, half, (-6.0, 6.0), 0.001, true).is_empty());
    }

    #[test]
    fn runs_need_length_and_bridge_single_holes() {
        let t = true;
        let f = false;
        assert_eq!(runs(&[t, t, t, f, t, t, t, f, f, t]), vec![(0, 7)]);
        assert_eq!(runs(&[t, t, t, f, f, t, t, t]), vec![]);
        assert_eq!(runs(&[f, t, t, t, t, t, t]), vec![(1, 7)]);
    }

    /// A profile (hair positive, every `SAMPLE_STEP_PX` from `-half`) of bars (centre,
    /// width, contrast) under Gaussian blur `sigma`, by numerical convolution.
    fn bars_profile(bars: &[(f32, f32, f32)], sigma: f32, half: f32) -> Vec<f32> {
        let n = (2.0 * half / SAMPLE_STEP_PX).round() as usize + 1;
        let du = 0.01f32;
        (0..n)
            .map(|k| {
                let x = -half + k as f32 * SAMPLE_STEP_PX;
                bars.iter()
                    .map(|&(c, w, a)| {
                        let steps = (w / du) as usize;
                        (0..steps)
                            .map(|j| {
                                let u = c - 0.5 * w + (j as f32 + 0.5) * du;
                                let z = (x - u) / sigma;
                                (-0.5 * z * z).exp()
                            })
                            .sum::<f32>()
                            * a
                            * du
                            / (sigma * (2.0 * std::f32::consts::PI).sqrt())
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn a_neighbour_a_few_px_away_is_seen_beside_its_edge_only() {
        let (sigma, half, noise) = (1.5f32, 24.0f32, 0.002f32);
        let sides = |bars: &[(f32, f32, f32)]| {
            let q = bars_profile(bars, sigma, half);
            let (l, r, peak, spread) = edges(&q, half, 7.0, noise).expect("a hair");
            rises_beside(&q, half, (l, r), peak, spread, noise)
        };
        assert_eq!(sides(&[(0.0, 10.0, 0.5)]), [false, false]);
        // Gaps of 3 and 4 px on the right, 3 px on the left (2 px under this blur: the two
        // are measured as one, and the pair split tells them apart).
        assert_eq!(sides(&[(0.0, 10.0, 0.5), (13.0, 10.0, 0.5)]), [false, true]);
        assert_eq!(sides(&[(0.0, 10.0, 0.5), (14.0, 10.0, 0.4)]), [false, true]);
        assert_eq!(
            sides(&[(-13.0, 10.0, 0.5), (0.0, 10.0, 0.5)]),
            [true, false]
        );
        // Beyond three edge spreads (12 px gap): its tail does not reach this edge.
        assert_eq!(sides(&[(0.0, 10.0, 0.5), (22.0, 8.0, 0.5)]), [false, false]);
        // A faint wiggle in the skin (under 4 noise SDs) is not a neighbour.
        assert_eq!(sides(&[(0.0, 10.0, 0.5), (9.0, 2.0, 0.01)]), [false, false]);
    }

    #[test]
    fn the_clean_half_mirrored_about_the_core_is_the_lone_hairs_profile() {
        let (sigma, half, noise) = (1.5f32, 24.0f32, 0.002f32);
        for w in [6.0f32, 10.0, 14.0] {
            let lone = bars_profile(&[(0.0, w, 0.5)], sigma, half);
            let (l0, r0, _, s0) = edges(&lone, half, 0.5 * w + 2.0, noise).unwrap();
            for gap in [3.0f32, 4.0] {
                let q = bars_profile(&[(0.0, w, 0.5), (w + gap, w, 0.5)], sigma, half);
                let (l, r, peak, _) = edges(&q, half, 0.5 * w + 2.0, noise).unwrap();
                let c = core_centre(&q, half, (l, r), peak).unwrap();
                assert!(c.abs() < 0.1, "w {w} gap {gap}: core centre {c}");
                let m = mirrored(&q, half, c, -1.0);
                let (lm, rm, _, sm) = edges(&m, half, 0.5 * w + 2.0, noise).unwrap();
                let (sep, sep0) = (rm - lm, r0 - l0);
                assert!(
                    (sep - sep0).abs() < 0.2,
                    "w {w} gap {gap}: {sep} vs lone {sep0}"
                );
                assert!(
                    (sm - s0).abs() < 0.1,
                    "w {w} gap {gap}: spread {sm} vs {s0}"
                );
            }
        }
    }
}
