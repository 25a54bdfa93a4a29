//! Dumps the ridge map of an image as raw little-endian arrays for offline analysis:
//! OUT.snr.f32, OUT.strength.f32, OUT.contrast.f32, OUT.pol.i8, OUT.scale.u8 (row-major,
//! height x width). Usage: dump_ridge IMAGE MAX_WIDTH_PX OUT
use trichometer::{enhance, load};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let img = image::open(&a[1]).unwrap();
    let max_w: f64 = a[2].parse().unwrap();
    let lum = load::linear_luminance(&img);
    let r = enhance::ridges(&lum, max_w);
    let write = |path: String, bytes: &[u8]| std::fs::write(path, bytes).unwrap();
    let f = |v: &ndarray::Array2<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    write(format!("{}.snr.f32", a[3]), &f(&r.snr));
    write(format!("{}.strength.f32", a[3]), &f(&r.strength));
    write(format!("{}.contrast.f32", a[3]), &f(&r.contrast));
    write(
        format!("{}.pol.i8", a[3]),
        &r.polarity.iter().map(|&p| p as u8).collect::<Vec<u8>>(),
    );
    write(
        format!("{}.scale.u8", a[3]),
        &r.scale.iter().copied().collect::<Vec<u8>>(),
    );
    println!(
        "{:?} scales {:?} noise {:?}",
        r.snr.dim(),
        r.scales,
        r.noise
    );
}
