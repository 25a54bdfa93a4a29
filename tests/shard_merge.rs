//! `analyze --shard K/N` + `merge` gives the same report folder as one run, byte for byte.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{bin, sample_image};

/// Every data file under `dir` (the pictures, `report.html`, `histograms/` and
/// `overlays/`, are drawn by `analyze` only and not rebuilt by `merge`), by `/`-separated
/// relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "report.html" || rel.starts_with("histograms") || rel.starts_with("overlays") {
            continue;
        }
        if e.file_type().is_file() {
            out.insert(rel.replace('\\', "/"), fs::read(e.path()).unwrap());
        }
    }
    out
}

/// A small study: 8 images in nested folders (one damaged), with a manifest of scales and
/// subject/region tags so `groups.csv` is written too.
fn study(root: &Path) -> PathBuf {
    let data = root.join("study");
    let names = [
        "s1/frontal_a.png",
        "s1/frontal_b.jpg",
        "s1/occipital_a.png",
        "s2/frontal_a.png",
        "s2/occipital_a.png",
        "s2/occipital_b.png",
        "z_last.png",
    ];
    for (i, n) in names.iter().enumerate() {
        let p = data.join(n);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        sample_image(i as u64).save(&p).unwrap();
    }
    fs::write(data.join("s2/broken.png"), b"not an image").unwrap();
    let mut m = String::from("image,um_per_px,subject,region,visit\n");
    for n in names {
        let subject = n.split('/').next().unwrap();
        let region = if n.contains("frontal") {
            "frontal"
        } else {
            "occipital"
        };
        m.push_str(&format!("{n},4,{subject},{region},1\n"));
    }
    fs::write(root.join("manifest.csv"), m).unwrap();
    data
}

fn analyze(data: &Path, root: &Path, out: &Path, extra: &[&str]) {
    let mut cmd = bin();
    cmd.arg("analyze")
        .arg(data)
        .arg("--manifest")
        .arg(root.join("manifest.csv"))
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .args(extra);
    if !extra.contains(&"--jobs") {
        cmd.args(["--jobs", "2"]);
    }
    // One image is damaged: exit 1 (in the whole run and in its shard), 0 otherwise.
    let code = cmd.output().unwrap().status.code().unwrap();
    assert!(code == 0 || code == 1, "analyze exited {code}");
}

#[test]
fn shards_merge_into_the_single_run_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = study(root);
    let whole = root.join("whole");
    analyze(&data, root, &whole, &[]);

    let parts: Vec<PathBuf> = (1..=3).map(|k| root.join(format!("part{k}"))).collect();
    for (k, p) in parts.iter().enumerate() {
        analyze(&data, root, p, &["--shard", &format!("{}/3", k + 1)]);
    }
    // Each shard is a normal report folder holding its share of the images.
    let counts: Vec<usize> = parts
        .iter()
        .map(|p| common::read_csv(&p.join("images.csv")).1.len())
        .collect();
    assert_eq!(counts, vec![3, 3, 2]);

    let merged = root.join("merged");
    // Shards given in any order.
    bin()
        .arg("merge")
        .arg("--out")
        .arg(&merged)
        .args([&parts[2], &parts[0], &parts[1]])
        .arg("--quiet")
        .assert()
        .code(1); // the damaged image is reported as failed, as in the whole run

    let a = files(&whole);
    let b = files(&merged);
    assert!(a.contains_key("groups.csv"), "test must cover groups.csv");
    assert!(a.keys().any(|k| k.ends_with("s2/broken.png.json")));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same files"
    );
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs between the whole run and the merge"
        );
    }

    // A second whole run is byte-identical too: no timestamps in the reports.
    let again = root.join("again");
    analyze(&data, root, &again, &["--jobs", "1"]);
    assert_eq!(files(&again), a);
}

#[test]
fn merge_refuses_overlap_missing_shards_and_mixed_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("d");
    fs::create_dir_all(&data).unwrap();
    for i in 0..4 {
        sample_image(i).save(data.join(format!("{i}.png"))).unwrap();
    }
    let run = |out: &str, extra: &[&str]| {
        bin()
            .arg("analyze")
            .arg(&data)
            .arg("--out")
            .arg(root.join(out))
            .args(["--quiet", "--um-per-px", "4"])
            .args(extra)
            .assert()
            .success();
    };
    run("p1", &["--shard", "1/2"]);
    run("p2", &["--shard", "2/2"]);
    run("p2b", &["--shard", "2/2", "--thin-um", "25"]);
    run("whole", &[]);
    let merge = |dirs: &[&str]| {
        let out = bin()
            .arg("merge")
            .arg("--out")
            .arg(root.join("m"))
            .args(dirs.iter().map(|d| root.join(d)))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = merge(&["p1", "p1"]);
    assert_eq!(code, 2);
    assert!(err.contains("both"), "{err}");
    let (code, err) = merge(&["p1"]);
    assert_eq!(code, 2);
    assert!(err.contains("2/2 missing"), "{err}");
    let (code, err) = merge(&["p1", "p2b"]);
    assert_eq!(code, 2);
    assert!(err.contains("different settings"), "{err}");
    let (code, err) = merge(&["p1", "whole"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("overlap") || err.contains("whole run"),
        "{err}"
    );
    assert!(!root.join("m/summary.json").exists());
    let (code, _) = merge(&["p2", "p1"]);
    assert_eq!(code, 0);
    assert_eq!(files(&root.join("m")), files(&root.join("whole")));
}
