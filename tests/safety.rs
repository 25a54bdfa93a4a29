//! Issue 8, outputs and faults: reports never leave --out, CSV cells are safe in
//! spreadsheets, odd file names survive, writes are atomic, --resume reuses finished work,
//! an interrupted run leaves whole files, and a panic in one image is that image's error.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{bin, read_csv, sample_image};
use predicates::prelude::*;

fn rows(out: &Path) -> Vec<HashMap<String, String>> {
    let (header, rows) = read_csv(&out.join("images.csv"));
    rows.into_iter()
        .map(|r| header.iter().cloned().zip(r).collect())
        .collect()
}

/// Every file and folder under `root` with its modification time.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.path().to_path_buf(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

/// The per-image JSON reports under `out/images`, keyed by their `image` field.
fn json_reports(out: &Path) -> BTreeMap<String, PathBuf> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(out.join("images")) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let v: serde_json::Value = serde_json::from_slice(&fs::read(e.path()).unwrap())
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            let name = v["image"].as_str().unwrap().to_string();
            assert!(
                m.insert(name, e.path().to_path_buf()).is_none(),
                "two JSON for one image"
            );
        }
    }
    m
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap()
}

/// No temporary or half-written file anywhere under `out`.
fn assert_no_temp_files(out: &Path) {
    for e in walkdir::WalkDir::new(out) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy();
        // Temporary files are dot files (`.images.csv.XXXX`, `.tmpXXXX`); folders named
        // after input folders may start with a dot too.
        assert!(
            !e.file_type().is_file() || !name.starts_with('.'),
            "temporary file left: {}",
            e.path().display()
        );
    }
}

// ---- results never leave --out ----

#[test]
fn reports_stay_inside_out_whatever_the_input_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path().canonicalize().unwrap();
    let work = tmp.join("work");
    for d in ["x", "work/r1", "work/r2", "work/r1/sub"] {
        fs::create_dir_all(tmp.join(d)).unwrap();
    }
    sample_image(0).save(tmp.join("x/a.png")).unwrap();
    sample_image(1).save(work.join("r1/a.png")).unwrap();
    sample_image(2).save(work.join("r2/a.png")).unwrap();
    sample_image(3).save(work.join("r1/sub/A.PNG")).unwrap(); // case-folds onto nothing else
    let before = snapshot(&tmp);
    let abs1 = work.join("r1/a.png");
    let abs2 = work.join("r2/a.png");
    bin()
        .current_dir(&work)
        .args([
            "analyze",
            "../x/a.png",
            "r1",
            "r2",
            "--out",
            "out",
            "--quiet",
        ])
        .arg(&abs1)
        .arg(&abs2)
        .arg(tmp.join("x/../x/a.png"))
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);
    let out = work.join("out");
    // Nothing created or changed outside out/.
    let after = snapshot(&tmp);
    for (p, t) in &after {
        if !p.starts_with(&out) {
            assert!(
                before.contains_key(p),
                "{} created outside --out",
                p.display()
            );
            if p.is_file() {
                assert_eq!(before.get(p), Some(t), "{} changed", p.display());
            }
        }
    }
    let r = rows(&out);
    let names: Vec<&str> = r.iter().map(|r| r["image"].as_str()).collect();
    let expect = [
        "../x/a.png".to_string(),
        "r1/a.png".to_string(),
        "r1/sub/A.PNG".to_string(),
        "r2/a.png".to_string(),
        abs1.display().to_string(),
        abs2.display().to_string(),
        tmp.join("x/../x/a.png").display().to_string(),
    ];
    let mut sorted = expect.to_vec();
    sorted.sort();
    assert_eq!(names, sorted);
    // One JSON per row, each under out/images, none overwritten by another.
    let reports = json_reports(&out);
    assert_eq!(reports.len(), expect.len(), "{reports:?}");
    for (name, path) in &reports {
        assert!(names.contains(&name.as_str()), "{name}");
        assert!(
            path.canonicalize().unwrap().starts_with(out.join("images")),
            "{}",
            path.display()
        );
    }
    assert!(out.join("images/__/x/a.png.json").exists());
    assert_no_temp_files(&out);
}

