//! The pictures of a batch: overlay PNGs, width histograms (SVG) and `report.html`.
//!
//! Drawing needs the decoded photo, which only exists inside the worker that analysed it,
//! so the work is split in two:
//! - [`render_pictures`] runs in the worker, right after the analysis: it draws the overlay
//!   and returns it encoded (the full PNG only when asked for) plus a small JPEG thumbnail;
//! - [`PictureWriter`] runs on the main thread, in path order: it writes
//!   `overlays/<report_rel>.png` and `histograms/<report_rel>.svg`, and streams the image's
//!   HTML section to a temporary file. [`PictureWriter::finish`] writes
//!   `histograms/pooled.svg` and assembles `report.html`.
//!
//! Memory stays bounded for any batch size: full-size overlays live only in their worker;
//! the writer keeps one summary-table row (a few hundred bytes) per image.

use std::io::{BufWriter, Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::{codecs::jpeg::JpegEncoder, DynamicImage, ImageFormat, RgbImage};
use tempfile::NamedTempFile;

use crate::batch::Input;
use crate::html;
use crate::output::{write_atomic, BatchSummary};
use crate::overlay::draw_overlay;
use crate::plots::histogram_svg;
use crate::report::ImageReport;
use crate::settings::Settings;

/// Width of the overlay thumbnails in `report.html` (px): readable ids on a laptop screen
/// while a page of a hundred images stays a few MB.
pub const THUMBNAIL_WIDTH: u32 = 640;
/// JPEG quality of the thumbnails (photos compress ~10× better than PNG at no visible loss).
pub const THUMBNAIL_JPEG_QUALITY: u8 = 85;

/// The encoded pictures of one analysed image.
#[derive(Debug, Clone, Default)]
pub struct Pictures {
    /// The full-size overlay as PNG, when asked for (`--overlay`).
    pub overlay_png: Option<Vec<u8>>,
    /// The overlay drawn on the photo scaled to [`THUMBNAIL_WIDTH`] px wide (never
    /// enlarged), as JPEG.
    pub thumbnail_jpeg: Vec<u8>,
}

/// Draws the overlay of `report` on `image` and encodes it: the full-size PNG only when
/// `full_overlay`, the thumbnail always. Meant to run in the worker that holds the image.
pub fn render_pictures(
    image: &DynamicImage,
    report: &ImageReport,
    full_overlay: bool,
) -> Result<Pictures> {
    let overlay_png = if full_overlay {
        let mut png = Vec::new();
        draw_overlay(image, report)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .context("cannot encode the overlay PNG")?;
        Some(png)
    } else {
        None
    };
    let thumb = thumbnail(image, report);
    let mut thumbnail_jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut thumbnail_jpeg, THUMBNAIL_JPEG_QUALITY)
        .encode_image(&thumb)
        .context("cannot encode the overlay thumbnail")?;
    Ok(Pictures {
        overlay_png,
        thumbnail_jpeg,
    })
}

/// The overlay at thumbnail size, drawn anew on the scaled-down photo (not a scaled-down
/// overlay, in which the lines would blur into the photo and the ids become unreadable).
fn thumbnail(image: &DynamicImage, report: &ImageReport) -> RgbImage {
    let (w, h) = (image.width(), image.height());
    if w <= THUMBNAIL_WIDTH {
        return draw_overlay(image, report);
    }
    let f = THUMBNAIL_WIDTH as f64 / w as f64;
    let th = ((h as f64 * f).round() as u32).max(1);
    let small = image.resize_exact(THUMBNAIL_WIDTH, th, image::imageops::FilterType::Triangle);
    draw_overlay(&small, &scaled_report(report, f))
}

/// `report` with every pixel measure multiplied by `f` (and the scale divided by it), for
/// drawing on the photo resized by `f`. Classes and µm figures are unchanged.
fn scaled_report(report: &ImageReport, f: f64) -> ImageReport {
    let mut r = report.clone();
    r.settings.um_per_px = r.settings.um_per_px.map(|u| u / f);
    for h in &mut r.hairs {
        h.row.width_px *= f;
        for p in &mut h.points {
            p[0] *= f;
            p[1] *= f;
        }
    }
    r
}

/// Writes overlays, histograms and `report.html` into the output folder.
pub struct PictureWriter {
    out: PathBuf,
    settings: Settings,
    /// Images added so far.
    count: usize,
    rows: BufWriter<NamedTempFile>,
    sections: BufWriter<NamedTempFile>,
}

