//! ITU-T G.711: 16-bit linear PCM to and from A-law and µ-law.
//!
//! Linear samples are 16-bit; A-law uses their top 13 bits and µ-law their top 14 bits, and
//! decoding gives the middle of each quantization interval, as in ITU-T G.191's reference.

use crate::track::G711Law;

/// Encodes one 16-bit linear sample as A-law.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    // Negative values use the one's complement magnitude, so -1 encodes like 0 (with sign 0).
    let (sign, mag) = if pcm >= 0 {
        (0x80u8, pcm as u16)
    } else {
        (0x00u8, !pcm as u16)
    };
    let m = mag >> 4; // 0..=2047
    let code = if m < 16 {
        m as u8
    } else {
        let exponent = (15 - m.leading_zeros()) as u8 - 3; // 1..=7
        let mantissa = ((m >> (exponent - 1)) & 0x0f) as u8;
        (exponent << 4) | mantissa
    };
    (sign | code) ^ 0x55
}

/// Decodes one A-law sample to 16-bit linear.
pub fn alaw_to_linear(code: u8) -> i16 {
    let v = code ^ 0x55;
    let exponent = (v >> 4) & 0x07;
    let mantissa = i16::from(v & 0x0f);
    let mag = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        (((mantissa + 16) << 4) + 8) << (exponent - 1)
    };
    if v & 0x80 != 0 { mag } else { -mag }
}

/// The µ-law bias added to the 14-bit magnitude before finding the segment.
const ULAW_BIAS: u16 = 33;

/// Encodes one 16-bit linear sample as µ-law.
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    let (sign, mag) = if pcm >= 0 {
        (0x80u8, pcm as u16)
    } else {
        (0x00u8, !pcm as u16)
    };
    let biased = ((mag >> 2) + ULAW_BIAS).min(0x1fff); // 33..=8191
    let segment = (15 - biased.leading_zeros()) as u8 - 5; // 0..=7
    let mantissa = ((biased >> (segment + 1)) & 0x0f) as u8;
    sign | (0x7f ^ ((segment << 4) | mantissa))
}

/// Decodes one µ-law sample to 16-bit linear.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let v = !code;
    let segment = (v >> 4) & 0x07;
    let mantissa = i16::from(v & 0x0f);
    let bias = (ULAW_BIAS * 4) as i16;
    let mag = (((mantissa << 3) + bias) << segment) - bias;
    if v & 0x80 != 0 { -mag } else { mag }
}

/// Encodes 16-bit linear samples with `law`.
pub fn encode(law: G711Law, pcm: &[i16]) -> Vec<u8> {
    let f = match law {
        G711Law::A => linear_to_alaw,
        G711Law::U => linear_to_ulaw,
    };
    pcm.iter().map(|&s| f(s)).collect()
}

/// Decodes G.711 samples of `law` to 16-bit linear.
pub fn decode(law: G711Law, samples: &[u8]) -> Vec<i16> {
    let f = match law {
        G711Law::A => alaw_to_linear,
        G711Law::U => ulaw_to_linear,
    };
    samples.iter().map(|&s| f(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alaw_known_values() {
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
    }

    #[test]
    fn ulaw_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(-1), 0x7f);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xfe), 8);
    }

    #[test]
    fn every_alaw_code_round_trips() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "code {c:#04x}");
        }
    }

    #[test]
    fn every_ulaw_code_round_trips_except_negative_zero() {
        for c in 0..=255u8 {
            let expected = if c == 0x7f { 0xff } else { c };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), expected, "code {c:#04x}");
        }
    }

    #[test]
    fn encoding_is_monotonic_in_the_decoded_domain() {
        for law in [G711Law::A, G711Law::U] {
            let mut last = i16::MIN;
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let d = decode(law, &encode(law, &[s]))[0];
                assert!(d >= last, "{law:?} {s}");
                assert!(
                    (i32::from(d) - i32::from(s)).abs() <= 1100,
                    "{law:?} {s} -> {d}"
                );
                last = d;
            }
        }
    }
}
