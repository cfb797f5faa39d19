//! Garbage at a fixed rate: each connection sends one piece of [`payloads`](super::payloads)
//! garbage (kinds taken in turn, RTSP and HTTP alternately), reads what the server answers
//! for a while and closes. Outcomes are also tallied per kind.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::counters::{Counters, PerProto, inc};
use super::net::{connect_from, statuses_in};
use super::payloads::{Garbage, garbage};
use super::{Proto, Rng, Target};

/// How the garbage is sent.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connections per second.
    pub rate: f64,
    /// Source addresses, used in turn (none: the load does nothing).
    pub sources: Vec<IpAddr>,
    /// Connections open at once at most (past it a tick is skipped and counted).
    pub in_flight: usize,
    /// How long to wait for an answer.
    pub wait: Duration,
}

/// The garbage load's counters: per server, and outcomes per server and kind.
#[derive(Debug, Default)]
pub struct Stats {
    /// Per server.
    pub per: PerProto,
    kinds: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
}

impl Stats {
    fn outcome(&self, proto: Proto, kind: &str, outcome: &str) {
        let mut k = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        *k.entry(format!("{}/{kind}", proto.name()))
            .or_default()
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    /// `{"rtsp": {...}, "http": {...}, "kinds": {"rtsp/huge-header": {"400": n, ...}}}`.
    pub fn to_json(&self) -> Value {
        let mut v = self.per.to_json();
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        v["kinds"] = json!(*kinds);
        v
    }
}

/// Sends garbage until cancelled (the caller drops this future at the end of the run).
pub async fn run(cfg: Config, target: Arc<Target>, stats: Arc<Stats>) {
    if cfg.sources.is_empty() {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / cfg.rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let slots = Arc::new(Semaphore::new(cfg.in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut rng = Rng::new(0x6761_7262);
    let mut n: usize = 0;
    loop {
        tick.tick().await;
        while tasks.try_join_next().is_some() {}
        let proto = Proto::alternating(n);
        let src = cfg.sources[(n / 2) % cfg.sources.len()];
        let g = garbage(n / 2, proto, &target, &mut rng);
        n = n.wrapping_add(1);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            inc(&stats.per.get(proto).skipped);
            continue;
        };
        let (target, stats, wait) = (target.clone(), stats.clone(), cfg.wait);
        tasks.spawn(async move {
            let _permit = permit;
            let outcome = one(src, proto, &g, &target, stats.per.get(proto), wait).await;
            stats.outcome(proto, g.kind, &outcome);
        });
    }
}

/// One connection: send `g`, read the answer; the outcome (the first status, or how the
/// connection ended).
async fn one(
    src: IpAddr,
    proto: Proto,
    g: &Garbage,
    target: &Target,
    c: &Counters,
    wait: Duration,
) -> String {
    let mut s = match connect_from(src, target.addr(proto), Duration::from_secs(5)).await {
        Ok(s) => s,
        Err(e) => {
            c.connect_error(&e);
            return "connect-error".into();
        }
    };
    inc(&c.connects);
    inc(&c.sent);
    let deadline = Instant::now() + wait;
    // A write error is normal here (the server may answer and close before taking it all):
    // what it answered may still be readable.
    let mut end = match tokio::time::timeout_at(deadline, s.write_all(&g.bytes)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write timed out",
        )),
    };
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut closed = false;
    let mut read_until = deadline;
    loop {
        match tokio::time::timeout_at(read_until, s.read(&mut chunk)).await {
            Err(_) => break,
            Ok(Ok(0)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                got.extend_from_slice(&chunk[..n.min(8192 - got.len().min(8192))]);
                // Once something came, wait a little for what follows (pipelined answers, the
                // close), not the whole wait.
                read_until = read_until.min(Instant::now() + Duration::from_millis(200));
            }
            Ok(Err(e)) => {
                end.get_or_insert(e);
                break;
            }
        }
    }
    let statuses = statuses_in(&got);
    for st in &statuses {
        c.status(*st);
    }
    if closed {
        inc(&c.closed_by_server);
    }
    let reset = end.as_ref().map(|e| {
        c.io_error(e);
        e.kind()
    });
    match (statuses.first(), closed, reset) {
        (Some(st), _, _) => st.to_string(),
        (None, _, Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)) => {
            "reset".into()
        }
        (None, true, _) => "closed".into(),
        (None, false, Some(_)) => "error".into(),
        (None, false, None) if got.is_empty() => {
            inc(&c.no_answer);
            "no-answer".into()
        }
        (None, false, None) => "non-status-answer".into(),
    }
}
