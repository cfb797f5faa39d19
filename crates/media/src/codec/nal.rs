//! NAL unit framing shared by H.264 and H.265: the 4-byte length-prefixed ("AVC") form that
//! frames carry, and the Annex B start-code form that files and some cameras use.

use bytes::{BufMut, Bytes, BytesMut};

/// Iterates the NAL units of an AVC-format payload (4-byte big-endian length prefixes).
/// Stops at the first truncated length or unit; `AvcIter::truncated` tells if it did.
pub struct AvcIter<'a> {
    data: &'a [u8],
    truncated: bool,
}

impl<'a> AvcIter<'a> {
    /// Iterate `data`.
    pub fn new(data: &'a [u8]) -> Self {
        AvcIter {
            data,
            truncated: false,
        }
    }

    /// True if iteration stopped on a malformed length prefix.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<'a> Iterator for AvcIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.data.is_empty() {
            return None;
        }
        if self.data.len() < 4 {
            self.truncated = true;
            self.data = &[];
            return None;
        }
        let len =
            u32::from_be_bytes([self.data[0], self.data[1], self.data[2], self.data[3]]) as usize;
        if len > self.data.len() - 4 {
            self.truncated = true;
            self.data = &[];
            return None;
        }
        let nal = &self.data[4..4 + len];
        self.data = &self.data[4 + len..];
        Some(nal)
    }
}

/// The NAL units of an AVC-format payload as zero-copy slices of `data`.
pub fn avc_units(data: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while data.len() >= pos + 4 {
        let len =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        if len > data.len() - pos - 4 {
            break;
        }
        out.push(data.slice(pos + 4..pos + 4 + len));
        pos += 4 + len;
    }
    out
}

/// Builds an AVC-format payload from NAL units.
pub fn avc_from_units<'a>(units: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    for u in units {
        out.put_u32(u.len() as u32);
        out.put_slice(u);
    }
    out.freeze()
}

/// Splits an Annex B byte stream (00 00 01 / 00 00 00 01 start codes) into NAL units.
/// Bytes before the first start code are ignored; trailing zero bytes of a unit are trimmed.
pub fn annexb_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &s) in starts.iter().enumerate() {
        let mut end = if n + 1 < starts.len() {
            starts[n + 1] - 3
        } else {
            data.len()
        };
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            out.push(&data[s..end]);
        }
    }
    out
}

/// Converts Annex B to AVC format.
pub fn annexb_to_avc(data: &[u8]) -> Bytes {
    avc_from_units(annexb_units(data))
}

/// Appends the NAL units of an AVC-format payload to `out` in Annex B form (4-byte start codes).
pub fn avc_to_annexb_into(data: &[u8], out: &mut Vec<u8>) {
    for nal in AvcIter::new(data) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_and_annexb_round_trip() {
        let units: [&[u8]; 3] = [&[0x67, 1, 2, 3], &[0x68, 9], &[0x65, 0, 0, 5, 7]];
        let avc = avc_from_units(units);
        let mut annexb = Vec::new();
        avc_to_annexb_into(&avc, &mut annexb);
        assert_eq!(annexb_units(&annexb), units.to_vec());
        assert_eq!(annexb_to_avc(&annexb), avc);
        assert_eq!(avc_units(&avc).len(), 3);
    }

    #[test]
    fn avc_iter_reports_truncation() {
        let mut it = AvcIter::new(&[0, 0, 0, 9, 1, 2]);
        assert!(it.next().is_none());
        assert!(it.truncated());
    }

    #[test]
    fn annexb_accepts_three_byte_start_codes_and_leading_garbage() {
        let data = [0xff, 0, 0, 1, 0x67, 5, 0, 0, 0, 1, 0x68, 6, 0];
        assert_eq!(annexb_units(&data), vec![&[0x67u8, 5][..], &[0x68, 6][..]]);
    }
}
