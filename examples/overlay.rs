//! Draws the overlay of one image: `cargo run --release --example overlay -- IMAGE OUT.png
//! [UM_PER_PX]`. For looking at what the detector measured while tuning it.

use trichometer::{overlay::draw_overlay, report::ImageReport, Settings};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, out) = (&args[0], &args[1]);
    let settings = Settings {
        um_per_px: args.get(2).map(|s| s.parse()).transpose()?,
        ..Settings::default()
    };
    let img = image::open(input)?;
    let analysis = trichometer::analyze(&img, &settings)?;
    let scale_source = if settings.um_per_px.is_some() {
        "flag"
    } else {
        "none"
    };
    let report = ImageReport::from_analysis(input, &analysis, &settings, scale_source, "");
    let t = std::time::Instant::now();
    let ov = draw_overlay(&img, &report);
    ov.save(out)?;
    // OVERLAY_CROP=x,y,w,h also writes that region of the overlay and of the photo.
    if let Ok(c) = std::env::var("OVERLAY_CROP") {
        let v: Vec<u32> = c.split(',').map(|s| s.parse()).collect::<Result<_, _>>()?;
        let crop =
            |i: &image::RgbImage| image::imageops::crop_imm(i, v[0], v[1], v[2], v[3]).to_image();
        crop(&ov).save(format!("{out}.crop.png"))?;
        crop(&img.to_rgb8()).save(format!("{out}.photo.png"))?;
    }
    eprintln!(
        "{input}: {} hairs, {} flagged, overlay in {:?}",
        report.hairs.len(),
        report.row.flagged_count.unwrap_or(0),
        t.elapsed()
    );
    Ok(())
}
