//! Widths of rendered hairs of known width, straight and curved, come out right.

mod common;

use common::{render, render_arcs, render_layers, Arc, Bar};
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

/// Analyses `img` with the default settings; returns the analysis and the widths (px) of
/// its hairs longer than `min_length_px`, in report order.
fn long_widths(img: image::RgbImage, min_length_px: f64) -> (trichometer::ImageAnalysis, Vec<f64>) {
    let a = analyze(&DynamicImage::ImageRgb8(img), &Settings::default()).unwrap();
    let widths = a
        .hairs
        .iter()
        .filter(|h| h.length_px > min_length_px)
        .map(|h| h.width_px)
        .collect();
    (a, widths)
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

/// Regression (ISIC_0000201): a lesion's broad soft streaks, which the ridge filter traces
/// as wide lines with soft edges, must not be taken for the optics' blur; the hairs over
/// them were read 5 -> 1 px when they were.
#[test]
fn soft_streaks_do_not_set_the_blur() {
    let hair = |x: f64, angle_deg: f64| Bar {
        centre: [x, 180.0],
        angle_deg,
        width_px: 5.0,
        length_px: 600.0,
        transmission: 0.3,
    };
    let streak = |x: f64, y: f64| Bar {
        centre: [x, y],
        angle_deg: 20.0,
        width_px: 40.0,
        length_px: 80.0,
        transmission: 0.55,
    };
    let hairs = [hair(60.0, 80.0), hair(300.0, 100.0)];
    let streaks: Vec<Bar> = (0..3)
        .flat_map(|i| (0..4).map(move |j| streak(110.0 + 75.0 * i as f64, 45.0 + 90.0 * j as f64)))
        .collect();
    let img = render_layers(
        360,
        360,
        &[(&streaks[..], 5.0), (&hairs[..], 1.0)],
        0.4,
        0.004,
    );
    let a = analyze(&DynamicImage::ImageRgb8(img), &Settings::default()).unwrap();
    let long: Vec<_> = a.hairs.iter().filter(|h| h.length_px > 250.0).collect();
    eprintln!(
        "blur {:.2}, long hairs {:?}",
        a.blur_sigma_px,
        long.iter().map(|h| h.width_px).collect::<Vec<_>>()
    );
    assert!(
        (a.blur_sigma_px - 1.0).abs() <= 0.4,
        "blur {} (rendered 1.0)",
        a.blur_sigma_px
    );
    assert_eq!(long.len(), 2);
    for h in long {
        assert!((h.width_px - 5.0).abs() <= 1.0, "width {}", h.width_px);
    }
}

/// Regression: two parallel hairs a small gap of skin apart were found as one wide line at a
/// coarse scale, traced along the skin between them, and each profile read one of the two
/// in turn: a zig-zag line that nothing survived (no hair at all for 8 px and 12 px hairs
/// 1.5 px apart). The trace is now split into the two hairs. Their facing edges still
/// pull each other in (read up to 1.2 px narrow), and at a 1 px gap the pair is not yet
/// told apart reliably.
#[test]
fn hairs_a_narrow_gap_apart_are_both_found() {
    for &(w, gap, blur) in &[
        (8.0, 1.5, 1.0),
        (12.0, 1.5, 1.4),
        (8.0, 2.0, 1.2),
        (6.0, 3.0, 1.0),
    ] {
        let bar = |dx: f64| Bar {
            centre: [150.0 + dx, 150.0],
            angle_deg: 80.0,
            width_px: w,
            length_px: 600.0,
            transmission: 0.3,
        };
        let d = 0.5 * (w + gap);
        let img = render(300, 300, &[bar(-d), bar(d)], 0.4, blur, 0.004);
        let (_, long) = long_widths(img, 200.0);
        eprintln!("width {w} gap {gap} blur {blur}: {long:?}");
        assert_eq!(long.len(), 2, "width {w} gap {gap}: {long:?}");
        for m in long {
            assert!((m - w).abs() <= 1.25, "width {w} gap {gap}: measured {m}");
        }
    }
}

/// Three 12 px hairs 600 px long across a 400x400 image, near vertical at 85°, 95° and
/// 88°, of centre transmission `transmission`: enough wide profiles for the blur estimate.
fn three_long_hairs(transmission: f64) -> [Bar; 3] {
    let hair = |x: f64, angle_deg: f64| Bar {
        centre: [x, 200.0],
        angle_deg,
        width_px: 12.0,
        length_px: 600.0,
        transmission,
    };
    [hair(80.0, 85.0), hair(200.0, 95.0), hair(320.0, 88.0)]
}

/// Regression (hard phantoms 902/4 and 902/12): on a noisy image few profiles of a wide
/// hair stand out enough to be bar-like, no hair was mostly bar-like, and the blur fell
/// back to the sharpest half of all edges, far too sharp (1.9 -> 1.2 px), and every width
/// with it. Hairs with enough bar-like profiles now serve, measured on all their clear
/// profiles.
#[test]
fn noisy_wide_hairs_still_give_the_blur() {
    let hairs = three_long_hairs(0.45);
    // Noise SD 0.02 of linear light on skin 0.4 (5%): blur 1.60 px and widths down to
    // 10.9 px before, 1.79 px and 11.1–11.4 px now. Noisier still, both read too sharp
    // (0.05: 1.11 before, 1.24 now): noise steepens the edges (see the README).
    let img = render(400, 400, &hairs, 0.4, 2.0, 0.02);
    let (a, widths) = long_widths(img, 250.0);
    eprintln!("blur {:.2}, widths {widths:?}", a.blur_sigma_px);
    assert!(
        (a.blur_sigma_px - 2.0).abs() <= 0.3,
        "blur {} (rendered 2.0)",
        a.blur_sigma_px
    );
    assert_eq!(widths.len(), 3);
    for w in widths {
        assert!((w - 12.0).abs() <= 1.0, "width {w}");
    }
}

/// Regression: the reported blur read the rendered σ too soft on sharp images (0.77 px at
/// a rendered 0.6, 1.11 at 1.0: the steepest slope of a sampled, interpolated edge), 0.15 px
/// over the phantoms' truth; it is now calibrated on rendered bars (`measure::reported_blur`).
#[test]
fn the_reported_blur_is_the_rendered_one() {
    for blur in [0.6f32, 1.0, 1.4] {
        let hairs = three_long_hairs(0.4);
        let img = render(400, 400, &hairs, 0.4, blur, 0.004);
        let (a, widths) = long_widths(img, 250.0);
        eprintln!(
            "blur {blur}: reported {:.3}, widths {widths:?}",
            a.blur_sigma_px
        );
        assert!(
            (a.blur_sigma_px - blur as f64).abs() <= 0.06,
            "blur {} (rendered {blur})",
            a.blur_sigma_px
        );
        assert_eq!(widths.len(), 3);
        for w in widths {
            assert!((w - 12.0).abs() <= 0.15, "width {w}");
        }
    }
}

/// Regression: an image whose hairs are all a few blur σ wide (7 px under blur 1.5 px: no
/// profile bar-like enough for the blur estimate) was measured under the default blur of
/// 1 px: the optical depth came out wrong with it and every width read 0.3-0.6 px off. The
/// estimate now falls back to less bar-like profiles, whose shape the model accounts for.
#[test]
fn hairs_a_few_blurs_wide_still_give_the_blur() {
    let hair = |x: f64, angle_deg: f64| Bar {
        centre: [x, 160.0],
        angle_deg,
        width_px: 7.0,
        length_px: 500.0,
        transmission: 0.3,
    };
    let hairs = [hair(90.0, 70.0), hair(220.0, 112.0)];
    let img = render(320, 320, &hairs, 0.35, 1.5, 0.004);
    let (a, widths) = long_widths(img, 200.0);
    eprintln!("blur {:.2}, widths {widths:?}", a.blur_sigma_px);
    assert_eq!(widths.len(), 2);
    assert!(
        (a.blur_sigma_px - 1.5).abs() <= 0.2,
        "blur {} (rendered 1.5)",
        a.blur_sigma_px
    );
    for w in widths {
        assert!((w - 7.0).abs() <= 0.25, "width {w}");
    }
}

/// Regression: a few blurs wide, blurred cylinders of any optical depth have nearly the same
/// fill ratio, and the most probable depth jumped with the hair's angle between about 1.2
/// and 4.9 (truth 2): a 9 px hair under blur 1.5 px read +0.20 px at 20° and −0.45 and
/// −0.50 px at 33° and 45°. The edge spread, clear of the noise, now informs the depth too.
#[test]
fn depth_does_not_jump_with_the_angle_a_few_blurs_wide() {
    for angle in [20.0, 33.0, 45.0, 70.0] {
        let bar = Bar {
            centre: [160.0, 160.0],
            angle_deg: angle,
            width_px: 9.0,
            length_px: 500.0,
            transmission: 0.3,
        };
        let img = render(320, 320, &[bar], 0.35, 1.5, 0.004);
        let (_, long) = long_widths(img, 150.0);
        eprintln!("angle {angle}: {long:?}");
        assert_eq!(long.len(), 1, "angle {angle}: {long:?}");
        assert!((long[0] - 9.0).abs() <= 0.35, "angle {angle}: {}", long[0]);
    }
}

/// Clean rendered hairs 4–14 px wide under blur 1.0–1.5 px at seven angles (189 hairs):
/// the error distribution of the whole width model (blur estimate, optical depth, edge
/// separation). Measured 2026-12-01: median 0.097 px, 90th percentile 0.202 px, largest
/// 0.494 px (8 px under blur 1.25 px); before the edge spread informed the depth the 90th
/// percentile was 0.212 px and 9 px hairs under blur 1.5 px read up to 0.50 px off.
#[test]
fn clean_hairs_4_to_14_px_error_distribution() {
    let mut errors = Vec::new();
    for blur in [1.0f32, 1.25, 1.5] {
        for w in [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 14.0] {
            for angle in [20.0, 33.0, 45.0, 58.0, 70.0, 112.0, 135.0] {
                let bar = Bar {
                    centre: [160.0, 160.0],
                    angle_deg: angle,
                    width_px: w,
                    length_px: 500.0,
                    transmission: 0.3,
                };
                let img = render(320, 320, &[bar], 0.35, blur, 0.004);
                let (_, long) = long_widths(img, 150.0);
                assert_eq!(long.len(), 1, "w {w} blur {blur} angle {angle}: {long:?}");
                errors.push((long[0] - w).abs());
            }
        }
    }
    errors.sort_by(|a, b| a.total_cmp(b));
    let (median, p90, max) = (
        errors[errors.len() / 2],
        errors[errors.len() * 9 / 10],
        errors[errors.len() - 1],
    );
    eprintln!("median {median:.3} p90 {p90:.3} max {max:.3}");
    assert!(median <= 0.12, "median {median}");
    assert!(p90 <= 0.25, "p90 {p90}");
    assert!(max <= 0.6, "max {max}");
}

/// Regression (2026-12-01): two parallel hairs 2-4 px apart read up to 1.6 px narrow. The
/// neighbour's blurred tail spread the edge on its side, so the blur read high (1.5 px read
/// 1.7-1.9 px) and the depth went wrong with it. A profile whose skin rises again within
/// three edge spreads of one edge is now measured on its other half, mirrored about the
/// centre of its core (`pairs::measure_clean_halves`), and crowded edges stay out of the
/// blur and depth estimates. A third, lone hair gives the image's blur. Widths before:
/// 10 px under blur 1 px, gaps 2-4 px: -0.89, -0.68, -0.06; 14 px: -1.10, -0.30, -0.07;
/// under blur 1.5 px: 10 px gaps 3-4: -0.59, -0.66; 14 px gaps 2-4: -1.63, -1.17, -0.95
/// (worst of each pair); now all within 0.28 px.
#[test]
fn hairs_a_few_px_apart_keep_their_width() {
    for &blur in &[1.0f32, 1.5] {
        for &w in &[10.0, 14.0] {
            for &gap in &[2.0, 3.0, 4.0] {
                // Closer than 1.5 blurs the pair is traced as one line and split as a
                // touching pair (`pairs::split`): 10 px hairs 2 px apart under blur 1.5 px
                // read 9.1 px, not mended.
                if gap < 1.5 * blur as f64 && w < 14.0 {
                    continue;
                }
                let bar = |x: f64| Bar {
                    centre: [x, 150.0],
                    angle_deg: 80.0,
                    width_px: w,
                    length_px: 600.0,
                    transmission: 0.3,
                };
                let d = 0.5 * (w + gap);
                let img = render(
                    300,
                    300,
                    &[bar(60.0), bar(190.0 - d), bar(190.0 + d)],
                    0.4,
                    blur,
                    0.004,
                );
                let (a, long) = long_widths(img, 200.0);
                assert_eq!(long.len(), 3, "w {w} gap {gap} blur {blur}: {long:?}");
                for m in &long {
                    assert!(
                        (m - w).abs() <= 0.35,
                        "w {w} gap {gap} blur {blur} (read {:.2}): {long:?}",
                        a.blur_sigma_px
                    );
                }
            }
        }
    }
}

/// A straight dark hair 10 px wide beside rendered arcs, for the blur estimate.
fn blur_bar(centre: [f64; 2]) -> Bar {
    Bar {
        centre,
        angle_deg: 80.0,
        width_px: 10.0,
        length_px: 300.0,
        transmission: 0.25,
    }
}

/// The reported hairs lying on the circle of `radius` about `centre`: 80% of their points
/// within 3 px of it.
fn on_circle(
    a: &trichometer::ImageAnalysis,
    centre: [f64; 2],
    radius: f64,
) -> Vec<&trichometer::Hair> {
    let near = |p: &&[f64; 2]| ((p[0] - centre[0]).hypot(p[1] - centre[1]) - radius).abs() < 3.0;
    a.hairs
        .iter()
        .filter(|h| h.points.iter().filter(near).count() * 10 >= 8 * h.points.len())
        .collect()
}

/// Regression (fourth session of 2026-12-01): a curly hair of radius 100 px over half a
/// turn is reported whole at its width (the curvature of a parabola fitted to it read
/// twice its own and rejected it), while the rim of a bubble of radius 40 px is not.
#[test]
fn a_curly_hair_is_kept_and_a_bubble_rim_is_not() {
    let curl = Arc {
        centre: [250.0, 330.0],
        radius: 100.0,
        from_deg: 180.0,
        to_deg: 360.0,
        width_px: 8.0,
        transmission: 0.25,
    };
    let rim = Arc {
        centre: [250.0, 330.0],
        radius: 40.0,
        from_deg: 200.0,
        to_deg: 470.0,
        width_px: 3.0,
        transmission: 0.5,
    };
    let bar = blur_bar([420.0, 250.0]);
    let img = render_arcs(520, 420, &[curl, rim], &[bar], 0.35, 1.2, 0.004);
    let a = analyze(&DynamicImage::ImageRgb8(img), &Settings::default()).unwrap();
    let on = |r: f64| on_circle(&a, [250.0, 330.0], r);
    let curl_hairs = on(100.0);
    let length: f64 = curl_hairs.iter().map(|h| h.length_px).sum();
    assert!(
        length > 0.8 * std::f64::consts::PI * 100.0,
        "curly hair reported over {length:.0} px: {:?}",
        a.hairs
            .iter()
            .map(|h| (h.width_px, h.length_px))
            .collect::<Vec<_>>()
    );
    for h in &curl_hairs {
        assert!(
            (h.width_px - 8.0).abs() < 0.6,
            "curly hair read {:.2} px",
            h.width_px
        );
    }
    let rim_length: f64 = on(40.0).iter().map(|h| h.length_px).sum();
    assert!(
        rim_length < 40.0,
        "bubble rim reported over {rim_length:.0} px"
    );
}

/// Curved hairs are measured as straight ones: arcs of radius 80–200 px (curvature
/// 0.005–0.0125 rad/px, under the 0.015 limit) and 4–14 px wide, over 160°, are each
/// reported as one hair along most of the arc, within 0.25 px of their width.
#[test]
fn curved_hairs_are_measured_as_straight_ones() {
    for radius in [80.0, 120.0, 200.0] {
        for width_px in [4.0, 8.0, 14.0] {
            let curl = Arc {
                centre: [300.0, 330.0],
                radius,
                from_deg: 190.0,
                to_deg: 350.0,
                width_px,
                transmission: 0.25,
            };
            let bar = blur_bar([560.0, 250.0]);
            let img = render_arcs(640, 460, &[curl], &[bar], 0.35, 1.2, 0.004);
            let a = analyze(&DynamicImage::ImageRgb8(img), &Settings::default()).unwrap();
            let on = on_circle(&a, [300.0, 330.0], radius);
            let arc_length = radius * 160f64.to_radians();
            assert_eq!(
                on.len(),
                1,
                "R {radius} w {width_px}: {} hairs on the arc",
                on.len()
            );
            assert!(
                on[0].length_px > 0.8 * arc_length,
                "R {radius} w {width_px}: reported over {:.0} of {arc_length:.0} px",
                on[0].length_px
            );
            assert!(
                (on[0].width_px - width_px).abs() < 0.25,
                "R {radius} w {width_px}: read {:.2} px",
                on[0].width_px
            );
        }
    }
}

#[test]
fn lengths_reach_the_hairs_tips_and_the_frame_edge() {
    // A 10 px hair 120 px long inside the frame, and an 8 px one running out of it at the
    // right edge after 100 px (x 200 to the frame's edge at 299.5).
    let bar = |centre: [f64; 2], width_px: f64| Bar {
        centre,
        angle_deg: 0.0,
        width_px,
        length_px: 120.0,
        transmission: 0.3,
    };
    let img = render(
        300,
        200,
        &[bar([120.3, 60.2], 10.0), bar([260.0, 140.4], 8.0)],
        0.35,
        1.0,
        0.004,
    );
    let a = analyze(&DynamicImage::ImageRgb8(img), &Settings::default()).unwrap();
    let near = |y: f64| {
        a.hairs
            .iter()
            .find(|h| h.points.iter().all(|p| (p[1] - y).abs() < 6.0))
            .unwrap_or_else(|| panic!("no hair along y = {y}: {:?}", a.hairs))
    };
    let (inside, leaving) = (near(60.2), near(140.4));
    assert!(
        (inside.length_px - 120.0).abs() <= 1.0,
        "{}",
        inside.length_px
    );
    assert!(
        (leaving.length_px - 99.5).abs() <= 1.0,
        "{}",
        leaving.length_px
    );
    let right = leaving.points.iter().map(|p| p[0]).fold(f64::MIN, f64::max);
    assert!(
        right >= 299.0,
        "the hair stops at x = {right}, not at the frame's edge"
    );
}

/// A dark hair with a narrow specular highlight along it, `offset_px` from its centre line
/// (the highlight multiplies the light by `gain` at its centre), between two plain hairs
/// 14 px wide that give the image's blur.
fn highlighted_hair(width_px: f64, offset_px: f64, gain: f64) -> image::RgbImage {
    let (size, angle) = (300usize, 20.0f64);
    let centre = [150.3, 149.8];
    let (s, c) = angle.to_radians().sin_cos();
    let across = |d: f64| [centre[0] - s * d, centre[1] + c * d];
    let hair = Bar {
        centre,
        angle_deg: angle,
        width_px,
        length_px: 2.0 * size as f64,
        transmission: 0.25,
    };
    let stripe = Bar {
        centre: across(offset_px),
        width_px: 2.5,
        transmission: gain,
        ..hair
    };
    let plain = |d: f64| Bar {
        centre: across(d),
        width_px: 14.0,
        ..hair
    };
    render(
        size,
        size,
        &[hair, stripe, plain(-90.0), plain(90.0)],
        0.35,
        1.0,
        0.004,
    )
}

#[test]
fn a_highlight_along_a_dark_hair_is_not_taken_for_its_edge() {
    // Grey images: the colour test for highlights has nothing to go on, and the highlight
    // dips below half the hair's contrast, where the edge walk stops.
    // Without the shaft fit these read 12.0, 15.0, 8.6 and 17.2 px.
    for (w, offset) in [(16.0, 5.5), (20.0, -6.5), (12.0, 4.0), (24.0, 7.0)] {
        let (a, widths) = long_widths(highlighted_hair(w, offset, 3.0), 150.0);
        eprintln!(
            "width {w} highlight at {offset}: {widths:?} (blur {:.2})",
            a.blur_sigma_px
        );
        assert_eq!(widths.len(), 3, "width {w}: {widths:?}");
        assert!(
            (widths[1] - w).abs() <= 0.6,
            "width {w}: measured {}",
            widths[1]
        );
        // The plain hairs beside it are untouched.
        assert!((widths[0] - 14.0).abs() <= 0.1 && (widths[2] - 14.0).abs() <= 0.1);
    }
}

/// A faint thin hair (3 px, 15% contrast) `gap_px` of skin beside a 16 px dark shaft.
fn thin_beside_wide(gap_px: f64) -> image::RgbImage {
    let (angle, centre) = (20.0f64, [150.3, 149.8]);
    let (s, c) = angle.to_radians().sin_cos();
    let wide = Bar {
        centre,
        angle_deg: angle,
        width_px: 16.0,
        length_px: 600.0,
        transmission: 0.25,
    };
    let d = 0.5 * 16.0 + gap_px + 0.5 * 3.0;
    let thin = Bar {
        centre: [centre[0] - s * d, centre[1] + c * d],
        width_px: 3.0,
        transmission: 0.85,
        ..wide
    };
    render(300, 300, &[wide, thin], 0.35, 1.0, 0.004)
}

#[test]
fn a_thin_hair_well_apart_from_a_wide_one_is_found_beside_it() {
    let (_, widths) = long_widths(thin_beside_wide(12.0), 100.0);
    assert_eq!(widths.len(), 2, "{widths:?}");
    assert!((widths[0] - 16.0).abs() <= 0.2, "{widths:?}");
    assert!((widths[1] - 3.0).abs() <= 0.5, "{widths:?}");
}

/// Known limitation (docs/ACCURACY.md, tenth session): 2–8 px beside a wide shaft a faint
/// thin hair is not reported (its pixels go to the shaft's coarse scales in the ridge map,
/// and the shaft's blurred edge inflates its profiles' noise). Run with `--ignored` to
/// check a mend.
#[test]
#[ignore = "known blind zone beside wide shafts; see docs/ACCURACY.md"]
fn a_thin_hair_a_few_px_beside_a_wide_one_is_found() {
    for gap in [5.0, 8.0] {
        let (_, widths) = long_widths(thin_beside_wide(gap), 100.0);
        assert_eq!(widths.len(), 2, "gap {gap}: {widths:?}");
    }
}

/// Width errors (px) of a dark shaft of centre optical depth `depth`, `width` px wide,
/// under blur `blur` px, at a few angles; three 14 px shafts of the same depth around it
/// (not crossing it) give the image its blur and show its shafts' depth.
fn errors_at_depth(depth: f64, width: f64, blur: f32) -> Vec<f64> {
    [25.0f64, 70.0]
        .iter()
        .map(|&angle| {
            let (s, c) = angle.to_radians().sin_cos();
            let centre = [200.3, 199.8];
            let beside = |k: f64| Bar {
                centre: [centre[0] + k * 120.0 * c, centre[1] + k * 120.0 * s],
                angle_deg: angle + 90.0,
                width_px: 14.0,
                length_px: 300.0,
                transmission: 0.15,
            };
            let bars = [
                Bar {
                    centre,
                    angle_deg: angle,
                    width_px: width,
                    length_px: 160.0,
                    transmission: 0.15,
                },
                beside(-1.0),
                beside(1.0),
                // A third wide shaft, parallel to the measured one and 100 px off it.
                Bar {
                    centre: [centre[0] - 100.0 * s, centre[1] + 100.0 * c],
                    angle_deg: angle,
                    width_px: 14.0,
                    length_px: 160.0,
                    transmission: 0.15,
                },
            ];
            let img = common::render_deep(400, 400, &bars, depth, 0.35, blur, 0.004);
            let a = analyze(&DynamicImage::ImageRgb8(img), &Settings::default()).unwrap();
            let mid = |h: &trichometer::Hair| h.points[h.points.len() / 2];
            let hair = a
                .hairs
                .iter()
                .filter(|h| h.length_px > 100.0)
                .min_by(|p, q| {
                    let d = |h| {
                        let m = mid(h);
                        (m[0] - centre[0]).hypot(m[1] - centre[1])
                    };
                    d(p).total_cmp(&d(q))
                })
                .expect("the shaft is found");
            let e = hair.width_px - width;
            eprintln!("depth {depth} width {width} blur {blur} angle {angle}: {e:+.3}");
            e
        })
        .collect()
}

/// How wide shafts of unknown translucency read (2026-12-02): a few blurs wide, the shape
/// of a blurred cylinder hardly tells its optical depth, and the depth is taken near the
/// least that reaches the contrast, under a weak prior towards translucent shafts
/// (`profile_model::TAU_PRIOR`). Translucent (τ 2) shafts read within 0.06 px but for one
/// 6 px shaft at one angle (−0.37 px at 25°: its fill ratio reads 1.053 where at 30° it
/// reads 1.046, and the depth jumps 1.9 → 4.9); opaque ones (τ 30, bars) read wide by
/// 0.15-0.77 px, the most at 6-8 px under blur 1.5 px. The phantoms' shafts have τ 1-8 and
/// do not show it (docs/ACCURACY.md, fourteenth session). This bounds both errors; the
/// ignored test below holds the target.
#[test]
fn opaque_shafts_read_at_most_a_little_wide() {
    for blur in [1.0f32, 1.5] {
        for w in [6.0, 8.0, 12.0] {
            for e in errors_at_depth(30.0, w, blur) {
                assert!(
                    (-0.3..=0.9).contains(&e),
                    "opaque {w} px, blur {blur}: {e:+.2}"
                );
            }
            for e in errors_at_depth(2.0, w, blur) {
                assert!(e.abs() <= 0.4, "translucent {w} px, blur {blur}: {e:+.2}");
            }
        }
    }
}

#[test]
#[ignore = "known bias: opaque shafts a few blurs wide read up to 0.8 px wide; see docs/ACCURACY.md"]
fn opaque_shafts_read_within_a_quarter_px() {
    for blur in [1.0f32, 1.5] {
        for w in [6.0, 8.0, 12.0] {
            for e in errors_at_depth(30.0, w, blur) {
                assert!(e.abs() <= 0.25, "opaque {w} px, blur {blur}: {e:+.2}");
            }
        }
    }
}

/// A brown translucent hair `width_px` wide on pinkish skin (colour image), with a
/// specular highlight stripe of the light's colour (neutral: the same light added to each
/// channel, on the shaft only) `offset` of its radius off its centre (the phantoms draw
/// 0.2–0.55), between two plain 14 px hairs that give the image's blur.
fn hair_with_neutral_highlight(width_px: f64, offset: f64) -> image::RgbImage {
    use trichometer::enhance::gaussian_blur;
    let (size, angle, blur) = (300usize, 20.0f64, 1.2f32);
    let skin = [0.50, 0.36, 0.30];
    let hair_colour = [0.03, 0.02, 0.015];
    // Centre optical depth 3 in red, more in green and blue (a brown shaft).
    let mu_ratio = [1.0, 1.5, 1.8];
    let (s, c) = angle.to_radians().sin_cos();
    let centre = [150.3, 149.8];
    // Across-offsets of the hairs' centre lines: (offset, width, highlight).
    let hairs = [
        (0.0, width_px, true),
        (-90.0, 14.0, false),
        (90.0, 14.0, false),
    ];
    let mut planes = [(); 3].map(|_| ndarray::Array2::<f32>::zeros((size, size)));
    const SS: usize = 4;
    for y in 0..size {
        for x in 0..size {
            let mut acc = [0.0f64; 3];
            for j in 0..SS {
                for i in 0..SS {
                    let px = x as f64 - 0.5 + (i as f64 + 0.5) / SS as f64 - centre[0];
                    let py = y as f64 - 0.5 + (j as f64 + 0.5) / SS as f64 - centre[1];
                    let across = -px * s + py * c;
                    let mut v = skin;
                    for &(at, w, highlighted) in &hairs {
                        let (d, r) = (across - at, 0.5 * w);
                        if d.abs() >= r {
                            continue;
                        }
                        let chord = 2.0 * (r * r - d * d).sqrt();
                        let light = if highlighted {
                            let z = (d - offset * r) / (0.13 * r);
                            0.15 * (-0.5 * z * z).exp()
                        } else {
                            0.0
                        };
                        for k in 0..3 {
                            let t = (-3.0 * mu_ratio[k] * chord / w).exp();
                            v[k] = skin[k] * t + hair_colour[k] * (1.0 - t) + light;
                        }
                    }
                    for k in 0..3 {
                        acc[k] += v[k];
                    }
                }
            }
            for k in 0..3 {
                planes[k][[y, x]] = (acc[k] / (SS * SS) as f64) as f32;
            }
        }
    }
    let planes = planes.map(|p| gaussian_blur(&p, blur));
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        0.004 * ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 12f32.sqrt()
    };
    image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let px = [0, 1, 2].map(|k| {
            let v = (planes[k][[y as usize, x as usize]] + noise()).clamp(0.0, 1.0);
            let e = if v <= 0.003_130_8 {
                12.92 * v
            } else {
                1.055 * v.powf(1.0 / 2.4) - 0.055
            };
            (e * 255.0).round() as u8
        });
        image::Rgb(px)
    })
}

/// A highlight stripe near one edge takes area from that half of the shaft and softens
/// that edge, so the shaft's cross-section reads more translucent than it is and its width
/// is widened by the depth table; the stripe's neutral colour marks the half to trust
/// (`measure::highlight_fill_loss`). Before it these read +0.52, +0.54 and +0.52 px wide;
/// now -0.11, -0.12 and +0.38 (the wide one's edge beside the stripe still lies a little
/// out).
#[test]
fn a_neutral_highlight_near_an_edge_does_not_widen_the_hair() {
    for (w, offset, tolerance) in [(10.0, 0.5, 0.3), (10.0, -0.45, 0.3), (14.0, 0.55, 0.5)] {
        let (a, widths) = long_widths(hair_with_neutral_highlight(w, offset), 150.0);
        eprintln!(
            "width {w} highlight at {offset}: {widths:?} (blur {:.2})",
            a.blur_sigma_px
        );
        assert_eq!(widths.len(), 3, "width {w}: {widths:?}");
        assert!(
            (widths[1] - w).abs() <= tolerance,
            "width {w}, highlight at {offset} r: measured {:.2}",
            widths[1]
        );
    }
}
