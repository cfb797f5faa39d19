//! `H264Encoder`: a minimal, lossless, strictly valid H.264 (ITU-T H.264) encoder for test
//! pictures — Constrained Baseline, CAVLC, one slice per picture. IDR pictures are all I_PCM
//! macroblocks; P pictures code unchanged macroblocks as P_Skip and changed ones as I_PCM, so
//! the decoded picture always equals the input exactly and the reference is the last input.

use bytes::Bytes;
use media::Codec;

use super::bits::BitWriter;
use super::picture::Yuv420;

/// NAL unit header of an SPS (nal_ref_idc 3, nal_unit_type 7).
const NAL_SPS: u8 = 0x67;
/// NAL unit header of a PPS (nal_ref_idc 3, nal_unit_type 8).
const NAL_PPS: u8 = 0x68;
/// NAL unit header of an IDR slice (nal_ref_idc 3, nal_unit_type 5).
const NAL_IDR: u8 = 0x65;
/// NAL unit header of a non-IDR reference slice (nal_ref_idc 2, nal_unit_type 1).
const NAL_NON_IDR: u8 = 0x41;

/// log2_max_frame_num used in the SPS.
const LOG2_MAX_FRAME_NUM: u32 = 8;
/// mb_type of I_PCM in an I slice (Table 7-11).
const MB_TYPE_I_PCM_IN_I: u32 = 25;
/// mb_type of I_PCM in a P slice: intra types follow the 5 P types (Table 7-13).
const MB_TYPE_I_PCM_IN_P: u32 = 5 + 25;
/// slice_type P with "all slices of the picture are P" (Table 7-6).
const SLICE_TYPE_P_ALL: u32 = 5;
/// slice_type I with "all slices of the picture are I".
const SLICE_TYPE_I_ALL: u32 = 7;

/// One encoded picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// AVC format: NAL units each preceded by a 4-byte big-endian length; keyframes carry the
    /// SPS and PPS before the IDR slice.
    pub data: Bytes,
    /// True for an IDR picture.
    pub keyframe: bool,
}

/// A lossless I_PCM/P_Skip H.264 encoder; see the module documentation.
#[derive(Debug)]
pub struct H264Encoder {
    width: usize,
    height: usize,
    mb_w: usize,
    mb_h: usize,
    gop: u32,
    fps: u32,
    level_idc: u8,
    sps: Bytes,
    pps: Bytes,
    /// The last encoded input picture (equal to the decoder's reference, zero samples aside).
    prev: Option<Yuv420>,
    frames_since_idr: u32,
    frame_num: u32,
    idr_pic_id: u32,
    force_idr: bool,
    bits: BitWriter,
}

impl H264Encoder {
    /// An encoder for pictures shown at `width` x `height` (even) at 25 fps, with an IDR every
    /// `gop` pictures (0: only the first). Input pictures must be `width` x `height` rounded
    /// up to multiples of 16; the SPS crops the extra rows and columns.
    pub fn new(width: usize, height: usize, gop: u32) -> Self {
        assert!(
            width > 0 && height > 0 && width.is_multiple_of(2) && height.is_multiple_of(2),
            "H.264 picture size {width}x{height}: must be even and non-zero"
        );
        let mb_w = width.div_ceil(16);
        let mb_h = height.div_ceil(16);
        let mut enc = H264Encoder {
            width,
            height,
            mb_w,
            mb_h,
            gop,
            fps: 25,
            level_idc: 0,
            sps: Bytes::new(),
            pps: Bytes::new(),
            prev: None,
            frames_since_idr: 0,
            frame_num: 0,
            idr_pic_id: 0,
            force_idr: false,
            bits: BitWriter::default(),
        };
        enc.build_parameter_sets();
        enc
    }

    /// The same encoder for `fps` frames per second (sets the level and the VUI frame rate).
    pub fn with_fps(mut self, fps: u32) -> Self {
        assert!(fps > 0, "fps must be positive");
        self.fps = fps;
        self.build_parameter_sets();
        self
    }

    /// The sequence parameter set NAL unit (no start code).
    pub fn sps(&self) -> Bytes {
        self.sps.clone()
    }

    /// The picture parameter set NAL unit (no start code).
    pub fn pps(&self) -> Bytes {
        self.pps.clone()
    }

