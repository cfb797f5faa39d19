//! `AacToneEncoder`: AAC-LC (ISO/IEC 14496-3) raw access units carrying a steady ~1 kHz sine
//! tone, for simulated cameras' audio tracks.
//!
//! Every access unit is the same long-window (ONLY_LONG_SEQUENCE, sine window) frame with a
//! single non-zero MDCT line: the bands below the tone use ZERO_HCB, the band holding it uses
//! spectrum codebook 1 with all-zero quadruples (one-bit codewords), and the pulse tool adds
//! the amplitude to the tone's line. A constant even line `k` in every frame overlaps and adds
//! to a pure sinusoid of exactly `k * rate / 2048` Hz with amplitude `c / 1024` (full scale
//! 32768), where `c` is the dequantised coefficient.

use bytes::Bytes;
use media::Codec;

use super::bits::BitWriter;

/// Samples per access unit (frameLengthFlag 0).
pub const SAMPLES_PER_FRAME: usize = 1024;

/// The tone frequency aimed at, in Hz.
const TARGET_HZ: u32 = 1000;
/// global_gain, which is also the tone band's scalefactor: with the quantised value 15 the
/// coefficient is 15^(4/3) * 2^((171 - 100) / 4) ≈ 8.15e6, a tone of amplitude ≈ 7960
/// (about -12 dBFS).
const GLOBAL_GAIN: u32 = 171;
/// Quantised magnitude the pulse adds to the tone's line (4 bits, at most 15).
const PULSE_AMP: u32 = 15;

/// Raw data block element ids (Table 4.85).
const ID_SCE: u32 = 0;
/// Channel pair element.
const ID_CPE: u32 = 1;
/// End of the raw data block.
const ID_END: u32 = 7;
/// Section codebook of bands whose coefficients are all zero.
const ZERO_HCB: u32 = 0;
/// Spectrum codebook 1: signed quadruples of -1..=1.
const HCB_1: u32 = 1;

/// Supported sampling rates: (rate, samplingFrequencyIndex, the first long-window scalefactor
/// band offsets of Tables 4.129-4.140, covering at least up to 1.1 kHz).
const RATES: [(u32, u8, &[u16]); 9] = [
    (48_000, 3, SWB_48K),
    (44_100, 4, SWB_48K),
    (32_000, 5, SWB_48K),
    (24_000, 6, SWB_24K),
    (22_050, 7, SWB_24K),
    (16_000, 8, SWB_16K),
    (12_000, 9, SWB_16K),
    (11_025, 10, SWB_16K),
    (8_000, 11, SWB_8K),
];

/// swb_offset_long_window for 48, 44.1 and 32 kHz (start).
const SWB_48K: &[u16] = &[
    0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64, 72, 80, 88, 96, 108, 120,
];
/// swb_offset_long_window for 24 and 22.05 kHz (start).
const SWB_24K: &[u16] = &[
    0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 52, 60, 68, 76, 84, 92, 100, 108, 116, 124,
];
/// swb_offset_long_window for 16, 12 and 11.025 kHz (start).
const SWB_16K: &[u16] = &[
    0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 100, 112, 124, 136, 148, 160, 172, 184, 196, 212,
];
/// swb_offset_long_window for 8 kHz (start).
const SWB_8K: &[u16] = &[
    0, 12, 24, 36, 48, 60, 72, 84, 96, 108, 120, 132, 144, 156, 172, 188, 204, 220, 236, 252, 268,
    288,
];

/// An AAC-LC encoder of a constant sine tone; every access unit is 1024 samples.
#[derive(Clone, Debug)]
pub struct AacToneEncoder {
    sample_rate: u32,
    channels: u8,
    freq_index: u8,
    /// MDCT line of the tone (even).
    line: usize,
    /// The (identical) access unit.
    au: Bytes,
    frames: u64,
}

impl AacToneEncoder {
    /// A tone encoder for `sample_rate` Hz (8000..=48000; snapped to the nearest rate of
    /// 8, 11.025, 12, 16, 22.05, 24, 32, 44.1 or 48 kHz) and 1 or 2 `channels`.
    pub fn new(sample_rate: u32, channels: u8) -> Self {
        assert!(
            (1..=2).contains(&channels),
            "AAC tone encoder: {channels} channels, only 1 or 2 supported"
        );
        let &(rate, freq_index, swb) = RATES
            .iter()
            .min_by_key(|(r, _, _)| r.abs_diff(sample_rate))
            .expect("rate table is not empty");
        // The even MDCT line nearest the target frequency: line k sounds at k * rate / 2048.
        let half = f64::from(TARGET_HZ) * 2048.0 / f64::from(rate) / 2.0;
        let line = 2 * half.round() as usize;
        let band = swb
            .windows(2)
            .position(|b| (b[0] as usize..b[1] as usize).contains(&line))
            .expect("tone line inside the band table");
        let au = build_au(channels, swb, band, line);
        AacToneEncoder {
            sample_rate: rate,
            channels,
            freq_index,
            line,
            au,
            frames: 0,
        }
    }

