//! Figures per subject and scalp region, from the manifest's `subject`, `region` and
//! `visit` tags: `groups.csv` and the `groups` field of `summary.json`.
//!
//! These are plain figures for research (counts, widths, shares), never a diagnosis.
//!
//! Grouping rules:
//! - an image is in the groups when it was analysed (`ok`) and has a `subject` or a
//!   `region` tag; untagged images are only in the pooled summary;
//! - a group is (subject, visit, region): visits are never pooled, so before/after images
//!   of one subject stay apart. Subjects and visits are compared exactly; regions
//!   case-insensitively (and written in lower case), surrounding spaces ignored;
//! - widths are the per-hair widths in µm of the group's images that have a scale; images
//!   without a scale are counted in `images_without_scale` and add no hairs;
//! - the frontal/occipital comparison is made per (subject, visit) when both a region
//!   named `frontal` and one named `occipital` (case-insensitive) have measured hairs.
//!
//! `groups.csv` columns (one row per subject × visit × region, `level` = `region`, then one
//! row per subject × visit over all its regions, `level` = `subject`, region empty):
//!
//! | column | meaning |
//! | --- | --- |
//! | level | `region` or `subject` |
//! | subject, visit, region | the tags (empty when not given) |
//! | images | analysed images in the group |
//! | images_without_scale | of those, images measured in pixels only (no hairs counted) |
//! | hairs | hairs with a width in µm |
//! | mean_um, median_um, sd_um | of the per-hair widths |
//! | cv | sd_um / mean_um (a spread figure, not a clinical standard) |
//! | thin_count, thin_fraction | hairs below the thin limit (`--thin-um`) and their share |
//! | frontal_occipital_mean_ratio | subject rows: frontal mean_um / occipital mean_um |
//! | thin_fraction_difference_pp | subject rows: frontal − occipital thin fraction, percentage points |
//! | hairs_note | set when a region has fewer than 50 measured hairs (the minimum per region used in the literature) |

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::output::{neutralise_cell, write_atomic};
use crate::report::{round_to, ImageReport};
use crate::stats::WidthSummary;

/// Fewest measured hairs per scalp region for a region comparison (Rakowska et al. 2009).
pub const MIN_HAIRS_PER_REGION: usize = 50;

/// What the group figures are, stored with them.
pub const GROUPS_NOTE: &str = "Figures per subject, visit and scalp region, for research only; \
not a diagnosis. frontal_occipital_mean_ratio = frontal mean width / occipital mean width; \
thin_fraction_difference_pp = frontal thin fraction - occipital thin fraction, in percentage \
points.";

/// One row of `groups.csv` (see the module documentation for the columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    pub level: String,
    pub subject: String,
    pub visit: String,
    pub region: String,
    pub images: usize,
    pub images_without_scale: usize,
    pub hairs: usize,
    pub mean_um: Option<f64>,
    pub median_um: Option<f64>,
    pub sd_um: Option<f64>,
    pub cv: Option<f64>,
    pub thin_count: usize,
    pub thin_fraction: Option<f64>,
    pub frontal_occipital_mean_ratio: Option<f64>,
    pub thin_fraction_difference_pp: Option<f64>,
    pub hairs_note: String,
}

/// Column names of [`GroupRow`], in field order.
pub const GROUP_COLUMNS: &[&str] = &[
    "level",
    "subject",
    "visit",
    "region",
    "images",
    "images_without_scale",
    "hairs",
    "mean_um",
    "median_um",
    "sd_um",
    "cv",
    "thin_count",
    "thin_fraction",
    "frontal_occipital_mean_ratio",
    "thin_fraction_difference_pp",
    "hairs_note",
];

/// The `groups` field of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupsSummary {
    pub note: String,
    pub thin_um: f64,
    pub min_hairs_per_region: usize,
    pub rows: Vec<GroupRow>,
}

#[derive(Debug, Default)]
struct Acc {
    images: usize,
    images_without_scale: usize,
    widths_um: Vec<f64>,
}

