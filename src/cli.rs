//! Command-line definitions (clap). Only the binary uses this module's types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "trichometer",
    version,
    about = "Measures hair-shaft widths in trichoscopy images and reports the width distribution, \
             cv and thin-hair fraction. For research and educational purposes only; not a medical device.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse images and folders of images; write a report folder.
    #[command(after_help = ANALYZE_EXAMPLES)]
    Analyze(AnalyzeArgs),
    /// Render synthetic trichoscopy phantoms with exact ground truth (*.truth.json).
    Synth(SynthArgs),
    /// Combine the report folders of `analyze --shard K/N` runs into one, identical to a
    /// single run on all the inputs.
    #[command(after_help = MERGE_EXAMPLES)]
    Merge(MergeArgs),
    /// Score a report folder against ground truth (phantom truth folder or manual CSV).
    Validate(ValidateArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

pub const ANALYZE_EXAMPLES: &str = "Examples:
  trichometer analyze samples --um-per-px 4 --out report
  trichometer analyze visit1/ visit2/img_0003.jpg --um-per-px 3.2 --jobs 4
  trichometer analyze scans --thin-um 40 --quiet          (widths in px only: no scale given)
  trichometer analyze study/ --manifest study/manifest.csv   (per-image scales, subject/region groups)
  trichometer analyze samples --format jsonl --quiet | jq .mean_um

Scale precedence per image: --um-per-px > manifest um_per_px > nearest trichometer.toml
(`um_per_px = 4.2`) in the image's folder or a parent up to the INPUT folder > none (pixels).";

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Image files or folders (walked recursively for jpg, jpeg, png, tif, tiff, bmp, webp).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output folder for the reports (created if missing).
    #[arg(long, default_value = "trichometer-report", value_name = "DIR")]
    pub out: PathBuf,
    /// Scale in micrometres per pixel for every image; beats --manifest and trichometer.toml.
    /// Without any scale widths are reported in pixels only.
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    pub um_per_px: Option<f64>,
    /// CSV with columns image, um_per_px and optional subject, region, visit: per-image
    /// scales and tags (see README: Calibration).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// What to print on stdout: nothing (`table`: the summary goes to stderr) or one JSON
    /// object per image as each finishes (`jsonl`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Hairs narrower than this (µm) are `thin`.
    #[arg(long, default_value_t = trichometer::settings::DEFAULT_THIN_UM, value_name = "UM", value_parser = positive_f64)]
    pub thin_um: f64,
    /// Hairs at least this wide (µm) are `terminal`.
    #[arg(long, default_value_t = trichometer::settings::DEFAULT_TERMINAL_UM, value_name = "UM", value_parser = positive_f64)]
    pub terminal_um: f64,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
    /// Also draw overlay images of what was measured (overlays/<path>.png).
    #[arg(long)]
    pub overlay: bool,
    /// Reuse the per-image reports of an earlier run into the same --out when the image
    /// file, settings and tool version are unchanged; analyse the rest.
    #[arg(long)]
    pub resume: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Largest image accepted, in megapixels (protects memory on huge files).
    #[arg(long, default_value_t = 100.0, value_name = "MP", value_parser = positive_f64)]
    pub max_megapixels: f64,
    /// Shortest centreline reported as a hair (px).
    #[arg(long, default_value_t = trichometer::settings::DEFAULT_MIN_LENGTH_PX, value_name = "PX")]
    pub min_length_px: f64,
    /// Analyse only part K of N (1-based) of the inputs: of the inputs sorted by path, those
    /// at positions i with i % N == K-1. Combine the N report folders with `merge`.
    #[arg(long, value_name = "K/N", value_parser = trichometer::batch::Shard::parse)]
    pub shard: Option<trichometer::batch::Shard>,
}

pub const MERGE_EXAMPLES: &str = "Examples:
  for k in 1 2 3; do trichometer analyze scans --um-per-px 4 --shard $k/3 --out part$k; done
  trichometer merge --out report part1 part2 part3

Refused (exit 2): folders with different settings or tool versions, an image in two
folders, an interrupted shard, or a split with a shard missing or given twice.";

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Report folders written by `analyze` (usually with --shard K/N, all N of them).
    #[arg(required = true, value_name = "SHARD_DIR")]
    pub shards: Vec<PathBuf>,
    /// Output folder for the merged reports (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Jsonl,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be a positive number"))
    }
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Truth: a folder of *.truth.json (from `synth`), one .truth.json, or a CSV of manual
    /// measurements (columns image, x, y, width_um and/or width_px, optional um_per_px).
    #[arg(long, value_name = "TRUTH")]
    pub truth: PathBuf,
    /// Report folder written by `analyze --out`.
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// Also write the full scores as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write one CSV row per truth hair (phantoms) or per measurement (manual) with
    /// the report hairs matched to it, their width and the error, to this file.
    #[arg(long, value_name = "FILE")]
    pub hairs: Option<PathBuf>,
    /// Truth hairs shorter than this (px) do not count for recall.
    #[arg(long, default_value_t = 40.0, value_name = "PX")]
    pub min_length_px: f64,
    /// Thin-hair limit (µm).
    #[arg(long, default_value_t = trichometer::settings::DEFAULT_THIN_UM, value_name = "UM", value_parser = positive_f64)]
    pub thin_um: f64,
    /// Terminal-hair limit (µm).
    #[arg(long, default_value_t = trichometer::settings::DEFAULT_TERMINAL_UM, value_name = "UM", value_parser = positive_f64)]
    pub terminal_um: f64,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Folder to write the phantoms and their truth into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub n: usize,
    /// Seed of the suite (image i uses a seed derived from it).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Scale for every image (default: drawn per image in 2.5–8 µm/px).
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    pub um_per_px: Option<f64>,
    /// How hard the images are: easy, realistic or hard.
    #[arg(long, default_value = "realistic")]
    pub difficulty: trichometer::synth::Difficulty,
    /// Image size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x960", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Write lossless PNG instead of JPEG.
    #[arg(long)]
    pub png: bool,
    /// Share of hairs that curl (0–1; radius 0.3–2.5 mm). 0 gives the same images as
    /// without the option.
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = share)]
    pub curly: f64,
    /// Draw no specular highlight stripes on the hairs (the same hairs and truth
    /// otherwise): to measure what the highlights cost.
    #[arg(long)]
    pub no_highlights: bool,
}

fn share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}`: expected a share from 0 to 1")),
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}`: expected WIDTHxHEIGHT"))?;
    let w: u32 = w.trim().parse().map_err(|_| format!("`{s}`: bad width"))?;
    let h: u32 = h.trim().parse().map_err(|_| format!("`{s}`: bad height"))?;
    if (16..=10000).contains(&w) && (16..=10000).contains(&h) {
        Ok((w, h))
    } else {
        Err(format!("`{s}`: sides must be 16..=10000 px"))
    }
}
