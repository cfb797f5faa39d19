//! Receive-side bookkeeping shared by every depacketizer: sequence number continuity (loss,
//! reordering, restarts) and extending 32-bit RTP timestamps to `i64`.

/// Packets further behind than this are taken as a sender restart, not as reordering
/// (the MAX_MISORDER of RFC 3550 Appendix A.1).
const MAX_MISORDER: i32 = 100;

/// How a packet's sequence number relates to the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqStatus {
    /// The first packet seen.
    First,
    /// The expected next packet.
    InOrder,
    /// Packets were skipped (or the sender jumped): `lost` is the count skipped.
    Gap { expected: u16, lost: u16 },
    /// A late or duplicate packet, to be dropped.
    Behind { expected: u16 },
}

/// Tracks sequence numbers of one RTP stream.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    next: Option<u16>,
}

impl SeqTracker {
    /// Classifies `seq` and advances unless it is `Behind`.
    pub fn check(&mut self, seq: u16) -> SeqStatus {
        let Some(expected) = self.next else {
            self.next = Some(seq.wrapping_add(1));
            return SeqStatus::First;
        };
        let delta = i32::from(seq.wrapping_sub(expected) as i16);
        if (-MAX_MISORDER..0).contains(&delta) {
            return SeqStatus::Behind { expected };
        }
        self.next = Some(seq.wrapping_add(1));
        if delta == 0 {
            SeqStatus::InOrder
        } else {
            SeqStatus::Gap {
                expected,
                lost: seq.wrapping_sub(expected),
            }
        }
    }
}

/// Extends 32-bit RTP timestamps into a monotonic-where-the-source-is `i64` timeline,
/// starting at the first timestamp's value and following wraparounds.
#[derive(Clone, Debug, Default)]
pub struct TimestampUnwrapper {
    last: Option<(u32, i64)>,
}

impl TimestampUnwrapper {
    /// The extended value of `ts` (differences of up to ±2^31 from the previous one).
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let v = match self.last {
            None => i64::from(ts),
            Some((raw, ext)) => ext + i64::from(ts.wrapping_sub(raw) as i32),
        };
        self.last = Some((ts, v));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_in_order() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check(65534), SeqStatus::First);
        assert_eq!(t.check(65535), SeqStatus::InOrder);
        assert_eq!(t.check(0), SeqStatus::InOrder);
    }

    #[test]
    fn gaps_count_lost_packets() {
        let mut t = SeqTracker::default();
        t.check(10);
        assert_eq!(
            t.check(14),
            SeqStatus::Gap {
                expected: 11,
                lost: 3
            }
        );
        assert_eq!(t.check(15), SeqStatus::InOrder);
    }

    #[test]
    fn late_packets_are_behind_and_do_not_move_the_window() {
        let mut t = SeqTracker::default();
        t.check(10);
        t.check(12);
        assert_eq!(t.check(11), SeqStatus::Behind { expected: 13 });
        assert_eq!(t.check(12), SeqStatus::Behind { expected: 13 });
        assert_eq!(t.check(13), SeqStatus::InOrder);
    }

    #[test]
    fn big_backward_jump_is_a_restart() {
        let mut t = SeqTracker::default();
        t.check(30000);
        assert!(matches!(t.check(5), SeqStatus::Gap { .. }));
        assert_eq!(t.check(6), SeqStatus::InOrder);
    }

    #[test]
    fn timestamps_unwrap_across_the_32_bit_boundary() {
        let mut u = TimestampUnwrapper::default();
        assert_eq!(u.unwrap(u32::MAX - 1000), i64::from(u32::MAX - 1000));
        assert_eq!(u.unwrap(2000), i64::from(u32::MAX) + 2001);
        assert_eq!(u.unwrap(1000), i64::from(u32::MAX) + 1001);
    }
}
