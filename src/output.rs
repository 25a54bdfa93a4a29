//! The report folder: `images.csv`, `hairs.csv`, `images/<path>.json` and `summary.json`
//! (see CONTRACT.md). Rows are streamed to temporary files and renamed into place at the
//! end, and every JSON file is written to a temporary file and renamed, so a file is
//! either whole or absent.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::batch::Input;
use crate::groups::{Groups, GroupsSummary};
use crate::report::{
    HairRow, ImageReport, ImageRow, DISCLAIMER, HISTOGRAM_BIN_PX, HISTOGRAM_BIN_UM, TOOL_VERSION,
};
use crate::settings::Settings;
use crate::stats::{Histogram, WidthSummary};

/// The batch document `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchSummary {
    pub tool: String,
    pub disclaimer: String,
    pub settings: Settings,
    pub images: usize,
    pub images_ok: usize,
    pub images_failed: usize,
    /// Images listed but not analysed because the run was interrupted.
    pub images_not_run: usize,
    /// Images whose report from an earlier run was reused (`--resume`), among `images`.
    #[serde(default)]
    pub images_reused: usize,
    pub hairs: usize,
    /// Unit of `pooled` and `histogram`: `um` when at least one ok image had a scale, `px`
    /// when none had.
    pub unit: String,
    /// Width distribution pooled over hairs: with unit `um`, the hairs of the ok images that
    /// have a scale (each converted with its own scale; images without a scale are left
    /// out, see `images_without_scale`); with unit `px`, the hairs of all ok images.
    pub pooled: WidthSummary,
    pub histogram: Histogram,
    pub failed: Vec<FailedImage>,
    /// Ok images in `pooled`.
    #[serde(default)]
    pub pooled_images: usize,
    /// Ok images measured in pixels only (no scale from flag, manifest or folder file).
    #[serde(default)]
    pub images_without_scale: usize,
    /// How many images (ok or failed) got their scale from each source: `flag`,
    /// `manifest`, `folder`, `none`.
    #[serde(default)]
    pub scale_sources: BTreeMap<String, usize>,
    /// Figures per subject and region (present when the manifest tags images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupsSummary>,
    /// Present when this folder is one shard of a split batch (`analyze --shard K/N`);
    /// absent from a whole run and from a merged folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

