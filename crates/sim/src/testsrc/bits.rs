//! `BitWriter`: an MSB-first bit writer with Exp-Golomb codes (ITU-T H.265 §9.2) for building
//! parameter sets, slice headers and AAC access units, and NAL emulation prevention (§7.4.2).

/// Writes bits most significant first into a growing byte buffer.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Pending bits, right-aligned; only the low `pending` bits are meaningful.
    acc: u64,
    /// Number of pending bits in `acc` (always below 8 between calls).
    pending: u32,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        BitWriter::default()
    }

    /// An empty writer with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(bytes),
            acc: 0,
            pending: 0,
        }
    }

    /// Appends the low `n` bits of `value` (`n` ≤ 32), most significant first.
    pub fn u(&mut self, n: u32, value: u32) {
        debug_assert!(n <= 32);
        if n == 0 {
            return;
        }
        let v = u64::from(value) & ((1u64 << n) - 1);
        self.acc = (self.acc << n) | v;
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.buf.push((self.acc >> self.pending) as u8);
        }
    }

    /// Appends one bit.
    pub fn flag(&mut self, bit: bool) {
        self.u(1, u32::from(bit));
    }

    /// Appends an unsigned Exp-Golomb code, ue(v).
    pub fn ue(&mut self, value: u32) {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        // len-1 zeros, then the len bits of v.
        self.u(len - 1, 0);
        if len > 32 {
            self.u(len - 32, (v >> 32) as u32);
            self.u(32, v as u32);
        } else {
            self.u(len, v as u32);
        }
    }

    /// Appends a signed Exp-Golomb code, se(v).
    pub fn se(&mut self, value: i32) {
        let k = if value > 0 {
            (i64::from(value) * 2 - 1) as u32
        } else {
            (-i64::from(value) * 2) as u32
        };
        self.ue(k);
    }

    /// True when the next bit starts a byte.
    pub fn is_byte_aligned(&self) -> bool {
        self.pending == 0
    }

    /// Number of bits written so far.
    pub fn bit_len(&self) -> usize {
        self.buf.len() * 8 + self.pending as usize
    }

    /// Appends zero bits up to the next byte boundary.
    pub fn align_zero(&mut self) {
        if self.pending > 0 {
            self.u(8 - self.pending, 0);
        }
    }

    /// Appends rbsp_trailing_bits(): a one bit, then zero bits up to the byte boundary.
    pub fn trailing_bits(&mut self) {
        self.flag(true);
        self.align_zero();
    }

    /// Appends whole bytes; the writer must be byte aligned.
    pub fn bytes(&mut self, data: &[u8]) {
        assert!(
            self.is_byte_aligned(),
            "BitWriter::bytes at a non-aligned position"
        );
        self.buf.extend_from_slice(data);
    }

    /// The bytes written so far; the writer must be byte aligned.
    pub fn as_bytes(&self) -> &[u8] {
        assert!(
            self.is_byte_aligned(),
            "BitWriter::as_bytes at a non-aligned position"
        );
        &self.buf
    }

    /// The written bytes; the writer must be byte aligned.
    pub fn into_bytes(self) -> Vec<u8> {
        assert!(
            self.is_byte_aligned(),
            "BitWriter::into_bytes at a non-aligned position"
        );
        self.buf
    }

    /// Empties the writer, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.acc = 0;
        self.pending = 0;
    }
}

/// Appends `rbsp` to `out` with emulation prevention: a 0x03 byte is inserted after every two
/// zero bytes that are followed by a byte of 0x00..=0x03 (H.264/H.265 §7.4.2).
pub fn escape_rbsp_into(rbsp: &[u8], out: &mut Vec<u8>) {
    out.reserve(rbsp.len() + rbsp.len() / 64 + 4);
    let mut start = 0;
    let mut zeros = 0u32;
    for (i, &b) in rbsp.iter().enumerate() {
        if zeros >= 2 && b <= 3 {
            out.extend_from_slice(&rbsp[start..i]);
            out.push(3);
            start = i;
            zeros = 0;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
    }
    out.extend_from_slice(&rbsp[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_fixed_and_exp_golomb_codes_msb_first() {
        let mut w = BitWriter::new();
        w.u(3, 0b101);
        w.ue(0); // 1
        w.ue(3); // 00100
        w.se(-1); // ue(2) = 011
        w.trailing_bits();
        // 101 1 00100 011 1 + 000 -> 1011_0010 0011_1000
        assert_eq!(w.into_bytes(), vec![0b1011_0010, 0b0011_1000]);
    }

    #[test]
    fn escapes_start_code_emulation() {
        let mut out = Vec::new();
        escape_rbsp_into(&[0, 0, 1, 0, 0, 0, 0, 0, 4, 0, 0], &mut out);
        assert_eq!(out, vec![0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 0, 4, 0, 0]);
    }
}
