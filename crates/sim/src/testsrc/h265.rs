//! `H265Encoder`: a minimal, lossless, strictly valid HEVC (ITU-T H.265) encoder for test
//! pictures — Main profile, 8-bit 4:2:0, 16x16 CTBs that are each one coding unit, CABAC, one
//! slice per picture, no SAO, no deblocking. IDR pictures code every CU as intra PCM; P
//! pictures code unchanged CUs with `cu_skip_flag` (one merge candidate: the zero vector to
//! the previous picture) and changed ones as intra PCM, so the decoded picture always equals
//! the input exactly and the reference is the last input.

use bytes::Bytes;
use media::Codec;

use super::bits::{BitWriter, escape_rbsp_into};
use super::picture::Yuv420;

/// nal_unit_type of a video parameter set.
const NUT_VPS: u8 = 32;
/// nal_unit_type of a sequence parameter set.
const NUT_SPS: u8 = 33;
/// nal_unit_type of a picture parameter set.
const NUT_PPS: u8 = 34;
/// nal_unit_type of an IDR picture that may have RADL pictures (it has none).
const NUT_IDR_W_RADL: u8 = 19;
/// nal_unit_type of a trailing reference picture.
const NUT_TRAIL_R: u8 = 1;

/// log2 of the CTB size, which is also the only coding block and PCM block size.
const LOG2_CTB: u32 = 4;
/// CTB width and height in luma samples.
const CTB: usize = 1 << LOG2_CTB;
/// log2_max_pic_order_cnt_lsb.
const LOG2_MAX_POC_LSB: u32 = 8;
/// Pictures after which an IDR is forced even with `gop` 0, keeping PicOrderCntVal in range.
const MAX_POC: u32 = 1 << 30;
/// SliceQpY (26 + init_qp_minus26 + slice_qp_delta); only used for context initialisation.
const SLICE_QP: i32 = 26;

/// slice_type values (Table 7-7).
const SLICE_P: u32 = 1;
/// slice_type of an I slice.
const SLICE_I: u32 = 2;

/// One encoded picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// AVC format: NAL units each preceded by a 4-byte big-endian length; keyframes carry the
    /// VPS, SPS and PPS before the IDR slice.
    pub data: Bytes,
    /// True for an IDR picture.
    pub keyframe: bool,
}

/// A lossless PCM/skip HEVC encoder; see the module documentation.
#[derive(Debug)]
pub struct H265Encoder {
    width: usize,
    height: usize,
    ctb_w: usize,
    ctb_h: usize,
    gop: u32,
    fps: u32,
    level_idc: u8,
    vps: Bytes,
    sps: Bytes,
    pps: Bytes,
    /// The last encoded input picture, equal to the decoder's reference picture.
    prev: Option<Yuv420>,
    frames_since_idr: u32,
    force_idr: bool,
    /// Per CTB column: was the CU above (in the row being coded) skipped.
    skip_above: Vec<bool>,
    /// Scratch slice RBSP.
    rbsp: BitWriter,
}

impl H265Encoder {
    /// An encoder for pictures shown at `width` x `height` (even) at 25 fps, with an IDR every
    /// `gop` pictures (0: only the first, then one per 2^30 pictures to bound the POC). Input pictures must be `width` x `height` rounded
    /// up to multiples of 16; the SPS conformance window crops the extra rows and columns.
    pub fn new(width: usize, height: usize, gop: u32) -> Self {
        assert!(
            width > 0 && height > 0 && width.is_multiple_of(2) && height.is_multiple_of(2),
            "H.265 picture size {width}x{height}: must be even and non-zero"
        );
        let ctb_w = width.div_ceil(CTB);
        let ctb_h = height.div_ceil(CTB);
        let mut enc = H265Encoder {
            width,
            height,
            ctb_w,
            ctb_h,
            gop,
            fps: 25,
            level_idc: 0,
            vps: Bytes::new(),
            sps: Bytes::new(),
            pps: Bytes::new(),
            prev: None,
            frames_since_idr: 0,
            force_idr: false,
            skip_above: vec![false; ctb_w],
            rbsp: BitWriter::new(),
        };
        enc.build_parameter_sets();
        enc
    }

