//! The fuzzed code paths, shared by the cargo-fuzz targets (fuzz_targets/*.rs) and the
//! stable replay test (tests/fuzz_replay.rs) that runs the committed corpus and seeded
//! mutations of it without a nightly toolchain.

#![allow(dead_code)] // each user takes one target
use trichometer::load;
use trichometer::Settings;

/// Largest image the fuzz targets decode or analyse, in pixels (keeps each run fast).
pub const MAX_PIXELS: u64 = 128 * 128;

/// Arbitrary bytes through the decoders (format sniffing, size limit, EXIF orientation),
/// then, when they decode to a small image, through the whole analysis.
pub fn decode(data: &[u8]) {
    let Ok(img) = load::decode(data, MAX_PIXELS) else {
        return;
    };
    assert!(img.width() > 0 && img.height() > 0);
    assert!(img.width() as u64 * img.height() as u64 <= MAX_PIXELS);
    check(&img);
}

/// Arbitrary bytes as a small grey image: the first two bytes give the size (1 to 96 px a
/// side), the rest the pixels (repeated to fill; mid-grey when there are none).
pub fn analyze_pixels(data: &[u8]) {
    let (w, h) = match data {
        [a, b, ..] => (1 + *a as u32 % 96, 1 + *b as u32 % 96),
        _ => (1, 1),
    };
    let px = data.get(2..).unwrap_or(&[]);
    let img = image::GrayImage::from_fn(w, h, |x, y| {
        if px.is_empty() {
            image::Luma([128])
        } else {
            image::Luma([px[(y * w + x) as usize % px.len()]])
        }
    });
    check(&image::DynamicImage::ImageLuma8(img));
}

/// Analyses an image and checks what every report must satisfy.
fn check(img: &image::DynamicImage) {
    let settings = Settings {
        um_per_px: Some(4.0),
        ..Settings::default()
    };
    let a = match trichometer::analyze(img, &settings) {
        Ok(a) => a,
        Err(_) => return,
    };
    assert_eq!((a.width_px, a.height_px), (img.width(), img.height()));
    assert!(a.blur_sigma_px.is_finite() && a.blur_sigma_px > 0.0);
    for h in &a.hairs {
        assert!(
            h.width_px.is_finite() && h.width_px > 0.0,
            "width {}",
            h.width_px
        );
        assert!(h.width_sd_px.is_finite() && h.width_sd_px >= 0.0);
        assert!(h.length_px.is_finite() && h.length_px >= 0.0);
        assert!(!h.points.is_empty());
        for p in &h.points {
            assert!(p[0].is_finite() && p[1].is_finite());
        }
    }
}
