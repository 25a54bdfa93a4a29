//! Scoring a report folder against ground truth (`trichometer validate`).
//!
//! # Two kinds of truth
//!
//! **Phantom truth**: a folder (searched recursively) of `<name>.truth.json` files, one
//! [`TruthImage`] each, as `trichometer synth` writes them; a single `.truth.json` file
//! works too. Every true hair is known with its centreline and mean width.
//!
//! **Manual measurements**: a CSV file (RFC 4180, header row, `.` decimal point) with one
//! row per hand measurement of one hair at one point:
//!
//! | column | meaning |
//! | --- | --- |
//! | `image` | the image, as a path suffix: `phantom_0003.jpg` or `visit2/frontal.jpg` |
//! | `x`, `y` | a point on the measured hair, pixels, centre of the top-left pixel at (0, 0) |
//! | `width_um` and/or `width_px` | the width measured there; the header names the unit |
//! | `um_per_px` | optional: the scale of that image, to convert between the two units |
//!
//! Header names are case-insensitive; other columns are ignored. Each row is matched to
//! the report hair whose centreline passes nearest to (x, y), within
//! max(3 px, width_px / 2 + 2 px) (3 px when the width in pixels cannot be known), in the
//! report image whose path ends with `image` (whole path components; an `image` that is
//! a longer path ending with the report's path matches too, e.g. an absolute path).
//! A width given in one unit is converted to the other only with the row's `um_per_px`;
//! the report's scale only serves to class the row (thin / intermediate / terminal) and
//! to size the search radius. Scored: the per-measurement width error (px and/or µm,
//! whichever both sides have; Bland–Altman in µm when every matched row has µm on both
//! sides, else px), the share of rows that found a hair ("recall of measured points",
//! overall and by class), and the unmatched rows with the reason.
//!
//! # Rules for phantoms
//!
//! * **Images.** A report image matches a truth image when its path ends with the
//!   truth's `image` path, compared by whole `/`-separated components
//!   (`run/phantoms/phantom_0003.jpg` matches `phantom_0003.jpg`, `xphantom_0003.jpg`
//!   does not). When several reports match, the one sharing the most trailing
//!   components with the truth file's own location wins. Truth images without a report,
//!   and those whose report has status `error`, count with all their hairs unrecalled
//!   and are listed. Report images without truth are listed and not scored. JSON files
//!   under `REPORT/images/` that are not per-image reports are skipped with a warning.
//! * **Hairs.** Both centrelines are resampled at ≤ 1 px steps, each point carrying half
//!   of its two neighbouring steps as its length. A report point *lies on* a truth hair
//!   when its distance to that hair's polyline is ≤ tol = max(2 px, 0.5 × truth
//!   width_px + 1 px). A report hair *matches* a truth hair when it lies on it for ≥ 50%
//!   of its length; of those, its best truth hair is the one it lies on for the most
//!   length of that hair's visible part (where the truth does not mark it `hidden` under
//!   another hair's shaft: a line there is the hair on top), ties going to the most length
//!   in all. Several report pieces may match one truth hair (fragmentation).
//! * **Recall.** A truth hair is *recalled* when its points within its tol of a point of
//!   a matching report piece make up ≥ 50% of its visible length: its length in the
//!   frame minus the parts the truth marks `hidden` (centre inside another hair's shaft).
//!   Only truth hairs with a visible length ≥ `min_length_px` count for recall and for
//!   the per-image truth count.
//!   Classes (thin / intermediate / terminal) are those of the truth width in µm under
//!   the `thin_um` / `terminal_um` limits of [`ValidateOptions`]. Recall is also split
//!   into light (grey/white) and dark truth hairs.
//! * **Length precision** = report centreline length lying on any truth hair / total
//!   report centreline length (centreline lengths from the report's `points`).
//! * **Width error.** One pair per truth hair that has at least one matching piece
//!   (whatever its length or recall): the report width is the mean of the pieces'
//!   widths weighted by the length each lies on that hair; the pair is *flagged* when
//!   flagged pieces make up at least half of that length. Error = report − truth, in px
//!   (and % of truth); µm when every piece has a µm width.
//! * **Bland–Altman** over those pairs, in µm when every pair has both µm widths,
//!   otherwise in px.
//! * **Per image**: thin-fraction error (percentage points; the report's share
//!   recomputed from its hairs' `width_um` with `thin_um`; the truth's from its
//!   `summary`, recomputed from its hairs when `thin_um` is not 30), cv error, mean-width
//!   error (µm), and hair-count error (report `hair_count` − truth hairs with a
//!   visible length ≥ `min_length_px`, also in %), with medians of their absolute values
//!   and their signed means over scored images.
//! * **Per hair** ([`Validation::hairs`], `validate --hairs FILE`): one row per truth hair
//!   of each scored image (or per manual measurement) with its recall and width pair, the
//!   table the figures above summarise.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::report::{Hair, ImageAnalysis, ImageReport, Polarity};
use crate::settings::{HairClass, Settings, DEFAULT_THIN_UM};
use crate::stats::{median, quantile, WidthSummary};
use crate::truth::TruthImage;

/// Knobs of the scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateOptions {
    /// Truth hairs shorter than this (px) do not count for recall or the truth count.
    pub min_length_px: f64,
    /// Thin-hair limit (µm).
    pub thin_um: f64,
    /// Terminal-hair limit (µm).
    pub terminal_um: f64,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            min_length_px: 40.0,
            thin_um: 30.0,
            terminal_um: 60.0,
        }
    }
}

/// Every figure of one validation run.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Validation {
    /// `phantom` (truth folder) or `manual` (CSV of measurements).
    pub truth_kind: String,
    pub truth: String,
    pub report_dir: String,
    pub options: ValidateOptions,
    pub images: ImageMatching,
    /// Phantoms: truth hairs recalled. Manual: measured points that found a hair.
    pub recall: RecallFigures,
    /// Phantoms only.
    pub length_precision: Option<LengthPrecision>,
    pub width_error: WidthErrors,
    pub bland_altman: BlandAltman,
    /// Phantoms only: one row per truth image.
    pub per_image: Vec<ImageScore>,
    /// Phantoms only: medians of the absolute per-image errors.
    pub image_errors: Option<ImageErrorSummary>,
    /// Manual only: rows that could not be matched (`image,x,y: reason`).
    pub unmatched_rows: Vec<String>,
    /// Ambiguities met on the way.
    pub warnings: Vec<String>,
    /// One row per truth hair of each scored image (phantoms) or per measurement
    /// (manual), with what matched it: `validate --hairs FILE` writes them as CSV. Not in
    /// the JSON (it would hold every hair).
    #[serde(skip)]
    pub hairs: Vec<HairMatch>,
}

/// A truth hair (or hand measurement) and the report hairs matched to it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct HairMatch {
    /// Truth image name (phantoms) or the measurement's `image` (manual).
    pub image: String,
    /// Truth hair id (phantoms; empty for manual rows).
    pub truth_id: Option<usize>,
    /// The measured point (manual), or the middle of the truth centreline (phantoms).
    pub x: f64,
    pub y: f64,
    pub truth_width_px: Option<f64>,
    pub truth_width_um: Option<f64>,
    /// Phantoms: visible length (px, not hidden under another hair); whether it counts
    /// for recall (at least `min_length_px`) and whether it was recalled.
    pub visible_length_px: Option<f64>,
    pub counted: Option<bool>,
    pub recalled: Option<bool>,
    /// Matched report hairs (`hair_id`s, `;`-separated) and their count.
    pub report_hair_ids: String,
    pub pieces: usize,
    /// Their width (weighted by the length lying on the truth hair when several).
    pub report_width_px: Option<f64>,
    pub report_width_um: Option<f64>,
    /// Report − truth.
    pub error_px: Option<f64>,
    pub error_um: Option<f64>,
    /// Whether the matched report width is flagged (half the matched length or more).
    pub flagged: Option<bool>,
    /// Manual rows without a match: why.
    pub note: String,
    /// Phantoms: the hair's apparent contrast, see [`truth_contrasts`] (empty when the
    /// phantom's image cannot be read).
    pub truth_contrast: Option<f64>,
}

/// How truth images and report images were paired.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ImageMatching {
    /// Truth images (phantoms) or distinct `image` values (manual).
    pub truth_images: usize,
    /// Of those, the ones scored against an `ok` report.
    pub scored: usize,
    /// Truth images with no report image.
    pub missing: Vec<String>,
    /// Truth images whose report has status `error`.
    pub failed: Vec<FailedImage>,
    /// Report images no truth image matched (not scored).
    pub unmatched_reports: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FailedImage {
    pub image: String,
    pub report: String,
    pub error: String,
}

/// A recall count.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Recall {
    pub n: usize,
    pub recalled: usize,
    /// recalled / n; `None` when n = 0.
    pub recall: Option<f64>,
}

