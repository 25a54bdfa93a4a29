//! Prints the per-stage timing table of docs/PERFORMANCE.md: for realistic phantoms of
//! three sizes and dense-hair images of 50–400 hairs, the median time of each pipeline
//! stage on one thread, per image and per megapixel, each stage's share of the whole
//! analysis, and the ratio whole analysis / JPEG decode (also timed back to back in each
//! repetition, which this shared machine's drifting speed cannot skew).
//!
//!     cargo run --release --example stage_table              # 5 runs per figure
//!     cargo run --release --example stage_table -- --reps 11 # steadier
//!     cargo run --release --example stage_table -- --quick   # 1 run, smoke test

#[path = "../benches/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{median_time, Case};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Row {
    label: String,
    mp: f64,
    hairs: usize,
    decode: f64,
    lum: f64,
    ridges: f64,
    trace: f64,
    measure: f64,
    whole: f64,
    /// Median over repetitions of whole / decode timed back to back (see `paired_ratio`).
    ratio: f64,
}

/// JPEG decodes timed around each whole analysis: enough that their median is steady.
const DECODES_PER_PAIR: usize = 5;

/// whole analysis / JPEG decode, as the median over `reps` of the ratio within one
/// repetition (decodes just before and after each analysis). This shared machine's speed
/// drifts by ±30% over minutes; stage by stage medians taken minutes apart moved the ratio
/// from 31x to 55x on unchanged code, the paired ratio cancels the drift.
fn paired_ratio(case: &Case, img: &image::DynamicImage, reps: usize) -> f64 {
    let decode = || {
        let mut t: Vec<Duration> = (0..DECODES_PER_PAIR)
            .map(|_| {
                let s = Instant::now();
                std::hint::black_box(support::decode(&case.jpeg));
                s.elapsed()
            })
            .collect();
        t.sort();
        ms(t[t.len() / 2])
    };
    let mut ratios: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let before = decode();
            let s = Instant::now();
            std::hint::black_box(support::whole(img));
            let whole = ms(s.elapsed());
            whole / (0.5 * (before + decode()))
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn time_case(case: &Case, reps: usize) -> Row {
    let img = support::decode(&case.jpeg);
    let lum = support::luminance(&img);
    let ridge = support::ridges(&lum);
    let traces = support::trace(&ridge);
    let hairs = support::whole(&img);
    Row {
        label: case.label.clone(),
        mp: case.megapixels(),
        hairs,
        decode: ms(median_time(reps, || support::decode(&case.jpeg))),
        lum: ms(median_time(reps, || support::luminance(&img))),
        ridges: ms(median_time(reps, || support::ridges(&lum))),
        trace: ms(median_time(reps, || support::trace(&ridge))),
        measure: ms(median_time(reps, || {
            support::measure(&ridge, traces.clone())
        })),
        whole: ms(median_time(reps, || support::whole(&img))),
        ratio: paired_ratio(case, &img, reps),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 5 });
    // The analysis of one image is serial; pin everything to one thread anyway.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let rows: Vec<Row> = pool.install(|| {
        let mut cases: Vec<Case> = [(640, 480), (1280, 960), (1920, 1080)]
            .into_iter()
            .map(|(w, h)| support::realistic(w, h))
            .collect();
        for n in [50, 100, 200, 400] {
            cases.push(support::dense(1280, 960, n));
        }
        cases
            .iter()
            .map(|c| {
                eprintln!("timing {} ...", c.label);
                time_case(c, reps)
            })
            .collect()
    });

    println!(
        "trichometer {} stage timings, one thread, median of {reps} run(s); ms per image (ms per megapixel)\n",
        env!("CARGO_PKG_VERSION")
    );
    println!("| image | MP | hairs | decode JPEG | luminance | ridges | trace | measure | whole analysis | whole / decode | paired whole / decode |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let cell = |v: f64| format!("{v:.1} ({:.1})", v / r.mp);
        println!(
            "| {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
            r.label,
            r.mp,
            r.hairs,
            cell(r.decode),
            cell(r.lum),
            cell(r.ridges),
            cell(r.trace),
            cell(r.measure),
            cell(r.whole),
            r.whole / r.decode,
            r.ratio
        );
    }
    for r in rows
        .iter()
        .filter(|r| r.label.contains("1920x1080") || r.label.contains("200 hairs"))
    {
        println!("\nShares of the whole analysis, {}:\n", r.label);
        println!("| stage | ms per image | ms per MP | share of whole |");
        println!("|---|---|---|---|");
        let parts = [
            ("linear_luminance", r.lum),
            ("ridges (enhance)", r.ridges),
            ("trace", r.trace),
            ("measure (profiles, blur, widths)", r.measure),
        ];
        for (name, v) in parts {
            println!(
                "| {name} | {v:.1} | {:.1} | {:.0}% |",
                v / r.mp,
                100.0 * v / r.whole
            );
        }
        let sum: f64 = parts.iter().map(|p| p.1).sum();
        println!(
            "| sum of stages | {sum:.1} | {:.1} | {:.0}% |",
            sum / r.mp,
            100.0 * sum / r.whole
        );
        println!(
            "| whole analysis | {:.1} | {:.1} | 100% |",
            r.whole,
            r.whole / r.mp
        );
        println!(
            "| (reference) decode JPEG | {:.1} | {:.1} | whole / decode = {:.1} (paired: {:.1}) |",
            r.decode,
            r.decode / r.mp,
            r.whole / r.decode,
            r.ratio
        );
    }
    let real: Vec<&Row> = rows
        .iter()
        .filter(|r| r.label.starts_with("realistic"))
        .collect();
    let dense: Vec<&Row> = rows
        .iter()
        .filter(|r| r.label.starts_with("dense"))
        .collect();
    println!("\nScaling:");
    if let (Some(a), Some(b)) = (real.first(), real.last()) {
        println!(
            "- pixels: {:.2} -> {:.2} MP ({:.1}x) costs {:.1}x the whole-analysis time (linear: {:.1}x)",
            a.mp,
            b.mp,
            b.mp / a.mp,
            b.whole / a.whole,
            b.mp / a.mp
        );
    }
    let drawn = |n: usize| {
        dense
            .iter()
            .find(|r| r.label.ends_with(&format!(" {n} hairs")))
    };
    if let (Some(a), Some(b)) = (drawn(50), drawn(200)) {
        println!(
            "- hairs (50 -> 200 drawn): {} -> {} found ({:.1}x) on the same pixels: trace {:.1}x, measure {:.1}x, whole {:.1}x \
             (quadratic in hairs would be {:.0}x for trace+measure)",
            a.hairs,
            b.hairs,
            b.hairs as f64 / a.hairs.max(1) as f64,
            b.trace / a.trace,
            b.measure / a.measure,
            b.whole / a.whole,
            (b.hairs as f64 / a.hairs.max(1) as f64).powi(2)
        );
        for r in &dense {
            println!(
                "  {}: {:.3} ms per found hair in trace+measure",
                r.label,
                (r.trace + r.measure) / r.hairs.max(1) as f64
            );
        }
    }
}
