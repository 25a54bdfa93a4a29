//! Overlay images: the photo with what was measured drawn on it, so a researcher can check
//! the measurement by eye.
//!
//! Each hair's centreline is a polyline coloured by its class (Okabe–Ito palette, safe for
//! colour-blind readers), with a dark halo so it shows on light skin and dark hair alike.
//! At intervals along the hair two short ticks point outwards from the two measured edges
//! (± width / 2 along the local normal), so the photo's hair edge should meet their inner
//! ends. Hairs whose width is flagged as uncertain are dashed and their id carries a `?`.
//! Ids sit in small dark boxes near the hair's start (left out where hairs crowd so much
//! that no free place is left; the legend counts them). The legend (class limits and
//! counts, keys, scale bar) is a strip below the photo, so it hides no hair.
//!
//! All positions are in image pixels, pixel (i, j) centred at (i, j) as in the reports.

use ab_glyph::{FontRef, PxScale};
use image::{DynamicImage, Rgb, RgbImage};
use imageproc::drawing::{draw_text_mut, text_size};

use crate::report::ImageReport;
use crate::settings::HairClass;

/// DejaVu Sans Bold, subset to ASCII and a few symbols (see `assets/README.md`).
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans-Bold-subset.ttf");

/// Okabe–Ito vermillion: thin hairs (the ones that matter for the thin fraction).
pub const COLOR_THIN: Rgb<u8> = Rgb([0xD5, 0x5E, 0x00]);
/// Okabe–Ito yellow: intermediate hairs (bright, reads on dark hair and on skin).
pub const COLOR_INTERMEDIATE: Rgb<u8> = Rgb([0xF0, 0xE4, 0x42]);
/// Okabe–Ito sky blue: terminal hairs (lighter than the palette's blue so it shows on
/// dark shafts).
pub const COLOR_TERMINAL: Rgb<u8> = Rgb([0x56, 0xB4, 0xE9]);
/// Okabe–Ito reddish purple: every hair when no scale is known (no classes then).
pub const COLOR_UNCLASSIFIED: Rgb<u8> = Rgb([0xCC, 0x79, 0xA7]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// Reference image size (shorter side, px) at which the drawing sizes below apply; they
/// scale with the image so a thumbnail of a large photo still shows the lines.
const REFERENCE_SIDE_PX: f32 = 768.0;
/// Centreline half-thickness at the reference size (px).
const LINE_RADIUS_PX: f32 = 0.75;
/// Extra half-thickness of the dark halo under each line (px).
const HALO_PX: f32 = 0.6;
/// Length of the width ticks outside each edge at the reference size (px).
const TICK_PX: f32 = 4.0;
/// Opacity of the dark halo.
const HALO_ALPHA: f32 = 0.55;
/// Arc length between two width calipers at the reference size (px).
const CALIPER_SPACING_PX: f32 = 36.0;
/// Text height at the reference size (px).
const FONT_PX: f32 = 15.0;
/// Dash and gap lengths of flagged (uncertain) hairs at the reference size (px).
const DASH_PX: (f32, f32) = (9.0, 7.0);
/// How much of the photo's colour is kept (the rest is its grey): lines stand out better
/// on a desaturated photo, while the hairs stay recognisable.
const PHOTO_SATURATION: f32 = 0.45;

/// A hair as drawn: centreline, colour, flagged, width (px).
type Drawn = (Vec<[f32; 2]>, Rgb<u8>, bool, f32);

/// The embedded font.
fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("embedded font is valid")
}

/// Colour of a hair by its class; `None` (no scale) gets the neutral colour.
pub fn class_color(class: Option<HairClass>) -> Rgb<u8> {
    match class {
        Some(HairClass::Thin) => COLOR_THIN,
        Some(HairClass::Intermediate) => COLOR_INTERMEDIATE,
        Some(HairClass::Terminal) => COLOR_TERMINAL,
        None => COLOR_UNCLASSIFIED,
    }
}

