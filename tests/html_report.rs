//! The pictures of a batch through the library API: overlays, histograms and report.html,
//! and report.html opened in headless Chromium (no errors, one table row per image, no
//! request leaving the machine).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use trichometer::batch;
use trichometer::output::ReportWriter;
use trichometer::pictures::PictureWriter;
use trichometer::Settings;

/// Runs a batch over `dir` the way the binary does, with pictures; returns the output folder.
fn run_batch(dir: &Path, out: &Path, settings: &Settings, overlays: bool) -> usize {
    let inputs = batch::discover(&[dir.to_path_buf()]);
    let mut reports = ReportWriter::create(out, settings).unwrap();
    let mut pictures = PictureWriter::create(out, settings).unwrap();
    let stop = AtomicBool::new(false);
    batch::run(
        &inputs,
        2,
        &stop,
        |input| {
            batch::analyze_file_with_pictures(input, settings, "flag", 50_000_000, None, overlays)
        },
        |i, (report, pics)| {
            reports.add(&inputs[i], &report).unwrap();
            pictures.add(&inputs[i], &report, pics.as_ref()).unwrap();
        },
    );
    let summary = reports.finish(0).unwrap();
    pictures.finish(&summary).unwrap();
    inputs.len()
}

/// Three images with hairs (one named like markup), one corrupt file.
fn sample_folder(dir: &Path) {
    common::sample_image(0).save(dir.join("a.png")).unwrap();
    common::sample_image(3)
        .save(dir.join("<script>.png"))
        .unwrap();
    std::fs::create_dir_all(dir.join("sub dir")).unwrap();
    common::sample_image(6)
        .save(dir.join("sub dir").join("c&d.png"))
        .unwrap();
    std::fs::write(dir.join("broken <b>.jpg"), b"not a jpeg").unwrap();
}

fn scaled() -> Settings {
    Settings {
        um_per_px: Some(8.0),
        ..Settings::default()
    }
}

