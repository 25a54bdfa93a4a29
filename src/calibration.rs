//! Where each image's scale (µm per pixel) and study tags come from.
//!
//! Three sources, in this order of precedence:
//!
//! 1. **flag**: `--um-per-px F` applies to every image of the run.
//! 2. **manifest**: `--manifest FILE`, a CSV file with the columns `image`, `um_per_px` and
//!    optionally `subject`, `region`, `visit` (header names are case-insensitive; other
//!    columns are ignored, so notes may be kept in the same file). An empty `um_per_px`
//!    cell is allowed: the row then only tags the image and its scale falls through to the
//!    folder file. The tags apply whatever source gives the scale.
//! 3. **folder**: a file `trichometer.toml` holding `um_per_px = 4.2`, looked for in the
//!    image's folder, then in each parent folder up to and including the input folder
//!    given on the command line (never above it). For an image file given directly on the
//!    command line only its own folder is searched. The nearest file wins.
//! 4. **none**: widths in pixels only; the binary says so on stderr.
//!
//! A manifest row is matched to an image by its `image` cell (`\` read as `/`, a leading
//! `./` ignored), compared with the image's path as walked (the `image` column of
//! `images.csv`):
//!
//! - equal to the whole path, or
//! - equal to a tail of the path that starts at a folder boundary: `a/b.png` matches
//!   `study/a/b.png` but not `study/xa/b.png`; a bare file name `b.png` is such a tail.
//!
//! When several rows match one image, the longest (most specific) row wins. A row that
//! would be the match of two or more images is an error (ambiguous: give more of the path),
//! as are two rows with the same `image`, a missing `image` or `um_per_px` column, an empty
//! `image` cell and a `um_per_px` that is not a positive number; errors name the line.
//! Rows that match no image are reported as warnings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::batch::Input;
use crate::report::ImageReport;
use crate::settings::Settings;

/// Name of the per-folder calibration file.
pub const FOLDER_FILE: &str = "trichometer.toml";

/// A problem with a calibration file.
#[derive(Debug, Error)]
pub enum CalibrationError {
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("manifest {path}: {message}")]
    Manifest { path: String, message: String },
}

/// Where an image's scale came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScaleSource {
    Flag,
    Manifest,
    /// The `trichometer.toml` file that gave the scale.
    Folder(PathBuf),
    #[default]
    None,
}

impl ScaleSource {
    /// The `scale_source` column: `flag`, `manifest`, `folder` or `none`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScaleSource::Flag => "flag",
            ScaleSource::Manifest => "manifest",
            ScaleSource::Folder(_) => "folder",
            ScaleSource::None => "none",
        }
    }
}

/// One row of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The `image` cell, normalised (`/`-separated, no leading `./`).
    pub image: String,
    pub um_per_px: Option<f64>,
    pub subject: Option<String>,
    pub region: Option<String>,
    pub visit: Option<String>,
    /// 1-based line in the file.
    pub line: u64,
}

/// A loaded manifest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    /// The file it was read from (`/`-separated), for messages and reports.
    pub source: String,
    pub entries: Vec<ManifestEntry>,
    by_image: HashMap<String, usize>,
}

/// `\` → `/`, leading `./` (repeated) and trailing `/` removed, surrounding spaces trimmed.
fn normalise(p: &str) -> String {
    let mut s = p.trim().replace('\\', "/");
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_string();
    }
    while s.len() > 1 && s.ends_with('/') {
        s.pop();
    }
    s
}

