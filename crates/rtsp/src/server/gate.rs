//! What stands at the door of camgate's servers (RTSP and HTTP share one [`Gate`]): how many
//! connections may be open, in all and per client address, and how fast one address may guess
//! passwords. Refusals and failed logins are logged, at most once per burst, never with a
//! password.
//!
//! Time is passed in (`now`), so the rules are tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// How many connections the servers take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections in all (RTSP and HTTP together).
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 client is its /64).
    pub max_connections_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            max_connections_per_address: 128,
        }
    }
}

/// How failed logins from one address slow it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginBackoff {
    /// Failed logins an address may make before it has to wait.
    pub free_failures: u32,
    /// The wait after the first failure past the free ones; it doubles with each further one.
    pub first_wait: Duration,
    /// The longest wait.
    pub max_wait: Duration,
    /// An address without a failure for this long starts afresh.
    pub forget_after: Duration,
}

impl Default for LoginBackoff {
    fn default() -> Self {
        LoginBackoff {
            free_failures: 5,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` are open.
    Total(usize),
    /// `max_connections_per_address` are open from this address.
    PerAddress(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Total(n) => write!(f, "{n} connections are open (max_connections)"),
            Refusal::PerAddress(n) => write!(
                f,
                "{n} connections are open from this address (max_connections_per_address)"
            ),
        }
    }
}

/// The key connections and failures are counted under: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct AddrKey(u128);

impl From<IpAddr> for AddrKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddrKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(u128::from(u32::from(v4))),
                None => AddrKey((u128::from(v6) >> 64 << 64) | 1 << 32),
            },
        }
    }
}

/// At most one log line per `every` for a kind of event; the lines in between are counted and
/// reported with the next one.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// A throttle letting one line through per `every`.
    pub fn new(every: Duration) -> Self {
        LogThrottle {
            every,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last one)` when a line may be written now.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().expect("log throttle");
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[derive(Debug)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
    /// Failures refused or made while blocked in this burst (reported when it ends).
    in_burst: u64,
}

/// Failed logins the gate keeps track of at most (the oldest are forgotten first).
const MAX_TRACKED: usize = 65_536;

/// The connection limits and the login back-off, shared by the servers of one process.
#[derive(Debug)]
pub struct Gate {
    limits: ConnectionLimits,
    backoff: LoginBackoff,
    total: AtomicUsize,
    per_address: Mutex<HashMap<AddrKey, usize>>,
    failures: Mutex<HashMap<AddrKey, Failures>>,
    refusal_log: LogThrottle,
    counters: GateCounters,
}

/// What the gate has turned away, for metrics.
#[derive(Debug, Default)]
pub struct GateCounters {
    /// Connections refused for a limit.
    pub refused: AtomicU64,
    /// Failed logins.
    pub failed_logins: AtomicU64,
    /// Logins not checked because their address had to wait.
    pub throttled_logins: AtomicU64,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    key: AddrKey,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.total.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.gate.per_address.lock().expect("gate lock");
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl Gate {
    /// A gate with these limits and this back-off.
    pub fn new(limits: ConnectionLimits, backoff: LoginBackoff) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            backoff,
            total: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            refusal_log: LogThrottle::new(Duration::from_secs(10)),
            counters: GateCounters::default(),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// What the gate has turned away so far.
    pub fn counters(&self) -> &GateCounters {
        &self.counters
    }

    /// Admits a connection from `peer` or says which limit it hits. A refusal is logged (at
    /// most one line per 10 s, with the count of the refusals not logged) naming `service`.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, service: &str) -> Result<Permit, Refusal> {
        let key = AddrKey::from(peer);
        let refusal = {
            let mut map = self.per_address.lock().expect("gate lock");
            let total = self.total.load(Ordering::Relaxed);
            let here = map.get(&key).copied().unwrap_or(0);
            if total >= self.limits.max_connections {
                Err(Refusal::Total(total))
            } else if here >= self.limits.max_connections_per_address {
                Err(Refusal::PerAddress(here))
            } else {
                *map.entry(key).or_insert(0) += 1;
                self.total.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        };
        match refusal {
            Ok(()) => Ok(Permit {
                gate: self.clone(),
                key,
            }),
            Err(r) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = self.refusal_log.allow(Instant::now()) {
                    warn!(
                        %peer,
                        suppressed,
                        "{service}: refused a connection: {r} (refusals not logged since the last line: {suppressed})"
                    );
                }
                Err(r)
            }
        }
    }

    /// `Err(wait)` while `peer` must wait before its credentials are checked again.
    pub fn login_allowed(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().expect("gate lock");
        let key = AddrKey::from(peer);
        let Some(f) = map.get_mut(&key) else {
            return Ok(());
        };
        if now.duration_since(f.last) >= self.backoff.forget_after {
            map.remove(&key);
            return Ok(());
        }
        match f.blocked_until {
            Some(until) if now < until => {
                f.in_burst += 1;
                self.counters
                    .throttled_logins
                    .fetch_add(1, Ordering::Relaxed);
                Err(until - now)
            }
            _ => Ok(()),
        }
    }

    /// Records a failed login from `peer` (as `user`, on `service`) and returns the wait it
    /// now has before its next attempt. The first failures are logged one by one; the one that
    /// starts the wait is logged once for the whole burst.
    pub fn login_failed(&self, peer: IpAddr, user: &str, service: &str, now: Instant) -> Duration {
        self.counters.failed_logins.fetch_add(1, Ordering::Relaxed);
        let mut map = self.failures.lock().expect("gate lock");
        let key = AddrKey::from(peer);
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            // Forget the stalest address rather than grow without bound.
            if let Some(oldest) = map.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        let b = self.backoff;
        let f = map.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
            in_burst: 0,
        });
        if now.duration_since(f.last) >= b.forget_after {
            *f = Failures {
                count: 0,
                last: now,
                blocked_until: None,
                in_burst: 0,
            };
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        let user: String = user.chars().take(64).collect();
        if f.count <= b.free_failures {
            info!(%peer, user = %user, "{service}: failed login {} of {} before back-off", f.count, b.free_failures);
            return Duration::ZERO;
        }
        let over = f.count - b.free_failures - 1;
        let wait = b
            .first_wait
            .checked_mul(1u32 << over.min(20))
            .unwrap_or(b.max_wait)
            .min(b.max_wait);
        f.blocked_until = Some(now + wait);
        f.in_burst += 1;
        if over == 0 {
            warn!(%peer, user = %user, "{service}: {} failed logins from this address; each further one waits up to {:?} (logged once per burst)", f.count, b.max_wait);
        }
        wait
    }

    /// Clears `peer`'s failures after a successful login (and reports a burst that ends).
    pub fn login_succeeded(&self, peer: IpAddr) {
        let mut map = self.failures.lock().expect("gate lock");
        if let Some(f) = map.remove(&AddrKey::from(peer))
            && f.count > self.backoff.free_failures
        {
            info!(%peer, "login succeeded after {} failed logins and {} refused attempts", f.count, f.in_burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connections_are_capped_in_all_and_per_address() {
        let g = Gate::new(
            ConnectionLimits {
                max_connections: 3,
                max_connections_per_address: 2,
            },
            LoginBackoff::default(),
        );
        let a1 = g.admit(ip("10.0.0.1"), "t").unwrap();
        let _a2 = g.admit(ip("10.0.0.1"), "t").unwrap();
        assert_eq!(
            g.admit(ip("10.0.0.1"), "t").unwrap_err(),
            Refusal::PerAddress(2)
        );
        let _b = g.admit(ip("10.0.0.2"), "t").unwrap();
        assert_eq!(g.admit(ip("10.0.0.3"), "t").unwrap_err(), Refusal::Total(3));
        drop(a1);
        assert_eq!(g.open(), 2);
        assert!(g.admit(ip("10.0.0.1"), "t").is_ok());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let g = Gate::new(
            ConnectionLimits {
                max_connections: 10,
                max_connections_per_address: 1,
            },
            LoginBackoff::default(),
        );
        let _a = g.admit(ip("2001:db8::1"), "t").unwrap();
        assert!(g.admit(ip("2001:db8::2"), "t").is_err());
        assert!(g.admit(ip("2001:db8:0:1::1"), "t").is_ok());
        let _m = g.admit(ip("::ffff:10.0.0.9"), "t").unwrap();
        assert!(g.admit(ip("10.0.0.9"), "t").is_err());
    }

    #[test]
    fn failed_logins_past_the_free_ones_wait_longer_each_time() {
        let g = Gate::new(ConnectionLimits::default(), LoginBackoff::default());
        let p = ip("10.0.0.5");
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(g.login_allowed(p, t0), Ok(()));
            assert_eq!(g.login_failed(p, "admin", "t", t0), Duration::ZERO, "{i}");
        }
        assert_eq!(g.login_failed(p, "admin", "t", t0), Duration::from_secs(1));
        assert_eq!(
            g.login_allowed(p, t0 + Duration::from_millis(500)),
            Err(Duration::from_millis(500))
        );
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(g.login_allowed(p, t1), Ok(()));
        assert_eq!(g.login_failed(p, "admin", "t", t1), Duration::from_secs(2));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(g.login_failed(p, "admin", "t", t2), Duration::from_secs(4));
        // Another address is not slowed down.
        assert_eq!(g.login_allowed(ip("10.0.0.6"), t2), Ok(()));
        // The wait stops growing at max_wait.
        let mut t = t2;
        for _ in 0..20 {
            t += Duration::from_secs(61);
            g.login_failed(p, "admin", "t", t);
        }
        assert_eq!(g.login_failed(p, "admin", "t", t), Duration::from_secs(60));
    }

    #[test]
    fn success_or_a_quiet_spell_clears_the_failures() {
        let g = Gate::new(ConnectionLimits::default(), LoginBackoff::default());
        let p = ip("10.0.0.5");
        let t0 = Instant::now();
        for _ in 0..7 {
            g.login_failed(p, "u", "t", t0);
        }
        assert!(g.login_allowed(p, t0).is_err());
        g.login_succeeded(p);
        assert_eq!(g.login_allowed(p, t0), Ok(()));
        for _ in 0..7 {
            g.login_failed(p, "u", "t", t0);
        }
        assert_eq!(
            g.login_allowed(p, t0 + Duration::from_secs(15 * 60)),
            Ok(())
        );
    }

    #[test]
    fn refusal_log_is_throttled() {
        let t = LogThrottle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(11)), Some(2));
    }
}
