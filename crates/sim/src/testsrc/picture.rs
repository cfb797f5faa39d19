//! `Yuv420`: an 8-bit planar 4:2:0 picture, the input of the test-source encoders.

/// An 8-bit planar YUV 4:2:0 picture (BT.601 limited range). Width and height are multiples
/// of 16.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Yuv420 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Luma, `width * height` bytes, row-major.
    pub y: Vec<u8>,
    /// Cb, `width/2 * height/2` bytes.
    pub u: Vec<u8>,
    /// Cr, `width/2 * height/2` bytes.
    pub v: Vec<u8>,
}

impl Yuv420 {
    /// A picture filled with one colour.
    pub fn new(width: usize, height: usize, y: u8, u: u8, v: u8) -> Self {
        assert!(width.is_multiple_of(16) && height.is_multiple_of(16) && width > 0 && height > 0);
        Yuv420 {
            width,
            height,
            y: vec![y; width * height],
            u: vec![u; width * height / 4],
            v: vec![v; width * height / 4],
        }
    }
}
