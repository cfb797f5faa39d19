//! Synthetic media for simulated cameras: a moving test pattern with a frame counter, small
//! H.264 and H.265 encoders for it, JPEG frames, and G.711/AAC tones.

pub mod picture;