/// Accumulates per-hair widths by (subject, visit, region). Holds only widths (8 bytes per
/// hair), never whole reports.
#[derive(Debug)]
pub struct Groups {
    thin_um: f64,
    cells: BTreeMap<(String, String, String), Acc>,
}

impl Groups {
    pub fn new(thin_um: f64) -> Groups {
        Groups {
            thin_um,
            cells: BTreeMap::new(),
        }
    }

    /// No tagged image was added.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Adds one image's report (ignored when it failed or carries no subject/region).
    pub fn add(&mut self, report: &ImageReport) {
        let row = &report.row;
        let (subject, region) = (row.subject.trim(), row.region.trim());
        if row.status != "ok" || (subject.is_empty() && region.is_empty()) {
            return;
        }
        let key = (
            subject.to_string(),
            row.visit.trim().to_string(),
            region.to_lowercase(),
        );
        let acc = self.cells.entry(key).or_default();
        acc.images += 1;
        if row.um_per_px.is_none() {
            acc.images_without_scale += 1;
        } else {
            acc.widths_um
                .extend(report.hairs.iter().filter_map(|h| h.row.width_um));
        }
    }

    fn figures(&self, level: &str, key: (&str, &str, &str), accs: &[&Acc]) -> GroupRow {
        let widths: Vec<f64> = accs
            .iter()
            .flat_map(|a| a.widths_um.iter().copied())
            .collect();
        let s = WidthSummary::of(&widths, Some((self.thin_um, f64::INFINITY)));
        let hairs = widths.len();
        GroupRow {
            level: level.to_string(),
            subject: key.0.to_string(),
            visit: key.1.to_string(),
            region: key.2.to_string(),
            images: accs.iter().map(|a| a.images).sum(),
            images_without_scale: accs.iter().map(|a| a.images_without_scale).sum(),
            hairs,
            mean_um: s.mean.map(|v| round_to(v, 3)),
            median_um: s.median.map(|v| round_to(v, 3)),
            sd_um: s.sd.map(|v| round_to(v, 3)),
            cv: s.cv.map(|v| round_to(v, 4)),
            thin_count: s.thin_count.unwrap_or(0),
            thin_fraction: s.thin_fraction.map(|v| round_to(v, 4)),
            frontal_occipital_mean_ratio: None,
            thin_fraction_difference_pp: None,
            hairs_note: if level == "region" && hairs < MIN_HAIRS_PER_REGION {
                format!("fewer than {MIN_HAIRS_PER_REGION} measured hairs")
            } else {
                String::new()
            },
        }
    }

    /// The rows of `groups.csv`: per (subject, visit) its region rows, then its subject row
    /// with the frontal/occipital comparison when both regions have hairs.
    pub fn rows(&self) -> Vec<GroupRow> {
        let mut out = Vec::new();
        let mut subjects: BTreeMap<(&str, &str), Vec<(&str, &Acc)>> = BTreeMap::new();
        for ((s, v, r), acc) in &self.cells {
            subjects
                .entry((s.as_str(), v.as_str()))
                .or_default()
                .push((r.as_str(), acc));
        }
        for ((subject, visit), regions) in subjects {
            let mut region_rows = Vec::new();
            for (region, acc) in &regions {
                region_rows.push(self.figures("region", (subject, visit, region), &[acc]));
            }
            let all: Vec<&Acc> = regions.iter().map(|(_, a)| *a).collect();
            let mut row = self.figures("subject", (subject, visit, ""), &all);
            let find = |name: &str| region_rows.iter().find(|r| r.region == name);
            if let (Some(f), Some(o)) = (find("frontal"), find("occipital")) {
                let widths = |region: &str| {
                    &self.cells[&(subject.to_string(), visit.to_string(), region.to_string())]
                        .widths_um
                };
                let (fw, ow) = (widths("frontal"), widths("occipital"));
                if !fw.is_empty() && !ow.is_empty() {
                    // From unrounded figures.
                    let mean = |w: &[f64]| w.iter().sum::<f64>() / w.len() as f64;
                    let thin = |w: &[f64]| {
                        w.iter().filter(|&&x| x < self.thin_um).count() as f64 / w.len() as f64
                    };
                    if mean(ow) > 0.0 {
                        row.frontal_occipital_mean_ratio = Some(round_to(mean(fw) / mean(ow), 4));
                    }
                    row.thin_fraction_difference_pp =
                        Some(round_to(100.0 * (thin(fw) - thin(ow)), 2));
                    let short: Vec<String> = [f, o]
                        .iter()
                        .filter(|r| r.hairs < MIN_HAIRS_PER_REGION)
                        .map(|r| format!("{} has {} measured hairs", r.region, r.hairs))
                        .collect();
                    if !short.is_empty() {
                        row.hairs_note = format!(
                            "{}; the comparison needs at least {MIN_HAIRS_PER_REGION} per region",
                            short.join(", ")
                        );
                    }
                }
            }
            out.extend(region_rows);
            out.push(row);
        }
        out
    }

