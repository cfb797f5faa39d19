//! DHIP RPC round trips per second against the DHIP simulator on loopback: one connection
//! with one call in flight, one connection with `--pipeline` calls in flight (calls are
//! multiplexed by request id), and `--connections` connections with one call in flight each.
//! The call is `magicBox.getDeviceType` (a small request and reply, like most control calls).
//!
//! ```sh
//! cargo build --release -p camgate-bench --bin dhip-rpc
//! target/release/dhip-rpc --seconds 5
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use dhip::client::{Client, ClientConfig};
use serde_json::json;

#[derive(Parser, Debug)]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Connections of the multi-connection run.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Calls in flight on the pipelined single connection.
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
}

/// Runs `workers` loops of calls on the given clients for `secs`; returns calls per second.
async fn measure(clients: &[Client], workers_per_client: usize, secs: f64) -> Result<f64, String> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    let t0 = Instant::now();
    for c in clients {
        for _ in 0..workers_per_client {
            let c = c.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let t = c
                        .call("magicBox.getDeviceType", json!({}))
                        .await
                        .map_err(|e| e.to_string())?;
                    if t.get("type").is_none() {
                        return Err(format!("unexpected reply {t}"));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), String>(())
            }));
        }
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64())
}

async fn run(a: Args) -> Result<(), String> {
    let sim = sim::dhip::DhipSim::start(sim::dhip::DhipSimOptions::default())
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let addr = sim.addr();
    let cfg = ClientConfig::new(sim.username(), sim.password());
    let connect = || {
        let cfg = cfg.clone();
        async move {
            Client::connect(&addr.ip().to_string(), addr.port(), cfg)
                .await
                .map_err(|e| e.to_string())
        }
    };
    let one = vec![connect().await?];
    // Warm up.
    measure(&one, 1, 0.5).await?;
    let sequential = measure(&one, 1, a.seconds).await?;
    let pipelined = measure(&one, a.pipeline.max(1), a.seconds).await?;
    let mut many = Vec::new();
    for _ in 0..a.connections.max(1) {
        many.push(connect().await?);
    }
    let parallel = measure(&many, 1, a.seconds).await?;
    let report = json!({
        "seconds": a.seconds,
        "one_connection_calls_per_s": sequential,
        "one_connection_pipelined_calls_per_s": pipelined, "pipeline": a.pipeline,
        "connections": a.connections, "many_connections_calls_per_s": parallel,
    });
    println!("{report}");
    eprintln!(
        "DHIP round trips: 1 connection {sequential:.0}/s, 1 connection with {} in flight {pipelined:.0}/s, {} connections {parallel:.0}/s",
        a.pipeline, a.connections
    );
    for c in one.iter().chain(&many) {
        let _ = c.logout().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    run(Args::parse()).await
}
