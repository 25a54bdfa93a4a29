//! The `trichometer` binary: parses flags, runs the library, writes the report folder and
//! prints progress and a summary. All analysis lives in the library.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use clap::{CommandFactory, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use cli::{AnalyzeArgs, Cli, Command, MergeArgs, OutputFormat, SynthArgs, ValidateArgs};
use std::io::Write;
use trichometer::batch::{self, BatchOptions};
use trichometer::calibration::{self, Manifest};
use trichometer::output::{self, ReportWriter};
use trichometer::pictures::PictureWriter;
use trichometer::{Settings, DISCLAIMER};

/// Exit status of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, the shell convention).
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Validate(args) => validate(args),
        Command::Merge(args) => merge(args),
        Command::Synth(args) => synth(args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "trichometer",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "trichometer: error: {}",
                format!("{e:#}").replace('\n', " ")
            );
            ExitCode::from(2)
        }
    }
}

/// Largest allocation glibc takes from the heap instead of mapping it on its own, and free
/// memory it keeps at the top of the heap: its defaults (dynamic, at most 32 and 64 MB)
/// returned an analysis' image-sized buffers (~150 MB at 1920x1080) to the system after
/// each image and had the kernel map and zero them again for the next, ~10% of the
/// analysis time. Cost: peak memory ~5–10% higher (freed blocks kept, not always reused
/// whole), not growing with the batch.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 32 << 20; // glibc's largest allowed value on 64-bit
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD_BYTES: i32 = 512 << 20;

/// Sets the thresholds above; elsewhere the allocator's defaults stay.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two of glibc's malloc parameters, before any other thread
    // exists. Setting either turns glibc's dynamic thresholds off, so the trim threshold is
    // only set once the mmap threshold was accepted (mallopt returns 1; 32-bit glibc
    // rejects 32 MB and keeps its defaults).
    unsafe {
        if libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 {
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
        }
    }
}

fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    if args.terminal_um <= args.thin_um {
        anyhow::bail!(
            "--terminal-um ({}) must be above --thin-um ({})",
            args.terminal_um,
            args.thin_um
        );
    }
    let settings = Settings {
        um_per_px: args.um_per_px,
        thin_um: args.thin_um,
        terminal_um: args.terminal_um,
        min_length_px: args.min_length_px,
        ..Settings::default()
    };
    let opts = BatchOptions {
        jobs: args.jobs.map(|j| j as usize).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        max_pixels: (args.max_megapixels * 1e6) as u64,
    };
    // Compact: a long batch's memory must not grow with its length.
    let inputs = batch::discover_list(&args.inputs);
    let manifest = args.manifest.as_deref().map(Manifest::load).transpose()?;
    let calibration = calibration::resolve_all(
        inputs.iter(),
        &args.inputs,
        args.um_per_px,
        manifest.as_ref(),
    )?;
    let mut writer = ReportWriter::create(&args.out, &settings)?;
    let mut pictures = PictureWriter::create(&args.out, &settings)?;
    // Split after discovery and calibration, so report paths and scales are those of the
    // whole input list.
    let inputs = match args.shard {
        Some(shard) => {
            writer.set_shard(output::ShardInfo {
                index: shard.index,
                count: shard.count,
                inputs_total: inputs.len(),
            });
            shard.select_list(inputs)
        }
        None => inputs,
    };
    if !args.quiet {
        for w in &calibration.warnings {
            eprintln!("trichometer: warning: {w}");
        }
    }
    let progress = if !args.quiet && std::io::stderr().is_terminal() && inputs.len() > 1 {
        let pb =
            ProgressBar::with_draw_target(Some(inputs.len() as u64), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} images ({per_sec}, eta {eta}) {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    // Ctrl-C / SIGTERM: stop starting images, finish and write the ones in flight.
    static STOP: AtomicBool = AtomicBool::new(false);
    let _ = ctrlc::set_handler(|| {
        if !STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\ntrichometer: interrupted: finishing the images in progress and writing the reports...");
        }
    });
    let stop = &STOP;
    batch::silence_caught_panics();
    let reused_before = batch::reused_reports();
    let mut write_error = None;
    let handed = batch::run_indexed(
        inputs.len(),
        opts.jobs,
        stop,
        |i| {
            let input = &inputs.get(i);
            let previous = args.resume.then(|| output::json_path(&args.out, input));
            let scale = calibration.get(input);
            calibration::analyze_input_with_pictures(
                input,
                &settings,
                &scale,
                opts.max_pixels,
                previous.as_deref(),
                args.overlay,
            )
        },
        |i, (report, pics)| {
            if report.row.status != "ok" {
                progress.suspend(|| {
                    eprintln!("trichometer: {}: {}", report.row.image, report.row.error)
                });
            }
            if write_error.is_none() {
                let input = inputs.get(i);
                if let Err(e) = writer
                    .add(&input, &report)
                    .and_then(|_| pictures.add(&input, &report, pics.as_ref()))
                {
                    write_error = Some(e);
                    stop.store(true, Ordering::SeqCst);
                }
            }
            if args.format == OutputFormat::Jsonl {
                let mut out = std::io::stdout().lock();
                // A closed pipe (e.g. `| head`) must not stop the batch.
                let _ = writeln!(out, "{}", trichometer::output::jsonl_line(&report))
                    .and_then(|_| out.flush());
            }
            progress.inc(1);
        },
    );
    progress.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e.context("writing the reports failed"));
    }
    let not_run = inputs.len() - handed;
    writer.set_reused(batch::reused_reports() - reused_before);
    let summary = writer.finish(not_run)?;
    pictures.finish(&summary)?;
    if !args.quiet {
        let pictures = if args.overlay {
            ", report.html, overlays/"
        } else {
            ", report.html"
        };
        print_summary(&summary, &settings, &args.out, pictures);
    }
    if not_run > 0 {
        eprintln!(
            "trichometer: interrupted: {not_run} image(s) not analysed; the reports hold the {handed} \
             finished (run again with --resume to complete)"
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(if summary.images_failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The closing lines of `analyze` and `merge` on stderr: counts, pooled figures, where the
/// reports are, and the disclaimer.
/// The end-of-run paragraph on stderr; `pictures` lists the picture files written.
fn print_summary(
    summary: &output::BatchSummary,
    settings: &Settings,
    out: &std::path::Path,
    pictures: &str,
) {
    let thin = match summary.pooled.thin_fraction {
        Some(f) if summary.unit == "um" => format!(
            "pooled thin fraction {:.1}% (< {} µm)",
            100.0 * f,
            settings.thin_um
        ),
        _ => "no thin fraction (no scale)".to_string(),
    };
    let unit = &summary.unit;
    let mean = summary
        .pooled
        .mean
        .map(|m| format!(", mean width {m:.2} {unit}"))
        .unwrap_or_default();
    let pooled_over = if summary.unit == "um" && summary.images_without_scale > 0 {
        format!(
            " (pooled over the {} image(s) with a scale; {} without are in px only)",
            summary.pooled_images, summary.images_without_scale
        )
    } else {
        String::new()
    };
    let groups = if summary.groups.is_some() {
        ", groups.csv"
    } else {
        ""
    };
    let reused = if summary.images_reused > 0 {
        format!(" ({} reused from the earlier run)", summary.images_reused)
    } else {
        String::new()
    };
    eprintln!(
        "Analysed {} image(s){reused}: {} ok, {} failed; {} hairs measured{mean}; {thin}{pooled_over}. \
         Reports in {}/ (images.csv, hairs.csv{groups}, images/, summary.json{pictures}).",
        summary.images,
        summary.images_ok,
        summary.images_failed,
        summary.hairs,
        out.display()
    );
    eprintln!("{DISCLAIMER}");
}

fn merge(args: MergeArgs) -> Result<ExitCode> {
    let summary = trichometer::merge::merge(&args.shards, &args.out)?;
    if !args.quiet {
        print_summary(&summary, &summary.settings, &args.out, "");
    }
    Ok(if summary.images_failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let opts = trichometer::validate::ValidateOptions {
        min_length_px: args.min_length_px,
        thin_um: args.thin_um,
        terminal_um: args.terminal_um,
    };
    let v = trichometer::validate::validate(&args.truth, &args.report, &opts)?;
    print!("{}", v.to_text());
    if let Some(path) = &args.json {
        output::write_atomic(path, &serde_json::to_vec_pretty(&v)?)?;
    }
    if let Some(path) = &args.hairs {
        v.write_hairs_csv(path)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn synth(args: SynthArgs) -> Result<ExitCode> {
    let opts = trichometer::synth::PhantomOptions {
        width: args.size.0,
        height: args.size.1,
        um_per_px: args.um_per_px,
        difficulty: args.difficulty,
        jpeg_quality: if args.png { None } else { Some(90) },
        curly_share: args.curly,
        highlights: !args.no_highlights,
    };
    let paths = trichometer::synth::write_suite(&args.out, args.n, args.seed, &opts)?;
    // A manifest with each phantom's scale, for `analyze --manifest`.
    let mut manifest = csv::Writer::from_writer(Vec::new());
    manifest.write_record(["image", "um_per_px"])?;
    for p in &paths {
        let truth_path = p.with_extension("truth.json");
        let t: trichometer::truth::TruthImage =
            serde_json::from_slice(&std::fs::read(&truth_path)?)?;
        manifest.write_record([t.image.clone(), t.um_per_px.to_string()])?;
    }
    output::write_atomic(&args.out.join("manifest.csv"), &manifest.into_inner()?)?;
    eprintln!(
        "Wrote {} {} phantom(s) with ground truth (*.truth.json) and manifest.csv (scales) to {}/",
        paths.len(),
        args.difficulty,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
