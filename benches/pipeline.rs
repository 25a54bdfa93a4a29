//! Criterion benchmarks of each pipeline stage and of the whole analysis, with JPEG decode
//! of the same image as the reference. One thread (the analysis of one image is serial).
//!
//!     cargo bench --bench pipeline            # all (a few minutes)
//!     cargo bench --bench pipeline -- 1920    # only the cases whose name contains 1920
//!
//! The per-megapixel table with each stage's share is printed by
//! `cargo run --release --example stage_table` (see docs/PERFORMANCE.md).

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use support::Case;

fn stages(c: &mut Criterion, case: &Case) {
    let mut g = c.benchmark_group(case.label.replace(' ', "_").replace(',', ""));
    g.throughput(Throughput::Elements(case.width as u64 * case.height as u64));
    let img = support::decode(&case.jpeg);
    let lum = support::luminance(&img);
    let ridge = support::ridges(&lum);
    let traces = support::trace(&ridge);
    g.bench_function("decode_jpeg", |b| {
        b.iter(|| support::decode(black_box(&case.jpeg)))
    });
    g.bench_function("linear_luminance", |b| {
        b.iter(|| support::luminance(black_box(&img)))
    });
    g.bench_function("ridges", |b| b.iter(|| support::ridges(black_box(&lum))));
    g.bench_function("trace", |b| b.iter(|| support::trace(black_box(&ridge))));
    g.bench_function("measure", |b| {
        b.iter_batched(
            || traces.clone(),
            |t| support::measure(black_box(&ridge), t),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("whole_analysis", |b| {
        b.iter(|| support::whole(black_box(&img)))
    });
    g.finish();
}

fn realistic(c: &mut Criterion) {
    for (w, h) in [(1280, 960), (1920, 1080)] {
        stages(c, &support::realistic(w, h));
    }
}

/// Dense hair: time of the whole analysis as the hair count grows, same pixels.
fn dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("dense_1280x960_whole_analysis");
    for hairs in [50, 200] {
        let case = support::dense(1280, 960, hairs);
        let img = support::decode(&case.jpeg);
        g.bench_with_input(BenchmarkId::new("hairs", hairs), &img, |b, img| {
            b.iter(|| support::whole(black_box(img)))
        });
    }
    g.finish();
    stages(c, &support::dense(1280, 960, 200));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = realistic, dense
}
criterion_main!(benches);
