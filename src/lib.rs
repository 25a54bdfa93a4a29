//! trichometer: measures hair-shaft widths in close-up scalp images (trichoscopy) and
//! reports the width distribution, the hair-diameter spread (cv) and the share of thin
//! hairs.
//!
//! For research and educational purposes only; not a medical device.
//!
//! The pipeline's stages, in the order data flows through them:
//! [`load`] (decode, linear light) → [`enhance`] (flat-field, multi-scale ridge filter) →
//! [`trace`] (centrelines into individual hairs) → [`measure`] (sub-pixel widths along
//! the normals) → [`link`] (pieces of one hair joined across crossings and gaps) →
//! [`reject`] (non-hair lines) → [`report`] (typed results, rows, JSON). [`batch`] runs many images in
//! parallel and [`output`] writes the report folder; [`pictures`] adds what a reader checks
//! by eye: [`overlay`] images, [`plots`] (width histograms) and the [`html`] report.

pub mod load;
pub mod calibration;
pub mod enhance;
pub mod trace;
pub mod profile_model;
pub mod measure;
pub mod shaft_fit;
pub mod pairs;
pub mod link;
pub mod reject;
pub mod report;
pub mod batch;
pub mod groups;
pub mod output;
pub mod merge;
pub mod overlay;
pub mod pictures;
pub mod plots;
pub mod html;
pub mod settings;
pub mod stats;
pub mod truth;
pub mod synth;
pub mod validate;

pub use report::{Hair, ImageAnalysis, ImageReport, Polarity, DISCLAIMER};
pub use settings::{HairClass, Settings};

use thiserror::Error;

/// Why one image could not be analysed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AnalysisError {
    #[error("image is empty (0 pixels)")]
    Empty,
    #[error("invalid settings: {0}")]
    Settings(String),
}

use image::DynamicImage;
use ndarray::Array2;

/// Analyses one decoded image: finds the hairs and measures their widths (px). The scale
/// in `settings` only feeds the warnings here; micrometres are applied by the report.
pub fn analyze(image: &DynamicImage, settings: &Settings) -> Result<ImageAnalysis, AnalysisError> {
    let colour = image.as_rgb8().map(load::Colour::new);
    analyze_planes(&load::linear_luminance(image), colour.as_ref(), settings)
}

/// Analyses linear-light luminance, shape (height, width), values in [0, 1].
pub fn analyze_luminance(
    lum: &Array2<f32>,
    settings: &Settings,
) -> Result<ImageAnalysis, AnalysisError> {
    analyze_planes(lum, None, settings)
}

