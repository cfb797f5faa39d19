//! Synthetic media for simulated cameras: a moving test pattern with a frame counter, small
//! H.264 and H.265 encoders for it, JPEG frames, and G.711/AAC tones.

pub mod aac;
pub mod bits;
pub mod font;
pub mod g711tone;
pub mod h264;
pub mod h265;
pub mod jpeg;
pub mod pattern;
pub mod picture;