    /// The same encoder for `fps` frames per second (chooses the level).
    pub fn with_fps(mut self, fps: u32) -> Self {
        assert!(fps > 0, "fps must be positive");
        self.fps = fps;
        self.build_parameter_sets();
        self
    }

    /// The video parameter set NAL unit (2-byte header, no start code).
    pub fn vps(&self) -> Bytes {
        self.vps.clone()
    }

    /// The sequence parameter set NAL unit (2-byte header, no start code).
    pub fn sps(&self) -> Bytes {
        self.sps.clone()
    }

    /// The picture parameter set NAL unit (2-byte header, no start code).
    pub fn pps(&self) -> Bytes {
        self.pps.clone()
    }

    /// The track codec with this encoder's parameter sets.
    pub fn codec(&self) -> Codec {
        Codec::H265 {
            vps: self.vps(),
            sps: self.sps(),
            pps: self.pps(),
        }
    }

    /// The general_level_idc written in the VPS and SPS (30 × the level, e.g. 93 for 3.1).
    pub fn level_idc(&self) -> u8 {
        self.level_idc
    }

    /// Display size (width, height) in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Coded size (width, height): the size input pictures must have.
    pub fn coded_size(&self) -> (usize, usize) {
        (self.ctb_w * CTB, self.ctb_h * CTB)
    }

    /// Makes the next picture an IDR.
    pub fn force_keyframe(&mut self) {
        self.force_idr = true;
    }

    /// Encodes one picture of [`H265Encoder::coded_size`].
    pub fn encode(&mut self, pic: &Yuv420) -> EncodedFrame {
        let (cw, ch) = self.coded_size();
        assert!(
            pic.width == cw && pic.height == ch,
            "H.265 encoder for {cw}x{ch} given a {}x{} picture",
            pic.width,
            pic.height
        );
        let idr = self.force_idr
            || self.prev.is_none()
            || (self.gop > 0 && self.frames_since_idr >= self.gop)
            || self.frames_since_idr >= MAX_POC;
        if idr {
            self.frames_since_idr = 0;
            self.force_idr = false;
        }
        let poc = self.frames_since_idr;
        self.write_slice(pic, idr, poc);

        let slice = self.rbsp.as_bytes();
        let mut out = Vec::with_capacity(slice.len() + slice.len() / 64 + 128);
        if idr {
            for ps in [&self.vps, &self.sps, &self.pps] {
                out.extend_from_slice(&(ps.len() as u32).to_be_bytes());
                out.extend_from_slice(ps);
            }
        }
        let nut = if idr { NUT_IDR_W_RADL } else { NUT_TRAIL_R };
        push_nal(&mut out, nut, slice);

        match &mut self.prev {
            Some(prev) => {
                prev.y.copy_from_slice(&pic.y);
                prev.u.copy_from_slice(&pic.u);
                prev.v.copy_from_slice(&pic.v);
            }
            None => self.prev = Some(pic.clone()),
        }
        self.frames_since_idr += 1;
        EncodedFrame {
            data: Bytes::from(out),
            keyframe: idr,
        }
    }

