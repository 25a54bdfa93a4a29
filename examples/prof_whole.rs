//! Runs the whole analysis of the realistic 1920x1080 phantom (or a dense image) many
//! times, for a sampling profiler: `perf record -g target/release/examples/prof_whole 20`.
//! `prof_whole digest` prints a digest of every output bit of the analyses of several
//! bench images (traces, raw profiles, hairs) to check a speed-up changes nothing.

#[path = "../benches/support/mod.rs"]
mod support;

use std::hash::{DefaultHasher, Hash, Hasher};

use trichometer::{measure, trace, Settings};

fn digest(case: &support::Case) -> u64 {
    let img = support::decode(&case.jpeg);
    let lum = support::luminance(&img);
    let ridge = support::ridges(&lum);
    let mut h = DefaultHasher::new();
    let traces = trace::trace(&ridge);
    for t in &traces {
        format!("{t:?}").hash(&mut h);
        let raw = measure::profile_trace(&ridge.contrast, None, t.clone(), 1.0, 40.0);
        format!("{:?} {:?} {:?}", raw.path, raw.profiles, raw.samples).hash(&mut h);
    }
    let a = trichometer::analyze(&img, &Settings::default()).expect("analyses");
    format!("{a:?}").hash(&mut h);
    println!(
        "{}: {} traces, {} hairs",
        case.label,
        traces.len(),
        a.hairs.len()
    );
    h.finish()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(|s| s == "digest").unwrap_or(false) {
        let cases = [
            support::realistic(1920, 1080),
            support::realistic(640, 480),
            support::dense(1280, 960, 200),
            support::dense(1280, 960, 400),
        ];
        for c in &cases {
            println!("{:016x}", digest(c));
        }
        return;
    }
    if args.first().map(|s| s == "stages").unwrap_or(false) {
        let reps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
        for case in [
            support::realistic(1920, 1080),
            support::dense(1280, 960, 200),
        ] {
            let img = support::decode(&case.jpeg);
            let lum = support::luminance(&img);
            let ridge = support::ridges(&lum);
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            let r = ms(support::median_time(reps, || support::ridges(&lum)));
            let t = ms(support::median_time(reps, || support::trace(&ridge)));
            let traces = support::trace(&ridge);
            let m = ms(support::median_time(reps, || {
                support::measure(&ridge, traces.clone())
            }));
            let wh = ms(support::median_time(reps, || support::whole(&img)));
            println!(
                "{}: ridges {r:.1} trace {t:.1} measure {m:.1} whole {wh:.1} ms",
                case.label
            );
        }
        return;
    }
    let reps: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dense = args.get(1).map(|s| s == "dense").unwrap_or(false);
    // The phantom is cached in the temporary folder: rendering it costs more than an analysis.
    let path = std::env::temp_dir().join(if dense {
        "prof_dense.jpg"
    } else {
        "prof_1920.jpg"
    });
    let jpeg = std::fs::read(&path).unwrap_or_else(|_| {
        let case = if dense {
            support::dense(1280, 960, 200)
        } else {
            support::realistic(1920, 1080)
        };
        std::fs::write(&path, &case.jpeg).expect("temporary folder writable");
        case.jpeg
    });
    let img = support::decode(&jpeg);
    let mut hairs = 0;
    for _ in 0..reps {
        hairs = support::whole(&img);
    }
    println!("{}: {hairs} hairs", path.display());
}
