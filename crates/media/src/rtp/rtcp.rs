//! Minimal RTCP (RFC 3550 §6): building sender reports and SDES CNAME items, and listing the
//! packets of a compound RTCP packet for diagnostics.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use text::hex_excerpt;

/// Sender report packet type.
pub const SR: u8 = 200;
/// Receiver report packet type.
pub const RR: u8 = 201;
/// Source description packet type.
pub const SDES: u8 = 202;
/// Goodbye packet type.
pub const BYE: u8 = 203;
/// Application-defined packet type.
pub const APP: u8 = 204;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A wall-clock time as a 64-bit NTP timestamp (32.32 fixed point seconds since 1900).
pub fn ntp_timestamp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// A sender report without report blocks.
pub fn sender_report(ssrc: u32, ntp: u64, rtp_ts: u32, packets: u32, octets: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(28);
    b.put_u8(0x80);
    b.put_u8(SR);
    b.put_u16(6); // length in 32-bit words minus one
    b.put_u32(ssrc);
    b.put_u64(ntp);
    b.put_u32(rtp_ts);
    b.put_u32(packets);
    b.put_u32(octets);
    b.freeze()
}

/// An SDES packet with one chunk holding a CNAME item (truncated to 255 bytes).
pub fn sdes_cname(ssrc: u32, cname: &str) -> Bytes {
    let name = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC, type, length, text, then at least one zero byte, padded to a 32-bit boundary.
    let chunk_len = (4 + 2 + name.len() + 1).div_ceil(4) * 4;
    let mut b = BytesMut::with_capacity(4 + chunk_len);
    b.put_u8(0x81);
    b.put_u8(SDES);
    b.put_u16((chunk_len / 4) as u16);
    b.put_u32(ssrc);
    b.put_u8(1); // CNAME
    b.put_u8(name.len() as u8);
    b.put_slice(name);
    b.put_bytes(0, chunk_len - 6 - name.len());
    b.freeze()
}

/// One packet of a compound RTCP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcpPacketInfo {
    /// Packet type (200 SR, 201 RR, 202 SDES, 203 BYE, 204 APP...).
    pub packet_type: u8,
    /// The 5-bit count field (report blocks, SDES chunks, BYE sources...).
    pub count: u8,
    /// The first SSRC of the packet, if it has one.
    pub ssrc: Option<u32>,
    /// Length in bytes, header included.
    pub length: usize,
}

/// A compound RTCP packet that does not parse.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("bad RTCP packet at offset {offset}: {reason} (bytes {excerpt})")]
pub struct RtcpError {
    /// Offset of the offending packet in the compound packet.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
    /// Hex of the offending packet's first bytes.
    pub excerpt: String,
}

/// Lists the packets of a compound RTCP packet.
pub fn parse_compound(data: &[u8]) -> Result<Vec<RtcpPacketInfo>, RtcpError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let err = |reason| RtcpError {
            offset: pos,
            reason,
            excerpt: hex_excerpt(rest),
        };
        if rest.len() < 4 {
            return Err(err("shorter than the 4-byte RTCP header"));
        }
        if rest[0] >> 6 != 2 {
            return Err(err("version is not 2"));
        }
        let length = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        if length > rest.len() {
            return Err(err("length runs past the end"));
        }
        let count = rest[0] & 0x1f;
        let has_ssrc = count != 0 || (rest[1] != BYE && rest[1] != SDES);
        let ssrc = (has_ssrc && length >= 8)
            .then(|| u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]));
        out.push(RtcpPacketInfo {
            packet_type: rest[1],
            count,
            ssrc,
            length,
        });
        pos += length;
    }
    if out.is_empty() {
        return Err(RtcpError {
            offset: 0,
            reason: "empty",
            excerpt: String::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_report_layout() {
        let sr = sender_report(0x1122_3344, 0x0102_0304_0506_0708, 90000, 10, 1000);
        assert_eq!(sr.len(), 28);
        assert_eq!(&sr[..8], &[0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44]);
        assert_eq!(&sr[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&sr[16..20], &90000u32.to_be_bytes());
    }

    #[test]
    fn compound_sr_and_sdes_are_listed() {
        let mut c = sender_report(7, 0, 0, 0, 0).to_vec();
        c.extend_from_slice(&sdes_cname(7, "camgate"));
        let list = parse_compound(&c).unwrap();
        assert_eq!(
            list,
            vec![
                RtcpPacketInfo {
                    packet_type: SR,
                    count: 0,
                    ssrc: Some(7),
                    length: 28
                },
                RtcpPacketInfo {
                    packet_type: SDES,
                    count: 1,
                    ssrc: Some(7),
                    length: 20
                },
            ]
        );
    }

    #[test]
    fn sdes_is_padded_to_words() {
        for n in 0..12 {
            let s = sdes_cname(1, &"x".repeat(n));
            assert_eq!(s.len() % 4, 0);
            assert_eq!(parse_compound(&s).unwrap()[0].length, s.len());
        }
    }

    #[test]
    fn malformed_compound_is_an_error() {
        assert!(parse_compound(&[]).is_err());
        assert!(parse_compound(&[0x80, 200, 0]).is_err());
        assert!(parse_compound(&[0x80, 200, 0, 6, 0, 0, 0, 0]).is_err());
        let e = parse_compound(&[0x40, 201, 0, 0]).unwrap_err();
        assert_eq!(e.reason, "version is not 2");
        assert_eq!(e.excerpt, "40 c9 00 00");
    }

    #[test]
    fn ntp_timestamp_of_unix_epoch() {
        assert_eq!(ntp_timestamp(UNIX_EPOCH), NTP_UNIX_OFFSET << 32);
    }
}
