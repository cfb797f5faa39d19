//! Codec helpers: NAL unit framing, parameter sets, JPEG headers, G.711 and AAC.

pub mod nal;
