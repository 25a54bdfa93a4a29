//! Many images: find the inputs, analyse them on a pool of workers, hand the reports back
//! in path order as they finish. Memory is bounded by the number of workers: each image is
//! decoded, analysed and dropped inside its worker, and results are reordered in a window
//! no wider than the work in flight.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::load::{self, LoadError};
use crate::pictures::Pictures;
use crate::report::ImageReport;
use crate::settings::Settings;

/// File extensions analysed when walking folders (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp"];

/// One image to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Where to read it.
    pub path: PathBuf,
    /// The path as given or walked, `/`-separated: the `image` column.
    pub name: String,
    /// Relative path of its JSON report under `images/` (without `.json`).
    pub report_rel: String,
    /// A problem found while listing it (e.g. an unreadable folder entry).
    pub problem: Option<String>,
}

/// Whether a file name has one of the [`IMAGE_EXTENSIONS`].
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

/// `/`-separated display form of a path. Bytes of a name that are not UTF-8 are written
/// `\xNN` (e.g. `caf\xE9.png` for a Latin-1 name), so distinct files keep distinct names.
pub fn display_path(p: &Path) -> String {
    let s = os_text(p.as_os_str());
    if std::path::MAIN_SEPARATOR == '\\' {
        s.replace('\\', "/")
    } else {
        s
    }
}

/// Text of an OS string: UTF-8 as is, any other byte as `\xNN`.
#[cfg(unix)]
fn os_text(s: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in s.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Text of an OS string (lossy where it is not Unicode).
#[cfg(not(unix))]
fn os_text(s: &std::ffi::OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// Lists the images under `inputs`: files as given, folders walked recursively (following
/// links, loops reported) for files with an image extension. Sorted by name, duplicates
/// removed; each gets a report path that stays inside the output folder and is unique.
pub fn discover(inputs: &[PathBuf]) -> Vec<Input> {
    discover_list(inputs).iter().collect()
}

/// [`discover`] into an [`InputList`], the compact form a long batch keeps in memory.
pub fn discover_list(inputs: &[PathBuf]) -> InputList {
    let mut found: Vec<(PathBuf, String, Option<String>)> = Vec::new();
    for root in inputs {
        if root.is_dir() {
            for entry in walkdir::WalkDir::new(root)
                .follow_links(true)
                .sort_by_file_name()
            {
                match entry {
                    Ok(e) => {
                        let t = e.file_type();
                        if t.is_dir() || !has_image_extension(e.path()) {
                            continue;
                        }
                        // A FIFO, socket or device named like an image is reported, not read
                        // (reading a FIFO would wait forever).
                        let problem = (!t.is_file()).then(|| NOT_A_FILE.to_string());
                        found.push((e.path().to_path_buf(), display_path(e.path()), problem));
                    }
                    Err(err) => {
                        let p = err
                            .path()
                            .map(Path::to_path_buf)
                            .unwrap_or_else(|| root.clone());
                        if err.loop_ancestor().is_some() {
                            continue; // a symlink loop: its contents are walked once already
                        }
                        let why = if is_broken_link(&p) {
                            BROKEN_LINK.to_string()
                        } else {
                            crate::report::one_line(&format!("cannot list: {err}"))
                        };
                        if has_image_extension(&p) || p.is_dir() {
                            found.push((p.clone(), display_path(&p), Some(why)));
                        }
                    }
                }
            }
        } else {
            let problem = match std::fs::metadata(root) {
                Ok(m) if m.is_file() => None,
                Ok(_) => Some(NOT_A_FILE.to_string()),
                Err(_) if is_broken_link(root) => Some(BROKEN_LINK.to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Some("no such file or folder".to_string())
                }
                Err(e) => Some(crate::report::one_line(&format!("cannot read file: {e}"))),
            };
            found.push((root.clone(), display_path(root), problem));
        }
    }
    // The same file given twice (e.g. a folder and a file in it) is analysed once; distinct
    // files keep their own rows even when their names look alike.
    found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    found.dedup_by(|a, b| a.0 == b.0);
    let mut used = std::collections::HashSet::new();
    let mut list = InputList::default();
    for (path, name, problem) in found {
        let base = safe_relative(&path);
        let mut rel = base.clone();
        let mut k = 2;
        while !used.insert(rel.to_lowercase()) {
            rel = format!("{base}~{k}");
            k += 1;
        }
        list.push(Input {
            path,
            name,
            report_rel: rel,
            problem,
        });
    }
    list.shrink_to_fit();
    list
}

/// The inputs of a batch, in order, stored compactly: the names in one string, and only
/// what cannot be derived from the name kept per input (a path that is not the name's
/// text, a report path with a `~N` suffix, a listing problem). About 8 bytes per input
/// beyond its name, against some 190 for a `Vec<Input>`, so a long batch's memory hardly
/// grows with its length. [`InputList::get`] gives back the [`Input`] pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputList {
    /// Every input's name, one after the other.
    names: String,
    /// End of each input's name in `names`.
    ends: Vec<usize>,
    /// Inputs with something more, by position (ascending).
    extras: Vec<(usize, InputExtra)>,
}

/// What an input of an [`InputList`] has that its name does not give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct InputExtra {
    /// The path, when it is not the name's text.
    path: Option<PathBuf>,
    /// The report path, when it is not `safe_relative(path)` (a `~N` suffix).
    report_rel: Option<String>,
    problem: Option<String>,
}

