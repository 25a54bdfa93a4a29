//! Stage 3: from the ridge map to individual hairs. Centreline pixels are those whose
//! sub-pixel line centre (Steger) falls inside them; hysteresis keeps faint stretches
//! connected to strong ones; thinning leaves one-pixel chains; chains are cut at
//! junctions and re-joined end to end by direction continuity, so a hair keeps its
//! identity across a crossing and hairs leaving one follicle stay apart.

use ndarray::Array2;

use crate::enhance::RidgeMap;

/// Response-to-noise ratio a chain needs somewhere to be a hair (hysteresis high).
pub const SNR_HIGH: f32 = 2.5;
/// Response-to-noise ratio along which a chain may extend (hysteresis low).
pub const SNR_LOW: f32 = 1.5;
/// Smallest scale-normalised response (≈ 0.48 × contrast) for a hair: 2% contrast.
pub const STRENGTH_MIN: f32 = 0.01;
/// A pixel is on the centreline when the sub-pixel centre lies within this many px of
/// it along x and y (0.5 is the pixel; a little more avoids gaps on half-pixel centres).
pub(crate) const CENTRE_BOX: f32 = 0.55;
/// Chains shorter than this (px) after cutting at junctions are dropped before joining.
const MIN_CHAIN_PX: usize = 3;
/// Points from an end used to estimate its direction (px).
const END_DIRECTION_SPAN: usize = 8;
/// Largest angle (degrees) between two ends that may be joined as one hair.
const JOIN_MAX_ANGLE_DEG: f32 = 35.0;
/// Gap bridged between joined ends: this many scale σ (≈ half widths) of the wider
/// chain, plus `JOIN_GAP_BASE_PX`: a crossing hair interrupts the ridge over its width.
const JOIN_GAP_SIGMAS: f32 = 4.0;
const JOIN_GAP_BASE_PX: f32 = 6.0;
/// Longest gap (px) bridged between pieces lying in line (angle and lateral offset below).
const JOIN_FAR_GAP_PX: f32 = 40.0;
const JOIN_FAR_MAX_ANGLE_DEG: f32 = 15.0;
const JOIN_FAR_LATERAL_PX: f32 = 2.0;
/// Largest ratio of detection scales between chains joined as one hair.
const JOIN_MAX_SCALE_RATIO: f32 = 1.6;

/// A traced centreline before measurement.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Sub-pixel centre points in order along the hair (px).
    pub points: Vec<[f32; 2]>,
    /// +1 dark hair, −1 light hair.
    pub polarity: i8,
    /// Median detection scale σ along the trace (px); about half the width.
    pub sigma: f32,
}

/// Centreline pixels: Steger centre inside the pixel, response above the low threshold.
fn centre_mask(m: &RidgeMap) -> Array2<bool> {
    let mut mask = Array2::from_elem(m.strength.dim(), false);
    ndarray::Zip::from(&mut mask)
        .and(&m.snr)
        .and(&m.strength)
        .and(&m.offset)
        .and(&m.normal)
        .for_each(|c, &snr, &strength, &t, n| {
            // `&`, not `&&`: no branches on a noisy mask.
            *c = (snr >= SNR_LOW)
                & (strength >= STRENGTH_MIN)
                & ((t * n[0]).abs() <= CENTRE_BOX)
                & ((t * n[1]).abs() <= CENTRE_BOX);
        });
    mask
}