/// Draws the overlay of `report` on `image`, RGB 8-bit: as wide as the image and taller by
/// a legend strip below it, so pixel coordinates in the photo part match the image's and
/// the legend hides nothing. A failed report (no hairs) gives the photo and the legend.
pub fn draw_overlay(image: &DynamicImage, report: &ImageReport) -> RgbImage {
    let (w, h) = (image.width(), image.height());
    let k = (w.min(h) as f32 / REFERENCE_SIDE_PX).clamp(0.6, 4.0);
    let radius = (LINE_RADIUS_PX * k).max(1.0);
    let halo = (HALO_PX * k).max(1.0);
    let dash = ((DASH_PX.0 * k).max(6.0), (DASH_PX.1 * k).max(5.0));
    let font_px = (FONT_PX * k).max(11.0);
    let font = font();

    let hairs: Vec<Drawn> = report
        .hairs
        .iter()
        .map(|hr| {
            let pts: Vec<[f32; 2]> = hr
                .points
                .iter()
                .map(|q| [q[0] as f32, q[1] as f32])
                .collect();
            (
                pts,
                class_color(hr.row.class),
                !hr.row.flag.is_empty(),
                hr.row.width_px as f32,
            )
        })
        .collect();

    // Ids: placed where they overlap no other label, beside the hair at its start, then
    // further along, then further out. Where hairs crowd so that no free place is left
    // (e.g. a printed ruler read as many short hairs) the id is left out rather than
    // drawn over others; the legend says how many.
    let mut labels: Vec<(Rect, String, Rgb<u8>, i32)> = Vec::new();
    let mut omitted = 0usize;
    let scale = PxScale::from(font_px);
    let label_pad = (2.0 * k).round().max(2.0) as i32;
    for (hr, (pts, color, flagged, width)) in report.hairs.iter().zip(&hairs) {
        let label = if *flagged {
            format!("{}?", hr.row.hair_id)
        } else {
            hr.row.hair_id.to_string()
        };
        let (tw, th) = text_size(scale, &font, &label);
        let pad = label_pad;
        let (bw, bh) = (tw as i32 + 2 * pad, (font_px * 1.05) as i32 + 2 * pad);
        let off = width / 2.0 + radius + halo + 2.0 * k;
        let cands = label_candidates(pts);
        let tries = cands
            .iter()
            .flat_map(|&cn| [(cn, 1.0f32), (cn, -1.0)])
            .chain(cands.iter().flat_map(|&cn| [(cn, 2.5f32), (cn, -2.5)]));
        let mut best: Option<Rect> = None;
        for ((c, n), s) in tries {
            let ax = c[0] + s * n[0] * (off + bw as f32 / 2.0);
            let ay = c[1] + s * n[1] * (off + bh as f32 / 2.0);
            let r = Rect {
                x: (ax - bw as f32 / 2.0).round() as i32,
                y: (ay - bh as f32 / 2.0).round() as i32,
                w: bw,
                h: bh,
            }
            .clamp_into(w as i32, h as i32);
            if !labels.iter().any(|q| q.0.overlaps(&r)) {
                best = Some(r);
                break;
            }
        }
        match best {
            Some(r) => {
                let ty =
                    r.y + pad + ((font_px * 1.05) as i32 - th as i32) / 2 - (0.15 * font_px) as i32;
                labels.push((r, label, *color, ty.max(r.y)));
            }
            None => omitted += 1,
        }
    }

    let legend = Legend::new(report, w, k, font_px, &font, omitted);
    let photo = dimmed(image);
    let mut canvas = RgbImage::from_pixel(w, h + legend.height, LEGEND_BACKGROUND);
    image::imageops::replace(&mut canvas, &photo, 0, 0);
    drop(photo);
    let mut p = Painter::new(canvas, h);

    // Width ticks: at intervals, two short ticks pointing outwards from the two measured
    // edges (± width / 2 along the normal), so the photo's hair edge should meet their
    // inner ends; the centreline is kept thin so the hair stays visible around it.
    let tick_len = (TICK_PX * k).max(3.0);
    let tick_r = (0.5 * k).max(0.5);
    let ticks: Vec<Vec<[[f32; 2]; 2]>> = hairs
        .iter()
        .map(|(pts, _, _, width)| {
            stations(pts, CALIPER_SPACING_PX * k)
                .into_iter()
                .flat_map(|(c, n)| edge_ticks(c, n, width / 2.0, tick_len))
                .collect()
        })
        .collect();
    // Halos first for all hairs, so a crossing hair's halo never cuts another's line.
    for ((pts, _, flagged, _), ticks) in hairs.iter().zip(&ticks) {
        p.stroke(pts, radius + halo, flagged.then_some(dash));
        for t in ticks {
            p.stroke(t, tick_r + halo, None);
        }
        p.fill(BLACK, HALO_ALPHA);
    }
    for ((pts, color, flagged, _), ticks) in hairs.iter().zip(&ticks) {
        p.stroke(pts, radius, flagged.then_some(dash));
        for t in ticks {
            p.stroke(t, tick_r, None);
        }
        p.fill(*color, 1.0);
    }

    for (r, label, color, ty) in &labels {
        p.rect(*r, BLACK, 0.7);
        draw_text_mut(
            &mut p.img,
            *color,
            r.x + label_pad,
            *ty,
            scale,
            &font,
            label,
        );
    }

    legend.draw(&mut p, h as i32, k, font_px, &font);
    p.img
}