impl InputList {
    /// Appends an input.
    pub fn push(&mut self, input: Input) {
        let i = self.ends.len();
        self.names.push_str(&input.name);
        self.ends.push(self.names.len());
        let extra = InputExtra {
            path: (input.path.as_os_str() != std::ffi::OsStr::new(&input.name))
                .then(|| input.path.clone()),
            report_rel: (input.report_rel != safe_relative(&input.path))
                .then_some(input.report_rel),
            problem: input.problem,
        };
        if extra != InputExtra::default() {
            self.extras.push((i, extra));
        }
    }

    /// Frees the spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.extras.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The name (the `image` column) of input `i`.
    pub fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.names[start..self.ends[i]]
    }

    /// Input `i`, as it was pushed.
    pub fn get(&self, i: usize) -> Input {
        let name = self.name(i);
        let extra = self
            .extras
            .binary_search_by_key(&i, |(k, _)| *k)
            .ok()
            .map(|k| &self.extras[k].1);
        let path = extra
            .and_then(|e| e.path.clone())
            .unwrap_or_else(|| PathBuf::from(name));
        let report_rel = extra
            .and_then(|e| e.report_rel.clone())
            .unwrap_or_else(|| safe_relative(&path));
        Input {
            path,
            name: name.to_string(),
            report_rel,
            problem: extra.and_then(|e| e.problem.clone()),
        }
    }

    /// The inputs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Input> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl FromIterator<Input> for InputList {
    fn from_iter<I: IntoIterator<Item = Input>>(iter: I) -> InputList {
        let mut list = InputList::default();
        for input in iter {
            list.push(input);
        }
        list.shrink_to_fit();
        list
    }
}

/// One part of a batch split over several machines: `index` of `count`, 1-based
/// (`--shard 2/4` is index 2 of 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` with 1 ≤ K ≤ N.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected K/N, e.g. 2/4"))?;
        let k: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: K is not a number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: N is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("`{s}`: need 1 <= K <= N"));
        }
        Ok(Shard { index: k, count: n })
    }

    /// Whether the input at position `i` of the sorted input list belongs to this shard.
    pub fn contains(&self, i: usize) -> bool {
        i % self.count == self.index - 1
    }

    /// The inputs of this shard: of the list in discovery order (sorted by name), those at
    /// positions `i` with `i % N == K - 1`. The shards of one list are disjoint, cover it,
    /// and differ in size by at most one image; each keeps the report path it has in the
    /// whole list, so shard report folders merge into exactly the single-run folder.
    pub fn select(&self, inputs: Vec<Input>) -> Vec<Input> {
        inputs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.contains(*i))
            .map(|(_, x)| x)
            .collect()
    }

    /// [`select`](Self::select) for an [`InputList`].
    pub fn select_list(&self, inputs: InputList) -> InputList {
        (0..inputs.len())
            .filter(|&i| self.contains(i))
            .map(|i| inputs.get(i))
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why a symbolic link whose target is missing is not read.
const BROKEN_LINK: &str = "broken symbolic link (its target does not exist)";

/// Whether `p` is a symbolic link whose target does not exist.
fn is_broken_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) && !p.exists()
}

