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
    /// Index into `scales` of the scale of the pixel's line (its most significant scale of
    /// that polarity: highest `snr`); meaningless where strength is 0.
    pub scale: Array2<u8>,
    /// +1 for a dark line (valley), −1 for a light line (ridge), 0 for none.
    pub polarity: Array2<i8>,
    /// Unit normal across the line at the best scale (x, y components). Computed only
    /// where the tracer can use it (`snr` ≥ `trace::SNR_LOW` and `strength` ≥
    /// `trace::STRENGTH_MIN`); (1, 0) elsewhere.
    pub normal: Array2<[f32; 2]>,
    /// Offset (px, along `normal`) from the pixel centre to the line's sub-pixel centre.
    /// Computed where `normal` is; 0 elsewhere.
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
    let mut sample: Vec<f64> = s.iter().step_by(step).map(|&v| v as f64).collect();
    let sd = crate::stats::robust_sd_mut(&mut sample).max(BACKGROUND_SD_FLOOR) as f32;
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
    let s = lum.as_slice().expect("standard layout");
    let mask = mask.map(|(c, range)| (c.as_slice().expect("standard layout"), range));
    let gh = h.div_ceil(block);
    let gw = w.div_ceil(block);
    let mut grid = Array2::<f32>::zeros((gh, gw));
    let mut buf: Vec<i32> = Vec::with_capacity(block * block);
    for gy in 0..gh {
        let ys = gy * block..((gy + 1) * block).min(h);
        for gx in 0..gw {
            let xs = gx * block..((gx + 1) * block).min(w);
            let total = ys.len() * xs.len();
            buf.clear();
            for y in ys.clone() {
                let row = &s[y * w..][xs.clone()];
                match mask {
                    Some((c, (lo, hi))) => {
                        let crow = &c[y * w..][xs.clone()];
                        buf.extend(
                            row.iter()
                                .zip(crow)
                                .filter(|(_, &cv)| !(cv < lo || cv > hi))
                                .map(|(&v, _)| total_order_key(v)),
                        );
                    }
                    None => buf.extend(row.iter().map(|&v| total_order_key(v))),
                }
            }
            if buf.len() * BACKGROUND_MIN_KEPT < total {
                // Too few kept: the median of the whole block.
                buf.clear();
                for y in ys.clone() {
                    buf.extend(s[y * w..][xs.clone()].iter().map(|&v| total_order_key(v)));
                }
            }
            let mid = buf.len() / 2;
            let (_, &mut m, _) = buf.select_nth_unstable(mid);
            grid[[gy, gx]] = from_total_order_key(m);
        }
    }
    median3(&grid)
}