impl Recall {
    fn add(&mut self, ok: bool) {
        self.n += 1;
        self.recalled += ok as usize;
        self.recall = Some(self.recalled as f64 / self.n as f64);
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct RecallFigures {
    pub overall: Recall,
    /// Truth width < thin_um.
    pub thin: Recall,
    /// `thin`, `intermediate`, `terminal` (by truth µm).
    pub by_class: Vec<NamedRecall>,
    /// Phantoms: truth hairs lighter than the skin (grey/white), and darker ones.
    pub light: Recall,
    pub dark: Recall,
    /// Phantoms: recall by apparent contrast ([`truth_contrasts`]; `CONTRAST_BANDS`), of
    /// all truth hairs and of thin ones, over the scored images whose image was read.
    #[serde(default)]
    pub by_contrast: Vec<NamedRecall>,
    #[serde(default)]
    pub thin_by_contrast: Vec<NamedRecall>,
}

/// Apparent-contrast bands of recall by contrast: lower limits, names.
const CONTRAST_BANDS: [(f64, &str); 4] = [
    (0.0, "<5%"),
    (0.05, "5-10%"),
    (0.10, "10-20%"),
    (0.20, ">=20%"),
];

/// Recall in `CONTRAST_BANDS` of the counted rows of `hairs` with a contrast (all, or
/// only those narrower than `thin_um`).
fn recall_by_contrast(hairs: &[HairMatch], thin_um: Option<f64>) -> Vec<NamedRecall> {
    let mut by = vec![Recall::default(); CONTRAST_BANDS.len()];
    for h in hairs {
        let (Some(c), Some(true), Some(ok)) = (h.truth_contrast, h.counted, h.recalled) else {
            continue;
        };
        if thin_um.is_some_and(|t| !h.truth_width_um.is_some_and(|w| w < t)) {
            continue;
        }
        let band = CONTRAST_BANDS.iter().rposition(|b| c >= b.0).unwrap_or(0);
        by[band].add(ok);
    }
    CONTRAST_BANDS
        .iter()
        .zip(by)
        .map(|(b, r)| NamedRecall {
            name: b.1.to_string(),
            recall: r,
        })
        .collect()
}

/// Each truth hair's apparent contrast in its phantom's image: the median, over the
/// visible points of its centreline, of the relative contrast of the flat-fielded linear
/// luminance ([`crate::enhance::flatten`], what the detector sees: after blur, beside
/// other hairs), darker hairs counted positive as lighter ones are, 0 when the wrong way.
/// `None` when the image cannot be read or has another size than the truth's.
pub fn truth_contrasts(image: &Path, truth: &TruthImage) -> Option<Vec<Option<f64>>> {
    let bytes = std::fs::read(image).ok()?;
    let img = crate::load::decode(&bytes, u64::MAX).ok()?;
    if (img.width(), img.height()) != (truth.width_px, truth.height_px) {
        return None;
    }
    let lum = crate::load::linear_luminance(&img);
    let c = crate::enhance::flatten(&lum, Settings::default().max_width_px);
    let grid = crate::enhance::Bilinear::new(&c);
    let (h, w) = grid.dim();
    let inside = |p: &[f64; 2]| {
        p[0] >= 0.0 && p[1] >= 0.0 && p[0] <= (w - 1) as f64 && p[1] <= (h - 1) as f64
    };
    Some(
        truth
            .hairs
            .iter()
            .map(|th| {
                let sign = if th.light { 1.0 } else { -1.0 };
                let v: Vec<f64> = th
                    .points
                    .iter()
                    .zip(th.hidden_mask())
                    .filter(|(p, hidden)| !hidden && inside(p))
                    .map(|(p, _)| sign * grid.at(p[0] as f32, p[1] as f32) as f64)
                    .collect();
                (!v.is_empty()).then(|| median(&v).max(0.0))
            })
            .collect(),
    )
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct NamedRecall {
    pub name: String,
    #[serde(flatten)]
    pub recall: Recall,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct LengthPrecision {
    pub report_length_px: f64,
    pub on_truth_length_px: f64,
    /// on_truth / report length; `None` when the reports hold no centreline.
    pub precision: Option<f64>,
}

/// Error figures of a set of (report − truth) width differences.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct ErrorStats {
    /// `px` or `um`.
    pub unit: String,
    pub n: usize,
    pub median_abs_error: Option<f64>,
    /// Median of |error| / truth × 100.
    pub median_abs_error_pct: Option<f64>,
    /// Signed bias: mean of errors.
    pub mean_error: Option<f64>,
    /// Signed bias: median of errors.
    pub median_error: Option<f64>,
    /// Mean of error / truth × 100.
    pub mean_error_pct: Option<f64>,
    /// 90th percentile of |error|.
    pub p90_abs_error: Option<f64>,
}

impl ErrorStats {
    /// From `(report, truth)` pairs.
    fn of(unit: &str, pairs: &[(f64, f64)]) -> ErrorStats {
        let mut s = ErrorStats {
            unit: unit.to_string(),
            n: pairs.len(),
            ..Default::default()
        };
        if pairs.is_empty() {
            return s;
        }
        let err: Vec<f64> = pairs.iter().map(|(r, t)| r - t).collect();
        let abs: Vec<f64> = err.iter().map(|e| e.abs()).collect();
        let pct: Vec<f64> = pairs
            .iter()
            .filter(|(_, t)| *t > 0.0)
            .map(|(r, t)| (r - t) / t * 100.0)
            .collect();
        let n = err.len() as f64;
        s.median_abs_error = Some(median(&abs));
        s.mean_error = Some(err.iter().sum::<f64>() / n);
        s.median_error = Some(median(&err));
        s.p90_abs_error = Some(quantile(&abs, 0.9));
        if !pct.is_empty() {
            let apct: Vec<f64> = pct.iter().map(|p| p.abs()).collect();
            s.median_abs_error_pct = Some(median(&apct));
            s.mean_error_pct = Some(pct.iter().sum::<f64>() / pct.len() as f64);
        }
        s
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct NamedErrors {
    pub name: String,
    #[serde(flatten)]
    pub stats: ErrorStats,
}

/// Per-hair width errors (px unless said otherwise), overall and split.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct WidthErrors {
    /// All pairs whose truth width in px is known.
    pub all: ErrorStats,
    /// Pairs with truth ≥ 3 px (the project's targets are stated for those).
    pub min_3px: ErrorStats,
    /// By truth class (µm limits).
    pub by_class: Vec<NamedErrors>,
    /// By truth width bins in px: <3, 3–5, 5–8, 8–12, 12–20, ≥20.
    pub by_px_bin: Vec<NamedErrors>,
    /// Pairs whose report width is flagged as uncertain, and the others.
    pub flagged: ErrorStats,
    pub unflagged: ErrorStats,
    /// The same in µm, over pairs with both µm widths.
    pub all_um: ErrorStats,
}

/// Bland–Altman agreement of per-hair widths (report − truth).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct BlandAltman {
    /// `um` or `px`.
    pub unit: String,
    pub n: usize,
    pub bias: Option<f64>,
    /// Sample SD of the differences (n − 1).
    pub sd: Option<f64>,
    /// bias − 1.96 SD.
    pub loa_low: Option<f64>,
    /// bias + 1.96 SD.
    pub loa_high: Option<f64>,
    /// Slope of difference against mean width (proportional bias).
    pub slope: Option<f64>,
}

impl BlandAltman {
    fn of(unit: &str, pairs: &[(f64, f64)]) -> BlandAltman {
        let mut b = BlandAltman {
            unit: unit.to_string(),
            n: pairs.len(),
            ..Default::default()
        };
        if pairs.is_empty() {
            return b;
        }
        let d: Vec<f64> = pairs.iter().map(|(r, t)| r - t).collect();
        let m: Vec<f64> = pairs.iter().map(|(r, t)| (r + t) / 2.0).collect();
        let s = WidthSummary::of(&d, None);
        b.bias = s.mean;
        b.sd = s.sd;
        if let (Some(bias), Some(sd)) = (s.mean, s.sd) {
            b.loa_low = Some(bias - 1.96 * sd);
            b.loa_high = Some(bias + 1.96 * sd);
        }
        let n = d.len() as f64;
        let mm = m.iter().sum::<f64>() / n;
        let md = d.iter().sum::<f64>() / n;
        let sxx: f64 = m.iter().map(|x| (x - mm).powi(2)).sum();
        if d.len() >= 2 && sxx > 1e-12 {
            let sxy: f64 = m.iter().zip(&d).map(|(x, y)| (x - mm) * (y - md)).sum();
            b.slope = Some(sxy / sxx);
        }
        b
    }
}

/// Figures of one truth image (phantoms).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ImageScore {
    /// The truth's `image`.
    pub image: String,
    /// Where the truth file is, relative to the truth folder, with the image's name
    /// (tells apart truth images of the same name in different folders).
    pub truth_location: String,
    /// The matching report's `image`, if any.
    pub report: Option<String>,
    /// `ok`, `missing` (no report) or `error` (report failed).
    pub status: String,
    /// Truth hairs with length ≥ min_length_px, and how many were recalled.
    pub truth_hairs: usize,
    pub recalled: usize,
    pub recall: Option<f64>,
    pub length_precision: Option<f64>,
    pub report_hairs: Option<usize>,
    pub count_error: Option<i64>,
    pub count_error_pct: Option<f64>,
    pub thin_fraction_truth: Option<f64>,
    pub thin_fraction_report: Option<f64>,
    /// Percentage points.
    pub thin_fraction_error_pp: Option<f64>,
    pub cv_truth: Option<f64>,
    pub cv_report: Option<f64>,
    pub cv_error: Option<f64>,
    pub mean_um_truth: Option<f64>,
    pub mean_um_report: Option<f64>,
    pub mean_um_error: Option<f64>,
    /// Median |width error| (px) over this image's matched hairs.
    pub median_abs_width_error_px: Option<f64>,
    /// Report hairs that are extra pieces of a truth hair another piece already matches.
    #[serde(default)]
    pub fragment_hairs: Option<usize>,
    /// Report hairs that match no truth hair (less than half their length on one).
    #[serde(default)]
    pub unmatched_hairs: Option<usize>,
    /// The image's blur σ (px): the phantom's, the report's, and report − truth.
    #[serde(default)]
    pub blur_sigma_truth_px: Option<f64>,
    #[serde(default)]
    pub blur_sigma_report_px: Option<f64>,
    #[serde(default)]
    pub blur_sigma_error_px: Option<f64>,
}

/// Medians of absolute per-image errors over scored images.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ImageErrorSummary {
    pub images: usize,
    pub median_abs_thin_fraction_error_pp: Option<f64>,
    pub median_abs_cv_error: Option<f64>,
    pub median_abs_mean_um_error: Option<f64>,
    pub median_abs_count_error: Option<f64>,
    pub median_abs_count_error_pct: Option<f64>,
    /// Signed means over the same images (a systematic shift shows here).
    pub mean_thin_fraction_error_pp: Option<f64>,
    pub mean_cv_error: Option<f64>,
    pub mean_mean_um_error: Option<f64>,
    pub mean_count_error_pct: Option<f64>,
    /// Blur σ error (report − truth, px): median |error| and signed mean.
    #[serde(default)]
    pub median_abs_blur_error_px: Option<f64>,
    #[serde(default)]
    pub mean_blur_error_px: Option<f64>,
}

/// Scores the report folder `report_dir` against `truth`: a folder of `*.truth.json`
/// (searched recursively), one `.truth.json` file, or a CSV of manual measurements.
pub fn validate(truth: &Path, report_dir: &Path, opts: &ValidateOptions) -> Result<Validation> {
    if !(opts.min_length_px >= 0.0 && opts.thin_um > 0.0 && opts.terminal_um >= opts.thin_um) {
        bail!("invalid validate options: {opts:?}");
    }
    let (reports, load_warnings) = load_reports(report_dir)?;
    let is_csv = truth.is_file()
        && truth
            .extension()
            .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case("csv"));
    let mut v = if is_csv {
        validate_manual(truth, &reports, opts)?
    } else {
        let truths = load_truths(truth)?;
        validate_phantoms(&truths, &reports, opts)
    };
    v.warnings.splice(0..0, load_warnings);
    v.truth = truth.display().to_string();
    v.report_dir = report_dir.display().to_string();
    Ok(v)
}

/// A perfect report of a truth image: every truth hair measured exactly, at the truth's
/// scale (widths rounded as reports round them). Keeps every truth hair, short or not.
pub fn report_from_truth(truth: &TruthImage, image_path: &str) -> ImageReport {
    let settings = Settings {
        um_per_px: Some(truth.um_per_px),
        ..Settings::default()
    };
    ImageReport::from_analysis(
        image_path,
        &analysis_from_truth(truth),
        &settings,
        "flag",
        "",
    )
}

/// The [`ImageAnalysis`] a perfect analyzer would return for a truth image.
pub fn analysis_from_truth(truth: &TruthImage) -> ImageAnalysis {
    ImageAnalysis {
        width_px: truth.width_px,
        height_px: truth.height_px,
        blur_sigma_px: truth.blur_sigma_px,
        faint_limit: 0.0,
        hairs: truth
            .hairs
            .iter()
            .map(|h| Hair {
                width_px: h.width_px,
                width_sd_px: 0.0,
                length_px: h.length_px,
                polarity: if h.light {
                    Polarity::Light
                } else {
                    Polarity::Dark
                },
                contrast: 0.0,
                profiles: h.points.len(),
                flag: None,
                points: h.points.clone(),
            })
            .collect(),
        warnings: vec![],
    }
}

// ---------------------------------------------------------------------------------------
// Loading

/// A report and where its image path came from.
struct LoadedReport {
    report: ImageReport,
    comps: Vec<String>,
}

/// The per-image reports under `report_dir/images`, and warnings about JSON files there
/// that are not per-image reports (skipped).
fn load_reports(report_dir: &Path) -> Result<(Vec<LoadedReport>, Vec<String>)> {
    let dir = report_dir.join("images");
    if !dir.is_dir() {
        bail!(
            "{} has no images/ folder: not a `trichometer analyze` output folder",
            report_dir.display()
        );
    }
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let loaded: Vec<std::result::Result<LoadedReport, String>> = files
        .par_iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            Ok(match serde_json::from_str::<ImageReport>(&text) {
                Ok(report) => {
                    let comps = components(&report.row.image);
                    Ok(LoadedReport { report, comps })
                }
                Err(e) => Err(format!(
                    "skipped {}: not a per-image report ({e})",
                    f.display()
                )),
            })
        })
        .collect::<Result<_>>()?;
    let mut reports = vec![];
    let mut warnings = vec![];
    for l in loaded {
        match l {
            Ok(r) => reports.push(r),
            Err(w) => warnings.push(w),
        }
    }
    Ok((reports, warnings))
}