/// Why a path that is neither a regular file nor a folder is not read.
const NOT_A_FILE: &str = "not a regular file (a FIFO, socket or device)";

/// Longest name component of a report path, in bytes: file systems allow 255, and
/// `.json` and a `~N` suffix are added to it.
const MAX_COMPONENT_BYTES: usize = 200;

/// A relative path that cannot leave the folder it is joined to: root and prefix dropped,
/// `.` skipped, `..` turned into `__`, non-UTF-8 bytes written `\xNN`, and names too long
/// for a file system shortened (with a hash of the full name, so they stay distinct).
pub fn safe_relative(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(shorten(os_text(s))),
            Component::ParentDir => Some("__".to_string()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        "image".to_string()
    } else {
        parts.join("/")
    }
}

/// A name of at most [`MAX_COMPONENT_BYTES`]: longer ones keep their start and get the
/// first 16 hex digits of their SHA-256.
fn shorten(name: String) -> String {
    if name.len() <= MAX_COMPONENT_BYTES {
        return name;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut cut = MAX_COMPONENT_BYTES - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash}", &name[..cut])
}

/// How to run a batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Worker threads (≥ 1).
    pub jobs: usize,
    /// Largest image accepted, in pixels.
    pub max_pixels: u64,
}

/// Analyses one input file into its report; never panics (a panic becomes the error).
/// With `previous` (a report JSON from an earlier run), that report is returned instead
/// when it is complete and was made from the same file bytes, settings and tool version.
pub fn analyze_file(
    input: &Input,
    settings: &Settings,
    scale_source: &str,
    max_pixels: u64,
    previous: Option<&Path>,
) -> ImageReport {
    analyze_file_inner(input, settings, scale_source, max_pixels, previous, None).0
}

/// As [`analyze_file`], and also draws the image's pictures while the decoded image is at
/// hand (see [`crate::pictures`]): the full overlay PNG only when `full_overlay`. The
/// pictures are `None` for a failed image, or when drawing failed (the report is still
/// whole; the drawing error is added to its warnings). A report reused from `previous`
/// gets its pictures too: the image is decoded again for them (no new analysis).
pub fn analyze_file_with_pictures(
    input: &Input,
    settings: &Settings,
    scale_source: &str,
    max_pixels: u64,
    previous: Option<&Path>,
    full_overlay: bool,
) -> (ImageReport, Option<Pictures>) {
    analyze_file_inner(
        input,
        settings,
        scale_source,
        max_pixels,
        previous,
        Some(full_overlay),
    )
}

/// Draws the pictures of `report` on `img`; a failure (or panic) becomes a warning of the
/// report and no pictures, never a lost measurement.
fn pictures_or_warning(
    img: &image::DynamicImage,
    report: &mut ImageReport,
    full_overlay: bool,
) -> Option<Pictures> {
    match catch_unwind(AssertUnwindSafe(|| {
        crate::pictures::render_pictures(img, report, full_overlay)
    })) {
        Ok(Ok(p)) => Some(p),
        Ok(Err(e)) => {
            report.warnings.push(crate::report::one_line(&format!(
                "overlay not drawn: {e:#}"
            )));
            None
        }
        Err(_) => {
            report
                .warnings
                .push("overlay not drawn: internal error".to_string());
            None
        }
    }
}