    /// Builds the VPS, SPS and PPS for the current size, fps and GOP.
    fn build_parameter_sets(&mut self) {
        let (cw, ch) = self.coded_size();
        self.level_idc = pick_level(cw, ch, self.fps, self.gop);

        // Video parameter set (§7.3.2.1).
        let mut b = BitWriter::new();
        b.u(4, 0); // vps_video_parameter_set_id
        b.flag(true); // vps_base_layer_internal_flag
        b.flag(true); // vps_base_layer_available_flag
        b.u(6, 0); // vps_max_layers_minus1
        b.u(3, 0); // vps_max_sub_layers_minus1
        b.flag(true); // vps_temporal_id_nesting_flag
        b.u(16, 0xffff); // vps_reserved_0xffff_16bits
        profile_tier_level(&mut b, self.level_idc);
        b.flag(true); // vps_sub_layer_ordering_info_present_flag
        b.ue(1); // vps_max_dec_pic_buffering_minus1: the reference and the current picture
        b.ue(0); // vps_max_num_reorder_pics
        b.ue(0); // vps_max_latency_increase_plus1
        b.u(6, 0); // vps_max_layer_id
        b.ue(0); // vps_num_layer_sets_minus1
        b.flag(false); // vps_timing_info_present_flag
        b.flag(false); // vps_extension_flag
        b.trailing_bits();
        self.vps = nal_unit(NUT_VPS, b.as_bytes());

        // Sequence parameter set (§7.3.2.2).
        let mut b = BitWriter::new();
        b.u(4, 0); // sps_video_parameter_set_id
        b.u(3, 0); // sps_max_sub_layers_minus1
        b.flag(true); // sps_temporal_id_nesting_flag
        profile_tier_level(&mut b, self.level_idc);
        b.ue(0); // sps_seq_parameter_set_id
        b.ue(1); // chroma_format_idc: 4:2:0
        b.ue(cw as u32); // pic_width_in_luma_samples
        b.ue(ch as u32); // pic_height_in_luma_samples
        let crop = cw != self.width || ch != self.height;
        b.flag(crop); // conformance_window_flag
        if crop {
            // Offsets in chroma sample units (SubWidthC = SubHeightC = 2).
            b.ue(0); // conf_win_left_offset
            b.ue(((cw - self.width) / 2) as u32); // conf_win_right_offset
            b.ue(0); // conf_win_top_offset
            b.ue(((ch - self.height) / 2) as u32); // conf_win_bottom_offset
        }
        b.ue(0); // bit_depth_luma_minus8
        b.ue(0); // bit_depth_chroma_minus8
        b.ue(LOG2_MAX_POC_LSB - 4); // log2_max_pic_order_cnt_lsb_minus4
        b.flag(true); // sps_sub_layer_ordering_info_present_flag
        b.ue(1); // sps_max_dec_pic_buffering_minus1
        b.ue(0); // sps_max_num_reorder_pics
        b.ue(0); // sps_max_latency_increase_plus1
        b.ue(LOG2_CTB - 3); // log2_min_luma_coding_block_size_minus3: 16x16 CUs
        b.ue(0); // log2_diff_max_min_luma_coding_block_size: CTB = CU = 16x16
        b.ue(0); // log2_min_luma_transform_block_size_minus2: 4x4
        b.ue(2); // log2_diff_max_min_luma_transform_block_size: 16x16
        b.ue(0); // max_transform_hierarchy_depth_inter
        b.ue(0); // max_transform_hierarchy_depth_intra
        b.flag(false); // scaling_list_enabled_flag
        b.flag(false); // amp_enabled_flag
        b.flag(false); // sample_adaptive_offset_enabled_flag
        b.flag(true); // pcm_enabled_flag
        b.u(4, 7); // pcm_sample_bit_depth_luma_minus1: 8-bit, lossless
        b.u(4, 7); // pcm_sample_bit_depth_chroma_minus1
        b.ue(LOG2_CTB - 3); // log2_min_pcm_luma_coding_block_size_minus3: 16x16
        b.ue(0); // log2_diff_max_min_pcm_luma_coding_block_size
        b.flag(true); // pcm_loop_filter_disabled_flag
        b.ue(1); // num_short_term_ref_pic_sets
        // st_ref_pic_set(0) (§7.3.7): one negative picture, the previous one, used.
        b.ue(1); // num_negative_pics
        b.ue(0); // num_positive_pics
        b.ue(0); // delta_poc_s0_minus1[0]
        b.flag(true); // used_by_curr_pic_s0_flag[0]
        b.flag(false); // long_term_ref_pics_present_flag
        b.flag(false); // sps_temporal_mvp_enabled_flag
        b.flag(false); // strong_intra_smoothing_enabled_flag
        b.flag(false); // vui_parameters_present_flag
        b.flag(false); // sps_extension_present_flag
        b.trailing_bits();
        self.sps = nal_unit(NUT_SPS, b.as_bytes());

        // Picture parameter set (§7.3.2.3).
        let mut b = BitWriter::new();
        b.ue(0); // pps_pic_parameter_set_id
        b.ue(0); // pps_seq_parameter_set_id
        b.flag(false); // dependent_slice_segments_enabled_flag
        b.flag(false); // output_flag_present_flag
        b.u(3, 0); // num_extra_slice_header_bits
        b.flag(false); // sign_data_hiding_enabled_flag
        b.flag(false); // cabac_init_present_flag
        b.ue(0); // num_ref_idx_l0_default_active_minus1
        b.ue(0); // num_ref_idx_l1_default_active_minus1
        b.se(SLICE_QP - 26); // init_qp_minus26
        b.flag(false); // constrained_intra_pred_flag
        b.flag(false); // transform_skip_enabled_flag
        b.flag(false); // cu_qp_delta_enabled_flag
        b.se(0); // pps_cb_qp_offset
        b.se(0); // pps_cr_qp_offset
        b.flag(false); // pps_slice_chroma_qp_offsets_present_flag
        b.flag(false); // weighted_pred_flag
        b.flag(false); // weighted_bipred_flag
        b.flag(false); // transquant_bypass_enabled_flag
        b.flag(false); // tiles_enabled_flag
        b.flag(false); // entropy_coding_sync_enabled_flag
        b.flag(false); // pps_loop_filter_across_slices_enabled_flag
        b.flag(true); // deblocking_filter_control_present_flag
        b.flag(false); // deblocking_filter_override_enabled_flag
        b.flag(true); // pps_deblocking_filter_disabled_flag: skip next to PCM stays lossless
        b.flag(false); // pps_scaling_list_data_present_flag
        b.flag(false); // lists_modification_present_flag
        b.ue(0); // log2_parallel_merge_level_minus2
        b.flag(false); // slice_segment_header_extension_present_flag
        b.flag(false); // pps_extension_present_flag
        b.trailing_bits();
        self.pps = nal_unit(NUT_PPS, b.as_bytes());
    }

