//! Tuning aid: every linked piece of a phantom set (before the length rule), with its
//! features and what it covers of the truth, as CSV on stdout; one `truth` row per truth
//! hair. Used to choose the rules that keep a piece as a hair.
//! Usage: pieces TRUTH_DIR > pieces.csv
use std::collections::HashMap;

use trichometer::truth::TruthImage;
use trichometer::{enhance, link, load, measure, reject, trace};

/// Grid cell (px) of the truth-point lookup.
const CELL: f64 = 8.0;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("TRUTH_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let s = e.ok()?.file_name().to_string_lossy().to_string();
            s.ends_with(".truth.json").then_some(s)
        })
        .collect();
    names.sort();
    println!("kind,image,id,len,width,sd,flag,contrast,polarity,profiles,snr,curv,fit,straight,blur,best,cover,share,tclass,twidth,tlen,tlight");
    for name in names {
        let t: TruthImage =
            serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
        let img = image::open(dir.join(&t.image)).unwrap();
        let lum = load::linear_luminance(&img);
        let colour = img.as_rgb8().map(load::Colour::new);
        let s = trichometer::Settings::default();
        let ridge = enhance::ridges(&lum, s.max_width_px);
        let raws = trichometer::profile_traces(
            &ridge,
            trace::trace(&ridge),
            colour.as_ref(),
            s.max_width_px,
        );
        let blur = measure::blur_or_default(&raws).0;
        let pieces: Vec<link::Piece> = trichometer::split_pairs(raws, colour.as_ref())
            .into_iter()
            .filter_map(|r| {
                Some(link::Piece {
                    m: measure::finish(&r, blur, 0.0).ok()?,
                    polarity: r.trace.polarity,
                })
            })
            .collect();
        let linked =
            link::deduplicate(link::link(link::deduplicate(pieces), blur, &ridge.contrast));
        // Truth points by grid cell: (hair index, point index).
        let mut grid: HashMap<(i64, i64), Vec<(usize, usize)>> = HashMap::new();
        for (k, h) in t.hairs.iter().enumerate() {
            for (i, p) in h.points.iter().enumerate() {
                grid.entry(((p[0] / CELL) as i64, (p[1] / CELL) as i64))
                    .or_default()
                    .push((k, i));
            }
        }
        for h in &t.hairs {
            println!(
                "truth,{},{},{:.1},{:.3},,,,,,,,,,{blur:.3},,,,{:?},{:.3},{:.1},{}",
                t.image,
                h.id,
                h.visible_length_px(),
                h.width_px,
                h.class,
                h.width_px,
                h.visible_length_px(),
                h.light as u8
            );
        }
        let (hh, ww) = ridge.snr.dim();
        for (id, p) in linked.iter().enumerate() {
            let m = &p.m;
            let pts = measure::resample_f64(&m.points, 1.0);
            if std::env::var("PIECES_PTS").is_ok() && m.length_px >= 40.0 {
                eprintln!("{}\t{id}\t{:?}", t.image, m.points);
            }
            // Per truth hair: which of its points this piece passes near, and how many of
            // this piece's points are near it.
            let mut covered: HashMap<usize, std::collections::HashSet<usize>> = HashMap::new();
            let mut near: HashMap<usize, usize> = HashMap::new();
            for q in &pts {
                let (cx, cy) = ((q[0] / CELL) as i64, (q[1] / CELL) as i64);
                let mut hit: Vec<usize> = Vec::new();
                for gy in cy - 2..=cy + 2 {
                    for gx in cx - 2..=cx + 2 {
                        for &(k, i) in grid.get(&(gx, gy)).map(|v| v.as_slice()).unwrap_or(&[]) {
                            let tp = t.hairs[k].points[i];
                            let tol = (0.5 * t.hairs[k].width_px).max(2.0) + 1.0;
                            let d = ((tp[0] - q[0]).powi(2) + (tp[1] - q[1]).powi(2)).sqrt();
                            if d <= tol {
                                covered.entry(k).or_default().insert(i);
                                if !hit.contains(&k) {
                                    hit.push(k);
                                }
                            }
                        }
                    }
                }
                for k in hit {
                    *near.entry(k).or_default() += 1;
                }
            }
            let best = near
                .iter()
                .max_by_key(|(k, n)| (**n, usize::MAX - **k))
                .map(|(k, n)| (*k, *n));
            let mut snr: Vec<f32> = pts
                .iter()
                .filter_map(|q| {
                    let (x, y) = (q[0].round() as i64, q[1].round() as i64);
                    (x >= 0 && y >= 0 && (x as usize) < ww && (y as usize) < hh)
                        .then(|| ridge.snr[[y as usize, x as usize]])
                })
                .collect();
            snr.sort_by(|a, b| a.total_cmp(b));
            let snr_med = snr.get(snr.len() / 2).copied().unwrap_or(0.0);
            let (a, b) = (m.points[0], m.points[m.points.len() - 1]);
            let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
            let flag = match &m.flag {
                None => "none",
                Some(f) if f.starts_with("narrower") => "narrow",
                Some(_) => "vary",
            };
            let (bid, cover, share, tc, tw, tl, tli) = match best {
                Some((k, n)) => {
                    let h = &t.hairs[k];
                    (
                        h.id as i64,
                        covered[&k].len() as f64,
                        n as f64 / pts.len() as f64,
                        format!("{:?}", h.class),
                        h.width_px,
                        h.visible_length_px(),
                        h.light as u8,
                    )
                }
                None => (-1, 0.0, 0.0, String::new(), 0.0, 0.0, 0),
            };
            println!(
                "piece,{},{id},{:.1},{:.3},{:.3},{flag},{:.4},{},{},{snr_med:.2},{:.4},{:.4},{:.3},{blur:.3},{bid},{cover},{share:.3},{tc},{tw:.3},{tl:.1},{tli}",
                t.image,
                m.length_px,
                m.width_px,
                m.width_sd_px,
                m.contrast,
                p.polarity,
                m.profiles,
                reject::mean_curvature(&m.points),
                reject::fitted_curvature(&m.points),
                chord / m.length_px.max(1e-9),
            );
        }
    }
}
