//! H.264 over RTP (RFC 6184, packetization-mode 1): single NAL unit packets, STAP-A and FU-A.
//! STAP-B, MTAP and FU-B (interleaved mode) are rejected.

use bytes::{BufMut, Bytes, BytesMut};

use super::assembly::AccessUnitBuilder;
use super::error::{DepacketizeErrorKind, PacketizeErrorKind};
use super::nal::{NalFormat, NalQuirks, packetize_nals, split_start_codes};
use super::{RtpChunk, RtpPacket};
use crate::codec::{ensure_parameter_sets, h264};
use crate::track::Codec;

/// STAP-A (single-time aggregation packet) NAL type.
pub const STAP_A: u8 = 24;
/// STAP-B NAL type (interleaved mode only).
pub const STAP_B: u8 = 25;
/// MTAP16 NAL type (interleaved mode only).
pub const MTAP16: u8 = 26;
/// MTAP24 NAL type (interleaved mode only).
pub const MTAP24: u8 = 27;
/// FU-A (fragmentation unit) NAL type.
pub const FU_A: u8 = 28;
/// FU-B NAL type (interleaved mode only).
pub const FU_B: u8 = 29;

const FORMAT: NalFormat = NalFormat {
    header_len: 1,
    aggregation_header: stap_a_header,
    fu_header: fu_a_header,
};

/// STAP-A header: F is the OR and NRI the maximum of the aggregated units' (RFC 6184 §5.7).
fn stap_a_header(units: &[Bytes]) -> Vec<u8> {
    let f = units.iter().fold(0, |acc, u| acc | (u[0] & 0x80));
    let nri = units.iter().map(|u| u[0] & 0x60).max().unwrap_or(0);
    vec![f | nri | STAP_A]
}

/// FU indicator (the unit's F and NRI, type 28) and FU header (S, E, the unit's type).
fn fu_a_header(nal: &[u8], start: bool, end: bool) -> Vec<u8> {
    let s = if start { 0x80 } else { 0 };
    let e = if end { 0x40 } else { 0 };
    vec![(nal[0] & 0xe0) | FU_A, s | e | (nal[0] & 0x1f)]
}

/// Packetizes an AVC-format H.264 access unit.
pub(crate) fn packetize(
    data: &Bytes,
    max_payload: usize,
) -> Result<Vec<RtpChunk>, PacketizeErrorKind> {
    packetize_nals(data, max_payload, &FORMAT)
}

/// A fragmented NAL unit being reassembled.
struct Fragment {
    /// Reconstructed NAL header followed by the fragments so far.
    nal: BytesMut,
}

/// Builds H.264 access units from RFC 6184 payloads.
pub(crate) struct H264Builder {
    sps: Bytes,
    pps: Bytes,
    quirks: NalQuirks,
    au: BytesMut,
    keyframe: bool,
    fragment: Option<Fragment>,
}

impl H264Builder {
    /// A builder seeded with the track's out-of-band parameter sets (may be empty).
    pub(crate) fn new(sps: Bytes, pps: Bytes, quirks: NalQuirks) -> Self {
        H264Builder {
            sps,
            pps,
            quirks,
            au: BytesMut::new(),
            keyframe: false,
            fragment: None,
        }
    }

    fn push_nal(&mut self, nal: &[u8]) {
        match h264::nal_type(nal) {
            Some(h264::NAL_IDR) => self.keyframe = true,
            Some(h264::NAL_SPS) => self.sps = Bytes::copy_from_slice(nal),
            Some(h264::NAL_PPS) => self.pps = Bytes::copy_from_slice(nal),
            _ => {}
        }
        self.au.put_u32(nal.len() as u32);
        self.au.put_slice(nal);
    }

    fn add_single(&mut self, payload: &Bytes) {
        if self.quirks.strip_start_codes {
            for nal in split_start_codes(payload) {
                self.push_nal(&nal);
            }
        } else {
            self.push_nal(payload);
        }
    }

    fn add_stap_a(&mut self, payload: &[u8]) -> Result<(), DepacketizeErrorKind> {
        let mut rest = &payload[1..];
        let mut count = 0;
        while !rest.is_empty() {
            let [hi, lo, tail @ ..] = rest else {
                return Err(DepacketizeErrorKind::Malformed(
                    "STAP-A ends inside a NAL unit size".into(),
                ));
            };
            let size = usize::from(u16::from_be_bytes([*hi, *lo]));
            if size > tail.len() {
                return Err(DepacketizeErrorKind::Malformed(format!(
                    "STAP-A unit of {size} bytes, only {} left",
                    tail.len()
                )));
            }
            if size > 0 {
                self.push_nal(&tail[..size]);
                count += 1;
            }
            rest = &tail[size..];
        }
        if count == 0 {
            return Err(DepacketizeErrorKind::Malformed("empty STAP-A".into()));
        }
        Ok(())
    }

