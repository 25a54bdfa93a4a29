//! Runs a batch with pictures through the library, as the binary does:
//! `cargo run --release --example report -- OUT_DIR UM_PER_PX|none INPUT...`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use trichometer::{batch, output::ReportWriter, pictures::PictureWriter, Settings};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(&args[0]);
    let settings = Settings {
        um_per_px: args[1].parse().ok(),
        ..Settings::default()
    };
    let inputs = batch::discover(&args[2..].iter().map(PathBuf::from).collect::<Vec<_>>());
    let mut reports = ReportWriter::create(&out, &settings)?;
    let mut pictures = PictureWriter::create(&out, &settings)?;
    let stop = AtomicBool::new(false);
    let mut err = None;
    batch::run(
        &inputs,
        2,
        &stop,
        |input| {
            batch::analyze_file_with_pictures(input, &settings, "flag", 100_000_000, None, true)
        },
        |i, (report, pics)| {
            if let Err(e) = reports
                .add(&inputs[i], &report)
                .and_then(|_| pictures.add(&inputs[i], &report, pics.as_ref()))
            {
                err.get_or_insert(e);
            }
        },
    );
    if let Some(e) = err {
        return Err(e);
    }
    let summary = reports.finish(0)?;
    eprintln!("{}", pictures.finish(&summary)?.display());
    Ok(())
}