/// The two ticks at one station: from each edge (centre ± `half` along the unit normal
/// `n`) outwards by `len`.
fn edge_ticks(c: [f32; 2], n: [f32; 2], half: f32, len: f32) -> [[[f32; 2]; 2]; 2] {
    [1.0f32, -1.0].map(|s| {
        [
            [c[0] + s * half * n[0], c[1] + s * half * n[1]],
            [
                c[0] + s * (half + len) * n[0],
                c[1] + s * (half + len) * n[1],
            ],
        ]
    })
}

/// The photo in RGB 8-bit, partly desaturated so coloured lines stand out.
fn dimmed(image: &DynamicImage) -> RgbImage {
    let mut img = image.to_rgb8();
    for px in img.pixels_mut() {
        let [r, g, b] = px.0.map(f32::from);
        let grey = 0.299 * r + 0.587 * g + 0.114 * b;
        px.0 = [r, g, b].map(|c| (grey + PHOTO_SATURATION * (c - grey)).round() as u8);
    }
    img
}

/// Points along a polyline every `spacing` px of arc length (starting half a spacing in),
/// each with the unit normal of the local direction (averaged over a few px).
fn stations(pts: &[[f32; 2]], spacing: f32) -> Vec<([f32; 2], [f32; 2])> {
    let cum = arc_lengths(pts);
    let total = *cum.last().unwrap_or(&0.0);
    if pts.len() < 2 || total < spacing * 0.5 {
        return vec![];
    }
    let n = (total / spacing).floor().max(1.0) as usize;
    let first = (total - (n - 1) as f32 * spacing) / 2.0;
    (0..n)
        .filter_map(|i| point_at(pts, &cum, first + i as f32 * spacing))
        .collect()
}

/// Where an id label may go: the start, then further along the hair.
fn label_candidates(pts: &[[f32; 2]]) -> Vec<([f32; 2], [f32; 2])> {
    let cum = arc_lengths(pts);
    let total = *cum.last().unwrap_or(&0.0);
    if pts.len() < 2 {
        return pts.iter().map(|&p| (p, [0.0, -1.0])).collect();
    }
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        .iter()
        .filter_map(|f| point_at(pts, &cum, f * total))
        .collect()
}

