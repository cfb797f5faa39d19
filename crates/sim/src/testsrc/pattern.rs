//! `TestPattern`: a moving test picture for simulated cameras — 75% colour bars, a white block
//! that moves every frame, a frame counter and a UTC wall clock in large digits, and an
//! optional label — plus 90 kHz timing helpers.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::font;
use super::picture::Yuv420;

/// 75% colour bars in BT.601 limited range (Y, Cb, Cr): white, yellow, cyan, green, magenta,
/// red, blue.
const BARS: [(u8, u8, u8); 7] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
];

/// Luma of black.
const BLACK: u8 = 16;
/// Luma of 100% white (the moving block and the text; brighter than any bar).
const WHITE: u8 = 235;
/// Neutral chroma.
const GREY_C: u8 = 128;

/// Default display width.
pub const DEFAULT_WIDTH: usize = 640;
/// Default display height (coded as 368 rows, cropped to 360 by the encoders).
pub const DEFAULT_HEIGHT: usize = 360;

/// Length of one frame at `fps` frames per second in 90 kHz units (rounded to nearest).
pub fn frame_duration_90k(fps: u32) -> i64 {
    assert!(fps > 0, "fps must be positive");
    (90_000 + i64::from(fps) / 2) / i64::from(fps)
}

/// The 90 kHz timestamp of frame `frame_no` at `fps` frames per second, without drift for
/// rates that do not divide 90000.
pub fn frame_pts_90k(frame_no: u64, fps: u32) -> i64 {
    assert!(fps > 0, "fps must be positive");
    (u128::from(frame_no) * 90_000 / u128::from(fps)) as i64
}

/// Rounds `n` up to a multiple of 16.
pub fn align16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// A moving test pattern rendered into a reusable [`Yuv420`] picture.
///
/// The picture is coded at the display size rounded up to multiples of 16 (the extra rows or
/// columns are black); encoders crop it back to [`TestPattern::width`] x
/// [`TestPattern::height`].
#[derive(Clone, Debug)]
pub struct TestPattern {
    width: usize,
    height: usize,
    scale: usize,
    bars_height: usize,
    line_y: [usize; 2],
    background: Yuv420,
    pic: Yuv420,
    text: String,
}

impl Default for TestPattern {
    fn default() -> Self {
        TestPattern::new(DEFAULT_WIDTH, DEFAULT_HEIGHT)
    }
}

impl TestPattern {
    /// A pattern of `width` x `height` display pixels (both even, at least 64x64).
    pub fn new(width: usize, height: usize) -> Self {
        assert!(
            width >= 64 && height >= 64 && width.is_multiple_of(2) && height.is_multiple_of(2),
            "test pattern size {width}x{height}: must be even and at least 64x64"
        );
        let coded_w = align16(width);
        let coded_h = align16(height);
        let scale = (height / 90).min(width / 102).max(1);
        let bars_height = (height * 2 / 3) / 16 * 16;
        let lh = font::text_height(scale);
        let gap = (height - bars_height).saturating_sub(2 * lh) / 3;
        let y1 = ((bars_height + gap) / 16 * 16).max(bars_height);
        let mut y2 = (y1 + lh + gap) / 16 * 16;
        if y2 < y1 + lh + scale || y2 + lh > height {
            y2 = y1 + lh + gap;
        }
        let mut background = Yuv420::new(coded_w, coded_h, BLACK, GREY_C, GREY_C);
        let mut x0 = 0;
        for (i, &(y, u, v)) in BARS.iter().enumerate() {
            let x1 = if i + 1 == BARS.len() {
                width
            } else {
                ((i + 1) * width / BARS.len() + 8) / 16 * 16
            };
            fill_rect(&mut background, x0, 0, x1 - x0, bars_height, (y, u, v));
            x0 = x1;
        }
        let pic = background.clone();
        TestPattern {
            width,
            height,
            scale,
            bars_height,
            line_y: [y1, y2],
            background,
            pic,
            text: String::with_capacity(32),
        }
    }

    /// The same pattern with `label` (e.g. the stream name) drawn once at the top left, in
    /// white on a black box; letters, digits, space and `: . - _ / #` are drawn, lower case
    /// as upper case, anything else as `?`.
    pub fn with_label(mut self, label: &str) -> Self {
        let chars = label.chars().count();
        if chars == 0 {
            return self;
        }
        let margin = 16;
        let mut scale = self.scale;
        while scale > 1 && font::text_width(chars, scale) + 2 * margin > self.width {
            scale -= 1;
        }
        let pad = (2 * scale).clamp(2, 12) & !1;
        let w = (font::text_width(chars, scale) + 2 * pad).min(self.width - margin) & !1;
        let h = (font::text_height(scale) + 2 * pad) & !1;
        fill_rect(
            &mut self.background,
            margin - pad,
            margin - pad,
            w,
            h,
            (BLACK, GREY_C, GREY_C),
        );
        font::draw_text(
            &mut self.background,
            margin,
            margin,
            label,
            scale,
            WHITE,
            None,
        );
        self.pic = self.background.clone();
        self
    }

