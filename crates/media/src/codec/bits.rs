//! Bit-level reading of H.264/H.265 parameter sets: emulation-prevention removal and an
//! MSB-first bit reader with Exp-Golomb codes (ITU-T H.264 §7.2, §9.1).

use thiserror::Error;

/// Why a parameter set could not be parsed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SpsError {
    /// The NAL unit is not a sequence parameter set (its NAL unit type is given).
    #[error("not a sequence parameter set (NAL unit type {0})")]
    NotSps(u8),
    /// The bitstream ended before the syntax element named here.
    #[error("parameter set truncated while reading {0}")]
    Truncated(&'static str),
    /// A syntax element has a value outside what the standard allows.
    #[error("parameter set field {0} out of range")]
    OutOfRange(&'static str),
}

/// Removes emulation prevention bytes (the 0x03 in 00 00 03) from a NAL unit body, giving
/// its raw byte sequence payload (RBSP).
pub fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
        out.push(b);
    }
    out
}

/// An MSB-first bit reader over an RBSP.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reads `data` from its first bit.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits not yet read.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// One bit; `what` names the field for the error.
    pub fn bit(&mut self, what: &'static str) -> Result<bool, SpsError> {
        let byte = *self
            .data
            .get(self.pos / 8)
            .ok_or(SpsError::Truncated(what))?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned integer.
    pub fn bits(&mut self, n: u32, what: &'static str) -> Result<u32, SpsError> {
        debug_assert!(n <= 32);
        if self.remaining() < n as usize {
            return Err(SpsError::Truncated(what));
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit(what)?);
        }
        Ok(v as u32)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), SpsError> {
        if self.remaining() < n {
            return Err(SpsError::Truncated(what));
        }
        self.pos += n;
        Ok(())
    }

    /// An unsigned Exp-Golomb code, ue(v).
    pub fn ue(&mut self, what: &'static str) -> Result<u32, SpsError> {
        let mut zeros = 0u32;
        while !self.bit(what)? {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError::OutOfRange(what));
            }
        }
        let rest = u64::from(self.bits(zeros, what)?);
        let v = (1u64 << zeros) - 1 + rest;
        u32::try_from(v).map_err(|_| SpsError::OutOfRange(what))
    }

    /// A signed Exp-Golomb code, se(v).
    pub fn se(&mut self, what: &'static str) -> Result<i32, SpsError> {
        let k = i64::from(self.ue(what)?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| SpsError::OutOfRange(what))
    }

    /// A ue(v) that must not exceed `max`.
    pub fn ue_max(&mut self, max: u32, what: &'static str) -> Result<u32, SpsError> {
        let v = self.ue(what)?;
        if v > max {
            return Err(SpsError::OutOfRange(what));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbsp_removes_emulation_prevention_bytes() {
        assert_eq!(
            rbsp(&[1, 0, 0, 3, 1, 0, 0, 3, 0, 3]),
            vec![1, 0, 0, 1, 0, 0, 0, 3]
        );
    }

    #[test]
    fn exp_golomb_codes_decode() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        let v: Vec<u32> = (0..5).map(|_| r.ue("x").unwrap()).collect();
        assert_eq!(v, vec![0, 1, 2, 3, 4]);
        let mut r = BitReader::new(&data);
        let s: Vec<i32> = (0..5).map(|_| r.se("x").unwrap()).collect();
        assert_eq!(s, vec![0, 1, -1, 2, -2]);
    }

    #[test]
    fn reader_reports_truncation() {
        let mut r = BitReader::new(&[0, 0]);
        assert_eq!(r.ue("field"), Err(SpsError::Truncated("field")));
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.bits(9, "f"), Err(SpsError::Truncated("f")));
    }
}

/// Test helpers: an MSB-first bit writer with Exp-Golomb codes, to build parameter sets.
#[cfg(test)]
pub(crate) mod test_util {
    /// Builds a bitstream MSB first.
    #[derive(Default)]
    pub(crate) struct BitWriter {
        bytes: Vec<u8>,
        nbits: usize,
    }

    impl BitWriter {
        pub(crate) fn bit(&mut self, b: bool) {
            if self.nbits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if b {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.nbits % 8);
            }
            self.nbits += 1;
        }

        pub(crate) fn bits(&mut self, n: u32, v: u64) {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1 == 1);
            }
        }

        pub(crate) fn ue(&mut self, v: u32) {
            let x = u64::from(v) + 1;
            let len = 64 - x.leading_zeros();
            self.bits(len - 1, 0);
            self.bits(len, x);
        }

        pub(crate) fn se(&mut self, v: i32) {
            let k = if v > 0 { 2 * v - 1 } else { -2 * v };
            self.ue(k as u32);
        }

        /// The bytes with an RBSP stop bit, and emulation prevention applied.
        pub(crate) fn finish(mut self) -> Vec<u8> {
            self.bit(true);
            let mut out = Vec::new();
            let mut zeros = 0;
            for b in self.bytes {
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                out.push(b);
            }
            out
        }
    }
}