fn arc_lengths(pts: &[[f32; 2]]) -> Vec<f32> {
    let mut cum = Vec::with_capacity(pts.len());
    let mut acc = 0.0;
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            acc += dist(pts[i - 1], *p);
        }
        cum.push(acc);
    }
    cum
}

/// The point at arc length `s` and the unit normal there (direction over ±4 px of arc).
fn point_at(pts: &[[f32; 2]], cum: &[f32], s: f32) -> Option<([f32; 2], [f32; 2])> {
    let at = |s: f32| -> [f32; 2] {
        let s = s.clamp(0.0, *cum.last().unwrap());
        let i = cum.partition_point(|&c| c < s).clamp(1, pts.len() - 1);
        let (a, b) = (pts[i - 1], pts[i]);
        let seg = cum[i] - cum[i - 1];
        let f = if seg > 0.0 {
            (s - cum[i - 1]) / seg
        } else {
            0.0
        };
        [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])]
    };
    let c = at(s);
    let (a, b) = (at(s - 4.0), at(s + 4.0));
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len == 0.0 {
        return None;
    }
    Some((c, [-dy / len, dx / len]))
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// An integer pixel rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
}

impl Rect {
    fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }

    fn clamp_into(self, w: i32, h: i32) -> Rect {
        Rect {
            x: self.x.clamp(0, (w - self.w).max(0)),
            y: self.y.clamp(0, (h - self.h).max(0)),
            ..self
        }
    }
}

/// Antialiased strokes: coverage of the current shape is accumulated (max, so joints and
/// overlaps are not painted twice) and then blended once in one colour.
struct Painter {
    img: RgbImage,
    /// Strokes are clipped to rows above this (the photo; the legend strip is below).
    clip_h: u32,
    cov: Vec<f32>,
    touched: Vec<u32>,
}

impl Painter {
    fn new(img: RgbImage, clip_h: u32) -> Painter {
        let n = img.width() as usize * img.height() as usize;
        Painter {
            img,
            clip_h,
            cov: vec![0.0; n],
            touched: Vec::new(),
        }
    }

    /// Adds a polyline of half-thickness `radius` to the current shape; `dash` = (on, off)
    /// lengths along the line.
    fn stroke(&mut self, pts: &[[f32; 2]], radius: f32, dash: Option<(f32, f32)>) {
        if pts.len() == 1 {
            self.segment(pts[0], pts[0], radius);
        }
        let mut phase = 0.0f32; // arc length from the start, for dashes
        for seg in pts.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            let len = dist(a, b);
            match dash {
                None => self.segment(a, b, radius),
                Some((on, off)) => {
                    let period = on + off;
                    let mut s = 0.0;
                    while s < len {
                        let pos = (phase + s) % period;
                        let step = if pos < on { on - pos } else { period - pos };
                        let e = (s + step).min(len);
                        if pos < on {
                            let p = |t: f32| {
                                let f = if len > 0.0 { t / len } else { 0.0 };
                                [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])]
                            };
                            self.segment(p(s), p(e), radius);
                        }
                        s = e.max(s + 1e-3);
                    }
                }
            }
            phase += len;
        }
    }

    fn segment(&mut self, a: [f32; 2], b: [f32; 2], radius: f32) {
        let (w, h) = (self.img.width() as i32, self.clip_h as i32);
        let m = radius + 1.0;
        let x0 = ((a[0].min(b[0]) - m).floor() as i32).max(0);
        let x1 = ((a[0].max(b[0]) + m).ceil() as i32).min(w - 1);
        let y0 = ((a[1].min(b[1]) - m).floor() as i32).max(0);
        let y1 = ((a[1].max(b[1]) + m).ceil() as i32).min(h - 1);
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let l2 = dx * dx + dy * dy;
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (px, py) = (x as f32 - a[0], y as f32 - a[1]);
                let t = if l2 > 0.0 {
                    ((px * dx + py * dy) / l2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let d = ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt();
                let c = (radius + 0.5 - d).clamp(0.0, 1.0);
                if c > 0.0 {
                    let i = y as usize * w as usize + x as usize;
                    if self.cov[i] == 0.0 {
                        self.touched.push(i as u32);
                    }
                    self.cov[i] = self.cov[i].max(c);
                }
            }
        }
    }

    /// Adds a filled rectangle to the current shape.
    fn rect(&mut self, r: Rect, color: Rgb<u8>, alpha: f32) {
        let (w, h) = (self.img.width() as i32, self.img.height() as i32);
        for y in r.y.max(0)..(r.y + r.h).min(h) {
            for x in r.x.max(0)..(r.x + r.w).min(w) {
                let i = y as usize * w as usize + x as usize;
                if self.cov[i] == 0.0 {
                    self.touched.push(i as u32);
                }
                self.cov[i] = 1.0;
            }
        }
        self.fill(color, alpha);
    }

    /// Blends the current shape in `color` at `alpha` × coverage and clears it.
    fn fill(&mut self, color: Rgb<u8>, alpha: f32) {
        let w = self.img.width() as usize;
        for &i in &self.touched {
            let i = i as usize;
            let a = self.cov[i] * alpha;
            self.cov[i] = 0.0;
            let px = self.img.get_pixel_mut((i % w) as u32, (i / w) as u32);
            for (c, t) in px.0.iter_mut().zip(color.0) {
                *c = (*c as f32 * (1.0 - a) + t as f32 * a).round() as u8;
            }
        }
        self.touched.clear();
    }
}

