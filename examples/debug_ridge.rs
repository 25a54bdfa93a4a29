//! Debug view of the ridge stage over a crop: snr (grey, dark polarity red-tinted), centre
//! pixels (green), final centreline pixels after hysteresis and thinning (yellow), traces
//! (blue). Usage: debug_ridge IMAGE X0 Y0 W H OUT_PNG
use trichometer::{enhance, load, trace};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let img = image::open(&a[1]).unwrap();
    let p: Vec<usize> = a[2..6].iter().map(|v| v.parse().unwrap()).collect();
    let (x0, y0, cw, ch) = (p[0], p[1], p[2], p[3]);
    let lum = load::linear_luminance(&img);
    let ridge = enhance::ridges(&lum, 48.0);
    let keep = trace::centreline_pixels(&ridge);
    let traces = trace::trace(&ridge);
    let scale = 4u32;
    let mut out = image::RgbImage::new(cw as u32 * scale, ch as u32 * scale);
    for y in 0..ch {
        for x in 0..cw {
            let (gx, gy) = (x0 + x, y0 + y);
            let s = (ridge.snr[[gy, gx]] * 20.0).min(255.0) as u8;
            let mut c = if ridge.polarity[[gy, gx]] > 0 {
                [s, s / 2, s / 2]
            } else {
                [s / 2, s / 2, s]
            };
            if keep[[gy, gx]] {
                c = [255, 255, 0];
            }
            for dy in 0..scale {
                for dx in 0..scale {
                    out.put_pixel(x as u32 * scale + dx, y as u32 * scale + dy, image::Rgb(c));
                }
            }
        }
    }
    for (i, t) in traces.iter().enumerate() {
        let col = [[0u8, 160, 255], [0, 255, 160], [255, 0, 255]][i % 3];
        for q in &t.points {
            let (x, y) = (
                (q[0] - x0 as f32 + 0.5) * scale as f32,
                (q[1] - y0 as f32 + 0.5) * scale as f32,
            );
            if x >= 0.0 && y >= 0.0 && (x as u32) < out.width() && (y as u32) < out.height() {
                out.put_pixel(x as u32, y as u32, image::Rgb(col));
            }
        }
    }
    out.save(&a[6]).unwrap();
}
