//! The research workflow through the real binary: manifest scales and tags, groups.csv,
//! folder calibration files, and `--format jsonl` on stdout.

mod common;

use std::fs;

use common::{bin, read_csv, sample_image};

#[test]
fn manifest_scales_tags_and_groups_and_jsonl_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("study");
    fs::create_dir_all(d.join("s1")).unwrap();
    sample_image(0).save(d.join("s1/front.png")).unwrap();
    sample_image(2).save(d.join("s1/back.png")).unwrap();
    sample_image(4).save(d.join("other.png")).unwrap();
    // A folder file gives the untagged image its scale; the manifest wins for the others.
    fs::write(d.join("trichometer.toml"), "um_per_px = 5.0\n").unwrap();
    fs::write(
        tmp.path().join("manifest.csv"),
        "image,um_per_px,subject,region\ns1/front.png,4.0,P01,frontal\ns1/back.png,4.0,P01,occipital\n",
    )
    .unwrap();
    let out = bin()
        .current_dir(tmp.path())
        .args([
            "analyze",
            "study",
            "--manifest",
            "manifest.csv",
            "--out",
            "o",
            "--format",
            "jsonl",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One JSON object per image on stdout, parseable line by line, in path order.
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect();
    let names: Vec<&str> = lines.iter().map(|v| v["image"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["study/other.png", "study/s1/back.png", "study/s1/front.png"]
    );
    assert!(lines.iter().all(|v| v["disclaimer"]
        .as_str()
        .unwrap()
        .contains("Not a medical device")));
    assert!(lines[1]["widths_um"].as_array().unwrap().len() >= 3);

    let (h, rows) = read_csv(&tmp.path().join("o/images.csv"));
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let by = |name: &str| {
        rows.iter()
            .find(|r| r[col("image")] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by("study/other.png")[col("um_per_px")], "5.0");
    assert_eq!(by("study/other.png")[col("scale_source")], "folder");
    assert_eq!(by("study/s1/front.png")[col("um_per_px")], "4.0");
    assert_eq!(by("study/s1/front.png")[col("scale_source")], "manifest");
    assert_eq!(by("study/s1/front.png")[col("region")], "frontal");
    assert_eq!(by("study/s1/front.png")[col("sha256")].len(), 64);

    // groups.csv: one row per region of P01 and the subject row with the comparison.
    let (gh, grows) = read_csv(&tmp.path().join("o/groups.csv"));
    let gcol = |n: &str| gh.iter().position(|c| c == n).unwrap();
    let subject = grows
        .iter()
        .find(|r| r[gcol("level")] == "subject")
        .expect("subject row");
    let ratio: f64 = subject[gcol("frontal_occipital_mean_ratio")]
        .parse()
        .unwrap();
    assert!(ratio > 0.5 && ratio < 2.0, "{ratio}");
    assert!(
        !subject[gcol("hairs_note")].is_empty(),
        "fewer than 50 hairs must be noted"
    );
}

#[test]
fn version_help_and_completions() {
    let v = bin().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).contains(env!("CARGO_PKG_VERSION")));
    let h = bin().args(["analyze", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&h.stdout);
    assert!(help.contains("Examples:") && help.contains("--manifest"));
    for shell in ["bash", "zsh", "fish"] {
        let c = bin().args(["completions", shell]).output().unwrap();
        assert!(c.status.success());
        assert!(
            String::from_utf8_lossy(&c.stdout).contains("analyze"),
            "{shell}"
        );
    }
}