fn analyze_file_inner(
    input: &Input,
    settings: &Settings,
    scale_source: &str,
    max_pixels: u64,
    previous: Option<&Path>,
    pictures: Option<bool>,
) -> (ImageReport, Option<Pictures>) {
    if let Some(p) = &input.problem {
        return (
            ImageReport::failed(&input.name, p, settings, scale_source, ""),
            None,
        );
    }
    // A file bigger than any encoding of an image within the pixel limit is refused before
    // it is read into memory (e.g. a multi-gigabyte scan or disk image named .tif).
    if let Ok(meta) = std::fs::metadata(&input.path) {
        let cap = max_pixels
            .saturating_mul(MAX_BYTES_PER_PIXEL)
            .saturating_add(FILE_SIZE_HEADROOM);
        if meta.len() > cap {
            let why = format!(
                "file too large: {} bytes is more than any image within the limit of {max_pixels} \
                 pixels can take (raise it with --max-megapixels)",
                meta.len()
            );
            return (
                ImageReport::failed(&input.name, &why, settings, scale_source, ""),
                None,
            );
        }
    }
    let bytes = match load::read_file(&input.path) {
        Ok(b) => b,
        Err(e) => {
            return (
                ImageReport::failed(
                    &input.name,
                    &read_error(&e, &input.path),
                    settings,
                    scale_source,
                    "",
                ),
                None,
            )
        }
    };
    let sha = bytes.sha256.clone();
    if let Some(mut old) =
        previous.and_then(|p| reusable(p, &input.name, &sha, settings, scale_source))
    {
        REUSED.fetch_add(1, Ordering::Relaxed);
        let pics = pictures.and_then(|full| {
            let img = load::decode(&bytes.bytes, max_pixels).ok()?;
            pictures_or_warning(&img, &mut old, full)
        });
        return (old, pics);
    }
    let outcome = {
        let _quiet = CaughtPanicScope::enter();
        catch_unwind(AssertUnwindSafe(|| {
            test_panic_hook(&input.name);
            let img = load::decode(&bytes.bytes, max_pixels).map_err(|e| e.to_string())?;
            drop(bytes);
            let analysis = crate::analyze(&img, settings).map_err(|e| e.to_string())?;
            let mut report =
                ImageReport::from_analysis(&input.name, &analysis, settings, scale_source, &sha);
            let pics = pictures.and_then(|full| pictures_or_warning(&img, &mut report, full));
            Ok::<_, String>((report, pics))
        }))
    };
    match outcome {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => (
            ImageReport::failed(&input.name, &e, settings, scale_source, &sha),
            None,
        ),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            (
                ImageReport::failed(
                    &input.name,
                    &format!("internal error while analysing (panic: {msg})"),
                    settings,
                    scale_source,
                    &sha,
                ),
                None,
            )
        }
    }
}

/// Largest uncompressed size of a pixel in any format read (RGBA, 32-bit float channels).
const MAX_BYTES_PER_PIXEL: u64 = 16;
/// Room for metadata, thumbnails and padding on top of the pixels, in bytes.
const FILE_SIZE_HEADROOM: u64 = 64 << 20;

/// Reports reused by `--resume` in this process so far (see [`reused_reports`]).
static REUSED: AtomicUsize = AtomicUsize::new(0);

/// How many earlier per-image reports [`analyze_file`] has reused (instead of analysing)
/// in this process; a batch reads it before and after to count its own.
pub fn reused_reports() -> usize {
    REUSED.load(Ordering::Relaxed)
}

/// Test-only hook: when the environment variable `TRICHOMETER_TEST_PANIC_ON` is set and
/// non-empty, the analysis of every image whose name contains its value panics, so tests
/// can check that a panic is reported as that image's error and the batch goes on.
fn test_panic_hook(name: &str) {
    if let Some(v) = std::env::var_os("TRICHOMETER_TEST_PANIC_ON") {
        let v = v.to_string_lossy();
        if !v.is_empty() && name.contains(v.as_ref()) {
            panic!("test panic requested by TRICHOMETER_TEST_PANIC_ON");
        }
    }
}

thread_local! {
    /// Whether this thread is inside an image's caught analysis.
    static IN_CAUGHT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as inside a caught analysis until dropped.
struct CaughtPanicScope;

impl CaughtPanicScope {
    fn enter() -> CaughtPanicScope {
        IN_CAUGHT.with(|c| c.set(true));
        CaughtPanicScope
    }
}

impl Drop for CaughtPanicScope {
    fn drop(&mut self) {
        IN_CAUGHT.with(|c| c.set(false));
    }
}

/// Installs a panic hook that stays silent for panics inside an image's analysis (they
/// are caught and reported as that image's error) and defers to the previous hook for
/// any other panic. For binaries; call once at start.
pub fn silence_caught_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_CAUGHT.with(|c| c.get()) {
            previous(info);
        }
    }));
}

