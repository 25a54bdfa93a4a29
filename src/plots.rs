//! Width histograms as SVG, drawn with plotters: bars coloured by class (the overlay's
//! palette), the thin and terminal limits as dashed vertical lines. In µm when a scale is
//! known, in px otherwise (no limits then: classes need micrometres).

use plotters::prelude::*;

use crate::overlay::{class_color, COLOR_UNCLASSIFIED};
use crate::settings::HairClass;
use crate::stats::Histogram;

/// Size of a histogram SVG (px).
pub const HISTOGRAM_SIZE: (u32, u32) = (560, 300);

fn rgb(c: image::Rgb<u8>) -> RGBColor {
    RGBColor(c.0[0], c.0[1], c.0[2])
}

/// The histogram `hist` as an SVG document. `limits_um` = (thin, terminal) µm marks the
/// class limits and colours the bars by class; pass it only when `hist.unit` is `um`.
/// `title` is escaped by the SVG writer.
pub fn histogram_svg(hist: &Histogram, limits_um: Option<(f64, f64)>, title: &str) -> String {
    let mut svg = String::new();
    // Drawing into a String cannot fail for I/O reasons; a plotting error (which would be
    // a bug here) leaves a placeholder instead of stopping the report.
    if let Err(e) = draw(&mut svg, hist, limits_um, title) {
        svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\"><text x=\"10\" \
             y=\"20\">histogram unavailable: {}</text></svg>",
            HISTOGRAM_SIZE.0,
            HISTOGRAM_SIZE.1,
            crate::html::escape(&e.to_string())
        );
    }
    svg
}

fn draw(
    svg: &mut String,
    hist: &Histogram,
    limits_um: Option<(f64, f64)>,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let limits = limits_um.filter(|_| hist.unit == "um");
    let unit = if hist.unit == "um" { "µm" } else { "px" };
    let bw = hist.bin_width;
    let mut xmax = hist.bin_start.last().map(|s| s + bw).unwrap_or(bw);
    if let Some((_, terminal)) = limits {
        xmax = xmax.max(terminal + bw);
    }
    let total: usize = hist.counts.iter().sum();
    let ymax = hist.counts.iter().copied().max().unwrap_or(0).max(1) as u32;
    let ytop = ymax + (ymax / 8).max(1);
    {
        let root = SVGBackend::with_string(svg, HISTOGRAM_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..xmax, 0u32..ytop)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .x_desc(format!("hair width ({unit}), {total} hairs"))
            .y_desc("hairs")
            .axis_desc_style(("sans-serif", 13))
            .label_style(("sans-serif", 12))
            .draw()?;
        chart.draw_series(
            hist.bin_start
                .iter()
                .zip(&hist.counts)
                .filter(|(_, &c)| c > 0)
                .map(|(&x0, &c)| {
                    let color = match limits {
                        Some((thin, terminal)) => {
                            class_color(Some(HairClass::of_width_um(x0 + bw / 2.0, thin, terminal)))
                        }
                        None => COLOR_UNCLASSIFIED,
                    };
                    Rectangle::new(
                        [(x0 + bw * 0.04, 0), (x0 + bw * 0.96, c as u32)],
                        rgb(color).filled(),
                    )
                }),
        )?;
        if let Some((thin, terminal)) = limits {
            for (x, name) in [(thin, "thin"), (terminal, "terminal")] {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(x, 0u32), (x, ytop)],
                        6,
                        4,
                        BLACK.stroke_width(2),
                    ))?
                    .label(format!("{name} limit {x} µm"))
                    .legend(move |(lx, ly)| {
                        PathElement::new([(lx, ly), (lx + 16, ly)], BLACK.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 12))
                .draw()?;
        }
        root.present()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_bars_limits_and_escaped_title() {
        let h = Histogram::of(&[12.0, 22.0, 41.0, 44.0, 75.0], 5.0, 120.0, "um");
        let svg = histogram_svg(&h, Some((30.0, 60.0)), "<b>a&b</b>");
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert!(svg.contains("thin limit 30 µm") && svg.contains("terminal limit 60 µm"));
        assert!(svg.contains("&lt;b&gt;a&amp;b&lt;/b&gt;"));
        assert!(!svg.contains("<b>"));
        // Bars in the three class colours.
        for c in ["#D55E00", "#F0E442", "#56B4E9"] {
            assert!(svg.to_uppercase().contains(c), "{c}");
        }
    }

    #[test]
    fn px_histogram_has_no_limits() {
        let h = Histogram::of(&[3.0, 4.5], 1.0, 10.0, "px");
        let svg = histogram_svg(&h, Some((30.0, 60.0)), "x");
        assert!(!svg.contains("limit"));
        assert!(svg.contains("hair width (px)"));
    }

    #[test]
    fn empty_histogram_draws() {
        let h = Histogram::of(&[], 5.0, 120.0, "um");
        assert!(histogram_svg(&h, Some((30.0, 60.0)), "none").contains("0 hairs"));
    }
}
