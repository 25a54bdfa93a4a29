//! Widths of rendered straight hairs of known width come out right.

mod common;

use common::{render, Bar};
use image::DynamicImage;
use trichometer::{analyze, Polarity, Settings};

fn one_bar(width_px: f64, angle_deg: f64, transmission: f64) -> trichometer::ImageAnalysis {
    let size = 200 + (4.0 * width_px) as usize;
    let bar = Bar {
        centre: [size as f64 / 2.0 + 0.3, size as f64 / 2.0 - 0.2],
        angle_deg,
        width_px,
        length_px: 2.0 * size as f64,
        transmission,
    };
    let img = render(size, size, &[bar], 0.35, 1.0, 0.004);
    analyze(&DynamicImage::ImageRgb8(img), &Settings::default()).unwrap()
}

#[test]
fn dark_straight_hairs_3_to_25_px_measure_within_1_px() {
    for &(w, angle) in &[
        (3.0, 10.0),
        (4.5, 37.0),
        (7.0, 90.0),
        (11.0, 60.0),
        (16.0, 5.0),
        (25.0, 120.0),
    ] {
        let a = one_bar(w, angle, 0.3);
        assert!(!a.hairs.is_empty(), "width {w}: no hair found");
        let longest = a
            .hairs
            .iter()
            .max_by(|p, q| p.length_px.total_cmp(&q.length_px))
            .unwrap();
        eprintln!(
            "width {w} angle {angle}: measured {:.3} (sd {:.3}), {} hairs, blur {:.2}",
            longest.width_px,
            longest.width_sd_px,
            a.hairs.len(),
            a.blur_sigma_px
        );
        assert!(
            (longest.width_px - w).abs() <= 1.0,
            "width {w}: measured {}",
            longest.width_px
        );
        assert_eq!(longest.polarity, Polarity::Dark);
        assert!(longest.length_px > 150.0, "length {}", longest.length_px);
    }
}

#[test]
fn light_straight_hairs_measure_within_1_px() {
    for &(w, angle) in &[(4.0, 20.0), (12.0, 75.0)] {
        let a = one_bar(w, angle, 1.6);
        let longest = a
            .hairs
            .iter()
            .max_by(|p, q| p.length_px.total_cmp(&q.length_px))
            .expect("a hair");
        eprintln!("light width {w}: measured {:.3}", longest.width_px);
        assert!(
            (longest.width_px - w).abs() <= 1.0,
            "width {w}: measured {}",
            longest.width_px
        );
        assert_eq!(longest.polarity, Polarity::Light);
    }
}
