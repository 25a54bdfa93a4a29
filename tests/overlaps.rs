//! Regression: where two hairs of one follicular opening overlap and then part, the
//! overlap is not reported as one more hair of their summed width. Realistic phantom seed
//! 100 (a tuning seed), image 7: before `reject::union_stretches`, a 20.1 px line lay on
//! the 11.8 px truth hair 32, continued end to end by a 10.3 px line of its companion.

use image::DynamicImage;
use trichometer::synth::{effective_jpeg_quality, image_seed, render_phantom, PhantomOptions};
use trichometer::Settings;

/// Share of `line`'s points within `reach` px of some point of `truth`.
fn share_on(line: &[[f64; 2]], truth: &[[f64; 2]], reach: f64) -> f64 {
    let on = line
        .iter()
        .filter(|p| {
            truth
                .iter()
                .any(|q| (p[0] - q[0]).hypot(p[1] - q[1]) <= reach)
        })
        .count();
    on as f64 / line.len().max(1) as f64
}

#[test]
fn an_overlap_of_two_hairs_is_not_reported_as_a_wider_hair() {
    let opts = PhantomOptions::default();
    let seed = image_seed(100, 7);
    let (rgb, truth) = render_phantom(seed, 7, &opts);
    // Through the same JPEG encoding as `synth` writes.
    let mut jpeg = Vec::new();
    let q = effective_jpeg_quality(seed, &opts).expect("realistic phantoms are JPEG");
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, q)
        .encode_image(&rgb)
        .unwrap();
    let img: DynamicImage = image::load_from_memory(&jpeg).unwrap();
    let settings = Settings {
        um_per_px: Some(truth.um_per_px),
        ..Settings::default()
    };
    let analysis = trichometer::analyze(&img, &settings).unwrap();
    let hair = truth
        .hairs
        .iter()
        .find(|h| h.id == 32)
        .expect("truth hair 32");
    assert!((11.0..12.5).contains(&hair.width_px), "{}", hair.width_px);
    let on: Vec<_> = analysis
        .hairs
        .iter()
        .filter(|h| share_on(&h.points, &hair.points, 0.5 * hair.width_px) >= 0.8)
        .collect();
    assert!(!on.is_empty(), "hair 32 is found");
    for h in on {
        assert!(
            (h.width_px - hair.width_px).abs() <= 0.2 * hair.width_px,
            "a {:.2} px line ({} px long) on the {:.2} px hair",
            h.width_px,
            h.length_px.round(),
            hair.width_px
        );
    }
}
