//! The simulator's clock: a monotonic "device uptime" that tests advance by hand (or that
//! follows real time), and the device's wall clock derived from it (settable by
//! `global.setCurrentTime`). Keep-alive expiry, lockout, PTZ motion and event timestamps all
//! read this clock, so tests are deterministic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhip::dhav::PackedDate;

/// 2024-05-06 07:08:09 UTC, the default wall-clock start (the DHAV vector's date).
pub const DEFAULT_START_UTC: i64 = 1_714_979_289;

#[derive(Debug)]
struct Inner {
    real_time: bool,
    started: Instant,
    manual: Duration,
    /// Wall clock (unix seconds) at uptime zero.
    wall_base: f64,
}

/// A shared, cloneable clock; see the module documentation.
#[derive(Clone, Debug)]
pub struct SimClock {
    inner: Arc<Mutex<Inner>>,
}

impl SimClock {
    /// A clock whose wall time starts at `start_utc`; with `real_time` it also advances by
    /// itself.
    pub fn new(real_time: bool, start_utc: i64) -> Self {
        SimClock {
            inner: Arc::new(Mutex::new(Inner {
                real_time,
                started: Instant::now(),
                manual: Duration::ZERO,
                wall_base: start_utc as f64,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time since the simulator started (manual advances included).
    pub fn now(&self) -> Duration {
        let g = self.lock();
        let real = if g.real_time {
            g.started.elapsed()
        } else {
            Duration::ZERO
        };
        real + g.manual
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.lock().manual += d;
    }

    /// The device's wall clock, unix seconds (fractional).
    pub fn wall(&self) -> f64 {
        let now = self.now().as_secs_f64();
        self.lock().wall_base + now
    }

    /// Sets the device's wall clock to `utc` (unix seconds) from now on.
    pub fn set_wall(&self, utc: i64) {
        let now = self.now().as_secs_f64();
        self.lock().wall_base = utc as f64 - now;
    }
}

/// Dahua's `YYYY-MM-DD HH:MM:SS` for unix seconds (UTC; the device shows it as local time;
/// years outside the DHAV date's 2000–2063 are clamped).
pub fn format_time(utc: i64) -> String {
    let d = PackedDate::from_unix(utc);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        d.year, d.month, d.day, d.hour, d.minute, d.second
    )
}

/// Unix seconds of a Dahua `YYYY-MM-DD HH:MM:SS` string; `None` for anything else, and
/// for years outside 2000–2063 (what the DHAV date carries).
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let d = PackedDate {
        year: num(0..4)?,
        month: num(5..7)? as u8,
        day: num(8..10)? as u8,
        hour: num(11..13)? as u8,
        minute: num(14..16)? as u8,
        second: num(17..19)? as u8,
    };
    let ok = (2000..=2063).contains(&d.year)
        && (1..=12).contains(&d.month)
        && (1..=31).contains(&d.day)
        && d.hour < 24
        && d.minute < 60
        && d.second < 60;
    ok.then(|| d.to_unix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_the_default_start() {
        assert_eq!(format_time(DEFAULT_START_UTC), "2024-05-06 07:08:09");
        assert_eq!(parse_time("2024-05-06 07:08:09"), Some(DEFAULT_START_UTC));
        assert_eq!(parse_time("2025-02-17 23:07:07"), Some(1_739_833_627));
        assert_eq!(format_time(1_739_833_627), "2025-02-17 23:07:07");
    }

    #[test]
    fn bad_times_are_refused() {
        for s in [
            "",
            "2024-13-01 00:00:00",
            "2024-05-06T07:08:09",
            "2024-05-06 7:08:09",
            "1999-12-31 23:59:59",
        ] {
            assert_eq!(parse_time(s), None, "{s}");
        }
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let c = SimClock::new(false, DEFAULT_START_UTC);
        assert_eq!(c.now(), Duration::ZERO);
        c.advance(Duration::from_secs(61));
        assert_eq!(c.now(), Duration::from_secs(61));
        assert_eq!(c.wall() as i64, DEFAULT_START_UTC + 61);
        c.set_wall(1_000_000);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.wall() as i64, 1_000_001);
    }
}