    /// Writes the slice segment RBSP of one picture into `self.rbsp`.
    fn write_slice(&mut self, pic: &Yuv420, idr: bool, poc: u32) {
        let w = &mut self.rbsp;
        w.clear();
        // slice_segment_header() (§7.3.6.1).
        w.flag(true); // first_slice_segment_in_pic_flag
        if idr {
            w.flag(false); // no_output_of_prior_pics_flag
        }
        w.ue(0); // slice_pic_parameter_set_id
        w.ue(if idr { SLICE_I } else { SLICE_P }); // slice_type
        if !idr {
            w.u(LOG2_MAX_POC_LSB, poc & ((1 << LOG2_MAX_POC_LSB) - 1)); // slice_pic_order_cnt_lsb
            w.flag(true); // short_term_ref_pic_set_sps_flag (the only set: no index coded)
            w.flag(false); // num_ref_idx_active_override_flag
            w.ue(4); // five_minus_max_num_merge_cand: MaxNumMergeCand = 1, no merge_idx
        }
        w.se(0); // slice_qp_delta
        // byte_alignment()
        w.trailing_bits();

        // slice_segment_data() (§7.3.8.1).
        let mut ctx = Contexts::new(idr);
        let mut cabac = Cabac::new();
        let prev = if idr { None } else { self.prev.as_ref() };
        let width = pic.width;
        let cwidth = width / 2;
        let last = self.ctb_w * self.ctb_h - 1;
        for ry in 0..self.ctb_h {
            // A whole row of CTBs unchanged in all three planes: every CU in it is skipped.
            let row_same = prev.is_some_and(|p| {
                let ly = ry * CTB * width..(ry + 1) * CTB * width;
                let cy = ry * CTB / 2 * cwidth..(ry + 1) * CTB / 2 * cwidth;
                p.y[ly.clone()] == pic.y[ly]
                    && p.u[cy.clone()] == pic.u[cy.clone()]
                    && p.v[cy.clone()] == pic.v[cy]
            });
            let mut skip_left = false;
            for rx in 0..self.ctb_w {
                let x0 = rx * CTB;
                let y0 = ry * CTB;
                // coding_quadtree(): no split_cu_flag (CTB = MinCb); coding_unit():
                if let Some(p) = prev {
                    let skip = row_same || cu_equal(p, pic, x0, y0);
                    let inc = usize::from(rx > 0 && skip_left)
                        + usize::from(ry > 0 && self.skip_above[rx]);
                    cabac.decision(w, &mut ctx.cu_skip_flag[inc], skip);
                    skip_left = skip;
                    self.skip_above[rx] = skip;
                    if !skip {
                        cabac.decision(w, &mut ctx.pred_mode_flag, true); // MODE_INTRA
                        cabac.decision(w, &mut ctx.part_mode, true); // PART_2Nx2N
                        write_pcm(&mut cabac, w, pic, x0, y0);
                    }
                    // A skipped CU is prediction_unit() with merge_idx inferred 0: nothing.
                } else {
                    // I slice: CuPredMode is MODE_INTRA, no skip or pred_mode flags.
                    cabac.decision(w, &mut ctx.part_mode, true); // PART_2Nx2N
                    write_pcm(&mut cabac, w, pic, x0, y0);
                }
                let end = ry * self.ctb_w + rx == last;
                cabac.terminate(w, end); // end_of_slice_segment_flag
            }
        }
        // rbsp_slice_segment_trailing_bits(): the flush ended with the stop bit; align.
        w.align_zero();
    }
}