/// [`analyze_luminance`] with the colour image when there is one (8-bit RGB), which tells
/// specular highlights from skin where touching pairs are split.
pub fn analyze_planes(
    lum: &Array2<f32>,
    colour: Option<&load::Colour>,
    settings: &Settings,
) -> Result<ImageAnalysis, AnalysisError> {
    check_settings(settings)?;
    let (h, w) = lum.dim();
    if h == 0 || w == 0 {
        return Err(AnalysisError::Empty);
    }
    let mut warnings = Vec::new();
    let ridge = enhance::ridges(lum, settings.max_width_px);
    let traces = trace::trace(&ridge);
    let raws = profile_traces(&ridge, traces, colour, settings.max_width_px);
    let (blur, defaulted) = measure::blur_or_default(&raws);
    if defaulted && !raws.is_empty() {
        warnings.push(format!(
            "too few wide hairs to estimate the blur; assumed sigma {} px",
            measure::DEFAULT_BLUR_SIGMA
        ));
    }
    let raws = split_pairs(raws, colour);
    // Every measurable piece, whatever its length: short pieces of one hair are joined
    // into the whole hair before the length limit applies.
    let pieces: Vec<link::Piece> = raws
        .iter()
        .filter_map(|raw| {
            Some(link::Piece {
                m: measure::finish(raw, blur, 0.0).ok()?,
                polarity: raw.trace.polarity,
            })
        })
        .collect();
    let pieces = link::deduplicate(link::link(link::deduplicate(pieces), blur, &ridge.contrast));
    let mut hairs: Vec<Hair> = pieces
        .into_iter()
        .filter(|p| long_enough(&p.m, settings.min_length_px, &ridge.snr, blur))
        .map(|p| {
            let m = p.m;
            let mut points = m.points;
            // Deterministic direction: start at the upper (then left) end.
            let (a, b) = (points[0], points[points.len() - 1]);
            if (b[1], b[0]) < (a[1], a[0]) {
                points.reverse();
            }
            Hair {
                width_px: m.width_px,
                width_sd_px: m.width_sd_px,
                length_px: m.length_px,
                polarity: if p.polarity > 0 {
                    Polarity::Dark
                } else {
                    Polarity::Light
                },
                contrast: m.contrast,
                profiles: m.profiles,
                flag: m.flag,
                points,
            }
        })
        .collect();
    // Lines that bend like bubble rims or scales, and lines that are parts of wider hairs.
    hairs.retain(|h| !reject::too_curved(&h.points));
    // Lines whose cross-section averages out along them: noise or texture, not hairs. Each
    // line's share is kept beside it (`shares`, dropped with it) for the flag below.
    let mut shares: Vec<f64> = hairs
        .iter()
        .map(|h| reject::coherent_share(h, &ridge.contrast))
        .collect();
    let incoherent: Vec<bool> = shares
        .iter()
        .map(|&s| s < reject::MIN_COHERENT_SHARE)
        .collect();
    drop_marked(&mut hairs, &mut shares, &incoherent);
    // Wide faint dark lines with the skin's colour: folds and furrows.
    if let Some(c) = colour {
        let shade = reject::shading(&hairs, c);
        drop_marked(&mut hairs, &mut shares, &shade);
    }
    // Then lines on the seam of two touching hairs that are reported on their own, before
    // and after the lines inside a wider hair.
    let pairs = reject::side_by_side_pairs(&hairs, (w, h));
    drop_marked(&mut hairs, &mut shares, &pairs);
    let sub = reject::substructures(&hairs, (w, h), blur);
    drop_marked(&mut hairs, &mut shares, &sub);
    let merged = reject::merged_pairs(&hairs, (w, h));
    drop_marked(&mut hairs, &mut shares, &merged);
    flag_wide_outliers(&mut hairs);
    // Lines whose cross-section fades along them: kept, their widths flagged.
    reject::flag_faded(&mut hairs, &shares);
    // Lengths to where the hairs end in the image (the lines kept are the same).
    for hair in &mut hairs {
        extend_to_ends(hair, &ridge.contrast, measure::optical_blur(blur));
    }
    // Flagged lines where two hairs overlap, a member running on from an end (after the
    // lengths: the ends are where the hairs end).
    let unions = reject::union_stretches(&hairs);
    drop_marked(&mut hairs, &mut shares, &unions);
    // Lines holding narrower hairs reported on their own: where those meet or cross.
    let unions = reject::unions_of_reported_hairs(&hairs, (w, h));
    drop_marked(&mut hairs, &mut shares, &unions);
    hairs.sort_by(|a, b| {
        let (pa, pb) = (a.points[0], b.points[0]);
        pa[1].total_cmp(&pb[1]).then(pa[0].total_cmp(&pb[0]))
    });
    // The optics' blur, without the profile smoothing it was estimated under; and as
    // reported, calibrated on rendered hairs.
    let optical = measure::optical_blur(blur);
    let reported = measure::reported_blur(optical);
    if let Some(s) = settings.um_per_px {
        let thin_px = settings.thin_um / s;
        let resolvable = measure::RESOLVABLE_WIDTH_SIGMAS * reported;
        if thin_px < resolvable {
            warnings.push(format!(
                "the thin-hair limit ({} um = {thin_px:.1} px) is narrower than what this image resolves \
                 ({resolvable:.1} px at blur sigma {reported:.2} px): the thin fraction is uncertain",
                settings.thin_um
            ));
        }
    }
    // How faint a thin hair can be and still be found, at this image's noise and texture.
    let faint_width = settings
        .um_per_px
        .map_or(FAINT_LIMIT_WIDTH_PX, |s| FAINT_LIMIT_WIDTH_UM / s);
    let faint_limit = enhance::seed_contrast(&ridge, faint_width, optical);
    if faint_limit >= FAINT_WARN_CONTRAST {
        warnings.push(format!(
            "faint hairs are missed here: a hair {faint_width:.1} px wide needs a contrast of about {:.0}% \
             against the skin to be found (noise, skin texture), so thin hairs may be undercounted",
            100.0 * faint_limit
        ));
    }
    Ok(ImageAnalysis {
        width_px: w as u32,
        height_px: h as u32,
        blur_sigma_px: reported,
        faint_limit,
        hairs,
        warnings,
    })
}

