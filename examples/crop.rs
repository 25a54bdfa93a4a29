//! Debug: crop and enlarge. Usage: crop IN OUT X Y W H SCALE
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let img = image::open(&a[1]).unwrap();
    let p: Vec<u32> = a[3..8].iter().map(|s| s.parse().unwrap()).collect();
    let c = img.crop_imm(p[0], p[1], p[2], p[3]);
    c.resize(
        p[2] * p[4],
        p[3] * p[4],
        image::imageops::FilterType::Nearest,
    )
    .save(&a[2])
    .unwrap();
}