/// Codes pcm_flag = 1, pcm_alignment_zero_bits, the raw samples of the 16x16 CU at
/// (`x0`, `y0`) and restarts the arithmetic coder (§9.3.2.5).
fn write_pcm(cabac: &mut Cabac, w: &mut BitWriter, pic: &Yuv420, x0: usize, y0: usize) {
    cabac.terminate(w, true); // pcm_flag, then the coder is flushed
    w.align_zero(); // pcm_alignment_zero_bit
    // pcm_sample(): luma in raster order, then Cb, then Cr.
    for row in y0..y0 + CTB {
        let o = row * pic.width + x0;
        w.bytes(&pic.y[o..o + CTB]);
    }
    let cwidth = pic.width / 2;
    for plane in [&pic.u, &pic.v] {
        for row in y0 / 2..(y0 + CTB) / 2 {
            let o = row * cwidth + x0 / 2;
            w.bytes(&plane[o..o + CTB / 2]);
        }
    }
    *cabac = Cabac::new();
}

/// True if the 16x16 CU at (`x0`, `y0`) is identical in `a` and `b` in all three planes.
fn cu_equal(a: &Yuv420, b: &Yuv420, x0: usize, y0: usize) -> bool {
    let w = a.width;
    for row in y0..y0 + CTB {
        let o = row * w + x0;
        if a.y[o..o + CTB] != b.y[o..o + CTB] {
            return false;
        }
    }
    let cw = w / 2;
    for row in y0 / 2..(y0 + CTB) / 2 {
        let o = row * cw + x0 / 2;
        if a.u[o..o + CTB / 2] != b.u[o..o + CTB / 2] || a.v[o..o + CTB / 2] != b.v[o..o + CTB / 2]
        {
            return false;
        }
    }
    true
}

/// profile_tier_level(1, 0) (§7.3.3): Main profile, Main tier, progressive frames.
fn profile_tier_level(b: &mut BitWriter, level_idc: u8) {
    b.u(2, 0); // general_profile_space
    b.flag(false); // general_tier_flag: Main tier
    b.u(5, 1); // general_profile_idc: Main
    // general_profile_compatibility_flag[j]: Main (1) and Main 10 (2).
    b.u(32, (1 << (31 - 1)) | (1 << (31 - 2)));
    b.flag(true); // general_progressive_source_flag
    b.flag(false); // general_interlaced_source_flag
    b.flag(false); // general_non_packed_constraint_flag
    b.flag(true); // general_frame_only_constraint_flag
    b.u(32, 0); // general_reserved_zero_43bits (first 32)
    b.u(11, 0); // general_reserved_zero_43bits (last 11)
    b.flag(false); // general_inbld_flag / reserved
    b.u(8, u32::from(level_idc)); // general_level_idc
}