impl PictureWriter {
    /// Starts the pictures of a batch in `out` (created if missing).
    pub fn create(out: &Path, settings: &Settings) -> Result<PictureWriter> {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
        let tmp = || {
            NamedTempFile::with_prefix_in(".report.html.", out)
                .with_context(|| format!("output folder {} is not writable", out.display()))
        };
        Ok(PictureWriter {
            out: out.to_path_buf(),
            settings: settings.clone(),
            count: 0,
            rows: BufWriter::new(tmp()?),
            sections: BufWriter::new(tmp()?),
        })
    }

    /// Path of an input's overlay: `overlays/<report_rel>.png`.
    pub fn overlay_path(&self, input: &Input) -> PathBuf {
        self.out
            .join("overlays")
            .join(format!("{}.png", input.report_rel))
    }

    /// Path of an input's histogram: `histograms/<report_rel>.svg`.
    pub fn histogram_path(&self, input: &Input) -> PathBuf {
        self.out
            .join("histograms")
            .join(format!("{}.svg", input.report_rel))
    }

    /// Adds one image, in batch order: writes its overlay PNG (when `pictures` has one) and
    /// its histogram, and its row and section of `report.html`. `pictures` is `None` for a
    /// failed image (or when drawing failed: the section then has no thumbnail).
    pub fn add(
        &mut self,
        input: &Input,
        report: &ImageReport,
        pictures: Option<&Pictures>,
    ) -> Result<()> {
        self.count += 1;
        let index = self.count;
        self.rows
            .write_all(html::summary_row(index, report).as_bytes())
            .context("cannot write the report's temporary file")?;
        let mut overlay_href = None;
        if let Some(png) = pictures.and_then(|p| p.overlay_png.as_deref()) {
            write_atomic(&self.overlay_path(input), png)?;
            overlay_href = Some(html::url_path(&format!(
                "overlays/{}.png",
                input.report_rel
            )));
        }
        let svg = match (&report.histogram, report.row.status == "ok") {
            (Some(h), true) => {
                let limits = Some((report.settings.thin_um, report.settings.terminal_um));
                let svg = histogram_svg(h, limits, &report.row.image);
                write_atomic(&self.histogram_path(input), svg.as_bytes())?;
                Some(svg)
            }
            _ => None,
        };
        let section = html::image_section(
            index,
            report,
            pictures.map(|p| p.thumbnail_jpeg.as_slice()),
            overlay_href.as_deref(),
            svg.as_deref(),
        );
        self.sections
            .write_all(section.as_bytes())
            .context("cannot write the report's temporary file")?;
        Ok(())
    }

    /// Convenience for callers that hold the decoded image on this thread: renders the
    /// pictures here, then [`add`](Self::add)s them.
    pub fn add_image(
        &mut self,
        input: &Input,
        image: Option<&DynamicImage>,
        report: &ImageReport,
        full_overlay: bool,
    ) -> Result<()> {
        let pics = match image {
            Some(img) if report.row.status == "ok" => {
                Some(render_pictures(img, report, full_overlay)?)
            }
            _ => None,
        };
        self.add(input, report, pics.as_ref())
    }

    /// Writes `histograms/pooled.svg` and `report.html`; returns the page's path.
    pub fn finish(self, summary: &BatchSummary) -> Result<PathBuf> {
        let limits = Some((self.settings.thin_um, self.settings.terminal_um));
        let pooled = histogram_svg(&summary.histogram, limits, "all images pooled");
        write_atomic(
            &self.out.join("histograms").join("pooled.svg"),
            pooled.as_bytes(),
        )?;
        let rewound = |w: BufWriter<NamedTempFile>| -> Result<NamedTempFile> {
            let mut f = w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("cannot write the report's temporary file: {e}"))?;
            f.seek(SeekFrom::Start(0))?;
            Ok(f)
        };
        let mut rows = rewound(self.rows)?;
        let mut sections = rewound(self.sections)?;
        let path = self.out.join("report.html");
        let page = NamedTempFile::with_prefix_in(".report.html.", &self.out)
            .with_context(|| format!("cannot write in {}", self.out.display()))?;
        let mut w = BufWriter::new(page);
        html::write_page(
            &mut w,
            summary,
            &pooled,
            rows.as_file_mut(),
            sections.as_file_mut(),
        )
        .context("cannot write report.html")?;
        let page = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write report.html: {e}"))?;
        page.persist(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}
