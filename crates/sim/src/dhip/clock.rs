//! The simulator's clock: a monotonic "device uptime" that tests advance by hand (or that
//! follows real time), and the device's wall clock derived from it (settable by
//! `global.setCurrentTime`). Keep-alive expiry, lockout, PTZ motion and event timestamps all
//! read this clock, so tests are deterministic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Calendar fields of a unix time (UTC; the device shows it as local time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2024.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

impl Civil {
    /// The calendar fields of `utc` (unix seconds).
    pub fn from_unix(utc: i64) -> Civil {
        let days = utc.div_euclid(86_400);
        let secs = utc.rem_euclid(86_400);
        // Days-to-civil (proleptic Gregorian), era-based.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
        }
    }

    /// Unix seconds of these fields.
    pub fn to_unix(&self) -> i64 {
        let y = self.year - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// Parses Dahua's `YYYY-MM-DD HH:MM:SS`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Civil> {
        let b = s.as_bytes();
        if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
            return None;
        }
        if b[16] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let t = s.get(r)?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        let c = Civil {
            year: i64::from(num(0..4)?),
            month: num(5..7)?,
            day: num(8..10)?,
            hour: num(11..13)?,
            minute: num(14..16)?,
            second: num(17..19)?,
        };
        let ok = (1..=12).contains(&c.month)
            && (1..=31).contains(&c.day)
            && c.hour < 24
            && c.minute < 60
            && c.second < 60;
        ok.then_some(c)
    }
}

impl std::fmt::Display for Civil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Dahua's `YYYY-MM-DD HH:MM:SS` for unix seconds.
pub fn format_time(utc: i64) -> String {
    Civil::from_unix(utc).to_string()
}

/// Unix seconds of a Dahua `YYYY-MM-DD HH:MM:SS` string.
pub fn parse_time(s: &str) -> Option<i64> {
    Civil::parse(s).map(|c| c.to_unix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_the_default_start() {
        let c = Civil::from_unix(DEFAULT_START_UTC);
        assert_eq!(c.to_string(), "2024-05-06 07:08:09");
        assert_eq!(c.to_unix(), DEFAULT_START_UTC);
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