/// One NAL unit: the 2-byte header (layer 0, TemporalId 0) and the escaped RBSP.
fn nal_unit(nut: u8, rbsp: &[u8]) -> Bytes {
    let mut v = vec![nut << 1, 1];
    escape_rbsp_into(rbsp, &mut v);
    Bytes::from(v)
}

/// Appends a length-prefixed NAL unit of type `nut` with the escaped `rbsp` to `out`.
fn push_nal(out: &mut Vec<u8>, nut: u8, rbsp: &[u8]) {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, nut << 1, 1]);
    escape_rbsp_into(rbsp, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Level limits (Main tier, general tier and level limits table of Annex A):
/// (general_level_idc, MaxLumaPs, MaxCPB = MaxBR in units of 1000 bits, MaxLumaSr, MinCrBase).
const LEVELS: [(u8, u64, u64, u64, u64); 13] = [
    (30, 36_864, 350, 552_960, 2),
    (60, 122_880, 1_500, 3_686_400, 2),
    (63, 245_760, 3_000, 7_372_800, 2),
    (90, 552_960, 6_000, 16_588_800, 2),
    (93, 983_040, 10_000, 33_177_600, 2),
    (120, 2_228_224, 12_000, 66_846_720, 4),
    (123, 2_228_224, 20_000, 133_693_440, 4),
    (150, 8_912_896, 25_000, 267_386_880, 6),
    (153, 8_912_896, 40_000, 534_773_760, 8),
    (156, 8_912_896, 60_000, 1_069_547_520, 8),
    (180, 35_651_584, 60_000, 1_069_547_520, 8),
    (183, 35_651_584, 120_000, 2_139_095_040, 8),
    (186, 35_651_584, 240_000, 4_278_190_080, 6),
];

/// The lowest level whose limits allow this stream with every picture all PCM: picture size
/// and width/height, luma sample rate, the CPB holding one picture, the access unit size
/// limit of MinCr (bytes × fps × MinCr ≤ 1.5 × MaxLumaSr), and a bit rate of 1.5 pictures per
/// GOP (250 pictures when `gop` is 0).
fn pick_level(cw: usize, ch: usize, fps: u32, gop: u32) -> u8 {
    let ps = (cw * ch) as u64;
    let fps = u64::from(fps);
    // 384 PCM bytes per CU, a few bits of CABAC and alignment, emulation prevention bytes.
    let pic_bytes = ps * 3 / 2 + ps / 256 * 4 + ps * 3 / 2 / 128 + 64;
    let gop = if gop == 0 { 250 } else { u64::from(gop) };
    let bitrate = pic_bytes * 8 * fps * 3 / (2 * gop);
    for &(idc, max_ps, max_kbits, max_sr, min_cr) in &LEVELS {
        let max_dim = ((max_ps * 8) as f64).sqrt() as u64;
        if ps <= max_ps
            && (cw as u64) <= max_dim
            && (ch as u64) <= max_dim
            && ps * fps <= max_sr
            && pic_bytes * fps * min_cr * 2 <= 3 * max_sr
            && pic_bytes * 8 <= max_kbits * 1000
            && bitrate <= max_kbits * 1000
        {
            return idc;
        }
    }
    186
}

/// A CABAC context variable: probability state index and most probable symbol.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    state: u8,
    mps: bool,
}

impl Ctx {
    /// Initialises a context from its initValue at SliceQpY (§9.3.2.2).
    fn new(init_value: u8) -> Self {
        let slope = i32::from(init_value >> 4);
        let offset = i32::from(init_value & 15);
        let m = slope * 5 - 45;
        let n = (offset << 3) - 16;
        let pre = (((m * SLICE_QP.clamp(0, 51)) >> 4) + n).clamp(1, 126);
        if pre <= 63 {
            Ctx {
                state: (63 - pre) as u8,
                mps: false,
            }
        } else {
            Ctx {
                state: (pre - 64) as u8,
                mps: true,
            }
        }
    }
}