#[test]
fn same_relative_path_in_two_roots_gets_two_reports() {
    let tmp = tempfile::tempdir().unwrap();
    for (root, seed) in [("r1", 0), ("r2", 4)] {
        fs::create_dir_all(tmp.path().join(root).join("day1")).unwrap();
        sample_image(seed)
            .save(tmp.path().join(root).join("day1/a.png"))
            .unwrap();
    }
    // Roots given relative, then absolute: each file its own report, in both runs.
    let abs = |r: &str| tmp.path().join(r).display().to_string();
    for (out, roots) in [
        ("out", ["r1".to_string(), "r2".to_string()]),
        ("out-abs", [abs("r1"), abs("r2")]),
    ] {
        bin()
            .current_dir(tmp.path())
            .args(["analyze", "--out", out, "--quiet"])
            .args(&roots)
            .timeout(Duration::from_secs(120))
            .assert()
            .code(0);
        let reports = json_reports(&tmp.path().join(out));
        let names: Vec<String> = roots.iter().map(|r| format!("{r}/day1/a.png")).collect();
        assert_eq!(reports.keys().cloned().collect::<Vec<_>>(), names);
    }
    let r = rows(&tmp.path().join("out"));
    assert_ne!(r[0]["sha256"], r[1]["sha256"]);
}

#[test]
fn names_differing_only_in_case_do_not_overwrite_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    sample_image(0).save(tmp.path().join("a.png")).unwrap();
    sample_image(1).save(tmp.path().join("A.png")).unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "a.png", "A.png", "--out", "out", "--quiet"])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);
    let reports = json_reports(&tmp.path().join("out"));
    assert_eq!(reports.len(), 2, "{reports:?}");
}

#[test]
fn very_long_file_name_is_analysed_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{}.png", "long-name-".repeat(25)); // 254 bytes: the limit is 255
    sample_image(0).save(tmp.path().join(&name)).unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", &name, "--out", "out", "--quiet"])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);
    let r = rows(&tmp.path().join("out"));
    assert_eq!(r[0]["image"], name);
    assert_eq!(r[0]["status"], "ok");
    assert_eq!(json_reports(&tmp.path().join("out")).len(), 1);
}

// ---- spreadsheet safety and odd names ----

#[cfg(unix)]
#[test]
fn odd_file_names_round_trip_and_formulas_are_neutralised() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let names: Vec<&[u8]> = vec![
        b"=cmd.png",
        b"+a.png",
        b"-b.png",
        b"@c.png",
        b"a,b.png",
        b"q\"uote's.png",
        b"new\nline.png",
        b"caf\xe9.png",
        b"caf\xe8.png",
    ];
    let img = sample_image(0);
    for n in &names {
        img.save(data.join(OsStr::from_bytes(n))).unwrap();
    }
    let mut cmd = bin();
    cmd.current_dir(&data)
        .args(["analyze", "--out", "../out", "--quiet", "--"])
        .args(names.iter().map(|n| OsStr::from_bytes(n)))
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);
    let out = tmp.path().join("out");
    let got: Vec<String> = rows(&out).iter().map(|r| r["image"].clone()).collect();
    let mut expect: Vec<&str> = vec![
        "'+a.png",
        "'-b.png",
        "'=cmd.png",
        "'@c.png",
        "a,b.png",
        "caf\\xE8.png",
        "caf\\xE9.png",
        "new\nline.png",
        "q\"uote's.png",
    ];
    expect.sort_by_key(|s| s.trim_start_matches('\''));
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| a.trim_start_matches('\'').cmp(b.trim_start_matches('\'')));
    assert_eq!(got_sorted, expect);
    // hairs.csv too.
    let (header, hairs) = read_csv(&out.join("hairs.csv"));
    let col = header.iter().position(|h| h == "image").unwrap();
    for h in &hairs {
        assert!(!h[col].starts_with(['=', '+', '-', '@']), "{h:?}");
    }
    assert!(hairs.iter().any(|h| h[col] == "'=cmd.png"));
    // The JSON reports keep the names unneutralised, one each, under out/images.
    let reports = json_reports(&out);
    assert_eq!(reports.len(), names.len());
    for n in [
        "=cmd.png",
        "-b.png",
        "new\nline.png",
        "caf\\xE9.png",
        "caf\\xE8.png",
    ] {
        assert!(reports.contains_key(n), "{n}: {reports:?}");
    }
    assert!(out.join("images/caf\\xE9.png.json").exists());
}

