use super::*;
use crate::settings::HairClass;

fn small(d: Difficulty) -> PhantomOptions {
    PhantomOptions {
        width: 320,
        height: 240,
        um_per_px: None,
        difficulty: d,
        jpeg_quality: Some(90),
        ..PhantomOptions::default()
    }
}

fn luma(img: &RgbImage, x: f64, y: f64) -> Option<f64> {
    let (xi, yi) = (x.round(), y.round());
    if xi < 0.0 || yi < 0.0 || xi >= img.width() as f64 || yi >= img.height() as f64 {
        return None;
    }
    let p = img.get_pixel(xi as u32, yi as u32).0;
    Some(lum([
        srgb_to_linear(p[0] as f64),
        srgb_to_linear(p[1] as f64),
        srgb_to_linear(p[2] as f64),
    ]))
}

#[test]
fn synth_difficulty_parses() {
    for d in Difficulty::ALL {
        assert_eq!(d.as_str().parse::<Difficulty>().unwrap(), d);
    }
    assert_eq!(" Hard ".parse::<Difficulty>().unwrap(), Difficulty::Hard);
    assert!("medium".parse::<Difficulty>().is_err());
    assert_eq!(PhantomOptions::default().width, 1280);
}

#[test]
fn synth_is_deterministic() {
    for d in Difficulty::ALL {
        let o = small(d);
        let (a, ta) = render_phantom(11, 3, &o);
        let (b, tb) = render_phantom(11, 3, &o);
        assert_eq!(a.as_raw(), b.as_raw());
        assert_eq!(ta, tb);
        assert_eq!(ta.image, "phantom_0003.jpg");
        let (c, tc) = render_phantom(12, 3, &o);
        assert_ne!(a.as_raw(), c.as_raw());
        assert_ne!(ta.hairs, tc.hairs);
    }
}

#[test]
fn synth_truth_is_consistent_with_geometry() {
    let mut dark_checked = 0;
    let mut dark_ok = 0;
    let mut light_checked = 0;
    let mut light_ok = 0;
    for seed in 0..6u64 {
        for d in Difficulty::ALL {
            let o = small(d);
            let (img, t) = render_phantom(seed, 0, &o);
            assert!((2.5..=8.0).contains(&t.um_per_px));
            assert_eq!(t.summary.count, t.hairs.len());
            assert_eq!(t.difficulty, d.as_str());
            for (i, hair) in t.hairs.iter().enumerate() {
                assert_eq!(hair.id, i);
                assert!(
                    hair.width_um > 5.0 && hair.width_um <= 102.0,
                    "{}",
                    hair.width_um
                );
                assert!((hair.width_px * t.um_per_px - hair.width_um).abs() < 1e-9);
                assert_eq!(
                    hair.class,
                    HairClass::of_width_um(hair.width_um, 30.0, 60.0)
                );
                assert!(hair.length_px >= 5.0);
                let mut len = 0.0;
                for w in hair.points.windows(2) {
                    let step = ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt();
                    assert!(step <= 1.001, "spacing {step}");
                    len += step;
                }
                assert!((len - hair.length_px).abs() < 0.05 * hair.length_px + 0.1);
                for p in &hair.points {
                    assert!(p[0] >= -0.5 - 1e-9 && p[0] <= 319.5 + 1e-9);
                    assert!(p[1] >= -0.5 - 1e-9 && p[1] <= 239.5 + 1e-9);
                }
                // A dark hair is darker on its centreline than the skin beside it, a
                // light hair lighter.
                if hair.width_px >= 3.0 && hair.points.len() > 20 {
                    let mut on = Vec::new();
                    let mut off = Vec::new();
                    for k in 1..hair.points.len() - 1 {
                        let (a, b) = (hair.points[k - 1], hair.points[k + 1]);
                        let (tx, ty) = (b[0] - a[0], b[1] - a[1]);
                        let l = (tx * tx + ty * ty).sqrt().max(1e-9);
                        let (nx, ny) = (-ty / l, tx / l);
                        let p = hair.points[k];
                        let dd = hair.width_px * 1.5 + 4.0;
                        if let (Some(c), Some(l1), Some(l2)) = (
                            luma(&img, p[0], p[1]),
                            luma(&img, p[0] + dd * nx, p[1] + dd * ny),
                            luma(&img, p[0] - dd * nx, p[1] - dd * ny),
                        ) {
                            on.push(c);
                            off.push(if hair.light { l1.min(l2) } else { l1.max(l2) });
                        }
                    }
                    if on.len() > 10 {
                        let (m_on, m_off) = (crate::stats::median(&on), crate::stats::median(&off));
                        if hair.light {
                            light_checked += 1;
                            light_ok += (m_on > m_off) as usize;
                        } else {
                            dark_checked += 1;
                            dark_ok += (m_on < m_off) as usize;
                        }
                    }
                }
            }
        }
    }
    assert!(
        dark_checked >= 10,
        "too few dark hairs checked: {dark_checked}"
    );
    assert!(
        dark_ok as f64 >= 0.9 * dark_checked as f64,
        "{dark_ok}/{dark_checked}"
    );
    assert!(
        light_checked >= 3,
        "too few light hairs checked: {light_checked}"
    );
    assert!(
        light_ok as f64 >= 0.8 * light_checked as f64,
        "{light_ok}/{light_checked}"
    );
    eprintln!("dark {dark_ok}/{dark_checked}, light {light_ok}/{light_checked}");
}