    /// Display width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Display height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Coded width (display width rounded up to a multiple of 16).
    pub fn coded_width(&self) -> usize {
        self.pic.width
    }

    /// Coded height (display height rounded up to a multiple of 16).
    pub fn coded_height(&self) -> usize {
        self.pic.height
    }

    /// The moving block of frame `frame_no` as (x, y, side) in pixels; it moves right by a
    /// few pixels every frame and wraps around.
    pub fn block_rect(&self, frame_no: u64) -> (usize, usize, usize) {
        let side = 8 * self.scale;
        let step = 2 * self.scale as u64;
        let span = (self.width - side) as u64;
        let x = ((frame_no * step) % span) as usize & !1;
        let y = (self.bars_height.saturating_sub(side) / 2) / 16 * 16;
        (x, y, side)
    }

    /// Renders frame `frame_no` showing the wall clock `wall` (UTC, hh:mm:ss.mmm) and returns
    /// the picture, valid until the next call.
    pub fn render(&mut self, frame_no: u64, wall: SystemTime) -> &Yuv420 {
        self.pic.y.copy_from_slice(&self.background.y);
        self.pic.u.copy_from_slice(&self.background.u);
        self.pic.v.copy_from_slice(&self.background.v);

        let (bx, by, side) = self.block_rect(frame_no);
        fill_rect(&mut self.pic, bx, by, side, side, (WHITE, GREY_C, GREY_C));

        let x = 16.min(self.width / 16);
        self.text.clear();
        let _ = write!(self.text, "FRAME {frame_no:06}");
        font::draw_text(
            &mut self.pic,
            x,
            self.line_y[0],
            &self.text,
            self.scale,
            WHITE,
            None,
        );

        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() % 86_400;
        self.text.clear();
        let _ = write!(
            self.text,
            "{:02}:{:02}:{:02}.{:03} UTC",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            since.subsec_millis()
        );
        font::draw_text(
            &mut self.pic,
            x,
            self.line_y[1],
            &self.text,
            self.scale,
            WHITE,
            None,
        );
        &self.pic
    }
}

/// Fills a rectangle (even `x`, `y`, `w`, `h` for exact chroma) with one colour, clipped to the
/// picture.
fn fill_rect(pic: &mut Yuv420, x: usize, y: usize, w: usize, h: usize, c: (u8, u8, u8)) {
    let x1 = (x + w).min(pic.width);
    let y1 = (y + h).min(pic.height);
    if x >= x1 || y >= y1 {
        return;
    }
    for row in y..y1 {
        pic.y[row * pic.width + x..row * pic.width + x1].fill(c.0);
    }
    let cw = pic.width / 2;
    for row in y / 2..y1.div_ceil(2) {
        pic.u[row * cw + x / 2..row * cw + x1.div_ceil(2)].fill(c.1);
        pic.v[row * cw + x / 2..row * cw + x1.div_ceil(2)].fill(c.2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn default_pattern_is_640x360_coded_640x368() {
        let mut p = TestPattern::default();
        assert_eq!((p.width(), p.height()), (640, 360));
        assert_eq!((p.coded_width(), p.coded_height()), (640, 368));
        let pic = p.render(0, UNIX_EPOCH);
        assert_eq!((pic.width, pic.height), (640, 368));
    }

    #[test]
    fn block_moves_every_frame() {
        let p = TestPattern::default();
        for n in 0..500 {
            assert_ne!(p.block_rect(n), p.block_rect(n + 1), "frame {n}");
        }
    }

    #[test]
    fn frames_differ_only_where_block_and_text_change() {
        let mut p = TestPattern::default();
        let t = UNIX_EPOCH + Duration::from_millis(3_600_000 + 1234);
        let a = p.render(7, t).clone();
        let b = p.render(7, t).clone();
        assert_eq!(a, b, "rendering is deterministic");
        let c = p.render(8, t + Duration::from_millis(40)).clone();
        let changed = a.y.iter().zip(&c.y).filter(|(x, y)| x != y).count();
        assert!(
            changed > 0 && changed < a.y.len() / 20,
            "{changed} pixels changed"
        );
    }

    #[test]
    fn label_is_drawn_in_the_background() {
        let mut plain = TestPattern::default();
        let mut labelled = TestPattern::default().with_label("front-door_2");
        let a = plain.render(0, UNIX_EPOCH).clone();
        let b = labelled.render(0, UNIX_EPOCH);
        assert_ne!(a.y[..640 * 64], b.y[..640 * 64]);
        assert_eq!(a.y[640 * 240..], b.y[640 * 240..]);
    }

    #[test]
    fn timing_helpers() {
        assert_eq!(frame_duration_90k(25), 3600);
        assert_eq!(frame_duration_90k(30), 3000);
        assert_eq!(frame_pts_90k(7, 7), 90_000);
        assert_eq!(frame_pts_90k(3, 30), 9000);
    }
}
