//! The AAC-LC tone encoder checked against ffmpeg: ADTS-wrapped access units decode without
//! errors at every supported rate, and the decoded audio is a clean ~1 kHz tone.

use std::path::PathBuf;
use std::process::{Command, Output};

use sim::testsrc::aac::{AacToneEncoder, SAMPLES_PER_FRAME};

/// Runs an interop tool, failing with a clear message if it is not installed.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}): install ffmpeg (Debian package `ffmpeg`) to run these tests"
        )
    })
}

/// A fresh scratch file path for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("camgate-testsrc-aac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The 7-byte ADTS header (MPEG-4, no CRC, AAC LC) for an access unit of `au_len` bytes.
fn adts_header(au_len: usize, freq_index: u8, channels: u8) -> [u8; 7] {
    let len = au_len + 7;
    let profile = 1u8; // audioObjectType 2 (LC) - 1
    [
        0xff,
        0xf1, // syncword, ID 0 (MPEG-4), layer 0, protection_absent 1
        (profile << 6) | (freq_index << 2) | (channels >> 2),
        ((channels & 3) << 6) | (len >> 11) as u8,
        (len >> 3) as u8,
        (((len & 7) as u8) << 5) | 0x1f, // buffer fullness 0x7ff (VBR)
        0xfc,                            // ... and one raw data block
    ]
}

/// Encodes `aus` access units to an ADTS file, decodes it with ffmpeg to interleaved s16
/// with `channels` output channels and returns the samples.
fn encode_and_decode(enc: &mut AacToneEncoder, aus: usize, name: &str, channels: u8) -> Vec<i16> {
    let mut adts = Vec::new();
    for _ in 0..aus {
        let au = enc.next_frame();
        adts.extend_from_slice(&adts_header(
            au.len(),
            enc.sampling_frequency_index(),
            enc.channels(),
        ));
        adts.extend_from_slice(&au);
    }
    let path = scratch(name);
    std::fs::write(&path, &adts).unwrap();
    let path = path.to_str().unwrap();
    let ac = channels.to_string();
    let out = run(
        "ffmpeg",
        &[
            "-v", "error", "-xerror", "-i", path, "-f", "s16le", "-ac", &ac, "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffmpeg decode of {path} failed ({}): {stderr}",
        out.status
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Energy of `x` at `hz` (Goertzel), scaled so a pure tone's value equals its total energy.
fn tone_energy(x: &[f64], hz: f64, rate: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / rate).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power / x.len() as f64
}

/// Asserts that `samples` (mono, after the decoder's start-up) is a clean tone at `hz` of
/// roughly the designed amplitude, with the spectrum peaking there.
fn assert_tone(samples: &[i16], hz: f64, rate: f64, what: &str) {
    // Skip the first two frames (the overlap-add start-up), analyse a whole number of
    // periods' worth: 8192 samples.
    let x: Vec<f64> = samples[2 * SAMPLES_PER_FRAME..2 * SAMPLES_PER_FRAME + 8192]
        .iter()
        .map(|&s| f64::from(s))
        .collect();
    let total: f64 = x.iter().map(|v| v * v).sum();
    let at_tone = tone_energy(&x, hz, rate);
    let fraction = at_tone / total;
    let amplitude = (2.0 * total / x.len() as f64).sqrt();
    assert!(
        fraction > 0.95,
        "{what}: only {:.1}% of the energy is at {hz:.1} Hz",
        fraction * 100.0
    );
    assert!(
        (6000.0..10000.0).contains(&amplitude),
        "{what}: tone amplitude {amplitude:.0} (expected ≈ 7960)"
    );
    // The strongest frequency on a 5 Hz grid from 50 Hz to Nyquist is the tone.
    let mut best = (0.0, 0.0);
    let mut f = 50.0;
    while f < rate / 2.0 - 50.0 {
        let e = tone_energy(&x, f, rate);
        if e > best.1 {
            best = (f, e);
        }
        f += 5.0;
    }
    assert!(
        (best.0 - hz).abs() <= 5.0,
        "{what}: spectrum peaks at {} Hz, not at the tone {hz:.1} Hz",
        best.0
    );
}

#[test]
fn mono_tone_decodes_cleanly_at_every_supported_rate() {
    for rate in [
        8000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
    ] {
        let mut enc = AacToneEncoder::new(rate, 1);
        let asc = enc.audio_specific_config();
        assert_eq!(asc.len(), 2);
        let samples = encode_and_decode(&mut enc, 120, &format!("tone{rate}.aac"), 1);
        assert_eq!(enc.frames(), 120);
        assert!(
            samples.len() >= 100 * SAMPLES_PER_FRAME,
            "{rate} Hz: decoded only {} samples from 120 access units",
            samples.len()
        );
        assert_tone(
            &samples,
            enc.tone_hz(),
            f64::from(rate),
            &format!("{rate} Hz"),
        );
    }
}

#[test]
fn stereo_tone_has_the_tone_in_both_channels() {
    let mut enc = AacToneEncoder::new(48_000, 2);
    assert_eq!(&enc.audio_specific_config()[..], &[0x11, 0x90]);
    let samples = encode_and_decode(&mut enc, 110, "stereo.aac", 2);
    assert!(samples.len() >= 2 * 100 * SAMPLES_PER_FRAME);
    for ch in 0..2 {
        let mono: Vec<i16> = samples.iter().skip(ch).step_by(2).copied().collect();
        assert_tone(&mono, enc.tone_hz(), 48_000.0, &format!("channel {ch}"));
    }
}

#[test]
fn access_units_are_small_and_identical() {
    let mut enc = AacToneEncoder::new(8000, 1);
    let a = enc.next_frame();
    let b = enc.next_frame();
    assert_eq!(a, b);
    assert!(a.len() < 16, "tone access unit is {} bytes", a.len());
    match enc.codec() {
        media::Codec::Aac {
            config,
            rate,
            channels,
        } => assert_eq!(
            (config, rate, channels),
            (enc.audio_specific_config(), 8000, 1)
        ),
        other => panic!("codec {other:?}"),
    }
}