/// An integer that orders like `f32::total_cmp` (the same transform it uses): integer
/// comparisons make the block medians' selection faster.
fn total_order_key(v: f32) -> i32 {
    let b = v.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

/// Inverse of `total_order_key`.
fn from_total_order_key(k: i32) -> f32 {
    f32::from_bits((k ^ (((k >> 31) as u32) >> 1) as i32) as u32)
}

/// Bilinear weights along one axis of a block grid, for pixel coordinate `i`: (index of
/// the lower block centre, index of the upper one, weight of the upper one). Extrapolated
/// linearly over the outer half blocks.
fn grid_cell(i: usize, block: usize, n: usize) -> (usize, usize, f32) {
    if n == 1 {
        return (0, 0, 0.0);
    }
    let f = (i as f32 + 0.5) / block as f32 - 0.5;
    let i0 = (f.max(0.0) as usize).min(n - 2);
    (i0, i0 + 1, (f - i0 as f32).clamp(-0.5, n as f32))
}

/// Relative contrast of `lum` against the bilinear surface through a block grid.
fn divide(lum: &Array2<f32>, grid: &Array2<f32>, block: usize) -> Array2<f32> {
    let (h, w) = lum.dim();
    let (gh, gw) = grid.dim();
    let s = lum.as_slice().expect("standard layout");
    // Every grid row interpolated along x to all w columns (the x half of the bilinear
    // surface), then each image row is a vectorisable mix of two of them.
    let mut wide = vec![0f32; gh * w];
    for (o, g) in wide.chunks_exact_mut(w).zip(grid.rows()) {
        for (x, v) in o.iter_mut().enumerate() {
            let (x0, x1, tx) = grid_cell(x, block, gw);
            *v = (1.0 - tx) * g[x0] + tx * g[x1];
        }
    }
    let mut out = vec![0f32; h * w];
    for (y, (orow, lrow)) in out.chunks_exact_mut(w).zip(s.chunks_exact(w)).enumerate() {
        let (y0, y1, ty) = grid_cell(y, block, gh);
        let (a, b) = (&wide[y0 * w..][..w], &wide[y1 * w..][..w]);
        for (((o, &l), &va), &vb) in orow.iter_mut().zip(lrow).zip(a).zip(b) {
            let bg = (1.0 - ty) * va + ty * vb;
            *o = l / bg.max(BACKGROUND_FLOOR) - 1.0;
        }
    }
    Array2::from_shape_vec((h, w), out).expect("shape")
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

/// Pixels summed together in registers by `weighted_sum` (8 SSE registers of 4 lanes:
/// enough independent additions to hide their latency).
const LANES: usize = 32;

/// `out[x] = Σ_j k[j] · src(j)[x]`, each pixel summed in tap order from 0.0, so the result
/// is bit-identical to a plain per-pixel loop; blocks of `LANES` pixels stay in registers.
fn weighted_sum<'a>(k: &[f32], src: impl Fn(usize) -> &'a [f32], out: &mut [f32]) {
    let w = out.len();
    let mut x = 0;
    while x + LANES <= w {
        let mut acc = [0f32; LANES];
        for (j, &kv) in k.iter().enumerate() {
            for (a, &v) in acc.iter_mut().zip(&src(j)[x..x + LANES]) {
                *a += kv * v;
            }
        }
        out[x..x + LANES].copy_from_slice(&acc);
        x += LANES;
    }
    for (x, o) in out.iter_mut().enumerate().skip(x) {
        let mut acc = 0.0;
        for (j, &kv) in k.iter().enumerate() {
            acc += kv * src(j)[x];
        }
        *o = acc;
    }
}

/// Separable Gaussian blur with edge pixels replicated. `sigma` in pixels.
pub fn gaussian_blur(src: &Array2<f32>, sigma: f32) -> Array2<f32> {
    let (h, w) = src.dim();
    if sigma <= 0.0 || h == 0 || w == 0 {
        return src.clone();
    }
    let mut out = Vec::new();
    blur_into(
        src.as_slice().expect("standard layout"),
        (h, w),
        sigma,
        &mut out,
    );
    Array2::from_shape_vec((h, w), out).expect("shape")
}

/// `gaussian_blur` of a row-major h×w image (h, w ≥ 1, σ > 0) into `out`, reusing its
/// allocation.
fn blur_into(s: &[f32], (h, w): (usize, usize), sigma: f32, out: &mut Vec<f32>) {
    let k = gaussian_kernel(sigma);
    let n = k.len();
    let r = n / 2;
    // Horizontally blurred rows, the last n of them in a ring (row yy in slot yy % n): the
    // vertical pass reads them from cache instead of from a whole intermediate image.
    let mut ring = vec![0f32; n * w];
    let mut padded = vec![0f32; w + 2 * r];
    let mut next_row = 0;
    out.resize(h * w, 0.0);
    let mut slots = vec![0usize; n];
    for (y, o) in out.chunks_exact_mut(w).enumerate() {
        while next_row <= (y + r).min(h - 1) {
            let line = &s[next_row * w..][..w];
            padded[..r].fill(line[0]);
            padded[r..r + w].copy_from_slice(line);
            padded[r + w..].fill(line[w - 1]);
            let dst = &mut ring[(next_row % n) * w..][..w];
            weighted_sum(&k, |j| &padded[j..j + w], dst);
            next_row += 1;
        }
        for (j, slot) in slots.iter_mut().enumerate() {
            *slot = ((y + j).saturating_sub(r).min(h - 1) % n) * w;
        }
        weighted_sum(&k, |j| &ring[slots[j]..slots[j] + w], o);
    }
}

/// Halves an image by 2×2 box averaging (odd edges replicate).
fn downsample2(src: &Array2<f32>) -> Array2<f32> {
    let (h, w) = src.dim();
    let s = src.as_slice().expect("standard layout");
    let (h2, w2) = (h.div_ceil(2).max(1), w.div_ceil(2).max(1));
    let mut out = vec![0f32; h2 * w2];
    for (y, orow) in out.chunks_exact_mut(w2).enumerate() {
        let ra = &s[(2 * y).min(h - 1) * w..][..w];
        let rb = &s[(2 * y + 1).min(h - 1) * w..][..w];
        for (x, o) in orow.iter_mut().enumerate() {
            let xa = 2 * x;
            let xb = (2 * x + 1).min(w - 1);
            *o = 0.25 * (ra[xa] + ra[xb] + rb[xa] + rb[xb]);
        }
    }
    Array2::from_shape_vec((h2, w2), out).expect("shape")
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
    derivs_in(b.as_slice().expect("standard layout"), h, w, x, y)
}

/// `derivs_at` on a row-major h×w slice.
#[inline]
fn derivs_in(b: &[f32], h: usize, w: usize, x: usize, y: usize) -> Derivs {
    let xm = x.saturating_sub(1);
    let xp = (x + 1).min(w - 1);
    let (rm, r0, rp) = (
        &b[y.saturating_sub(1) * w..][..w],
        &b[y * w..][..w],
        &b[(y + 1).min(h - 1) * w..][..w],
    );
    let c = r0[x];
    Derivs {
        gx: 0.5 * (r0[xp] - r0[xm]),
        gy: 0.5 * (rp[x] - rm[x]),
        xx: r0[xp] - 2.0 * c + r0[xm],
        yy: rp[x] - 2.0 * c + rm[x],
        xy: 0.25 * (rp[xp] - rp[xm] - rm[xp] + rm[xm]),
    }
}

/// Hessian eigenvalues ordered (across the line, along it): |λn| ≥ |λt|.
#[inline]
fn eigenvalues(xx: f32, xy: f32, yy: f32) -> (f32, f32) {
    let half_tr = 0.5 * (xx + yy);
    let disc = (0.25 * (xx - yy) * (xx - yy) + xy * xy).sqrt();
    let l1 = half_tr + disc;
    let l2 = half_tr - disc;
    if l1.abs() >= l2.abs() {
        (l1, l2)
    } else {
        (l2, l1)
    }
}

/// |λn| − |λt| (≥ 0), signed + for a valley (dark line), − for a ridge (light line).
#[inline]
fn signed_response(xx: f32, xy: f32, yy: f32) -> f32 {
    let (ln, lt) = eigenvalues(xx, xy, yy);
    let r = (ln.abs() - lt.abs()).max(0.0);
    if ln >= 0.0 {
        r
    } else {
        -r
    }
}

/// Line analysis of a Hessian: (signed response, unit normal). The response is
/// |λn| − |λt| (≥ 0), signed + for a valley (dark line), − for a ridge (light line).
pub fn line_response(d: &Derivs) -> (f32, [f32; 2]) {
    (
        signed_response(d.xx, d.xy, d.yy),
        unit_normal(d.xx, d.xy, d.yy),
    )
}

/// Unit eigenvector of the Hessian's across-line eigenvalue λn ((1, 0) when undefined).
#[inline]
fn unit_normal(xx: f32, xy: f32, yy: f32) -> [f32; 2] {
    let (ln, _) = eigenvalues(xx, xy, yy);
    // Eigenvector of ln: (xy, ln − xx) or (ln − yy, xy), whichever is better conditioned.
    let (ax, ay) = (xy, ln - xx);
    let (bx, by) = (ln - yy, xy);
    let (nx, ny) = if ax * ax + ay * ay >= bx * bx + by * by {
        (ax, ay)
    } else {
        (bx, by)
    };
    let norm = (nx * nx + ny * ny).sqrt();
    if norm > 0.0 {
        [nx / norm, ny / norm]
    } else {
        [1.0, 0.0]
    }
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

/// Least relative contrast of a pixel (skin 0, dark hairs down to −1) where a dark line
/// centred on it keeps it from a more significant light line that is not: darker pixels
/// lie inside a dark shaft, whose own structure that would be.
const FLANK_MIN_CONTRAST: f32 = -0.3;
/// ...and when the light line's scale is this many steps coarser (a wide shaft's flank
/// over a thin hair).
const FLANK_MIN_SCALE_STEPS: u8 = 2;

/// Per-pixel flags of the second pass: the dark line's geometry is needed, the light
/// line's is, and a dark line may keep the pixel from a more significant light one.
const NEED_DARK: u8 = 1;
const NEED_LIGHT: u8 = 2;
const CONTEST: u8 = 4;

/// The most significant scale found so far at every pixel (row-major, full resolution).
struct Best {
    strength: Vec<f32>,
    snr: Vec<f32>,
    /// Scale index in the low byte, `TAG_TAKEN` once a scale was taken, `TAG_LIGHT` for a
    /// light line: one u32 like the f32 maps, so the update loop vectorises.
    tag: Vec<u32>,
}

const TAG_TAKEN: u32 = 1 << 8;
const TAG_LIGHT: u32 = 1 << 9;

impl Best {
    fn new(n: usize) -> Self {
        Best {
            strength: vec![0.0; n],
            snr: vec![0.0; n],
            tag: vec![0; n],
        }
    }

    /// The scale index map.
    fn scale(&self) -> Vec<u8> {
        self.tag.iter().map(|&t| t as u8).collect()
    }
}

/// Takes the responses `r` of scale `si` (noise `ns`) for the pixels from `start` on, into
/// the dark map (positive responses) and the light map (negative), where they pass `floor`
/// and are more significant than what the pixels have in that map. One loop for both: the
/// responses are read once.
fn offer_pair([dark, light]: &mut [Best; 2], start: usize, r: &[f32], ns: f32, floor: f32, si: u8) {
    let n = r.len();
    let (ds, dq, dt) = (
        &mut dark.strength[start..start + n],
        &mut dark.snr[start..start + n],
        &mut dark.tag[start..start + n],
    );
    let (ls, lq, lt) = (
        &mut light.strength[start..start + n],
        &mut light.snr[start..start + n],
        &mut light.tag[start..start + n],
    );
    let (dark_tag, light_tag) = (si as u32 | TAG_TAKEN, si as u32 | TAG_TAKEN | TAG_LIGHT);
    for (i, &r) in r.iter().enumerate() {
        // `|`, not `||`, and bit masks instead of `if`: which pixels pass is unpredictable,
        // and a select would become a conditional store (no SIMD). A response of the other
        // sign is 0 here, which never passes the floor.
        let blend = |m: u32, new: u32, old: u32| (new & m) | (old & !m);
        let a = r.max(0.0);
        let q = a / ns;
        let m = (!((a < floor) | (q <= dq[i])) as u32).wrapping_neg();
        ds[i] = f32::from_bits(blend(m, a.to_bits(), ds[i].to_bits()));
        dq[i] = f32::from_bits(blend(m, q.to_bits(), dq[i].to_bits()));
        dt[i] = blend(m, dark_tag, dt[i]);
        let a = (-r).max(0.0);
        let q = a / ns;
        let m = (!((a < floor) | (q <= lq[i])) as u32).wrapping_neg();
        ls[i] = f32::from_bits(blend(m, a.to_bits(), ls[i].to_bits()));
        lq[i] = f32::from_bits(blend(m, q.to_bits(), lq[i].to_bits()));
        lt[i] = blend(m, light_tag, lt[i]);
    }
}

/// Where scale σ is computed: the pyramid level (each halves the image) with σ still at
/// least `LEVEL_SIGMA_MIN` level pixels, among levels at least 16 pixels on each side.
fn level_for(sigma: f32, (mut h, mut w): (usize, usize)) -> usize {
    let mut level = 0;
    while sigma / (1 << (level + 1)) as f32 >= LEVEL_SIGMA_MIN && h >= 16 && w >= 16 {
        level += 1;
        (h, w) = (h.div_ceil(2).max(1), w.div_ceil(2).max(1));
    }
    level
}

/// Runs the flat-field and the multi-scale ridge filter on linear luminance.
///
/// Two passes over the scales: the first finds each pixel's most significant dark line and
/// most significant light line (strength, snr, scale); the second blurs again (cheap) and
/// computes the normal and sub-pixel offset once per pixel and polarity, at that line's
/// scale only, instead of at every scale that improved it; then each pixel takes one of
/// its two lines (the more significant, unless a dark line centred on it meets the
/// off-centre flank of a wide dark shaft).
pub fn ridges(lum: &Array2<f32>, max_width_px: f64) -> RidgeMap {
    let contrast = flatten(lum, max_width_px);
    let (h, w) = contrast.dim();
    let scales = scales_for(max_width_px);
    let levels: Vec<usize> = scales.iter().map(|&s| level_for(s, (h, w))).collect();
    // pyramid[l] is the contrast image halved l times.
    let mut pyramid = vec![contrast];
    while pyramid.len() <= *levels.iter().max().expect("at least one scale") {
        let next = downsample2(pyramid.last().expect("level 0"));
        pyramid.push(next);
    }
    let level_sigma = |si: usize| scales[si] / (1 << levels[si]) as f32;

    // Each pixel's most significant dark line and light line, kept apart: the light flank
    // a wide dark shaft casts at coarse scales would otherwise take the pixels of a faint
    // thin hair crossing it (see the choice after the second pass).
    let mut bests = [Best::new(h * w), Best::new(h * w)];
    let mut noise = Vec::with_capacity(scales.len());
    let (mut blurred, mut resp) = (Vec::new(), Vec::new());
    for (si, &level) in levels.iter().enumerate() {
        let s_level = level_sigma(si);
        let grid = &pyramid[level];
        let (lh, lw) = grid.dim();
        level_response(grid, s_level, &mut blurred, &mut resp);
        let ns = noise_level(&resp);
        noise.push(ns);
        // Only pixels that can pass detection need the full-resolution update; the
        // margin covers interpolation between level pixels.
        let floor = UPDATE_MARGIN * (crate::trace::SNR_LOW * ns).max(crate::trace::STRENGTH_MIN);
        if level == 0 {
            offer_pair(&mut bests, 0, &resp, ns, floor, si as u8);
        } else {
            offer_level(
                &mut bests,
                (h, w),
                (&resp, (lh, lw), level),
                ns,
                floor,
                si as u8,
            );
        }
    }

    // Second pass: normal and offset of every pixel the tracer can use, at its scale, for
    // each polarity. Each scale's results are kept in its pixels' order and spread over
    // the maps in one row-major pass at the end: written straight into the image-sized
    // maps, scale by scale, nearly every store missed the cache.
    let scale_maps = bests.each_ref().map(|b| b.scale());
    // Which pixels need each polarity's geometry: those where that polarity's line can be
    // taken, and both where a dark line may keep a pixel from a light one (see below).
    let contrast_px = pyramid[0].as_slice().expect("standard layout");
    let [dark, light] = &bests;
    let flags: Vec<u8> = (0..h * w)
        .map(|i| {
            let light_wins = light.snr[i] > dark.snr[i];
            let contest = light_wins
                & (contrast_px[i] > FLANK_MIN_CONTRAST)
                & (scale_maps[1][i] >= scale_maps[0][i] + FLANK_MIN_SCALE_STEPS);
            let dark_needed = traceable(dark.strength[i], dark.snr[i]) & (!light_wins | contest);
            let light_needed = traceable(light.strength[i], light.snr[i]) & light_wins;
            (dark_needed as u8 * NEED_DARK)
                | (light_needed as u8 * NEED_LIGHT)
                | (contest as u8 * CONTEST)
        })
        .collect();
    let by_scale: [Vec<Vec<u32>>; 2] = std::array::from_fn(|p| {
        let bit = [NEED_DARK, NEED_LIGHT][p];
        pixels_by_scale(&scale_maps[p], &flags, bit, scales.len())
    });
    let mut geometry: [Vec<Vec<[f32; 3]>>; 2] = by_scale.each_ref().map(|b| {
        b.iter()
            .map(|p| Vec::with_capacity(p.len()))
            .collect::<Vec<_>>()
    });
    let mut batch = GeometryBatch::default();
    let mut level_derivs = Vec::new();
    for (si, &level) in levels.iter().enumerate() {
        if by_scale.iter().all(|b| b[si].is_empty()) {
            continue;
        }
        let grid = &pyramid[level];
        let (lh, lw) = grid.dim();
        blur_into(
            grid.as_slice().expect("standard layout"),
            (lh, lw),
            level_sigma(si),
            &mut blurred,
        );
        let f = (1 << level) as f32;
        if level > 0 {
            // Each level pixel's derivatives once (most are a corner of several pixels).
            derivs_map(&blurred, (lh, lw), &mut level_derivs);
        }
        // The interpolation cell of every full-resolution column and row on this level,
        // once per scale instead of once per pixel (the same values).
        let (cols, rows): (Vec<_>, Vec<_>) = if level > 0 {
            (
                (0..w).map(|x| axis_cell(lw, level_coord(x, f))).collect(),
                (0..h).map(|y| axis_cell(lh, level_coord(y, f))).collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        // f is a power of two: multiplying by its exact reciprocal is the same as dividing.
        let (inv_f, inv_f2) = (1.0 / f, 1.0 / (f * f));
        let derivs = |x: usize, y: usize| {
            if level == 0 {
                return derivs_in(&blurred, h, w, x, y);
            }
            // Bilinear between the four level pixels around, converted to full-resolution
            // units (a level pixel is f full pixels: first derivatives / f, second / f²).
            let (x0, x1, tx) = cols[x];
            let (y0, y1, ty) = rows[y];
            let c =
                [y0 * lw + x0, y0 * lw + x1, y1 * lw + x0, y1 * lw + x1].map(|j| level_derivs[j]);
            let mix = |g: fn(&Derivs) -> f32| lerp2(g(&c[0]), g(&c[1]), g(&c[2]), g(&c[3]), tx, ty);
            Derivs {
                gx: mix(|d| d.gx) * inv_f,
                gy: mix(|d| d.gy) * inv_f,
                xx: mix(|d| d.xx) * inv_f2,
                xy: mix(|d| d.xy) * inv_f2,
                yy: mix(|d| d.yy) * inv_f2,
            }
        };
        for (pixels, geometry) in by_scale.iter().zip(geometry.iter_mut()) {
            // The pixels are in row-major order: their rows are followed, not divided out.
            let (mut y, mut row_start) = (0usize, 0usize);
            for chunk in pixels[si].chunks(GEOMETRY_BATCH) {
                for (k, &i) in chunk.iter().enumerate() {
                    let i = i as usize;
                    while i >= row_start + w {
                        y += 1;
                        row_start += w;
                    }
                    batch.set(k, derivs(i - row_start, y));
                }
                batch.solve(chunk.len());
                geometry[si]
                    .extend((0..chunk.len()).map(|k| [batch.nx[k], batch.ny[k], batch.offset[k]]));
            }
        }
    }
    drop((blurred, resp, level_derivs, by_scale));
    let [dark, light] = bests;
    let [dark_scale, light_scale] = scale_maps;

    // Each pixel's line: the more significant polarity, except that a dark line centred
    // on the pixel keeps it from a light one that is not (a thin hair's centre on the
    // off-centre light flank of a wide dark shaft). Not the other way round: a light line
    // centred inside a dark shaft is mostly a highlight stripe or a medulla. Each scale's
    // geometry is in its pixels' row-major order: one cursor per polarity and scale.
    let Best {
        mut strength,
        mut snr,
        tag: dark_tag,
    } = dark;
    let mut scale = dark_scale;
    let mut polarity: Vec<i8> = dark_tag
        .iter()
        .map(|&t| (t & TAG_TAKEN != 0) as i8)
        .collect();
    let (mut normal, mut offset) = (Vec::with_capacity(h * w), Vec::with_capacity(h * w));
    let mut next = [vec![0usize; scales.len()], vec![0usize; scales.len()]];
    let centred = |g: [f32; 3]| {
        ((g[2] * g[0]).abs() <= crate::trace::CENTRE_BOX)
            & ((g[2] * g[1]).abs() <= crate::trace::CENTRE_BOX)
    };
    for (i, &f) in flags.iter().enumerate() {
        let mut take = |p: usize, s: u8| {
            let (s, k) = (s as usize, &mut next[p][s as usize]);
            *k += 1;
            geometry[p][s][*k - 1]
        };
        // Untraceable pixels keep the neutral geometry (and are never centred).
        let (has_dark, has_light) = (f & NEED_DARK != 0, f & NEED_LIGHT != 0);
        let d = if has_dark {
            take(0, scale[i])
        } else {
            [1.0, 0.0, 0.0]
        };
        let l = if has_light {
            take(1, light_scale[i])
        } else {
            [1.0, 0.0, 0.0]
        };
        let dark_kept = (f & CONTEST != 0) && has_dark && centred(d) && !(has_light && centred(l));
        let g = if (light.snr[i] > snr[i]) & !dark_kept {
            strength[i] = light.strength[i];
            snr[i] = light.snr[i];
            scale[i] = light_scale[i];
            polarity[i] = -((light.tag[i] & TAG_TAKEN != 0) as i8);
            l
        } else {
            d
        };
        normal.push([g[0], g[1]]);
        offset.push(g[2]);
    }

    let shape = (h, w);
    let contrast = pyramid.swap_remove(0);
    RidgeMap {
        contrast,
        strength: Array2::from_shape_vec(shape, strength).expect("shape"),
        snr: Array2::from_shape_vec(shape, snr).expect("shape"),
        scale: Array2::from_shape_vec(shape, scale).expect("shape"),
        polarity: Array2::from_shape_vec(shape, polarity).expect("shape"),
        normal: Array2::from_shape_vec(shape, normal).expect("shape"),
        offset: Array2::from_shape_vec(shape, offset).expect("shape"),
        scales,
        noise,
    }
}

/// Relative contrast that a straight opaque hair `width_px` wide under optical blur
/// `blur_px` needs for its centre to seed a trace on this ridge map: its centre takes the
/// scale where it is most significant (the most response over that scale's noise, the
/// image's noise and skin texture, whatever its contrast), and there its response must
/// reach `trace::SNR_HIGH` times the noise and `trace::STRENGTH_MIN`. The response of a
/// unit-contrast hair at each scale comes from the filter itself, run on a rendered hair
/// through the same pyramid level, blur and Hessian.
pub fn seed_contrast(ridge: &RidgeMap, width_px: f64, blur_px: f64) -> f64 {
    let dims = ridge.contrast.dim();
    let (unit, ns) = ridge
        .scales
        .iter()
        .zip(&ridge.noise)
        .map(|(&sigma, &ns)| {
            let unit = unit_line_response(sigma, level_for(sigma, dims), width_px, blur_px);
            (unit.max(1e-9), ns)
        })
        .max_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)))
        .expect("at least one scale");
    (crate::trace::SNR_HIGH * ns).max(crate::trace::STRENGTH_MIN) as f64 / unit as f64
}

/// Response at its centre of a straight dark hair of unit relative contrast (`width_px`
/// wide, pixel-integrated, under optical blur `blur_px`) at scale `sigma` computed on
/// pyramid level `level`, as `ridges` computes it.
fn unit_line_response(sigma: f32, level: usize, width_px: f64, blur_px: f64) -> f32 {
    let f = 1usize << level;
    // Columns for the hair, its blur and the scale's reach, on both sides; a few rows.
    let reach = (4.0 * sigma as f64 + width_px + 4.0 * blur_px).ceil() as usize;
    let (h, w) = (8 * f, 2 * (reach + f).next_multiple_of(f));
    let (a, b) = (
        w as f64 / 2.0 - width_px / 2.0,
        w as f64 / 2.0 + width_px / 2.0,
    );
    // Share of each pixel [x − 0.5, x + 0.5] (centres at x) covered by the hair [a, b].
    let row: Vec<f32> = (0..w)
        .map(|x| -((x as f64 + 0.5).min(b) - (x as f64 - 0.5).max(a)).max(0.0) as f32)
        .collect();
    let mut grid = Array2::from_shape_fn((h, w), |(_, x)| row[x]);
    if blur_px > 0.0 {
        grid = gaussian_blur(&grid, blur_px as f32);
    }
    for _ in 0..level {
        grid = downsample2(&grid);
    }
    let (lh, lw) = grid.dim();
    let (mut blurred, mut resp) = (Vec::new(), Vec::new());
    level_response(&grid, sigma / f as f32, &mut blurred, &mut resp);
    // The middle row, away from the top and bottom edges: the best response across.
    resp[(lh / 2) * lw..][..lw]
        .iter()
        .copied()
        .fold(0.0, f32::max)
}

/// Test image helpers: deterministic white noise of unit SD (a sum of four uniforms from
/// a xorshift generator seeded by `seed`) and the share of each pixel covered by a vertical
/// hair centred on column `cx`, `width` px wide, blurred by `blur` px.
#[cfg(test)]
pub(crate) fn white_noise((h, w): (usize, usize), seed: u64) -> Array2<f32> {
    let mut state = seed;
    Array2::from_shape_fn((h, w), |_| {
        let mut acc = 0.0f32;
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            acc += (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        acc * 3f32.sqrt()
    })
}

#[cfg(test)]
pub(crate) fn vertical_hair((h, w): (usize, usize), cx: f64, width: f64, blur: f32) -> Array2<f32> {
    let cover = Array2::from_shape_fn((h, w), |(_, x)| {
        let lo = (x as f64 - 0.5).max(cx - width / 2.0);
        let hi = (x as f64 + 0.5).min(cx + width / 2.0);
        (hi - lo).max(0.0) as f32
    });
    gaussian_blur(&cover, blur)
}

/// Sub-pixel centre along the normal n (Steger): t = −(g·n)/(nᵀHn); infinite when the
/// curvature across is ~0.
#[inline]
fn steger_offset(dv: &Derivs, n: [f32; 2]) -> f32 {
    let gn = dv.gx * n[0] + dv.gy * n[1];
    let hnn = dv.xx * n[0] * n[0] + 2.0 * dv.xy * n[0] * n[1] + dv.yy * n[1] * n[1];
    if hnn.abs() > 1e-12 {
        -gn / hnn
    } else {
        f32::INFINITY
    }
}

/// Pixels whose normal and offset are computed together: gathering their derivatives
/// is scalar, the arithmetic on whole arrays vectorises (and has no unpredictable branches).
const GEOMETRY_BATCH: usize = 256;

/// Derivatives of a batch of pixels (one array per component) and their normals and
/// offsets.
struct GeometryBatch {
    d: [[f32; GEOMETRY_BATCH]; 5],
    nx: [f32; GEOMETRY_BATCH],
    ny: [f32; GEOMETRY_BATCH],
    offset: [f32; GEOMETRY_BATCH],
}

impl Default for GeometryBatch {
    fn default() -> Self {
        GeometryBatch {
            d: [[0.0; GEOMETRY_BATCH]; 5],
            nx: [0.0; GEOMETRY_BATCH],
            ny: [0.0; GEOMETRY_BATCH],
            offset: [0.0; GEOMETRY_BATCH],
        }
    }
}

impl GeometryBatch {
    fn set(&mut self, k: usize, d: Derivs) {
        for (c, v) in self.d.iter_mut().zip([d.gx, d.gy, d.xx, d.xy, d.yy]) {
            c[k] = v;
        }
    }

    /// Normal and Steger offset of the first n pixels.
    fn solve(&mut self, n: usize) {
        let [gx, gy, xx, xy, yy] = &self.d;
        for k in 0..n {
            let d = Derivs {
                gx: gx[k],
                gy: gy[k],
                xx: xx[k],
                xy: xy[k],
                yy: yy[k],
            };
            let nv = unit_normal(d.xx, d.xy, d.yy);
            self.nx[k] = nv[0];
            self.ny[k] = nv[1];
            self.offset[k] = steger_offset(&d, nv);
        }
    }
}

/// Whether the tracer can use a pixel (`trace`'s centre mask tests its normal and offset
/// only where this holds): response at least `STRENGTH_MIN`, significance at least
/// `SNR_LOW`. Such a pixel took a scale (an untaken pixel has strength and snr 0).
#[inline]
fn traceable(strength: f32, snr: f32) -> bool {
    (snr >= crate::trace::SNR_LOW) & (strength >= crate::trace::STRENGTH_MIN)
}

/// Indices of the pixels whose `flags` have `bit` set, grouped by their scale, each group
/// in row-major order.
fn pixels_by_scale(scale: &[u8], flags: &[u8], bit: u8, n: usize) -> Vec<Vec<u32>> {
    let mut counts = vec![0usize; n];
    for (&s, &f) in scale.iter().zip(flags) {
        counts[s as usize] += (f & bit != 0) as usize;
    }
    let mut out: Vec<Vec<u32>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
    for (i, (&s, &f)) in scale.iter().zip(flags).enumerate() {
        if f & bit != 0 {
            out[s as usize].push(i as u32);
        }
    }
    out
}

/// Coordinate on a pyramid level (f full pixels per level pixel) of full-resolution
/// pixel index i, pixel centres aligned.
#[inline]
fn level_coord(i: usize, f: f32) -> f32 {
    (i as f32 + 0.5) / f - 0.5
}

/// The runs `[start, end)` of consecutive `true` entries of `mask`, in order.
pub(crate) fn true_runs(mask: &[bool]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let start = i + mask.get(i..)?.iter().position(|&m| m)?;
        let len = mask[start..].iter().take_while(|&&m| m).count();
        i = start + len;
        Some((start, i))
    })
}