struct LoadedTruth {
    truth: TruthImage,
    /// Where the truth file says its image is: the file's folder (relative to the truth
    /// root) and the image's file name, used to break ties between reports.
    location: Vec<String>,
    /// The phantom's image file (beside the truth file).
    image_file: PathBuf,
}

fn load_truths(truth: &Path) -> Result<Vec<LoadedTruth>> {
    let mut files: Vec<PathBuf> = if truth.is_file() {
        vec![truth.to_path_buf()]
    } else if truth.is_dir() {
        walkdir::WalkDir::new(truth)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_type().is_file() && e.file_name().to_string_lossy().ends_with(".truth.json")
            })
            .map(|e| e.into_path())
            .collect()
    } else {
        bail!("truth {} does not exist", truth.display());
    };
    files.sort();
    if files.is_empty() {
        bail!("no *.truth.json files under {}", truth.display());
    }
    let root = if truth.is_file() {
        truth.parent().unwrap_or(Path::new(""))
    } else {
        truth
    };
    files
        .iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let t: TruthImage = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a truth file", f.display()))?;
            let rel = f
                .parent()
                .and_then(|p| p.strip_prefix(root).ok())
                .unwrap_or(Path::new(""));
            let mut location = components(&rel.to_string_lossy());
            if let Some(name) = components(&t.image).last() {
                location.push(name.clone());
            }
            let image_file = f.parent().unwrap_or(Path::new("")).join(&t.image);
            Ok(LoadedTruth {
                truth: t,
                location,
                image_file,
            })
        })
        .collect()
}

/// Path components of a `/`- or `\`-separated path, without empty and `.` parts.
fn components(path: &str) -> Vec<String> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// Whether `path` ends with `suffix`, by whole components.
fn ends_with(path: &[String], suffix: &[String]) -> bool {
    !suffix.is_empty() && suffix.len() <= path.len() && path[path.len() - suffix.len()..] == *suffix
}

/// Number of trailing components `a` and `b` share.
fn common_tail(a: &[String], b: &[String]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

// ---------------------------------------------------------------------------------------
// Geometry

/// A polyline resampled at ≤ 1 px steps; `w[i]` is the length point i stands for.
struct Poly {
    pts: Vec<[f64; 2]>,
    w: Vec<f64>,
    len: f64,
    /// Index of the input point nearest along the line to each of `pts`.
    src: Vec<usize>,
}

fn resample(points: &[[f64; 2]]) -> Poly {
    let mut pts = Vec::with_capacity(points.len() * 2);
    let mut src = Vec::with_capacity(points.len() * 2);
    if let Some(&first) = points.first() {
        pts.push(first);
        src.push(0);
    }
    for (i, s) in points.windows(2).enumerate() {
        let (a, b) = (s[0], s[1]);
        let l = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        let n = (l.ceil() as usize).max(1);
        for k in 1..=n {
            let t = k as f64 / n as f64;
            pts.push([a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]);
            src.push(if t <= 0.5 { i } else { i + 1 });
        }
    }
    let mut w = vec![0.0; pts.len()];
    let mut len = 0.0;
    for i in 1..pts.len() {
        let l = dist(pts[i - 1], pts[i]);
        w[i - 1] += l / 2.0;
        w[i] += l / 2.0;
        len += l;
    }
    Poly { pts, w, len, src }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn dist_to_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l2 = dx * dx + dy * dy;
    if l2 <= 0.0 {
        return dist(p, a);
    }
    let t = (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2).clamp(0.0, 1.0);
    dist(p, [a[0] + t * dx, a[1] + t * dy])
}

/// A coarse grid over the points of a set of resampled polylines. Every segment (i, i+1)
/// is filed under point i; with cells at least `radius + 1` px wide, the 3×3 cells around
/// a query hold every segment that passes within `radius` of it.
struct Grid<'a> {
    polys: &'a [Poly],
    cell: f64,
    map: HashMap<(i64, i64), Vec<(u32, u32)>>,
    /// Per polyline, whether each of its resampled points is visible (empty: all are).
    visible: Vec<Vec<bool>>,
}