/// Which part of a split batch a report folder holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShardInfo {
    /// K of `--shard K/N` (1-based).
    pub index: usize,
    /// N of `--shard K/N`.
    pub count: usize,
    /// Images in the whole input list, before it was split.
    pub inputs_total: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailedImage {
    pub image: String,
    pub error: String,
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let mut tmp =
        NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data().ok();
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Path of an input's JSON report in the output folder `out`.
pub fn json_path(out: &Path, input: &Input) -> PathBuf {
    out.join("images")
        .join(format!("{}.json", input.report_rel))
}

/// Prefixes spreadsheet-formula starters so a cell is shown as text, never evaluated.
pub fn neutralise_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

type CsvOut = csv::Writer<BufWriter<NamedTempFile>>;

/// Streams a batch's reports into the output folder.
pub struct ReportWriter {
    out: PathBuf,
    settings: Settings,
    images: CsvOut,
    hairs: CsvOut,
    /// Per-hair widths in µm of ok images with a scale, for the pooled figures.
    pooled_um: Vec<f32>,
    /// Per-hair widths in px of all ok images (pooled when no image has a scale): emptied
    /// and no longer filled once an image with a scale is added.
    pooled_px: Vec<f32>,
    ok_scaled: usize,
    scale_sources: BTreeMap<String, usize>,
    groups: Groups,
    ok: usize,
    failed: Vec<FailedImage>,
    hair_count: usize,
    shard: Option<ShardInfo>,
    reused: usize,
}

impl ReportWriter {
    /// Creates the output folder and checks it is writable (fails early otherwise).
    pub fn create(out: &Path, settings: &Settings) -> Result<ReportWriter> {
        fs::create_dir_all(out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
        let open = |name: &str| -> Result<CsvOut> {
            let tmp = NamedTempFile::with_prefix_in(format!(".{name}."), out)
                .with_context(|| format!("output folder {} is not writable", out.display()))?;
            Ok(csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(BufWriter::new(tmp)))
        };
        let mut w = ReportWriter {
            out: out.to_path_buf(),
            settings: settings.clone(),
            images: open("images.csv")?,
            hairs: open("hairs.csv")?,
            pooled_um: Vec::new(),
            pooled_px: Vec::new(),
            ok_scaled: 0,
            scale_sources: BTreeMap::new(),
            groups: Groups::new(settings.thin_um),
            ok: 0,
            failed: Vec::new(),
            hair_count: 0,
            shard: None,
            reused: 0,
        };
        // Headers even when no image follows.
        w.images.write_record(csv_header::<ImageRow>())?;
        w.hairs.write_record(csv_header::<HairRow>())?;
        // Put the headers on disk now, so a full or read-only folder fails before any work.
        for csv in [&mut w.images, &mut w.hairs] {
            csv.flush()
                .and_then(|_| csv.get_ref().get_ref().as_file().sync_data())
                .with_context(|| format!("cannot write in output folder {}", out.display()))?;
        }
        Ok(w)
    }

    /// Marks the folder as one shard of a split batch (recorded in `summary.json`).
    pub fn set_shard(&mut self, shard: ShardInfo) {
        self.shard = Some(shard);
    }

    /// Path of an input's JSON report.
    pub fn json_path(&self, input: &Input) -> PathBuf {
        self.out
            .join("images")
            .join(format!("{}.json", input.report_rel))
    }

    /// Adds one image's report: its JSON file now, its rows to the CSV files.
    pub fn add(&mut self, input: &Input, report: &ImageReport) -> Result<()> {
        let json = serde_json::to_vec(report)?;
        let path = self.json_path(input);
        // A report reused by --resume is already there, byte for byte: leave it untouched.
        if fs::read(&path).ok().as_deref() != Some(json.as_slice()) {
            write_atomic(&path, &json)?;
        }
        let mut row = report.row.clone();
        for cell in [
            &mut row.image,
            &mut row.error,
            &mut row.scale_file,
            &mut row.subject,
            &mut row.region,
            &mut row.visit,
        ] {
            *cell = neutralise_cell(cell);
        }
        self.images.serialize(&row)?;
        *self
            .scale_sources
            .entry(report.row.scale_source.clone())
            .or_default() += 1;
        self.groups.add(report);
        if report.row.status == "ok" {
            self.ok += 1;
            if report.row.um_per_px.is_some() {
                self.ok_scaled += 1;
                if self.ok_scaled == 1 {
                    self.pooled_px = Vec::new();
                }
            }
            for h in &report.hairs {
                let mut r = h.row.clone();
                r.image = neutralise_cell(&r.image);
                r.flag = neutralise_cell(&r.flag);
                self.hairs.serialize(&r)?;
                if let Some(w) = r.width_um {
                    self.pooled_um.push(w as f32);
                }
                if self.ok_scaled == 0 {
                    self.pooled_px.push(r.width_px as f32);
                }
            }
            self.hair_count += report.hairs.len();
        } else {
            self.failed.push(FailedImage {
                image: report.row.image.clone(),
                error: report.row.error.clone(),
            });
        }
        Ok(())
    }

    /// Records how many of the added reports were reused from an earlier run.
    pub fn set_reused(&mut self, n: usize) {
        self.reused = n;
    }

    /// Writes `summary.json` and moves the CSV files into place. `not_run` counts images
    /// skipped by an interruption.
    pub fn finish(self, not_run: usize) -> Result<BatchSummary> {
        let scaled = self.ok_scaled > 0;
        let pooled = if scaled {
            &self.pooled_um
        } else {
            &self.pooled_px
        };
        let widths: Vec<f64> = pooled.iter().map(|&w| w as f64).collect();
        let (unit, limits, bin, upper) = if scaled {
            (
                "um",
                Some((self.settings.thin_um, self.settings.terminal_um)),
                HISTOGRAM_BIN_UM,
                2.0 * self.settings.terminal_um,
            )
        } else {
            ("px", None, HISTOGRAM_BIN_PX, 10.0)
        };
        let summary = BatchSummary {
            tool: TOOL_VERSION.to_string(),
            disclaimer: DISCLAIMER.to_string(),
            settings: self.settings.clone(),
            images: self.ok + self.failed.len(),
            images_ok: self.ok,
            images_failed: self.failed.len(),
            images_not_run: not_run,
            images_reused: self.reused,
            hairs: self.hair_count,
            unit: unit.to_string(),
            pooled: WidthSummary::of(&widths, limits),
            histogram: Histogram::of(&widths, bin, upper, unit),
            failed: self.failed,
            pooled_images: if scaled { self.ok_scaled } else { self.ok },
            images_without_scale: self.ok - self.ok_scaled,
            scale_sources: self.scale_sources,
            groups: (!self.groups.is_empty()).then(|| self.groups.summary()),
            shard: self.shard,
        };
        if let Some(g) = &summary.groups {
            Groups::write_csv(&g.rows, &self.out.join("groups.csv"))?;
        }
        for (w, name) in [(self.images, "images.csv"), (self.hairs, "hairs.csv")] {
            let buf = w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("cannot write {name}: {e}"))?;
            let tmp = buf
                .into_inner()
                .map_err(|e| anyhow::anyhow!("cannot write {name}: {e}"))?;
            tmp.persist(self.out.join(name))
                .with_context(|| format!("cannot write {name}"))?;
        }
        write_atomic(
            &self.out.join("summary.json"),
            &serde_json::to_vec_pretty(&summary)?,
        )?;
        Ok(summary)
    }
}

/// One line of `--format jsonl`: an image's `images.csv` row fields (unneutralised), plus
/// `tool`, `warnings`, the per-hair widths `widths_px` (always) and `widths_um` (`null`
/// without a scale) in hair_id order, and `disclaimer`. No centrelines: they stay in the
/// per-image JSON report.
#[derive(Debug, Serialize)]
pub struct JsonlRecord<'a> {
    pub tool: &'a str,
    #[serde(flatten)]
    pub row: &'a ImageRow,
    pub warnings: &'a [String],
    pub widths_px: Vec<f64>,
    pub widths_um: Option<Vec<f64>>,
    pub disclaimer: &'a str,
}