/// Width (µm) at which an image's faint limit ([`ImageAnalysis::faint_limit`]) is given
/// when its scale is known: a vellus hair in the middle of the thin class (< 30 µm).
pub const FAINT_LIMIT_WIDTH_UM: f64 = 15.0;
/// ...and in px when it is not.
pub const FAINT_LIMIT_WIDTH_PX: f64 = 3.0;
/// Faint limit (relative contrast) from which an image is warned about: at 15 µm the
/// limit is 4-23% on the realistic phantoms (median 9%; 3-5% on the easy ones, 11-39% on
/// the hard ones), and hypopigmented vellus hairs have a few percent.
const FAINT_WARN_CONTRAST: f64 = 0.15;

/// Profiles across every trace, each hair cut where it has no measurable profile for a
/// stretch: the raw hairs the blur is estimated from (stage 4 of [`analyze_planes`]).
pub fn profile_traces(
    ridge: &enhance::RidgeMap,
    traces: Vec<trace::Trace>,
    colour: Option<&load::Colour>,
    max_width_px: f64,
) -> Vec<measure::RawHair> {
    traces
        .into_iter()
        .map(|t| {
            measure::profile_trace(
                &ridge.contrast,
                colour,
                t,
                measure::DEFAULT_BLUR_SIGMA as f32,
                max_width_px as f32,
            )
        })
        .flat_map(measure::split_at_gaps)
        .collect()
}

/// Raw hairs with their pair stretches replaced by the two members: traces run along the
/// skin between two hairs a narrow gap apart, then touching parallel pairs; then hairs
/// beside a close neighbour measured on their clean halves (stage 5).
pub fn split_pairs(
    raws: Vec<measure::RawHair>,
    colour: Option<&load::Colour>,
) -> Vec<measure::RawHair> {
    raws.into_iter()
        .flat_map(|r| pairs::split_straddled(r, colour))
        .flat_map(|r| pairs::split(r, colour))
        .map(pairs::measure_clean_halves)
        .collect()
}

/// Lines whose width is flagged as uncertain must be this many times the shortest hair's
/// length: short, unresolved lines are as often skin texture (furrow networks, the edges of
/// scales) as hairs. 2.5 (100 px by default) halved the false lines on seeds 100 and 501
/// (61 -> 36, 122 -> 74) for 0.3-0.6 points of recall.
const UNCERTAIN_MIN_LENGTH_FACTOR: f64 = 2.5;
/// ...except lines flagged only for being narrower than the blur resolves that are straight
/// and clear of the noise (median ridge snr along them, mean curvature): of the phantoms'
/// narrow lines 40-100 px long (seeds 100, 501, 600, 700), these were 28 hairs and 5 false
/// lines, the others 8 hairs and 85 false lines.
const CLEAR_NARROW_MIN_SNR: f32 = 4.0;
const CLEAR_NARROW_MAX_CURVATURE: f64 = 0.004;

/// Whether a measured line is long enough to report: `min_length_px`, or
/// `UNCERTAIN_MIN_LENGTH_FACTOR` times that when its width is flagged, unless it is a
/// clear narrow line (see `CLEAR_NARROW_MIN_SNR`) on ridge map `snr` under blur `blur`.
pub fn long_enough(
    m: &measure::Measured,
    min_length_px: f64,
    snr: &Array2<f32>,
    blur: f64,
) -> bool {
    if m.length_px < min_length_px {
        return false;
    }
    if m.flag.is_none() || m.length_px >= UNCERTAIN_MIN_LENGTH_FACTOR * min_length_px {
        return true;
    }
    let narrow = m.width_px < measure::RESOLVABLE_WIDTH_SIGMAS * measure::optical_blur(blur);
    narrow
        && reject::mean_curvature(&m.points) <= CLEAR_NARROW_MAX_CURVATURE
        && median_along(snr, &m.points) >= CLEAR_NARROW_MIN_SNR
}