fn cell(v: Option<&str>) -> Option<String> {
    v.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

impl Manifest {
    /// Reads a manifest CSV file (UTF-8, a byte-order mark is accepted).
    pub fn load(path: &Path) -> Result<Manifest, CalibrationError> {
        let shown = crate::batch::display_path(path);
        let bytes = std::fs::read(path).map_err(|source| CalibrationError::Read {
            path: shown.clone(),
            source,
        })?;
        Manifest::parse(&bytes, &shown)
    }

    /// Parses manifest CSV text; `source` names it in messages.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Manifest, CalibrationError> {
        let err = |message: String| CalibrationError::Manifest {
            path: source.to_string(),
            message,
        };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| err(format!("cannot read the header row: {e}")))?
            .clone();
        let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let image_col = find("image").ok_or_else(|| err("no `image` column".into()))?;
        let scale_col = find("um_per_px").ok_or_else(|| err("no `um_per_px` column".into()))?;
        let (subject_col, region_col, visit_col) = (find("subject"), find("region"), find("visit"));
        let mut m = Manifest {
            source: source.to_string(),
            ..Default::default()
        };
        let (mut newlines, mut counted_to) = (0u64, 0usize);
        for record in reader.records() {
            let record = record.map_err(|e| err(format!("bad CSV: {e}")))?;
            // 1-based line of the record's start (blank lines counted, unlike csv's own).
            let at = record
                .position()
                .map_or(counted_to, |p| (p.byte() as usize).min(bytes.len()))
                .max(counted_to);
            // csv's position may be at blank lines skipped before the record.
            let mut at = at;
            while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
                at += 1;
            }
            newlines += bytes[counted_to..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            counted_to = at;
            let line = newlines + 1;
            if record.iter().all(|c| c.is_empty()) {
                continue;
            }
            let image = normalise(record.get(image_col).unwrap_or(""));
            if image.is_empty() {
                return Err(err(format!("line {line}: empty `image` cell")));
            }
            let um_per_px = match record.get(scale_col).unwrap_or("") {
                "" => None,
                s => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                    _ => {
                        return Err(err(format!(
                            "line {line}: um_per_px `{s}` is not a positive number"
                        )))
                    }
                },
            };
            if let Some(&prev) = m.by_image.get(&image) {
                return Err(err(format!(
                    "line {line}: image `{image}` is already listed on line {}",
                    m.entries[prev].line
                )));
            }
            let get = |c: Option<usize>| cell(c.and_then(|c| record.get(c)));
            m.by_image.insert(image.clone(), m.entries.len());
            m.entries.push(ManifestEntry {
                image,
                um_per_px,
                subject: get(subject_col),
                region: get(region_col),
                visit: get(visit_col),
                line,
            });
        }
        Ok(m)
    }

    /// The row for an image name (path as walked): exact, else the longest row that is a
    /// tail of the name starting at a folder boundary.
    pub fn lookup(&self, name: &str) -> Option<&ManifestEntry> {
        let name = normalise(name);
        if let Some(&i) = self.by_image.get(&name) {
            return Some(&self.entries[i]);
        }
        // Tails of `name` at folder boundaries, longest first.
        let mut start = 0;
        while let Some(k) = name[start..].find('/') {
            start += k + 1;
            if let Some(&i) = self.by_image.get(&name[start..]) {
                return Some(&self.entries[i]);
            }
        }
        None
    }
}

/// Cache of `trichometer.toml` files by folder, bounded by the command line's inputs.
#[derive(Debug, Default)]
pub struct FolderScales {
    roots: Vec<PathBuf>,
    cache: HashMap<PathBuf, Result<Option<f64>, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderFile {
    um_per_px: f64,
}

impl FolderScales {
    /// `roots`: the inputs given on the command line (folders and files).
    pub fn new(roots: &[PathBuf]) -> FolderScales {
        FolderScales {
            roots: roots.to_vec(),
            cache: HashMap::new(),
        }
    }

    /// The scale of the nearest `trichometer.toml` for an image at `image`, with the file's
    /// path; `Err` when the nearest file cannot be read or is invalid. Files are read once
    /// per folder and cached.
    pub fn lookup(&mut self, image: &Path) -> Result<Option<(f64, PathBuf)>, String> {
        let cache = &mut self.cache;
        Self::walk(&self.roots, image, |d, file| {
            cache
                .entry(d.to_path_buf())
                .or_insert_with(|| read_folder_file(file))
                .clone()
        })
    }

