//! AAC over RTP (RFC 3640 mpeg4-generic, mode AAC-hbr: sizelength 13, indexlength 3,
//! indexdeltalength 3). The packetizer sends one access unit per packet, fragmenting large
//! ones; the depacketizer accepts several access units per packet and fragmented ones.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DepacketizeError, DepacketizeErrorKind, PacketizeErrorKind};
use super::seq::{SeqStatus, SeqTracker, TimestampUnwrapper};
use super::{Depacketizer, RtpChunk, RtpPacket};
use crate::Frame;

/// Bits in one AAC-hbr AU-header: 13 bits of size, 3 of index (delta).
const AU_HEADER_BITS: usize = 16;
/// Largest access unit a 13-bit AU-size can describe.
pub const MAX_AU_SIZE: usize = (1 << 13) - 1;
/// Payload bytes before the access unit data: AU-headers-length plus one AU-header.
const HEAD_LEN: usize = 4;

/// Packetizes one raw AAC access unit: one packet, or fragments of it with the marker bit on
/// the last. Every fragment repeats the AU-header, which gives the whole unit's size.
pub(crate) fn packetize(
    data: &Bytes,
    max_payload: usize,
) -> Result<Vec<RtpChunk>, PacketizeErrorKind> {
    if max_payload <= HEAD_LEN {
        return Err(PacketizeErrorKind::MaxPayloadTooSmall {
            max_payload,
            min: HEAD_LEN + 1,
        });
    }
    if data.len() > MAX_AU_SIZE {
        return Err(PacketizeErrorKind::FrameTooLarge {
            len: data.len(),
            max_payload: MAX_AU_SIZE,
        });
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let size = data.len() as u16;
    let head = Bytes::copy_from_slice(&[
        0,
        AU_HEADER_BITS as u8,
        (size >> 5) as u8,
        ((size & 0x1f) << 3) as u8, // AU-index 0
    ]);
    let step = max_payload - HEAD_LEN;
    let mut chunks = Vec::with_capacity(data.len().div_ceil(step));
    let mut off = 0;
    while off < data.len() {
        let end = (off + step).min(data.len());
        chunks.push(RtpChunk {
            head: head.clone(),
            body: data.slice(off..end),
            marker: end == data.len(),
        });
        off = end;
    }
    Ok(chunks)
}

/// An access unit arriving in fragments.
struct Fragment {
    timestamp: u32,
    size: usize,
    data: BytesMut,
}

/// Depacketizes RFC 3640 AAC-hbr payloads into one frame per access unit.
pub(crate) struct AacDepacketizer {
    track: usize,
    /// Samples per access unit (1024, or 960).
    frame_length: u32,
    seq: SeqTracker,
    ts: TimestampUnwrapper,
    fragment: Option<Fragment>,
    out: VecDeque<Frame>,
}

impl AacDepacketizer {
    /// A depacketizer for `track` whose access units hold `frame_length` samples.
    pub(crate) fn new(track: usize, frame_length: u32) -> Self {
        AacDepacketizer {
            track,
            frame_length,
            seq: SeqTracker::default(),
            ts: TimestampUnwrapper::default(),
            fragment: None,
            out: VecDeque::new(),
        }
    }

    fn emit(&mut self, timestamp: u32, index: u32, data: Bytes) {
        let ts = self.ts.unwrap(timestamp) + i64::from(index) * i64::from(self.frame_length);
        self.out.push_back(Frame::new(self.track, ts, true, data));
    }

    /// Handles one packet's payload after the sequence checks.
    fn payload(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeErrorKind> {
        let p = &pkt.payload;
        let [hi, lo, ..] = p[..] else {
            return Err(DepacketizeErrorKind::Malformed(
                "shorter than the AU-headers-length field".into(),
            ));
        };
        let bits = usize::from(u16::from_be_bytes([hi, lo]));
        if bits == 0 || bits % AU_HEADER_BITS != 0 {
            return Err(DepacketizeErrorKind::Malformed(format!(
                "AU-headers-length {bits} bits is not a whole number of 16-bit AAC-hbr headers"
            )));
        }
        let header_bytes = bits / 8;
        let headers = p.get(2..2 + header_bytes).ok_or_else(|| {
            DepacketizeErrorKind::Malformed(format!(
                "AU-headers-length {bits} bits runs past the payload"
            ))
        })?;
        let sizes: Vec<usize> = headers
            .chunks_exact(2)
            .map(|h| usize::from(u16::from_be_bytes([h[0], h[1]]) >> 3))
            .collect();
        let data = p.slice(2 + header_bytes..);

        if let Some(frag) = self.fragment.as_mut() {
            if frag.timestamp == pkt.timestamp && sizes.len() == 1 && sizes[0] == frag.size {
                frag.data.put_slice(&data);
                if frag.data.len() < frag.size {
                    if pkt.marker {
                        self.fragment = None;
                        return Err(DepacketizeErrorKind::Incomplete(
                            "marker bit on a fragment before the access unit is complete".into(),
                        ));
                    }
                    return Ok(());
                }
                let frag = self.fragment.take().expect("fragment present");
                if frag.data.len() > frag.size {
                    return Err(DepacketizeErrorKind::Malformed(format!(
                        "fragments hold {} bytes for an access unit of {}",
                        frag.data.len(),
                        frag.size
                    )));
                }
                self.emit(frag.timestamp, 0, frag.data.freeze());
                return Ok(());
            }
            self.fragment = None;
            // Fall through: this packet starts afresh, but report the lost unit.
            self.fresh(pkt.timestamp, pkt.marker, &sizes, data)?;
            return Err(DepacketizeErrorKind::Incomplete(
                "fragmented access unit interrupted".into(),
            ));
        }
        self.fresh(pkt.timestamp, pkt.marker, &sizes, data)
    }

    /// Handles a packet that does not continue a fragment.
    fn fresh(
        &mut self,
        timestamp: u32,
        marker: bool,
        sizes: &[usize],
        data: Bytes,
    ) -> Result<(), DepacketizeErrorKind> {
        if let [size] = *sizes
            && size > data.len()
        {
            if marker {
                return Err(DepacketizeErrorKind::Incomplete(format!(
                    "access unit of {size} bytes, {} in its only packet",
                    data.len()
                )));
            }
            let mut buf = BytesMut::with_capacity(size);
            buf.put_slice(&data);
            self.fragment = Some(Fragment {
                timestamp,
                size,
                data: buf,
            });
            return Ok(());
        }
        let mut off = 0;
        for (i, &size) in sizes.iter().enumerate() {
            if off + size > data.len() {
                return Err(DepacketizeErrorKind::Malformed(format!(
                    "access unit {i} of {size} bytes runs past the payload"
                )));
            }
            self.emit(timestamp, i as u32, data.slice(off..off + size));
            off += size;
        }
        Ok(())
    }
}

impl Depacketizer for AacDepacketizer {
    fn push(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeError> {
        let err = |kind| DepacketizeError::new("aac", pkt, kind);
        let notice = match self.seq.check(pkt.sequence) {
            SeqStatus::Behind { expected } => {
                return Err(err(DepacketizeErrorKind::Reordered { expected }));
            }
            SeqStatus::Gap { expected, lost } => {
                self.fragment = None;
                Some(err(DepacketizeErrorKind::SequenceGap { expected, lost }))
            }
            SeqStatus::First | SeqStatus::InOrder => None,
        };
        let result = self.payload(pkt);
        match (notice, result) {
            (Some(n), _) => Err(n),
            (None, Err(kind)) => Err(err(kind)),
            (None, Ok(())) => Ok(()),
        }
    }

    fn pull(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, marker: bool, payload: Vec<u8>) -> RtpPacket {
        RtpPacket {
            payload_type: 97,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            marker,
            payload: Bytes::from(payload),
        }
    }

    #[test]
    fn one_access_unit_per_packet_with_au_header() {
        let au = Bytes::from(vec![0x21; 300]);
        let chunks = packetize(&au, 1400).unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(&chunks[0].head[..], &[0x00, 0x10, 0x09, 0x60]);
        assert!(chunks[0].marker);
    }

    #[test]
    fn several_access_units_in_one_packet_advance_by_1024() {
        let mut d = AacDepacketizer::new(0, 1024);
        let mut p = vec![0x00, 0x30];
        for size in [2u16, 3, 1] {
            p.extend_from_slice(&(size << 3).to_be_bytes());
        }
        p.extend_from_slice(&[1, 1, 2, 2, 2, 3]);
        d.push(&pkt(1, 48000, true, p)).unwrap();
        let frames: Vec<Frame> = std::iter::from_fn(|| d.pull()).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames.iter().map(|f| f.ts).collect::<Vec<_>>(),
            vec![48000, 49024, 50048]
        );
        assert_eq!(&frames[1].data[..], &[2, 2, 2]);
    }

    #[test]
    fn fragmented_access_unit_is_reassembled() {
        let au = Bytes::from((0..2000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let chunks = packetize(&au, 500).unwrap();
        assert_eq!(chunks.len(), 5);
        assert!(chunks[..4].iter().all(|c| !c.marker));
        let mut d = AacDepacketizer::new(0, 1024);
        for (i, c) in chunks.iter().enumerate() {
            let payload = [&c.head[..], &c.body[..]].concat();
            d.push(&pkt(i as u16, 0, c.marker, payload)).unwrap();
        }
        assert_eq!(d.pull().unwrap().data, au);
        assert!(d.pull().is_none());
    }

    #[test]
    fn lost_fragment_drops_the_unit_and_the_next_decodes() {
        let au = Bytes::from(vec![9u8; 1000]);
        let chunks = packetize(&au, 400).unwrap();
        let mut d = AacDepacketizer::new(0, 1024);
        let payload = |c: &RtpChunk| [&c.head[..], &c.body[..]].concat();
        d.push(&pkt(0, 0, false, payload(&chunks[0]))).unwrap();
        assert!(d.push(&pkt(2, 0, true, payload(&chunks[2]))).is_err());
        assert!(d.pull().is_none());
        let next = packetize(&Bytes::from_static(&[5, 6]), 400).unwrap();
        d.push(&pkt(3, 1024, true, payload(&next[0]))).unwrap();
        assert_eq!(&d.pull().unwrap().data[..], &[5, 6]);
    }

    #[test]
    fn oversized_access_unit_is_an_error() {
        assert!(matches!(
            packetize(&Bytes::from(vec![0; 9000]), 1400),
            Err(PacketizeErrorKind::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn bad_au_headers_length_is_malformed() {
        let mut d = AacDepacketizer::new(0, 1024);
        let err = d
            .push(&pkt(1, 0, true, vec![0x00, 0x0d, 0, 0]))
            .unwrap_err();
        assert!(matches!(err.kind, DepacketizeErrorKind::Malformed(_)));
        let err = d
            .push(&pkt(2, 0, true, vec![0x00, 0x40, 0, 0]))
            .unwrap_err();
        assert!(matches!(err.kind, DepacketizeErrorKind::Malformed(_)));
    }
}
