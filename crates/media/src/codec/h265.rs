//! H.265 (ITU-T H.265 / HEVC): NAL unit types, IRAP detection, SPS parsing (general
//! profile/tier/level, picture size) and building a `Codec::H265` from in-band parameter sets.

use bytes::Bytes;

use super::bits::{BitReader, SpsError, rbsp};
use super::nal::AvcIter;
use crate::track::Codec;

/// Video parameter set.
pub const NAL_VPS: u8 = 32;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// Picture parameter set.
pub const NAL_PPS: u8 = 34;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 35;
/// Prefix SEI.
pub const NAL_SEI_PREFIX: u8 = 39;

/// The nal_unit_type of a NAL unit (bits 1..7 of its two-byte header), if it has a header.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    if nal.len() < 2 {
        return None;
    }
    Some((nal[0] >> 1) & 0x3f)
}

/// True for intra random access point picture types (BLA, IDR, CRA and reserved IRAP, 16..=23).
pub fn is_irap(nal_type: u8) -> bool {
    (16..=23).contains(&nal_type)
}

/// True if an AVC-format access unit contains an IRAP picture.
pub fn is_keyframe(avc: &[u8]) -> bool {
    AvcIter::new(avc).any(|n| nal_type(n).is_some_and(is_irap))
}

/// The fields of an H.265 sequence parameter set that camgate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// general_profile_space.
    pub profile_space: u8,
    /// general_tier_flag (false = Main tier).
    pub tier_flag: bool,
    /// general_profile_idc (1 Main, 2 Main 10, ...).
    pub profile_idc: u8,
    /// general_profile_compatibility_flags, flag 0 in the top bit.
    pub profile_compatibility_flags: u32,
    /// The 48 general constraint indicator bits (progressive_source_flag first).
    pub constraint_flags: u64,
    /// general_level_idc (30 × level, e.g. 120 = level 4).
    pub level_idc: u8,
    /// chroma_format_idc (1 = 4:2:0).
    pub chroma_format_idc: u8,
    /// Display width in pixels, after the conformance window.
    pub width: u32,
    /// Display height in pixels, after the conformance window.
    pub height: u32,
}

impl Sps {
    /// Parses an SPS NAL unit (with its two-byte header, emulation prevention included).
    pub fn parse(nal: &[u8]) -> Result<Sps, SpsError> {
        let t = nal_type(nal).ok_or(SpsError::Truncated("nal_unit_header"))?;
        if t != NAL_SPS {
            return Err(SpsError::NotSps(t));
        }
        let data = rbsp(&nal[2..]);
        let mut r = BitReader::new(&data);
        r.bits(4, "sps_video_parameter_set_id")?;
        let max_sub_layers_minus1 = r.bits(3, "sps_max_sub_layers_minus1")?;
        if max_sub_layers_minus1 > 6 {
            return Err(SpsError::OutOfRange("sps_max_sub_layers_minus1"));
        }
        r.bit("sps_temporal_id_nesting_flag")?;
        // profile_tier_level(1, sps_max_sub_layers_minus1)
        let profile_space = r.bits(2, "general_profile_space")? as u8;
        let tier_flag = r.bit("general_tier_flag")?;
        let profile_idc = r.bits(5, "general_profile_idc")? as u8;
        let profile_compatibility_flags = r.bits(32, "general_profile_compatibility_flags")?;
        let hi = u64::from(r.bits(16, "general_constraint_flags")?);
        let lo = u64::from(r.bits(32, "general_constraint_flags")?);
        let constraint_flags = (hi << 32) | lo;
        let level_idc = r.bits(8, "general_level_idc")? as u8;
        let mut profile_present = [false; 8];
        let mut level_present = [false; 8];
        for i in 0..max_sub_layers_minus1 as usize {
            profile_present[i] = r.bit("sub_layer_profile_present_flag")?;
            level_present[i] = r.bit("sub_layer_level_present_flag")?;
        }
        if max_sub_layers_minus1 > 0 {
            r.skip(
                2 * (8 - max_sub_layers_minus1 as usize),
                "reserved_zero_2bits",
            )?;
        }
        for i in 0..max_sub_layers_minus1 as usize {
            if profile_present[i] {
                r.skip(88, "sub_layer_profile")?;
            }
            if level_present[i] {
                r.skip(8, "sub_layer_level_idc")?;
            }
        }
        r.ue_max(15, "sps_seq_parameter_set_id")?;
        let chroma_format_idc = r.ue_max(3, "chroma_format_idc")?;
        let mut separate_colour_plane = false;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit("separate_colour_plane_flag")?;
        }
        let pic_width = u64::from(r.ue("pic_width_in_luma_samples")?);
        let pic_height = u64::from(r.ue("pic_height_in_luma_samples")?);
        let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
        if r.bit("conformance_window_flag")? {
            left = r.ue("conf_win_left_offset")?.into();
            right = r.ue("conf_win_right_offset")?.into();
            top = r.ue("conf_win_top_offset")?.into();
            bottom = r.ue("conf_win_bottom_offset")?.into();
        }
        let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        let width = pic_width
            .checked_sub(sub_w * (left + right))
            .filter(|w| *w > 0)
            .ok_or(SpsError::OutOfRange("conf_win_left/right_offset"))?;
        let height = pic_height
            .checked_sub(sub_h * (top + bottom))
            .filter(|h| *h > 0)
            .ok_or(SpsError::OutOfRange("conf_win_top/bottom_offset"))?;
        Ok(Sps {
            profile_space,
            tier_flag,
            profile_idc,
            profile_compatibility_flags,
            constraint_flags,
            level_idc,
            chroma_format_idc: chroma_format_idc as u8,
            width: u32::try_from(width).map_err(|_| SpsError::OutOfRange("width"))?,
            height: u32::try_from(height).map_err(|_| SpsError::OutOfRange("height"))?,
        })
    }
}