    /// As [`lookup`](Self::lookup) without filling the cache: folders already looked up
    /// are answered from it, any other folder's file is read again (a batch looks every
    /// input up once with [`lookup`](Self::lookup) first, so that does not happen there).
    pub fn lookup_cached(&self, image: &Path) -> Result<Option<(f64, PathBuf)>, String> {
        Self::walk(&self.roots, image, |d, file| match self.cache.get(d) {
            Some(found) => found.clone(),
            None => read_folder_file(file),
        })
    }

    /// Walks from the image's folder up to its root, asking `scale_in(folder, file)` for
    /// each folder's file; the nearest file found wins.
    fn walk(
        roots: &[PathBuf],
        image: &Path,
        mut scale_in: impl FnMut(&Path, &Path) -> Result<Option<f64>, String>,
    ) -> Result<Option<(f64, PathBuf)>, String> {
        // The deepest folder given on the command line that holds this image.
        let root = roots
            .iter()
            .filter(|r| r.as_path() != image && image.starts_with(r))
            .max_by_key(|r| r.components().count());
        let mut dir = image.parent();
        while let Some(d) = dir {
            let file = if d.as_os_str().is_empty() {
                PathBuf::from(FOLDER_FILE)
            } else {
                d.join(FOLDER_FILE)
            };
            if let Some(v) = scale_in(d, &file)? {
                return Ok(Some((v, file)));
            }
            match root {
                Some(r) if d != r.as_path() && d.starts_with(r) => dir = d.parent(),
                _ => break,
            }
        }
        Ok(None)
    }
}

fn read_folder_file(file: &Path) -> Result<Option<f64>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            if !file.exists() {
                return Ok(None);
            }
            return Err(format!("cannot read {}: {e}", file.display()));
        }
    };
    let parsed: FolderFile = toml::from_str(&text).map_err(|e| {
        crate::report::one_line(&format!(
            "{}: expected `um_per_px = <positive number>`: {e}",
            crate::batch::display_path(file)
        ))
    })?;
    if parsed.um_per_px.is_finite() && parsed.um_per_px > 0.0 {
        Ok(Some(parsed.um_per_px))
    } else {
        Err(format!(
            "{}: um_per_px must be a positive number, got {}",
            crate::batch::display_path(file),
            parsed.um_per_px
        ))
    }
}

/// One image's scale, where it came from, and its study tags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedScale {
    pub um_per_px: Option<f64>,
    pub source: ScaleSource,
    pub subject: Option<String>,
    pub region: Option<String>,
    pub visit: Option<String>,
    /// The manifest line that matched this image, if any.
    pub manifest_line: Option<u64>,
    /// The file the scale came from (the manifest or a `trichometer.toml`), `/`-separated;
    /// empty for the flag or no scale.
    pub scale_file: String,
    /// A calibration file that applies to this image is broken: the image is not analysed
    /// (reported as an error row with this reason).
    pub problem: Option<String>,
}

/// The scale of one image by the precedence flag > manifest > folder file > none, and its
/// manifest tags.
pub fn resolve_scale(
    input: &Input,
    flag: Option<f64>,
    manifest: Option<&Manifest>,
    folder_cache: &mut FolderScales,
) -> ResolvedScale {
    resolve_with(input, flag, manifest, |p| folder_cache.lookup(p))
}