#[test]
fn synth_widths_cover_all_classes() {
    let o = PhantomOptions {
        width: 480,
        height: 360,
        um_per_px: Some(4.0),
        ..small(Difficulty::Realistic)
    };
    let mut counts = [0usize; 3];
    let mut light = 0;
    for seed in 0..8u64 {
        let (_, t) = render_phantom(seed, 0, &o);
        assert_eq!(t.um_per_px, 4.0);
        for h in &t.hairs {
            counts[match h.class {
                HairClass::Thin => 0,
                HairClass::Intermediate => 1,
                HairClass::Terminal => 2,
            }] += 1;
            light += h.light as usize;
        }
    }
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    let _ = light;
}

#[test]
fn synth_tiny_and_extreme_frames_render() {
    for d in Difficulty::ALL {
        for (w, h, s) in [(1, 1, 2.5), (16, 12, 8.0), (64, 48, 2.5), (64, 48, 8.0)] {
            let o = PhantomOptions {
                width: w,
                height: h,
                um_per_px: Some(s),
                difficulty: d,
                jpeg_quality: None,
                ..PhantomOptions::default()
            };
            let (img, t) = render_phantom(5, 0, &o);
            assert_eq!((img.width(), img.height()), (w, h));
            assert_eq!(t.image, "phantom_0000.png");
            assert!(t.hairs.iter().all(|h| h.length_px >= 5.0));
        }
    }
}

#[test]
fn synth_clipping_splits_reentering_hairs() {
    // A straight line along y = 5 from x = -10 to 30 leaves a 20×10 frame and comes back.
    let mut pts = Vec::new();
    for i in 0..=80 {
        pts.push([-10.0 + i as f64 * 0.5, 5.0]);
    }
    let runs = hairs::clip_runs_for_test(&pts, 20.0, 10.0);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert!((r[0].0[0] + 0.5).abs() < 1e-9);
    assert!((r[r.len() - 1].0[0] - 19.5).abs() < 1e-9);
    // A V shape dipping out of the top edge.
    let mut v = Vec::new();
    for i in 0..=40 {
        let x = i as f64 * 0.5;
        v.push([x, 2.0 - 6.0 * (1.0 - (x - 10.0).abs() / 10.0)]);
    }
    let runs = hairs::clip_runs_for_test(&v, 20.0, 10.0);
    assert_eq!(runs.len(), 2);
}

#[test]
fn synth_hidden_parts_lie_inside_another_hair() {
    let dist_to = |p: [f64; 2], line: &[[f64; 2]]| {
        line.iter()
            .map(|q| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt())
            .fold(f64::INFINITY, f64::min)
    };
    let mut hidden_points = 0;
    for seed in 0..4u64 {
        let o = PhantomOptions {
            width: 480,
            height: 360,
            ..small(Difficulty::Hard)
        };
        let (_, t) = render_phantom(seed, 0, &o);
        for (i, h) in t.hairs.iter().enumerate() {
            let mask = h.hidden_mask();
            let hidden_px = h.hidden_length_px();
            assert!(hidden_px >= 0.0 && hidden_px <= h.length_px + 1e-9);
            assert_eq!(h.hidden.is_empty(), hidden_px == 0.0);
            for (p, _) in h.points.iter().zip(&mask).filter(|(_, &m)| m) {
                // Away from the border, where the hiding hair may be clipped off.
                if p[0] < 30.0 || p[1] < 30.0 || p[0] > 450.0 || p[1] > 330.0 {
                    continue;
                }
                hidden_points += 1;
                // Inside another hair's shaft (its mean width; widths vary ±20%).
                let inside = t
                    .hairs
                    .iter()
                    .enumerate()
                    .any(|(j, g)| j != i && dist_to(*p, &g.points) < 0.6 * g.width_px + 1.0);
                assert!(
                    inside,
                    "hidden point {p:?} of hair {i} lies on no other hair"
                );
            }
        }
    }
    assert!(hidden_points > 100, "only {hidden_points} hidden points");
}

