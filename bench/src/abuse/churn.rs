//! Connect/close churn: at a fixed rate, a TCP connection to the RTSP or the HTTP port
//! (alternately) that is closed at once, with a FIN or a reset (alternately), without sending
//! anything.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::counters::{PerProto, inc};
use super::net::{connect_from, reset};
use super::{Proto, Target};

/// How fast the churn goes.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connections per second (both ports together).
    pub rate: f64,
    /// Source addresses, used in turn (none: the load does nothing).
    pub sources: Vec<IpAddr>,
    /// Connects in progress at once at most (past it a tick is skipped and counted).
    pub in_flight: usize,
}

/// Churns until cancelled (the caller drops this future at the end of the run).
pub async fn run(cfg: Config, target: Arc<Target>, counters: Arc<PerProto>) {
    if cfg.sources.is_empty() {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / cfg.rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let slots = Arc::new(Semaphore::new(cfg.in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut n: usize = 0;
    loop {
        tick.tick().await;
        while tasks.try_join_next().is_some() {}
        let proto = Proto::alternating(n);
        let src = cfg.sources[(n / 2) % cfg.sources.len()];
        let with_reset = (n / 2).is_multiple_of(2);
        n = n.wrapping_add(1);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            inc(&counters.get(proto).skipped);
            continue;
        };
        let (dst, counters) = (target.addr(proto), counters.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let c = counters.get(proto);
            match connect_from(src, dst, Duration::from_secs(2)).await {
                Ok(s) => {
                    inc(&c.connects);
                    if with_reset {
                        reset(s);
                    } else {
                        drop(s);
                    }
                }
                Err(e) => c.connect_error(&e),
            }
        });
    }
}
