//! H.265 over RTP (RFC 7798) without DONL (sprop-max-don-diff = 0): single NAL unit packets,
//! aggregation packets (AP, type 48) and fragmentation units (FU, type 49). PACI is rejected.

use bytes::{BufMut, Bytes, BytesMut};

use super::assembly::AccessUnitBuilder;
use super::error::{DepacketizeErrorKind, PacketizeErrorKind};
use super::nal::{NalFormat, NalQuirks, packetize_nals, split_start_codes};
use super::{RtpChunk, RtpPacket};
use crate::codec::{ensure_parameter_sets, h265};
use crate::track::Codec;

/// Aggregation packet type.
pub const AP: u8 = 48;
/// Fragmentation unit type.
pub const FU: u8 = 49;
/// PACI packet type (not supported).
pub const PACI: u8 = 50;

const FORMAT: NalFormat = NalFormat {
    header_len: 2,
    aggregation_header: ap_header,
    fu_header,
};

/// nuh_layer_id of a two-byte NAL unit header.
fn layer_id(h: &[u8]) -> u8 {
    ((h[0] & 1) << 5) | (h[1] >> 3)
}

/// AP payload header: F is the OR, LayerId and TID the minimum over the units (RFC 7798 §4.4.2).
fn ap_header(units: &[Bytes]) -> Vec<u8> {
    let f = units.iter().fold(0, |acc, u| acc | (u[0] & 0x80));
    let layer = units.iter().map(|u| layer_id(u)).min().unwrap_or(0);
    let tid = units.iter().map(|u| u[1] & 0x07).min().unwrap_or(1);
    vec![f | (AP << 1) | (layer >> 5), ((layer & 0x1f) << 3) | tid]
}

/// FU payload header (the unit's header with type 49) and FU header (S, E, the unit's type).
fn fu_header(nal: &[u8], start: bool, end: bool) -> Vec<u8> {
    let s = if start { 0x80 } else { 0 };
    let e = if end { 0x40 } else { 0 };
    vec![
        (nal[0] & 0x81) | (FU << 1),
        nal[1],
        s | e | ((nal[0] >> 1) & 0x3f),
    ]
}

/// Packetizes an AVC-format H.265 access unit.
pub(crate) fn packetize(
    data: &Bytes,
    max_payload: usize,
) -> Result<Vec<RtpChunk>, PacketizeErrorKind> {
    packetize_nals(data, max_payload, &FORMAT)
}

/// Builds H.265 access units from RFC 7798 payloads.
pub(crate) struct H265Builder {
    vps: Bytes,
    sps: Bytes,
    pps: Bytes,
    quirks: NalQuirks,
    au: BytesMut,
    keyframe: bool,
    /// A fragmented unit being reassembled: its header, then the fragments so far.
    fragment: Option<BytesMut>,
}

impl H265Builder {
    /// A builder seeded with the track's out-of-band parameter sets (may be empty).
    pub(crate) fn new(vps: Bytes, sps: Bytes, pps: Bytes, quirks: NalQuirks) -> Self {
        H265Builder {
            vps,
            sps,
            pps,
            quirks,
            au: BytesMut::new(),
            keyframe: false,
            fragment: None,
        }
    }

    fn push_nal(&mut self, nal: &[u8]) -> Result<(), DepacketizeErrorKind> {
        let Some(t) = h265::nal_type(nal) else {
            return Err(DepacketizeErrorKind::Malformed(format!(
                "NAL unit of {} byte(s) is shorter than its 2-byte header",
                nal.len()
            )));
        };
        match t {
            h265::NAL_VPS => self.vps = Bytes::copy_from_slice(nal),
            h265::NAL_SPS => self.sps = Bytes::copy_from_slice(nal),
            h265::NAL_PPS => self.pps = Bytes::copy_from_slice(nal),
            t if h265::is_irap(t) => self.keyframe = true,
            _ => {}
        }
        self.au.put_u32(nal.len() as u32);
        self.au.put_slice(nal);
        Ok(())
    }

    fn add_ap(&mut self, payload: &[u8]) -> Result<(), DepacketizeErrorKind> {
        let mut rest = &payload[2..];
        let mut count = 0;
        while !rest.is_empty() {
            let [hi, lo, tail @ ..] = rest else {
                return Err(DepacketizeErrorKind::Malformed(
                    "AP ends inside a NAL unit size".into(),
                ));
            };
            let size = usize::from(u16::from_be_bytes([*hi, *lo]));
            if size > tail.len() {
                return Err(DepacketizeErrorKind::Malformed(format!(
                    "AP unit of {size} bytes, only {} left",
                    tail.len()
                )));
            }
            if size > 0 {
                self.push_nal(&tail[..size])?;
                count += 1;
            }
            rest = &tail[size..];
        }
        if count == 0 {
            return Err(DepacketizeErrorKind::Malformed("empty AP".into()));
        }
        Ok(())
    }

    fn add_fu(&mut self, payload: &[u8]) -> Result<(), DepacketizeErrorKind> {
        let [h0, h1, fu, data @ ..] = payload else {
            return Err(DepacketizeErrorKind::Malformed(
                "FU shorter than its 3-byte header".into(),
            ));
        };
        let (start, end, nal_type) = (fu & 0x80 != 0, fu & 0x40 != 0, fu & 0x3f);
        if start {
            if self.fragment.is_some() {
                return Err(DepacketizeErrorKind::Incomplete(
                    "FU start while the previous fragmented NAL unit is unfinished".into(),
                ));
            }
            let mut nal = BytesMut::with_capacity(2 + data.len());
            nal.put_u8((h0 & 0x81) | (nal_type << 1));
            nal.put_u8(*h1);
            nal.put_slice(data);
            self.fragment = Some(nal);
        } else {
            let Some(nal) = self.fragment.as_mut() else {
                return Err(DepacketizeErrorKind::Incomplete(
                    "FU continuation without its start fragment".into(),
                ));
            };
            let first_type = (nal[0] >> 1) & 0x3f;
            if first_type != nal_type && !self.quirks.keep_first_fu_type {
                return Err(DepacketizeErrorKind::Malformed(format!(
                    "FU NAL type changed from {first_type} to {nal_type} mid-unit"
                )));
            }
            nal.put_slice(data);
        }
        if end && let Some(nal) = self.fragment.take() {
            self.push_nal(&nal)?;
        }
        Ok(())
    }
}

