//! H.264 (ITU-T H.264 / ISO 14496-10): NAL unit types, keyframe detection, SPS parsing
//! (profile, level, picture size) and building a `Codec::H264` from in-band parameter sets.

use bytes::Bytes;

use super::bits::{BitReader, SpsError, rbsp};
use super::nal::AvcIter;
use crate::track::Codec;

/// Coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// Coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// Supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// The nal_unit_type of a NAL unit (its first byte's low 5 bits), if it has a header.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// True if an AVC-format access unit contains an IDR slice.
pub fn is_keyframe(avc: &[u8]) -> bool {
    AvcIter::new(avc).any(|n| nal_type(n) == Some(NAL_IDR))
}

/// The fields of a sequence parameter set that camgate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// profile_idc (66 baseline, 77 main, 100 high...).
    pub profile_idc: u8,
    /// The constraint_set flags byte (constraint_set0_flag in the top bit).
    pub constraint_flags: u8,
    /// level_idc (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// chroma_format_idc (1 = 4:2:0; implied 1 for profiles without the field).
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// True for progressive-only streams (frame_mbs_only_flag).
    pub frame_mbs_only: bool,
    /// Display width in pixels, after cropping.
    pub width: u32,
    /// Display height in pixels, after cropping.
    pub height: u32,
}

/// Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices.
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