/// The one-line JSON object (no trailing newline) printed on stdout for an image with
/// `--format jsonl`, as soon as it is finished.
pub fn jsonl_line(report: &ImageReport) -> String {
    let scaled = report.row.um_per_px.is_some();
    let rec = JsonlRecord {
        tool: &report.tool,
        row: &report.row,
        warnings: &report.warnings,
        widths_px: report.hairs.iter().map(|h| h.row.width_px).collect(),
        widths_um: scaled.then(|| report.hairs.iter().filter_map(|h| h.row.width_um).collect()),
        disclaimer: &report.disclaimer,
    };
    serde_json::to_string(&rec).expect("a report serialises")
}

/// Header row of a flat serde struct, from serializing its default-like field names.
fn csv_header<T: CsvColumns>() -> &'static [&'static str] {
    T::COLUMNS
}

/// Column names of the CSV row types, in field order.
pub trait CsvColumns {
    const COLUMNS: &'static [&'static str];
}

impl CsvColumns for ImageRow {
    const COLUMNS: &'static [&'static str] = &[
        "image",
        "status",
        "error",
        "width_px",
        "height_px",
        "um_per_px",
        "scale_source",
        "hair_count",
        "mean_um",
        "median_um",
        "sd_um",
        "cv",
        "thin_count",
        "thin_fraction",
        "intermediate_fraction",
        "terminal_fraction",
        "mean_px",
        "median_px",
        "sd_px",
        "flagged_count",
        "blur_sigma_px",
        "sha256",
        "scale_file",
        "subject",
        "region",
        "visit",
        "faint_limit",
    ];
}

impl CsvColumns for HairRow {
    const COLUMNS: &'static [&'static str] = &[
        "image",
        "hair_id",
        "width_um",
        "width_px",
        "width_sd_um",
        "width_sd_px",
        "length_um",
        "length_px",
        "x_start",
        "y_start",
        "x_end",
        "y_end",
        "class",
        "polarity",
        "contrast",
        "flag",
    ];
}

