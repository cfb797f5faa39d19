//! Out-of-band parameter sets put back in-band: keyframes that lack SPS/PPS (and VPS for
//! H.265) get the track's sets prepended, after any access unit delimiter.

use bytes::{BufMut, Bytes, BytesMut};

use super::nal::AvcIter;
use super::{h264, h265};
use crate::track::Codec;

/// The NAL unit conventions of one codec, as `ensure_parameter_sets` needs them.
struct NalSyntax<'a> {
    /// (NAL type, set) for each parameter set, in the order they go in the bitstream.
    sets: Vec<(u8, &'a Bytes)>,
    nal_type: fn(&[u8]) -> Option<u8>,
    is_key: fn(u8) -> bool,
    aud: u8,
}

/// Returns `data` (an AVC-format access unit) with the codec's parameter sets prepended when
/// it is a keyframe that lacks them; otherwise (or for non-NAL codecs) `data` unchanged.
/// Sets already present are not duplicated; empty sets in `codec` are never inserted.
pub fn ensure_parameter_sets(codec: &Codec, data: &Bytes) -> Bytes {
    let syntax = match codec {
        Codec::H264 { sps, pps } => NalSyntax {
            sets: vec![(h264::NAL_SPS, sps), (h264::NAL_PPS, pps)],
            nal_type: h264::nal_type,
            is_key: |t| t == h264::NAL_IDR,
            aud: h264::NAL_AUD,
        },
        Codec::H265 { vps, sps, pps } => NalSyntax {
            sets: vec![
                (h265::NAL_VPS, vps),
                (h265::NAL_SPS, sps),
                (h265::NAL_PPS, pps),
            ],
            nal_type: h265::nal_type,
            is_key: h265::is_irap,
            aud: h265::NAL_AUD,
        },
        _ => return data.clone(),
    };
    let NalSyntax {
        sets,
        nal_type,
        is_key,
        aud,
    } = syntax;
    let mut iter = AvcIter::new(data);
    let units: Vec<&[u8]> = iter.by_ref().collect();
    if iter.truncated() || !units.iter().any(|u| nal_type(u).is_some_and(is_key)) {
        return data.clone();
    }
    let missing: Vec<&Bytes> = sets
        .iter()
        .filter(|(t, set)| !set.is_empty() && !units.iter().any(|u| nal_type(u) == Some(*t)))
        .map(|(_, set)| *set)
        .collect();
    if missing.is_empty() {
        return data.clone();
    }
    let extra: usize = missing.iter().map(|s| 4 + s.len()).sum();
    let mut out = BytesMut::with_capacity(data.len() + extra);
    let leading_auds = units
        .iter()
        .take_while(|u| nal_type(u) == Some(aud))
        .count();
    for u in &units[..leading_auds] {
        out.put_u32(u.len() as u32);
        out.put_slice(u);
    }
    for s in missing {
        out.put_u32(s.len() as u32);
        out.put_slice(s);
    }
    for u in &units[leading_auds..] {
        out.put_u32(u.len() as u32);
        out.put_slice(u);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nal::{avc_from_units, avc_units};

    fn h264() -> Codec {
        Codec::H264 {
            sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e]),
            pps: Bytes::from_static(&[0x68, 0xce]),
        }
    }

    #[test]
    fn idr_without_parameter_sets_gets_them_after_the_aud() {
        let au = avc_from_units([&[0x09u8, 0xf0][..], &[0x65, 1, 2][..]]);
        let out = ensure_parameter_sets(&h264(), &au);
        let types: Vec<u8> = avc_units(&out).iter().map(|u| u[0] & 0x1f).collect();
        assert_eq!(types, vec![9, 7, 8, 5]);
    }

    #[test]
    fn only_missing_sets_are_added() {
        let au = avc_from_units([&[0x67u8, 0x42, 0xc0, 0x1e][..], &[0x65, 1][..]]);
        let out = ensure_parameter_sets(&h264(), &au);
        let types: Vec<u8> = avc_units(&out).iter().map(|u| u[0] & 0x1f).collect();
        assert_eq!(types, vec![8, 7, 5]);
    }

    #[test]
    fn non_keyframes_and_complete_keyframes_are_unchanged() {
        let p = avc_from_units([&[0x41u8, 1][..]]);
        assert_eq!(ensure_parameter_sets(&h264(), &p), p);
        let full = avc_from_units([&[0x67u8, 1][..], &[0x68, 1][..], &[0x65, 1][..]]);
        assert_eq!(ensure_parameter_sets(&h264(), &full), full);
        assert_eq!(ensure_parameter_sets(&Codec::Jpeg, &p), p);
    }

    #[test]
    fn h265_irap_gets_vps_sps_pps() {
        let codec = Codec::H265 {
            vps: Bytes::from_static(&[0x40, 0x01]),
            sps: Bytes::from_static(&[0x42, 0x01]),
            pps: Bytes::from_static(&[0x44, 0x01]),
        };
        let au = avc_from_units([&[0x26u8, 0x01, 0xaf][..]]);
        let out = ensure_parameter_sets(&codec, &au);
        let types: Vec<u8> = avc_units(&out).iter().map(|u| (u[0] >> 1) & 0x3f).collect();
        assert_eq!(types, vec![32, 33, 34, 19]);
    }

    #[test]
    fn empty_codec_sets_are_not_inserted() {
        let codec = Codec::H264 {
            sps: Bytes::new(),
            pps: Bytes::new(),
        };
        let au = avc_from_units([&[0x65u8, 1][..]]);
        assert_eq!(ensure_parameter_sets(&codec, &au), au);
    }
}
