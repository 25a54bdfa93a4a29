//! Stage 1: read and decode image files (with size limits and EXIF orientation) and turn
//! them into linear-light luminance, the quantity every later measurement works on.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use ndarray::Array2;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Default largest image accepted, in pixels (100 MP: a 5,000-image batch on a laptop must
/// not be killed for memory by one huge file; raise with `--max-megapixels`).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Bytes the decoder may allocate per pixel allowed (RGBA 16-bit is 8 bytes; keep room).
const ALLOC_BYTES_PER_PIXEL: u64 = 10;

/// Why a file could not be turned into an image.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("cannot read file: {0}")]
    Read(#[source] std::io::Error),
    #[error("empty file (0 bytes)")]
    EmptyFile,
    #[error("not a recognised image format")]
    UnknownFormat,
    #[error("image too large: {width}x{height} exceeds the limit of {limit} pixels (raise it with --max-megapixels)")]
    TooLarge { width: u32, height: u32, limit: u64 },
    #[error("cannot decode image: {0}")]
    Decode(String),
}

/// The bytes of a file and their SHA-256 (hex).
pub struct FileBytes {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Reads a whole file and hashes it.
pub fn read_file(path: &Path) -> Result<FileBytes, LoadError> {
    let bytes = std::fs::read(path).map_err(LoadError::Read)?;
    let sha256 = hex(&Sha256::digest(&bytes));
    Ok(FileBytes { bytes, sha256 })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes an encoded image held in memory, refusing images above `max_pixels`, and
/// turns it to its displayed orientation (EXIF), so coordinates refer to what a viewer shows.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::EmptyFile);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| LoadError::Decode(e.to_string()))?;
    match reader.format() {
        None => return Err(LoadError::UnknownFormat),
        Some(image::ImageFormat::Jpeg) if !jpeg_has_end(bytes) => {
            // The decoder would fill the missing part with grey and "succeed".
            return Err(LoadError::Decode(
                "truncated JPEG (no end-of-image marker)".into(),
            ));
        }
        _ => {}
    }
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if (width as u64) * (height as u64) > max_pixels {
        return Err(LoadError::TooLarge {
            width,
            height,
            limit: max_pixels,
        });
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(ALLOC_BYTES_PER_PIXEL));
    decoder.set_limits(limits).map_err(decode_error)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(LoadError::Decode("image has no pixels".into()));
    }
    Ok(img)
}

/// Whether a JPEG stream ends with its end-of-image marker (FF D9) within its last bytes.
/// Entropy-coded data stuffs every FF with 00, so FF D9 only occurs as the marker.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(JPEG_TAIL_BYTES)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Trailing bytes searched for the JPEG end marker (some writers pad after it).
const JPEG_TAIL_BYTES: usize = 4096;

fn decode_error(e: image::ImageError) -> LoadError {
    match e {
        image::ImageError::Unsupported(u) => LoadError::Decode(format!("unsupported: {u}")),
        other => {
            let msg = crate::report::one_line(&other.to_string());
            // Decoders word a cut-off file as an I/O problem; say what it means.
            let truncated = matches!(&other, image::ImageError::IoError(io)
                if io.kind() == std::io::ErrorKind::UnexpectedEof)
                || msg.contains("failed to fill whole buffer")
                || msg.contains("unexpected end of file");
            LoadError::Decode(if truncated {
                format!("file is truncated ({msg})")
            } else {
                msg
            })
        }
    }
}

/// sRGB transfer function inverse: encoded value in [0, 1] to linear light.
pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// Rec. 709 luminance weights for linear RGB.
const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// Linear-light luminance of an image, shape (height, width), values in [0, 1].
/// 8-bit images go through a lookup table; deeper ones through the exact formula.
/// Alpha is ignored (trichoscopy images carry none that means anything).
pub fn linear_luminance(img: &DynamicImage) -> Array2<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    match img {
        DynamicImage::ImageLuma8(g) => {
            let lut = srgb_lut();
            Array2::from_shape_vec(
                (h, w),
                g.as_raw().iter().map(|&v| lut[v as usize]).collect(),
            )
            .expect("shape matches buffer")
        }
        DynamicImage::ImageRgb8(rgb) => rgb8_luminance(rgb.as_raw(), 3, w, h),
        DynamicImage::ImageRgba8(rgba) => rgb8_luminance(rgba.as_raw(), 4, w, h),
        DynamicImage::ImageLumaA8(_) => linear_luminance(&DynamicImage::ImageLuma8(img.to_luma8())),
        _ => {
            let rgb = img.to_rgb32f();
            let data = rgb
                .as_raw()
                .chunks_exact(3)
                .map(|p| {
                    LUMA[0] * srgb_to_linear(p[0].clamp(0.0, 1.0))
                        + LUMA[1] * srgb_to_linear(p[1].clamp(0.0, 1.0))
                        + LUMA[2] * srgb_to_linear(p[2].clamp(0.0, 1.0))
                })
                .collect();
            Array2::from_shape_vec((h, w), data).expect("shape matches buffer")
        }
    }
}