/// Offers the responses of a pyramid level (`1 << level` full pixels per level pixel) to
/// the full-resolution pixels, bilinearly interpolated.
fn offer_level(
    bests: &mut [Best; 2],
    (h, w): (usize, usize),
    (rs, (lh, lw), level): (&[f32], (usize, usize), usize),
    ns: f32,
    floor: f32,
    si: u8,
) {
    let f = (1 << level) as f32;
    // A level pixel is worth visiting when it or a neighbour is above the floor: its block
    // may interpolate above it.
    let above: Vec<bool> = rs.iter().map(|r| r.abs() >= floor).collect();
    let near = dilate3(&above, lh, lw);
    // Every level row interpolated to full-resolution columns (the x half of the bilinear
    // interpolation, done once per level row instead of once per full-resolution row).
    let cols: Vec<_> = (0..w).map(|x| axis_cell(lw, level_coord(x, f))).collect();
    let mut wide = vec![0f32; lh * w];
    for (o, lrow) in wide.chunks_exact_mut(w).zip(rs.chunks_exact(lw)) {
        for (v, &(x0, x1, tx)) in o.iter_mut().zip(&cols) {
            *v = (1.0 - tx) * lrow[x0] + tx * lrow[x1];
        }
    }
    let mut r_row = vec![0f32; w];
    // Full-resolution column ranges of the runs of near level pixels in the current level
    // row: the pixels of other blocks cannot pass the floor and are not visited.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for y in 0..h {
        let ly = y >> level;
        if y == 0 || ly != (y - 1) >> level {
            spans.clear();
            spans.extend(
                true_runs(&near[ly * lw..][..lw]).map(|(a, b)| (a << level, (b << level).min(w))),
            );
        }
        let (y0, y1, ty) = axis_cell(lh, level_coord(y, f));
        let (a, b) = (&wide[y0 * w..][..w], &wide[y1 * w..][..w]);
        for &(x0, x1) in &spans {
            let r = &mut r_row[x0..x1];
            for ((r, &va), &vb) in r.iter_mut().zip(&a[x0..x1]).zip(&b[x0..x1]) {
                *r = (1.0 - ty) * va + ty * vb;
            }
            offer_pair(bests, y * w + x0, r, ns, floor, si);
        }
    }
}

