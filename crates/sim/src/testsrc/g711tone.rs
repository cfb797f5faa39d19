//! `ToneGenerator`: 8 kHz mono G.711 (A-law or µ-law) frames of a sine tone, continuous or
//! as a beep repeating at a fixed period, for simulated camera microphones.

use std::f64::consts::TAU;

use bytes::Bytes;
use media::codec::g711::{linear_to_alaw, linear_to_ulaw};
use media::{Codec, G711Law};

/// G.711 sample rate.
pub const RATE: u32 = 8000;

/// Length of the fade in and fade out of each beep, in samples (5 ms), so beeps do not click.
const RAMP: u64 = 40;

/// Generates G.711 frames of a sine tone; the phase is continuous across frames.
#[derive(Clone, Debug)]
pub struct ToneGenerator {
    law: G711Law,
    frame_samples: usize,
    freq: f64,
    peak: f64,
    beep: Option<(u64, u64)>,
    pos: u64,
}

impl ToneGenerator {
    /// A continuous 1 kHz tone at -12 dBFS in 20 ms (160-sample) frames.
    pub fn new(law: G711Law) -> Self {
        ToneGenerator {
            law,
            frame_samples: 160,
            freq: 1000.0,
            peak: peak_for_dbfs(-12.0),
            beep: None,
            pos: 0,
        }
    }

    /// The same generator with a tone of `hz` (0 < hz < 4000).
    pub fn with_frequency(mut self, hz: f64) -> Self {
        assert!(hz > 0.0 && hz < f64::from(RATE) / 2.0, "tone of {hz} Hz");
        self.freq = hz;
        self
    }

    /// The same generator with the sine's peak at `dbfs` relative to 16-bit full scale.
    pub fn with_level_dbfs(mut self, dbfs: f64) -> Self {
        assert!(dbfs <= 0.0, "tone level {dbfs} dBFS");
        self.peak = peak_for_dbfs(dbfs);
        self
    }

    /// The same generator producing frames of `ms` milliseconds (1..=1000).
    pub fn with_frame_ms(mut self, ms: u32) -> Self {
        assert!((1..=1000).contains(&ms), "frame of {ms} ms");
        self.frame_samples = (RATE * ms / 1000) as usize;
        self
    }

    /// The same generator sounding only the first `on_ms` of every `period_ms` (e.g. 100 of
    /// 1000 for a short beep every second), silent in between.
    pub fn with_beep(mut self, on_ms: u32, period_ms: u32) -> Self {
        assert!(
            on_ms > 0 && on_ms <= period_ms,
            "beep {on_ms} of {period_ms} ms"
        );
        let ms = u64::from(RATE / 1000);
        self.beep = Some((u64::from(on_ms) * ms, u64::from(period_ms) * ms));
        self
    }

    /// A-law or µ-law.
    pub fn law(&self) -> G711Law {
        self.law
    }

    /// The track codec (8000 Hz, mono).
    pub fn codec(&self) -> Codec {
        Codec::G711 {
            law: self.law,
            rate: RATE,
            channels: 1,
        }
    }

    /// Samples (and bytes) per frame.
    pub fn samples_per_frame(&self) -> usize {
        self.frame_samples
    }

    /// The 8 kHz timestamp of the next frame: samples generated so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The linear 16-bit value of sample number `n` of the tone.
    pub fn linear_sample(&self, n: u64) -> i16 {
        let mut gain = 1.0;
        if let Some((on, period)) = self.beep {
            let t = n % period;
            if t >= on {
                return 0;
            }
            let edge = t.min(on - 1 - t);
            if edge < RAMP {
                gain = 0.5 - 0.5 * (std::f64::consts::PI * edge as f64 / RAMP as f64).cos();
            }
        }
        let cycles = (n as f64 * self.freq / f64::from(RATE)).fract();
        (gain * self.peak * (TAU * cycles).sin()).round() as i16
    }

    /// The next frame of G.711 bytes.
    pub fn next_frame(&mut self) -> Bytes {
        let mut out = Vec::with_capacity(self.frame_samples);
        for n in self.pos..self.pos + self.frame_samples as u64 {
            let s = self.linear_sample(n);
            out.push(match self.law {
                G711Law::A => linear_to_alaw(s),
                G711Law::U => linear_to_ulaw(s),
            });
        }
        self.pos += self.frame_samples as u64;
        Bytes::from(out)
    }
}

/// The peak sample value of a sine at `dbfs` relative to 16-bit full scale.
fn peak_for_dbfs(dbfs: f64) -> f64 {
    32767.0 * 10f64.powf(dbfs / 20.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_160_bytes_with_continuous_phase() {
        let mut g = ToneGenerator::new(G711Law::U);
        let a = g.next_frame();
        let b = g.next_frame();
        assert_eq!((a.len(), b.len(), g.position()), (160, 160, 320));
        // 1 kHz at 8 kHz repeats every 8 samples, across the frame boundary too.
        assert_eq!(a[152..160], b[0..8]);
    }

    #[test]
    fn beep_is_silent_between_beeps() {
        let g = ToneGenerator::new(G711Law::A).with_beep(100, 1000);
        assert_eq!(g.linear_sample(800), 0);
        assert_eq!(g.linear_sample(7999), 0);
        assert_ne!(g.linear_sample(8000 + 402), 0);
    }
}