    fn add_fu_a(&mut self, payload: &[u8]) -> Result<(), DepacketizeErrorKind> {
        let [indicator, header, data @ ..] = payload else {
            return Err(DepacketizeErrorKind::Malformed(
                "FU-A shorter than its 2-byte header".into(),
            ));
        };
        let (start, end, nal_type) = (header & 0x80 != 0, header & 0x40 != 0, header & 0x1f);
        if start {
            if self.fragment.is_some() {
                return Err(DepacketizeErrorKind::Incomplete(
                    "FU-A start while the previous fragmented NAL unit is unfinished".into(),
                ));
            }
            let mut nal = BytesMut::with_capacity(1 + data.len());
            nal.put_u8((indicator & 0xe0) | nal_type);
            nal.put_slice(data);
            self.fragment = Some(Fragment { nal });
        } else {
            let Some(frag) = self.fragment.as_mut() else {
                return Err(DepacketizeErrorKind::Incomplete(
                    "FU-A continuation without its start fragment".into(),
                ));
            };
            let first_type = frag.nal[0] & 0x1f;
            if first_type != nal_type && !self.quirks.keep_first_fu_type {
                return Err(DepacketizeErrorKind::Malformed(format!(
                    "FU-A NAL type changed from {first_type} to {nal_type} mid-unit"
                )));
            }
            frag.nal.put_slice(data);
        }
        if end && let Some(frag) = self.fragment.take() {
            self.push_nal(&frag.nal);
        }
        Ok(())
    }
}

