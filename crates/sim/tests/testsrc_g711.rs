//! The G.711 tone generator checked by decoding its output with ffmpeg: level, pitch and
//! beep cadence.

use std::process::{Command, Output};

use media::G711Law;
use sim::testsrc::g711tone::ToneGenerator;

/// Runs an interop tool, failing with a clear message if it is not installed.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}): install ffmpeg (Debian package `ffmpeg`) to run these tests"
        )
    })
}

/// Decodes raw G.711 with ffmpeg to 16-bit samples, through a scratch file named `tag`.
fn ffmpeg_decode(tag: &str, law: G711Law, data: &[u8]) -> Vec<i16> {
    let format = match law {
        G711Law::A => "alaw",
        G711Law::U => "mulaw",
    };
    let dir = std::env::temp_dir().join(format!("camgate-testsrc-g711-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{tag}.{format}"));
    std::fs::write(&path, data).unwrap();
    let out = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            format,
            "-ar",
            "8000",
            "-ac",
            "1",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "s16le",
            "-",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// RMS level in dB relative to a full-scale sine's RMS (so a sine peaking at -12 dBFS reads -12).
fn rms_db(s: &[i16]) -> f64 {
    let mean_sq = s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64;
    20.0 * (mean_sq.sqrt() * std::f64::consts::SQRT_2 / 32767.0).log10()
}

/// Magnitude of the `hz` component of `s` sampled at 8 kHz (Goertzel).
fn power_at(s: &[i16], hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in s {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The strongest frequency of `s` among 10 Hz steps from 10 to 3990 Hz.
fn dominant(s: &[i16]) -> f64 {
    (1..400)
        .map(|k| f64::from(k) * 10.0)
        .max_by(|&a, &b| power_at(s, a).total_cmp(&power_at(s, b)))
        .unwrap()
}

#[test]
fn default_tone_is_1khz_at_minus_12_dbfs_in_both_laws() {
    for law in [G711Law::A, G711Law::U] {
        let mut g = ToneGenerator::new(law);
        let mut data = Vec::new();
        for _ in 0..50 {
            let f = g.next_frame();
            assert_eq!(f.len(), 160);
            data.extend_from_slice(&f);
        }
        let pcm = ffmpeg_decode("tone", law, &data);
        assert_eq!(pcm.len(), 8000);
        let level = rms_db(&pcm);
        assert!((level + 12.0).abs() < 0.5, "{law:?}: level {level:.2} dB");
        assert_eq!(dominant(&pcm), 1000.0, "{law:?}");
    }
}

#[test]
fn beep_sounds_only_in_its_slot_and_other_settings_apply() {
    let mut g = ToneGenerator::new(G711Law::A)
        .with_frequency(440.0)
        .with_level_dbfs(-6.0)
        .with_frame_ms(40)
        .with_beep(200, 1000);
    assert_eq!(g.samples_per_frame(), 320);
    let mut data = Vec::new();
    for _ in 0..50 {
        data.extend_from_slice(&g.next_frame());
    }
    assert_eq!(g.position(), 16_000);
    let pcm = ffmpeg_decode("beep", G711Law::A, &data);
    for second in 0..2 {
        let on = &pcm[second * 8000 + 100..second * 8000 + 1500];
        let off = &pcm[second * 8000 + 1700..second * 8000 + 8000];
        assert_eq!(dominant(on), 440.0);
        assert!(
            (rms_db(on) + 6.0).abs() < 0.5,
            "beep level {:.2}",
            rms_db(on)
        );
        assert!(off.iter().all(|&x| x.abs() <= 8), "silence between beeps");
    }
}