/// Scale-normalised line response of a pyramid level `grid` at σ `s_level` (its own
/// pixels) into `resp` (comparable across levels), through `blurred` (both reused).
fn level_response(grid: &Array2<f32>, s_level: f32, blurred: &mut Vec<f32>, resp: &mut Vec<f32>) {
    let dims = grid.dim();
    blur_into(
        grid.as_slice().expect("standard layout"),
        dims,
        s_level,
        blurred,
    );
    response_map(blurred, dims, s_level * s_level, resp);
}

/// `derivs_in` of every pixel of a row-major h×w image, into `out` (reusing its
/// allocation): the same differences, interior rows on row slices.
fn derivs_map(s: &[f32], (h, w): (usize, usize), out: &mut Vec<Derivs>) {
    out.clear();
    out.reserve(h * w);
    for y in 0..h {
        if y == 0 || y + 1 == h || w < 3 {
            out.extend((0..w).map(|x| derivs_in(s, h, w, x, y)));
            continue;
        }
        let (rm, r0, rp) = (
            &s[(y - 1) * w..][..w],
            &s[y * w..][..w],
            &s[(y + 1) * w..][..w],
        );
        out.push(derivs_in(s, h, w, 0, y));
        out.extend(
            rm.windows(3)
                .zip(r0.windows(3))
                .zip(rp.windows(3))
                .map(|((m, c), p)| Derivs {
                    gx: 0.5 * (c[2] - c[0]),
                    gy: 0.5 * (p[1] - m[1]),
                    xx: c[2] - 2.0 * c[1] + c[0],
                    yy: p[1] - 2.0 * c[1] + m[1],
                    xy: 0.25 * (p[2] - p[0] - m[2] + m[0]),
                }),
        );
        out.push(derivs_in(s, h, w, w - 1, y));
    }
}

