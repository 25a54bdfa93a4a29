//! The report folder: `images.csv`, `hairs.csv`, `images/<path>.json` and `summary.json`
//! (see CONTRACT.md). Rows are streamed to temporary files and renamed into place at the
//! end, and every JSON file is written to a temporary file and renamed, so a file is
//! either whole or absent.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::batch::Input;
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
    pub hairs: usize,
    /// Unit of `pooled` and `histogram`: `um` with a scale, `px` without.
    pub unit: String,
    /// Width distribution pooled over the hairs of all ok images.
    pub pooled: WidthSummary,
    pub histogram: Histogram,
    pub failed: Vec<FailedImage>,
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
    /// Per-hair widths of ok images (µm with a scale, px without), for the pooled figures.
    pooled: Vec<f32>,
    ok: usize,
    failed: Vec<FailedImage>,
    hair_count: usize,
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
            pooled: Vec::new(),
            ok: 0,
            failed: Vec::new(),
            hair_count: 0,
        };
        // Headers even when no image follows.
        w.images.write_record(csv_header::<ImageRow>())?;
        w.hairs.write_record(csv_header::<HairRow>())?;
        Ok(w)
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
        write_atomic(&self.json_path(input), &json)?;
        let mut row = report.row.clone();
        row.image = neutralise_cell(&row.image);
        row.error = neutralise_cell(&row.error);
        self.images.serialize(&row)?;
        if report.row.status == "ok" {
            self.ok += 1;
            for h in &report.hairs {
                let mut r = h.row.clone();
                r.image = neutralise_cell(&r.image);
                r.flag = neutralise_cell(&r.flag);
                self.hairs.serialize(&r)?;
                self.pooled.push(r.width_um.unwrap_or(r.width_px) as f32);
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

    /// Writes `summary.json` and moves the CSV files into place. `not_run` counts images
    /// skipped by an interruption.
    pub fn finish(self, not_run: usize) -> Result<BatchSummary> {
        let scaled = self.settings.um_per_px.is_some();
        let widths: Vec<f64> = self.pooled.iter().map(|&w| w as f64).collect();
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
            hairs: self.hair_count,
            unit: unit.to_string(),
            pooled: WidthSummary::of(&widths, limits),
            histogram: Histogram::of(&widths, bin, upper, unit),
            failed: self.failed,
        };
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

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(neutralise_cell("=cmd()"), "'=cmd()");
        assert_eq!(neutralise_cell("@x"), "'@x");
        assert_eq!(neutralise_cell("a=b"), "a=b");
    }
}