/// Continues a reported hair's centreline to where the hair ends in the image at both
/// ends ([`measure::end_beyond`]), and its length with it. After the length rule: the
/// lines kept are the same, only their lengths are no longer short.
fn extend_to_ends(hair: &mut Hair, contrast: &Array2<f32>, optical_blur: f64) {
    let polarity = if hair.polarity == Polarity::Dark {
        1
    } else {
        -1
    };
    let n = hair.points.len();
    if n < 2 {
        return;
    }
    let back = measure::END_DIRECTION_CENTRES.min(n - 1);
    let hair_of = (hair.width_px, hair.contrast, polarity);
    let last = (hair.points[n - 1], hair.points[n - 1 - back]);
    if let Some(p) = measure::end_beyond(contrast, last, hair_of, optical_blur) {
        hair.points.push(p);
    }
    let first = (hair.points[0], hair.points[back]);
    if let Some(p) = measure::end_beyond(contrast, first, hair_of, optical_blur) {
        hair.points.insert(0, p);
    }
    hair.length_px = measure::centreline_length(&hair.points);
}

/// Removes the hairs whose `marks` entry is true (one mark per hair, in order), and their
/// entries of `beside` (one per hair, in the same order).
fn drop_marked<T>(hairs: &mut Vec<Hair>, beside: &mut Vec<T>, marks: &[bool]) {
    let mut keep = marks.iter().map(|m| !m);
    hairs.retain(|_| keep.next().unwrap_or(true));
    let mut keep = marks.iter().map(|m| !m);
    beside.retain(|_| keep.next().unwrap_or(true));
}

/// A hair this many times wider than the 75th percentile of its image's unflagged widths
/// is flagged: on the phantoms such reads were mostly two touching hairs of one colour
/// measured as one (realistic seed 600: 26 of the 31 such hairs read 2 px or more too
/// wide, 4 within 1 px; seed 502: 10 of 10), rarely a genuinely thick hair.
const WIDE_OUTLIER_RATIO: f64 = 1.5;
/// Unflagged hairs an image needs for that comparison.
const WIDE_OUTLIER_MIN_HAIRS: usize = 8;

/// Flags hairs far wider than most of the image's (see `WIDE_OUTLIER_RATIO`), with a
/// spread of a quarter of their width: their width is uncertain, not wrong for sure.
fn flag_wide_outliers(hairs: &mut [Hair]) {
    let mut widths: Vec<f64> = hairs
        .iter()
        .filter(|h| h.flag.is_none())
        .map(|h| h.width_px)
        .collect();
    if widths.len() < WIDE_OUTLIER_MIN_HAIRS {
        return;
    }
    let limit = WIDE_OUTLIER_RATIO * stats::quantile_mut(&mut widths, 0.75);
    for h in hairs
        .iter_mut()
        .filter(|h| h.flag.is_none() && h.width_px > limit)
    {
        h.width_sd_px = h.width_sd_px.max(0.25 * h.width_px);
        h.flag = Some(format!(
            "over {WIDE_OUTLIER_RATIO}x as wide as most hairs of this image (two touching hairs?): width uncertain"
        ));
    }
}

/// Median of `map` at the pixels along a polyline (1 px steps); 0 for no points.
fn median_along(map: &Array2<f32>, points: &[[f64; 2]]) -> f32 {
    let (h, w) = map.dim();
    let mut v: Vec<f64> = measure::resample_f64(points, 1.0)
        .iter()
        .map(|p| {
            let x = (p[0].round().max(0.0) as usize).min(w - 1);
            let y = (p[1].round().max(0.0) as usize).min(h - 1);
            map[[y, x]] as f64
        })
        .collect();
    if v.is_empty() {
        return 0.0;
    }
    stats::median_mut(&mut v) as f32
}