/// A previous report that can stand for this run: it parses, is `ok`, and matches the
/// image name, file hash, settings, scale source and tool version.
fn reusable(
    path: &Path,
    name: &str,
    sha: &str,
    settings: &Settings,
    scale_source: &str,
) -> Option<ImageReport> {
    let bytes = std::fs::read(path).ok()?;
    let r: ImageReport = serde_json::from_slice(&bytes).ok()?;
    (r.row.status == "ok"
        && r.row.image == name
        && r.row.sha256 == sha
        && &r.settings == settings
        && r.row.scale_source == scale_source
        && r.tool == crate::report::TOOL_VERSION)
        .then_some(r)
}

fn read_error(e: &LoadError, path: &Path) -> String {
    match e {
        LoadError::Read(io) if path.is_dir() => format!("is a folder, not an image ({io})"),
        other => other.to_string(),
    }
}

/// Runs `work` over `inputs` on `jobs` threads and calls `done(index, result)` on the
/// calling thread in input order, each as soon as it and all before it are finished.
/// Stops starting new images when `stop` becomes true; returns how many were handed over.
/// The result is usually an [`ImageReport`], or a report with its pictures.
pub fn run<T, W, D>(inputs: &[Input], jobs: usize, stop: &AtomicBool, work: W, done: D) -> usize
where
    T: Send,
    W: Fn(&Input) -> T + Sync,
    D: FnMut(usize, T),
{
    run_indexed(inputs.len(), jobs, stop, |i| work(&inputs[i]), done)
}