/// [`resolve_scale`] with the folder files looked up by `folder`.
fn resolve_with(
    input: &Input,
    flag: Option<f64>,
    manifest: Option<&Manifest>,
    folder: impl FnOnce(&Path) -> Result<Option<(f64, PathBuf)>, String>,
) -> ResolvedScale {
    let entry = manifest.and_then(|m| m.lookup(&input.name));
    let mut r = ResolvedScale {
        subject: entry.and_then(|e| e.subject.clone()),
        region: entry.and_then(|e| e.region.clone()),
        visit: entry.and_then(|e| e.visit.clone()),
        manifest_line: entry.map(|e| e.line),
        ..Default::default()
    };
    if let Some(f) = flag {
        r.um_per_px = Some(f);
        r.source = ScaleSource::Flag;
    } else if let Some(s) = entry.and_then(|e| e.um_per_px) {
        r.um_per_px = Some(s);
        r.source = ScaleSource::Manifest;
        r.scale_file = manifest.map(|m| m.source.clone()).unwrap_or_default();
    } else {
        match folder(&input.path) {
            Ok(Some((s, file))) => {
                r.um_per_px = Some(s);
                r.scale_file = crate::batch::display_path(&file);
                r.source = ScaleSource::Folder(file);
            }
            Ok(None) => {}
            Err(e) => r.problem = Some(e),
        }
    }
    r
}

/// The scales of a whole batch. Nothing is kept per input: [`Calibration::get`] resolves
/// an input's scale when it is analysed (the folder files are read once, by
/// [`resolve_all`], and cached per folder), so a batch's memory does not grow with its
/// length.
#[derive(Debug, Default)]
pub struct Calibration<'m> {
    flag: Option<f64>,
    manifest: Option<&'m Manifest>,
    folders: FolderScales,
    /// Things to tell the user (unmatched manifest rows, images without a scale).
    pub warnings: Vec<String>,
    /// Images analysed in pixels only.
    pub without_scale: usize,
}

impl Calibration<'_> {
    /// The resolved scale of an input, by [`resolve_scale`] (the same for every call).
    pub fn get(&self, input: &Input) -> ResolvedScale {
        resolve_with(input, self.flag, self.manifest, |p| {
            self.folders.lookup_cached(p)
        })
    }
}

/// Resolves every input's scale once, for the checks and warnings that need the whole
/// list, and reads every folder file that applies; `roots` are the inputs given on the
/// command line. Fails when a manifest row matches more than one image.
pub fn resolve_all<'m, I: std::borrow::Borrow<Input>>(
    inputs: impl IntoIterator<Item = I>,
    roots: &[PathBuf],
    flag: Option<f64>,
    manifest: Option<&'m Manifest>,
) -> Result<Calibration<'m>, CalibrationError> {
    let mut folders = FolderScales::new(roots);
    let mut cal = Calibration {
        flag,
        manifest,
        ..Default::default()
    };
    // The image matched by each manifest row (one per row, not per input).
    let mut used: HashMap<u64, String> = HashMap::new();
    let mut count = 0usize;
    for input in inputs {
        let input = input.borrow();
        count += 1;
        let r = resolve_scale(input, flag, manifest, &mut folders);
        if let (Some(line), Some(m)) = (r.manifest_line, manifest) {
            if let Some(other) = used.insert(line, input.name.clone()) {
                return Err(CalibrationError::Manifest {
                    path: m.source.clone(),
                    message: format!(
                        "line {line}: `{}` matches both `{other}` and `{}`; give more of the path",
                        m.entries
                            .iter()
                            .find(|e| e.line == line)
                            .map(|e| e.image.as_str())
                            .unwrap_or(""),
                        input.name
                    ),
                });
            }
        }
        if r.um_per_px.is_none() && r.problem.is_none() && input.problem.is_none() {
            cal.without_scale += 1;
        }
    }
    cal.folders = folders;
    if let Some(m) = manifest {
        let unmatched: Vec<String> = m
            .entries
            .iter()
            .filter(|e| !used.contains_key(&e.line))
            .map(|e| format!("{} (line {})", e.image, e.line))
            .collect();
        if !unmatched.is_empty() {
            let shown: Vec<&str> = unmatched.iter().take(5).map(String::as_str).collect();
            cal.warnings.push(format!(
                "{} manifest row(s) match no input image: {}{}",
                unmatched.len(),
                shown.join(", "),
                if unmatched.len() > 5 { ", ..." } else { "" }
            ));
        }
    }
    if cal.without_scale > 0 {
        cal.warnings.push(format!(
            "{} of {} image(s) have no scale (no --um-per-px, manifest um_per_px or {FOLDER_FILE}): \
             their widths are measured in pixels only and every micrometre column is left empty",
            cal.without_scale,
            count
        ));
    }
    Ok(cal)
}

