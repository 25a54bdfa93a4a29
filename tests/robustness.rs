//! Issue 8, inputs: every kind of broken, odd or surprising file a clinic batch holds gets
//! either a correct analysis or an error row with a clear one-line reason; nothing crashes
//! the batch, hangs it or eats the machine's memory.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{bin, read_csv, render, sample_image, Bar};
use image::{DynamicImage, ImageFormat};

/// The `images.csv` rows of a report folder, as column → value maps, in file order.
fn rows(out: &Path) -> Vec<HashMap<String, String>> {
    let (header, rows) = read_csv(&out.join("images.csv"));
    rows.into_iter()
        .map(|r| header.iter().cloned().zip(r).collect())
        .collect()
}

/// Writes `bytes` as `name` in a fresh folder, analyses it and returns its row and the
/// exit status. Every run is bounded in time: a hang is a failure.
fn analyze_bytes(name: &str, bytes: &[u8], extra: &[&str]) -> (HashMap<String, String>, i32) {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(name), bytes).unwrap();
    let out = bin()
        .current_dir(tmp.path())
        .args(["analyze", name, "--out", "out", "--quiet"])
        .args(extra)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let code = out.status.code().expect("exited, not killed");
    let mut r = rows(&tmp.path().join("out"));
    assert_eq!(r.len(), 1, "{r:?}");
    let row = r.remove(0);
    assert_eq!(row["image"], name);
    (row, code)
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Vec::new();
    img.write_to(&mut Cursor::new(&mut buf), format).unwrap();
    buf
}

/// An error row with a one-line reason containing `needle`, and exit status 1.
fn assert_error(row: &HashMap<String, String>, code: i32, needle: &str) {
    assert_eq!(row["status"], "error", "{row:?}");
    let e = &row["error"];
    assert!(e.contains(needle), "error {e:?} lacks {needle:?}");
    assert!(!e.contains('\n') && !e.contains("internal error"), "{e:?}");
    assert_eq!(code, 1);
}

/// An ok row for the 320x240 sample image: all its hairs found, exit status 0.
fn assert_sample_ok(row: &HashMap<String, String>, code: i32) {
    assert_eq!(row["status"], "ok", "{row:?}");
    assert_eq!(
        (row["width_px"].as_str(), row["height_px"].as_str()),
        ("320", "240")
    );
    let n: usize = row["hair_count"].parse().unwrap();
    assert!((3..=6).contains(&n), "hair count {n}: {row:?}");
    assert_eq!(code, 0);
}

fn sample() -> DynamicImage {
    DynamicImage::ImageRgb8(sample_image(0))
}

// ---- corrupt, truncated, empty, not an image ----

#[test]
fn truncated_jpeg_is_an_error_row() {
    let jpeg = encode(&sample(), ImageFormat::Jpeg);
    let (row, code) = analyze_bytes("cut.jpg", &jpeg[..jpeg.len() * 2 / 3], &[]);
    assert_error(&row, code, "truncated JPEG");
}

#[test]
fn corrupt_jpeg_is_an_error_row() {
    // Header intact, entropy-coded data overwritten, end marker kept.
    let mut jpeg = encode(&sample(), ImageFormat::Jpeg);
    let n = jpeg.len();
    for b in &mut jpeg[n / 3..n - 2] {
        *b = 0xFF;
    }
    let (row, code) = analyze_bytes("corrupt.jpg", &jpeg, &[]);
    // Either the decoder rejects it or it decodes to garbage that is analysed: no crash.
    if row["status"] == "error" {
        assert_error(&row, code, "decode");
    } else {
        assert_eq!(code, 0);
    }
}

#[test]
fn truncated_png_is_an_error_row() {
    let png = encode(&sample(), ImageFormat::Png);
    let (row, code) = analyze_bytes("cut.png", &png[..png.len() / 2], &[]);
    assert_error(&row, code, "cannot decode image: file is truncated");
}

#[test]
fn truncated_tiff_is_an_error_row() {
    let tiff = encode(&sample(), ImageFormat::Tiff);
    let (row, code) = analyze_bytes("cut.tif", &tiff[..tiff.len() / 2], &[]);
    assert_error(&row, code, "cannot decode image: file is truncated");
}

#[test]
fn zero_byte_file_is_an_error_row() {
    let (row, code) = analyze_bytes("empty.png", b"", &[]);
    assert_error(&row, code, "empty file (0 bytes)");
}

#[test]
fn text_with_an_image_extension_is_an_error_row() {
    let (row, code) = analyze_bytes("notes.jpg", b"patient notes: not a picture\n", &[]);
    assert_error(&row, code, "not a recognised image format");
}

