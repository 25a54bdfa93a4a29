//! The real binary on real files in a temporary folder.

mod common;

use std::fs;
use std::path::Path;

use common::{bin, read_csv, sample_image};
use predicates::prelude::*;

const IMAGE_COLUMNS: &[&str] = &[
    "image",
    "status",
    "error",
    "width_px",
    "height_px",
    "um_per_px",
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
    "faint_limit",
];
const HAIR_COLUMNS: &[&str] = &[
    "image",
    "hair_id",
    "width_um",
    "width_px",
    "width_sd_um",
    "length_um",
    "length_px",
    "x_start",
    "y_start",
    "x_end",
    "y_end",
    "class",
];

/// A folder with good images (nested), a corrupt JPEG, a text file named .png, an empty
/// file and a file with another extension that must be skipped.
fn mixed_folder(root: &Path) {
    fs::create_dir_all(root.join("a/nested/deeper")).unwrap();
    sample_image(0).save(root.join("a/good1.png")).unwrap();
    sample_image(3)
        .save(root.join("a/nested/deeper/good2.JPG"))
        .unwrap();
    sample_image(5).save(root.join("b_good3.tif")).unwrap();
    let mut jpeg = Vec::new();
    sample_image(1)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    fs::write(root.join("a/corrupt.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    fs::write(
        root.join("a/nested/notes.png"),
        "these are my notes, not a picture\n",
    )
    .unwrap();
    fs::write(root.join("empty.jpeg"), b"").unwrap();
    fs::write(root.join("readme.txt"), "ignored").unwrap();
}

#[test]
fn mixed_folder_reports_every_image_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    mixed_folder(&data);
    let out = tmp.path().join("out");
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "data", "--out", "out", "--um-per-px", "5"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Not a medical device"))
        .stderr(predicate::str::contains("3 ok, 3 failed"));

    let (header, rows) = read_csv(&out.join("images.csv"));
    for c in IMAGE_COLUMNS {
        assert!(header.iter().any(|h| h == c), "images.csv lacks {c}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r[col("image")].as_str()).collect();
    assert_eq!(
        names,
        [
            "data/a/corrupt.jpg",
            "data/a/good1.png",
            "data/a/nested/deeper/good2.JPG",
            "data/a/nested/notes.png",
            "data/b_good3.tif",
            "data/empty.jpeg"
        ]
    );
    for r in &rows {
        let ok = r[col("image")].contains("good");
        assert_eq!(r[col("status")], if ok { "ok" } else { "error" }, "{r:?}");
        if ok {
            assert!(r[col("error")].is_empty());
            assert_eq!(r[col("width_px")], "320");
            assert_eq!(r[col("um_per_px")], "5.0");
            let n: usize = r[col("hair_count")].parse().unwrap();
            assert!((3..=6).contains(&n), "hair count {n} in {r:?}");
            let thin: f64 = r[col("thin_fraction")].parse().unwrap();
            assert!((0.0..=1.0).contains(&thin));
            let faint: f64 = r[col("faint_limit")].parse().unwrap();
            assert!(faint > 0.0 && faint < 1.0, "faint limit {faint}");
        } else {
            let e = &r[col("error")];
            assert!(!e.is_empty() && !e.contains('\n'), "{e}");
            assert!(r[col("faint_limit")].is_empty());
        }
    }
    let err = |name: &str| {
        rows.iter()
            .find(|r| r[col("image")].ends_with(name))
            .unwrap()[col("error")]
        .clone()
    };
    assert!(
        err("empty.jpeg").contains("empty file"),
        "{}",
        err("empty.jpeg")
    );
    assert!(
        err("notes.png").contains("not a recognised image"),
        "{}",
        err("notes.png")
    );
    assert!(
        err("corrupt.jpg").contains("decode"),
        "{}",
        err("corrupt.jpg")
    );

    // Every image has its JSON report, with points and the disclaimer.
    for n in &names {
        let p = out.join("images").join(format!("{n}.json"));
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert!(v["disclaimer"]
            .as_str()
            .unwrap()
            .contains("Not a medical device"));
        assert_eq!(v["image"], *n);
        if n.contains("good") {
            let hairs = v["hairs"].as_array().unwrap();
            assert!(!hairs.is_empty());
            assert!(hairs[0]["points"].as_array().unwrap().len() > 10);
            assert!(v["settings"]["um_per_px"].as_f64() == Some(5.0));
        }
    }
    let (hheader, hrows) = read_csv(&out.join("hairs.csv"));
    for c in HAIR_COLUMNS {
        assert!(hheader.iter().any(|h| h == c), "hairs.csv lacks {c}");
    }
    assert!(hrows.len() >= 9);
    let s: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["images_ok"], 3);
    assert_eq!(s["images_failed"], 3);
    assert_eq!(s["hairs"].as_u64().unwrap() as usize, hrows.len());
    assert!(s["disclaimer"]
        .as_str()
        .unwrap()
        .contains("Not a medical device"));
    // Nothing but the report files was written.
    let mut written: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "hairs.csv",
            "histograms",
            "images",
            "images.csv",
            "report.html",
            "summary.json"
        ]
    );
}

