//! Debug: for every truth hair of a phantom (>= 40 px), where along the pipeline it is
//! lost: ridge response, traces, measured profiles, accepted widths, final hairs.
//! Usage: diagnose TRUTH_DIR [NAME...]  (prints per-class stage coverage)
use std::collections::BTreeMap;

use trichometer::truth::TruthImage;
use trichometer::{enhance, link, load, measure, trace};

/// Share of a truth hair's points within `tol` px of some point of `lines`.
fn coverage(truth: &[[f64; 2]], lines: &[Vec<[f32; 2]>], tol: f64) -> f64 {
    let n = truth.len().max(1);
    let hit = truth
        .iter()
        .filter(|p| {
            lines.iter().any(|l| {
                l.iter().any(|q| {
                    let dx = q[0] as f64 - p[0];
                    let dy = q[1] as f64 - p[1];
                    dx * dx + dy * dy <= tol * tol
                })
            })
        })
        .count();
    hit as f64 / n as f64
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(&a[1]);
    let mut names: Vec<String> = a[2..].to_vec();
    if names.is_empty() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let s = p.file_name().unwrap().to_string_lossy().to_string();
            if s.ends_with(".truth.json") {
                names.push(s);
            }
        }
        names.sort();
    }
    // class -> [n, ridge>=50%, traced, measured, accepted, final]
    let mut tally: BTreeMap<String, [usize; 6]> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for name in names {
        let t: TruthImage =
            serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
        let img = image::open(dir.join(&t.image)).unwrap();
        let lum = load::linear_luminance(&img);
        let colour = img.as_rgb8().map(load::Colour::new);
        let s = trichometer::Settings::default();
        let ridge = enhance::ridges(&lum, s.max_width_px);
        if std::env::var("VERBOSE").is_ok() {
            println!("scales {:?}\nnoise {:?}", ridge.scales, ridge.noise);
        }
        let traces = trace::trace(&ridge);
        let tr_lines: Vec<Vec<[f32; 2]>> = traces.iter().map(|t| t.points.clone()).collect();
        let raws = trichometer::profile_traces(&ridge, traces, colour.as_ref(), s.max_width_px);
        let blur = measure::blur_or_default(&raws).0;
        let raws = trichometer::split_pairs(raws, colour.as_ref());
        let meas_lines: Vec<Vec<[f32; 2]>> = raws.iter().map(|r| r.path.clone()).collect();
        let mut acc_lines = Vec::new();
        let mut rej: Vec<(Vec<[f32; 2]>, String)> = Vec::new();
        let mut pieces = Vec::new();
        for r in &raws {
            match measure::finish(r, blur, 0.0) {
                Ok(m) => {
                    acc_lines.push(r.path.clone());
                    pieces.push(link::Piece {
                        m,
                        polarity: r.trace.polarity,
                    });
                }
                Err(e) => rej.push((r.path.clone(), format!("{e:?}"))),
            }
        }
        let linked =
            link::deduplicate(link::link(link::deduplicate(pieces), blur, &ridge.contrast));
        let as_f32 = |m: &measure::Measured| -> Vec<[f32; 2]> {
            m.points
                .iter()
                .map(|p| [p[0] as f32, p[1] as f32])
                .collect()
        };
        let link_lines: Vec<Vec<[f32; 2]>> = linked.iter().map(|p| as_f32(&p.m)).collect();
        // The length filter of `analyze_luminance`.
        let long_lines: Vec<Vec<[f32; 2]>> = linked
            .iter()
            .filter(|p| trichometer::long_enough(&p.m, s.min_length_px, &ridge.snr, blur))
            .map(|p| as_f32(&p.m))
            .collect();
        let res = trichometer::analyze_planes(&lum, colour.as_ref(), &s).unwrap();
        // DEBUG_AT=x,y: the linked pieces passing within 30 px of that point.
        if let Ok(at) = std::env::var("DEBUG_AT") {
            let v: Vec<f64> = at.split(',').map(|t| t.parse().unwrap()).collect();
            for p in &linked {
                if p.m
                    .points
                    .iter()
                    .any(|q| (q[0] - v[0]).hypot(q[1] - v[1]) < 30.0)
                {
                    println!(
                        "  linked pol {} w {:.2} len {:.0} flag {:?} curv {:.4} fitted {:.4} from {:?} to {:?}",
                        p.polarity,
                        p.m.width_px,
                        p.m.length_px,
                        p.m.flag,
                        trichometer::reject::mean_curvature(&p.m.points),
                        trichometer::reject::fitted_curvature(&p.m.points),
                        p.m.points[0],
                        p.m.points[p.m.points.len() - 1]
                    );
                    if std::env::var("DEBUG_PTS").is_ok() {
                        println!("    pts {:?}", p.m.points);
                    }
                }
            }
        }
        let fin: Vec<Vec<[f32; 2]>> = res
            .hairs
            .iter()
            .map(|h| {
                h.points
                    .iter()
                    .map(|p| [p[0] as f32, p[1] as f32])
                    .collect()
            })
            .collect();
        println!(
            "{} blur true {:.2} est {:.2} scale {:.2}",
            t.image, t.blur_sigma_px, blur, t.um_per_px
        );
        for h in t.hairs.iter().filter(|h| h.visible_length_px() >= 40.0) {
            // Only the part not hidden by another hair counts.
            let mask = h.hidden_mask();
            let visible: Vec<[f64; 2]> = h
                .points
                .iter()
                .zip(&mask)
                .filter(|(_, &m)| !m)
                .map(|(p, _)| *p)
                .collect();
            let h = &trichometer::truth::TruthHair {
                points: visible,
                ..h.clone()
            };
            let cls = format!("{:?}{}", h.class, if h.light { "-light" } else { "" });
            let tol = (0.5 * h.width_px).max(2.0) + 1.0;
            // Ridge: share of truth points whose best snr within tol is >= SNR_HIGH.
            let (hh, ww) = ridge.snr.dim();
            let strong = h
                .points
                .iter()
                .filter(|p| {
                    let r = tol.ceil() as i64;
                    let (cx, cy) = (p[0].round() as i64, p[1].round() as i64);
                    (cy - r..=cy + r).any(|y| {
                        (cx - r..=cx + r).any(|x| {
                            x >= 0
                                && y >= 0
                                && (x as usize) < ww
                                && (y as usize) < hh
                                && ridge.snr[[y as usize, x as usize]] >= trace::SNR_LOW
                        })
                    })
                })
                .count() as f64
                / h.points.len() as f64;
            // Median over truth points of the best same-polarity snr within 1 px.
            let want: i8 = if h.light { -1 } else { 1 };
            let mut on: Vec<f32> = h
                .points
                .iter()
                .map(|p| {
                    let (cx, cy) = (p[0].round() as i64, p[1].round() as i64);
                    let mut best = 0f32;
                    for y in cy - 1..=cy + 1 {
                        for x in cx - 1..=cx + 1 {
                            if x >= 0 && y >= 0 && (x as usize) < ww && (y as usize) < hh {
                                let (xu, yu) = (x as usize, y as usize);
                                if ridge.polarity[[yu, xu]] == want {
                                    best = best.max(ridge.snr[[yu, xu]]);
                                }
                            }
                        }
                    }
                    best
                })
                .collect();
            on.sort_by(|a, b| a.total_cmp(b));
            let snr_med = on[on.len() / 2];
            let snr_lo = on[on.len() / 5];
            let c_tr = coverage(&h.points, &tr_lines, tol);
            let c_me = coverage(&h.points, &meas_lines, tol);
            let c_ac = coverage(&h.points, &acc_lines, tol);
            let c_li = coverage(&h.points, &link_lines, tol);
            let c_ln = coverage(&h.points, &long_lines, tol);
            let c_fi = coverage(&h.points, &fin, tol);
            let e = tally.entry(cls.clone()).or_default();
            e[0] += 1;
            e[1] += (strong >= 0.5) as usize;
            e[2] += (c_tr >= 0.5) as usize;
            e[3] += (c_me >= 0.5) as usize;
            e[4] += (c_ac >= 0.5) as usize;
            e[5] += (c_fi >= 0.5) as usize;
            if c_fi < 0.5 {
                let why = rej
                    .iter()
                    .filter(|(l, _)| coverage(&h.points, std::slice::from_ref(l), tol) > 0.2)
                    .map(|(_, r)| r.clone())
                    .collect::<Vec<_>>()
                    .join(",");
                *reasons.entry(format!("{cls}:{why}")).or_default() += 1;
                if std::env::var("VERBOSE").is_ok() {
                    println!(
                        "  miss {cls} id {} w {:.1}px len {:.0} snr {:.1}/{:.1} snr>{:.2} tr {:.2} me {:.2} ac {:.2} li {:.2} ln {:.2} fi {:.2} [{why}] at {:?}",
                        h.id, h.width_px, h.length_px, snr_med, snr_lo, strong, c_tr, c_me, c_ac, c_li, c_ln, c_fi, h.points[h.points.len() / 2]
                    );
                    // The linked pieces over this hair: length, width, flag.
                    for p in &linked {
                        let c = coverage(&h.points, &[as_f32(&p.m)], tol);
                        if c > 0.1 {
                            println!(
                                "    piece cov {c:.2} len {:.0} w {:.2} flag {:?}",
                                p.m.length_px, p.m.width_px, p.m.flag
                            );
                        }
                    }
                }
            }
        }
    }
    println!("class: n ridge traced measured accepted final");
    for (k, v) in &tally {
        println!("{k:22} {:?}", v);
    }
    for (k, v) in &reasons {
        println!("  {k}: {v}");
    }
}