#[test]
fn synth_write_suite_is_prefix_stable() {
    let dir = tempfile::tempdir().unwrap();
    let o = small(Difficulty::Realistic);
    let a = write_suite(&dir.path().join("a"), 1, 99, &o).unwrap();
    let b = write_suite(&dir.path().join("b"), 3, 99, &o).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 3);
    assert_eq!(b[2].file_name().unwrap(), "phantom_0002.jpg");
    assert_eq!(std::fs::read(&a[0]).unwrap(), std::fs::read(&b[0]).unwrap());
    for p in &b {
        assert!(p.exists());
        let t = p.with_extension("truth.json");
        let truth: TruthImage =
            serde_json::from_str(&std::fs::read_to_string(&t).unwrap()).unwrap();
        assert_eq!(truth.image, p.file_name().unwrap().to_str().unwrap());
        let img = image::open(p).unwrap();
        assert_eq!((img.width(), img.height()), (320, 240));
    }
    let png = PhantomOptions {
        jpeg_quality: None,
        ..o
    };
    let c = write_suite(&dir.path().join("c"), 1, 99, &png).unwrap();
    assert_eq!(c[0].extension().unwrap(), "png");
}

/// Renders a few full-size phantoms of each difficulty into `$SYNTH_LOOK_DIR`
/// (default /tmp/synth-look) and prints the time per image.
#[test]
#[ignore]
fn synth_look() {
    let dir = std::env::var("SYNTH_LOOK_DIR").unwrap_or_else(|_| "/tmp/synth-look".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    for d in Difficulty::ALL {
        for i in 0..3usize {
            let o = PhantomOptions {
                difficulty: d,
                ..PhantomOptions::default()
            };
            let t0 = std::time::Instant::now();
            let (img, t) = render_phantom(image_seed(2024, i), i, &o);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            println!(
                "{} {i}: {ms:.0} ms, {} hairs, {:.2} um/px, blur {:.2}, thin {:.2}",
                d.as_str(),
                t.hairs.len(),
                t.um_per_px,
                t.blur_sigma_px,
                t.summary.thin_fraction.unwrap_or(0.0)
            );
            img.save(dir.join(format!("{}_{i}.png", d.as_str())))
                .unwrap();
            std::fs::write(
                dir.join(format!("{}_{i}.truth.json", d.as_str())),
                serde_json::to_string_pretty(&t).unwrap(),
            )
            .unwrap();
        }
    }
    // A small JPEG suite per difficulty, as the CLI writes it.
    for d in Difficulty::ALL {
        let o = PhantomOptions {
            difficulty: d,
            ..PhantomOptions::default()
        };
        let t0 = std::time::Instant::now();
        let paths = write_suite(&dir.join(format!("suite_{}", d.as_str())), 6, 2024, &o).unwrap();
        println!(
            "suite {}: {} images in {:.2} s",
            d.as_str(),
            paths.len(),
            t0.elapsed().as_secs_f64()
        );
    }
}

/// Prints the time of each rendering stage for one full-size phantom per difficulty.
#[test]
#[ignore]
fn synth_stage_times() {
    use std::time::Instant;
    for d in Difficulty::ALL {
        let opts = PhantomOptions {
            difficulty: d,
            um_per_px: Some(4.0),
            ..PhantomOptions::default()
        };
        let seed = image_seed(7, 0);
        let look = Look::sample(seed, &opts);
        let mut c = Canvas::new(look.w, look.h);
        let mut field = canvas::NearField::new(look.w, look.h);
        let mut r = Rng::new(1);
        let mut times = Vec::new();
        let mut t = Instant::now();
        let mut lap = |name: &'static str, t: &mut Instant| {
            times.push((name, t.elapsed().as_secs_f64() * 1e3));
            *t = Instant::now();
        };
        let scene = hairs::generate(&mut r, &look);
        lap("generate", &mut t);
        skin::paint_skin(&mut c, &mut r, &look);
        lap("skin", &mut t);
        skin::paint_furrows(&mut c, &mut field, &mut r, &look);
        skin::paint_vessels(&mut c, &mut field, &mut r, &look);
        skin::paint_openings(&mut c, &mut r, &look, &scene.openings);
        skin::paint_yellow_dots(&mut c, &mut r, &look, &scene.openings);
        skin::paint_scales(&mut c, &mut r, &look, look.scales, &scene.openings);
        lap("confounders", &mut t);
        hairs::render(&mut c, &mut field, &look, &scene.hairs);
        lap("hairs", &mut t);
        skin::paint_bubbles(&mut c, &mut r, &look);
        skin::paint_glitter_and_glare(&mut c, &mut r, &look);
        skin::apply_vignette(&mut c, &mut r, &look);
        lap("top", &mut t);
        c.gaussian_blur(look.blur_sigma);
        lap("blur", &mut t);
        c.add_noise(&mut r, look.photon_gain, look.read_noise);
        lap("noise", &mut t);
        let _ = c.to_srgb8();
        lap("srgb", &mut t);
        let _ = hairs::truth(&look, &scene.hairs);
        lap("truth", &mut t);
        println!("{} ({} hairs): {times:?}", d.as_str(), scene.hairs.len());
    }
}