fn srgb_lut() -> [f32; 256] {
    let mut lut = [0f32; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        *v = srgb_to_linear(i as f32 / 255.0);
    }
    lut
}

fn rgb8_luminance(raw: &[u8], channels: usize, w: usize, h: usize) -> Array2<f32> {
    // One table per channel with its weight applied: the same products as weighting the
    // looked-up value, without the multiplications.
    let lut = srgb_lut();
    let weighted = |c: usize| lut.map(|v| LUMA[c] * v);
    let (lr, lg, lb) = (weighted(0), weighted(1), weighted(2));
    let mut data = vec![0f32; w * h];
    for (o, p) in data.iter_mut().zip(raw.chunks_exact(channels)) {
        *o = lr[p[0] as usize] + lg[p[1] as usize] + lb[p[2] as usize];
    }
    Array2::from_shape_vec((h, w), data).expect("shape matches buffer")
}

/// Reads the colour image around a point: a specular highlight on a shaft is the colour of
/// the light (neutral), the gap between two shafts the colour of skin.
pub struct Colour<'a> {
    image: &'a RgbImage,
    lut: [f32; 256],
}

impl<'a> Colour<'a> {
    pub fn new(image: &'a RgbImage) -> Self {
        Colour {
            image,
            lut: srgb_lut(),
        }
    }

    /// Chroma (R − B) / (R + G + B) of linear light, bilinear at (x, y); `None` outside.
    pub fn chroma(&self, x: f32, y: f32) -> Option<f32> {
        let rgb = self.rgb(x, y)?;
        let sum = rgb[0] + rgb[1] + rgb[2];
        (sum > 1e-4).then(|| (rgb[0] - rgb[2]) / sum)
    }

    /// Linear-light RGB, bilinear at (x, y); `None` outside.
    pub fn rgb(&self, x: f32, y: f32) -> Option<[f32; 3]> {
        let (w, h) = (self.image.width() as usize, self.image.height() as usize);
        if !(x >= 0.0 && y >= 0.0 && x <= (w - 1) as f32 && y <= (h - 1) as f32) {
            return None;
        }
        let x0 = (x.floor() as usize).min(w.saturating_sub(2));
        let y0 = (y.floor() as usize).min(h.saturating_sub(2));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let raw = self.image.as_raw();
        let mut rgb = [0.0f32; 3];
        for (row, wy) in [(y0, 1.0 - fy), ((y0 + 1).min(h - 1), fy)] {
            for (col, wx) in [(x0, 1.0 - fx), ((x0 + 1).min(w - 1), fx)] {
                let px = &raw[3 * (row * w + col)..][..3];
                for c in 0..3 {
                    rgb[c] += wx * wy * self.lut[px[c] as usize];
                }
            }
        }
        Some(rgb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_curve_endpoints_and_midpoint() {
        assert_eq!(srgb_to_linear(0.0), 0.0);
        assert!((srgb_to_linear(1.0) - 1.0).abs() < 1e-6);
        // sRGB 0.5 is about 21.4% linear light.
        assert!((srgb_to_linear(0.5) - 0.2140).abs() < 1e-3);
    }

    #[test]
    fn luminance_of_grey_and_rgb_agree() {
        let g = image::GrayImage::from_pixel(4, 3, image::Luma([128]));
        let rgb = image::RgbImage::from_pixel(4, 3, image::Rgb([128, 128, 128]));
        let a = linear_luminance(&DynamicImage::ImageLuma8(g));
        let b = linear_luminance(&DynamicImage::ImageRgb8(rgb));
        assert_eq!(a.dim(), (3, 4));
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() < 1e-5);
        }
        let rgb16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(
            4,
            3,
            image::Rgb([32896, 32896, 32896]),
        );
        let c = linear_luminance(&DynamicImage::ImageRgb16(rgb16));
        assert!((c[[0, 0]] - a[[0, 0]]).abs() < 1e-4);
    }

    #[test]
    fn decode_rejects_garbage_and_empty() {
        assert!(matches!(decode(b"", 100), Err(LoadError::EmptyFile)));
        assert!(matches!(
            decode(b"hello, this is text", 100),
            Err(LoadError::UnknownFormat)
        ));
        // A JPEG header followed by nothing.
        let e = decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16], 1000).unwrap_err();
        assert!(matches!(e, LoadError::Decode(_)), "{e:?}");
    }

    #[test]
    fn decode_enforces_pixel_limit() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::new(50, 40));
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png)
            .unwrap();
        assert!(decode(&buf, 2000).is_ok());
        let e = decode(&buf, 1999).unwrap_err();
        assert!(e.to_string().contains("50x40"), "{e}");
    }
}
