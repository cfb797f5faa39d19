//! Codec helpers: NAL unit framing, parameter sets, JPEG headers, G.711 and AAC.

pub mod aac;
pub mod bits;
pub mod g711;
pub mod h264;
pub mod h265;
pub mod jpeg;
pub mod nal;
pub mod params;

pub use params::ensure_parameter_sets;