#[test]
fn batch_writes_overlays_histograms_and_an_escaped_page() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&src).unwrap();
    sample_folder(&src);
    assert_eq!(run_batch(&src, &out, &scaled(), true), 4);

    let rel = |name: &str| batch::safe_relative(&src.join(name));
    for name in ["a.png", "<script>.png", "sub dir/c&d.png"] {
        let png = out.join("overlays").join(format!("{}.png", rel(name)));
        let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        // The photo's size plus the legend strip below it.
        assert_eq!(img.width(), 320);
        assert!(img.height() > 240 && img.height() < 340);
        let svg =
            std::fs::read_to_string(out.join("histograms").join(format!("{}.svg", rel(name))))
                .unwrap();
        assert!(svg.contains("thin limit 30 µm"));
    }
    assert!(!out
        .join("overlays")
        .join(format!("{}.png", rel("broken <b>.jpg")))
        .exists());
    assert!(out.join("histograms/pooled.svg").exists());

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<tr class=\"row\">").count(), 4);
    // Names and errors are escaped: the only script element is the page's own.
    assert_eq!(html.matches("<script").count(), 1, "one <script> tag");
    assert!(html.contains("&lt;script&gt;.png"));
    assert!(html.contains("broken &lt;b&gt;.jpg"));
    assert!(!html.contains("<b>.jpg"));
    assert!(html.contains("c&amp;d.png"));
    assert!(html.contains("For research and educational purposes only"));
    assert!(html.contains("data:image/jpeg;base64,"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    // Links to the full overlays are relative and percent-encoded.
    assert!(html.contains("href=\"./overlays/"));
    assert!(html.contains("%3Cscript%3E.png.png"));
}

#[test]
fn without_overlay_flag_the_page_still_has_thumbnails() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&src).unwrap();
    common::sample_image(1).save(src.join("x.png")).unwrap();
    run_batch(&src, &out, &Settings::default(), false);
    assert!(!out.join("overlays").exists());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data:image/jpeg;base64,"));
    assert!(html.contains("hair width (px)"));
    assert!(!html.contains("href=\"./overlays/"));
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Flags that keep Chromium from any background traffic of its own.
fn chromium_cmd(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--metrics-recording-only",
        "--window-size=1200,900",
        // Any host lookup fails: nothing can leave even if the page tried.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("TRICHOMETER_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("TRICHOMETER_REQUIRE_CHROMIUM=1 but chromium is not installed (run .ci/install-chromium.sh)");
        }
        eprintln!("skipped: chromium not installed (.ci/install-chromium.sh installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&src).unwrap();
    sample_folder(&src);
    let n = run_batch(&src, &out, &scaled(), true);
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // No request can leave: no absolute URL anywhere, and the CSP forbids every fetch.
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("default-src 'none'"));
    let url = format!("file://{}", page.display());

    let shot = tmp.path().join("shot.png");
    let o = chromium_cmd(&bin, &tmp.path().join("profile1"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "chromium failed: {log}");
    let img = image::open(&shot).expect("screenshot is a PNG");
    assert_eq!((img.width(), img.height()), (1200, 900));
    // Non-trivial: the page drew text and pictures, not one flat colour.
    let rgb = img.to_rgb8();
    let first = *rgb.get_pixel(0, 0);
    let differing = rgb.pixels().filter(|p| **p != first).count();
    assert!(
        differing > 10_000,
        "screenshot nearly blank ({differing} pixels differ)"
    );
    // Console errors (e.g. a CSP violation by the page's own script) show in the log.
    for bad in [
        "Content Security Policy",
        "Refused to",
        "Uncaught",
        "ERR_NAME_NOT_RESOLVED",
    ] {
        assert!(!log.contains(bad), "chromium reported {bad}: {log}");
    }

    let o = chromium_cmd(&bin, &tmp.path().join("profile2"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(o.status.success());
    let dom = String::from_utf8_lossy(&o.stdout);
    let table = &dom[dom.find("id=\"summary\"").expect("summary table")..];
    let tbody = &table[table.find("<tbody>").expect("summary table body")..];
    let tbody = &tbody[..tbody.find("</tbody>").unwrap()];
    assert_eq!(tbody.matches("<tr").count(), n, "one summary row per image");
    // Sorting: a copy of the page whose CSP also admits a test script that clicks the
    // "cv" or "thin fraction" header twice (descending).
    for col in [8usize, 9] {
        let click = format!(
        "<script>var h=document.querySelectorAll('#summary th')[{col}];h.click();h.click();</script>"
    );
        let test_page = out.join("sort-test.html");
        let patched = html
            .replacen(
                "script-src 'sha256-",
                "script-src 'unsafe-inline' 'sha256-",
                1,
            )
            .replace("</body>", &format!("{click}</body>"));
        // With a hash present 'unsafe-inline' is ignored, so drop the hash for this copy.
        let start = patched.find("'sha256-").unwrap();
        let end = start + patched[start..].find("';").unwrap() + 1;
        let patched = format!("{}{}", &patched[..start], &patched[end..]);
        std::fs::write(&test_page, patched).unwrap();
        let o = chromium_cmd(&bin, &tmp.path().join(format!("profile-sort-{col}")))
            .arg("--dump-dom")
            .arg(format!("file://{}", test_page.display()))
            .output()
            .expect("chromium runs");
        let sorted = String::from_utf8_lossy(&o.stdout);
        let table = &sorted[sorted.find("id=\"summary\"").unwrap()..];
        let tbody = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
        let values: Vec<Option<f64>> = tbody
            .split("<tr")
            .skip(1)
            .map(|row| {
                let cell = row.split("<td").nth(col + 1).unwrap();
                let v = cell
                    .split("data-v=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                v.parse().ok()
            })
            .collect();
        assert_eq!(values.len(), n);
        assert_eq!(
            values.last(),
            Some(&None),
            "the failed image sorts last: {values:?}"
        );
        let nums: Vec<f64> = values.iter().flatten().copied().collect();
        assert!(
            nums.windows(2).all(|w| w[0] >= w[1]),
            "descending: {values:?}"
        );
    }
    // The markup-like file name stayed text in the parsed page.
    assert!(dom.contains("&lt;script&gt;.png"));
    assert_eq!(dom.matches("<script").count(), 1);
}