/// The context variables this encoder uses, initialised for the slice type (initType 0 for
/// I slices, 1 for P slices without cabac_init_flag).
struct Contexts {
    /// cu_skip_flag, ctxInc 0..2 (initValue 197, 185, 201 for initType 1).
    cu_skip_flag: [Ctx; 3],
    /// pred_mode_flag (initValue 149 for initType 1).
    pred_mode_flag: Ctx,
    /// part_mode, first bin (initValue 184 for initType 0, 154 for initType 1).
    part_mode: Ctx,
}

impl Contexts {
    /// The contexts of an I slice (`intra`) or a P slice at SliceQpY.
    fn new(intra: bool) -> Self {
        if intra {
            Contexts {
                cu_skip_flag: [Ctx::new(154); 3], // unused in I slices
                pred_mode_flag: Ctx::new(154),    // unused in I slices
                part_mode: Ctx::new(184),
            }
        } else {
            Contexts {
                cu_skip_flag: [Ctx::new(197), Ctx::new(185), Ctx::new(201)],
                pred_mode_flag: Ctx::new(149),
                part_mode: Ctx::new(154),
            }
        }
    }
}

/// rangeTabLps[pStateIdx][qRangeIdx] (Table 9-52).
const RANGE_TAB_LPS: [[u8; 4]; 64] = [
    [128, 176, 208, 240],
    [128, 167, 197, 227],
    [128, 158, 187, 216],
    [123, 150, 178, 205],
    [116, 142, 169, 195],
    [111, 135, 160, 185],
    [105, 128, 152, 175],
    [100, 122, 144, 166],
    [95, 116, 137, 158],
    [90, 110, 130, 150],
    [85, 104, 123, 142],
    [81, 99, 117, 135],
    [77, 94, 111, 128],
    [73, 89, 105, 122],
    [69, 85, 100, 116],
    [66, 80, 95, 110],
    [62, 76, 90, 104],
    [59, 72, 86, 99],
    [56, 69, 81, 94],
    [53, 65, 77, 89],
    [51, 62, 73, 85],
    [48, 59, 69, 80],
    [46, 56, 66, 76],
    [43, 53, 63, 72],
    [41, 50, 59, 69],
    [39, 48, 56, 65],
    [37, 45, 54, 62],
    [35, 43, 51, 59],
    [33, 41, 48, 56],
    [32, 39, 46, 53],
    [30, 37, 43, 50],
    [29, 35, 41, 48],
    [27, 33, 39, 45],
    [26, 31, 37, 43],
    [24, 30, 35, 41],
    [23, 28, 33, 39],
    [22, 27, 32, 37],
    [21, 26, 30, 35],
    [20, 24, 29, 33],
    [19, 23, 27, 31],
    [18, 22, 26, 30],
    [17, 21, 25, 28],
    [16, 20, 23, 27],
    [15, 19, 22, 25],
    [14, 18, 21, 24],
    [14, 17, 20, 23],
    [13, 16, 19, 22],
    [12, 15, 18, 21],
    [12, 14, 17, 20],
    [11, 14, 16, 19],
    [11, 13, 15, 18],
    [10, 12, 15, 17],
    [10, 12, 14, 16],
    [9, 11, 13, 15],
    [9, 11, 12, 14],
    [8, 10, 12, 14],
    [8, 9, 11, 13],
    [7, 9, 11, 12],
    [7, 9, 10, 12],
    [7, 8, 10, 11],
    [6, 8, 9, 11],
    [6, 7, 9, 10],
    [6, 7, 8, 9],
    [2, 2, 2, 2],
];

/// transIdxLps[pStateIdx] (Table 9-53); transIdxMps is min(pStateIdx + 1, 62).
const TRANS_IDX_LPS: [u8; 64] = [
    0, 0, 1, 2, 2, 4, 4, 5, 6, 7, 8, 9, 9, 11, 11, 12, 13, 13, 15, 15, 16, 16, 18, 18, 19, 19, 21,
    21, 22, 22, 23, 24, 24, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 30, 31, 32, 32, 33, 33, 33, 34,
    34, 35, 35, 35, 36, 36, 36, 37, 37, 37, 38, 38, 63,
];