// ---- faults ----

#[test]
fn unwritable_out_fails_early_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("file.txt"), "a file, not a folder").unwrap();
    fs::write(tmp.path().join("broken.png"), "not an image").unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "broken.png", "--out", "file.txt/out"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot create output folder file.txt/out",
        ))
        // Nothing was analysed: the broken image's error was never reached.
        .stderr(predicate::str::contains("broken.png").not());
}

#[cfg(unix)]
#[test]
fn read_only_out_fails_early_with_exit_2() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let ro = tmp.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    if tempfile::tempfile_in(&ro).is_ok() {
        eprintln!("skipped: running with privileges that write into mode-555 folders (root)");
        return;
    }
    sample_image(0).save(tmp.path().join("a.png")).unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "a.png", "--out", "ro"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not writable"));
}

/// A 64 KiB tmpfs at `dir`, unmounted on drop (needs root; `None` when not permitted).
#[cfg(target_os = "linux")]
struct TinyDisk(PathBuf);

#[cfg(target_os = "linux")]
impl TinyDisk {
    fn mount(dir: &Path) -> Option<TinyDisk> {
        fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyDisk(dir.to_path_buf()))
    }
}

#[cfg(target_os = "linux")]
impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn full_out_fails_early_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = TinyDisk::mount(&tmp.path().join("disk")) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    // Fill the disk to the last byte.
    {
        use std::io::Write;
        let mut f = fs::File::create(disk.0.join("filler")).unwrap();
        let block = [0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..1]).is_ok() {}
    }
    fs::write(tmp.path().join("broken.png"), "not an image").unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "broken.png", "--out", "disk/out"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot write in output folder disk/out",
        ))
        .stderr(predicate::str::contains("No space left on device"))
        .stderr(predicate::str::contains("broken.png").not());
    // No temporary file left behind on the full disk.
    let left: Vec<_> = fs::read_dir(disk.0.join("out")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn resume_reuses_matching_reports_and_redoes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    for k in 0..4 {
        sample_image(k)
            .save(data.join(format!("i{k}.png")))
            .unwrap();
    }
    fs::write(data.join("bad.png"), "not an image").unwrap();
    let run = |extra: &[&str]| {
        bin()
            .current_dir(tmp.path())
            .args([
                "analyze",
                "data",
                "--out",
                "out",
                "--quiet",
                "--um-per-px",
                "4",
            ])
            .args(extra)
            .timeout(Duration::from_secs(120))
            .assert()
            .code(1);
        summary(&tmp.path().join("out"))
    };
    let s = run(&[]);
    assert_eq!(
        (s["images_ok"].as_u64(), s["images_reused"].as_u64()),
        (Some(4), Some(0))
    );
    let out = tmp.path().join("out");
    let csv_first = fs::read(out.join("images.csv")).unwrap();
    let times = snapshot(&out.join("images"));
    std::thread::sleep(Duration::from_millis(20));

    // Same settings: every ok report reused (the failed one is tried again), files untouched.
    let s = run(&["--resume"]);
    assert_eq!(
        (s["images_ok"].as_u64(), s["images_reused"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(snapshot(&out.join("images")), times);
    assert_eq!(fs::read(out.join("images.csv")).unwrap(), csv_first);

    // A changed image, a half-written report: those two are analysed again.
    sample_image(9).save(data.join("i1.png")).unwrap();
    let j2 = out.join("images/data/i2.png.json");
    let text = fs::read(&j2).unwrap();
    fs::write(&j2, &text[..text.len() / 2]).unwrap();
    let s = run(&["--resume"]);
    assert_eq!(
        (s["images_ok"].as_u64(), s["images_reused"].as_u64()),
        (Some(4), Some(2))
    );
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&j2).unwrap()).unwrap();
    assert_eq!(v["status"], "ok");

    // A report written by another version of the tool (another analysis): done again.
    let j3 = out.join("images/data/i3.png.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&j3).unwrap()).unwrap();
    assert_eq!(
        v["tool"],
        concat!("trichometer ", env!("CARGO_PKG_VERSION"))
    );
    v["tool"] = "trichometer 0.1.0".into();
    fs::write(&j3, serde_json::to_vec(&v).unwrap()).unwrap();
    let s = run(&["--resume"]);
    assert_eq!(
        (s["images_ok"].as_u64(), s["images_reused"].as_u64()),
        (Some(4), Some(3))
    );
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&j3).unwrap()).unwrap();
    assert_eq!(
        v["tool"],
        concat!("trichometer ", env!("CARGO_PKG_VERSION"))
    );

    // Other settings: nothing reused.
    let s = run(&["--resume", "--thin-um", "25"]);
    assert_eq!(s["images_reused"].as_u64(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&j2).unwrap()).unwrap();
    assert_eq!(v["settings"]["thin_um"], 25.0);
}

