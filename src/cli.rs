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
  trichometer analyze scans --thin-um 40 --quiet          (widths in px only: no scale given)";

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Image files or folders (walked recursively for jpg, jpeg, png, tif, tiff, bmp, webp).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output folder for the reports (created if missing).
    #[arg(long, default_value = "trichometer-report", value_name = "DIR")]
    pub out: PathBuf,
    /// Scale in micrometres per pixel. Without it widths are reported in pixels only.
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    pub um_per_px: Option<f64>,
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
