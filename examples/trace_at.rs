//! Debug: the traces, raw hairs and finished pieces passing near a point of an image.
//! Usage: trace_at IMAGE X Y [RADIUS]
use trichometer::{enhance, load, measure, trace};

fn near(pts: &[[f32; 2]], x: f32, y: f32, r: f32) -> bool {
    pts.iter().any(|p| (p[0] - x).hypot(p[1] - y) < r)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let img = image::open(&a[1]).unwrap();
    let (x, y): (f32, f32) = (a[2].parse().unwrap(), a[3].parse().unwrap());
    let r: f32 = a.get(4).map(|s| s.parse().unwrap()).unwrap_or(20.0);
    let lum = load::linear_luminance(&img);
    let colour = img.as_rgb8().map(load::Colour::new);
    let s = trichometer::Settings::default();
    let ridge = enhance::ridges(&lum, s.max_width_px);
    let traces = trace::trace(&ridge);
    for t in traces.iter().filter(|t| near(&t.points, x, y, r)) {
        let (p0, p1) = (t.points[0], t.points[t.points.len() - 1]);
        println!(
            "trace pol {} sigma {:.2} n {} {:?} -> {:?}",
            t.polarity,
            t.sigma,
            t.points.len(),
            p0,
            p1
        );
    }
    let raws = trichometer::profile_traces(&ridge, traces, colour.as_ref(), s.max_width_px);
    let blur = measure::blur_or_default(&raws).0;
    let show = |tag: &str, raws: &[measure::RawHair]| {
        for rw in raws.iter().filter(|rw| near(&rw.path, x, y, r)) {
            let res = measure::finish(rw, blur, 0.0);
            let desc = match &res {
                Ok(m) => format!(
                    "ok w {:.2} len {:.0} flag {:?}",
                    m.width_px, m.length_px, m.flag
                ),
                Err(e) => format!("{e:?}"),
            };
            let (p0, p1) = (rw.path[0], rw.path[rw.path.len() - 1]);
            let seps: Vec<String> = rw
                .profiles
                .iter()
                .take(12)
                .map(|p| format!("{:.1}", p.separation()))
                .collect();
            if std::env::var("JUNCTIONS").is_ok() {
                for (p, q) in rw.profiles.iter().zip(&rw.samples).take(6) {
                    let j = trichometer::pairs::junction(
                        q,
                        rw.half,
                        (p.left, p.right),
                        0.001,
                        rw.trace.polarity > 0,
                    );
                    let qs: Vec<String> = q.iter().step_by(4).map(|v| format!("{v:.2}")).collect();
                    println!(
                        "   edges {:.1} {:.1} peak {:.2} junctions {:?}\n     q {}",
                        p.left,
                        p.right,
                        p.peak,
                        j,
                        qs.join(" ")
                    );
                }
            }
            println!(
                "{tag} pol {} prof {}/{} {:?} -> {:?}: {desc} seps {}",
                rw.trace.polarity,
                rw.profiles.len(),
                rw.attempted,
                p0,
                p1,
                seps.join(" ")
            );
        }
    };
    show("raw", &raws);
    let split = trichometer::split_pairs(raws, colour.as_ref());
    show("split", &split);
}