/// 3×3 dilation of a row-major lh×lw mask (a pixel is set when any neighbour is).
fn dilate3(m: &[bool], lh: usize, lw: usize) -> Vec<bool> {
    // Each row ORed with itself shifted one pixel left and right (vectorises).
    let mut rows = m.to_vec();
    for (o, r) in rows.chunks_exact_mut(lw).zip(m.chunks_exact(lw)) {
        for (v, &l) in o[1..].iter_mut().zip(r) {
            *v |= l;
        }
        for (v, &rr) in o.iter_mut().zip(&r[1..]) {
            *v |= rr;
        }
    }
    let mut out = vec![false; lh * lw];
    for (y, o) in out.chunks_exact_mut(lw).enumerate() {
        for yy in y.saturating_sub(1)..(y + 2).min(lh) {
            for (v, &r) in o.iter_mut().zip(&rows[yy * lw..][..lw]) {
                *v |= r;
            }
        }
    }
    out
}

/// Scale-normalised signed line response of every pixel of a row-major blurred image,
/// into `out` (reusing its allocation).
fn response_map(s: &[f32], (h, w): (usize, usize), norm: f32, out: &mut Vec<f32>) {
    out.resize(h * w, 0.0);
    for (y, o) in out.chunks_exact_mut(w).enumerate() {
        response_row(s, (h, w), y, norm, o);
    }
}

