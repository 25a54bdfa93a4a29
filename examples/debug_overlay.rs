//! Debug view: truth centrelines (blue) and reported centrelines (red, flagged yellow)
//! drawn over an image. Usage: debug_overlay IMAGE REPORT_JSON [TRUTH_JSON] OUT_PNG
use trichometer::report::ImageReport;
use trichometer::truth::TruthImage;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut img = image::open(&a[1]).unwrap().to_rgb8();
    let rep: ImageReport = serde_json::from_slice(&std::fs::read(&a[2]).unwrap()).unwrap();
    let out = a.last().unwrap();
    let mut put = |x: f64, y: f64, c: [u8; 3]| {
        let (xi, yi) = (x.round() as i64, y.round() as i64);
        if xi >= 0 && yi >= 0 && (xi as u32) < img.width() && (yi as u32) < img.height() {
            img.put_pixel(xi as u32, yi as u32, image::Rgb(c));
        }
    };
    if a.len() == 5 {
        let t: TruthImage = serde_json::from_slice(&std::fs::read(&a[3]).unwrap()).unwrap();
        for h in &t.hairs {
            for p in &h.points {
                put(p[0], p[1] - 1.0, [0, 120, 255]);
            }
        }
    }
    // Neighbouring ids get different colours so fragments of one hair stand out;
    // flagged hairs are yellow.
    const PALETTE: [[u8; 3]; 4] = [[255, 0, 0], [0, 200, 0], [255, 0, 255], [255, 140, 0]];
    for (i, h) in rep.hairs.iter().enumerate() {
        let c = if h.row.flag.is_empty() {
            PALETTE[i % PALETTE.len()]
        } else {
            [255, 255, 0]
        };
        for w in h.points.windows(2) {
            for k in 0..8 {
                let t = k as f64 / 8.0;
                put(
                    w[0][0] + t * (w[1][0] - w[0][0]),
                    w[0][1] + t * (w[1][1] - w[0][1]),
                    c,
                );
            }
        }
    }
    img.save(out).unwrap();
}
