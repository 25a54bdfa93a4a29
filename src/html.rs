//! `report.html`: one self-contained page for a batch. No network: styles and the sorting
//! script are inline, thumbnails are `data:` URIs, histograms inline SVG, and a Content
//! Security Policy forbids every fetch and every script but the page's own (pinned by its
//! hash), so even a mis-escaped name could not load or run anything. Every text that comes
//! from the user (file names, error messages, warnings) goes through [`escape`].
//!
//! The page is assembled by [`crate::pictures::PictureWriter`]: summary-table rows and
//! per-image sections are streamed to two temporary files as images finish (nothing per
//! image stays in memory), and [`write_page`] joins them at the end.

use std::io::{self, Read, Write};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::output::BatchSummary;
use crate::report::{ImageReport, DISCLAIMER};
use crate::settings::Settings;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a `/`-separated relative path for use in an `href` (every byte but
/// unreserved characters and `/`), so names with `?`, `#`, `%`, `:` or spaces stay a
/// relative file link.
pub fn url_path(rel: &str) -> String {
    let mut out = String::new();
    for b in rel.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    // A first segment with a colon could read as a scheme; `./` keeps it relative.
    format!("./{out}")
}

/// An SVG document ready to inline in HTML: the XML prolog and the namespace attribute
/// (which HTML does not need, and which would put an `http://` string in the page) removed.
pub fn inline_svg(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..]
        .replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replace("http://", "")
        .replace("https://", "")
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_default()
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", 100.0 * x)).unwrap_or_default()
}

/// A table cell with a sort value (`data-v`, empty for missing) and display text.
fn cell(v: Option<f64>, text: &str) -> String {
    format!(
        "<td class=\"n\" data-v=\"{}\">{}</td>",
        v.map(|x| x.to_string()).unwrap_or_default(),
        escape(text)
    )
}

/// The row of one image in the summary table; `index` links to its section.
pub fn summary_row(index: usize, report: &ImageReport) -> String {
    let r = &report.row;
    let scaled = r.um_per_px.is_some();
    let (mean, median, sd) = if scaled {
        (r.mean_um, r.median_um, r.sd_um)
    } else {
        (r.mean_px, r.median_px, r.sd_px)
    };
    let unit = if scaled { "µm" } else { "px" };
    let with_unit = |v: Option<f64>| v.map(|x| format!("{x:.1} {unit}")).unwrap_or_default();
    let status = if r.status == "ok" {
        "<td class=\"ok\">ok</td>".to_string()
    } else {
        format!(
            "<td class=\"err\" title=\"{}\">error</td>",
            escape(&r.error)
        )
    };
    format!(
        "<tr class=\"row\"><td data-v=\"{index}\">{index}</td><td class=\"name\"><a href=\"#img-{index}\">{}</a></td>{status}{}{}{}{}{}{}{}{}{}</tr>\n",
        escape(&r.image),
        cell(r.hair_count.map(|c| c as f64), &r.hair_count.map(|c| c.to_string()).unwrap_or_default()),
        cell(r.flagged_count.map(|c| c as f64), &r.flagged_count.map(|c| c.to_string()).unwrap_or_default()),
        cell(mean, &with_unit(mean)),
        cell(median, &with_unit(median)),
        cell(sd, &with_unit(sd)),
        cell(r.cv, &num(r.cv, 3)),
        cell(r.thin_fraction, &pct(r.thin_fraction)),
        cell(r.intermediate_fraction, &pct(r.intermediate_fraction)),
        cell(r.terminal_fraction, &pct(r.terminal_fraction)),
    )
}

/// Headers of the summary table, matching [`summary_row`].
const SUMMARY_HEADERS: [&str; 12] = [
    "#",
    "image",
    "status",
    "hairs",
    "flagged",
    "mean",
    "median",
    "sd",
    "cv",
    "thin fraction",
    "intermediate",
    "terminal",
];