/// Scale-normalised signed line response of one pixel of a row-major blurred image.
#[inline]
fn response_at(s: &[f32], (h, w): (usize, usize), x: usize, y: usize, norm: f32) -> f32 {
    let d = derivs_in(s, h, w, x, y);
    norm * signed_response(d.xx, d.xy, d.yy)
}

/// `response_at` of every pixel of row y, into `o` (w long).
fn response_row(s: &[f32], (h, w): (usize, usize), y: usize, norm: f32, o: &mut [f32]) {
    if y == 0 || y + 1 == h || w < 3 {
        for (x, v) in o.iter_mut().enumerate() {
            *v = response_at(s, (h, w), x, y, norm);
        }
        return;
    }
    // Interior: the same differences as `derivs_in`, on three row slices (vectorises).
    let (up, mid, dn) = (
        &s[(y - 1) * w..][..w],
        &s[y * w..][..w],
        &s[(y + 1) * w..][..w],
    );
    for x in 1..w - 1 {
        let c = mid[x];
        let xx = mid[x + 1] - 2.0 * c + mid[x - 1];
        let yy = dn[x] - 2.0 * c + up[x];
        let xy = 0.25 * (dn[x + 1] - dn[x - 1] - up[x + 1] + up[x - 1]);
        o[x] = norm * signed_response(xx, xy, yy);
    }
    o[0] = response_at(s, (h, w), 0, y, norm);
    o[w - 1] = response_at(s, (h, w), w - 1, y, norm);
}

/// Least noise level of a response (≈ 0.4% contrast): scales compete by response-to-noise,
/// and a noise-free image must fall back to comparing responses.
const NOISE_FLOOR: f32 = 0.002;

/// Robust noise level of a response map: 1.4826 × median |r| over a subsample
/// (most pixels are skin, so this is the texture-plus-noise level), floored to avoid 0.
fn noise_level(resp: &[f32]) -> f32 {
    let step = (resp.len() / 200_000).max(1);
    // |r| ≥ 0, so its bits order like its values (and like `stats::quantile`'s f64 sort).
    let mut v: Vec<u32> = resp
        .iter()
        .step_by(step)
        .map(|r| r.abs().to_bits())
        .collect();
    let med = median_by_bits(&mut v) as f32;
    (1.4826 * med).max(NOISE_FLOOR)
}

/// `stats::median_mut` of non-negative f32 values given as their bits (cheaper to compare).
fn median_by_bits(v: &mut [u32]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = 0.5 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (_, &mut a, upper) = v.select_nth_unstable(lo);
    let b = if hi == lo {
        a
    } else {
        *upper.iter().min().expect("hi < len")
    };
    let (a, b) = (f32::from_bits(a) as f64, f32::from_bits(b) as f64);
    a + (b - a) * (pos - lo as f64)
}

