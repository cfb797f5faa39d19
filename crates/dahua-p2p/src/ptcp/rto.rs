//! The retransmission timer's estimate (RFC 6298): smoothed RTT and variance from samples
//! of frames that were never retransmitted (Karn), exponential backoff on expiry, bounded.

use std::time::Duration;

/// Clock granularity term of RFC 6298 (we are given exact instants).
const GRANULARITY: Duration = Duration::from_millis(1);

/// Smoothed RTT, RTT variance and the current (possibly backed-off) timeout.
#[derive(Clone, Debug)]
pub(crate) struct RtoEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    base: Duration,
    current: Duration,
    min: Duration,
    max: Duration,
}

impl RtoEstimator {
    /// A fresh estimator that starts at `initial`, bounded to `[min, max]`.
    pub(crate) fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        // A zero timeout would retransmit in a tight loop.
        let min = min.max(GRANULARITY);
        let max = max.max(min);
        let base = initial.clamp(min, max);
        RtoEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            base,
            current: base,
            min,
            max,
        }
    }

    /// Feeds one RTT measurement and resets any backoff.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar.saturating_mul(3).saturating_add(delta)) / 4;
                self.srtt = Some((srtt.saturating_mul(7).saturating_add(rtt)) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        self.base = srtt
            .saturating_add(self.rttvar.saturating_mul(4).max(GRANULARITY))
            .clamp(self.min, self.max);
        self.current = self.base;
    }

    /// Forgets the backoff after progress without a usable sample.
    pub(crate) fn reset_backoff(&mut self) {
        self.current = self.base;
    }

    /// Doubles the timeout after an expiry (bounded by the maximum).
    pub(crate) fn back_off(&mut self) {
        self.current = self.current.saturating_mul(2).min(self.max);
    }

    /// The timeout to arm now.
    pub(crate) fn rto(&self) -> Duration {
        self.current
    }

    /// The smoothed RTT, once measured.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_sample_sets_rto_to_three_rtts() {
        let mut e = RtoEstimator::new(ms(1000), ms(10), ms(60_000));
        e.sample(ms(100));
        assert_eq!(e.rto(), ms(300));
        assert_eq!(e.srtt(), Some(ms(100)));
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_a_sample_resets_it() {
        let mut e = RtoEstimator::new(ms(1000), ms(200), ms(3000));
        e.back_off();
        assert_eq!(e.rto(), ms(2000));
        e.back_off();
        assert_eq!(e.rto(), ms(3000));
        e.sample(ms(50));
        assert_eq!(e.rto(), ms(200));
    }
}