/// A `Codec::H265` from the first VPS, SPS and PPS among `units` (NAL units without start codes).
pub fn codec_from_units<'a>(units: impl IntoIterator<Item = &'a [u8]>) -> Option<Codec> {
    let (mut vps, mut sps, mut pps) = (None, None, None);
    for u in units {
        match nal_type(u) {
            Some(NAL_VPS) if vps.is_none() => vps = Some(Bytes::copy_from_slice(u)),
            Some(NAL_SPS) if sps.is_none() => sps = Some(Bytes::copy_from_slice(u)),
            Some(NAL_PPS) if pps.is_none() => pps = Some(Bytes::copy_from_slice(u)),
            _ => {}
        }
    }
    Some(Codec::H265 {
        vps: vps?,
        sps: sps?,
        pps: pps?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x265, 1280x720 yuv420p (Main profile, level 3.1).
    const SPS_720P_MAIN: &str =
        "42010101600000030090000003000003005da00280802d165959a4932bc05a020000030002000003003210";
    /// x265, 1280x720 yuv422p10le (RExt profile).
    const SPS_720P_422_10BIT: &str =
        "4201010408000003009d0800000300005db00280802d1365959a4932bc05a02000000300200000030321";
    /// x265, 1920x1080 gbrp (RExt 4:4:4, level 4).
    const SPS_1080P_444: &str = "4201010408000003009e0800000300007890007810021cb2cacd24995e02dc080800100000030010000003019080";

    fn sps(hex_str: &str) -> Sps {
        Sps::parse(&hex::decode(hex_str).unwrap()).unwrap()
    }

    #[test]
    fn main_profile_720p_sps_gives_size_and_level() {
        let s = sps(SPS_720P_MAIN);
        assert_eq!((s.width, s.height), (1280, 720));
        assert_eq!(s.profile_idc, 1);
        assert!(!s.tier_flag);
        assert_eq!(s.level_idc, 93);
        assert_eq!(s.chroma_format_idc, 1);
        assert_eq!(s.profile_compatibility_flags, 0x6000_0000);
        assert_eq!(s.constraint_flags >> 44, 0b1001); // progressive, frame-only
    }

    #[test]
    fn rext_422_and_444_sps_give_chroma_format_and_size() {
        let s = sps(SPS_720P_422_10BIT);
        assert_eq!((s.profile_idc, s.chroma_format_idc), (4, 2));
        assert_eq!((s.width, s.height), (1280, 720));
        let s = sps(SPS_1080P_444);
        assert_eq!(
            (s.profile_idc, s.chroma_format_idc, s.level_idc),
            (4, 3, 120)
        );
        assert_eq!((s.width, s.height), (1920, 1080));
    }

    #[test]
    fn truncated_and_foreign_units_are_errors() {
        let full = hex::decode(SPS_720P_MAIN).unwrap();
        for n in 0..20 {
            assert!(Sps::parse(&full[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(Sps::parse(&[0x40, 0x01, 0x0c]), Err(SpsError::NotSps(32)));
    }

    #[test]
    fn irap_types_are_keyframes() {
        let idr = crate::codec::nal::avc_from_units([&[0x26u8, 0x01, 0xaf][..]]);
        let trail = crate::codec::nal::avc_from_units([&[0x02u8, 0x01, 0xd0][..]]);
        assert!(is_keyframe(&idr));
        assert!(!is_keyframe(&trail));
        assert!(is_irap(21) && !is_irap(24) && !is_irap(1));
    }

    #[test]
    fn codec_from_units_collects_vps_sps_pps() {
        let units: [&[u8]; 4] = [&[0x40, 1], &[0x42, 1], &[0x44, 1], &[0x26, 1]];
        assert_eq!(
            codec_from_units(units),
            Some(Codec::H265 {
                vps: Bytes::from_static(&[0x40, 1]),
                sps: Bytes::from_static(&[0x42, 1]),
                pps: Bytes::from_static(&[0x44, 1]),
            })
        );
        assert_eq!(codec_from_units([&[0x40u8, 1][..]]), None);
    }
}
