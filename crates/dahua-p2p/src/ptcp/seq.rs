//! Wrap-safe arithmetic on the 32-bit `sent`/`recv` counters and 16-bit pids.
//!
//! Internally byte positions are kept "unwrapped" as u64 that start at 2^32 + the initial
//! 32-bit value, so a position never underflows when a peer's counter is compared against
//! ours; on the wire only the low 32 bits are sent.

/// Offset added to every unwrapped position so that `base - 2^31` never goes below zero.
const ORIGIN: u64 = 1 << 32;

/// The unwrapped position of the 32-bit wire value `initial`.
pub(crate) fn origin(initial: u32) -> u64 {
    ORIGIN + u64::from(initial)
}

/// Signed distance from `b` to `a` on the 32-bit circle (`a - b`).
pub(crate) fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The unwrapped position nearest to `base` whose low 32 bits are `wire`.
pub(crate) fn unwrap(base: u64, wire: u32) -> u64 {
    let d = i64::from(diff(wire, base as u32));
    base.saturating_add_signed(d)
}

/// The low 32 bits of an unwrapped position, as sent on the wire.
pub(crate) fn wire(pos: u64) -> u32 {
    pos as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_is_signed_across_the_wrap() {
        assert_eq!(diff(2, u32::MAX - 1), 4);
        assert_eq!(diff(u32::MAX - 1, 2), -4);
        assert_eq!(diff(7, 7), 0);
    }

    #[test]
    fn unwrap_picks_the_nearest_position() {
        let base = origin(u32::MAX - 3);
        assert_eq!(unwrap(base, 5), base + 9);
        assert_eq!(unwrap(base, u32::MAX - 10), base - 7);
        assert_eq!(wire(unwrap(base, 5)), 5);
    }
}
