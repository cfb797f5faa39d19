//! What H.264 (RFC 6184) and H.265 (RFC 7798) packetization have in common: single NAL unit
//! packets, aggregation of small units, fragmentation of large ones, and the camera quirks
//! the depacketizers tolerate.

use bytes::{BufMut, Bytes, BytesMut};

use super::RtpChunk;
use super::error::PacketizeErrorKind;
use crate::codec::nal::AvcIter;

/// Camera quirks the H.264/H.265 depacketizers tolerate; each is a policy a caller can turn off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NalQuirks {
    /// Split single NAL unit payloads that contain Annex B start codes (00 00 01): some
    /// cameras put a start code before the unit, or several units in one packet.
    pub strip_start_codes: bool,
    /// If a fragmented unit's NAL type changes between fragments, keep the type of the first
    /// fragment instead of dropping the access unit.
    pub keep_first_fu_type: bool,
}

impl Default for NalQuirks {
    fn default() -> Self {
        NalQuirks {
            strip_start_codes: true,
            keep_first_fu_type: true,
        }
    }
}

/// The payload-format specifics of one NAL-based codec.
pub(crate) struct NalFormat {
    /// NAL unit header length (1 for H.264, 2 for H.265); also the aggregation header length.
    pub header_len: usize,
    /// Payload header of an aggregation packet (STAP-A / AP) holding `units`.
    pub aggregation_header: fn(&[Bytes]) -> Vec<u8>,
    /// Payload header (indicator + FU header) of a fragment of `nal`.
    pub fu_header: fn(nal: &[u8], start: bool, end: bool) -> Vec<u8>,
}

impl NalFormat {
    /// Bytes of payload header in each fragment.
    fn fu_overhead(&self) -> usize {
        self.header_len + 1
    }
}

/// Packetizes an AVC-format access unit: consecutive units that fit together go in one
/// aggregation packet, units that fit alone go in single NAL unit packets, and larger ones
/// are fragmented. Empty units are skipped. The marker bit is set on the last packet.
pub(crate) fn packetize_nals(
    data: &Bytes,
    max_payload: usize,
    fmt: &NalFormat,
) -> Result<Vec<RtpChunk>, PacketizeErrorKind> {
    let min = fmt.fu_overhead() + 1;
    if max_payload < min {
        return Err(PacketizeErrorKind::MaxPayloadTooSmall { max_payload, min });
    }
    let mut iter = AvcIter::new(data);
    let mut units = Vec::new();
    for nal in iter.by_ref() {
        if nal.is_empty() {
            continue;
        }
        if nal.len() < fmt.header_len {
            return Err(PacketizeErrorKind::Malformed(format!(
                "NAL unit of {} byte(s) is shorter than its header",
                nal.len()
            )));
        }
        units.push(data.slice_ref(nal));
    }
    if iter.truncated() {
        return Err(PacketizeErrorKind::Malformed(
            "truncated 4-byte NAL unit length prefix or unit".into(),
        ));
    }
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut size = fmt.header_len;
        let mut j = i;
        while j < units.len()
            && units[j].len() <= 0xffff
            && size + 2 + units[j].len() <= max_payload
        {
            size += 2 + units[j].len();
            j += 1;
        }
        if j - i >= 2 {
            let mut head = BytesMut::with_capacity(size);
            head.put_slice(&(fmt.aggregation_header)(&units[i..j]));
            for u in &units[i..j] {
                head.put_u16(u.len() as u16);
                head.put_slice(u);
            }
            chunks.push(RtpChunk {
                head: head.freeze(),
                body: Bytes::new(),
                marker: false,
            });
            i = j;
            continue;
        }
        let nal = &units[i];
        if nal.len() <= max_payload {
            chunks.push(RtpChunk {
                head: Bytes::new(),
                body: nal.clone(),
                marker: false,
            });
        } else {
            let body = nal.slice(fmt.header_len..);
            let step = max_payload - fmt.fu_overhead();
            let mut off = 0;
            while off < body.len() {
                let end = (off + step).min(body.len());
                chunks.push(RtpChunk {
                    head: Bytes::from((fmt.fu_header)(nal, off == 0, end == body.len())),
                    body: body.slice(off..end),
                    marker: false,
                });
                off = end;
            }
        }
        i += 1;
    }
    if let Some(last) = chunks.last_mut() {
        last.marker = true;
    }
    Ok(chunks)
}

/// The NAL units of a single NAL unit payload under the `strip_start_codes` quirk: the
/// payload itself, or the pieces between Annex B start codes when it contains any.
/// Valid NAL units never contain 00 00 01, so such a sequence is always a start code.
pub(crate) fn split_start_codes(payload: &Bytes) -> Vec<Bytes> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= payload.len() {
        if payload[i] == 0 && payload[i + 1] == 0 && payload[i + 2] == 1 {
            starts.push(i);
            i += 3;
        } else {
            i += 1;
        }
    }
    if starts.is_empty() {
        return vec![payload.clone()];
    }
    let mut out = Vec::new();
    let mut from = 0;
    for (n, &s) in starts.iter().enumerate() {
        if n > 0 || s > 0 {
            push_trimmed(payload, from, s, &mut out);
        }
        from = s + 3;
    }
    push_trimmed(payload, from, payload.len(), &mut out);
    out
}

/// Pushes `payload[from..to]` without trailing zero bytes (the first byte of a 4-byte start
/// code, or trailing_zero_8bits), if anything is left.
fn push_trimmed(payload: &Bytes, from: usize, mut to: usize, out: &mut Vec<Bytes>) {
    while to > from && payload[to - 1] == 0 {
        to -= 1;
    }
    if to > from {
        out.push(payload.slice(from..to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_codes_split_a_payload() {
        let p = Bytes::from_static(&[0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3]);
        let units = split_start_codes(&p);
        assert_eq!(
            units,
            vec![
                Bytes::from_static(&[0x67, 1]),
                Bytes::from_static(&[0x68, 2]),
                Bytes::from_static(&[0x65, 3])
            ]
        );
    }

    #[test]
    fn payload_without_start_codes_is_one_unit() {
        let p = Bytes::from_static(&[0x65, 0, 0, 3, 1, 7]);
        assert_eq!(split_start_codes(&p), vec![p.clone()]);
    }

    #[test]
    fn unit_before_an_embedded_start_code_is_kept() {
        let p = Bytes::from_static(&[0x67, 9, 0, 0, 1, 0x68, 8]);
        assert_eq!(
            split_start_codes(&p),
            vec![
                Bytes::from_static(&[0x67, 9]),
                Bytes::from_static(&[0x68, 8])
            ]
        );
    }
}
