//! Slow request heads: a fixed number of connections (half RTSP, half HTTP), each sending an
//! endless request head one byte per interval and never finishing it, reconnecting when the
//! server ends it (`408` after its header timeout, `503` past a connection limit).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::counters::{Counters, PerProto, inc};
use super::net::{connect_from, statuses_in};
use super::payloads::SlowHead;
use super::{Proto, Target};

/// Bytes of the server's answers kept per connection (enough for its status lines).
const KEEP: usize = 4096;

/// How the slow heads are sent.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connections kept open (even slots RTSP, odd slots HTTP).
    pub connections: usize,
    /// Source addresses, used in turn by the slots (none: the load does nothing).
    pub sources: Vec<IpAddr>,
    /// One byte per this.
    pub interval: Duration,
    /// The slots start spread over this.
    pub ramp: Duration,
    /// Wait after a refusal (503) or a failed connect before trying again.
    pub retry: Duration,
}

/// Runs the slots until cancelled (the caller drops this future at the end of the run).
pub async fn run(cfg: Config, target: Arc<Target>, counters: Arc<PerProto>) {
    if cfg.sources.is_empty() {
        return;
    }
    let mut slots = JoinSet::new();
    let n = cfg.connections.max(1);
    for i in 0..cfg.connections {
        let cfg = cfg.clone();
        let target = target.clone();
        let counters = counters.clone();
        slots.spawn(async move {
            tokio::time::sleep(cfg.ramp.mul_f64(i as f64 / n as f64)).await;
            slot(i, &cfg, &target, &counters).await;
        });
    }
    while slots.join_next().await.is_some() {}
}

/// One slot: connect, trickle a head, see how it ends, again.
async fn slot(i: usize, cfg: &Config, target: &Target, counters: &PerProto) {
    let proto = Proto::alternating(i);
    let src = cfg.sources[i % cfg.sources.len()];
    let c = counters.get(proto);
    loop {
        let mut s = match connect_from(src, target.addr(proto), Duration::from_secs(5)).await {
            Ok(s) => s,
            Err(e) => {
                c.connect_error(&e);
                tokio::time::sleep(cfg.retry).await;
                continue;
            }
        };
        inc(&c.connects);
        inc(&c.sent);
        let t0 = Instant::now();
        let statuses = trickle(&mut s, proto, cfg.interval, target, c).await;
        for st in &statuses {
            c.status(*st);
        }
        let refused = statuses.contains(&503);
        if !refused {
            c.held(t0.elapsed());
        }
        drop(s);
        let pause = if refused {
            cfg.retry
        } else {
            Duration::from_millis(50)
        };
        tokio::time::sleep(pause).await;
    }
}

/// Sends the head a byte per `interval` until the server ends the connection; the statuses
/// it answered with.
async fn trickle(
    s: &mut tokio::net::TcpStream,
    proto: Proto,
    interval: Duration,
    target: &Target,
    c: &Counters,
) -> Vec<u16> {
    let mut head = SlowHead::new(proto, target);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut got: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let byte = [head.next().unwrap_or(b'x')];
                if let Err(e) = s.write_all(&byte).await {
                    c.io_error(&e);
                    break;
                }
            }
            r = s.read(&mut chunk) => match r {
                Ok(0) => {
                    inc(&c.closed_by_server);
                    break;
                }
                Ok(n) => {
                    let room = KEEP.saturating_sub(got.len());
                    got.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) => {
                    c.io_error(&e);
                    break;
                }
            },
        }
    }
    statuses_in(&got)
}