impl AccessUnitBuilder for H264Builder {
    fn codec(&self) -> &'static str {
        "h264"
    }

    fn add(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeErrorKind> {
        let p = &pkt.payload;
        let Some(&first) = p.first() else {
            return Err(DepacketizeErrorKind::Malformed("empty payload".into()));
        };
        if self.fragment.is_some() && first & 0x1f != FU_A {
            return Err(DepacketizeErrorKind::Incomplete(
                "fragmented NAL unit interrupted by another packet type".into(),
            ));
        }
        match first & 0x1f {
            1..=23 => {
                self.add_single(p);
                Ok(())
            }
            0 if self.quirks.strip_start_codes && p.starts_with(&[0, 0]) => {
                self.add_single(p);
                Ok(())
            }
            STAP_A => self.add_stap_a(p),
            FU_A => self.add_fu_a(p),
            t @ (STAP_B | MTAP16 | MTAP24 | FU_B) => {
                Err(DepacketizeErrorKind::Unsupported(format!(
                    "NAL type {t} ({}) needs interleaved packetization-mode 2",
                    match t {
                        STAP_B => "STAP-B",
                        MTAP16 => "MTAP16",
                        MTAP24 => "MTAP24",
                        _ => "FU-B",
                    }
                )))
            }
            t => Err(DepacketizeErrorKind::Malformed(format!(
                "reserved NAL type {t}"
            ))),
        }
    }

    fn finish(&mut self) -> Result<Option<(Bytes, bool)>, DepacketizeErrorKind> {
        if self.fragment.is_some() {
            return Err(DepacketizeErrorKind::Incomplete(
                "fragmented NAL unit unfinished at the end of the access unit".into(),
            ));
        }
        let keyframe = std::mem::take(&mut self.keyframe);
        let au = self.au.split().freeze();
        if au.is_empty() {
            return Ok(None);
        }
        let data = if keyframe {
            let codec = Codec::H264 {
                sps: self.sps.clone(),
                pps: self.pps.clone(),
            };
            ensure_parameter_sets(&codec, &au)
        } else {
            au
        };
        Ok(Some((data, keyframe)))
    }

    fn discard(&mut self) {
        self.au.clear();
        self.keyframe = false;
        self.fragment = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nal::avc_from_units;
    use crate::rtp::assembly::AuDepacketizer;
    use crate::rtp::{DepacketizeErrorKind as K, Depacketizer};

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn depacketizer() -> AuDepacketizer<H264Builder> {
        AuDepacketizer::new(
            H264Builder::new(Bytes::new(), Bytes::new(), NalQuirks::default()),
            0,
        )
    }

    fn pkt(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        RtpPacket {
            payload_type: 96,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            marker,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn payload(c: &RtpChunk) -> Vec<u8> {
        [&c.head[..], &c.body[..]].concat()
    }

    fn idr(len: usize) -> Vec<u8> {
        let mut v = vec![0x65];
        v.extend((0..len - 1).map(|i| (i % 251 + 1) as u8));
        v
    }

    #[test]
    fn sps_and_pps_go_in_one_stap_a() {
        let big = idr(3000);
        let au = avc_from_units([SPS, PPS, &big[..]]);
        let chunks = packetize(&au, 1400).unwrap();
        let first = payload(&chunks[0]);
        assert_eq!(first[0] & 0x1f, STAP_A);
        assert_eq!(first[0] & 0x60, 0x60); // NRI of SPS/PPS
        let mut expected = vec![first[0], 0, 5];
        expected.extend_from_slice(SPS);
        expected.extend_from_slice(&[0, 4]);
        expected.extend_from_slice(PPS);
        assert_eq!(first, expected);
        assert!(chunks[1..].iter().all(|c| payload(c)[0] & 0x1f == FU_A));
    }

    #[test]
    fn fu_a_fragments_respect_max_payload_and_flags() {
        let big = idr(3000);
        let chunks = packetize(&avc_from_units([&big[..]]), 1000).unwrap();
        assert_eq!(chunks.len(), 4); // 2999 bytes / 998 per fragment
        for (i, c) in chunks.iter().enumerate() {
            let p = payload(c);
            assert!(p.len() <= 1000);
            assert_eq!(p[0], 0x60 | FU_A);
            assert_eq!(p[1] & 0x80 != 0, i == 0, "S bit");
            assert_eq!(p[1] & 0x40 != 0, i == 3, "E bit");
            assert_eq!(p[1] & 0x1f, 5);
            assert_eq!(c.marker, i == 3);
        }
        // Bodies are zero-copy slices of the frame.
        let total: usize = chunks.iter().map(|c| c.body.len()).sum();
        assert_eq!(total, 2999);
    }

    #[test]
    fn single_nal_packet_when_it_fits() {
        let p = [0x41, 0x9a, 0x01];
        let chunks = packetize(&avc_from_units([&p[..]]), 1400).unwrap();
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].head.is_empty());
        assert_eq!(&chunks[0].body[..], &p);
        assert!(chunks[0].marker);
    }

    #[test]
    fn tiny_max_payload_is_an_error() {
        let err = packetize(&avc_from_units([&idr(10)[..]]), 2).unwrap_err();
        assert_eq!(
            err,
            PacketizeErrorKind::MaxPayloadTooSmall {
                max_payload: 2,
                min: 3
            }
        );
    }

    #[test]
    fn truncated_avc_payload_is_an_error() {
        let err = packetize(&Bytes::from_static(&[0, 0, 0, 9, 0x65]), 1400).unwrap_err();
        assert!(matches!(err, PacketizeErrorKind::Malformed(_)));
    }

    #[test]
    fn stap_a_fu_a_and_single_nal_depacketize_into_one_keyframe() {
        let mut d = depacketizer();
        let mut stap = vec![0x78, 0, 5];
        stap.extend_from_slice(SPS);
        stap.extend_from_slice(&[0, 4]);
        stap.extend_from_slice(PPS);
        d.push(&pkt(1, 3000, false, &stap)).unwrap();
        d.push(&pkt(2, 3000, false, &[0x7c, 0x85, 1, 2])).unwrap();
        d.push(&pkt(3, 3000, false, &[0x7c, 0x05, 3])).unwrap();
        d.push(&pkt(4, 3000, true, &[0x7c, 0x45, 4])).unwrap();
        let f = d.pull().unwrap();
        assert!(f.keyframe);
        assert_eq!(f.ts, 3000);
        assert_eq!(f.data, avc_from_units([SPS, PPS, &[0x65, 1, 2, 3, 4][..]]));
        assert!(d.pull().is_none());
    }

    #[test]
    fn timestamp_change_ends_an_access_unit_without_marker() {
        let mut d = depacketizer();
        d.push(&pkt(1, 0, false, &[0x41, 1])).unwrap();
        d.push(&pkt(2, 3000, false, &[0x41, 2])).unwrap();
        let f = d.pull().unwrap();
        assert_eq!((f.ts, &f.data[..]), (0, &[0, 0, 0, 2, 0x41, 1][..]));
        assert!(d.pull().is_none());
    }

    #[test]
    fn lost_fu_fragment_drops_that_access_unit_and_the_next_decodes() {
        let mut d = depacketizer();
        d.push(&pkt(1, 0, false, &[0x7c, 0x85, 1])).unwrap();
        // seq 2 (middle fragment) lost.
        let err = d.push(&pkt(3, 0, true, &[0x7c, 0x45, 3])).unwrap_err();
        assert_eq!(
            err.kind,
            K::SequenceGap {
                expected: 2,
                lost: 1
            }
        );
        assert_eq!(err.sequence, 3);
        assert!(d.pull().is_none());
        d.push(&pkt(4, 3000, true, &[0x41, 7])).unwrap();
        let f = d.pull().unwrap();
        assert_eq!(f.ts, 3000);
        assert_eq!(&f.data[..], &[0, 0, 0, 2, 0x41, 7]);
    }

    #[test]
    fn loss_before_a_marker_skips_the_rest_of_the_unit() {
        let mut d = depacketizer();
        d.push(&pkt(1, 0, false, &[0x41, 1])).unwrap();
        assert!(d.push(&pkt(3, 0, false, &[0x41, 3])).is_err());
        d.push(&pkt(4, 0, true, &[0x41, 4])).unwrap();
        assert!(d.pull().is_none());
        d.push(&pkt(5, 3000, true, &[0x41, 5])).unwrap();
        assert_eq!(d.pull().unwrap().ts, 3000);
    }

    #[test]
    fn reordered_packet_is_reported_and_dropped() {
        let mut d = depacketizer();
        d.push(&pkt(10, 0, true, &[0x41, 1])).unwrap();
        d.push(&pkt(11, 3000, true, &[0x41, 2])).unwrap();
        let err = d.push(&pkt(10, 0, true, &[0x41, 1])).unwrap_err();
        assert_eq!(err.kind, K::Reordered { expected: 12 });
        assert_eq!(d.pull().unwrap().ts, 0);
        assert_eq!(d.pull().unwrap().ts, 3000);
        assert!(d.pull().is_none());
    }

    #[test]
    fn interleaved_mode_types_are_unsupported() {
        for t in [STAP_B, MTAP16, MTAP24, FU_B] {
            let mut d = depacketizer();
            let err = d.push(&pkt(1, 0, true, &[0x60 | t, 0, 0, 0])).unwrap_err();
            assert!(matches!(err.kind, K::Unsupported(_)), "{t}");
        }
    }

    #[test]
    fn start_codes_inside_a_single_nal_payload_are_stripped() {
        let mut d = depacketizer();
        let mut p = vec![0, 0, 0, 1];
        p.extend_from_slice(SPS);
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(PPS);
        d.push(&pkt(1, 0, false, &p)).unwrap();
        d.push(&pkt(2, 0, true, &[0x65, 9])).unwrap();
        let f = d.pull().unwrap();
        assert_eq!(f.data, avc_from_units([SPS, PPS, &[0x65, 9][..]]));
    }

    #[test]
    fn fu_type_change_mid_unit_keeps_the_first_type() {
        let mut d = depacketizer();
        d.push(&pkt(1, 0, false, &[0x7c, 0x85, 1])).unwrap();
        d.push(&pkt(2, 0, true, &[0x7c, 0x41, 2])).unwrap();
        assert_eq!(&d.pull().unwrap().data[..], &[0, 0, 0, 3, 0x65, 1, 2]);
    }

    #[test]
    fn fu_type_change_is_an_error_when_the_quirk_is_off() {
        let quirks = NalQuirks {
            keep_first_fu_type: false,
            ..NalQuirks::default()
        };
        let mut d = AuDepacketizer::new(H264Builder::new(Bytes::new(), Bytes::new(), quirks), 0);
        d.push(&pkt(1, 0, false, &[0x7c, 0x85, 1])).unwrap();
        let err = d.push(&pkt(2, 0, true, &[0x7c, 0x41, 2])).unwrap_err();
        assert!(matches!(err.kind, K::Malformed(_)));
        assert!(d.pull().is_none());
    }

    #[test]
    fn fu_continuation_without_start_drops_the_unit() {
        let mut d = depacketizer();
        let err = d.push(&pkt(1, 0, false, &[0x7c, 0x05, 1])).unwrap_err();
        assert!(matches!(err.kind, K::Incomplete(_)));
        d.push(&pkt(2, 0, true, &[0x7c, 0x45, 2])).unwrap();
        assert!(d.pull().is_none());
        d.push(&pkt(3, 3000, true, &[0x41, 2])).unwrap();
        assert_eq!(d.pull().unwrap().ts, 3000);
    }

    #[test]
    fn marker_with_unfinished_fragment_is_incomplete() {
        let mut d = depacketizer();
        let err = d.push(&pkt(1, 0, true, &[0x7c, 0x85, 1])).unwrap_err();
        assert!(matches!(err.kind, K::Incomplete(_)));
        assert!(d.pull().is_none());
    }

    #[test]
    fn keyframe_without_in_band_sets_gets_the_sdp_ones() {
        let mut d = AuDepacketizer::new(
            H264Builder::new(
                Bytes::from_static(SPS),
                Bytes::from_static(PPS),
                NalQuirks::default(),
            ),
            0,
        );
        d.push(&pkt(1, 0, true, &[0x65, 1])).unwrap();
        let f = d.pull().unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, avc_from_units([SPS, PPS, &[0x65, 1][..]]));
    }
}