/// Interpolation along one axis of an n-pixel grid at coordinate t (clamped to the grid):
/// (lower index, upper index, weight of the upper).
#[inline]
fn axis_cell(n: usize, t: f32) -> (usize, usize, f32) {
    let t = t.clamp(0.0, (n - 1) as f32);
    // Through u32 (cheaper than to usize; no image is 2³² pixels wide).
    let i0 = t as u32;
    let i0f = i0 as f32;
    let i0 = i0 as usize;
    (i0, (i0 + 1).min(n - 1), t - i0f)
}

/// Bilinear mix of four corner values: a00 at (x0, y0), a10 at (x1, y0), a01 at (x0, y1),
/// a11 at (x1, y1).
#[inline]
fn lerp2(a00: f32, a10: f32, a01: f32, a11: f32, tx: f32, ty: f32) -> f32 {
    (1.0 - ty) * ((1.0 - tx) * a00 + tx * a10) + ty * ((1.0 - tx) * a01 + tx * a11)
}

/// Bilinear sample with clamped coordinates.
pub fn bilinear(a: &Array2<f32>, x: f32, y: f32) -> f32 {
    Bilinear::new(a).at(x, y)
}

/// A standard-layout image viewed for many [`bilinear`] samples: the row-major slice
/// is taken once instead of indexing the array per corner.
#[derive(Clone, Copy)]
pub struct Bilinear<'a> {
    data: &'a [f32],
    w: usize,
    h: usize,
}

impl<'a> Bilinear<'a> {
    pub fn new(a: &'a Array2<f32>) -> Self {
        let (h, w) = a.dim();
        Bilinear {
            data: a.as_slice().expect("standard layout"),
            w,
            h,
        }
    }

    /// (height, width) of the image.
    pub fn dim(&self) -> (usize, usize) {
        (self.h, self.w)
    }

    /// Bilinear sample with clamped coordinates.
    #[inline]
    pub fn at(&self, x: f32, y: f32) -> f32 {
        let (x0, x1, tx) = axis_cell(self.w, x);
        let (y0, y1, ty) = axis_cell(self.h, y);
        let (r0, r1) = (&self.data[y0 * self.w..], &self.data[y1 * self.w..]);
        lerp2(r0[x0], r0[x1], r1[x0], r1[x1], tx, ty)
    }