impl AccessUnitBuilder for H265Builder {
    fn codec(&self) -> &'static str {
        "h265"
    }

    fn add(&mut self, pkt: &RtpPacket) -> Result<(), DepacketizeErrorKind> {
        let p = &pkt.payload;
        if p.len() < 2 {
            return Err(DepacketizeErrorKind::Malformed(
                "payload shorter than the 2-byte payload header".into(),
            ));
        }
        let t = (p[0] >> 1) & 0x3f;
        if self.fragment.is_some() && t != FU {
            return Err(DepacketizeErrorKind::Incomplete(
                "fragmented NAL unit interrupted by another packet type".into(),
            ));
        }
        match t {
            0..=47 => {
                if self.quirks.strip_start_codes {
                    for nal in split_start_codes(p) {
                        self.push_nal(&nal)?;
                    }
                    Ok(())
                } else {
                    self.push_nal(p)
                }
            }
            AP => self.add_ap(p),
            FU => self.add_fu(p),
            PACI => Err(DepacketizeErrorKind::Unsupported("PACI packets".into())),
            t => Err(DepacketizeErrorKind::Malformed(format!(
                "reserved payload type {t}"
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
            let codec = Codec::H265 {
                vps: self.vps.clone(),
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
    use crate::rtp::Depacketizer;
    use crate::rtp::assembly::AuDepacketizer;

    const VPS: &[u8] = &[0x40, 0x01, 0x0c, 0x01];
    const SPS: &[u8] = &[0x42, 0x01, 0x01, 0x04];
    const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72];

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

    fn depacketizer() -> AuDepacketizer<H265Builder> {
        AuDepacketizer::new(
            H265Builder::new(
                Bytes::new(),
                Bytes::new(),
                Bytes::new(),
                NalQuirks::default(),
            ),
            0,
        )
    }

    #[test]
    fn parameter_sets_go_in_one_ap() {
        let mut idr = vec![0x26, 0x01];
        idr.extend((0..4000).map(|i| (i % 200 + 1) as u8));
        let au = avc_from_units([VPS, SPS, PPS, &idr[..]]);
        let chunks = packetize(&au, 1400).unwrap();
        let ap = &chunks[0].head;
        assert_eq!((ap[0] >> 1) & 0x3f, AP);
        assert_eq!(ap[1], 0x01); // layer 0, TID 1
        assert_eq!(ap.len(), 2 + 3 * (2 + 4));
        for c in &chunks[1..] {
            assert_eq!((c.head[0] >> 1) & 0x3f, FU);
            assert_eq!(c.head[2] & 0x3f, 19);
            assert!(c.len() <= 1400);
        }
        assert!(chunks.last().unwrap().marker);
    }

    #[test]
    fn ap_and_fu_depacketize_into_one_keyframe() {
        let mut d = depacketizer();
        let mut ap = vec![AP << 1, 0x01];
        for u in [VPS, SPS, PPS] {
            ap.extend_from_slice(&(u.len() as u16).to_be_bytes());
            ap.extend_from_slice(u);
        }
        d.push(&pkt(1, 0, false, &ap)).unwrap();
        d.push(&pkt(2, 0, false, &[FU << 1, 0x01, 0x80 | 19, 7, 8]))
            .unwrap();
        d.push(&pkt(3, 0, true, &[FU << 1, 0x01, 0x40 | 19, 9]))
            .unwrap();
        let f = d.pull().unwrap();
        assert!(f.keyframe);
        assert_eq!(
            f.data,
            avc_from_units([VPS, SPS, PPS, &[0x26, 0x01, 7, 8, 9][..]])
        );
    }

    #[test]
    fn lost_fu_fragment_drops_the_unit_and_the_next_decodes() {
        let mut d = depacketizer();
        d.push(&pkt(1, 0, false, &[FU << 1, 0x01, 0x80 | 1, 7]))
            .unwrap();
        assert!(
            d.push(&pkt(3, 0, true, &[FU << 1, 0x01, 0x40 | 1, 9]))
                .is_err()
        );
        assert!(d.pull().is_none());
        d.push(&pkt(4, 3000, true, &[0x02, 0x01, 5])).unwrap();
        let f = d.pull().unwrap();
        assert!(!f.keyframe);
        assert_eq!(&f.data[..], &[0, 0, 0, 3, 0x02, 0x01, 5]);
    }

    #[test]
    fn paci_is_unsupported() {
        let mut d = depacketizer();
        let err = d
            .push(&pkt(1, 0, true, &[PACI << 1, 0x01, 0, 0]))
            .unwrap_err();
        assert!(matches!(err.kind, DepacketizeErrorKind::Unsupported(_)));
    }

    #[test]
    fn one_byte_units_are_malformed() {
        let mut d = depacketizer();
        let err = d
            .push(&pkt(1, 0, true, &[AP << 1, 1, 0, 1, 0x26]))
            .unwrap_err();
        assert!(matches!(err.kind, DepacketizeErrorKind::Malformed(_)));
        assert!(packetize(&avc_from_units([&[0x26u8][..]]), 1400).is_err());
    }
}