impl<'a> Grid<'a> {
    /// A grid whose polylines are visible all along.
    fn new(polys: &'a [Poly], radius: f64) -> Grid<'a> {
        Self::with_visibility(polys, radius, vec![])
    }

    /// A grid whose polylines are hidden where `visible[k][i]` is false (one entry per
    /// resampled point of polyline `k`).
    fn with_visibility(polys: &'a [Poly], radius: f64, visible: Vec<Vec<bool>>) -> Grid<'a> {
        let cell = radius.max(1.0) + 1.0;
        let mut map: HashMap<(i64, i64), Vec<(u32, u32)>> = HashMap::new();
        for (k, p) in polys.iter().enumerate() {
            for (i, q) in p.pts.iter().enumerate() {
                map.entry(Self::key(cell, *q))
                    .or_default()
                    .push((k as u32, i as u32));
            }
        }
        Grid {
            polys,
            cell,
            map,
            visible,
        }
    }

    fn key(cell: f64, p: [f64; 2]) -> (i64, i64) {
        ((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64)
    }

    /// Minimum distance from `p` to each nearby polyline and to its visible segments (a
    /// segment is visible when its first point is; infinite when none is near), as
    /// `(poly, distance, visible distance)` in `out` (one entry per polyline, in no
    /// particular order).
    fn near(&self, p: [f64; 2], out: &mut Vec<(usize, f64, f64)>) {
        out.clear();
        let (cx, cy) = Self::key(self.cell, p);
        for gx in cx - 1..=cx + 1 {
            for gy in cy - 1..=cy + 1 {
                let Some(list) = self.map.get(&(gx, gy)) else {
                    continue;
                };
                for &(k, i) in list {
                    let (k, i) = (k as usize, i as usize);
                    let pts = &self.polys[k].pts;
                    let d = if i + 1 < pts.len() {
                        dist_to_segment(p, pts[i], pts[i + 1])
                    } else {
                        dist(p, pts[i])
                    };
                    let seen = self.visible.get(k).map_or(true, |v| v[i]);
                    let dv = if seen { d } else { f64::INFINITY };
                    match out.iter_mut().find(|e| e.0 == k) {
                        Some(e) => {
                            e.1 = e.1.min(d);
                            e.2 = e.2.min(dv);
                        }
                        None => out.push((k, d, dv)),
                    }
                }
            }
        }
    }
}

fn tolerance(width_px: f64) -> f64 {
    (0.5 * width_px + 1.0).max(2.0)
}

// ---------------------------------------------------------------------------------------
// Phantoms

/// One scored truth hair with a matching report width.
#[derive(Clone, Debug)]
struct Pair {
    truth_px: Option<f64>,
    truth_um: Option<f64>,
    report_px: f64,
    report_um: Option<f64>,
    flagged: bool,
}

struct ImageEval {
    score: ImageScore,
    hairs: Vec<HairMatch>,
    /// (truth width µm, recalled) of truth hairs ≥ min length.
    /// (truth width µm, light, recalled) of truth hairs ≥ min length.
    recall_items: Vec<(Option<f64>, Option<bool>, bool)>,
    pairs: Vec<Pair>,
    report_len: f64,
    on_len: f64,
    /// The phantom's image could not be read for the hairs' contrast.
    contrast_unread: bool,
}

fn validate_phantoms(
    truths: &[LoadedTruth],
    reports: &[LoadedReport],
    opts: &ValidateOptions,
) -> Validation {
    let mut warnings = vec![];
    // Candidate (score, truth, report) edges, best first; greedy one-to-one assignment.
    let mut edges = vec![];
    for (ti, t) in truths.iter().enumerate() {
        let tc = components(&t.truth.image);
        let cands: Vec<usize> = (0..reports.len())
            .filter(|&ri| ends_with(&reports[ri].comps, &tc))
            .collect();
        let mut scores: Vec<usize> = cands
            .iter()
            .map(|&ri| common_tail(&reports[ri].comps, &t.location))
            .collect();
        scores.sort_unstable_by(|a, b| b.cmp(a));
        if scores.len() > 1 && scores[0] == scores[1] {
            warnings.push(format!(
                "{} reports match truth image {} equally well; the first by path is used",
                cands.len(),
                t.truth.image
            ));
        }
        for ri in cands {
            edges.push((common_tail(&reports[ri].comps, &t.location), ti, ri));
        }
    }
    edges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut t_of = vec![None; truths.len()];
    let mut r_used = vec![false; reports.len()];
    for (_, ti, ri) in edges {
        if t_of[ti].is_none() && !r_used[ri] {
            t_of[ti] = Some(ri);
            r_used[ri] = true;
        }
    }

    let mut evals: Vec<ImageEval> = truths
        .par_iter()
        .zip(t_of.par_iter())
        .map(|(t, ri)| {
            let rep = ri.map(|ri| &reports[ri].report);
            let mut e = match rep {
                Some(r) if r.row.status == "ok" => eval_image(&t.truth, r, opts),
                _ => unscored_image(&t.truth, rep, opts),
            };
            e.score.truth_location = t.location.join("/");
            if !e.hairs.is_empty() {
                match truth_contrasts(&t.image_file, &t.truth) {
                    Some(c) => {
                        let by_id: HashMap<_, _> =
                            t.truth.hairs.iter().map(|h| h.id).zip(c).collect();
                        for row in &mut e.hairs {
                            row.truth_contrast = row
                                .truth_id
                                .and_then(|id| by_id.get(&id).copied().flatten());
                        }
                    }
                    None => e.contrast_unread = true,
                }
            }
            e
        })
        .collect();

    let mut images = ImageMatching {
        truth_images: truths.len(),
        ..Default::default()
    };
    for (t, ri) in truths.iter().zip(&t_of) {
        match ri.map(|ri| &reports[ri].report) {
            None => images.missing.push(t.truth.image.clone()),
            Some(r) if r.row.status != "ok" => images.failed.push(FailedImage {
                image: t.truth.image.clone(),
                report: r.row.image.clone(),
                error: r.row.error.clone(),
            }),
            Some(_) => images.scored += 1,
        }
    }
    images.unmatched_reports = reports
        .iter()
        .zip(&r_used)
        .filter(|(_, used)| !**used)
        .map(|(r, _)| r.report.row.image.clone())
        .collect();

    let mut recall = recall_figures(
        evals.iter().flat_map(|e| e.recall_items.iter().copied()),
        opts,
    );
    let unread = evals.iter().filter(|e| e.contrast_unread).count();
    if unread > 0 {
        warnings.push(format!(
            "{unread} phantom images could not be read (or have another size than their truth): \
             their hairs have no contrast and are left out of recall by contrast"
        ));
    }
    let report_len: f64 = evals.iter().map(|e| e.report_len).sum();
    let on_len: f64 = evals.iter().map(|e| e.on_len).sum();
    let length_precision = Some(LengthPrecision {
        report_length_px: report_len,
        on_truth_length_px: on_len,
        precision: (report_len > 0.0).then(|| on_len / report_len),
    });
    let pairs: Vec<Pair> = evals.iter().flat_map(|e| e.pairs.iter().cloned()).collect();
    let hairs: Vec<HairMatch> = evals
        .iter_mut()
        .flat_map(|e| std::mem::take(&mut e.hairs))
        .collect();
    recall.by_contrast = recall_by_contrast(&hairs, None);
    recall.thin_by_contrast = recall_by_contrast(&hairs, Some(opts.thin_um));
    let per_image: Vec<ImageScore> = evals.into_iter().map(|e| e.score).collect();
    let ok: Vec<&ImageScore> = per_image.iter().filter(|s| s.status == "ok").collect();
    let med_abs = |f: &dyn Fn(&ImageScore) -> Option<f64>| {
        let v: Vec<f64> = ok.iter().filter_map(|s| f(s)).map(f64::abs).collect();
        (!v.is_empty()).then(|| median(&v))
    };
    let mean = |f: &dyn Fn(&ImageScore) -> Option<f64>| {
        let v: Vec<f64> = ok.iter().filter_map(|s| f(s)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let image_errors = Some(ImageErrorSummary {
        images: ok.len(),
        median_abs_thin_fraction_error_pp: med_abs(&|s| s.thin_fraction_error_pp),
        median_abs_cv_error: med_abs(&|s| s.cv_error),
        median_abs_mean_um_error: med_abs(&|s| s.mean_um_error),
        median_abs_count_error: med_abs(&|s| s.count_error.map(|c| c as f64)),
        median_abs_count_error_pct: med_abs(&|s| s.count_error_pct),
        mean_thin_fraction_error_pp: mean(&|s| s.thin_fraction_error_pp),
        mean_cv_error: mean(&|s| s.cv_error),
        mean_mean_um_error: mean(&|s| s.mean_um_error),
        mean_count_error_pct: mean(&|s| s.count_error_pct),
        median_abs_blur_error_px: med_abs(&|s| s.blur_sigma_error_px),
        mean_blur_error_px: mean(&|s| s.blur_sigma_error_px),
    });
    Validation {
        truth_kind: "phantom".into(),
        truth: String::new(),
        report_dir: String::new(),
        options: opts.clone(),
        images,
        recall,
        length_precision,
        width_error: width_errors(&pairs, opts),
        bland_altman: bland_altman(&pairs),
        per_image,
        image_errors,
        unmatched_rows: vec![],
        warnings,
        hairs,
    }
}

fn recall_figures(
    items: impl Iterator<Item = (Option<f64>, Option<bool>, bool)>,
    opts: &ValidateOptions,
) -> RecallFigures {
    let mut overall = Recall::default();
    let mut thin = Recall::default();
    let mut by = [Recall::default(), Recall::default(), Recall::default()];
    let (mut light, mut dark) = (Recall::default(), Recall::default());
    for (um, is_light, ok) in items {
        overall.add(ok);
        match is_light {
            Some(true) => light.add(ok),
            Some(false) => dark.add(ok),
            None => {}
        }
        if let Some(um) = um {
            let c = HairClass::of_width_um(um, opts.thin_um, opts.terminal_um);
            if c == HairClass::Thin {
                thin.add(ok);
            }
            by[class_index(c)].add(ok);
        }
    }
    let by_class = CLASSES
        .iter()
        .zip(by)
        .map(|(c, r)| NamedRecall {
            name: c.as_str().to_string(),
            recall: r,
        })
        .collect();
    RecallFigures {
        overall,
        thin,
        by_class,
        light,
        dark,
        ..Default::default()
    }
}

const CLASSES: [HairClass; 3] = [
    HairClass::Thin,
    HairClass::Intermediate,
    HairClass::Terminal,
];

fn class_index(c: HairClass) -> usize {
    match c {
        HairClass::Thin => 0,
        HairClass::Intermediate => 1,
        HairClass::Terminal => 2,
    }
}

const PX_BINS: [(f64, f64, &str); 6] = [
    (0.0, 3.0, "<3"),
    (3.0, 5.0, "3-5"),
    (5.0, 8.0, "5-8"),
    (8.0, 12.0, "8-12"),
    (12.0, 20.0, "12-20"),
    (20.0, f64::INFINITY, ">=20"),
];

fn width_errors(pairs: &[Pair], opts: &ValidateOptions) -> WidthErrors {
    let px = |f: &dyn Fn(&Pair) -> bool| -> Vec<(f64, f64)> {
        pairs
            .iter()
            .filter(|p| f(p))
            .filter_map(|p| p.truth_px.map(|t| (p.report_px, t)))
            .collect()
    };
    let by_class = CLASSES
        .iter()
        .map(|&c| NamedErrors {
            name: c.as_str().to_string(),
            stats: ErrorStats::of(
                "px",
                &px(&|p| {
                    p.truth_um.is_some_and(|u| {
                        HairClass::of_width_um(u, opts.thin_um, opts.terminal_um) == c
                    })
                }),
            ),
        })
        .collect();
    let by_px_bin = PX_BINS
        .iter()
        .map(|&(lo, hi, name)| NamedErrors {
            name: name.to_string(),
            stats: ErrorStats::of(
                "px",
                &px(&|p| p.truth_px.is_some_and(|t| t >= lo && t < hi)),
            ),
        })
        .collect();
    let um: Vec<(f64, f64)> = pairs
        .iter()
        .filter_map(|p| Some((p.report_um?, p.truth_um?)))
        .collect();
    WidthErrors {
        all: ErrorStats::of("px", &px(&|_| true)),
        min_3px: ErrorStats::of("px", &px(&|p| p.truth_px.is_some_and(|t| t >= 3.0))),
        by_class,
        by_px_bin,
        flagged: ErrorStats::of("px", &px(&|p| p.flagged)),
        unflagged: ErrorStats::of("px", &px(&|p| !p.flagged)),
        all_um: ErrorStats::of("um", &um),
    }
}

/// In µm when every pair has both µm widths, otherwise in px over pairs with both px.
fn bland_altman(pairs: &[Pair]) -> BlandAltman {
    let um: Vec<(f64, f64)> = pairs
        .iter()
        .filter_map(|p| Some((p.report_um?, p.truth_um?)))
        .collect();
    if !pairs.is_empty() && um.len() == pairs.len() {
        return BlandAltman::of("um", &um);
    }
    let px: Vec<(f64, f64)> = pairs
        .iter()
        .filter_map(|p| Some((p.report_px, p.truth_px?)))
        .collect();
    BlandAltman::of("px", &px)
}

/// Truth figures of an image that are the same whether or not a report exists.
fn truth_figures(
    truth: &TruthImage,
    opts: &ValidateOptions,
) -> (usize, Option<f64>, Option<f64>, Option<f64>) {
    let counted = truth
        .hairs
        .iter()
        .filter(|h| h.visible_length_px() >= opts.min_length_px)
        .count();
    let thin = if opts.thin_um == DEFAULT_THIN_UM && truth.summary.thin_fraction.is_some() {
        truth.summary.thin_fraction
    } else {
        let w: Vec<f64> = truth.hairs.iter().map(|h| h.width_um).collect();
        WidthSummary::of(&w, Some((opts.thin_um, opts.terminal_um))).thin_fraction
    };
    (counted, thin, truth.summary.cv, truth.summary.mean)
}

fn unscored_image(
    truth: &TruthImage,
    rep: Option<&ImageReport>,
    opts: &ValidateOptions,
) -> ImageEval {
    let (counted, thin, cv, mean) = truth_figures(truth, opts);
    let recall_items: Vec<(Option<f64>, Option<bool>, bool)> = truth
        .hairs
        .iter()
        .filter(|h| h.visible_length_px() >= opts.min_length_px)
        .map(|h| (Some(h.width_um), Some(h.light), false))
        .collect();
    ImageEval {
        score: ImageScore {
            image: truth.image.clone(),
            report: rep.map(|r| r.row.image.clone()),
            status: if rep.is_some() { "error" } else { "missing" }.into(),
            truth_hairs: counted,
            recall: (counted > 0).then_some(0.0),
            thin_fraction_truth: thin,
            cv_truth: cv,
            mean_um_truth: mean,
            ..Default::default()
        },
        hairs: vec![],
        recall_items,
        pairs: vec![],
        contrast_unread: false,
        report_len: 0.0,
        on_len: 0.0,
    }
}

fn eval_image(truth: &TruthImage, rep: &ImageReport, opts: &ValidateOptions) -> ImageEval {
    let tpolys: Vec<Poly> = truth.hairs.iter().map(|h| resample(&h.points)).collect();
    let tols: Vec<f64> = truth.hairs.iter().map(|h| tolerance(h.width_px)).collect();
    let max_tol = tols.iter().cloned().fold(2.0, f64::max);
    // A truth hair's points hidden under another hair's shaft: a report line there lies
    // on the hair on top, whatever lies beneath.
    let visible: Vec<Vec<bool>> = truth
        .hairs
        .iter()
        .zip(&tpolys)
        .map(|(h, tp)| {
            let hidden = h.hidden_mask();
            tp.src.iter().map(|&i| !hidden[i]).collect()
        })
        .collect();
    let tgrid = Grid::with_visibility(&tpolys, max_tol, visible);
    let rpolys: Vec<Poly> = rep.hairs.iter().map(|h| resample(&h.points)).collect();

    // Match each report hair to its best truth hair.
    let mut buf = vec![];
    let mut report_len = 0.0;
    let mut on_len = 0.0;
    // (truth hair, report hair, length lying on it)
    let mut matches: Vec<(usize, usize, f64)> = vec![];
    for (ri, rp) in rpolys.iter().enumerate() {
        report_len += rp.len;
        // Length lying on each truth hair, and on its visible parts.
        let mut on: HashMap<usize, (f64, f64)> = HashMap::new();
        for (p, w) in rp.pts.iter().zip(&rp.w) {
            tgrid.near(*p, &mut buf);
            let mut any = false;
            for &(k, d, dv) in &buf {
                if d <= tols[k] {
                    let e = on.entry(k).or_default();
                    e.0 += w;
                    if dv <= tols[k] {
                        e.1 += w;
                    }
                    any = true;
                }
            }
            if any {
                on_len += w;
            }
        }
        let best = on
            .into_iter()
            .filter(|&(_, (l, _))| rp.len > 0.0 && l >= 0.5 * rp.len)
            .max_by(|a, b| {
                (a.1 .1, a.1 .0)
                    .partial_cmp(&(b.1 .1, b.1 .0))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(b.0.cmp(&a.0))
            });
        if let Some((k, (l, _))) = best {
            matches.push((k, ri, l));
        }
    }

    // Coverage of each truth hair by its matching pieces.
    let mpolys: Vec<Poly> = matches
        .iter()
        .map(|&(_, ri, _)| resample(&rep.hairs[ri].points))
        .collect();
    let mgrid = Grid::new(&mpolys, max_tol);
    let mut recalled = vec![false; truth.hairs.len()];
    for (k, tp) in tpolys.iter().enumerate() {
        if !matches.iter().any(|m| m.0 == k) {
            continue;
        }
        // Only the visible part counts: where another hair hides it, nothing can.
        let hidden = truth.hairs[k].hidden_mask();
        let mut covered = 0.0;
        let mut visible = 0.0;
        let mut any_point = false;
        for ((p, w), &i) in tp.pts.iter().zip(&tp.w).zip(&tp.src) {
            if hidden[i] {
                continue;
            }
            visible += w;
            mgrid.near(*p, &mut buf);
            if buf
                .iter()
                .any(|&(m, d, _)| matches[m].0 == k && d <= tols[k])
            {
                covered += w;
                any_point = true;
            }
        }
        recalled[k] = if visible > 0.0 {
            covered >= 0.5 * visible
        } else {
            any_point
        };
    }

    // One width pair per truth hair with matching pieces; one row per truth hair.
    let mut pairs = vec![];
    let mut abs_px = vec![];
    let mut hairs = Vec::with_capacity(truth.hairs.len());
    for (k, th) in truth.hairs.iter().enumerate() {
        let pieces: Vec<&(usize, usize, f64)> = matches.iter().filter(|m| m.0 == k).collect();
        let visible = th.visible_length_px();
        let mid = th
            .points
            .get(th.points.len() / 2)
            .copied()
            .unwrap_or([f64::NAN; 2]);
        let mut row = HairMatch {
            image: truth.image.clone(),
            truth_id: Some(th.id),
            x: mid[0],
            y: mid[1],
            truth_width_px: Some(th.width_px),
            truth_width_um: Some(th.width_um),
            visible_length_px: Some(visible),
            counted: Some(visible >= opts.min_length_px),
            recalled: Some(recalled[k]),
            pieces: pieces.len(),
            report_hair_ids: pieces
                .iter()
                .map(|m| rep.hairs[m.1].row.hair_id.to_string())
                .collect::<Vec<_>>()
                .join(";"),
            ..Default::default()
        };
        if pieces.is_empty() {
            hairs.push(row);
            continue;
        }
        let total: f64 = pieces.iter().map(|m| m.2).sum();
        let wavg = |f: &dyn Fn(usize) -> Option<f64>| -> Option<f64> {
            let mut s = 0.0;
            for m in &pieces {
                s += f(m.1)? * m.2;
            }
            Some(s / total)
        };
        let report_px = wavg(&|ri| Some(rep.hairs[ri].row.width_px)).unwrap_or(f64::NAN);
        let report_um = wavg(&|ri| rep.hairs[ri].row.width_um);
        let flagged_len: f64 = pieces
            .iter()
            .filter(|m| !rep.hairs[m.1].row.flag.is_empty())
            .map(|m| m.2)
            .sum();
        abs_px.push((report_px - th.width_px).abs());
        let flagged = flagged_len >= 0.5 * total;
        pairs.push(Pair {
            truth_px: Some(th.width_px),
            truth_um: Some(th.width_um),
            report_px,
            report_um,
            flagged,
        });
        row.report_width_px = Some(report_px);
        row.report_width_um = report_um;
        row.error_px = Some(report_px - th.width_px);
        row.error_um = report_um.map(|r| r - th.width_um);
        row.flagged = Some(flagged);
        hairs.push(row);
    }

    // Per-image figures.
    let (counted, thin_t, cv_t, mean_t) = truth_figures(truth, opts);
    let rep_um: Option<Vec<f64>> = rep.hairs.iter().map(|h| h.row.width_um).collect();
    let thin_r = rep_um
        .as_ref()
        .and_then(|w| WidthSummary::of(w, Some((opts.thin_um, opts.terminal_um))).thin_fraction);
    let cv_r = rep.row.cv.or_else(|| {
        let w: Vec<f64> = rep.hairs.iter().map(|h| h.row.width_px).collect();
        WidthSummary::of(&w, None).cv
    });
    let mean_r = rep
        .row
        .mean_um
        .or_else(|| rep_um.as_ref().and_then(|w| WidthSummary::of(w, None).mean));
    let n_rep = rep.row.hair_count.unwrap_or(rep.hairs.len());
    let count_error = n_rep as i64 - counted as i64;
    let recall_items: Vec<(Option<f64>, Option<bool>, bool)> = truth
        .hairs
        .iter()
        .zip(&recalled)
        .filter(|(h, _)| h.visible_length_px() >= opts.min_length_px)
        .map(|(h, r)| (Some(h.width_um), Some(h.light), *r))
        .collect();
    let n_rec = recall_items.iter().filter(|r| r.2).count();
    let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
    let score = ImageScore {
        image: truth.image.clone(),
        truth_location: String::new(),
        report: Some(rep.row.image.clone()),
        status: "ok".into(),
        truth_hairs: counted,
        recalled: n_rec,
        recall: (counted > 0).then(|| n_rec as f64 / counted as f64),
        length_precision: (report_len > 0.0).then(|| on_len / report_len),
        report_hairs: Some(n_rep),
        count_error: Some(count_error),
        count_error_pct: (counted > 0).then(|| count_error as f64 / counted as f64 * 100.0),
        thin_fraction_truth: thin_t,
        thin_fraction_report: thin_r,
        thin_fraction_error_pp: diff(thin_r, thin_t).map(|d| d * 100.0),
        cv_truth: cv_t,
        cv_report: cv_r,
        cv_error: diff(cv_r, cv_t),
        mean_um_truth: mean_t,
        mean_um_report: mean_r,
        mean_um_error: diff(mean_r, mean_t),
        median_abs_width_error_px: (!abs_px.is_empty()).then(|| median(&abs_px)),
        fragment_hairs: Some({
            let mut k: Vec<usize> = matches.iter().map(|m| m.0).collect();
            k.sort_unstable();
            k.dedup();
            matches.len() - k.len()
        }),
        unmatched_hairs: Some(rep.hairs.len() - matches.len()),
        blur_sigma_truth_px: Some(truth.blur_sigma_px),
        blur_sigma_report_px: rep.row.blur_sigma_px,
        blur_sigma_error_px: rep.row.blur_sigma_px.map(|b| b - truth.blur_sigma_px),
    };
    ImageEval {
        score,
        hairs,
        recall_items,
        pairs,
        report_len,
        on_len,
        contrast_unread: false,
    }
}

// ---------------------------------------------------------------------------------------
// Manual measurements

struct ManualRow {
    image: String,
    x: f64,
    y: f64,
    width_um: Option<f64>,
    width_px: Option<f64>,
    um_per_px: Option<f64>,
}

fn read_manual(path: &Path) -> Result<Vec<ManualRow>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let headers: Vec<String> = rdr
        .headers()?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(ci), Some(cx), Some(cy)) = (col("image"), col("x"), col("y")) else {
        bail!("{}: manual CSV needs columns image, x, y", path.display());
    };
    let (cum, cpx, cscale) = (col("width_um"), col("width_px"), col("um_per_px"));
    if cum.is_none() && cpx.is_none() {
        bail!(
            "{}: manual CSV needs a width_um or width_px column",
            path.display()
        );
    }
    let mut rows = vec![];
    for (n, rec) in rdr.records().enumerate() {
        let line = n + 2;
        let rec = rec.with_context(|| format!("{} line {line}", path.display()))?;
        let get = |c: Option<usize>| -> Result<Option<f64>> {
            match c.and_then(|c| rec.get(c)).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => s.parse::<f64>().map(Some).with_context(|| {
                    format!("{} line {line}: `{s}` is not a number", path.display())
                }),
            }
        };
        let image = rec.get(ci).unwrap_or("").to_string();
        let (Some(x), Some(y)) = (get(Some(cx))?, get(Some(cy))?) else {
            bail!("{} line {line}: x and y are required", path.display());
        };
        if image.is_empty() {
            bail!("{} line {line}: image is empty", path.display());
        }
        let row = ManualRow {
            image,
            x,
            y,
            width_um: get(cum)?,
            width_px: get(cpx)?,
            um_per_px: get(cscale)?,
        };
        if row.width_um.is_none() && row.width_px.is_none() {
            bail!("{} line {line}: no width", path.display());
        }
        rows.push(row);
    }
    Ok(rows)
}

fn validate_manual(
    path: &Path,
    reports: &[LoadedReport],
    opts: &ValidateOptions,
) -> Result<Validation> {
    let rows = read_manual(path)?;
    let mut warnings = vec![];
    let mut images = ImageMatching::default();
    // Image name → report index (first by path when several match).
    let mut found: HashMap<String, Option<usize>> = HashMap::new();
    for r in &rows {
        if found.contains_key(&r.image) {
            continue;
        }
        let c = components(&r.image);
        let cands: Vec<usize> = (0..reports.len())
            .filter(|&i| ends_with(&reports[i].comps, &c) || ends_with(&c, &reports[i].comps))
            .collect();
        if cands.len() > 1 {
            warnings.push(format!(
                "{} reports match image {}; the first by path is used",
                cands.len(),
                r.image
            ));
        }
        let best = cands.into_iter().min_by(|&a, &b| {
            reports[a]
                .report
                .row
                .image
                .cmp(&reports[b].report.row.image)
        });
        match best.map(|i| &reports[i].report) {
            None => images.missing.push(r.image.clone()),
            Some(rep) if rep.row.status != "ok" => images.failed.push(FailedImage {
                image: r.image.clone(),
                report: rep.row.image.clone(),
                error: rep.row.error.clone(),
            }),
            Some(_) => images.scored += 1,
        }
        found.insert(r.image.clone(), best);
    }
    images.truth_images = found.len();
    let used: Vec<usize> = found.values().flatten().copied().collect();
    images.unmatched_reports = (0..reports.len())
        .filter(|i| !used.contains(i))
        .map(|i| reports[i].report.row.image.clone())
        .collect();

    let mut items = vec![];
    let mut pairs = vec![];
    let mut unmatched_rows = vec![];
    let mut hairs = vec![];
    for r in &rows {
        let rep = found[&r.image].map(|i| &reports[i].report);
        let scale = r.um_per_px.or(rep.and_then(|rep| rep.row.um_per_px));
        let truth_px = r.width_px.or_else(|| Some(r.width_um? / r.um_per_px?));
        let truth_um = r.width_um.or_else(|| Some(r.width_px? * r.um_per_px?));
        let class_um = truth_um.or_else(|| Some(r.width_px? * scale?));
        let tol = r
            .width_px
            .or_else(|| Some(r.width_um? / scale?))
            .map_or(3.0, |w| (w / 2.0 + 2.0).max(3.0));
        let hit = match rep {
            None => Err("no report image"),
            Some(rep) if rep.row.status != "ok" => Err("report image failed"),
            Some(rep) => rep
                .hairs
                .iter()
                .map(|h| (h, dist_to_polyline([r.x, r.y], &h.points)))
                .filter(|(_, d)| *d <= tol)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(h, _)| h)
                .ok_or("no hair within reach"),
        };
        items.push((class_um, None, hit.is_ok()));
        let mut row = HairMatch {
            image: r.image.clone(),
            x: r.x,
            y: r.y,
            truth_width_px: truth_px,
            truth_width_um: truth_um,
            ..Default::default()
        };
        match hit {
            Ok(h) => {
                pairs.push(Pair {
                    truth_px,
                    truth_um,
                    report_px: h.row.width_px,
                    report_um: h.row.width_um,
                    flagged: !h.row.flag.is_empty(),
                });
                row.report_hair_ids = h.row.hair_id.to_string();
                row.pieces = 1;
                row.report_width_px = Some(h.row.width_px);
                row.report_width_um = h.row.width_um;
                row.error_px = truth_px.map(|t| h.row.width_px - t);
                row.error_um = truth_um.and_then(|t| Some(h.row.width_um? - t));
                row.flagged = Some(!h.row.flag.is_empty());
            }
            Err(why) => {
                unmatched_rows.push(format!("{},{},{}: {why}", r.image, r.x, r.y));
                row.note = why.to_string();
            }
        }
        hairs.push(row);
    }
    Ok(Validation {
        truth_kind: "manual".into(),
        truth: String::new(),
        report_dir: String::new(),
        options: opts.clone(),
        images,
        recall: recall_figures(items.into_iter(), opts),
        length_precision: None,
        width_error: width_errors(&pairs, opts),
        bland_altman: bland_altman(&pairs),
        per_image: vec![],
        image_errors: None,
        unmatched_rows,
        warnings,
        hairs,
    })
}

fn dist_to_polyline(p: [f64; 2], pts: &[[f64; 2]]) -> f64 {
    match pts.len() {
        0 => f64::INFINITY,
        1 => dist(p, pts[0]),
        _ => pts
            .windows(2)
            .map(|s| dist_to_segment(p, s[0], s[1]))
            .fold(f64::INFINITY, f64::min),
    }
}

// ---------------------------------------------------------------------------------------
// Text

fn f(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let t = format!("{x:.digits$}");
            // No "-0.000" for values that round to zero.
            if t.starts_with('-') && t[1..].chars().all(|c| c == '0' || c == '.') {
                t[1..].to_string()
            } else {
                t
            }
        }
        _ => "-".to_string(),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.1}%", x * 100.0))
}