    /// [`Self::at`] of N points the caller knows to lie in 0 ≤ x < width − 1,
    /// 0 ≤ y < height − 1, where clamping changes nothing: the same values, cheaper (the
    /// coordinate and weight arithmetic of a batch vectorises).
    #[inline(always)]
    pub fn at_inner_batch<const N: usize>(&self, xs: &[f32; N], ys: &[f32; N], out: &mut [f32; N]) {
        // Through i32 (the same for these points): float-to-i32 conversions vectorise.
        let (mut x0, mut y0) = ([0i32; N], [0i32; N]);
        let mut corners = [[0.0f32; 4]; N];
        // One vectorised test of the whole batch; NaN fails it. (Sides up to 2²⁴ are
        // exact in f32.)
        let (xmax, ymax) = ((self.w - 1) as f32, (self.h - 1) as f32);
        let exact = self.w <= 1 << 24 && self.h <= 1 << 24;
        let inside = exact
            && xs.iter().zip(ys).fold(true, |ok, (&x, &y)| {
                ok & (x >= 0.0) & (x < xmax) & (y >= 0.0) & (y < ymax)
            });
        if inside {
            for l in 0..N {
                // SAFETY: 0 ≤ x < w − 1 and 0 ≤ y < h − 1 (tested above; w, h < 2³¹): the
                // truncations are in range, equal to `as i32`.
                (x0[l], y0[l]) = unsafe { (xs[l].to_int_unchecked(), ys[l].to_int_unchecked()) };
            }
            for l in 0..N {
                let i = y0[l] as usize * self.w + x0[l] as usize;
                // SAFETY: x0 ≤ w − 2 and y0 ≤ h − 2, so i + w + 1 ≤ h·w − 1 = data.len() − 1.
                corners[l] = unsafe {
                    [
                        *self.data.get_unchecked(i),
                        *self.data.get_unchecked(i + 1),
                        *self.data.get_unchecked(i + self.w),
                        *self.data.get_unchecked(i + self.w + 1),
                    ]
                };
            }
        } else {
            for l in 0..N {
                debug_assert!(xs[l] >= 0.0 && xs[l] < (self.w - 1) as f32);
                debug_assert!(ys[l] >= 0.0 && ys[l] < (self.h - 1) as f32);
                (x0[l], y0[l]) = (xs[l] as i32, ys[l] as i32);
            }
            for l in 0..N {
                let i = y0[l] as usize * self.w + x0[l] as usize;
                let (r0, r1) = (&self.data[i..i + 2], &self.data[i + self.w..i + self.w + 2]);
                corners[l] = [r0[0], r0[1], r1[0], r1[1]];
            }
        }
        for l in 0..N {
            let [a00, a10, a01, a11] = corners[l];
            out[l] = lerp2(
                a00,
                a10,
                a01,
                a11,
                xs[l] - x0[l] as f32,
                ys[l] - y0[l] as f32,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_runs_are_the_maximal_runs() {
        let mask = [
            false, true, true, false, false, true, false, true, true, true,
        ];
        let runs: Vec<_> = true_runs(&mask).collect();
        assert_eq!(runs, vec![(1, 3), (5, 6), (7, 10)]);
        assert_eq!(true_runs(&[]).count(), 0);
        assert_eq!(true_runs(&[false, false]).count(), 0);
        assert_eq!(true_runs(&[true; 4]).collect::<Vec<_>>(), vec![(0, 4)]);
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // i indexes the three response rows and the maps
    fn offer_keeps_the_most_significant_scale_of_its_polarity_like_a_naive_loop() {
        let mut u = crate::stats::test_uniform(11);
        let n = 500;
        let (noise, floor) = ([0.5f32, 1.0, 2.0], 0.3f32);
        let resp: Vec<Vec<f32>> = (0..3)
            .map(|_| (0..n).map(|_| (4.0 * u() - 2.0) as f32).collect())
            .collect();
        let mut pair = [Best::new(n), Best::new(n)];
        for (si, r) in resp.iter().enumerate() {
            offer_pair(&mut pair, 0, r, noise[si], floor, si as u8);
        }
        for (light, best) in [false, true].into_iter().zip(&pair) {
            let mut taken = 0;
            for i in 0..n {
                // Naive: the most significant response of the map's sign passing the floor.
                let (mut q, mut s, mut a) = (0f32, None, 0f32);
                for si in 0..3 {
                    let r = resp[si][i];
                    let v = if light { -r } else { r };
                    if v >= floor && v / noise[si] > q {
                        (q, s, a) = (v / noise[si], Some(si), v);
                    }
                }
                assert_eq!((best.snr[i], best.strength[i]), (q, a));
                assert_eq!(best.tag[i] & TAG_TAKEN != 0, s.is_some());
                if let Some(si) = s {
                    taken += 1;
                    assert_eq!((best.tag[i] & 0xff) as usize, si);
                    assert_eq!(best.tag[i] & TAG_LIGHT != 0, light);
                }
            }
            assert!(
                taken > n / 3,
                "light {light}: only {taken} pixels took a scale"
            );
        }
    }

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
    fn derivs_map_and_dilate3_match_per_pixel() {
        for (h, w) in [(1, 1), (1, 4), (4, 1), (2, 2), (3, 3), (5, 7), (9, 4)] {
            let img: Vec<f32> = (0..h * w)
                .map(|i| (((i * 37 + 11) % 23) as f32 / 7.0).sin())
                .collect();
            let mut d = vec![Derivs::default(); 3];
            derivs_map(&img, (h, w), &mut d);
            assert_eq!(d.len(), h * w);
            let mask: Vec<bool> = img.iter().map(|&v| v > 0.6).collect();
            let dil = dilate3(&mask, h, w);
            for y in 0..h {
                for x in 0..w {
                    let e = derivs_in(&img, h, w, x, y);
                    let g = d[y * w + x];
                    for (a, b) in [
                        (e.gx, g.gx),
                        (e.gy, g.gy),
                        (e.xx, g.xx),
                        (e.xy, g.xy),
                        (e.yy, g.yy),
                    ] {
                        assert_eq!(a.to_bits(), b.to_bits(), "{h}x{w} at ({x}, {y})");
                    }
                    let near = (y.saturating_sub(1)..(y + 2).min(h)).any(|yy| {
                        (x.saturating_sub(1)..(x + 2).min(w)).any(|xx| mask[yy * w + xx])
                    });
                    assert_eq!(dil[y * w + x], near, "{h}x{w} at ({x}, {y})");
                }
            }
        }
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

    /// Relative luminance of a dark vertical bar centred at `cx`, `width` px wide, at
    /// column x (exact pixel-area coverage): 1 − contrast × covered share.
    fn bar_at(x: usize, cx: f32, width: f32, contrast: f32) -> f32 {
        let lo = (x as f32 - 0.5).max(cx - width / 2.0);
        let hi = (x as f32 + 0.5).min(cx + width / 2.0);
        1.0 - contrast * (hi - lo).max(0.0)
    }

    #[test]
    fn faint_thin_hair_on_the_flank_of_a_wide_shaft_keeps_its_centre_pixels() {
        // Regression: the light line a wide dark shaft's flank makes at coarse scales was
        // more significant than a faint thin hair lying there, took its pixels, and the
        // hair was traced in pieces or not at all (realistic phantoms: thin recall 44%).
        let (h, w) = (120usize, 200usize);
        let (shaft, hair) = (60.2f32, 80.4f32);
        let lum = Array2::from_shape_fn((h, w), |(_, x)| {
            0.3 * bar_at(x, shaft, 20.0, 0.6) * (1.0 - 0.06 * (1.0 - bar_at(x, hair, 2.5, 1.0)))
        });
        let m = ridges(&lum, 48.0);
        let rows = 10..110;
        let centred = rows
            .clone()
            .filter(|&y| {
                (79..=82).any(|x| {
                    let (t, n) = (m.offset[[y, x]], m.normal[[y, x]]);
                    m.polarity[[y, x]] == 1
                        && m.scales[m.scale[[y, x]] as usize] <= 2.5
                        && (t * n[0]).abs() <= crate::trace::CENTRE_BOX
                        && traceable(m.strength[[y, x]], m.snr[[y, x]])
                })
            })
            .count();
        assert!(
            centred >= 95,
            "the hair has a dark centre pixel on {centred} of {} rows",
            rows.len()
        );
        // The shaft keeps its own centre line.
        let shaft_rows = rows
            .filter(|&y| (59..=61).any(|x| m.polarity[[y, x]] == 1 && m.scale[[y, x]] >= 3))
            .count();
        assert!(shaft_rows >= 95, "shaft centre on {shaft_rows} rows");
    }

    #[test]
    fn faint_thin_line_keeps_its_fine_scale_against_coarse_mottling() {
        // Regression: with scales compared by raw response, skin mottling at coarse scales
        // took over the pixels of a faint 2 px hair and it was never traced.
        let (h, w) = (160usize, 200usize);
        let lum = Array2::from_shape_fn((h, w), |(y, x)| {
            let (xf, yf) = (x as f32, y as f32);
            let k = 2.0 * std::f32::consts::PI / 60.0;
            let mottle = 1.0 + 0.1 * (k * xf).sin() * (k * yf).sin();
            let lo = (xf - 0.5).max(99.3 - 1.0);
            let hi = (xf + 0.5).min(99.3 + 1.0);
            0.3 * mottle * (1.0 - 0.04 * (hi - lo).max(0.0))
        });
        let m = ridges(&lum, 48.0);
        let mut fine = 0;
        for y in 20..140 {
            let (bx, _) = (97..102)
                .map(|x| (x, m.snr[[y, x]]))
                .fold((0, 0f32), |a, b| if b.1 > a.1 { b } else { a });
            if m.polarity[[y, bx]] == 1 && m.scales[m.scale[[y, bx]] as usize] <= 1.5 {
                fine += 1;
            }
        }
        assert!(
            fine >= 110,
            "line kept its fine dark scale on {fine} of 120 rows"
        );
    }

    #[test]
    fn seed_contrast_predicts_how_far_a_rendered_hair_stands_out() {
        // Vertical hairs of known contrast under blur 1 px on skin with white noise: the
        // contrast over the seed contrast is how far the hair's centre passes the seed
        // test (snr over `SNR_HIGH`, or strength over `STRENGTH_MIN`, whichever binds).
        let (h, w) = (200usize, 240usize);
        let noise = white_noise((h, w), 0x2545_F491_4F6C_DD1D);
        let (seed_snr, seed_strength) = (crate::trace::SNR_HIGH, crate::trace::STRENGTH_MIN);
        // (width px, contrast, noise SD relative to the skin): the strength floor binds in
        // the first, the noise in the others.
        for &(width, c, sd) in &[
            (3.0f64, 0.12f32, 0.02f32),
            (3.0, 0.2, 0.06),
            (6.0, 0.1, 0.05),
        ] {
            let cover = vertical_hair((h, w), 120.3, width, 1.0);
            let mut lum = cover.mapv(|v| 0.4 * (1.0 - c * v));
            lum.zip_mut_with(&noise, |v, &n| *v += 0.4 * sd * n);
            let m = ridges(&lum, 48.0);
            let limit = seed_contrast(&m, width, 1.0);
            // Per row, the pixel nearest the hair's centre.
            let passes: Vec<f64> = (20..180)
                .map(|y| {
                    let (q, s) = (m.snr[[y, 120]], m.strength[[y, 120]]);
                    (q / seed_snr).min(s / seed_strength) as f64
                        * (m.polarity[[y, 120]] == 1) as u8 as f64
                })
                .collect();
            let measured = crate::stats::median(&passes);
            let predicted = c as f64 / limit;
            assert!(
                (measured / predicted - 1.0).abs() <= 0.15,
                "width {width}, contrast {c}, noise {sd}: limit {limit:.4}, passes the seed test \
                 {measured:.2}x against {predicted:.2}x predicted"
            );
        }
    }
}