#[cfg(unix)]
#[test]
fn sigint_finishes_in_flight_images_and_writes_whole_files() {
    interrupted_run_writes_whole_files("-INT");
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_in_flight_images_and_writes_whole_files() {
    interrupted_run_writes_whole_files("-TERM");
}

#[cfg(unix)]
fn interrupted_run_writes_whole_files(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let mut png = Vec::new();
    sample_image(0)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // Enough images that the run cannot end before the signal lands, even on a busy machine.
    for k in 0..80 {
        fs::write(data.join(format!("img{k:02}.png")), &png).unwrap();
    }
    let out = tmp.path().join("out");
    let exe = assert_cmd::cargo::cargo_bin("trichometer");
    let child = std::process::Command::new(exe)
        .current_dir(tmp.path())
        .args(["analyze", "data", "--out", "out", "--jobs", "1", "--quiet"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first finished report, then interrupt.
    let start = Instant::now();
    while !out.join("images/data/img00.png.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no report after 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let s = summary(&out);
    let done = s["images_ok"].as_u64().unwrap() + s["images_failed"].as_u64().unwrap();
    let not_run = s["images_not_run"].as_u64().unwrap();
    assert!(done >= 1 && not_run > 0, "{s}");
    assert_eq!(done + not_run, 80);
    // images.csv: a header and only whole rows, one per finished image, each with its JSON.
    let r = rows(&out);
    assert_eq!(r.len() as u64, done);
    assert!(r
        .iter()
        .all(|r| r["status"] == "ok" && !r["sha256"].is_empty()));
    assert_eq!(json_reports(&out).len() as u64, done);
    assert!(out.join("hairs.csv").exists());
    assert_no_temp_files(&out);

    // --resume completes the run, reusing what was finished.
    bin()
        .current_dir(tmp.path())
        .args([
            "analyze", "data", "--out", "out", "--jobs", "2", "--quiet", "--resume",
        ])
        .timeout(Duration::from_secs(300))
        .assert()
        .code(0);
    let s = summary(&out);
    assert_eq!(s["images_ok"], 80);
    assert_eq!(s["images_reused"].as_u64(), Some(done));
}

#[test]
fn a_panic_in_one_image_is_its_error_and_the_batch_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    for k in 0..3 {
        sample_image(k)
            .save(tmp.path().join(format!("p{k}.png")))
            .unwrap();
    }
    let assert = bin()
        .current_dir(tmp.path())
        .env("TRICHOMETER_TEST_PANIC_ON", "p1.png")
        .args([
            "analyze", "p0.png", "p1.png", "p2.png", "--out", "out", "--jobs", "2",
        ])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("p1.png: internal error"))
        // The caught panic is not dumped on stderr by the default hook.
        .stderr(predicate::str::contains("panicked at").not());
    drop(assert);
    let r = rows(&tmp.path().join("out"));
    let status: Vec<&str> = r.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(status, ["ok", "error", "ok"]);
    assert!(
        r[1]["error"].starts_with("internal error while analysing (panic:"),
        "{:?}",
        r[1]
    );
    assert!(!r[1]["sha256"].is_empty());
    let s = summary(&tmp.path().join("out"));
    assert_eq!(
        (s["images_ok"].as_u64(), s["images_failed"].as_u64()),
        (Some(2), Some(1))
    );
}