    /// The track codec with this encoder's parameter sets.
    pub fn codec(&self) -> Codec {
        Codec::H264 {
            sps: self.sps(),
            pps: self.pps(),
        }
    }

    /// The level_idc written in the SPS (e.g. 31 for level 3.1).
    pub fn level_idc(&self) -> u8 {
        self.level_idc
    }

    /// Display size (width, height) in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Coded size (width, height): the size input pictures must have.
    pub fn coded_size(&self) -> (usize, usize) {
        (self.mb_w * 16, self.mb_h * 16)
    }

    /// Makes the next picture an IDR.
    pub fn force_keyframe(&mut self) {
        self.force_idr = true;
    }

    /// Encodes one picture of [`H264Encoder::coded_size`].
    pub fn encode(&mut self, pic: &Yuv420) -> EncodedFrame {
        let (cw, ch) = self.coded_size();
        assert!(
            pic.width == cw && pic.height == ch,
            "H.264 encoder for {cw}x{ch} given a {}x{} picture",
            pic.width,
            pic.height
        );
        let idr = self.force_idr
            || self.prev.is_none()
            || (self.gop > 0 && self.frames_since_idr >= self.gop);
        let mut out = Vec::new();
        if idr {
            self.frame_num = 0;
            self.frames_since_idr = 0;
            self.force_idr = false;
            out.reserve(self.sps.len() + self.pps.len() + 8 + self.mb_w * self.mb_h * 400 + 64);
            push_nal(&mut out, &self.sps[..1], &self.sps[1..], true);
            push_nal(&mut out, &self.pps[..1], &self.pps[1..], true);
            self.write_slice(pic, true);
            push_nal(&mut out, &[NAL_IDR], self.bits.as_bytes(), false);
            self.idr_pic_id = (self.idr_pic_id + 1) % 65_536;
        } else {
            self.frame_num = (self.frame_num + 1) % (1 << LOG2_MAX_FRAME_NUM);
            self.write_slice(pic, false);
            out.reserve(self.bits.as_bytes().len() + self.bits.as_bytes().len() / 64 + 8);
            push_nal(&mut out, &[NAL_NON_IDR], self.bits.as_bytes(), false);
        }
        self.frames_since_idr += 1;
        match &mut self.prev {
            Some(prev) => {
                prev.y.copy_from_slice(&pic.y);
                prev.u.copy_from_slice(&pic.u);
                prev.v.copy_from_slice(&pic.v);
            }
            None => self.prev = Some(pic.clone()),
        }
        EncodedFrame {
            data: Bytes::from(out),
            keyframe: idr,
        }
    }

