//! Access-unit assembly shared by the video depacketizers (H.264, H.265, JPEG): sequence
//! checks, access unit boundaries (marker bit or timestamp change), and dropping an access
//! unit damaged by loss or malformed packets until the next one starts.

use std::collections::VecDeque;

use bytes::Bytes;

use super::error::{DepacketizeError, DepacketizeErrorKind};
use super::seq::{SeqStatus, SeqTracker, TimestampUnwrapper};
use super::{Depacketizer, RtpPacket};
use crate::Frame;

/// Largest access unit accepted (payload bytes); a stream that never ends its access unit
/// must not exhaust memory.
pub(crate) const MAX_ACCESS_UNIT: usize = 32 << 20;

/// The codec-specific half of a video depacketizer: it parses payloads into the access unit
/// under construction. `AuDepacketizer` decides which packets it sees and when units end.
pub(crate) trait AccessUnitBuilder: Send {
    /// Short codec name for errors.
    fn codec(&self) -> &'static str;
    /// Consumes one packet's payload into the current access unit.
    fn add(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeErrorKind>;
    /// Ends the current access unit: its payload and keyframe flag, or `None` if it is empty.
    fn finish(&mut self) -> Result<Option<(Bytes, bool)>, DepacketizeErrorKind>;
    /// Forgets the current access unit.
    fn discard(&mut self);
}

/// A `Depacketizer` made of the shared access unit logic and a codec's builder.
pub(crate) struct AuDepacketizer<B> {
    builder: B,
    track: usize,
    seq: SeqTracker,
    ts: TimestampUnwrapper,
    /// Timestamp of the access unit under construction, if a packet of it was accepted.
    current: Option<u32>,
    /// Timestamp of a damaged access unit whose remaining packets are ignored.
    skip: Option<u32>,
    /// Payload bytes accepted into the current access unit.
    bytes: usize,
    out: VecDeque<Frame>,
}

impl<B: AccessUnitBuilder> AuDepacketizer<B> {
    /// Depacketizes into frames of `track` with `builder`.
    pub(crate) fn new(builder: B, track: usize) -> Self {
        AuDepacketizer {
            builder,
            track,
            seq: SeqTracker::default(),
            ts: TimestampUnwrapper::default(),
            current: None,
            skip: None,
            bytes: 0,
            out: VecDeque::new(),
        }
    }

    fn error(&self, pkt: &RtpPacket, kind: DepacketizeErrorKind) -> DepacketizeError {
        DepacketizeError::new(self.builder.codec(), pkt, kind)
    }

    /// Ends the current access unit, queueing its frame.
    fn flush(&mut self) -> Result<(), DepacketizeErrorKind> {
        self.bytes = 0;
        let Some(ts) = self.current.take() else {
            return Ok(());
        };
        match self.builder.finish() {
            Ok(Some((data, keyframe))) => {
                let ts = self.ts.unwrap(ts);
                self.out
                    .push_back(Frame::new(self.track, ts, keyframe, data));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.builder.discard();
                Err(e)
            }
        }
    }

    /// Drops the current access unit and ignores the rest of the one `pkt` belongs to.
    fn damage(&mut self, pkt: &RtpPacket) {
        self.builder.discard();
        self.current = None;
        self.bytes = 0;
        self.skip = (!pkt.marker).then_some(pkt.timestamp);
    }
}

impl<B: AccessUnitBuilder> Depacketizer for AuDepacketizer<B> {
    fn push(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeError> {
        let mut notice = None;
        match self.seq.check(pkt.sequence) {
            SeqStatus::Behind { expected } => {
                return Err(self.error(pkt, DepacketizeErrorKind::Reordered { expected }));
            }
            SeqStatus::Gap { expected, lost } => {
                // The lost packets may have belonged to the current unit, to this packet's
                // unit, or both: drop both.
                self.builder.discard();
                self.current = None;
                self.bytes = 0;
                self.skip = Some(pkt.timestamp);
                notice =
                    Some(self.error(pkt, DepacketizeErrorKind::SequenceGap { expected, lost }));
            }
            SeqStatus::First | SeqStatus::InOrder => {}
        }
        if self.skip.is_some_and(|t| t != pkt.timestamp) {
            self.skip = None;
        }
        if self.current.is_some_and(|t| t != pkt.timestamp) {
            // A new timestamp ends the previous unit even if its marker bit was not set.
            if let Err(kind) = self.flush() {
                notice.get_or_insert(self.error(pkt, kind));
            }
        }
        if self.skip == Some(pkt.timestamp) {
            if pkt.marker {
                self.skip = None;
            }
            return notice.map_or(Ok(()), Err);
        }
        self.current = Some(pkt.timestamp);
        self.bytes += pkt.payload.len();
        let added = if self.bytes > MAX_ACCESS_UNIT {
            Err(DepacketizeErrorKind::Malformed(format!(
                "access unit larger than {MAX_ACCESS_UNIT} bytes"
            )))
        } else {
            self.builder.add(pkt)
        };
        if let Err(kind) = added {
            self.damage(pkt);
            return Err(notice.unwrap_or_else(|| self.error(pkt, kind)));
        }
        if pkt.marker
            && let Err(kind) = self.flush()
        {
            notice.get_or_insert(self.error(pkt, kind));
        }
        notice.map_or(Ok(()), Err)
    }

    fn pull(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::rtp::h264::H264Builder;
    use crate::rtp::nal::NalQuirks;

    #[test]
    fn endless_access_unit_is_dropped_at_the_size_limit() {
        let builder = H264Builder::new(Bytes::new(), Bytes::new(), NalQuirks::default());
        let mut d = AuDepacketizer::new(builder, 0);
        let mut payload = vec![0x41];
        payload.resize(60_000, 7);
        let payload = Bytes::from(payload);
        let mut errors = 0;
        for seq in 0..=(MAX_ACCESS_UNIT / 60_000) as u16 + 1 {
            let pkt = RtpPacket {
                payload_type: 96,
                sequence: seq,
                timestamp: 0,
                ssrc: 1,
                marker: false,
                payload: payload.clone(),
            };
            if d.push(&pkt).is_err() {
                errors += 1;
            }
        }
        assert_eq!(errors, 1);
        assert_eq!(d.bytes, 0);
        assert!(d.pull().is_none());
    }
}
