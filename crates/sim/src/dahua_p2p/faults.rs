//! The machinery behind the fault knobs: seeded impairment of PTCP datagrams (loss,
//! duplication, reordering) and the DH-HTTP faults (ignore the first datagram of each
//! request, duplicate every reply, answer with `CSeq: 0`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dahua_p2p::dhhttp::Response;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long a datagram held back for reordering waits for a later one before it goes anyway.
const REORDER_HOLD: Duration = Duration::from_millis(15);

/// A probability knob made safe for `gen_bool` (NaN and out-of-range values clamp).
fn probability(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

/// Seeded loss, duplication and reordering for one direction of one socket's PTCP traffic.
#[derive(Debug)]
pub(crate) struct Impairment {
    rng: StdRng,
    loss: f64,
    dup: f64,
    reorder: f64,
    held: Option<(Instant, SocketAddr, Vec<u8>)>,
    /// Datagrams dropped so far.
    pub dropped: u64,
}

impl Impairment {
    /// An impairment with these probabilities, reproducible from `seed`.
    pub fn new(seed: u64, loss: f64, dup: f64, reorder: f64) -> Self {
        Impairment {
            rng: StdRng::seed_from_u64(seed),
            loss: probability(loss),
            dup: probability(dup),
            reorder: probability(reorder),
            held: None,
            dropped: 0,
        }
    }

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p)
    }

    /// What to deliver now for one datagram to (or from) `addr`: nothing (lost or held back
    /// for reordering), the datagram, two copies, or the datagram followed by one held back.
    pub fn apply(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        d: Vec<u8>,
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        if self.roll(self.loss) {
            self.dropped += 1;
            return Vec::new();
        }
        if self.held.is_none() && self.roll(self.reorder) {
            self.held = Some((now + REORDER_HOLD, addr, d));
            return Vec::new();
        }
        let mut out = Vec::with_capacity(3);
        if self.roll(self.dup) {
            out.push((addr, d.clone()));
        }
        out.push((addr, d));
        if let Some((_, a, h)) = self.held.take() {
            out.push((a, h));
        }
        out
    }

    /// When a held datagram must be released.
    pub fn deadline(&self) -> Option<Instant> {
        self.held.as_ref().map(|(t, _, _)| *t)
    }

    /// The held datagram, if its time has come.
    pub fn flush_due(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        match &self.held {
            Some((t, _, _)) if *t <= now => self.held.take().map(|(_, a, d)| (a, d)),
            _ => None,
        }
    }
}

/// The `drop_first_datagram` fault: remembers which requests were seen once.
#[derive(Debug, Default)]
pub(crate) struct DropFirst {
    enabled: bool,
    seen: HashSet<(SocketAddr, String, String)>,
}

impl DropFirst {
    /// Most requests remembered before the memory is cleared.
    const MAX_SEEN: usize = 65_536;

    /// The fault, on or off.
    pub fn new(enabled: bool) -> Self {
        DropFirst {
            enabled,
            seen: HashSet::new(),
        }
    }

    /// Whether this datagram is the first copy of its request (source, `CSeq`, path) and
    /// must be ignored. Retransmits reuse the CSeq, so the second copy gets through.
    pub fn drop_this(&mut self, from: SocketAddr, cseq: Option<&str>, path: &str) -> bool {
        if !self.enabled {
            return false;
        }
        if self.seen.len() >= Self::MAX_SEEN {
            self.seen.clear();
        }
        self.seen
            .insert((from, cseq.unwrap_or_default().to_owned(), path.to_owned()))
    }
}

/// Faults applied to every DH-HTTP reply on its way out.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReplyFaults {
    /// Send every reply twice.
    pub duplicate: bool,
    /// Replace the echoed `CSeq` with 0.
    pub cseq_zero: bool,
}

impl ReplyFaults {
    /// The datagrams to send for `response`.
    pub fn datagrams(&self, mut response: Response) -> Vec<Vec<u8>> {
        if self.cseq_zero {
            response.headers.set("CSeq", "0");
        }
        let bytes = response.serialize();
        if self.duplicate {
            vec![bytes.clone(), bytes]
        } else {
            vec![bytes]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9))
    }

    #[test]
    fn a_clear_impairment_passes_everything_once() {
        let mut imp = Impairment::new(1, 0.0, 0.0, 0.0);
        let now = Instant::now();
        for i in 0..100u8 {
            assert_eq!(imp.apply(now, addr(), vec![i]), vec![(addr(), vec![i])]);
        }
        assert_eq!(imp.deadline(), None);
    }

    #[test]
    fn reordering_releases_the_held_datagram_after_the_next_one() {
        let mut imp = Impairment::new(7, 0.0, 0.0, 1.0);
        let now = Instant::now();
        assert!(imp.apply(now, addr(), vec![1]).is_empty());
        assert_eq!(
            imp.apply(now, addr(), vec![2]),
            vec![(addr(), vec![2]), (addr(), vec![1])]
        );
        assert!(imp.apply(now, addr(), vec![3]).is_empty());
        assert_eq!(imp.flush_due(now), None);
        assert_eq!(imp.flush_due(now + REORDER_HOLD), Some((addr(), vec![3])));
    }

    #[test]
    fn out_of_range_probabilities_do_not_panic() {
        let mut imp = Impairment::new(3, f64::NAN, 7.0, -1.0);
        let out = imp.apply(Instant::now(), addr(), vec![1]);
        assert_eq!(out.len(), 2, "dup clamps to 1, loss NaN to 0");
    }

    #[test]
    fn drop_first_drops_only_the_first_copy_of_a_request() {
        let mut d = DropFirst::new(true);
        assert!(d.drop_this(addr(), Some("3"), "/probe/p2psrv"));
        assert!(!d.drop_this(addr(), Some("3"), "/probe/p2psrv"));
        assert!(d.drop_this(addr(), Some("4"), "/probe/p2psrv"));
        assert!(!DropFirst::new(false).drop_this(addr(), Some("3"), "/x"));
    }
}