    /// Builds the SPS (7.3.2.1.1) and PPS (7.3.2.2) NAL units, with emulation prevention.
    fn build_parameter_sets(&mut self) {
        self.level_idc = pick_level(self.mb_w, self.mb_h, self.fps, self.gop);
        let (cw, ch) = self.coded_size();
        let mut b = BitWriter::default();
        b.u(8, 66); // profile_idc: Baseline
        b.u(8, 0b1100_0000); // constraint_set0 and set1: Constrained Baseline
        b.u(8, u32::from(self.level_idc));
        b.ue(0); // seq_parameter_set_id
        b.ue(LOG2_MAX_FRAME_NUM - 4); // log2_max_frame_num_minus4
        b.ue(2); // pic_order_cnt_type: output order = decoding order
        b.ue(1); // max_num_ref_frames
        b.u(1, 0); // gaps_in_frame_num_value_allowed_flag
        b.ue(self.mb_w as u32 - 1); // pic_width_in_mbs_minus1
        b.ue(self.mb_h as u32 - 1); // pic_height_in_map_units_minus1
        b.u(1, 1); // frame_mbs_only_flag
        b.u(1, 1); // direct_8x8_inference_flag
        let crop_right = (cw - self.width) / 2; // CropUnitX = 2 for 4:2:0
        let crop_bottom = (ch - self.height) / 2; // CropUnitY = 2 for frame_mbs_only 4:2:0
        if crop_right > 0 || crop_bottom > 0 {
            b.u(1, 1); // frame_cropping_flag
            b.ue(0); // frame_crop_left_offset
            b.ue(crop_right as u32);
            b.ue(0); // frame_crop_top_offset
            b.ue(crop_bottom as u32);
        } else {
            b.u(1, 0);
        }
        b.u(1, 1); // vui_parameters_present_flag
        // E.1.1 vui_parameters
        b.u(1, 0); // aspect_ratio_info_present_flag
        b.u(1, 0); // overscan_info_present_flag
        b.u(1, 1); // video_signal_type_present_flag
        b.u(3, 5); // video_format: unspecified
        b.u(1, 0); // video_full_range_flag: limited range
        b.u(1, 1); // colour_description_present_flag
        b.u(8, 6); // colour_primaries: BT.601 525 / SMPTE 170M
        b.u(8, 6); // transfer_characteristics
        b.u(8, 6); // matrix_coefficients
        b.u(1, 0); // chroma_loc_info_present_flag
        b.u(1, 1); // timing_info_present_flag
        b.u(32, 1); // num_units_in_tick
        b.u(32, 2 * self.fps); // time_scale: two ticks per frame
        b.u(1, 0); // fixed_frame_rate_flag: senders may drop or delay frames
        b.u(1, 0); // nal_hrd_parameters_present_flag
        b.u(1, 0); // vcl_hrd_parameters_present_flag
        b.u(1, 0); // pic_struct_present_flag
        b.u(1, 1); // bitstream_restriction_flag
        b.u(1, 1); // motion_vectors_over_pic_boundaries_flag
        b.ue(0); // max_bytes_per_pic_denom: no limit
        b.ue(0); // max_bits_per_mb_denom: no limit
        b.ue(1); // log2_max_mv_length_horizontal: every motion vector is zero
        b.ue(1); // log2_max_mv_length_vertical
        b.ue(0); // max_num_reorder_frames
        b.ue(1); // max_dec_frame_buffering
        b.trailing_bits();
        let mut sps = Vec::new();
        push_nal(&mut sps, &[NAL_SPS], b.as_bytes(), false);
        self.sps = Bytes::copy_from_slice(&sps[4..]);

        let mut b = BitWriter::default();
        b.ue(0); // pic_parameter_set_id
        b.ue(0); // seq_parameter_set_id
        b.u(1, 0); // entropy_coding_mode_flag: CAVLC
        b.u(1, 0); // bottom_field_pic_order_in_frame_present_flag
        b.ue(0); // num_slice_groups_minus1
        b.ue(0); // num_ref_idx_l0_default_active_minus1
        b.ue(0); // num_ref_idx_l1_default_active_minus1
        b.u(1, 0); // weighted_pred_flag
        b.u(2, 0); // weighted_bipred_idc
        b.se(0); // pic_init_qp_minus26
        b.se(0); // pic_init_qs_minus26
        b.se(0); // chroma_qp_index_offset
        b.u(1, 1); // deblocking_filter_control_present_flag
        b.u(1, 0); // constrained_intra_pred_flag
        b.u(1, 0); // redundant_pic_cnt_present_flag
        b.trailing_bits();
        let mut pps = Vec::new();
        push_nal(&mut pps, &[NAL_PPS], b.as_bytes(), false);
        self.pps = Bytes::copy_from_slice(&pps[4..]);
    }