#[test]
fn format_is_read_from_the_content_not_the_extension() {
    // A PNG saved as .jpg is still analysed.
    let (row, code) = analyze_bytes(
        "really-a-png.jpg",
        &encode(&sample(), ImageFormat::Png),
        &[],
    );
    assert_sample_ok(&row, code);
}

// ---- sizes ----

#[test]
fn one_pixel_image_gives_zero_hairs() {
    let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1, 1, image::Rgb([180; 3])));
    let (row, code) = analyze_bytes("dot.png", &encode(&img, ImageFormat::Png), &[]);
    assert_eq!(row["status"], "ok", "{row:?}");
    assert_eq!(row["hair_count"], "0");
    assert_eq!(
        (row["width_px"].as_str(), row["height_px"].as_str()),
        ("1", "1")
    );
    assert_eq!(code, 0);
}

/// A PNG whose header claims `w`x`h` 8-bit RGB, with one tiny (wrong) data chunk.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    // zlib stream of a single empty stored block: far too little data.
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn huge_image_fails_fast_with_the_limit_and_the_flag_moves_it() {
    let png = png_claiming(20_000, 20_000);
    let t = Instant::now();
    let (row, code) = analyze_bytes("huge.png", &png, &[]);
    assert_error(
        &row,
        code,
        "image too large: 20000x20000 exceeds the limit of 100000000 pixels (raise it with --max-megapixels)",
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());

    // 400 MP is under a 500 MP limit: past the size check, the (fake) data fails to
    // decode, quickly and without allocating the whole image.
    let t = Instant::now();
    let (row, code) = analyze_bytes("huge.png", &png, &["--max-megapixels", "500"]);
    assert_error(&row, code, "cannot decode image");
    assert!(!row["error"].contains("too large"), "{row:?}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn file_too_big_for_the_limit_is_refused_before_reading() {
    // A sparse 200 MB file: with a 1 MP limit no image encoding can be that large.
    let tmp = tempfile::tempdir().unwrap();
    let f = fs::File::create(tmp.path().join("scan.tif")).unwrap();
    f.set_len(200 << 20).unwrap();
    let out = bin()
        .current_dir(tmp.path())
        .args([
            "analyze",
            "scan.tif",
            "--out",
            "out",
            "--quiet",
            "--max-megapixels",
            "1",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r = &rows(&tmp.path().join("out"))[0];
    assert_eq!(r["status"], "error");
    assert!(
        r["error"].starts_with("file too large: 209715200 bytes"),
        "{r:?}"
    );
    assert!(r["error"].contains("--max-megapixels"), "{r:?}");
}

// ---- bit depths, channels, colour models ----

#[test]
fn sixteen_bit_rgb_png_is_analysed() {
    let img = DynamicImage::ImageRgb16(sample().to_rgb16());
    let (row, code) = analyze_bytes("deep.png", &encode(&img, ImageFormat::Png), &[]);
    assert_sample_ok(&row, code);
}

#[test]
fn sixteen_bit_grey_png_is_analysed() {
    let img = DynamicImage::ImageLuma16(sample().to_luma16());
    let (row, code) = analyze_bytes("deep-grey.png", &encode(&img, ImageFormat::Png), &[]);
    assert_sample_ok(&row, code);
}

#[test]
fn sixteen_bit_tiff_is_analysed() {
    let img = DynamicImage::ImageRgb16(sample().to_rgb16());
    let (row, code) = analyze_bytes("deep.tiff", &encode(&img, ImageFormat::Tiff), &[]);
    assert_sample_ok(&row, code);
}

#[test]
fn grayscale_png_is_analysed() {
    let img = DynamicImage::ImageLuma8(sample().to_luma8());
    let (row, code) = analyze_bytes("grey.png", &encode(&img, ImageFormat::Png), &[]);
    assert_sample_ok(&row, code);
}

#[test]
fn grayscale_jpeg_is_analysed() {
    let img = DynamicImage::ImageLuma8(sample().to_luma8());
    let (row, code) = analyze_bytes("grey.jpg", &encode(&img, ImageFormat::Jpeg), &[]);
    assert_sample_ok(&row, code);
}

#[test]
fn alpha_png_is_analysed_and_alpha_ignored() {
    let mut rgba = sample().to_rgba8();
    for (i, p) in rgba.pixels_mut().enumerate() {
        p.0[3] = (i % 251) as u8; // alpha means nothing in a trichoscopy image
    }
    let (row, code) = analyze_bytes("alpha.png", &encode(&rgba.into(), ImageFormat::Png), &[]);
    assert_sample_ok(&row, code);
    let grey_alpha = DynamicImage::ImageLumaA8(sample().to_luma_alpha8());
    let (row, code) = analyze_bytes(
        "grey-alpha.png",
        &encode(&grey_alpha, ImageFormat::Png),
        &[],
    );
    assert_sample_ok(&row, code);
}

#[test]
fn sixteen_bit_rgba_png_is_analysed() {
    let img = DynamicImage::ImageRgba16(sample().to_rgba16());
    let (row, code) = analyze_bytes("deep-alpha.png", &encode(&img, ImageFormat::Png), &[]);
    assert_sample_ok(&row, code);
}

#[test]
fn cmyk_jpeg_is_analysed_with_its_colours_right() {
    // tests/fixtures/cmyk.jpg: see tests/fixtures/make_cmyk.py. Light skin, two dark hairs.
    let bytes =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cmyk.jpg")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("cmyk.jpg"), &bytes).unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["analyze", "cmyk.jpg", "--out", "out", "--quiet"])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);
    let r = &rows(&tmp.path().join("out"))[0];
    assert_eq!(r["status"], "ok", "{r:?}");
    assert_eq!(
        (r["width_px"].as_str(), r["height_px"].as_str()),
        ("200", "150")
    );
    let (header, hairs) = read_csv(&tmp.path().join("out/hairs.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    assert!(!hairs.is_empty() && hairs.len() <= 3, "{hairs:?}");
    // Decoded with the right polarity: the hairs are darker than the skin.
    assert!(
        hairs
            .iter()
            .any(|h| h[col("polarity")] == "dark"
                && h[col("width_px")].parse::<f64>().unwrap() > 4.0),
        "{hairs:?}"
    );
}

// ---- orientation ----

/// Inserts an APP1 Exif segment with the given Orientation after the JPEG's APP0.
fn with_exif_orientation(jpeg: &[u8], orientation: u8) -> Vec<u8> {
    let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    payload.extend([0, 1]); // one IFD entry
    payload.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0]);
    payload.extend([0, 0, 0, 0]); // no next IFD
    let mut seg = vec![0xFF, 0xE1];
    seg.extend(((payload.len() + 2) as u16).to_be_bytes());
    seg.extend(payload);
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut at = 2;
    if jpeg[2..4] == [0xFF, 0xE0] {
        at += 2 + u16::from_be_bytes([jpeg[4], jpeg[5]]) as usize;
    }
    let mut out = jpeg[..at].to_vec();
    out.extend(seg);
    out.extend(&jpeg[at..]);
    out
}

#[test]
fn exif_rotated_photo_is_measured_in_its_displayed_orientation() {
    // Stored 320x240 with one horizontal hair at y = 60; Orientation 6 means "rotate 90°
    // clockwise to display": shown 240x320 with the hair vertical at x = 240 - 1 - 60.
    let stored = render(
        320,
        240,
        &[Bar {
            centre: [160.0, 60.0],
            angle_deg: 0.0,
            width_px: 6.0,
            length_px: 240.0,
            transmission: 0.25,
        }],
        0.35,
        1.0,
        0.004,
    );
    let jpeg = encode(&DynamicImage::ImageRgb8(stored), ImageFormat::Jpeg);
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("phone.jpg"),
        with_exif_orientation(&jpeg, 6),
    )
    .unwrap();
    fs::write(tmp.path().join("plain.jpg"), &jpeg).unwrap();
    bin()
        .current_dir(tmp.path())
        .args([
            "analyze",
            "phone.jpg",
            "plain.jpg",
            "--out",
            "out",
            "--quiet",
        ])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(0);
    let r = rows(&tmp.path().join("out"));
    assert_eq!(r[0]["image"], "phone.jpg");
    assert_eq!(
        (r[0]["width_px"].as_str(), r[0]["height_px"].as_str()),
        ("240", "320")
    );
    assert_eq!(
        (r[1]["width_px"].as_str(), r[1]["height_px"].as_str()),
        ("320", "240")
    );
    let (header, hairs) = read_csv(&tmp.path().join("out/hairs.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let f = |h: &Vec<String>, n: &str| h[col(n)].parse::<f64>().unwrap();
    let of = |image: &str| -> Vec<&Vec<String>> {
        hairs.iter().filter(|h| h[col("image")] == image).collect()
    };
    let (rotated, plain) = (of("phone.jpg"), of("plain.jpg"));
    assert_eq!(rotated.len(), 1, "{rotated:?}");
    assert_eq!(plain.len(), 1, "{plain:?}");
    let h = rotated[0];
    assert!((f(h, "x_start") - 179.0).abs() < 3.0, "{h:?}");
    assert!((f(h, "x_end") - 179.0).abs() < 3.0, "{h:?}");
    assert!((f(h, "y_end") - f(h, "y_start")).abs() > 150.0, "{h:?}");
    let p = plain[0];
    assert!((f(p, "y_start") - 60.0).abs() < 3.0 && (f(p, "y_end") - 60.0).abs() < 3.0);
    // Same hair, same width, whichever way it is shown.
    assert!(
        (f(h, "width_px") - f(p, "width_px")).abs() < 0.3,
        "{h:?} {p:?}"
    );
}

// ---- images without hairs ----

#[test]
fn all_black_image_has_zero_hairs() {
    let img = DynamicImage::ImageRgb8(image::RgbImage::new(320, 240));
    let (row, code) = analyze_bytes("black.png", &encode(&img, ImageFormat::Png), &[]);
    assert_eq!(
        (row["status"].as_str(), row["hair_count"].as_str()),
        ("ok", "0"),
        "{row:?}"
    );
    assert_eq!(code, 0);
}

#[test]
fn all_white_image_has_zero_hairs() {
    let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(320, 240, image::Rgb([255; 3])));
    let (row, code) = analyze_bytes("white.png", &encode(&img, ImageFormat::Png), &[]);
    assert_eq!(
        (row["status"].as_str(), row["hair_count"].as_str()),
        ("ok", "0"),
        "{row:?}"
    );
    assert_eq!(code, 0);
}

#[test]
fn pure_noise_image_has_no_hairs_to_speak_of() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let img = image::RgbImage::from_fn(320, 240, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = (state >> 56) as u8;
        image::Rgb([b, b, b])
    });
    let (row, code) = analyze_bytes("noise.png", &encode(&img.into(), ImageFormat::Png), &[]);
    assert_eq!(row["status"], "ok", "{row:?}");
    let n: usize = row["hair_count"].parse().unwrap();
    assert!(n <= 2, "{n} hairs found in noise");
    assert_eq!(code, 0);
}

// ---- folders: links, loops, files that cannot be read ----

#[cfg(unix)]
#[test]
fn symlink_loops_and_dangling_links_do_not_stop_the_walk() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    sample_image(0).save(data.join("sub/a.png")).unwrap();
    symlink("..", data.join("sub/up")).unwrap(); // sub/up/sub/up/... forever
    symlink(&data, data.join("sub/self")).unwrap();
    symlink("nowhere.png", data.join("dangling.png")).unwrap();
    let out = bin()
        .current_dir(tmp.path())
        .args(["analyze", "data", "--out", "out", "--quiet"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = rows(&tmp.path().join("out"));
    let names: Vec<&str> = r.iter().map(|r| r["image"].as_str()).collect();
    assert_eq!(names, ["data/dangling.png", "data/sub/a.png"], "{r:?}");
    assert_eq!(r[1]["status"], "ok");
    assert_eq!(r[0]["status"], "error");
    assert_eq!(
        r[0]["error"],
        "broken symbolic link (its target does not exist)"
    );
}

#[cfg(unix)]
#[test]
fn fifo_named_like_an_image_is_an_error_row_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    sample_image(0).save(data.join("a.png")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(data.join("pipe.jpg"))
        .status()
        .unwrap();
    assert!(made.success());
    // In a folder and given by name: both reported, neither read.
    let out = bin()
        .current_dir(tmp.path())
        .args([
            "analyze",
            "data",
            "data/pipe.jpg",
            "--out",
            "out",
            "--quiet",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = rows(&tmp.path().join("out"));
    let names: Vec<&str> = r.iter().map(|r| r["image"].as_str()).collect();
    assert_eq!(names, ["data/a.png", "data/pipe.jpg"]);
    assert_eq!(r[0]["status"], "ok");
    assert_eq!(r[1]["status"], "error");
    assert!(r[1]["error"].contains("not a regular file"), "{:?}", r[1]);
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_an_error_row() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("locked.png");
    sample_image(0).save(&p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::File::open(&p).is_ok() {
        eprintln!("skipped: running with privileges that read mode-000 files (root)");
        return;
    }
    let out = bin()
        .current_dir(tmp.path())
        .args(["analyze", "locked.png", "--out", "out", "--quiet"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r = &rows(&tmp.path().join("out"))[0];
    assert_eq!(r["status"], "error");
    assert!(r["error"].contains("cannot read file"), "{r:?}");
}

#[cfg(unix)]
#[test]
fn unreadable_folder_entry_is_an_error_row() {
    // A folder named like an image, given by name, is walked; a folder that cannot be
    // listed (here: a path through a regular file) is an error row.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("plain.txt"), "x").unwrap();
    let out = bin()
        .current_dir(tmp.path())
        .args(["analyze", "plain.txt/x.png", "--out", "out", "--quiet"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r = &rows(&tmp.path().join("out"))[0];
    assert_eq!(r["status"], "error");
    assert!(r["error"].contains("cannot read file"), "{r:?}");
}
