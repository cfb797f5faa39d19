//! RTSP interleaved data (RFC 2326 §10.12: `$`, channel, 16-bit length, packet) and the bits
//! of H.264 RTP payloads the limit server needs to cut a recording at a keyframe.

use std::ops::Range;

/// One interleaved message in a byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interleaved {
    /// The channel byte.
    pub channel: u8,
    /// The whole message, `$` header included.
    pub range: Range<usize>,
}

impl Interleaved {
    /// The packet (without the 4-byte `$` header).
    pub fn packet<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.range.start + 4..self.range.end]
    }
}

/// The complete interleaved messages at the start of `data`; stops at the first incomplete
/// message or at a byte that does not start one (an RTSP message).
pub fn split(data: &[u8]) -> Vec<Interleaved> {
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() >= pos + 4 && data[pos] == b'$' {
        let len = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        if data.len() < pos + 4 + len {
            break;
        }
        out.push(Interleaved {
            channel: data[pos + 1],
            range: pos..pos + 4 + len,
        });
        pos += 4 + len;
    }
    out
}

/// True if this H.264 RTP payload (RFC 6184) begins an IDR picture or its parameter sets:
/// a single SPS/PPS/IDR NAL unit, a STAP-A whose first unit is one, or the first fragment of
/// an IDR FU-A.
pub fn h264_payload_starts_keyframe(payload: &[u8]) -> bool {
    let key = |t: u8| matches!(t, 5 | 7 | 8);
    match payload.first().map(|b| b & 0x1f) {
        Some(24) => payload.get(3).is_some_and(|b| key(b & 0x1f)),
        Some(28) => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == 5),
        Some(t) => key(t),
        None => false,
    }
}

/// The RTP header fields the limit server rewrites: sequence number and timestamp.
pub fn rtp_seq_ts(packet: &[u8]) -> Option<(u16, u32)> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    Some((
        u16::from_be_bytes([packet[2], packet[3]]),
        u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
    ))
}

/// The payload of an RTP packet without CSRCs or extension (padding left in place).
pub fn rtp_payload(packet: &[u8]) -> Option<&[u8]> {
    if packet.len() < 12 {
        return None;
    }
    let mut start = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(start..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    packet.get(start..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_stops_at_incomplete_message() {
        let data = [b'$', 0, 0, 2, 9, 9, b'$', 1, 0, 1, 7, b'$', 0, 0, 5, 1];
        let msgs = split(&data);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].packet(&data), &[9, 9]);
        assert_eq!(msgs[1].channel, 1);
        assert_eq!(msgs[1].range, 6..11);
    }

    #[test]
    fn keyframe_starts_are_recognized() {
        assert!(h264_payload_starts_keyframe(&[0x67, 0x42]));
        assert!(h264_payload_starts_keyframe(&[0x65, 0x88]));
        assert!(!h264_payload_starts_keyframe(&[0x41, 0x9a]));
        assert!(h264_payload_starts_keyframe(&[0x78, 0x00, 0x10, 0x67]));
        assert!(h264_payload_starts_keyframe(&[0x7c, 0x85]));
        assert!(!h264_payload_starts_keyframe(&[0x7c, 0x05]));
        assert!(!h264_payload_starts_keyframe(&[0x7c, 0x81]));
    }

    #[test]
    fn rtp_fields_and_payload() {
        let mut p = vec![0x80, 96, 0x12, 0x34, 0, 0, 0x01, 0x00, 1, 2, 3, 4];
        p.extend_from_slice(&[0x65, 1]);
        assert_eq!(rtp_seq_ts(&p), Some((0x1234, 256)));
        assert_eq!(rtp_payload(&p), Some(&[0x65, 1][..]));
    }
}