const NEIGHBOURS: [(isize, isize); 8] = [
    (-1, -1),
    (0, -1),
    (1, -1),
    (-1, 0),
    (1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// Keeps the 8-connected groups of same-polarity centre pixels that reach `SNR_HIGH`.
fn hysteresis(m: &RidgeMap, mask: &Array2<bool>) -> Array2<bool> {
    let (h, w) = mask.dim();
    let mut keep = Array2::from_elem((h, w), false);
    let kept = keep.as_slice_mut().expect("standard layout");
    let (mask, snr, polarity) = (
        mask.as_slice().expect("standard layout"),
        m.snr.as_slice().expect("standard layout"),
        m.polarity.as_slice().expect("standard layout"),
    );
    // A group is the same set whatever order it is grown in: a stack will do. The tests
    // use `&`, not `&&`: the mask is noisy and branches on it mispredict.
    let mut stack = Vec::new();
    for i in 0..mask.len() {
        if mask[i] & (snr[i] >= SNR_HIGH) && !kept[i] {
            kept[i] = true;
            stack.push(i);
            while let Some(c) = stack.pop() {
                let pol = polarity[c];
                let (cx, cy) = (c % w, c / w);
                for (dx, dy) in NEIGHBOURS {
                    let nx = cx as isize + dx;
                    let ny = cy as isize + dy;
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] & !kept[j] & (polarity[j] == pol) {
                        kept[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
    }
    keep
}

/// Zhang–Suen deletion rule for each of the two sub-passes, indexed by the 8-bit code
/// of a pixel's neighbours (bit i set for p[i], p2..p9 clockwise from north).
const THIN_DELETABLE: [[bool; 256]; 2] = [thin_table(0), thin_table(1)];

/// Neighbour `i` (cyclic) of a neighbour code.
const fn code_bit(code: usize, i: usize) -> bool {
    code >> (i % 8) & 1 == 1
}

const fn thin_table(pass: usize) -> [bool; 256] {
    let mut t = [false; 256];
    let mut code = 0;
    while code < 256 {
        let b = (code as u8).count_ones();
        let mut a = 0;
        let mut i = 0;
        while i < 8 {
            if !code_bit(code, i) && code_bit(code, i + 1) {
                a += 1;
            }
            i += 1;
        }
        let p = [
            code_bit(code, 0),
            code_bit(code, 2),
            code_bit(code, 4),
            code_bit(code, 6),
        ];
        let (c1, c2) = if pass == 0 {
            (p[0] && p[1] && p[2], p[1] && p[2] && p[3])
        } else {
            (p[0] && p[1] && p[3], p[0] && p[2] && p[3])
        };
        t[code] = b >= 2 && b <= 6 && a == 1 && !c1 && !c2;
        code += 1;
    }
    t
}

/// Zhang–Suen thinning to one-pixel-wide 8-connected lines. Only set pixels are visited
/// (a ridge mask is sparse), and after the first round only those next to a deletion
/// since the sub-pass last ran (the rule depends on the 8 neighbours alone). The image's
/// border pixels are never deleted.
pub fn thin(mask: &mut Array2<bool>) {
    let (h, w) = mask.dim();
    if h < 3 || w < 3 {
        return;
    }
    let Some(m) = mask.as_slice_mut() else {
        let mut owned = mask.as_standard_layout().into_owned();
        thin(&mut owned);
        mask.assign(&owned);
        return;
    };
    // p2..p9 clockwise from north, as flat offsets.
    let offsets = [
        -(w as isize),
        1 - w as isize,
        1,
        w as isize + 1,
        w as isize,
        w as isize - 1,
        -1,
        -(w as isize) - 1,
    ];
    let interior = |i: usize| (1..h - 1).contains(&(i / w)) && (1..w - 1).contains(&(i % w));
    // Pixels each sub-pass must (re)examine, and bit `pass` of `queued` set while queued.
    let live: Vec<usize> = (1..h - 1)
        .flat_map(|y| y * w + 1..y * w + w - 1)
        .filter(|&i| m[i])
        .collect();
    let mut queued = vec![0u8; m.len()];
    for &i in &live {
        queued[i] = 0b11;
    }
    let mut todo = [live.clone(), live];
    let mut del = Vec::new();
    let mut changed = true;
    while changed {
        changed = false;
        for (pass, table) in THIN_DELETABLE.iter().enumerate() {
            del.clear();
            for i in std::mem::take(&mut todo[pass]) {
                queued[i] &= !(1 << pass);
                if !m[i] {
                    continue;
                }
                let mut code = 0usize;
                for (bit, &o) in offsets.iter().enumerate() {
                    code |= (m[i.wrapping_add_signed(o)] as usize) << bit;
                }
                if table[code] {
                    del.push(i);
                }
            }
            for &i in &del {
                m[i] = false;
            }
            for &i in &del {
                for &o in &offsets {
                    let j = i.wrapping_add_signed(o);
                    if !m[j] || !interior(j) {
                        continue;
                    }
                    for (p, list) in todo.iter_mut().enumerate() {
                        if queued[j] & 1 << p == 0 {
                            queued[j] |= 1 << p;
                            list.push(j);
                        }
                    }
                }
            }
            changed |= !del.is_empty();
        }
    }
}

fn neighbour_count(mask: &Array2<bool>, x: usize, y: usize) -> usize {
    let (h, w) = mask.dim();
    NEIGHBOURS
        .iter()
        .filter(|(dx, dy)| {
            let nx = x as isize + dx;
            let ny = y as isize + dy;
            nx >= 0
                && ny >= 0
                && nx < w as isize
                && ny < h as isize
                && mask[[ny as usize, nx as usize]]
        })
        .count()
}

/// Number of separate groups of set pixels around (x, y), going round the 8 neighbours:
/// 1 at a line's end, 2 along a line (even a staircase), 3 or more at a junction.
fn neighbour_groups(mask: &Array2<bool>, x: usize, y: usize) -> usize {
    const RING: [(isize, isize); 8] = [
        (0, -1),
        (1, -1),
        (1, 0),
        (1, 1),
        (0, 1),
        (-1, 1),
        (-1, 0),
        (-1, -1),
    ];
    let (h, w) = mask.dim();
    let at = |k: usize| {
        let (dx, dy) = RING[k % 8];
        let nx = x as isize + dx;
        let ny = y as isize + dy;
        nx >= 0 && ny >= 0 && nx < w as isize && ny < h as isize && mask[[ny as usize, nx as usize]]
    };
    let groups = (0..8).filter(|&k| at(k) && !at(k + 7)).count();
    if groups == 0 && (0..8).all(at) {
        1
    } else {
        groups
    }
}

/// Splits a thinned mask into simple pixel chains (junction pixels removed), each ordered
/// from one end to the other. Closed loops are opened at an arbitrary pixel.
pub fn chains(mask: &Array2<bool>) -> Vec<Vec<(usize, usize)>> {
    let (h, w) = mask.dim();
    let mut m = mask.clone();
    // The set pixels in raster order.
    let set: Vec<(usize, usize)> = mask
        .as_standard_layout()
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v)
        .map(|(i, _)| (i % w, i / w))
        .collect();
    // Cut at junctions.
    let junctions: Vec<(usize, usize)> = set
        .iter()
        .copied()
        .filter(|&(x, y)| neighbour_groups(mask, x, y) >= 3)
        .collect();
    for &(x, y) in &junctions {
        m[[y, x]] = false;
    }
    // Pixels touching a junction that still touch three others would bridge its arms
    // diagonally: remove them with it.
    for &(x, y) in &junctions {
        for (dx, dy) in NEIGHBOURS {
            let (nx, ny) = (x as isize + dx, y as isize + dy);
            if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                continue;
            }
            let (nx, ny) = (nx as usize, ny as usize);
            if mask[[ny, nx]] && neighbour_count(mask, nx, ny) >= 3 {
                m[[ny, nx]] = false;
            }
        }
    }
    let mut seen = Array2::from_elem((h, w), false);
    let mut out = Vec::new();
    let walk = |start: (usize, usize), m: &Array2<bool>, seen: &mut Array2<bool>| {
        let mut chain = vec![start];
        seen[[start.1, start.0]] = true;
        let mut cur = start;
        loop {
            let mut next = None;
            // Prefer 4-neighbours so a staircase is walked pixel by pixel.
            for (dx, dy) in [
                (0, -1),
                (-1, 0),
                (1, 0),
                (0, 1),
                (-1, -1),
                (1, -1),
                (-1, 1),
                (1, 1),
            ] {
                let nx = cur.0 as isize + dx;
                let ny = cur.1 as isize + dy;
                if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                    continue;
                }
                let (nx, ny) = (nx as usize, ny as usize);
                if m[[ny, nx]] && !seen[[ny, nx]] {
                    next = Some((nx, ny));
                    break;
                }
            }
            match next {
                Some(n) => {
                    seen[[n.1, n.0]] = true;
                    chain.push(n);
                    cur = n;
                }
                None => break,
            }
        }
        chain
    };
    // Open chains from their ends first, then whatever is left (loops).
    for pass in 0..2 {
        for &(x, y) in &set {
            if m[[y, x]] && !seen[[y, x]] && (pass == 1 || neighbour_groups(&m, x, y) <= 1) {
                out.push(walk((x, y), &m, &mut seen));
            }
        }
    }
    out
}

/// One end of a chain for joining.
struct End {
    chain: usize,
    at_start: bool,
    pos: [f32; 2],
    /// Unit direction pointing out of the chain at this end.
    dir: [f32; 2],
}

fn end_of(points: &[[f32; 2]], chain: usize, at_start: bool) -> End {
    let n = points.len();
    let k = END_DIRECTION_SPAN.min(n - 1);
    let (tip, inner) = if at_start {
        (points[0], points[k])
    } else {
        (points[n - 1], points[n - 1 - k])
    };
    let mut d = [tip[0] - inner[0], tip[1] - inner[1]];
    let l = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-6);
    d = [d[0] / l, d[1] / l];
    End {
        chain,
        at_start,
        pos: tip,
        dir: d,
    }
}

fn angle_deg(a: [f32; 2], b: [f32; 2]) -> f32 {
    let dot = (a[0] * b[0] + a[1] * b[1]).clamp(-1.0, 1.0);
    dot.acos().to_degrees()
}

/// Union-find root of `i`, compressing the path (shared with [`crate::link`]).
pub(crate) fn find(parent: &mut [usize], i: usize) -> usize {
    let mut r = i;
    while parent[r] != r {
        r = parent[r];
    }
    let mut c = i;
    while parent[c] != r {
        let next = parent[c];
        parent[c] = r;
        c = next;
    }
    r
}

/// Joins chain ends that continue each other (same polarity, aligned, close, similar
/// scale) and returns the joined traces.
fn join(pieces: Vec<Trace>) -> Vec<Trace> {
    let ends: Vec<End> = pieces
        .iter()
        .enumerate()
        .flat_map(|(i, t)| [end_of(&t.points, i, true), end_of(&t.points, i, false)])
        .collect();
    // Candidate pairs with their cost, via a coarse grid over end positions.
    let max_sigma = pieces.iter().map(|t| t.sigma).fold(1.0f32, f32::max);
    let cell = (JOIN_GAP_SIGMAS * max_sigma + JOIN_GAP_BASE_PX).max(8.0);
    let mut grid: std::collections::HashMap<(i32, i32), Vec<usize>> = Default::default();
    for (i, e) in ends.iter().enumerate() {
        grid.entry(((e.pos[0] / cell) as i32, (e.pos[1] / cell) as i32))
            .or_default()
            .push(i);
    }
    let mut cands: Vec<(f32, usize, usize)> = Vec::new();
    for (i, a) in ends.iter().enumerate() {
        let (cx, cy) = ((a.pos[0] / cell) as i32, (a.pos[1] / cell) as i32);
        for gy in cy - 1..=cy + 1 {
            for gx in cx - 1..=cx + 1 {
                let Some(list) = grid.get(&(gx, gy)) else {
                    continue;
                };
                for &j in list {
                    if j <= i || ends[j].chain == a.chain {
                        continue;
                    }
                    let b = &ends[j];
                    let (ta, tb) = (&pieces[a.chain], &pieces[b.chain]);
                    if ta.polarity != tb.polarity {
                        continue;
                    }
                    let ratio = ta.sigma.max(tb.sigma) / ta.sigma.min(tb.sigma);
                    if ratio > JOIN_MAX_SCALE_RATIO {
                        continue;
                    }
                    let v = [b.pos[0] - a.pos[0], b.pos[1] - a.pos[1]];
                    let dist = (v[0] * v[0] + v[1] * v[1]).sqrt();
                    let near = JOIN_GAP_SIGMAS * ta.sigma.max(tb.sigma) + JOIN_GAP_BASE_PX;
                    let continuation = angle_deg(a.dir, [-b.dir[0], -b.dir[1]]);
                    // Beyond the near gap, only pieces in line with each other are joined:
                    // a faint hair's ridge breaks up where the skin texture masks it.
                    let far = dist > near;
                    let lateral = (v[0] * a.dir[1] - v[1] * a.dir[0]).abs();
                    if far
                        && (dist > JOIN_FAR_GAP_PX
                            || continuation > JOIN_FAR_MAX_ANGLE_DEG
                            || lateral > JOIN_FAR_LATERAL_PX + ta.sigma.max(tb.sigma))
                    {
                        continue;
                    }
                    let gap = if far { JOIN_FAR_GAP_PX } else { near };
                    if continuation > JOIN_MAX_ANGLE_DEG {
                        continue;
                    }
                    if dist > 2.0 {
                        let u = [v[0] / dist, v[1] / dist];
                        if angle_deg(a.dir, u) > JOIN_MAX_ANGLE_DEG
                            || angle_deg(b.dir, [-u[0], -u[1]]) > JOIN_MAX_ANGLE_DEG
                        {
                            continue;
                        }
                    }
                    let cost = dist / gap + continuation / JOIN_MAX_ANGLE_DEG + (ratio - 1.0);
                    cands.push((cost, i, j));
                }
            }
        }
    }
    cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut used = vec![false; ends.len()];
    let mut link: Vec<Option<usize>> = vec![None; ends.len()];
    let mut parent: Vec<usize> = (0..pieces.len()).collect();
    for (_, i, j) in cands {
        if used[i] || used[j] {
            continue;
        }
        let (ri, rj) = (
            find(&mut parent, ends[i].chain),
            find(&mut parent, ends[j].chain),
        );
        if ri == rj {
            continue; // would close a loop
        }
        parent[ri] = rj;
        used[i] = true;
        used[j] = true;
        link[i] = Some(j);
        link[j] = Some(i);
    }
    // Walk each joined group from a free end.
    let mut done = vec![false; pieces.len()];
    let mut out = Vec::new();
    for start in 0..ends.len() {
        let c = ends[start].chain;
        if done[c] || link[start].is_some() {
            continue;
        }
        let mut points: Vec<[f32; 2]> = Vec::new();
        let mut sigmas: Vec<(f32, usize)> = Vec::new();
        let mut e = start;
        loop {
            let chain = ends[e].chain;
            done[chain] = true;
            let t = &pieces[chain];
            if ends[e].at_start {
                points.extend(t.points.iter().copied());
            } else {
                points.extend(t.points.iter().rev().copied());
            }
            sigmas.push((t.sigma, t.points.len()));
            // The other end of this chain, and where it links.
            let other = if ends[e].at_start {
                2 * chain + 1
            } else {
                2 * chain
            };
            match link[other] {
                Some(next) => e = next,
                None => break,
            }
        }
        sigmas.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: usize = sigmas.iter().map(|s| s.1).sum();
        let mut acc = 0;
        let mut sigma = sigmas[0].0;
        for (s, n) in &sigmas {
            acc += n;
            if 2 * acc >= total {
                sigma = *s;
                break;
            }
        }
        out.push(Trace {
            points,
            polarity: pieces[c].polarity,
            sigma,
        });
    }
    out
}

/// The centreline pixels a ridge map's traces are cut from: centre pixels kept by
/// hysteresis, thinned to one pixel.
pub fn centreline_pixels(m: &RidgeMap) -> Array2<bool> {
    let mask = centre_mask(m);
    let mut keep = hysteresis(m, &mask);
    thin(&mut keep);
    keep
}

/// Traces every hair-like centreline in a ridge map.
pub fn trace(m: &RidgeMap) -> Vec<Trace> {
    let keep = centreline_pixels(m);
    let pieces: Vec<Trace> = chains(&keep)
        .into_iter()
        .filter(|c| c.len() >= MIN_CHAIN_PX)
        .map(|c| {
            let points: Vec<[f32; 2]> = c
                .iter()
                .map(|&(x, y)| {
                    let t = m.offset[[y, x]].clamp(-0.7, 0.7);
                    let n = m.normal[[y, x]];
                    [x as f32 + t * n[0], y as f32 + t * n[1]]
                })
                .collect();
            let mut sig: Vec<f32> = c
                .iter()
                .map(|&(x, y)| m.scales[m.scale[[y, x]] as usize])
                .collect();
            let mid = sig.len() / 2;
            let sigma = *sig.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1;
            let mut votes = 0i32;
            for &(x, y) in &c {
                votes += m.polarity[[y, x]] as i32;
            }
            Trace {
                points,
                polarity: if votes >= 0 { 1 } else { -1 },
                sigma,
            }
        })
        .collect();
    join(pieces)
        .into_iter()
        .flat_map(split_at_corners)
        .collect()
}

/// Arc length (px) on each side of a point over which its turning angle is measured.
const CORNER_SPAN_PX: f32 = 8.0;
/// A trace turning by more than this (degrees) within `CORNER_SPAN_PX` on each side has
/// run from one hair into a crossing one at a junction: no hair bends that tightly.
const CORNER_MAX_TURN_DEG: f32 = 40.0;

/// Cuts a trace at its corners (the sharpest point of each run of points turning by more
/// than `CORNER_MAX_TURN_DEG`); `link` joins the straight continuations again.
fn split_at_corners(t: Trace) -> Vec<Trace> {
    let p = &t.points;
    let n = p.len();
    let mut cum = vec![0.0f32; n];
    for i in 1..n {
        cum[i] = cum[i - 1] + ((p[i][0] - p[i - 1][0]).hypot(p[i][1] - p[i - 1][1]));
    }
    let mut turn = vec![0.0f32; n];
    let (mut a, mut b) = (0, 0);
    for i in 0..n {
        while cum[i] - cum[a] > CORNER_SPAN_PX {
            a += 1;
        }
        while b + 1 < n && cum[b] - cum[i] < CORNER_SPAN_PX {
            b += 1;
        }
        // Too near an end for a full span on both sides.
        if cum[i] < CORNER_SPAN_PX || cum[b] - cum[i] < CORNER_SPAN_PX {
            continue;
        }
        let unit = |d: [f32; 2]| {
            let l = d[0].hypot(d[1]).max(1e-6);
            [d[0] / l, d[1] / l]
        };
        let back = unit([p[i][0] - p[a][0], p[i][1] - p[a][1]]);
        let ahead = unit([p[b][0] - p[i][0], p[b][1] - p[i][1]]);
        turn[i] = angle_deg(back, ahead);
    }
    let mut cuts = Vec::new();
    let mut i = 0;
    while i < n {
        if turn[i] <= CORNER_MAX_TURN_DEG {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && turn[i] > CORNER_MAX_TURN_DEG {
            i += 1;
        }
        let sharpest = (start..i)
            .max_by(|&x, &y| turn[x].total_cmp(&turn[y]))
            .unwrap();
        cuts.push(sharpest);
    }
    if cuts.is_empty() {
        return vec![t];
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for c in cuts.into_iter().chain(std::iter::once(n)) {
        if c - from >= MIN_CHAIN_PX {
            out.push(Trace {
                points: p[from..c].to_vec(),
                polarity: t.polarity,
                sigma: t.sigma,
            });
        }
        from = c;
    }
    out
}

/// Length of a polyline (px).
pub fn polyline_length(points: &[[f32; 2]]) -> f32 {
    points
        .windows(2)
        .map(|p| ((p[1][0] - p[0][0]).powi(2) + (p[1][1] - p[0][1]).powi(2)).sqrt())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_from(rows: &[&str]) -> Array2<bool> {
        let h = rows.len();
        let w = rows[0].len();
        Array2::from_shape_fn((h, w), |(y, x)| rows[y].as_bytes()[x] == b'#')
    }

    /// Zhang–Suen by whole-image sweeps, straight from the definition (reference).
    fn naive_thin(mask: &mut Array2<bool>) {
        let (h, w) = mask.dim();
        let mut changed = true;
        while changed {
            changed = false;
            for pass in 0..2 {
                let mut del = Vec::new();
                for y in 1..h - 1 {
                    for x in 1..w - 1 {
                        // p2..p9 clockwise from north.
                        let p = [
                            mask[[y - 1, x]],
                            mask[[y - 1, x + 1]],
                            mask[[y, x + 1]],
                            mask[[y + 1, x + 1]],
                            mask[[y + 1, x]],
                            mask[[y + 1, x - 1]],
                            mask[[y, x - 1]],
                            mask[[y - 1, x - 1]],
                        ];
                        let b = p.iter().filter(|&&v| v).count();
                        let a = (0..8).filter(|&i| !p[i] && p[(i + 1) % 8]).count();
                        let (c1, c2) = if pass == 0 {
                            (p[0] && p[2] && p[4], p[2] && p[4] && p[6])
                        } else {
                            (p[0] && p[2] && p[6], p[0] && p[4] && p[6])
                        };
                        if mask[[y, x]] && (2..=6).contains(&b) && a == 1 && !c1 && !c2 {
                            del.push((x, y));
                        }
                    }
                }
                for &(x, y) in &del {
                    mask[[y, x]] = false;
                }
                changed |= !del.is_empty();
            }
        }
    }

    #[test]
    fn thinning_matches_the_whole_image_sweeps() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for k in 0..60usize {
            // Noise of rising density, with thick bars across it.
            let density = 1 + k % 6;
            let mut m = Array2::from_shape_fn((37, 53), |_| next() % 8 < density as u64);
            for x in 0..53 {
                for y in 10..10 + k % 9 {
                    m[[y, x]] = true;
                }
            }
            let mut reference = m.clone();
            naive_thin(&mut reference);
            thin(&mut m);
            assert_eq!(m, reference, "mask {k}");
        }
    }

    #[test]
    fn thinning_leaves_one_pixel_line() {
        let mut m = mask_from(&[
            "..........",
            ".########.",
            ".########.",
            ".########.",
            "..........",
        ]);
        thin(&mut m);
        // Every inner column keeps exactly one pixel.
        for x in 3..7 {
            let n = (0..5).filter(|&y| m[[y, x]]).count();
            assert_eq!(n, 1, "column {x}");
        }
    }

    #[test]
    fn chains_are_cut_at_junctions_and_ordered() {
        let m = mask_from(&[
            "...#....", "...#....", "...#....", "########", "...#....", "...#....",
        ]);
        let c = chains(&m);
        // Junction removed: four separate arms.
        assert_eq!(c.len(), 4, "{c:?}");
        for ch in &c {
            for p in ch.windows(2) {
                let dx = (p[0].0 as isize - p[1].0 as isize).abs();
                let dy = (p[0].1 as isize - p[1].1 as isize).abs();
                assert!(dx <= 1 && dy <= 1);
            }
        }
    }

    fn straight(from: [f32; 2], to: [f32; 2], sigma: f32) -> Trace {
        let n = 30;
        let points = (0..=n)
            .map(|i| {
                let t = i as f32 / n as f32;
                [
                    from[0] + t * (to[0] - from[0]),
                    from[1] + t * (to[1] - from[1]),
                ]
            })
            .collect();
        Trace {
            points,
            polarity: 1,
            sigma,
        }
    }

    #[test]
    fn join_keeps_identity_across_a_crossing() {
        // Two hairs crossing at right angles, each interrupted at the crossing.
        let pieces = vec![
            straight([0.0, 50.0], [44.0, 50.0], 2.0),
            straight([56.0, 50.0], [100.0, 50.0], 2.0),
            straight([50.0, 0.0], [50.0, 44.0], 2.0),
            straight([50.0, 56.0], [50.0, 100.0], 2.0),
        ];
        let joined = join(pieces);
        assert_eq!(joined.len(), 2);
        for t in &joined {
            let a = t.points[0];
            let b = *t.points.last().unwrap();
            // Each joined hair runs straight through: ends on opposite sides.
            assert!(
                (a[0] - b[0]).abs() > 90.0 || (a[1] - b[1]).abs() > 90.0,
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn join_does_not_merge_hairs_leaving_one_follicle() {
        // Two hairs leaving the same point 40° apart.
        let pieces = vec![
            straight([50.0, 50.0], [100.0, 50.0], 1.5),
            straight([50.0, 49.0], [88.0, 17.0], 1.5),
        ];
        assert_eq!(join(pieces).len(), 2);
    }

    #[test]
    fn traces_are_cut_at_corners_not_along_curves() {
        // An L: 60 px along x, then 60 px turning 70° into a crossing hair.
        let mut pts: Vec<[f32; 2]> = (0..=60).map(|i| [i as f32, 50.0]).collect();
        let (c, s) = (70f32.to_radians().cos(), 70f32.to_radians().sin());
        pts.extend((1..=60).map(|i| [60.0 + i as f32 * c, 50.0 + i as f32 * s]));
        let l = Trace {
            points: pts,
            polarity: 1,
            sigma: 2.0,
        };
        let parts = split_at_corners(l);
        assert_eq!(parts.len(), 2);
        let end = parts[0].points.last().unwrap();
        assert!(
            (end[0] - 60.0).abs() <= 1.5 && (end[1] - 50.0).abs() <= 1.5,
            "{end:?}"
        );
        // A curly hair (radius 40 px, 180°) and a straight one stay whole.
        let arc: Vec<[f32; 2]> = (0..=125)
            .map(|i| {
                let a = i as f32 / 40.0;
                [100.0 + 40.0 * a.cos(), 100.0 + 40.0 * a.sin()]
            })
            .collect();
        for points in [arc, (0..100).map(|i| [i as f32, 3.0]).collect()] {
            let t = Trace {
                points,
                polarity: 1,
                sigma: 2.0,
            };
            assert_eq!(split_at_corners(t).len(), 1);
        }
    }
}