fn recall_line(out: &mut String, name: &str, r: &Recall) {
    let _ = writeln!(
        out,
        "  {name:<16} {:>7}  ({} of {})",
        pct(r.recall),
        r.recalled,
        r.n
    );
}

fn error_line(out: &mut String, name: &str, e: &ErrorStats) {
    let _ = writeln!(
        out,
        "  {name:<14} {:>5} {:>9} {:>8} {:>9} {:>9} {:>8} {:>9}",
        e.n,
        f(e.median_abs_error, 3),
        f(e.median_abs_error_pct, 1),
        f(e.mean_error, 3),
        f(e.median_error, 3),
        f(e.mean_error_pct, 1),
        f(e.p90_abs_error, 3),
    );
}

impl Validation {
    /// Writes [`Validation::hairs`] as CSV to `path` (whole or not at all), image names
    /// neutralised for spreadsheets as in the report's own CSV files.
    pub fn write_hairs_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in &self.hairs {
            w.serialize(HairMatch {
                image: crate::output::neutralise_cell(&row.image),
                ..row.clone()
            })?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        crate::output::write_atomic(path, &bytes)
    }

    /// A readable multi-line summary for the terminal.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let manual = self.truth_kind == "manual";
        let _ = writeln!(
            o,
            "Validation of {} against {} ({} truth)",
            self.report_dir, self.truth, self.truth_kind
        );
        let im = &self.images;
        let _ = writeln!(
            o,
            "Images: {} in truth, {} scored, {} missing, {} failed, {} reports without truth",
            im.truth_images,
            im.scored,
            im.missing.len(),
            im.failed.len(),
            im.unmatched_reports.len()
        );
        for m in &im.missing {
            let _ = writeln!(o, "  missing: {m}");
        }
        for m in &im.failed {
            let _ = writeln!(o, "  failed:  {} ({}): {}", m.image, m.report, m.error);
        }
        for m in &im.unmatched_reports {
            let _ = writeln!(o, "  no truth: {m}");
        }
        let _ = writeln!(o);
        if manual {
            let _ = writeln!(o, "Measured points that found a hair:");
        } else {
            let _ = writeln!(
                o,
                "Hair recall (truth hairs >= {} px long, classes by truth width):",
                self.options.min_length_px
            );
        }
        recall_line(&mut o, "all", &self.recall.overall);
        for c in &self.recall.by_class {
            let name = match c.name.as_str() {
                "thin" => format!("thin <{}um", self.options.thin_um),
                "terminal" => format!("terminal >={}um", self.options.terminal_um),
                n => n.to_string(),
            };
            recall_line(&mut o, &name, &c.recall);
        }
        if !manual {
            recall_line(&mut o, "light (grey)", &self.recall.light);
            recall_line(&mut o, "dark", &self.recall.dark);
        }
        if self.recall.by_contrast.iter().any(|b| b.recall.n > 0) {
            let _ = writeln!(
                o,
                "  by apparent contrast (at the truth centreline, after blur), all / thin:"
            );
            for (a, t) in self
                .recall
                .by_contrast
                .iter()
                .zip(&self.recall.thin_by_contrast)
            {
                let of = |r: &Recall| format!("({} of {})", r.recalled, r.n);
                let _ = writeln!(
                    o,
                    "    {:<8} {:>6}  {:<16} thin {:>6}  {}",
                    a.name,
                    pct(a.recall.recall),
                    of(&a.recall),
                    pct(t.recall.recall),
                    of(&t.recall)
                );
            }
        }
        if let Some(lp) = &self.length_precision {
            let _ = writeln!(
                o,
                "Length precision: {}  ({:.0} of {:.0} px of report centreline on a truth hair)",
                pct(lp.precision),
                lp.on_truth_length_px,
                lp.report_length_px
            );
        }
        let sum = |f: fn(&ImageScore) -> Option<usize>| -> Option<usize> {
            self.per_image
                .iter()
                .filter(|s| s.status == "ok")
                .map(f)
                .sum::<Option<usize>>()
        };
        if let (Some(f), Some(u)) = (sum(|s| s.fragment_hairs), sum(|s| s.unmatched_hairs)) {
            let _ = writeln!(
                o,
                "Report hairs beyond one per truth hair: {f} extra pieces of a matched truth hair, {u} on no truth hair"
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Per-hair width error, report - truth (px unless said otherwise):"
        );
        let _ = writeln!(
            o,
            "  {:<14} {:>5} {:>9} {:>8} {:>9} {:>9} {:>8} {:>9}",
            "group", "n", "med|err|", "med|%|", "bias", "med err", "bias %", "p90|err|"
        );
        let w = &self.width_error;
        error_line(&mut o, "all", &w.all);
        error_line(&mut o, "truth >=3px", &w.min_3px);
        for g in &w.by_class {
            error_line(&mut o, &g.name, &g.stats);
        }
        for g in &w.by_px_bin {
            error_line(&mut o, &format!("{} px", g.name), &g.stats);
        }
        error_line(&mut o, "flagged", &w.flagged);
        error_line(&mut o, "unflagged", &w.unflagged);
        error_line(&mut o, "all (um)", &w.all_um);
        let b = &self.bland_altman;
        let _ = writeln!(
            o,
            "Bland-Altman ({}): n {}, bias {}, SD {}, 95% limits {} .. {}, slope {}",
            b.unit,
            b.n,
            f(b.bias, 3),
            f(b.sd, 3),
            f(b.loa_low, 3),
            f(b.loa_high, 3),
            f(b.slope, 4)
        );
        if let Some(ie) = &self.image_errors {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "Per-image errors (median |error| over {} scored images):",
                ie.images
            );
            let _ = writeln!(
                o,
                "  thin fraction {} pp, cv {}, mean width {} um, count {} ({} %)",
                f(ie.median_abs_thin_fraction_error_pp, 2),
                f(ie.median_abs_cv_error, 4),
                f(ie.median_abs_mean_um_error, 2),
                f(ie.median_abs_count_error, 1),
                f(ie.median_abs_count_error_pct, 1)
            );
            let _ = writeln!(
                o,
                "  signed means: thin fraction {} pp, cv {}, mean width {} um, count {} %",
                f(ie.mean_thin_fraction_error_pp, 2),
                f(ie.mean_cv_error, 4),
                f(ie.mean_mean_um_error, 2),
                f(ie.mean_count_error_pct, 1)
            );
            let _ = writeln!(
                o,
                "  blur sigma: median |error| {} px, signed mean {} px",
                f(ie.median_abs_blur_error_px, 3),
                f(ie.mean_blur_error_px, 3)
            );
            let _ = writeln!(
                o,
                "  {:<28} {:>7} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "image", "status", "recall", "prec", "count", "count%", "thin pp", "cv", "mean um"
            );
            for s in &self.per_image {
                let _ = writeln!(
                    o,
                    "  {:<28} {:>7} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    s.truth_location,
                    s.status,
                    pct(s.recall),
                    pct(s.length_precision),
                    s.count_error.map_or("-".into(), |c| format!("{c:+}")),
                    f(s.count_error_pct, 1),
                    f(s.thin_fraction_error_pp, 2),
                    f(s.cv_error, 4),
                    f(s.mean_um_error, 2)
                );
            }
        }
        if !self.unmatched_rows.is_empty() {
            let _ = writeln!(o);
            let _ = writeln!(o, "Unmatched measurements:");
            for r in &self.unmatched_rows {
                let _ = writeln!(o, "  {r}");
            }
        }
        for wmsg in &self.warnings {
            let _ = writeln!(o, "warning: {wmsg}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truth::TruthHair;

    const SCALE: f64 = 4.0;

    fn line(a: [f64; 2], b: [f64; 2]) -> Vec<[f64; 2]> {
        let n = dist(a, b).ceil() as usize;
        (0..=n)
            .map(|k| {
                let t = k as f64 / n as f64;
                [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
            })
            .collect()
    }

    fn hair(id: usize, a: [f64; 2], b: [f64; 2], width_px: f64) -> TruthHair {
        let width_um = width_px * SCALE;
        TruthHair {
            id,
            points: line(a, b),
            width_um,
            width_px,
            length_px: dist(a, b),
            class: HairClass::of_width_um(width_um, 30.0, 60.0),
            light: false,
            hidden: vec![],
        }
    }

    fn image(name: &str, hairs: Vec<TruthHair>) -> TruthImage {
        let w: Vec<f64> = hairs.iter().map(|h| h.width_um).collect();
        TruthImage {
            image: name.to_string(),
            width_px: 400,
            height_px: 300,
            um_per_px: SCALE,
            blur_sigma_px: 1.0,
            difficulty: "easy".into(),
            seed: 1,
            summary: WidthSummary::of(&w, Some((30.0, 60.0))),
            hairs,
        }
    }

    /// A thin horizontal hair crossed by an intermediate vertical one, and a terminal
    /// diagonal one: lengths 200, 180 and 150 px.
    fn truth1() -> TruthImage {
        image(
            "phantom_0001.jpg",
            vec![
                hair(0, [20.0, 50.0], [220.0, 50.0], 5.0),
                hair(1, [100.0, 10.0], [100.0, 190.0], 10.0),
                hair(2, [150.0, 100.0], [270.0, 190.0], 18.0),
            ],
        )
    }

    fn truth2() -> TruthImage {
        image(
            "phantom_0002.jpg",
            vec![
                hair(0, [10.0, 200.0], [300.0, 200.0], 6.0),
                hair(1, [350.0, 10.0], [350.0, 290.0], 3.5),
                hair(2, [30.0, 30.0], [30.0, 150.0], 20.0),
            ],
        )
    }

    /// A 400x300 grey image (linear skin 0.4) holding a dark 8 px bar at 70% of the skin
    /// along y = 50 and a light one at 108% along x = 300, written as 16-bit PNG.
    fn write_bars(path: &Path) {
        let img = image::ImageBuffer::from_fn(400, 300, |x, y| {
            let lin: f32 = if (46..54).contains(&y) {
                0.4 * 0.7
            } else if (296..304).contains(&x) {
                0.4 * 1.08
            } else {
                0.4
            };
            let srgb = if lin <= 0.003_130_8 {
                12.92 * lin
            } else {
                1.055 * lin.powf(1.0 / 2.4) - 0.055
            };
            image::Luma([(srgb * 65535.0).round() as u16])
        });
        img.save(path).unwrap();
    }

    #[test]
    fn truth_hairs_contrast_is_read_from_the_phantom_and_recall_is_split_by_it() {
        let td = tempfile::tempdir().unwrap();
        let png = td.path().join("bars.png");
        write_bars(&png);
        let mut light = hair(1, [300.0, 20.0], [300.0, 280.0], 8.0);
        light.light = true;
        let mut t = image(
            "bars.png",
            vec![
                hair(0, [20.0, 49.5], [380.0, 49.5], 8.0),
                light,
                // On bare skin, and a dark hair over the light bar's ground truth: none.
                hair(2, [20.0, 200.0], [200.0, 200.0], 4.0),
            ],
        );
        // The middle of hair 0 is hidden: only its visible part counts (the same here).
        t.hairs[0].hidden = vec![[100, 200]];
        let c = truth_contrasts(&png, &t).unwrap();
        assert!((c[0].unwrap() - 0.30).abs() < 0.02, "{c:?}");
        assert!((c[1].unwrap() - 0.08).abs() < 0.01, "{c:?}");
        assert!(c[2].unwrap() < 0.005, "{c:?}");
        // Another image size than the truth's: no contrast rather than a wrong one.
        t.width_px = 500;
        assert_eq!(truth_contrasts(&png, &t), None);
        assert_eq!(truth_contrasts(&td.path().join("missing.png"), &t), None);

        let row = |c: f64, um: f64, recalled: bool| HairMatch {
            truth_contrast: Some(c),
            truth_width_um: Some(um),
            counted: Some(true),
            recalled: Some(recalled),
            ..Default::default()
        };
        let rows = vec![
            row(0.02, 20.0, false),
            row(0.07, 20.0, true),
            row(0.07, 40.0, false),
            row(0.5, 80.0, true),
            row(0.2, 25.0, true),
            HairMatch {
                counted: Some(false),
                ..row(0.5, 80.0, false)
            },
            HairMatch {
                truth_contrast: None,
                ..row(0.5, 80.0, false)
            },
        ];
        let all: Vec<(String, usize, usize)> = recall_by_contrast(&rows, None)
            .into_iter()
            .map(|b| (b.name, b.recall.recalled, b.recall.n))
            .collect();
        let want = [
            ("<5%", 0, 1),
            ("5-10%", 1, 2),
            ("10-20%", 0, 0),
            (">=20%", 2, 2),
        ];
        assert_eq!(all, want.map(|(n, r, k)| (n.to_string(), r, k)).to_vec());
        let thin: Vec<(usize, usize)> = recall_by_contrast(&rows, Some(30.0))
            .into_iter()
            .map(|b| (b.recall.recalled, b.recall.n))
            .collect();
        assert_eq!(thin, vec![(0, 1), (1, 1), (0, 0), (1, 1)]);
    }

    fn write_truth(dir: &Path, t: &TruthImage) {
        let stem = t.image.trim_end_matches(".jpg");
        let p = dir.join(format!("{stem}.truth.json"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, serde_json::to_string(t).unwrap()).unwrap();
    }

    fn write_report(dir: &Path, r: &ImageReport) {
        let p = dir.join("images").join(format!("{}.json", r.row.image));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, serde_json::to_string(r).unwrap()).unwrap();
    }

    fn report_with(
        t: &TruthImage,
        path: &str,
        edit: impl FnOnce(&mut ImageAnalysis),
    ) -> ImageReport {
        let mut a = analysis_from_truth(t);
        edit(&mut a);
        let settings = Settings {
            um_per_px: Some(t.um_per_px),
            ..Settings::default()
        };
        ImageReport::from_analysis(path, &a, &settings, "flag", "")
    }

    fn run(truths: &[TruthImage], reports: &[ImageReport]) -> Validation {
        let td = tempfile::tempdir().unwrap();
        let (tdir, rdir) = (td.path().join("truth"), td.path().join("report"));
        std::fs::create_dir_all(&tdir).unwrap();
        std::fs::create_dir_all(rdir.join("images")).unwrap();
        truths.iter().for_each(|t| write_truth(&tdir, t));
        reports.iter().for_each(|r| write_report(&rdir, r));
        let v = validate(&tdir, &rdir, &ValidateOptions::default()).unwrap();
        // The JSON form round-trips and the text renders.
        let json = serde_json::to_string(&v).unwrap();
        let back: Validation = serde_json::from_str(&json).unwrap();
        assert_eq!(back.recall.overall, v.recall.overall);
        assert!(v.to_text().contains("Hair recall"));
        v
    }

    fn close(a: Option<f64>, b: f64, tol: f64) {
        let a = a.expect("figure missing");
        assert!((a - b).abs() <= tol, "{a} != {b}");
    }

    #[test]
    fn perfect_report_scores_perfectly() {
        let (t1, t2) = (truth1(), truth2());
        let reports = [
            report_from_truth(&t1, "run/phantoms/phantom_0001.jpg"),
            report_from_truth(&t2, "run/phantoms/phantom_0002.jpg"),
        ];
        let v = run(&[t1, t2], &reports);
        assert_eq!(v.images.scored, 2);
        assert!(
            v.images.missing.is_empty()
                && v.images.failed.is_empty()
                && v.images.unmatched_reports.is_empty()
        );
        assert_eq!(
            v.recall.overall,
            Recall {
                n: 6,
                recalled: 6,
                recall: Some(1.0)
            }
        );
        assert_eq!(v.recall.thin.n, 3); // 20, 24 and 14 µm
        assert!(v
            .recall
            .by_class
            .iter()
            .all(|c| c.recall.recall == Some(1.0)));
        close(v.length_precision.as_ref().unwrap().precision, 1.0, 1e-12);
        let e = &v.width_error.all;
        assert_eq!(e.n, 6);
        close(e.median_abs_error, 0.0, 0.0);
        close(e.mean_error, 0.0, 0.0);
        close(e.p90_abs_error, 0.0, 0.0);
        assert_eq!(v.width_error.min_3px.n, 6);
        assert_eq!(v.width_error.unflagged.n, 6);
        assert_eq!(v.width_error.flagged.n, 0);
        let bins: Vec<usize> = v.width_error.by_px_bin.iter().map(|b| b.stats.n).collect();
        assert_eq!(bins, vec![0, 1, 2, 1, 1, 1]);
        assert_eq!(v.bland_altman.unit, "um");
        close(v.bland_altman.bias, 0.0, 0.0);
        close(v.bland_altman.sd, 0.0, 0.0);
        for s in &v.per_image {
            assert_eq!(s.status, "ok");
            assert_eq!(s.count_error, Some(0));
            close(s.thin_fraction_error_pp, 0.0, 1e-9);
            close(s.cv_error, 0.0, 1e-4); // report cv is rounded to 4 decimals
            close(s.mean_um_error, 0.0, 1e-3);
        }
        let ie = v.image_errors.unwrap();
        assert_eq!(ie.images, 2);
        close(ie.median_abs_count_error, 0.0, 0.0);
    }

    #[test]
    fn known_width_errors_are_scored_exactly() {
        let t1 = truth1();
        // Every width +0.5 px; the middle hair flagged; the blur read 0.25 px high.
        let r = report_with(&t1, "phantom_0001.jpg", |a| {
            a.hairs.iter_mut().for_each(|h| h.width_px += 0.5);
            a.hairs[1].flag = Some("narrow".into());
            a.blur_sigma_px += 0.25;
        });
        let v = run(std::slice::from_ref(&t1), &[r]);
        close(v.per_image[0].blur_sigma_error_px, 0.25, 1e-3);
        let ie = v.image_errors.as_ref().unwrap();
        close(ie.median_abs_blur_error_px, 0.25, 1e-3);
        close(ie.mean_blur_error_px, 0.25, 1e-3);
        let e = &v.width_error.all;
        assert_eq!(e.n, 3);
        close(e.median_abs_error, 0.5, 1e-12);
        close(e.mean_error, 0.5, 1e-12);
        close(e.median_error, 0.5, 1e-12);
        close(e.p90_abs_error, 0.5, 1e-12);
        close(e.median_abs_error_pct, 0.5 / 10.0 * 100.0, 1e-9);
        assert_eq!(v.width_error.flagged.n, 1);
        assert_eq!(v.width_error.unflagged.n, 2);
        close(v.width_error.flagged.mean_error, 0.5, 1e-12);
        close(v.width_error.all_um.mean_error, 0.5 * SCALE, 1e-9);
        assert_eq!(v.bland_altman.unit, "um");
        close(v.bland_altman.bias, 2.0, 1e-9);
        close(v.bland_altman.sd, 0.0, 1e-9);
        close(v.bland_altman.loa_high, 2.0, 1e-9);
        close(v.per_image[0].mean_um_error, 2.0, 1e-3);
        assert_eq!(v.recall.overall.recalled, 3);

        // Every width +10%: 10% errors, mean width +10%, cv and thin fraction unchanged.
        let r = report_with(&t1, "phantom_0001.jpg", |a| {
            a.hairs.iter_mut().for_each(|h| h.width_px *= 1.1)
        });
        let v = run(std::slice::from_ref(&t1), &[r]);
        close(v.width_error.all.median_abs_error_pct, 10.0, 1e-9);
        close(v.width_error.all.mean_error_pct, 10.0, 1e-9);
        close(v.width_error.all.median_abs_error, 1.0, 1e-9);
        let s = &v.per_image[0];
        close(s.mean_um_error, 0.1 * t1.summary.mean.unwrap(), 2e-3);
        close(s.cv_error, 0.0, 1e-4);
        close(s.thin_fraction_error_pp, 0.0, 1e-9);
        close(v.bland_altman.slope, 0.1 / 1.05, 1e-9);
    }

    #[test]
    fn missing_and_fragmented_hairs() {
        let mut t1 = truth1();
        // A short hair: does not count for recall or the truth count.
        t1.hairs.push(hair(3, [300.0, 20.0], [330.0, 20.0], 2.5));
        t1.hairs[1].light = true;
        let r = report_with(&t1, "phantom_0001.jpg", |a| {
            a.hairs.truncate(3);
            a.hairs.remove(1); // the vertical intermediate hair is lost
            let h = a.hairs.remove(0); // the horizontal one comes in two pieces
            let mut h1 = h.clone();
            h1.points = h.points[..100].to_vec();
            let mut h2 = h;
            h2.points = h2.points.split_off(100);
            a.hairs.push(h1);
            a.hairs.push(h2);
        });
        let v = run(&[t1], &[r]);
        assert_eq!(
            v.recall.overall,
            Recall {
                n: 3,
                recalled: 2,
                recall: Some(2.0 / 3.0)
            }
        );
        let inter = v
            .recall
            .by_class
            .iter()
            .find(|c| c.name == "intermediate")
            .unwrap();
        assert_eq!(inter.recall.recall, Some(0.0));
        assert_eq!(v.recall.thin.recall, Some(1.0));
        // The lost hair was the light one.
        assert_eq!(v.recall.light.recall, Some(0.0));
        assert_eq!((v.recall.dark.n, v.recall.dark.recalled), (2, 2));
        assert_eq!(v.width_error.all.n, 2);
        close(v.width_error.all.median_abs_error, 0.0, 0.0);
        close(v.length_precision.as_ref().unwrap().precision, 1.0, 1e-12);
        assert_eq!(v.per_image[0].count_error, Some(0)); // 3 pieces vs 3 truth hairs ≥ 40 px
                                                         // The per-hair table: one row per truth hair, with what matched it.
        let mut ids: Vec<Option<usize>> = v.hairs.iter().map(|h| h.truth_id).collect();
        ids.sort();
        assert_eq!(ids, [Some(0), Some(1), Some(2), Some(3)]);
        let by_id = |id: usize| v.hairs.iter().find(|h| h.truth_id == Some(id)).unwrap();
        let (split, lost, short) = (by_id(0), by_id(1), by_id(3));
        assert_eq!(
            (split.pieces, split.recalled, split.counted),
            (2, Some(true), Some(true))
        );
        assert_eq!(split.report_hair_ids.split(';').count(), 2);
        close(split.error_px, 0.0, 1e-9);
        assert_eq!(
            (lost.pieces, lost.recalled, lost.report_width_px),
            (0, Some(false), None)
        );
        assert_eq!(short.counted, Some(false));
    }

    #[test]
    fn recall_counts_only_the_visible_length() {
        let mut t1 = truth1();
        // Hair 0 (200 px) hidden under another hair over its first 120 px; hair 2 (150
        // px) hidden but for 30 px: it no longer counts (visible length < 40 px).
        t1.hairs[0].hidden = vec![[0, 121]];
        t1.hairs[2].hidden = vec![[0, 121]];
        let r = report_with(&t1, "phantom_0001.jpg", |a| {
            // Only the visible 80 px of hair 0 are found (40% of its whole length).
            a.hairs[0].points = a.hairs[0].points[130..].to_vec();
        });
        let v = run(std::slice::from_ref(&t1), std::slice::from_ref(&r));
        assert_eq!(
            v.recall.overall,
            Recall {
                n: 2,
                recalled: 2,
                recall: Some(1.0)
            }
        );
        assert_eq!(v.per_image[0].truth_hairs, 2);
        // The same report against a truth without hidden parts misses hair 0.
        let v = run(&[truth1()], &[r]);
        assert_eq!((v.recall.overall.n, v.recall.overall.recalled), (3, 2));
    }

    #[test]
    fn a_line_over_a_hidden_hair_is_scored_against_the_hair_on_top() {
        // Hair 0 (6 px) lies wholly hidden inside hair 1's 12 px shaft, over its middle.
        let mut hidden = hair(0, [60.0, 100.0], [180.0, 100.0], 6.0);
        hidden.hidden = vec![[0, hidden.points.len()]];
        let t = image(
            "phantom_0001.jpg",
            vec![hidden, hair(1, [20.0, 100.0], [220.0, 100.0], 12.0)],
        );
        // The report has only that middle stretch of hair 1, read 12.5 px: it lies on
        // both hairs for all its length.
        let r = report_with(&t, "phantom_0001.jpg", |a| {
            a.hairs.remove(0);
            a.hairs[0].points = line([60.0, 100.0], [180.0, 100.0]);
            a.hairs[0].width_px = 12.5;
        });
        let v = run(std::slice::from_ref(&t), std::slice::from_ref(&r));
        assert_eq!(v.width_error.all.n, 1);
        close(v.width_error.all.mean_error, 0.5, 1e-9);
        // Without the hidden marks the tie goes to the first hair: a +6.5 px error.
        let mut open = t;
        open.hairs[0].hidden.clear();
        let v = run(&[open], &[r]);
        close(v.width_error.all.mean_error, 6.5, 1e-9);
    }

    #[test]
    fn extra_line_costs_its_share_of_length() {
        let t1 = truth1();
        let r = report_with(&t1, "phantom_0001.jpg", |a| {
            let mut h = a.hairs[0].clone();
            h.points = line([20.0, 250.0], [120.0, 250.0]);
            a.hairs.push(h);
        });
        let v = run(&[t1], &[r]);
        let lp = v.length_precision.unwrap();
        close(Some(lp.report_length_px), 630.0, 1e-9);
        close(lp.precision, 530.0 / 630.0, 1e-9);
        assert_eq!(v.recall.overall.recall, Some(1.0));
        assert_eq!(v.width_error.all.n, 3);
        assert_eq!(v.per_image[0].count_error, Some(1));
        close(v.per_image[0].count_error_pct, 100.0 / 3.0, 1e-9);
    }

    #[test]
    fn images_match_by_path_suffix() {
        let td = tempfile::tempdir().unwrap();
        let (tdir, rdir) = (td.path().join("truth"), td.path().join("report"));
        let mut t3 = truth1();
        t3.image = "phantom_0003.jpg".into();
        let mut t4 = truth2();
        t4.image = "phantom_0004.jpg".into();
        let mut t5 = truth2();
        t5.image = "phantom_0005.jpg".into();
        // Two truth images of the same name in different folders.
        let mut ta = truth1();
        ta.image = "p.jpg".into();
        let mut tb = truth2();
        tb.image = "p.jpg".into();
        for t in [&t3, &t4, &t5] {
            write_truth(&tdir, t);
        }
        write_truth(&tdir.join("setA"), &ta);
        write_truth(&tdir.join("setB"), &tb);
        write_report(
            &rdir,
            &report_from_truth(&t3, "run/phantoms/phantom_0003.jpg"),
        );
        write_report(
            &rdir,
            &report_from_truth(&t3, "run/other/xphantom_0003.jpg"),
        );
        let failed = ImageReport::failed(
            "run/phantoms/phantom_0005.jpg",
            "bad\nfile",
            &Settings::default(),
            "none",
            "",
        );
        write_report(&rdir, &failed);
        write_report(&rdir, &report_from_truth(&tb, "x/setB/p.jpg"));
        write_report(&rdir, &report_from_truth(&ta, "x/setA/p.jpg"));
        std::fs::write(rdir.join("images/notes.json"), "{\"not\": \"a report\"}").unwrap();
        let v = validate(&tdir, &rdir, &ValidateOptions::default()).unwrap();
        assert_eq!(v.images.truth_images, 5);
        assert_eq!(v.images.scored, 3);
        assert_eq!(v.images.missing, vec!["phantom_0004.jpg".to_string()]);
        assert_eq!(v.images.failed.len(), 1);
        assert_eq!(v.images.failed[0].image, "phantom_0005.jpg");
        assert_eq!(v.images.failed[0].error, "bad file");
        assert_eq!(
            v.images.unmatched_reports,
            vec!["run/other/xphantom_0003.jpg".to_string()]
        );
        // setA and setB each paired with their own report: all their hairs recalled.
        let ok: Vec<&ImageScore> = v.per_image.iter().filter(|s| s.status == "ok").collect();
        assert_eq!(ok.len(), 3);
        assert!(ok.iter().all(|s| s.recall == Some(1.0)), "{ok:?}");
        // Missing and failed images lose all their hairs.
        assert_eq!(
            v.recall.overall,
            Recall {
                n: 15,
                recalled: 9,
                recall: Some(0.6)
            }
        );
        // The truth files here have no images: their hairs' contrast is unknown.
        assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
        assert!(v.warnings[0].contains("notes.json"));
        assert!(v.warnings[1].starts_with("3 phantom images could not be read"));
        assert!(v.recall.by_contrast.iter().all(|b| b.recall.n == 0));
        assert!(v.to_text().contains("missing: phantom_0004.jpg"));
    }

    #[test]
    fn per_hair_csv_neutralises_image_names_for_spreadsheets() {
        let td = tempfile::tempdir().unwrap();
        let mut v = run(&[truth1()], &[]);
        v.hairs = vec![HairMatch {
            image: "=cmd.jpg".into(),
            ..Default::default()
        }];
        let path = td.path().join("hairs.csv");
        v.write_hairs_csv(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().nth(1).unwrap().starts_with("'=cmd.jpg,"),
            "{text}"
        );
    }

    #[test]
    fn manual_measurements() {
        let td = tempfile::tempdir().unwrap();
        let rdir = td.path().join("report");
        let t1 = truth1();
        write_report(&rdir, &report_from_truth(&t1, "visit/phantom_0001.jpg"));
        let csv_px = td.path().join("manual_px.csv");
        std::fs::write(
            &csv_px,
            "Image,X,Y,Width_px\n\
             phantom_0001.jpg,60,50.5,4.5\n\
             phantom_0001.jpg,100,150,9.0\n\
             phantom_0001.jpg,380,280,5\n\
             nothere.jpg,10,10,5\n",
        )
        .unwrap();
        let v = validate(&csv_px, &rdir, &ValidateOptions::default()).unwrap();
        assert_eq!(v.truth_kind, "manual");
        assert_eq!(
            v.recall.overall,
            Recall {
                n: 4,
                recalled: 2,
                recall: Some(0.5)
            }
        );
        assert_eq!(v.images.missing, vec!["nothere.jpg".to_string()]);
        assert_eq!(v.unmatched_rows.len(), 2);
        // One row per measurement, in the file's order: matched ones with their error,
        // the others with the reason.
        let rows: Vec<(f64, usize, Option<f64>, &str)> = v
            .hairs
            .iter()
            .map(|h| {
                (
                    h.x,
                    h.pieces,
                    h.error_px.map(|e| (e * 1e6).round() / 1e6),
                    h.note.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (60.0, 1, Some(0.5), ""),
                (100.0, 1, Some(1.0), ""),
                (380.0, 0, None, "no hair within reach"),
                (10.0, 0, None, "no report image"),
            ]
        );
        let e = &v.width_error.all;
        assert_eq!(e.n, 2);
        close(e.mean_error, 0.75, 1e-12);
        close(e.median_abs_error, 0.75, 1e-12);
        assert_eq!(v.bland_altman.unit, "px");
        close(v.bland_altman.bias, 0.75, 1e-12);
        // Classes come from the report's scale: 4.5 px and 5 px × 4 µm/px are thin; the
        // row in the unknown image has no scale and no class.
        assert_eq!(
            v.recall.thin,
            Recall {
                n: 2,
                recalled: 1,
                recall: Some(0.5)
            }
        );
        assert!(v.to_text().contains("Measured points"));

        let csv_um = td.path().join("manual_um.csv");
        std::fs::write(
            &csv_um,
            "image,x,y,width_um,um_per_px\n\
             visit/phantom_0001.jpg,60,50,16,4\n\
             /data/study/visit/phantom_0001.jpg,100,150,36,4\n",
        )
        .unwrap();
        let v = validate(&csv_um, &rdir, &ValidateOptions::default()).unwrap();
        assert_eq!(v.recall.overall.recall, Some(1.0));
        assert_eq!(v.bland_altman.unit, "um");
        close(v.bland_altman.bias, 4.0, 1e-9);
        close(v.width_error.all_um.mean_error, 4.0, 1e-9);
        close(v.width_error.all.mean_error, 1.0, 1e-9);
        assert_eq!(v.width_error.all.n, 2);
        assert!(v.images.missing.is_empty());

        let bad = td.path().join("bad.csv");
        std::fs::write(&bad, "image,x,y\na.jpg,1,2\n").unwrap();
        assert!(validate(&bad, &rdir, &ValidateOptions::default()).is_err());
    }

    #[test]
    fn report_without_scale_scores_in_px() {
        let t1 = truth1();
        let mut a = analysis_from_truth(&t1);
        a.hairs.iter_mut().for_each(|h| h.width_px -= 0.25);
        let r =
            ImageReport::from_analysis("phantom_0001.jpg", &a, &Settings::default(), "none", "");
        let v = run(&[t1], &[r]);
        assert_eq!(v.bland_altman.unit, "px");
        close(v.bland_altman.bias, -0.25, 1e-12);
        assert_eq!(v.width_error.all_um.n, 0);
        let s = &v.per_image[0];
        assert_eq!(s.thin_fraction_error_pp, None);
        assert_eq!(s.mean_um_error, None);
        close(s.cv_error.map(f64::abs), 0.0, 0.05); // widths moved, cv too
                                                    // Classes still come from the truth.
        assert_eq!(v.recall.thin.n, 1);
        assert_eq!(v.width_error.by_class[2].stats.n, 1);
    }

    #[test]
    fn centreline_offsets_within_tolerance_match() {
        let t1 = truth1();
        // The horizontal 5 px hair has tol 3.5 px: 1.5 px off still matches.
        let r = report_with(&t1, "phantom_0001.jpg", |a| {
            a.hairs[0].points.iter_mut().for_each(|p| p[1] += 1.5);
        });
        let v = run(std::slice::from_ref(&t1), &[r]);
        assert_eq!(v.recall.overall.recalled, 3);
        close(v.length_precision.unwrap().precision, 1.0, 1e-12);
        // 5 px off it lies on nothing but the crossing hair's band: unmatched.
        let r = report_with(&t1, "phantom_0001.jpg", |a| {
            a.hairs[0].points.iter_mut().for_each(|p| p[1] += 5.0);
        });
        let v = run(&[t1], &[r]);
        assert_eq!(v.recall.overall.recalled, 2);
        assert_eq!(v.recall.thin.recalled, 0);
        assert_eq!(v.width_error.all.n, 2);
        // Only the 13 px within 6 px (tol of the 10 px hair) of x = 100 lie on a hair.
        close(v.length_precision.unwrap().precision, 343.0 / 530.0, 1e-9);
    }

    #[test]
    fn dense_image_scores_every_crossing_hair() {
        // 200 hairs of 300-700 px in a 1920x1080 frame, crossing each other (how long
        // scoring takes is not asserted here: speed is a benchmark's business).
        let hairs: Vec<TruthHair> = (0..200)
            .map(|i| {
                let f = i as f64;
                let a = [(f * 37.0) % 1900.0, (f * 53.0) % 1000.0];
                let ang = f * 0.7;
                let len = 300.0 + (f * 13.0) % 400.0;
                let b = [a[0] + len * ang.cos(), a[1] + len * ang.sin()];
                hair(i, a, b, 2.0 + (f * 7.0) % 30.0)
            })
            .collect();
        let t = image("dense.jpg", hairs);
        let r = report_from_truth(&t, "dense.jpg");
        let v = run(&[t], &[r]);
        // Crossing hairs may steal a little, but nearly everything is found.
        assert!(
            v.recall.overall.recall.unwrap() > 0.95,
            "{:?}",
            v.recall.overall
        );
        close(v.length_precision.unwrap().precision, 1.0, 1e-12);
    }
}
