//! A tiny built-in 5x7 bitmap font (digits, A-Z and a few signs) and a scaled text renderer
//! for the luma plane of a [`Yuv420`] picture.

use super::picture::Yuv420;

/// Width of a glyph in font pixels.
pub const GLYPH_WIDTH: usize = 5;
/// Height of a glyph in font pixels.
pub const GLYPH_HEIGHT: usize = 7;
/// Horizontal advance of one character in font pixels (glyph plus one column of spacing).
pub const ADVANCE: usize = GLYPH_WIDTH + 1;

/// One glyph: 7 rows, the low 5 bits of each row are the columns, most significant bit left.
pub type Glyph = [u8; GLYPH_HEIGHT];

const DIGITS: [Glyph; 10] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e], // 0
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e], // 1
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f], // 2
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e], // 3
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02], // 4
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e], // 5
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e], // 6
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e], // 8
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c], // 9
];

const LETTERS: [Glyph; 26] = [
    [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11], // A
    [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e], // B
    [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e], // C
    [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c], // D
    [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f], // E
    [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10], // F
    [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f], // G
    [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11], // H
    [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e], // I
    [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c], // J
    [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], // K
    [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f], // L
    [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11], // M
    [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11], // N
    [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e], // O
    [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10], // P
    [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d], // Q
    [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11], // R
    [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e], // S
    [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // T
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e], // U
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04], // V
    [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a], // W
    [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11], // X
    [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04], // Y
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f], // Z
];

/// The glyph of `c`: digits, letters (lower case drawn as upper case), space and `: . - _ / #`;
/// anything else is drawn as `?`.
pub fn glyph(c: char) -> Glyph {
    match c {
        '0'..='9' => DIGITS[c as usize - '0' as usize],
        'A'..='Z' => LETTERS[c as usize - 'A' as usize],
        'a'..='z' => LETTERS[c as usize - 'a' as usize],
        ' ' => [0; GLYPH_HEIGHT],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        '-' => [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        '#' => [0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a],
        _ => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

/// Width in pixels of `chars` characters drawn at `scale` (no trailing spacing column).
pub fn text_width(chars: usize, scale: usize) -> usize {
    if chars == 0 {
        0
    } else {
        (chars * ADVANCE - 1) * scale
    }
}

/// Height in pixels of one line of text drawn at `scale`.
pub fn text_height(scale: usize) -> usize {
    GLYPH_HEIGHT * scale
}

/// Draws `text` into the luma plane with its top-left corner at (`x`, `y`), each font pixel
/// a `scale`x`scale` square of value `fg`; other pixels of each character cell are set to
/// `bg` if given. Characters are clipped at the picture edges; chroma is left alone.
pub fn draw_text(
    pic: &mut Yuv420,
    x: usize,
    y: usize,
    text: &str,
    scale: usize,
    fg: u8,
    bg: Option<u8>,
) {
    let scale = scale.max(1);
    let width = pic.width;
    let height = pic.height;
    let count = text.chars().count();
    for (i, c) in text.chars().enumerate() {
        let g = glyph(c);
        let cx = x + i * ADVANCE * scale;
        if cx >= width {
            break;
        }
        // The cell includes the spacing column, except after the last character.
        let cols = if i + 1 == count { GLYPH_WIDTH } else { ADVANCE };
        for (row, bits) in g.iter().enumerate() {
            for sy in 0..scale {
                let py = y + row * scale + sy;
                if py >= height {
                    break;
                }
                let line = &mut pic.y[py * width..(py + 1) * width];
                for col in 0..cols {
                    let on = col < GLYPH_WIDTH && bits & (0x10 >> col) != 0;
                    let value = if on {
                        fg
                    } else if let Some(b) = bg {
                        b
                    } else {
                        continue;
                    };
                    let px = cx + col * scale;
                    if px >= width {
                        break;
                    }
                    let end = (px + scale).min(width);
                    line[px..end].fill(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_glyph_fits_five_columns() {
        for c in ('0'..='9').chain('A'..='Z').chain(":.-_/# ?".chars()) {
            assert!(glyph(c).iter().all(|r| r & !0x1f == 0), "{c}");
        }
    }

    #[test]
    fn lower_case_is_drawn_as_upper_case_and_unknown_as_question_mark() {
        assert_eq!(glyph('q'), glyph('Q'));
        assert_eq!(glyph('~'), glyph('?'));
        assert_ne!(glyph('0'), glyph('O'));
    }

    #[test]
    fn draw_text_sets_scaled_pixels_and_clips() {
        let mut pic = Yuv420::new(32, 16, 16, 128, 128);
        draw_text(&mut pic, 0, 0, "1", 2, 235, None);
        // Row 0 of '1' is 0x04: column 2 on -> pixels 4..6 of rows 0..2.
        assert_eq!(&pic.y[0..8], &[16, 16, 16, 16, 235, 235, 16, 16]);
        assert_eq!(&pic.y[32..40], &[16, 16, 16, 16, 235, 235, 16, 16]);
        // Clipped at the right and bottom edges without panicking.
        draw_text(&mut pic, 28, 10, "888", 3, 200, Some(0));
        assert_eq!(pic.y[15 * 32 + 31], 0);
    }
}