/// The CABAC arithmetic encoder (the encoding direction of §9.3.4.3, as in H.264 §9.3.4.2):
/// a 10-bit low register with outstanding-bit carry resolution.
#[derive(Debug)]
struct Cabac {
    low: u32,
    range: u32,
    outstanding: u32,
    first_bit: bool,
}

impl Cabac {
    /// A freshly initialised encoder (start of slice data, or after PCM samples).
    fn new() -> Self {
        Cabac {
            low: 0,
            range: 510,
            outstanding: 0,
            first_bit: true,
        }
    }

    /// PutBit: writes `bit` (except the very first, which is the carry position) and resolves
    /// the outstanding bits.
    fn put_bit(&mut self, w: &mut BitWriter, bit: u32) {
        if self.first_bit {
            self.first_bit = false;
        } else {
            w.u(1, bit);
        }
        while self.outstanding > 0 {
            let n = self.outstanding.min(32);
            let v = if bit == 0 { u32::MAX } else { 0 };
            w.u(n, v);
            self.outstanding -= n;
        }
    }

    /// RenormE.
    fn renorm(&mut self, w: &mut BitWriter) {
        while self.range < 256 {
            if self.low < 256 {
                self.put_bit(w, 0);
            } else if self.low >= 512 {
                self.low -= 512;
                self.put_bit(w, 1);
            } else {
                self.low -= 256;
                self.outstanding += 1;
            }
            self.range <<= 1;
            self.low <<= 1;
        }
    }

    /// EncodeDecision: codes `bin` with the adaptive context `ctx`.
    fn decision(&mut self, w: &mut BitWriter, ctx: &mut Ctx, bin: bool) {
        let lps = u32::from(RANGE_TAB_LPS[ctx.state as usize][((self.range >> 6) & 3) as usize]);
        self.range -= lps;
        if bin != ctx.mps {
            self.low += self.range;
            self.range = lps;
            if ctx.state == 0 {
                ctx.mps = !ctx.mps;
            }
            ctx.state = TRANS_IDX_LPS[ctx.state as usize];
        } else if ctx.state < 62 {
            ctx.state += 1;
        }
        self.renorm(w);
    }

    /// EncodeTerminate: codes `bin` of end_of_slice_segment_flag or pcm_flag; a one also
    /// flushes the encoder, whose last written bit is then 1 (the rbsp_stop_one_bit at the
    /// end of a slice; before PCM samples it is followed by pcm_alignment_zero_bits).
    fn terminate(&mut self, w: &mut BitWriter, bin: bool) {
        self.range -= 2;
        if bin {
            self.low += self.range;
            // EncodeFlush.
            self.range = 2;
            self.renorm(w);
            self.put_bit(w, (self.low >> 9) & 1);
            w.u(2, ((self.low >> 7) & 3) | 1);
        } else {
            self.renorm(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_initialisation_matches_the_formula() {
        // initValue 154 at QP 26: slope 9, offset 10 -> m 0, n 64 -> preCtxState 64: MPS 1, state 0.
        let c = Ctx::new(154);
        assert_eq!((c.state, c.mps), (0, true));
        // initValue 184: slope 11, offset 8 -> m 10, n 48 -> (260 >> 4) + 48 = 64.
        let c = Ctx::new(184);
        assert_eq!((c.state, c.mps), (0, true));
    }

    #[test]
    fn parameter_sets_start_with_their_nal_headers() {
        let e = H265Encoder::new(640, 360, 50);
        assert_eq!(&e.vps()[..2], &[0x40, 0x01]);
        assert_eq!(&e.sps()[..2], &[0x42, 0x01]);
        assert_eq!(&e.pps()[..2], &[0x44, 0x01]);
        assert_eq!(e.coded_size(), (640, 368));
        assert_eq!(e.level_idc(), 90);
    }
}