impl ResolvedScale {
    /// The settings of this image: `base` with this image's scale.
    pub fn settings(&self, base: &Settings) -> Settings {
        Settings {
            um_per_px: self.um_per_px,
            ..base.clone()
        }
    }

    /// Copies the scale's file and the study tags into a report's row.
    pub fn tag(&self, report: &mut ImageReport) {
        report.row.scale_file = self.scale_file.clone();
        report.row.subject = self.subject.clone().unwrap_or_default();
        report.row.region = self.region.clone().unwrap_or_default();
        report.row.visit = self.visit.clone().unwrap_or_default();
    }
}

/// Analyses one input with its own scale: [`crate::batch::analyze_file`] with
/// `Settings { um_per_px: scale.um_per_px, ..base }`, the scale source and the manifest
/// tags filled in. A broken calibration file makes an error row (never a guessed scale).
pub fn analyze_input(
    input: &Input,
    base: &Settings,
    scale: &ResolvedScale,
    max_pixels: u64,
    previous: Option<&Path>,
) -> ImageReport {
    let settings = scale.settings(base);
    let mut report = match &scale.problem {
        Some(p) => ImageReport::failed(&input.name, p, &settings, scale.source.as_str(), ""),
        None => crate::batch::analyze_file(
            input,
            &settings,
            scale.source.as_str(),
            max_pixels,
            previous,
        ),
    };
    scale.tag(&mut report);
    report
}