/// As [`run`] over the inputs `0..count`, `work` given each one's index (e.g. into an
/// [`InputList`]).
pub fn run_indexed<T, W, D>(
    count: usize,
    jobs: usize,
    stop: &AtomicBool,
    work: W,
    mut done: D,
) -> usize
where
    T: Send,
    W: Fn(usize) -> T + Sync,
    D: FnMut(usize, T),
{
    let jobs = jobs.max(1);
    let next = AtomicUsize::new(0);
    // Bounded: when writing the reports falls behind the workers (a slow disk, or the
    // machine's other load), the workers wait instead of queueing finished reports (and
    // their pictures) in memory without limit.
    let (tx, rx) = mpsc::sync_channel::<(usize, T)>(2 * jobs);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .expect("thread pool");
    let mut handed = 0usize;
    pool.in_place_scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, work) = (&next, &work);
            scope.spawn(move |_| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                if tx.send((i, work(i))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, T> = BTreeMap::new();
        for (i, r) in rx.iter() {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&handed) {
                done(handed, r);
                handed += 1;
            }
        }
    });
    handed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_relative_never_escapes() {
        assert_eq!(safe_relative(Path::new("/abs/a.png")), "abs/a.png");
        assert_eq!(safe_relative(Path::new("../x/./b.jpg")), "__/x/b.jpg");
        assert_eq!(safe_relative(Path::new("..")), "__");
        assert_eq!(safe_relative(Path::new("/")), "image");
    }

    #[test]
    fn shards_partition_the_inputs() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("0/4").is_err());
        assert!(Shard::parse("5/4").is_err());
        assert!(Shard::parse("1").is_err());
        assert!(Shard::parse("a/b").is_err());
        let inputs: Vec<Input> = (0..10)
            .map(|i| Input {
                path: PathBuf::from(format!("{i}")),
                name: format!("{i:02}"),
                report_rel: String::new(),
                problem: None,
            })
            .collect();
        let mut all: Vec<String> = Vec::new();
        for k in 1..=3 {
            let part = Shard { index: k, count: 3 }.select(inputs.clone());
            assert!((3..=4).contains(&part.len()));
            all.extend(part.into_iter().map(|x| x.name));
        }
        all.sort();
        let names: Vec<String> = inputs.into_iter().map(|x| x.name).collect();
        assert_eq!(all, names);
    }

    #[test]
    fn input_list_gives_back_every_input() {
        let mut inputs = vec![
            Input {
                path: PathBuf::from("a/b.png"),
                name: "a/b.png".into(),
                report_rel: "a/b.png".into(),
                problem: None,
            },
            Input {
                path: PathBuf::from("/abs/A.png"),
                name: "/abs/A.png".into(),
                report_rel: "abs/A.png".into(),
                problem: None,
            },
            Input {
                path: PathBuf::from("/abs/a.png"),
                name: "/abs/a.png".into(),
                report_rel: "abs/a.png~2".into(),
                problem: Some("broken".into()),
            },
            Input {
                path: PathBuf::from("../x//y.jpg"),
                name: "../x//y.jpg".into(),
                report_rel: "__/x/y.jpg".into(),
                problem: None,
            },
            Input {
                path: PathBuf::from("p.png"),
                name: "shown differently.png".into(),
                report_rel: "p.png".into(),
                problem: None,
            },
        ];
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = PathBuf::from(std::ffi::OsStr::from_bytes(b"d/caf\xe9.png"));
            inputs.push(Input {
                name: display_path(&p),
                report_rel: safe_relative(&p),
                path: p,
                problem: None,
            });
        }
        let list: InputList = inputs.iter().cloned().collect();
        assert_eq!(list.len(), inputs.len());
        assert_eq!(list.iter().collect::<Vec<_>>(), inputs);
        assert_eq!(list.name(1), "/abs/A.png");
        for shard in [Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 }] {
            let part = shard.select_list(list.clone());
            assert_eq!(
                part.iter().collect::<Vec<_>>(),
                shard.select(inputs.clone())
            );
        }
        assert!(InputList::default().is_empty());
    }

    #[test]
    fn discover_names_case_twins_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("s")).unwrap();
        for f in ["A.png", "a.png", "s/c.jpg", "notes.txt"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let found = discover(&[d.clone(), d.join("a.png"), tmp.path().join("gone.png")]);
        let rels: Vec<&str> = found.iter().map(|x| x.report_rel.as_str()).collect();
        let base = safe_relative(&d);
        assert_eq!(
            rels,
            [
                format!("{base}/A.png"),
                format!("{base}/a.png~2"),
                format!("{base}/s/c.jpg"),
                safe_relative(&tmp.path().join("gone.png")),
            ]
        );
        assert_eq!(found[3].problem.as_deref(), Some("no such file or folder"));
        assert!(found[..3].iter().all(|x| x.problem.is_none()));
        assert_eq!(found[1].path, d.join("a.png"));
    }

    #[test]
    fn long_and_non_utf8_names_make_safe_distinct_report_paths() {
        let a = "é".repeat(150) + "a.png"; // 305 bytes
        let b = "é".repeat(150) + "b.png";
        let (ra, rb) = (safe_relative(Path::new(&a)), safe_relative(Path::new(&b)));
        assert!(ra.len() <= MAX_COMPONENT_BYTES && rb.len() <= MAX_COMPONENT_BYTES);
        assert_ne!(ra, rb);
        assert_eq!(safe_relative(Path::new("short.png")), "short.png");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"d/caf\xe9.png"));
            assert_eq!(display_path(p), "d/caf\\xE9.png");
            assert_eq!(safe_relative(p), "d/caf\\xE9.png");
        }
    }

    #[test]
    fn extensions_case_insensitive() {
        assert!(has_image_extension(Path::new("a/B.JPG")));
        assert!(has_image_extension(Path::new("c.TiFf")));
        assert!(!has_image_extension(Path::new("notes.txt")));
        assert!(!has_image_extension(Path::new("png")));
    }

    #[test]
    fn run_hands_results_over_in_order_for_any_job_count() {
        let inputs: Vec<Input> = (0..40)
            .map(|i| Input {
                path: PathBuf::from(format!("{i}")),
                name: format!("{i:03}"),
                report_rel: String::new(),
                problem: None,
            })
            .collect();
        for jobs in [1, 2, 5] {
            let mut seen = Vec::new();
            let stop = AtomicBool::new(false);
            let n = run(
                &inputs,
                jobs,
                &stop,
                |inp| {
                    // Uneven work so threads finish out of order.
                    let k: u64 = inp.name.parse().unwrap();
                    std::thread::sleep(std::time::Duration::from_micros((k * 7919) % 2000));
                    ImageReport::failed(&inp.name, "x", &Settings::default(), "none", "")
                },
                |i, r| seen.push((i, r.row.image)),
            );
            assert_eq!(n, 40);
            for (k, (i, name)) in seen.iter().enumerate() {
                assert_eq!(*i, k);
                assert_eq!(name, &format!("{k:03}"));
            }
        }
    }
}
