//! trichometer: measures hair-shaft widths in close-up scalp images (trichoscopy) and
//! reports the width distribution, the hair-diameter spread (cv) and the share of thin
//! hairs.
//!
//! For research and educational purposes only; not a medical device.
//!
//! The pipeline's stages, in the order data flows through them:
//! [`load`] (decode, linear light) → [`enhance`] (flat-field, multi-scale ridge filter) →
//! [`trace`] (centrelines into individual hairs) → [`measure`] (sub-pixel widths along
//! the normals) → [`report`] (typed results, rows, JSON). [`batch`] runs many images in
//! parallel and [`output`] writes the report folder.

pub mod settings;
pub mod stats;
pub mod truth;
pub mod synth;
pub mod report;

pub use report::{Hair, ImageAnalysis, ImageReport, Polarity, DISCLAIMER};
pub use settings::{HairClass, Settings};

use thiserror::Error;

/// Why one image could not be analysed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AnalysisError {
    #[error("image is empty (0 pixels)")]
    Empty,
    #[error("invalid settings: {0}")]
    Settings(String),
}