    /// Writes the slice RBSP (7.3.3 header, 7.3.4 data, trailing bits) into `self.bits`.
    fn write_slice(&mut self, pic: &Yuv420, idr: bool) {
        let b = &mut self.bits;
        b.clear();
        b.ue(0); // first_mb_in_slice
        b.ue(if idr {
            SLICE_TYPE_I_ALL
        } else {
            SLICE_TYPE_P_ALL
        });
        b.ue(0); // pic_parameter_set_id
        b.u(LOG2_MAX_FRAME_NUM, self.frame_num);
        if idr {
            b.ue(self.idr_pic_id);
        } else {
            b.u(1, 0); // num_ref_idx_active_override_flag
            b.u(1, 0); // ref_pic_list_modification_flag_l0
        }
        // dec_ref_pic_marking (nal_ref_idc != 0)
        if idr {
            b.u(1, 0); // no_output_of_prior_pics_flag
            b.u(1, 0); // long_term_reference_flag
        } else {
            b.u(1, 0); // adaptive_ref_pic_marking_mode_flag: sliding window
        }
        b.se(0); // slice_qp_delta
        b.ue(1); // disable_deblocking_filter_idc: off, the reconstruction stays lossless

        let prev = if idr { None } else { self.prev.as_ref() };
        let w = pic.width;
        let cw = w / 2;
        let mut skip_run = 0u32;
        for mby in 0..self.mb_h {
            // Fast path: a whole unchanged row of macroblocks.
            if let Some(prev) = prev {
                let ly = mby * 16 * w..(mby + 1) * 16 * w;
                let cy = mby * 8 * cw..(mby + 1) * 8 * cw;
                if pic.y[ly.clone()] == prev.y[ly]
                    && pic.u[cy.clone()] == prev.u[cy.clone()]
                    && pic.v[cy.clone()] == prev.v[cy]
                {
                    skip_run += self.mb_w as u32;
                    continue;
                }
            }
            for mbx in 0..self.mb_w {
                if let Some(prev) = prev
                    && mb_equal(pic, prev, mbx, mby)
                {
                    skip_run += 1;
                    continue;
                }
                if idr {
                    b.ue(MB_TYPE_I_PCM_IN_I);
                } else {
                    b.ue(skip_run); // mb_skip_run
                    skip_run = 0;
                    b.ue(MB_TYPE_I_PCM_IN_P);
                }
                b.align_zero(); // pcm_alignment_zero_bit
                let mut pcm = [0u8; 384];
                let mut n = 0;
                for r in 0..16 {
                    let o = (mby * 16 + r) * w + mbx * 16;
                    pcm[n..n + 16].copy_from_slice(&pic.y[o..o + 16]);
                    n += 16;
                }
                for plane in [&pic.u, &pic.v] {
                    for r in 0..8 {
                        let o = (mby * 8 + r) * cw + mbx * 8;
                        pcm[n..n + 8].copy_from_slice(&plane[o..o + 8]);
                        n += 8;
                    }
                }
                // Sample value 0 was forbidden in PCM samples by the first edition of H.264;
                // limited-range video never has it, but keep old decoders safe anyway.
                for s in &mut pcm {
                    if *s == 0 {
                        *s = 1;
                    }
                }
                b.bytes(&pcm);
            }
        }
        if skip_run > 0 {
            b.ue(skip_run); // trailing mb_skip_run; more_rbsp_data() is then false
        }
        b.trailing_bits();
    }
}

/// True if macroblock (`mbx`, `mby`) is identical in `a` and `b`.
fn mb_equal(a: &Yuv420, b: &Yuv420, mbx: usize, mby: usize) -> bool {
    let w = a.width;
    for r in 0..16 {
        let o = (mby * 16 + r) * w + mbx * 16;
        if a.y[o..o + 16] != b.y[o..o + 16] {
            return false;
        }
    }
    let cw = w / 2;
    for r in 0..8 {
        let o = (mby * 8 + r) * cw + mbx * 8;
        if a.u[o..o + 8] != b.u[o..o + 8] || a.v[o..o + 8] != b.v[o..o + 8] {
            return false;
        }
    }
    true
}

/// Limits of one level (Table A-1): level_idc, MaxMBPS, MaxFS, MaxBR and MaxCPB (1000 bits
/// for Baseline VCL), MinCR. Level 1b is left out.
const LEVELS: [(u8, u64, u64, u64, u64, u64); 16] = [
    (10, 1_485, 99, 64, 175, 2),
    (11, 3_000, 396, 192, 500, 2),
    (12, 6_000, 396, 384, 1_000, 2),
    (13, 11_880, 396, 768, 2_000, 2),
    (20, 11_880, 396, 2_000, 2_000, 2),
    (21, 19_800, 792, 4_000, 4_000, 2),
    (22, 20_250, 1_620, 4_000, 4_000, 2),
    (30, 40_500, 1_620, 10_000, 10_000, 2),
    (31, 108_000, 3_600, 14_000, 14_000, 4),
    (32, 216_000, 5_120, 20_000, 20_000, 4),
    (40, 245_760, 8_192, 20_000, 25_000, 4),
    (41, 245_760, 8_192, 50_000, 62_500, 4),
    (42, 522_240, 8_704, 50_000, 62_500, 2),
    (50, 589_824, 22_080, 135_000, 135_000, 2),
    (51, 983_040, 36_864, 240_000, 240_000, 2),
    (52, 2_073_600, 36_864, 240_000, 240_000, 2),
];