    /// The sampling rate actually coded, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of channels.
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// The exact tone frequency in Hz (within 2% of 1 kHz).
    pub fn tone_hz(&self) -> f64 {
        self.line as f64 * f64::from(self.sample_rate) / 2048.0
    }

    /// The samplingFrequencyIndex (also used in ADTS headers).
    pub fn sampling_frequency_index(&self) -> u8 {
        self.freq_index
    }

    /// The 2-byte AudioSpecificConfig: AAC LC, the rate index, the channel configuration,
    /// 1024-sample frames.
    pub fn audio_specific_config(&self) -> Bytes {
        let mut b = BitWriter::new();
        b.u(5, 2); // audioObjectType: AAC LC
        b.u(4, u32::from(self.freq_index)); // samplingFrequencyIndex
        b.u(4, u32::from(self.channels)); // channelConfiguration
        b.flag(false); // GASpecificConfig: frameLengthFlag (1024)
        b.flag(false); // dependsOnCoreCoder
        b.flag(false); // extensionFlag
        Bytes::from(b.into_bytes())
    }

    /// The track codec for this encoder.
    pub fn codec(&self) -> Codec {
        Codec::Aac {
            config: self.audio_specific_config(),
            rate: self.sample_rate,
            channels: self.channels,
        }
    }

    /// Number of access units produced so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The next raw access unit (1024 samples per channel, no ADTS header).
    pub fn next_frame(&mut self) -> Bytes {
        self.frames += 1;
        self.au.clone()
    }
}

/// Builds the raw_data_block(): one SCE (mono) or CPE without common window (stereo), END,
/// byte alignment.
fn build_au(channels: u8, swb: &[u16], band: usize, line: usize) -> Bytes {
    let mut b = BitWriter::new();
    if channels == 1 {
        b.u(3, ID_SCE);
        b.u(4, 0); // element_instance_tag
        channel_stream(&mut b, swb, band, line);
    } else {
        b.u(3, ID_CPE);
        b.u(4, 0); // element_instance_tag
        b.flag(false); // common_window
        channel_stream(&mut b, swb, band, line);
        channel_stream(&mut b, swb, band, line);
    }
    b.u(3, ID_END);
    b.align_zero();
    Bytes::from(b.into_bytes())
}

/// individual_channel_stream(0, 0) with the tone at `line` inside scalefactor band `band`.
fn channel_stream(b: &mut BitWriter, swb: &[u16], band: usize, line: usize) {
    b.u(8, GLOBAL_GAIN); // global_gain
    // ics_info()
    b.flag(false); // ics_reserved_bit
    b.u(2, 0); // window_sequence: ONLY_LONG_SEQUENCE
    b.flag(false); // window_shape: sine
    b.u(6, band as u32 + 1); // max_sfb
    b.flag(false); // predictor_data_present
    // section_data(): ZERO_HCB below the tone band, codebook 1 for it.
    if band > 0 {
        section(b, ZERO_HCB, band);
    }
    section(b, HCB_1, 1);
    // scale_factor_data(): only the tone band has a scalefactor; its difference to
    // global_gain is 0, codeword index 60 of the scalefactor codebook, "0".
    b.u(1, 0);
    b.flag(true); // pulse_data_present
    // pulse_data()
    b.u(2, 0); // number_pulse: one pulse
    b.u(6, band as u32); // pulse_start_sfb
    b.u(5, (line - swb[band] as usize) as u32); // pulse_offset[0]
    b.u(4, PULSE_AMP); // pulse_amp[0]
    b.flag(false); // tns_data_present
    b.flag(false); // gain_control_data_present
    // spectral_data(): the band's quadruples are all zero, codebook 1 index 40, "0".
    let quads = (swb[band + 1] - swb[band]) / 4;
    for _ in 0..quads {
        b.u(1, 0);
    }
}

/// One section of `len` bands coded with codebook `cb` (long windows: 5-bit lengths).
fn section(b: &mut BitWriter, cb: u32, len: usize) {
    b.u(4, cb); // sect_cb
    let mut left = len as u32;
    while left >= 31 {
        b.u(5, 31); // sect_esc_val
        left -= 31;
    }
    b.u(5, left); // sect_len_incr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_specific_config_is_lc_mono_at_the_rate_index() {
        let e = AacToneEncoder::new(8000, 1);
        // 00010 1011 0001 000 -> 0x15 0x88
        assert_eq!(&e.audio_specific_config()[..], &[0x15, 0x88]);
        let e = AacToneEncoder::new(48_000, 2);
        assert_eq!(&e.audio_specific_config()[..], &[0x11, 0x90]);
    }

    #[test]
    fn snaps_to_a_standard_rate_and_aims_near_1khz() {
        for rate in [
            8000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
        ] {
            let e = AacToneEncoder::new(rate, 1);
            assert_eq!(e.sample_rate(), rate);
            assert!(
                (e.tone_hz() - 1000.0).abs() < 20.0,
                "{rate}: {}",
                e.tone_hz()
            );
        }
        assert_eq!(AacToneEncoder::new(8100, 1).sample_rate(), 8000);
    }
}