fn check_settings(s: &Settings) -> Result<(), AnalysisError> {
    if let Some(u) = s.um_per_px {
        if !(u.is_finite() && u > 0.0) {
            return Err(AnalysisError::Settings(format!(
                "um_per_px must be > 0, got {u}"
            )));
        }
    }
    if !(s.thin_um > 0.0 && s.terminal_um > s.thin_um) {
        return Err(AnalysisError::Settings(format!(
            "need 0 < thin_um < terminal_um, got {} and {}",
            s.thin_um, s.terminal_um
        )));
    }
    if !(s.max_width_px >= 2.0 && s.min_length_px >= 0.0) {
        return Err(AnalysisError::Settings(
            "max_width_px must be >= 2 and min_length_px >= 0".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A measured line `len` px long along y = 50, bent into a circle of radius `radius`
    /// when given, `width` px wide, flagged as narrower than the blur resolves.
    fn narrow_line(len: usize, width: f64, radius: Option<f64>) -> measure::Measured {
        let points: Vec<[f64; 2]> = (0..=len)
            .map(|i| match radius {
                None => [10.0 + i as f64, 50.0],
                Some(r) => {
                    let a = i as f64 / r;
                    [60.0 + r * a.sin(), 50.0 + r * (1.0 - a.cos())]
                }
            })
            .collect();
        measure::Measured {
            width_px: width,
            width_sd_px: 0.5,
            local_widths: vec![width; len / 2],
            contrast: 0.2,
            length_px: len as f64,
            points,
            profiles: len / 2,
            flag: Some("narrower than 2.5x the blur".into()),
        }
    }

    fn hair(width: f64) -> Hair {
        Hair::for_test(vec![[0.0, 0.0], [100.0, 0.0]], width)
    }

    #[test]
    fn far_wider_hairs_are_flagged() {
        let mut hairs: Vec<Hair> = [4.0, 4.5, 5.0, 5.0, 5.5, 6.0, 6.0, 6.5, 9.0, 11.0]
            .into_iter()
            .map(hair)
            .collect();
        flag_wide_outliers(&mut hairs);
        // 75th percentile of all ten unflagged widths: 6.375; limit 9.56.
        let flagged: Vec<f64> = hairs
            .iter()
            .filter(|h| h.flag.is_some())
            .map(|h| h.width_px)
            .collect();
        assert_eq!(flagged, vec![11.0]);
        assert!((hairs[9].width_sd_px - 2.75).abs() < 1e-12);
        // Too few hairs to compare: nothing flagged.
        let mut few: Vec<Hair> = [4.0, 5.0, 11.0].into_iter().map(hair).collect();
        flag_wide_outliers(&mut few);
        assert!(few.iter().all(|h| h.flag.is_none()));
    }

    #[test]
    fn clear_narrow_lines_need_only_the_shortest_length() {
        let blur = measure::profile_blur(1.0);
        let clear = Array2::from_elem((200, 200), 6.0f32);
        let faint = Array2::from_elem((200, 200), 2.0f32);
        let keep = |m: &measure::Measured, snr: &Array2<f32>| long_enough(m, 40.0, snr, blur);
        // Straight, well above the noise: reported from 40 px.
        assert!(keep(&narrow_line(60, 2.0, None), &clear));
        assert!(!keep(&narrow_line(30, 2.0, None), &clear));
        // Faint, or bent like a bubble rim: needs 2.5x the length.
        assert!(!keep(&narrow_line(60, 2.0, None), &faint));
        assert!(!keep(&narrow_line(60, 2.0, Some(40.0)), &clear));
        assert!(keep(&narrow_line(110, 2.0, None), &faint));
        // Flagged for another reason (wide enough to resolve): the long rule holds.
        assert!(!keep(&narrow_line(60, 4.0, None), &clear));
    }

    #[test]
    fn a_noisy_image_warns_that_faint_hairs_are_missed_and_a_clean_one_does_not() {
        // Skin with white noise of 1% and of 25%, one 6 px hair of 40% contrast.
        let (h, w) = (240usize, 240usize);
        let noise = enhance::white_noise((h, w), 0x9E37_79B9_7F4A_7C15);
        let hair = enhance::vertical_hair((h, w), 120.0, 6.0, 1.0);
        let settings = Settings {
            um_per_px: Some(5.0),
            ..Settings::default()
        };
        let limits: Vec<(f64, bool)> = [0.01f32, 0.25]
            .iter()
            .map(|&sd| {
                let mut lum = hair.mapv(|v| 0.4 * (1.0 - 0.4 * v));
                lum.zip_mut_with(&noise, |v, &n| *v += 0.4 * sd * n);
                let a = analyze_luminance(&lum, &settings).unwrap();
                assert_eq!(a.hairs.len(), 1, "noise {sd}: the hair is found");
                let warned = a
                    .warnings
                    .iter()
                    .any(|m| m.starts_with("faint hairs are missed"));
                (a.faint_limit, warned)
            })
            .collect();
        // 15 µm = 3 px at 5 µm/px: about 3% of contrast on clean skin, over 15% on noisy.
        assert!(limits[0].0 < 0.05 && !limits[0].1, "{limits:?}");
        assert!(
            limits[1].0 > FAINT_WARN_CONTRAST && limits[1].1,
            "{limits:?}"
        );
    }
}
