//! G.711 over RTP (RFC 3551 PCMA/PCMU): one packet per frame, one frame per packet.

use std::collections::VecDeque;

use bytes::Bytes;

use super::error::{DepacketizeError, DepacketizeErrorKind, PacketizeErrorKind};
use super::seq::{SeqStatus, SeqTracker, TimestampUnwrapper};
use super::{Depacketizer, RtpChunk, RtpPacket};
use crate::Frame;

/// Packetizes a G.711 frame as one packet. Frames are not split, because every chunk of a
/// frame shares its timestamp: sources send 20–40 ms frames, which always fit.
pub(crate) fn packetize(
    data: &Bytes,
    max_payload: usize,
) -> Result<Vec<RtpChunk>, PacketizeErrorKind> {
    if data.len() > max_payload {
        return Err(PacketizeErrorKind::FrameTooLarge {
            len: data.len(),
            max_payload,
        });
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![RtpChunk {
        head: Bytes::new(),
        body: data.clone(),
        marker: false,
    }])
}

/// Turns each G.711 packet into a frame.
pub(crate) struct G711Depacketizer {
    codec: &'static str,
    track: usize,
    seq: SeqTracker,
    ts: TimestampUnwrapper,
    out: VecDeque<Frame>,
}

impl G711Depacketizer {
    /// A depacketizer for `track`; `codec` names it in errors ("pcma" or "pcmu").
    pub(crate) fn new(codec: &'static str, track: usize) -> Self {
        G711Depacketizer {
            codec,
            track,
            seq: SeqTracker::default(),
            ts: TimestampUnwrapper::default(),
            out: VecDeque::new(),
        }
    }
}

impl Depacketizer for G711Depacketizer {
    fn push(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeError> {
        let notice = match self.seq.check(pkt.sequence) {
            SeqStatus::Behind { expected } => {
                return Err(DepacketizeError::new(
                    self.codec,
                    pkt,
                    DepacketizeErrorKind::Reordered { expected },
                ));
            }
            SeqStatus::Gap { expected, lost } => Some(DepacketizeError::new(
                self.codec,
                pkt,
                DepacketizeErrorKind::SequenceGap { expected, lost },
            )),
            SeqStatus::First | SeqStatus::InOrder => None,
        };
        if !pkt.payload.is_empty() {
            let ts = self.ts.unwrap(pkt.timestamp);
            self.out
                .push_back(Frame::new(self.track, ts, true, pkt.payload.clone()));
        }
        notice.map_or(Ok(()), Err)
    }

    fn pull(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_that_fits_is_one_chunk_and_larger_is_an_error() {
        let data = Bytes::from(vec![0xd5; 160]);
        let chunks = packetize(&data, 1400).unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].body, data);
        assert_eq!(
            packetize(&data, 100),
            Err(PacketizeErrorKind::FrameTooLarge {
                len: 160,
                max_payload: 100
            })
        );
    }

    #[test]
    fn every_packet_is_a_frame_even_after_a_gap() {
        let mut d = G711Depacketizer::new("pcma", 1);
        let p = |seq, ts| RtpPacket {
            payload_type: 8,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            marker: false,
            payload: Bytes::from_static(&[0xd5; 4]),
        };
        d.push(&p(1, 0)).unwrap();
        let err = d.push(&p(3, 320)).unwrap_err();
        assert_eq!(
            err.kind,
            DepacketizeErrorKind::SequenceGap {
                expected: 2,
                lost: 1
            }
        );
        let a = d.pull().unwrap();
        let b = d.pull().unwrap();
        assert_eq!((a.ts, b.ts, a.track, b.keyframe), (0, 320, 1, true));
    }
}