/// The lowest level whose limits hold a stream of all-I_PCM IDR pictures every `gop` frames
/// at `fps`: frame size, macroblock rate, the per-picture size bound of A.3.1 (MinCR), the
/// CPB size, and a bit rate of 1.5 times the IDR share (P pictures of a test pattern are
/// small).
fn pick_level(mb_w: usize, mb_h: usize, fps: u32, gop: u32) -> u8 {
    let mbs = (mb_w * mb_h) as u64;
    let fps = u64::from(fps);
    let pic_bytes = mbs * 388 + 64; // 384 PCM bytes, mb_skip_run, mb_type, alignment, 0x03s
    let gop = if gop == 0 { 250 } else { u64::from(gop) };
    let bitrate = pic_bytes * 8 * fps * 3 / (2 * gop);
    for &(idc, max_mbps, max_fs, max_br, max_cpb, min_cr) in &LEVELS {
        let side_ok = ((mb_w * mb_w) as u64) <= max_fs * 8 && ((mb_h * mb_h) as u64) <= max_fs * 8;
        if mbs <= max_fs
            && side_ok
            && mbs * fps <= max_mbps
            && pic_bytes * fps * min_cr <= 384 * max_mbps
            && pic_bytes * 8 <= max_cpb * 1000
            && bitrate <= max_br * 1000
        {
            return idc;
        }
    }
    52
}

/// Appends a NAL unit in AVC form (4-byte length, header, payload with emulation prevention
/// bytes inserted unless `escaped`).
fn push_nal(out: &mut Vec<u8>, header: &[u8], payload: &[u8], escaped: bool) {
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(header);
    if escaped {
        out.extend_from_slice(payload);
    } else {
        // 7.4.1: within the NAL unit, 00 00 followed by 00..03 becomes 00 00 03 0x.
        super::bits::escape_rbsp_into(payload, out);
    }
    let len = (out.len() - len_at - 4) as u32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_prevention() {
        let mut out = Vec::new();
        push_nal(&mut out, &[0x65], &[0, 0, 0, 0, 0, 3, 0, 0, 4, 0, 0], false);
        assert_eq!(
            out,
            [0, 0, 0, 14, 0x65, 0, 0, 3, 0, 0, 3, 0, 3, 0, 0, 4, 0, 0]
        );
    }

    #[test]
    fn level_fits_the_picture_size() {
        assert_eq!(pick_level(40, 23, 25, 50), 31);
        assert_eq!(pick_level(40, 23, 30, 50), 32);
        assert_eq!(pick_level(20, 15, 25, 50), 21);
        assert!(pick_level(120, 68, 25, 50) >= 40);
    }

    #[test]
    fn unchanged_picture_is_one_skip_run() {
        let pic = Yuv420::new(64, 32, 100, 128, 128);
        let mut enc = H264Encoder::new(64, 32, 10);
        let idr = enc.encode(&pic);
        assert!(idr.keyframe);
        assert!(idr.data.len() > 8 * 384);
        let p = enc.encode(&pic);
        assert!(!p.keyframe);
        // length, header, then a handful of header bits.
        assert!(p.data.len() < 16, "{:02x?}", &p.data[..]);
        assert_eq!(p.data[4], NAL_NON_IDR);
    }

    #[test]
    fn gop_and_forced_keyframes() {
        let pic = Yuv420::new(32, 32, 100, 128, 128);
        let mut enc = H264Encoder::new(32, 32, 3);
        let keys: Vec<bool> = (0..7).map(|_| enc.encode(&pic).keyframe).collect();
        assert_eq!(keys, [true, false, false, true, false, false, true]);
        enc.force_keyframe();
        assert!(enc.encode(&pic).keyframe);
        assert!(!enc.encode(&pic).keyframe);
    }

    #[test]
    fn keyframes_carry_parameter_sets_first() {
        let pic = Yuv420::new(32, 32, 100, 128, 128);
        let mut enc = H264Encoder::new(32, 32, 0);
        let f = enc.encode(&pic);
        let units: Vec<&[u8]> = media::codec::nal::AvcIter::new(&f.data).collect();
        assert_eq!(units.len(), 3);
        assert_eq!(units[0], &enc.sps()[..]);
        assert_eq!(units[1], &enc.pps()[..]);
        assert_eq!(units[2][0], NAL_IDR);
    }
}
