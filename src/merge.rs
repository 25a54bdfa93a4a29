//! Combining report folders: `trichometer merge --out DIR SHARD_DIR...`.
//!
//! A batch split with `analyze --shard K/N` over several machines gives N report folders;
//! merging them gives the folder a single run on all the inputs would have written, byte
//! for byte: the per-image JSON reports are read back and fed, in path order, to the same
//! [`ReportWriter`] a run uses, so `images.csv`, `hairs.csv`, `images/**`, `summary.json`
//! and `groups.csv` are computed exactly as in one run.
//!
//! Refused (an error, nothing written): folders made with different settings or tool
//! versions, an image present in two folders, an interrupted shard (`images_not_run` > 0),
//! shards of different splits, and a split with a shard missing or given twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::batch::Input;
use crate::output::{neutralise_cell, read_images_csv, BatchSummary, ReportWriter, ShardInfo};
use crate::report::ImageReport;

/// One image's report found in a folder being merged.
#[derive(Debug, Clone)]
struct Entry {
    /// Index of the folder in the merge's argument list.
    folder: usize,
    /// Path of the JSON report relative to the folder's `images/`, without `.json`.
    report_rel: String,
}

#[derive(Deserialize)]
struct NameOnly {
    image: String,
}

fn read_summary(dir: &Path) -> Result<BatchSummary> {
    let path = dir.join("summary.json");
    let bytes = fs::read(&path).with_context(|| {
        format!(
            "{} is not a finished report folder (cannot read summary.json)",
            dir.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("cannot parse {}", path.display()))
}

/// The per-image JSON reports under `dir/images`, as paths relative to it without `.json`.
fn report_files(dir: &Path) -> Result<Vec<String>> {
    let root = dir.join("images");
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    for e in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let e = e.with_context(|| format!("cannot list {}", root.display()))?;
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e.path().strip_prefix(&root).expect("walked under root");
        let rel = crate::batch::display_path(rel);
        if let Some(stem) = rel.strip_suffix(".json") {
            out.push(stem.to_string());
        }
    }
    Ok(out)
}

/// Checks that the folders' shard records describe one whole split (or that none has one).
fn check_shards(dirs: &[PathBuf], summaries: &[BatchSummary], images: usize) -> Result<()> {
    let infos: Vec<Option<ShardInfo>> = summaries.iter().map(|s| s.shard).collect();
    if infos.iter().all(Option::is_none) {
        return Ok(());
    }
    if let Some(i) = infos.iter().position(Option::is_none) {
        bail!(
            "{} is a whole run, not a shard, but other folders are shards (--shard K/N); \
             merge the shards of one split, or only whole runs",
            dirs[i].display()
        );
    }
    let first = infos[0].expect("checked");
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for (dir, info) in dirs.iter().zip(&infos) {
        let info = info.expect("checked");
        if info.count != first.count || info.inputs_total != first.inputs_total {
            bail!(
                "{} is shard {}/{} of {} inputs but {} is shard {}/{} of {} inputs: \
                 they come from different splits",
                dir.display(),
                info.index,
                info.count,
                info.inputs_total,
                dirs[0].display(),
                first.index,
                first.count,
                first.inputs_total
            );
        }
        if let Some(other) = seen.insert(info.index, dir) {
            bail!(
                "shard {}/{} given twice: {} and {}",
                info.index,
                info.count,
                other.display(),
                dir.display()
            );
        }
    }
    let missing: Vec<String> = (1..=first.count)
        .filter(|k| !seen.contains_key(k))
        .map(|k| format!("{k}/{}", first.count))
        .collect();
    if !missing.is_empty() {
        bail!("shard(s) {} missing from the merge", missing.join(", "));
    }
    if images != first.inputs_total {
        bail!(
            "the shards hold {images} image(s) but the split had {} inputs",
            first.inputs_total
        );
    }
    Ok(())
}

/// Merges the report folders `dirs` into `out` (created if missing) and returns the merged
/// summary. See the module documentation for what is refused.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<BatchSummary> {
    if dirs.is_empty() {
        bail!("nothing to merge: give at least one report folder");
    }
    let out_canon = fs::canonicalize(out).ok();
    let mut summaries = Vec::new();
    for d in dirs {
        if out_canon.is_some() && fs::canonicalize(d).ok() == out_canon {
            bail!(
                "--out {} is one of the folders being merged; choose a new folder",
                out.display()
            );
        }
        let s = read_summary(d)?;
        if s.images_not_run > 0 {
            bail!(
                "{} is incomplete: {} image(s) were not run (interrupted); complete it with \
                 `analyze --resume` before merging",
                d.display(),
                s.images_not_run
            );
        }
        summaries.push(s);
    }
    let first = &summaries[0];
    for (d, s) in dirs.iter().zip(&summaries).skip(1) {
        if s.tool != first.tool {
            bail!(
                "{} was made by {} but {} by {}: merge only reports of one tool version",
                d.display(),
                s.tool,
                dirs[0].display(),
                first.tool
            );
        }
        if s.settings != first.settings {
            bail!(
                "{} was made with different settings than {} ({} vs {}): merge only reports \
                 made with the same settings",
                d.display(),
                dirs[0].display(),
                serde_json::to_string(&s.settings)?,
                serde_json::to_string(&first.settings)?
            );
        }
    }

    // Every image of every folder, by name; an image in two folders is refused.
    let mut by_name: BTreeMap<String, Entry> = BTreeMap::new();
    let mut rel_owner: HashMap<String, String> = HashMap::new();
    for (folder, d) in dirs.iter().enumerate() {
        let rows = read_images_csv(&d.join("images.csv"))?;
        let listed: HashSet<&str> = rows.iter().map(|r| r.image.as_str()).collect();
        if listed.len() != rows.len() {
            bail!("{}: images.csv lists an image twice", d.display());
        }
        let mut found = 0usize;
        for rel in report_files(d)? {
            let path = d.join("images").join(format!("{rel}.json"));
            let bytes =
                fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let name = serde_json::from_slice::<NameOnly>(&bytes)
                .with_context(|| format!("{} is not an image report", path.display()))?
                .image;
            if !listed.contains(neutralise_cell(&name).as_str()) {
                continue; // left over from an earlier run into the same folder
            }
            found += 1;
            if let Some(prev) = by_name.get(&name) {
                bail!(
                    "image {name} is in both {} and {}: the folders overlap",
                    dirs[prev.folder].display(),
                    d.display()
                );
            }
            if let Some(other) = rel_owner.insert(rel.to_lowercase(), name.clone()) {
                bail!(
                    "images {other} and {name} would both be reported at images/{rel}.json; \
                     merge folders of disjoint inputs"
                );
            }
            by_name.insert(
                name,
                Entry {
                    folder,
                    report_rel: rel,
                },
            );
        }
        if found != rows.len() || summaries[folder].images != rows.len() {
            bail!(
                "{}: images.csv lists {} image(s), summary.json {}, and images/ holds {} of \
                 their reports: the folder is damaged or was written by an unfinished run",
                d.display(),
                rows.len(),
                summaries[folder].images,
                found
            );
        }
    }
    check_shards(dirs, &summaries, by_name.len())?;

    // Feed the reports in path order (the order of discovery: byte-wise by name).
    let mut writer = ReportWriter::create(out, &first.settings)?;
    for (name, e) in &by_name {
        let path = dirs[e.folder]
            .join("images")
            .join(format!("{}.json", e.report_rel));
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let report: ImageReport = serde_json::from_slice(&bytes)
            .with_context(|| format!("cannot parse {}", path.display()))?;
        let input = Input {
            path,
            name: name.clone(),
            report_rel: e.report_rel.clone(),
            problem: None,
        };
        writer.add(&input, &report)?;
    }
    writer.finish(0)
}