/// The section of one image: its figures, the overlay thumbnail (JPEG bytes; linked to the
/// full overlay when `overlay_href` is given) and its histogram (inline SVG).
pub fn image_section(
    index: usize,
    report: &ImageReport,
    thumbnail_jpeg: Option<&[u8]>,
    overlay_href: Option<&str>,
    histogram_svg: Option<&str>,
) -> String {
    let r = &report.row;
    let mut s = format!(
        "<section class=\"image\" id=\"img-{index}\">\n<h3>{index}. {}</h3>\n",
        escape(&r.image)
    );
    if r.status != "ok" {
        s.push_str(&format!(
            "<p class=\"err\">Not analysed: {}</p>\n</section>\n",
            escape(&r.error)
        ));
        return s;
    }
    s.push_str("<div class=\"pics\">");
    if let Some(jpeg) = thumbnail_jpeg {
        let img = format!(
            "<img class=\"thumb\" alt=\"overlay of {}\" src=\"data:image/jpeg;base64,{}\">",
            escape(&r.image),
            base64::engine::general_purpose::STANDARD.encode(jpeg)
        );
        match overlay_href {
            Some(h) => s.push_str(&format!(
                "<a href=\"{}\" title=\"full-size overlay\">{img}</a>",
                escape(h)
            )),
            None => s.push_str(&img),
        }
    }
    if let Some(svg) = histogram_svg {
        s.push_str(&format!("<div class=\"hist\">{}</div>", inline_svg(svg)));
    }
    s.push_str("</div>\n<table class=\"figs\">");
    let mut fig = |k: &str, v: String| {
        if !v.is_empty() {
            s.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(&v)
            ));
        }
    };
    fig(
        "image size",
        format!(
            "{} × {} px",
            r.width_px.unwrap_or(0),
            r.height_px.unwrap_or(0)
        ),
    );
    fig(
        "scale",
        match r.um_per_px {
            Some(u) => format!("{u} µm/px ({})", r.scale_source),
            None => "none: widths in px, no classes".into(),
        },
    );
    fig(
        "hairs measured",
        format!(
            "{} ({} with uncertain width)",
            r.hair_count.unwrap_or(0),
            r.flagged_count.unwrap_or(0)
        ),
    );
    if r.um_per_px.is_some() {
        fig(
            "mean / median / sd",
            format!(
                "{} / {} / {} µm",
                num(r.mean_um, 1),
                num(r.median_um, 1),
                num(r.sd_um, 1)
            ),
        );
    }
    fig(
        "mean / median / sd (px)",
        format!(
            "{} / {} / {} px",
            num(r.mean_px, 2),
            num(r.median_px, 2),
            num(r.sd_px, 2)
        ),
    );
    fig("cv (sd / mean; not a clinical standard)", num(r.cv, 3));
    if r.um_per_px.is_some() {
        let s = &report.settings;
        fig(
            &format!("thin fraction (< {} µm)", s.thin_um),
            format!(
                "{} ({} hairs)",
                pct(r.thin_fraction),
                r.thin_count.unwrap_or(0)
            ),
        );
        fig(
            "intermediate / terminal",
            format!(
                "{} / {}",
                pct(r.intermediate_fraction),
                pct(r.terminal_fraction)
            ),
        );
    }
    fig("blur σ (px)", num(r.blur_sigma_px, 2));
    fig("faint limit (contrast)", pct(r.faint_limit));
    s.push_str("</table>\n");
    if !report.warnings.is_empty() {
        s.push_str("<ul class=\"warn\">");
        for w in &report.warnings {
            s.push_str(&format!("<li>{}</li>", escape(w)));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</section>\n");
    s
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}\
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}\
h3{font-size:1.05em;margin:0 0 .4em;word-break:break-all}\
.disclaimer{background:#fff4e0;border:1px solid #e0a040;padding:.6em 1em}\
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #e4e4e4;text-align:left}\
td.name{word-break:break-all;min-width:10em}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
table.sortable th{cursor:pointer;background:#f2f2f2;user-select:none;position:sticky;top:0}\
table.sortable th[data-dir=asc]::after{content:' \\25B2'}table.sortable th[data-dir=desc]::after{content:' \\25BC'}\
.err{color:#a00}.ok{color:#060}\
section.image{border:1px solid #ddd;padding:.8em;margin:1em 0;break-inside:avoid}\
.pics{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}\
img.thumb{max-width:640px;width:100%;height:auto;border:1px solid #999}\
table.figs th{font-weight:normal;color:#555}ul.warn{color:#8a5a00}";

/// Sorts the summary table by the clicked header: numbers by `data-v` (missing last),
/// text otherwise; a second click reverses.
const SCRIPT: &str = "document.querySelectorAll('table.sortable').forEach(function(t){\
var hs=t.tHead.rows[0].cells;Array.prototype.forEach.call(hs,function(th,i){\
th.addEventListener('click',function(){var asc=th.dataset.dir!=='asc';\
Array.prototype.forEach.call(hs,function(h){delete h.dataset.dir;});th.dataset.dir=asc?'asc':'desc';\
var key=function(r){var c=r.cells[i];var v=c.dataset.v;\
if(v===undefined){return c.textContent.toLowerCase();}return v===''?null:parseFloat(v);};\
var b=t.tBodies[0];var rows=Array.prototype.slice.call(b.rows);\
rows.sort(function(x,y){var p=key(x),q=key(y);if(p===null&&q===null)return 0;if(p===null)return 1;\
if(q===null)return -1;return (p<q?-1:p>q?1:0)*(asc?1:-1);});\
rows.forEach(function(r){b.appendChild(r);});});});});";

fn settings_table(s: &Settings, tool: &str) -> String {
    let mut t = String::from("<table class=\"figs\">");
    let mut row = |k: &str, v: String| {
        t.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        ));
    };
    row(
        "scale",
        s.um_per_px
            .map(|u| format!("{u} µm/px"))
            .unwrap_or_else(|| "none (widths in px, no classes, no thin fraction)".into()),
    );
    row("thin limit", format!("< {} µm", s.thin_um));
    row("terminal limit", format!("≥ {} µm", s.terminal_um));
    row("shortest hair kept", format!("{} px", s.min_length_px));
    row("widest hair searched", format!("{} px", s.max_width_px));
    row("tool", tool.to_string());
    t.push_str("</table>");
    t
}

/// Writes the whole page to `out`: header, disclaimer, settings, pooled figures and
/// histogram, the sortable summary table (`rows`: [`summary_row`]s one after another),
/// failed images, then the per-image sections copied from `sections`.
pub fn write_page(
    out: &mut impl Write,
    summary: &BatchSummary,
    pooled_svg: &str,
    rows: &mut impl Read,
    sections: &mut impl Read,
) -> io::Result<()> {
    let script_hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT));
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; \
         style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>trichometer report</title>\n<style>{STYLE}</style></head>\n<body>\n\
         <h1>trichometer report</h1>\n<p class=\"disclaimer\"><strong>{}</strong></p>\n",
        escape(DISCLAIMER)
    )?;
    let unit = if summary.unit == "um" { "µm" } else { "px" };
    let p = &summary.pooled;
    writeln!(
        out,
        "<p>{} image(s): {} analysed, {} failed{}; {} hairs measured.</p>",
        summary.images,
        summary.images_ok,
        summary.images_failed,
        if summary.images_not_run > 0 {
            format!(", {} not run (interrupted)", summary.images_not_run)
        } else {
            String::new()
        },
        summary.hairs
    )?;
    writeln!(
        out,
        "<h2>Settings</h2>{}",
        settings_table(&summary.settings, &summary.tool)
    )?;
    write!(
        out,
        "<h2>All images pooled</h2><div class=\"pics\"><table class=\"figs\">"
    )?;
    let mut fig = |k: &str, v: String| -> io::Result<()> {
        write!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        )
    };
    fig("hairs", p.count.to_string())?;
    fig(
        "mean / median / sd",
        format!(
            "{} / {} / {} {unit}",
            num(p.mean, 2),
            num(p.median, 2),
            num(p.sd, 2)
        ),
    )?;
    fig("cv (sd / mean; not a clinical standard)", num(p.cv, 3))?;
    if summary.unit == "um" {
        fig(
            &format!("thin fraction (< {} µm)", summary.settings.thin_um),
            format!(
                "{} ({} hairs)",
                pct(p.thin_fraction),
                p.thin_count.unwrap_or(0)
            ),
        )?;
        fig(
            "intermediate / terminal",
            format!(
                "{} / {}",
                pct(p.intermediate_fraction),
                pct(p.terminal_fraction)
            ),
        )?;
    }
    writeln!(
        out,
        "</table><div class=\"hist\">{}</div></div>",
        inline_svg(pooled_svg)
    )?;
    write!(
        out,
        "<h2>Images</h2><p>Click a header to sort. Widths in {unit}; thin fraction = share of \
         hairs below the thin limit; cv = sd / mean of the per-hair widths (a spread figure, \
         not a clinical standard).</p>\n<table class=\"sortable\" id=\"summary\"><thead><tr>"
    )?;
    for h in SUMMARY_HEADERS {
        write!(out, "<th>{h}</th>")?;
    }
    writeln!(out, "</tr></thead><tbody>")?;
    io::copy(rows, out)?;
    writeln!(out, "</tbody></table>")?;
    if !summary.failed.is_empty() {
        write!(out, "<h2>Failed images</h2><ul class=\"err\">")?;
        for f in &summary.failed {
            write!(
                out,
                "<li><strong>{}</strong>: {}</li>",
                escape(&f.image),
                escape(&f.error)
            )?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(
        out,
        "<h2>Per image</h2><p>Overlays: centrelines coloured by class (vermillion thin, \
         yellow intermediate, sky blue terminal; purple without a scale), dashed with an id \
         ending in ? where the width is uncertain; the short ticks start at the two measured \
         edges.</p>"
    )?;
    io::copy(sections, out)?;
    write!(
        out,
        "<p class=\"disclaimer\">{}</p>\n<script>{SCRIPT}</script>\n</body></html>\n",
        escape(DISCLAIMER)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn url_paths_stay_relative() {
        assert_eq!(url_path("a b/c?.png"), "./a%20b/c%3F.png");
        assert_eq!(url_path("javascript:x"), "./javascript%3Ax");
        assert_eq!(url_path("µ.png"), "./%C2%B5.png");
    }

    #[test]
    fn inline_svg_has_no_urls() {
        let s = inline_svg(
            "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><g/></svg>",
        );
        assert_eq!(s, "<svg><g/></svg>");
    }

    #[test]
    fn summary_row_escapes_name_and_error() {
        let r = ImageReport::failed("<script>.png", "bad <b>", &Settings::default(), "none", "");
        let row = summary_row(3, &r);
        assert!(row.contains("&lt;script&gt;.png") && !row.contains("<script>"));
        assert!(row.contains("bad &lt;b&gt;"));
        let sec = image_section(3, &r, None, None, None);
        assert!(sec.contains("&lt;script&gt;.png") && !sec.contains("<script>"));
    }
}