/// As [`analyze_input`], and also draws the image's pictures in the worker (see
/// [`crate::batch::analyze_file_with_pictures`]); `None` for a failed image.
pub fn analyze_input_with_pictures(
    input: &Input,
    base: &Settings,
    scale: &ResolvedScale,
    max_pixels: u64,
    previous: Option<&Path>,
    full_overlay: bool,
) -> (ImageReport, Option<crate::pictures::Pictures>) {
    let settings = scale.settings(base);
    let (mut report, pictures) = match &scale.problem {
        Some(p) => (
            ImageReport::failed(&input.name, p, &settings, scale.source.as_str(), ""),
            None,
        ),
        None => crate::batch::analyze_file_with_pictures(
            input,
            &settings,
            scale.source.as_str(),
            max_pixels,
            previous,
            full_overlay,
        ),
    };
    scale.tag(&mut report);
    (report, pictures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str) -> Input {
        Input {
            path: PathBuf::from(path),
            name: path.to_string(),
            report_rel: path.to_string(),
            problem: None,
        }
    }

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(text.as_bytes(), "m.csv").unwrap()
    }

    fn parse_err(text: &str) -> String {
        Manifest::parse(text.as_bytes(), "m.csv")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn manifest_columns_tags_and_bom() {
        let m = manifest(
            "\u{feff}Image,UM_PER_PX,subject,region,visit,notes\n\
             ./s1/front.png,4.5,S1,Frontal,1,x\n\
             s1\\back.png,,S1,occipital,1,\n",
        );
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].image, "s1/front.png");
        assert_eq!(m.entries[0].um_per_px, Some(4.5));
        assert_eq!(m.entries[0].region.as_deref(), Some("Frontal"));
        assert_eq!(m.entries[0].line, 2);
        assert_eq!(m.entries[1].image, "s1/back.png");
        assert_eq!(m.entries[1].um_per_px, None);
        assert_eq!(m.entries[1].visit.as_deref(), Some("1"));
        // Optional columns may be missing altogether.
        let m = manifest("image,um_per_px\na.png,3\n");
        assert_eq!(m.entries[0].subject, None);
    }

    #[test]
    fn manifest_errors_name_the_line() {
        assert!(parse_err("img,um_per_px\na,1\n").contains("no `image` column"));
        assert!(parse_err("image,scale\na,1\n").contains("no `um_per_px` column"));
        let e = parse_err("image,um_per_px\na.png,1\nb.png,abc\n");
        assert!(e.contains("line 3") && e.contains("abc"), "{e}");
        assert!(parse_err("image,um_per_px\na.png,-2\n").contains("line 2"));
        assert!(parse_err("image,um_per_px\na.png,NaN\n").contains("line 2"));
        let e = parse_err("image,um_per_px\na.png,1\n\n./a.png,2\n");
        assert!(e.contains("line 4") && e.contains("line 2"), "{e}");
        assert!(parse_err("image,um_per_px\n,2\n").contains("empty `image`"));
        let e = parse_err("image,um_per_px\r\na.png,1\r\n\r\n\r\nb.png,x\r\n");
        assert!(e.contains("line 5"), "{e}");
    }

    #[test]
    fn matching_exact_suffix_and_boundaries() {
        let m = manifest("image,um_per_px\nstudy/a/b.png,1\nb.png,2\nc.png,3\n");
        assert_eq!(m.lookup("study/a/b.png").unwrap().um_per_px, Some(1.0));
        assert_eq!(m.lookup("./study/a/b.png").unwrap().um_per_px, Some(1.0));
        // Longest tail at a folder boundary wins.
        assert_eq!(
            m.lookup("/data/study/a/b.png").unwrap().um_per_px,
            Some(1.0)
        );
        assert_eq!(m.lookup("other/b.png").unwrap().um_per_px, Some(2.0));
        assert_eq!(m.lookup("x/c.png").unwrap().um_per_px, Some(3.0));
        // Not at a boundary: `xc.png` is not `c.png`.
        assert!(m.lookup("x/xc.png").is_none());
        assert!(m.lookup("c.png.bak").is_none());
    }

    #[test]
    fn ambiguous_and_unmatched_rows() {
        let m = manifest("image,um_per_px\nb.png,2\nnothere.png,1\n");
        let inputs = [input("v1/b.png"), input("v2/b.png")];
        let e = resolve_all(&inputs, &[], None, Some(&m))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("v1/b.png") && e.contains("v2/b.png"),
            "{e}"
        );
        // A more specific row takes one of them: no longer ambiguous.
        let m = manifest("image,um_per_px\nb.png,2\nv1/b.png,1\nnothere.png,1\n");
        let cal = resolve_all(&inputs, &[], None, Some(&m)).unwrap();
        assert_eq!(cal.get(&inputs[0]).um_per_px, Some(1.0));
        assert_eq!(cal.get(&inputs[1]).um_per_px, Some(2.0));
        assert_eq!(cal.without_scale, 0);
        assert!(cal.warnings[0].contains("nothere.png (line 4)"));
    }

    #[test]
    fn precedence_flag_manifest_folder_none() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("study");
        std::fs::create_dir_all(root.join("s1/deep")).unwrap();
        std::fs::create_dir_all(root.join("s2")).unwrap();
        std::fs::write(root.join("trichometer.toml"), "um_per_px = 5.0\n").unwrap();
        std::fs::write(root.join("s1/trichometer.toml"), "um_per_px = 4.2 # dino\n").unwrap();
        // Above the root: never read.
        std::fs::write(tmp.path().join("trichometer.toml"), "um_per_px = 9\n").unwrap();
        let at = |rel: &str| {
            let p = root.join(rel);
            Input {
                name: crate::batch::display_path(&p),
                path: p,
                report_rel: rel.into(),
                problem: None,
            }
        };
        let (a, b, c) = (at("s1/deep/a.png"), at("s2/b.png"), at("s1/c.png"));
        let m = manifest("image,um_per_px,subject,region\ns1/deep/a.png,3.0,S1,frontal\ns1/c.png,,S1,occipital\n");
        let roots = [root.clone()];
        let mut fs = FolderScales::new(&roots);

        let r = resolve_scale(&a, Some(2.0), Some(&m), &mut fs);
        assert_eq!((r.um_per_px, r.source.as_str()), (Some(2.0), "flag"));
        assert_eq!(
            r.subject.as_deref(),
            Some("S1"),
            "tags apply under the flag"
        );

        let r = resolve_scale(&a, None, Some(&m), &mut fs);
        assert_eq!((r.um_per_px, r.source.as_str()), (Some(3.0), "manifest"));

        // Empty manifest scale falls through to the nearest folder file.
        let r = resolve_scale(&c, None, Some(&m), &mut fs);
        assert_eq!((r.um_per_px, r.source.as_str()), (Some(4.2), "folder"));
        assert_eq!(r.region.as_deref(), Some("occipital"));
        assert_eq!(
            r.source,
            ScaleSource::Folder(root.join("s1").join(FOLDER_FILE))
        );

        let r = resolve_scale(&a, None, None, &mut fs);
        assert_eq!((r.um_per_px, r.source.as_str()), (Some(4.2), "folder"));
        let r = resolve_scale(&b, None, None, &mut fs);
        assert_eq!((r.um_per_px, r.source.as_str()), (Some(5.0), "folder"));

        // Root is s2: the study-level file above it is not used.
        let mut fs2 = FolderScales::new(&[root.join("s2")]);
        let r = resolve_scale(&b, None, None, &mut fs2);
        assert_eq!((r.um_per_px, r.source.as_str()), (None, "none"));
        // A file given directly: only its own folder.
        let mut fs3 = FolderScales::new(std::slice::from_ref(&a.path));
        let r = resolve_scale(&a, None, None, &mut fs3);
        assert_eq!(r.source, ScaleSource::None);
        let cal = resolve_all(
            &[a.clone(), b.clone()],
            std::slice::from_ref(&a.path),
            None,
            None,
        )
        .unwrap();
        assert_eq!(cal.without_scale, 2);
        assert!(cal.warnings[0].contains("2 of 2 image(s) have no scale"));

        // The batch's lazy `get` gives what `resolve_scale` gives, for every source.
        let all = [a.clone(), b.clone(), c.clone()];
        for flag in [None, Some(2.0)] {
            for man in [None, Some(&m)] {
                let cal = resolve_all(&all, &roots, flag, man).unwrap();
                for x in &all {
                    let mut fresh = FolderScales::new(&roots);
                    assert_eq!(cal.get(x), resolve_scale(x, flag, man, &mut fresh));
                }
            }
        }
        // A folder not looked up by `resolve_all` is read on demand.
        let cal = resolve_all(Vec::<Input>::new(), &roots, None, None).unwrap();
        assert_eq!(cal.get(&a).um_per_px, Some(4.2));
    }

    #[test]
    fn broken_folder_file_is_a_problem_not_a_guess() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(FOLDER_FILE), "um_per_pixel = 4\n").unwrap();
        let p = tmp.path().join("a.png");
        let inp = Input {
            name: crate::batch::display_path(&p),
            path: p,
            report_rel: "a.png".into(),
            problem: None,
        };
        let mut fs = FolderScales::new(&[tmp.path().to_path_buf()]);
        let r = resolve_scale(&inp, None, None, &mut fs);
        assert_eq!(r.um_per_px, None);
        assert!(r.problem.unwrap().contains("um_per_px"));
        std::fs::write(tmp.path().join(FOLDER_FILE), "um_per_px = 0\n").unwrap();
        let mut fs = FolderScales::new(&[tmp.path().to_path_buf()]);
        assert!(resolve_scale(&inp, None, None, &mut fs).problem.is_some());
        // The flag wins without reading the folder file.
        let r = resolve_scale(&inp, Some(3.0), None, &mut fs);
        assert_eq!(r.problem, None);
    }
}