impl Sps {
    /// Parses an SPS NAL unit (with its one-byte header, emulation prevention included).
    pub fn parse(nal: &[u8]) -> Result<Sps, SpsError> {
        let t = nal_type(nal).ok_or(SpsError::Truncated("nal_unit_header"))?;
        if t != NAL_SPS {
            return Err(SpsError::NotSps(t));
        }
        let data = rbsp(&nal[1..]);
        let mut r = BitReader::new(&data);
        let profile_idc = r.bits(8, "profile_idc")? as u8;
        let constraint_flags = r.bits(8, "constraint_flags")? as u8;
        let level_idc = r.bits(8, "level_idc")? as u8;
        r.ue_max(31, "seq_parameter_set_id")?;
        let mut chroma_format_idc = 1u32;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8u32;
        if HIGH_PROFILES.contains(&profile_idc) {
            chroma_format_idc = r.ue_max(3, "chroma_format_idc")?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.bit("separate_colour_plane_flag")?;
            }
            bit_depth_luma = 8 + r.ue_max(6, "bit_depth_luma_minus8")?;
            r.ue_max(6, "bit_depth_chroma_minus8")?;
            r.bit("qpprime_y_zero_transform_bypass_flag")?;
            if r.bit("seq_scaling_matrix_present_flag")? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.bit("seq_scaling_list_present_flag")? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue_max(12, "log2_max_frame_num_minus4")?;
        match r.ue_max(2, "pic_order_cnt_type")? {
            0 => {
                r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")?;
            }
            1 => {
                r.bit("delta_pic_order_always_zero_flag")?;
                r.se("offset_for_non_ref_pic")?;
                r.se("offset_for_top_to_bottom_field")?;
                let n = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
                for _ in 0..n {
                    r.se("offset_for_ref_frame")?;
                }
            }
            _ => {}
        }
        r.ue("max_num_ref_frames")?;
        r.bit("gaps_in_frame_num_value_allowed_flag")?;
        let width_mbs = u64::from(r.ue("pic_width_in_mbs_minus1")?) + 1;
        let height_map_units = u64::from(r.ue("pic_height_in_map_units_minus1")?) + 1;
        let frame_mbs_only = r.bit("frame_mbs_only_flag")?;
        if !frame_mbs_only {
            r.bit("mb_adaptive_frame_field_flag")?;
        }
        r.bit("direct_8x8_inference_flag")?;
        let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
        if r.bit("frame_cropping_flag")? {
            left = r.ue("frame_crop_left_offset")?.into();
            right = r.ue("frame_crop_right_offset")?.into();
            top = r.ue("frame_crop_top_offset")?.into();
            bottom = r.ue("frame_crop_bottom_offset")?.into();
        }
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let crop_x = sub_w * (left + right);
        let crop_y = sub_h * field_factor * (top + bottom);
        let full_w = width_mbs * 16;
        let full_h = field_factor * height_map_units * 16;
        let width = full_w
            .checked_sub(crop_x)
            .filter(|w| *w > 0)
            .ok_or(SpsError::OutOfRange("frame_crop_left/right_offset"))?;
        let height = full_h
            .checked_sub(crop_y)
            .filter(|h| *h > 0)
            .ok_or(SpsError::OutOfRange("frame_crop_top/bottom_offset"))?;
        Ok(Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma: bit_depth_luma as u8,
            frame_mbs_only,
            width: u32::try_from(width).map_err(|_| SpsError::OutOfRange("width"))?,
            height: u32::try_from(height).map_err(|_| SpsError::OutOfRange("height"))?,
        })
    }

    /// The RFC 6184 profile-level-id: profile_idc, constraint flags and level_idc as 6 hex digits.
    pub fn profile_level_id(&self) -> String {
        format!(
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// Skips a scaling_list() of `size` coefficients (H.264 §7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se("delta_scale")?;
            if !(-128..=127).contains(&delta) {
                return Err(SpsError::OutOfRange("delta_scale"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// The profile-level-id of an SPS NAL unit from its first three payload bytes, even when
/// the rest of the SPS does not parse.
pub fn profile_level_id(sps: &[u8]) -> Option<String> {
    if nal_type(sps) != Some(NAL_SPS) {
        return None;
    }
    let body = rbsp(sps.get(1..)?);
    let b = body.get(..3)?;
    Some(format!("{:02x}{:02x}{:02x}", b[0], b[1], b[2]))
}

/// A `Codec::H264` from the first SPS and PPS among `units` (NAL units without start codes).
pub fn codec_from_units<'a>(units: impl IntoIterator<Item = &'a [u8]>) -> Option<Codec> {
    let mut sps = None;
    let mut pps = None;
    for u in units {
        match nal_type(u) {
            Some(NAL_SPS) if sps.is_none() => sps = Some(Bytes::copy_from_slice(u)),
            Some(NAL_PPS) if pps.is_none() => pps = Some(Bytes::copy_from_slice(u)),
            _ => {}
        }
    }
    Some(Codec::H264 {
        sps: sps?,
        pps: pps?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::bits::test_util::BitWriter;

    fn sps(hex_str: &str) -> Sps {
        Sps::parse(&hex::decode(hex_str).unwrap()).unwrap()
    }

    #[test]
    fn baseline_sps_gives_size_and_profile() {
        // x264 -profile:v baseline, 320x240.
        let s = sps("6742c00dd90141fb011000000300100000030320f142a480");
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(s.profile_level_id(), "42c00d");
        assert_eq!(s.chroma_format_idc, 1);
        assert!(s.frame_mbs_only);
    }

    #[test]
    fn high_profile_1080p_sps_applies_cropping() {
        // x264 -profile:v high, 1920x1080 (coded as 1920x1088, cropped).
        let s = sps("67640028acd940780227e5c044000003000400000300c83c60c658");
        assert_eq!((s.width, s.height), (1920, 1080));
        assert_eq!(s.profile_level_id(), "640028");
    }

    #[test]
    fn high422_sps_uses_chroma_format_for_crop_units() {
        // x264 -profile:v high422 -pix_fmt yuv422p, 640x360.
        let s = sps("677a001ebcd940a02ff89c0440000003004000000c83c58b6580");
        assert_eq!(s.chroma_format_idc, 2);
        assert_eq!((s.width, s.height), (640, 360));
    }

    #[test]
    fn high444_sps_parses() {
        // x264 -profile:v high444 -pix_fmt yuv444p, 1280x720.
        let s = sps("67f4001f919b280a00b76022000003000200000300641e30632c");
        assert_eq!(s.chroma_format_idc, 3);
        assert_eq!((s.width, s.height), (1280, 720));
    }

    #[test]
    fn interlaced_sps_doubles_map_units() {
        // x264 interlaced=1, 720x576.
        let s = sps("6764001eacd940b424d8088000000300800000190f8a14cb");
        assert!(!s.frame_mbs_only);
        assert_eq!((s.width, s.height), (720, 576));
    }

    #[test]
    fn odd_size_sps_crops_to_exact_size() {
        // x264, 100x50.
        let s = sps("6764000aacd947279e23011000000300100000030320f1225960");
        assert_eq!((s.width, s.height), (100, 50));
    }

    #[test]
    fn sps_with_scaling_lists_is_skipped_correctly() {
        let mut w = BitWriter::default();
        w.bits(8, 100); // profile_idc high
        w.bits(8, 0);
        w.bits(8, 31);
        w.ue(0); // sps id
        w.ue(1); // chroma_format_idc
        w.ue(0);
        w.ue(0);
        w.bit(false);
        w.bit(true); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            let present = i % 2 == 0;
            w.bit(present);
            if present {
                let size = if i < 6 { 16 } else { 64 };
                // Some non-trivial deltas, then a delta that makes nextScale 0 (ends the list).
                for j in 0..size.min(5) {
                    w.se(if j % 2 == 0 { 3 } else { -2 });
                }
                if size > 5 {
                    // last = 8+3-2+3-2+3 = 13; 13 + (-13) = 0 -> stop.
                    w.se(-13);
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(0); // poc type 0
        w.ue(0);
        w.ue(1); // max_num_ref_frames
        w.bit(false);
        w.ue(39); // 640
        w.ue(29); // 480
        w.bit(true); // frame_mbs_only
        w.bit(true);
        w.bit(false); // no cropping
        w.bit(true); // vui_parameters_present_flag (not parsed)
        let mut nal = vec![0x67];
        nal.extend(w.finish());
        let s = Sps::parse(&nal).unwrap();
        assert_eq!((s.width, s.height), (640, 480));
        assert_eq!(s.profile_level_id(), "64001f");
    }

    #[test]
    fn profile_level_id_reads_first_three_bytes() {
        assert_eq!(
            profile_level_id(&[0x67, 0x42, 0xc0, 0x1e, 0xff]).as_deref(),
            Some("42c01e")
        );
        assert_eq!(profile_level_id(&[0x68, 1, 2, 3]), None);
        assert_eq!(profile_level_id(&[0x67, 1]), None);
    }

    #[test]
    fn non_sps_and_truncated_input_are_errors() {
        assert_eq!(Sps::parse(&[0x68, 0xce]), Err(SpsError::NotSps(8)));
        assert!(matches!(
            Sps::parse(&[0x67, 0x64]),
            Err(SpsError::Truncated(_))
        ));
        assert!(Sps::parse(&[]).is_err());
    }

    #[test]
    fn keyframe_means_idr_present() {
        let idr = crate::codec::nal::avc_from_units([&[0x67u8, 1][..], &[0x65, 2][..]]);
        let p = crate::codec::nal::avc_from_units([&[0x41u8, 1][..]]);
        assert!(is_keyframe(&idr));
        assert!(!is_keyframe(&p));
    }

    #[test]
    fn codec_from_units_needs_sps_and_pps() {
        let units: [&[u8]; 3] = [&[0x09, 0x10], &[0x67, 0x42], &[0x68, 0xce]];
        assert_eq!(
            codec_from_units(units),
            Some(Codec::H264 {
                sps: Bytes::from_static(&[0x67, 0x42]),
                pps: Bytes::from_static(&[0x68, 0xce]),
            })
        );
        assert_eq!(codec_from_units([&[0x67u8, 0x42][..]]), None);
    }
}
