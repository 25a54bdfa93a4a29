//! Overlay of a phantom of known widths: every class is drawn in its colour, the picture
//! writer's outputs open as images. Set `TRICHOMETER_OVERLAY_OUT=DIR` to keep the overlay
//! for looking at.

mod common;

use common::{render, Bar};
use image::DynamicImage;
use trichometer::overlay::{draw_overlay, COLOR_INTERMEDIATE, COLOR_TERMINAL, COLOR_THIN};
use trichometer::report::ImageReport;
use trichometer::Settings;

#[test]
fn phantom_overlay_shows_every_class() {
    // At 5 µm/px: 3 px = 15 µm and 5 px = 25 µm thin, 8 px = 40 µm intermediate,
    // 14 px = 70 µm terminal; one light (grey) 8 px hair.
    let bar = |x: f64, y: f64, a: f64, w: f64, t: f64| Bar {
        centre: [x, y],
        angle_deg: a,
        width_px: w,
        length_px: 300.0,
        transmission: t,
    };
    let bars = [
        bar(200.0, 70.0, 5.0, 3.0, 0.4),
        bar(220.0, 150.0, -8.0, 5.0, 0.3),
        bar(330.0, 240.0, 80.0, 8.0, 0.25),
        bar(200.0, 300.0, 170.0, 14.0, 0.2),
        bar(120.0, 220.0, 60.0, 8.0, 1.6),
    ];
    let img = DynamicImage::ImageRgb8(render(480, 380, &bars, 0.35, 1.2, 0.004));
    let settings = Settings {
        um_per_px: Some(5.0),
        ..Settings::default()
    };
    let analysis = trichometer::analyze(&img, &settings).unwrap();
    let report = ImageReport::from_analysis("phantom.png", &analysis, &settings, "flag", "");
    let out = draw_overlay(&img, &report);
    if let Ok(dir) = std::env::var("TRICHOMETER_OVERLAY_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        img.save(format!("{dir}/phantom.png")).unwrap();
        out.save(format!("{dir}/phantom-overlay.png")).unwrap();
    }
    for (name, c) in [
        ("thin", COLOR_THIN),
        ("intermediate", COLOR_INTERMEDIATE),
        ("terminal", COLOR_TERMINAL),
    ] {
        let n = out.pixels().filter(|p| **p == c).count();
        assert!(n > 200, "{name}: {n} pixels in its colour");
    }
}