    /// The `groups` field of `summary.json`.
    pub fn summary(&self) -> GroupsSummary {
        GroupsSummary {
            note: GROUPS_NOTE.to_string(),
            thin_um: self.thin_um,
            min_hairs_per_region: MIN_HAIRS_PER_REGION,
            rows: self.rows(),
        }
    }

    /// Writes `groups.csv` (whole or not at all).
    pub fn write_csv(rows: &[GroupRow], path: &Path) -> Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(GROUP_COLUMNS)?;
        for r in rows {
            let mut r = r.clone();
            r.subject = neutralise_cell(&r.subject);
            r.visit = neutralise_cell(&r.visit);
            r.region = neutralise_cell(&r.region);
            w.serialize(&r)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write groups.csv: {e}"))?;
        write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{HairReport, HairRow, ImageRow, Polarity};
    use crate::settings::Settings;

    fn report(subject: &str, region: &str, scale: Option<f64>, widths_um: &[f64]) -> ImageReport {
        let mut r = ImageReport::failed("x", "", &Settings::default(), "none", "");
        r.row = ImageRow {
            image: "x".into(),
            status: "ok".into(),
            um_per_px: scale,
            subject: subject.into(),
            region: region.into(),
            ..Default::default()
        };
        r.hairs = widths_um
            .iter()
            .enumerate()
            .map(|(i, &w)| HairReport {
                row: HairRow {
                    image: "x".into(),
                    hair_id: i,
                    width_um: scale.map(|_| w),
                    width_px: w,
                    width_sd_um: None,
                    width_sd_px: 0.0,
                    length_um: None,
                    length_px: 50.0,
                    x_start: 0.0,
                    y_start: 0.0,
                    x_end: 0.0,
                    y_end: 0.0,
                    class: None,
                    polarity: Polarity::Dark,
                    contrast: 0.1,
                    flag: String::new(),
                },
                points: vec![],
            })
            .collect();
        r
    }

    #[test]
    fn region_rows_subject_rows_and_comparison() {
        let mut g = Groups::new(30.0);
        // S1 frontal: 60 hairs, 15 at 20 µm and 45 at 60 µm: mean 50, thin 25%.
        let mut f = vec![20.0; 15];
        f.extend(vec![60.0; 45]);
        g.add(&report("S1", "Frontal", Some(4.0), &f[..30]));
        g.add(&report("S1", " frontal ", Some(4.0), &f[30..]));
        // S1 occipital: 50 hairs at 50 (thin 0) and 10 at 25 (thin): mean 45.8333, thin 1/6.
        let mut o = vec![50.0; 50];
        o.extend(vec![25.0; 10]);
        g.add(&report("S1", "OCCIPITAL", Some(4.0), &o));
        // Unscaled image: counted, no hairs.
        g.add(&report("S1", "occipital", None, &[5.0, 6.0]));
        // S2 has only a frontal region, and few hairs.
        g.add(&report("S2", "frontal", Some(3.0), &[40.0, 20.0]));
        // Untagged and failed images are left out.
        g.add(&report("", "", Some(3.0), &[40.0]));
        let mut bad = report("S3", "frontal", Some(3.0), &[40.0]);
        bad.row.status = "error".into();
        g.add(&bad);

        let rows = g.rows();
        let levels: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.level.as_str(), r.subject.as_str(), r.region.as_str()))
            .collect();
        assert_eq!(
            levels,
            vec![
                ("region", "S1", "frontal"),
                ("region", "S1", "occipital"),
                ("subject", "S1", ""),
                ("region", "S2", "frontal"),
                ("subject", "S2", ""),
            ]
        );
        let fr = &rows[0];
        assert_eq!((fr.images, fr.hairs, fr.thin_count), (2, 60, 15));
        assert_eq!(fr.mean_um, Some(50.0));
        assert_eq!(fr.thin_fraction, Some(0.25));
        assert_eq!(fr.hairs_note, "");
        let oc = &rows[1];
        assert_eq!((oc.images, oc.images_without_scale, oc.hairs), (2, 1, 60));
        let s1 = &rows[2];
        assert_eq!(s1.hairs, 120);
        assert_eq!(s1.images, 4);
        let ratio = 50.0 / (2750.0 / 60.0);
        assert_eq!(s1.frontal_occipital_mean_ratio, Some(round_to(ratio, 4)));
        assert_eq!(
            s1.thin_fraction_difference_pp,
            Some(round_to(100.0 * (0.25 - 1.0 / 6.0), 2))
        );
        assert_eq!(s1.hairs_note, "");
        assert_eq!(rows[1].frontal_occipital_mean_ratio, None);
        // S2: no occipital, no comparison; the short region is noted.
        assert_eq!(rows[3].hairs_note, "fewer than 50 measured hairs");
        assert_eq!(rows[4].frontal_occipital_mean_ratio, None);
        assert_eq!(rows[4].thin_fraction, Some(0.5));
        assert!(rows[4].sd_um.is_some() && rows[4].cv.is_some());
    }

    #[test]
    fn short_regions_are_noted_on_the_comparison_and_visits_stay_apart() {
        let mut g = Groups::new(30.0);
        let mut r = report("A", "frontal", Some(2.0), &[40.0; 10]);
        r.row.visit = "1".into();
        g.add(&r);
        let mut r = report("A", "occipital", Some(2.0), &[80.0; 60]);
        r.row.visit = "1".into();
        g.add(&r);
        let mut r = report("A", "occipital", Some(2.0), &[20.0; 60]);
        r.row.visit = "2".into();
        g.add(&r);
        let rows = g.rows();
        assert_eq!(rows.len(), 5);
        let s = rows.iter().find(|r| r.level == "subject" && r.visit == "1");
        let s = s.unwrap();
        assert_eq!(s.frontal_occipital_mean_ratio, Some(0.5));
        assert_eq!(s.thin_fraction_difference_pp, Some(0.0));
        assert!(s.hairs_note.contains("frontal has 10 measured hairs"));
        let s2 = rows.iter().find(|r| r.level == "subject" && r.visit == "2");
        assert_eq!(s2.unwrap().frontal_occipital_mean_ratio, None);
    }

    #[test]
    fn csv_header_matches_fields() {
        let mut g = Groups::new(30.0);
        g.add(&report("=S1", "frontal", Some(2.0), &[40.0]));
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("groups.csv");
        Groups::write_csv(&g.rows(), &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), GROUP_COLUMNS.join(","));
        let first = lines.next().unwrap();
        assert!(
            first.starts_with("region,'=S1,,frontal,1,0,1,40.0,"),
            "{first}"
        );
        // Same number of fields on every row.
        let mut r = csv::Reader::from_reader(text.as_bytes());
        for rec in r.records() {
            assert_eq!(rec.unwrap().len(), GROUP_COLUMNS.len());
        }
    }
}