/// A length for the scale bar: the largest round number of µm at most an eighth of the
/// image wide (the smallest round number when even that is wider).
fn scale_bar_um(width_px: u32, um_per_px: f64) -> f64 {
    const NICE: [f64; 12] = [
        5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
    ];
    let target = width_px as f64 / 8.0 * um_per_px;
    NICE.iter()
        .copied()
        .rev()
        .find(|&n| n <= target)
        .unwrap_or(NICE[0])
}

fn fmt_limit(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Background of the legend strip below the photo.
const LEGEND_BACKGROUND: Rgb<u8> = Rgb([32, 32, 32]);

/// What a legend item shows before its text.
enum Key {
    Line(Rgb<u8>, bool),
    Ticks,
    Bar(f32),
    None,
}

/// The legend: a strip below the photo (so it never hides a hair) with the count, one
/// swatch per class with its limits and count, the flagged and tick keys and the scale
/// bar, laid out left to right and wrapped to the image width.
struct Legend {
    /// Items and their (x, line) positions in the strip.
    items: Vec<(Key, String, i32, i32)>,
    height: u32,
}

impl Legend {
    fn new(
        report: &ImageReport,
        w: u32,
        k: f32,
        font_px: f32,
        font: &FontRef<'static>,
        omitted_ids: usize,
    ) -> Legend {
        let s = &report.settings;
        let scale = PxScale::from(font_px);
        let count = |c: HairClass| {
            report
                .hairs
                .iter()
                .filter(|h| h.row.class == Some(c))
                .count()
        };
        let flagged = report
            .hairs
            .iter()
            .filter(|h| !h.row.flag.is_empty())
            .count();
        let mut rows: Vec<(Key, String)> = Vec::new();
        let title = if report.row.status == "ok" {
            format!("{} hairs:", report.hairs.len())
        } else {
            "analysis failed".to_string()
        };
        rows.push((Key::None, title));
        if s.um_per_px.is_some() {
            let (t, m) = (fmt_limit(s.thin_um), fmt_limit(s.terminal_um));
            rows.push((
                Key::Line(COLOR_THIN, false),
                format!("thin < {t} µm ({})", count(HairClass::Thin)),
            ));
            rows.push((
                Key::Line(COLOR_INTERMEDIATE, false),
                format!(
                    "intermediate {t}–{m} µm ({})",
                    count(HairClass::Intermediate)
                ),
            ));
            rows.push((
                Key::Line(COLOR_TERMINAL, false),
                format!("terminal ≥ {m} µm ({})", count(HairClass::Terminal)),
            ));
        } else {
            rows.push((
                Key::Line(COLOR_UNCLASSIFIED, false),
                "hair (no scale: widths in px, no classes)".to_string(),
            ));
        }
        rows.push((
            Key::Line(WHITE, true),
            format!("dashed, id? = uncertain width ({flagged})"),
        ));
        rows.push((Key::Ticks, "ticks start at the measured edges".to_string()));
        if omitted_ids > 0 {
            rows.push((
                Key::None,
                format!("{omitted_ids} ids left out where hairs crowd"),
            ));
        }
        if let Some(um) = s.um_per_px {
            let bar_um = scale_bar_um(w, um);
            rows.push((
                Key::Bar((bar_um / um) as f32),
                format!("{} µm", fmt_limit(bar_um)),
            ));
        }
        let pad = (6.0 * k).round() as i32;
        let gap = (18.0 * k).round() as i32;
        let swatch = (28.0 * k).round() as i32;
        let line_h = (font_px * 1.4).round() as i32;
        let mut items = Vec::new();
        let (mut x, mut line) = (pad, 0);
        for (key, text) in rows {
            let key_w = match &key {
                Key::Bar(px) => px.ceil() as i32,
                Key::None => 0,
                _ => swatch,
            };
            let item_w = key_w + pad + text_size(scale, font, &text).0 as i32;
            if x > pad && x + item_w > w as i32 - pad {
                x = pad;
                line += 1;
            }
            items.push((key, text, x, line));
            x += item_w + gap;
        }
        Legend {
            items,
            height: (2 * pad + (line + 1) * line_h) as u32,
        }
    }

    /// Draws the strip starting at row `top`.
    fn draw(&self, p: &mut Painter, top: i32, k: f32, font_px: f32, font: &FontRef<'static>) {
        let scale = PxScale::from(font_px);
        let pad = (6.0 * k).round() as i32;
        let swatch = (28.0 * k).round() as i32;
        let line_h = (font_px * 1.4).round() as i32;
        let radius = (LINE_RADIUS_PX * k).max(1.0) * 1.5;
        p.clip_h = p.img.height();
        for (key, text, x, line) in &self.items {
            let y0 = top + pad + line * line_h;
            let yc = y0 as f32 + line_h as f32 / 2.0;
            let x0 = *x as f32;
            let key_w = match key {
                Key::Line(c, dashed) => {
                    let dash = dashed.then_some((DASH_PX.0 * k * 0.6, DASH_PX.1 * k * 0.6));
                    p.stroke(&[[x0, yc], [x0 + swatch as f32, yc]], radius, dash);
                    p.fill(*c, 1.0);
                    swatch
                }
                Key::Ticks => {
                    let xc = x0 + swatch as f32 / 2.0;
                    let ticks = edge_ticks(
                        [xc, yc],
                        [0.0, 1.0],
                        0.15 * line_h as f32,
                        0.25 * line_h as f32,
                    );
                    p.stroke(&[[x0, yc], [x0 + swatch as f32, yc]], radius, None);
                    for t in &ticks {
                        p.stroke(t, (0.5 * k).max(0.5), None);
                    }
                    p.fill(COLOR_INTERMEDIATE, 1.0);
                    swatch
                }
                Key::Bar(px) => {
                    let th = (3.0 * k).max(2.0);
                    p.rect(
                        Rect {
                            x: *x,
                            y: (yc - th / 2.0) as i32,
                            w: px.round() as i32,
                            h: th.round() as i32,
                        },
                        WHITE,
                        1.0,
                    );
                    px.ceil() as i32
                }
                Key::None => -pad,
            };
            let tx = x + key_w + pad;
            let ty = y0 + (line_h - font_px as i32) / 2 - (0.1 * font_px) as i32;
            draw_text_mut(&mut p.img, WHITE, tx, ty, scale, font, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{HairReport, HairRow, ImageReport, Polarity};
    use crate::settings::Settings;

    fn report_with(
        points: Vec<[f64; 2]>,
        width_px: f64,
        flag: &str,
        scale: Option<f64>,
    ) -> ImageReport {
        let settings = Settings {
            um_per_px: scale,
            ..Settings::default()
        };
        let mut r = ImageReport::failed("x.png", "", &settings, "flag", "");
        r.row.status = "ok".into();
        r.hairs.push(HairReport {
            row: HairRow {
                image: "x.png".into(),
                hair_id: 0,
                width_um: scale.map(|s| s * width_px),
                width_px,
                width_sd_um: None,
                width_sd_px: 0.0,
                length_um: None,
                length_px: 100.0,
                x_start: points[0][0],
                y_start: points[0][1],
                x_end: points[points.len() - 1][0],
                y_end: points[points.len() - 1][1],
                class: settings.class_of_px(width_px),
                polarity: Polarity::Dark,
                contrast: 0.5,
                flag: flag.into(),
            },
            points,
        });
        r
    }

    fn grey(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([128, 128, 128])))
    }

    #[test]
    fn centreline_is_drawn_in_class_colour() {
        // 4 px at 5 µm/px = 20 µm: thin.
        let pts: Vec<[f64; 2]> = (0..=200).map(|x| [50.0 + x as f64, 150.0]).collect();
        let out = draw_overlay(&grey(400, 300), &report_with(pts, 4.0, "", Some(5.0)));
        assert_eq!(out.width(), 400);
        assert!(out.height() > 300, "legend strip below the photo");
        // Between two calipers the centre pixel is the pure class colour.
        let on_line = (60..240)
            .filter(|&x| *out.get_pixel(x, 150) == COLOR_THIN)
            .count();
        assert!(on_line > 100, "{on_line} pixels of the line in vermillion");
        // Far from the hair and the legend the photo is unchanged (grey stays grey).
        assert_eq!(*out.get_pixel(330, 150), Rgb([128, 128, 128]));
    }

    #[test]
    fn flagged_hair_is_dashed_and_unscaled_hair_neutral() {
        let pts: Vec<[f64; 2]> = (0..=300).map(|x| [50.0 + x as f64, 150.0]).collect();
        let out = draw_overlay(&grey(400, 300), &report_with(pts, 4.0, "too narrow", None));
        let row: Vec<bool> = (60..340)
            .map(|x| *out.get_pixel(x, 150) == COLOR_UNCLASSIFIED)
            .collect();
        let runs = row.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(runs > 20, "dashes: {runs} colour changes along the line");
        assert!(row.iter().filter(|&&b| b).count() > 80);
    }

    #[test]
    fn scale_bar_is_round_and_about_a_sixth() {
        assert_eq!(scale_bar_um(1200, 5.0), 500.0);
        assert_eq!(scale_bar_um(2304, 10.0), 2000.0);
        assert_eq!(scale_bar_um(800, 1.0), 100.0);
    }

    #[test]
    fn stations_are_evenly_spaced_with_unit_normals() {
        let pts: Vec<[f32; 2]> = (0..=100).map(|x| [x as f32, 10.0]).collect();
        let st = stations(&pts, 20.0);
        assert_eq!(st.len(), 5);
        assert!((st[0].0[0] - 10.0).abs() < 1e-4);
        assert!((st[1].0[0] - st[0].0[0] - 20.0).abs() < 1e-4);
        for (_, n) in st {
            assert!((n[0].abs() < 1e-6) && ((n[1].abs() - 1.0).abs() < 1e-6));
        }
    }

    #[test]
    fn empty_report_gives_the_photo_and_legend() {
        let r = ImageReport::failed("x.png", "bad", &Settings::default(), "none", "");
        let out = draw_overlay(&grey(64, 48), &r);
        assert_eq!(out.width(), 64);
        assert!(out.height() > 48);
    }
}