#[test]
fn good_images_exit_0_and_widths_are_right() {
    let tmp = tempfile::tempdir().unwrap();
    sample_image(0).save(tmp.path().join("one.png")).unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "one.png", "--um-per-px", "4"])
        .assert()
        .success();
    let out = tmp.path().join("trichometer-report");
    let (header, rows) = read_csv(&out.join("hairs.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut widths: Vec<f64> = rows
        .iter()
        .map(|r| r[col("width_px")].parse().unwrap())
        .collect();
    widths.sort_by(f64::total_cmp);
    // Rendered widths: 3, 5 (light), 6, 10 px.
    assert_eq!(widths.len(), 4, "{widths:?}");
    for (w, truth) in widths.iter().zip([3.0, 5.0, 6.0, 10.0]) {
        assert!((w - truth).abs() < 0.5, "{widths:?}");
    }
    for r in &rows {
        let w: f64 = r[col("width_px")].parse().unwrap();
        let um: f64 = r[col("width_um")].parse().unwrap();
        assert!((um - 4.0 * w).abs() < 0.01);
        let class = &r[col("class")];
        assert_eq!(
            class,
            if um < 30.0 {
                "thin"
            } else if um >= 60.0 {
                "terminal"
            } else {
                "intermediate"
            }
        );
    }
}

#[test]
fn without_scale_micrometre_columns_are_empty_and_it_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    sample_image(0).save(tmp.path().join("one.png")).unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "one.png", "--out", "o"])
        .assert()
        .success()
        .stderr(predicate::str::contains("no scale"));
    let (header, rows) = read_csv(&tmp.path().join("o/images.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for c in [
        "um_per_px",
        "mean_um",
        "median_um",
        "sd_um",
        "thin_count",
        "thin_fraction",
    ] {
        assert_eq!(rows[0][col(c)], "", "{c}");
    }
    assert!(!rows[0][col("mean_px")].is_empty());
    let (header, rows) = read_csv(&tmp.path().join("o/hairs.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert!(rows
        .iter()
        .all(|r| r[col("width_um")].is_empty() && r[col("class")].is_empty()));
}

fn all_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().display().to_string(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn jobs_1_2_and_8_give_identical_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    mixed_folder(&data);
    for k in 6..12 {
        sample_image(k)
            .save(data.join(format!("x{k}.png")))
            .unwrap();
    }
    for jobs in ["1", "2", "8"] {
        bin()
            .current_dir(tmp.path())
            .args([
                "analyze",
                "data",
                "--quiet",
                "--um-per-px",
                "3",
                "--jobs",
                jobs,
                "--out",
                &format!("out{jobs}"),
            ])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("Not a medical device").not());
    }
    // Byte for byte: the reports hold no timing fields.
    let a = all_files(&tmp.path().join("out1"));
    assert!(a.len() > 12);
    for other in ["out2", "out8"] {
        let b = all_files(&tmp.path().join(other));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.0, y.0);
            assert!(x.1 == y.1, "{} differs between --jobs 1 and {other}", x.0);
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    bin().args(["analyze"]).assert().code(2);
    bin()
        .args(["analyze", "x.png", "--um-per-px", "-3"])
        .assert()
        .code(2);
    bin()
        .args(["analyze", "x.png", "--no-such-flag"])
        .assert()
        .code(2);
    bin().args(["frobnicate"]).assert().code(2);
    bin()
        .args(["analyze", "x.png", "--thin-um", "70"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("terminal"));
}

#[test]
fn missing_input_is_an_error_row() {
    let tmp = tempfile::tempdir().unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "nope.jpg", "--out", "o"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nope.jpg: no such file"));
    let (_, rows) = read_csv(&tmp.path().join("o/images.csv"));
    assert_eq!(rows.len(), 1);
}

#[test]
fn synth_analyze_and_validate_with_a_per_hair_table() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |dir: &str, extra: &[&str]| {
        let out = tmp.path().join(dir);
        bin()
            .args(["synth", "--n", "2", "--seed", "902", "--difficulty", "hard"])
            .args(["--size", "320x240", "--out"])
            .arg(&out)
            .args(extra)
            .assert()
            .success();
        out
    };
    let (with, without) = (run("with", &[]), run("without", &["--no-highlights"]));
    let (header, rows) = read_csv(&with.join("manifest.csv"));
    assert_eq!(header, ["image", "um_per_px"]);
    assert_eq!(rows.len(), 2);
    for name in ["phantom_0000", "phantom_0001"] {
        let truth = |d: &Path| fs::read(d.join(format!("{name}.truth.json"))).unwrap();
        assert_eq!(
            truth(&with),
            truth(&without),
            "{name}: same hairs and truth"
        );
        let image = |d: &Path| image::open(d.join(format!("{name}.jpg"))).unwrap();
        let img = image(&without);
        assert_eq!((img.width(), img.height()), (320, 240));
    }

    // Analyse the phantoms and score the report: the per-hair table has one row per truth
    // hair and gives the same recall as the scores.
    let report = tmp.path().join("report");
    bin()
        .arg("analyze")
        .arg(&with)
        .arg("--manifest")
        .arg(with.join("manifest.csv"))
        .arg("--out")
        .arg(&report)
        .arg("--quiet")
        .assert()
        .success();
    let (json, hairs) = (tmp.path().join("v.json"), tmp.path().join("hairs.csv"));
    bin()
        .args(["validate", "--truth"])
        .arg(&with)
        .arg("--report")
        .arg(&report)
        .arg("--json")
        .arg(&json)
        .arg("--hairs")
        .arg(&hairs)
        .assert()
        .success()
        .stdout(predicate::str::contains("Hair recall"));
    let (header, rows) = read_csv(&hairs);
    assert_eq!(header[..4], ["image", "truth_id", "x", "y"]);
    let truth_hairs: usize = ["phantom_0000", "phantom_0001"]
        .iter()
        .map(|n| {
            let t: serde_json::Value =
                serde_json::from_slice(&fs::read(with.join(format!("{n}.truth.json"))).unwrap())
                    .unwrap();
            t["hairs"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(rows.len(), truth_hairs);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (counted, recalled) = (col("counted"), col("recalled"));
    let n = rows.iter().filter(|r| r[counted] == "true").count();
    let hit = rows
        .iter()
        .filter(|r| r[counted] == "true" && r[recalled] == "true")
        .count();
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["recall"]["overall"]["n"], n);
    assert_eq!(v["recall"]["overall"]["recalled"], hit);
    assert!(hit > 0, "some hairs found");
}