/// Mean turn per px (rad/px) of a polyline, from its first to its last segment's heading.
fn mean_turn(points: &[[f64; 2]]) -> f64 {
    let mut heading = Vec::new();
    let mut length = 0.0;
    for w in points.windows(2) {
        let (dx, dy) = (w[1][0] - w[0][0], w[1][1] - w[0][1]);
        heading.push(dy.atan2(dx));
        length += dx.hypot(dy);
    }
    // Unwrapped total turn.
    let mut total = 0.0;
    for h in heading.windows(2) {
        let mut d = h[1] - h[0];
        while d > std::f64::consts::PI {
            d -= std::f64::consts::TAU;
        }
        while d < -std::f64::consts::PI {
            d += std::f64::consts::TAU;
        }
        total += d;
    }
    total.abs() / length.max(1e-9)
}

#[test]
fn synth_curly_hairs_bend_at_the_drawn_radius_and_the_default_draws_none() {
    let s = 5.0;
    let opts = |curly_share| PhantomOptions {
        width: 640,
        height: 480,
        um_per_px: Some(s),
        difficulty: Difficulty::Realistic,
        curly_share,
        ..PhantomOptions::default()
    };
    // Radii (µm) of the hairs at least 80 px long, over a few images.
    let radii = |curly_share| -> Vec<f64> {
        (0..4)
            .flat_map(|i| render_phantom(21, i, &opts(curly_share)).1.hairs)
            .filter(|h| h.length_px >= 80.0)
            .map(|h| s / mean_turn(&h.points))
            .collect()
    };
    let (lo, hi) = CURL_RADIUS_UM;
    let curly = radii(1.0);
    assert!(curly.len() >= 20, "{} hairs", curly.len());
    // The wiggle bends a curl a little either way: nearly all within the drawn range.
    let inside = curly
        .iter()
        .filter(|&&r| r >= 0.8 * lo && r <= 1.25 * hi)
        .count();
    assert!(
        inside * 10 >= curly.len() * 9,
        "{inside} of {}: {curly:?}",
        curly.len()
    );
    // Without the option, hairs are nearly straight: few bend tighter than the curls' widest.
    let straight = radii(0.0);
    let tight = straight.iter().filter(|&&r| r < hi).count();
    assert!(tight * 5 <= straight.len(), "{tight} of {}", straight.len());
}

#[test]
fn synth_without_highlights_draws_the_same_hairs_a_little_darker() {
    let opts = |highlights| PhantomOptions {
        width: 640,
        height: 480,
        difficulty: Difficulty::Hard,
        highlights,
        ..PhantomOptions::default()
    };
    let (with, truth) = render_phantom(902, 0, &opts(true));
    let (without, truth_without) = render_phantom(902, 0, &opts(false));
    assert_eq!(
        serde_json::to_string(&truth).unwrap(),
        serde_json::to_string(&truth_without).unwrap()
    );
    // Highlights only add light, on some hairs: some pixels lighter, none darker.
    let (mut lighter, mut darker) = (0, 0);
    for (a, b) in with.pixels().zip(without.pixels()) {
        let (a, b): (i32, i32) = (
            a.0.iter().map(|&v| v as i32).sum(),
            b.0.iter().map(|&v| v as i32).sum(),
        );
        lighter += (a > b + 6) as usize;
        darker += (a + 6 < b) as usize;
    }
    assert!(lighter > 500, "{lighter} pixels lighter with highlights");
    assert_eq!(darker, 0);
}