/// Reads a whole `images.csv` (for merge and tests).
pub fn read_images_csv(path: &Path) -> Result<Vec<ImageRow>> {
    let mut r = csv::Reader::from_reader(
        File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    r.deserialize()
        .map(|row| row.map_err(anyhow::Error::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_struct_fields() {
        // Serialising a row without headers must give as many fields as the header names.
        let mut w = csv::WriterBuilder::new()
            .has_headers(true)
            .from_writer(vec![]);
        w.serialize(ImageRow::default()).unwrap();
        let s = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(s.lines().next().unwrap(), ImageRow::COLUMNS.join(","));
        let mut w = csv::WriterBuilder::new()
            .has_headers(true)
            .from_writer(vec![]);
        w.serialize(HairRow {
            image: "a".into(),
            hair_id: 0,
            width_um: None,
            width_px: 1.0,
            width_sd_um: None,
            width_sd_px: 0.0,
            length_um: None,
            length_px: 1.0,
            x_start: 0.0,
            y_start: 0.0,
            x_end: 0.0,
            y_end: 0.0,
            class: None,
            polarity: crate::report::Polarity::Dark,
            contrast: 0.0,
            flag: String::new(),
        })
        .unwrap();
        let s = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(s.lines().next().unwrap(), HairRow::COLUMNS.join(","));
    }

    fn analysed(image: &str, scale: Option<f64>, widths_px: &[f64]) -> ImageReport {
        use crate::report::{Hair, ImageAnalysis, Polarity};
        let analysis = ImageAnalysis {
            width_px: 100,
            height_px: 80,
            blur_sigma_px: 1.0,
            faint_limit: 0.05,
            hairs: widths_px
                .iter()
                .map(|&w| Hair {
                    width_px: w,
                    width_sd_px: 0.1,
                    length_px: 40.0,
                    polarity: Polarity::Dark,
                    contrast: 0.3,
                    profiles: 10,
                    flag: None,
                    points: vec![[1.0, 2.0], [3.0, 4.0]],
                })
                .collect(),
            warnings: vec!["w1".into()],
        };
        let settings = Settings {
            um_per_px: scale,
            ..Settings::default()
        };
        let source = if scale.is_some() { "manifest" } else { "none" };
        ImageReport::from_analysis(image, &analysis, &settings, source, "ab12")
    }

    #[test]
    fn jsonl_line_shape() {
        let r = analysed("s/a.png", Some(4.0), &[5.0, 10.0]);
        let line = jsonl_line(&r);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["image"], "s/a.png");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["scale_source"], "manifest");
        assert_eq!(v["um_per_px"], 4.0);
        assert_eq!(v["hair_count"], 2);
        assert_eq!(v["sha256"], "ab12");
        assert_eq!(v["widths_px"], serde_json::json!([5.0, 10.0]));
        assert_eq!(v["widths_um"], serde_json::json!([20.0, 40.0]));
        assert_eq!(v["warnings"], serde_json::json!(["w1"]));
        assert!(v["tool"].as_str().unwrap().starts_with("trichometer "));
        assert_eq!(v["disclaimer"], DISCLAIMER);
        assert!(v.get("hairs").is_none() && v.get("points").is_none());
        // Every images.csv column is a key.
        for c in ImageRow::COLUMNS {
            assert!(v.get(*c).is_some(), "jsonl lacks {c}");
        }
        let v: serde_json::Value =
            serde_json::from_str(&jsonl_line(&analysed("b.png", None, &[3.0]))).unwrap();
        assert!(v["widths_um"].is_null() && v["mean_um"].is_null());
        assert_eq!(v["widths_px"], serde_json::json!([3.0]));
    }

    #[test]
    fn summary_pools_only_scaled_images_when_scales_are_mixed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        let mut w = ReportWriter::create(&out, &Settings::default()).unwrap();
        let inp = |n: &str| Input {
            path: n.into(),
            name: n.into(),
            report_rel: n.into(),
            problem: None,
        };
        let mut a = analysed("a.png", Some(2.0), &[10.0, 20.0]);
        a.row.subject = "S1".into();
        a.row.region = "frontal".into();
        w.add(&inp("a.png"), &a).unwrap();
        w.add(&inp("b.png"), &analysed("b.png", Some(5.0), &[4.0]))
            .unwrap();
        w.add(&inp("c.png"), &analysed("c.png", None, &[7.0, 8.0]))
            .unwrap();
        let s = w.finish(0).unwrap();
        assert_eq!(s.unit, "um");
        assert_eq!(s.pooled.count, 3);
        assert_eq!(s.pooled.mean, Some(80.0 / 3.0));
        assert_eq!(s.pooled_images, 2);
        assert_eq!(s.images_without_scale, 1);
        assert_eq!(s.scale_sources["manifest"], 2);
        assert_eq!(s.scale_sources["none"], 1);
        let g = s.groups.as_ref().unwrap();
        assert_eq!(g.rows.len(), 2);
        assert_eq!(g.rows[0].mean_um, Some(30.0));
        assert!(out.join("groups.csv").exists());
        let back: BatchSummary =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(back.groups, s.groups);
        assert_eq!(back.scale_sources, s.scale_sources);
        let rows = read_images_csv(&out.join("images.csv")).unwrap();
        assert_eq!(rows[0].subject, "S1");

        // No scale anywhere: pooled in px over all images, no groups file.
        let out2 = tmp.path().join("o2");
        let mut w = ReportWriter::create(&out2, &Settings::default()).unwrap();
        w.add(&inp("c.png"), &analysed("c.png", None, &[7.0, 8.0]))
            .unwrap();
        let s = w.finish(0).unwrap();
        assert_eq!((s.unit.as_str(), s.pooled.count), ("px", 2));
        assert_eq!(s.images_without_scale, 1);
        assert!(s.groups.is_none() && !out2.join("groups.csv").exists());
        let text = std::fs::read_to_string(out2.join("summary.json")).unwrap();
        assert!(!text.contains("\"groups\""));
    }

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(neutralise_cell("=cmd()"), "'=cmd()");
        assert_eq!(neutralise_cell("@x"), "'@x");
        assert_eq!(neutralise_cell("a=b"), "a=b");
    }
}
