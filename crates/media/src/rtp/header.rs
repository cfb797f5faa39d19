//! The RTP packet header (RFC 3550 §5.1): parsing with CSRCs, header extensions and padding,
//! and writing the 12-byte fixed header that every reader puts before a shared payload.

use bytes::{BufMut, Bytes};
use thiserror::Error;

use text::hex_excerpt;

/// Length of the fixed RTP header.
pub const HEADER_LEN: usize = 12;

/// One received RTP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp in the payload's clock rate.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// The marker bit.
    pub marker: bool,
    /// The payload, without header, CSRCs, extension or padding.
    pub payload: Bytes,
}

/// What is wrong with a packet's RTP header.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RtpErrorKind {
    /// Fewer than 12 bytes.
    #[error("shorter than the 12-byte RTP header")]
    TooShort,
    /// Version field other than 2.
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    /// The CSRC list runs past the end.
    #[error("{0} CSRCs run past the end of the packet")]
    CsrcOverrun(u8),
    /// The header extension runs past the end.
    #[error("header extension runs past the end of the packet")]
    ExtensionOverrun,
    /// The padding count is zero or larger than the payload.
    #[error("invalid padding count {0}")]
    Padding(u8),
    /// The second byte looks like an RTCP packet type (200..=204): a demultiplexing mixup.
    #[error("looks like RTCP (packet type {0})")]
    LooksLikeRtcp(u8),
}

/// A packet that is not valid RTP.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("bad RTP packet ({len} bytes): {kind} (bytes {excerpt})")]
pub struct RtpError {
    /// What is wrong.
    pub kind: RtpErrorKind,
    /// The packet's length.
    pub len: usize,
    /// Hex of the packet's first bytes.
    pub excerpt: String,
}

impl RtpPacket {
    /// Parses a packet; the payload is a zero-copy slice of `data`.
    pub fn parse(data: Bytes) -> Result<RtpPacket, RtpError> {
        let err = |kind| RtpError {
            kind,
            len: data.len(),
            excerpt: hex_excerpt(&data),
        };
        if data.len() < HEADER_LEN {
            return Err(err(RtpErrorKind::TooShort));
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(err(RtpErrorKind::Version(version)));
        }
        if (200..=204).contains(&data[1]) {
            return Err(err(RtpErrorKind::LooksLikeRtcp(data[1])));
        }
        let padding = data[0] & 0x20 != 0;
        let extension = data[0] & 0x10 != 0;
        let csrc_count = data[0] & 0x0f;
        let mut start = HEADER_LEN + 4 * usize::from(csrc_count);
        if start > data.len() {
            return Err(err(RtpErrorKind::CsrcOverrun(csrc_count)));
        }
        if extension {
            let ext = data
                .get(start..start + 4)
                .ok_or_else(|| err(RtpErrorKind::ExtensionOverrun))?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
            if start > data.len() {
                return Err(err(RtpErrorKind::ExtensionOverrun));
            }
        }
        let mut end = data.len();
        if padding {
            let count = data[end - 1];
            if count == 0 || usize::from(count) > end - start {
                return Err(err(RtpErrorKind::Padding(count)));
            }
            end -= usize::from(count);
        }
        Ok(RtpPacket {
            payload_type: data[1] & 0x7f,
            marker: data[1] & 0x80 != 0,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: data.slice(start..end),
        })
    }

    /// The packet serialized with a fixed 12-byte header (no CSRCs, extension or padding).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        put_header(
            &mut out,
            self.payload_type,
            self.marker,
            self.sequence,
            self.timestamp,
            self.ssrc,
        );
        out.extend_from_slice(&self.payload);
        Bytes::from(out)
    }
}

/// Writes the fixed 12-byte RTP header (version 2, no padding, extension or CSRCs).
pub fn write_header(
    buf: &mut [u8; HEADER_LEN],
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    buf[0] = 0x80;
    buf[1] = (payload_type & 0x7f) | if marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&sequence.to_be_bytes());
    buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Appends the fixed 12-byte RTP header to `buf`.
pub fn put_header(
    buf: &mut impl BufMut,
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    let mut h = [0u8; HEADER_LEN];
    write_header(&mut h, payload_type, marker, sequence, timestamp, ssrc);
    buf.put_slice(&h);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(bytes: &[u8]) -> Result<RtpPacket, RtpError> {
        RtpPacket::parse(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn fixed_header_parses() {
        let p = pkt(&[
            0x80, 0xe0, 0x12, 0x34, 0, 1, 0x5f, 0x90, 0xde, 0xad, 0xbe, 0xef, 0x65, 0x88,
        ])
        .unwrap();
        assert_eq!(
            p,
            RtpPacket {
                payload_type: 96,
                marker: true,
                sequence: 0x1234,
                timestamp: 90000,
                ssrc: 0xdeadbeef,
                payload: Bytes::from_static(&[0x65, 0x88]),
            }
        );
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut v = vec![0xb2, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]); // 2 CSRCs
        v.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // 1-word extension
        v.extend_from_slice(&[0xaa, 0xbb]); // payload
        v.extend_from_slice(&[0, 0, 3]); // padding of 3
        let p = pkt(&v).unwrap();
        assert_eq!(&p.payload[..], &[0xaa, 0xbb]);
        assert_eq!(p.payload_type, 96);
        assert!(!p.marker);
    }

    #[test]
    fn malformed_headers_are_errors_with_excerpt() {
        let e = pkt(&[0x40; 12]).unwrap_err();
        assert_eq!(e.kind, RtpErrorKind::Version(1));
        assert_eq!(e.excerpt, ["40"; 12].join(" "));
        assert_eq!(pkt(&[0x80; 5]).unwrap_err().kind, RtpErrorKind::TooShort);
        let mut v = vec![0x83, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 1, 1, 1];
        assert_eq!(pkt(&v).unwrap_err().kind, RtpErrorKind::CsrcOverrun(3));
        v[0] = 0x90;
        assert_eq!(pkt(&v).unwrap_err().kind, RtpErrorKind::ExtensionOverrun);
        v[0] = 0xa0;
        v[15] = 9;
        assert_eq!(pkt(&v).unwrap_err().kind, RtpErrorKind::Padding(9));
        v[15] = 0;
        assert_eq!(pkt(&v).unwrap_err().kind, RtpErrorKind::Padding(0));
    }

    #[test]
    fn rtcp_on_an_rtp_channel_is_named() {
        let e = pkt(&[0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.kind, RtpErrorKind::LooksLikeRtcp(200));
    }

    #[test]
    fn write_header_matches_parse() {
        let mut h = [0u8; HEADER_LEN];
        write_header(&mut h, 8, true, 65535, 0xffff_fff0, 42);
        let p = pkt(&h).unwrap();
        assert_eq!(
            (p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc),
            (8, true, 65535, 0xffff_fff0, 42)
        );
        assert!(p.payload.is_empty());
    }
}
