//! soak-abuse: runs mixed abuse against one camgate for `--duration` seconds, all loads at
//! once, each from its own loopback source addresses (so that honest clients on 127.0.0.1 are
//! a different address): slow request heads (slowloris), garbage requests, password guessing
//! and connect/close churn, on both the RTSP and the HTTP port. Prints one JSON object with
//! the counts of each load and the generator's own CPU time.
//!
//! Every address involved must be a loopback address; everything is bounded by the flags.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate_bench::abuse::counters::PerProto;
use camgate_bench::abuse::net::parse_sources;
use camgate_bench::abuse::{Target, churn, garbage, guess, slowloris};
use camgate_bench::stats::self_cpu_seconds;
use clap::Parser;
use serde_json::json;

/// Mixed abuse against one camgate (loopback only).
#[derive(Parser, Debug)]
#[command(name = "soak-abuse")]
struct Args {
    /// camgate's RTSP address (HOST:PORT, loopback).
    #[arg(long)]
    rtsp: SocketAddr,
    /// camgate's HTTP address (HOST:PORT, loopback).
    #[arg(long)]
    http: SocketAddr,
    /// A stream camgate serves (the RTSP requests name it).
    #[arg(long, default_value = "cam")]
    path: String,
    /// Seconds to run.
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Slow-head connections kept open (half RTSP, half HTTP); 0 turns the load off.
    #[arg(long, default_value_t = 200)]
    slowloris: usize,
    /// Their source addresses (comma-separated, ranges A-B). One address by default, so
    /// that past camgate's per-address limit (128) the rest are refused with 503.
    #[arg(long, default_value = "127.0.0.2")]
    slowloris_from: String,
    /// Milliseconds between the bytes of a slow head.
    #[arg(long, default_value_t = 1000)]
    slowloris_interval_ms: u64,
    /// Milliseconds to wait after a refusal before reconnecting.
    #[arg(long, default_value_t = 1000)]
    slowloris_retry_ms: u64,
    /// Garbage connections per second (RTSP and HTTP alternately); 0 turns the load off.
    #[arg(long, default_value_t = 50.0)]
    garbage_rate: f64,
    /// Their source addresses (many, so that the per-address login back-off does not keep
    /// the garbage Authorization headers from being parsed).
    #[arg(long, default_value = "127.0.2.1-127.0.2.254")]
    garbage_from: String,
    /// Garbage connections open at once at most.
    #[arg(long, default_value_t = 100)]
    garbage_in_flight: usize,
    /// Milliseconds a garbage connection waits for an answer.
    #[arg(long, default_value_t = 3000)]
    garbage_wait_ms: u64,
    /// Password-guessing connections (even: RTSP Digest/Basic, odd: HTTP Basic); 0 turns the
    /// load off.
    #[arg(long, default_value_t = 4)]
    guessers: usize,
    /// Their source addresses.
    #[arg(long, default_value = "127.0.0.4")]
    guess_from: String,
    /// User names to guess with (comma-separated).
    #[arg(long, default_value = "viewer,admin,root")]
    guess_users: String,
    /// Milliseconds between an answer and the next guess (0: as fast as answered).
    #[arg(long, default_value_t = 0)]
    guess_pause_ms: u64,
    /// Connect/close churn, connections per second (both ports); 0 turns the load off.
    #[arg(long, default_value_t = 200.0)]
    churn_rate: f64,
    /// Their source addresses.
    #[arg(long, default_value = "127.0.1.1-127.0.1.4")]
    churn_from: String,
    /// Churn connects in progress at once at most.
    #[arg(long, default_value_t = 64)]
    churn_in_flight: usize,
    /// Runtime worker threads (1: a single-threaded runtime, which keeps the generator's CPU
    /// to at most one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak-abuse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    for a in [args.rtsp, args.http] {
        if !a.ip().is_loopback() {
            return Err(format!("{a} is not a loopback address"));
        }
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err("--duration must be positive".into());
    }
    let target = Arc::new(Target {
        rtsp: args.rtsp,
        http: args.http,
        path: args.path.trim_start_matches('/').to_string(),
    });
    let slow_cfg = slowloris::Config {
        connections: args.slowloris,
        sources: parse_sources(&args.slowloris_from)
            .map_err(|e| format!("--slowloris-from: {e}"))?,
        interval: Duration::from_millis(args.slowloris_interval_ms.max(1)),
        ramp: Duration::from_secs(2),
        retry: Duration::from_millis(args.slowloris_retry_ms),
    };
    let garbage_cfg = garbage::Config {
        rate: args.garbage_rate,
        sources: parse_sources(&args.garbage_from).map_err(|e| format!("--garbage-from: {e}"))?,
        in_flight: args.garbage_in_flight,
        wait: Duration::from_millis(args.garbage_wait_ms),
    };
    let guess_cfg = guess::Config {
        connections: args.guessers,
        sources: parse_sources(&args.guess_from).map_err(|e| format!("--guess-from: {e}"))?,
        users: args
            .guess_users
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect(),
        pause: Duration::from_millis(args.guess_pause_ms),
    };
    let churn_cfg = churn::Config {
        rate: args.churn_rate,
        sources: parse_sources(&args.churn_from).map_err(|e| format!("--churn-from: {e}"))?,
        in_flight: args.churn_in_flight,
    };

    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;

    let slow = Arc::new(PerProto::default());
    let junk = Arc::new(garbage::Stats::default());
    let guesses = Arc::new(PerProto::default());
    let churned = Arc::new(PerProto::default());
    let cpu0 = self_cpu_seconds();
    let t0 = Instant::now();
    rt.block_on(async {
        let mut loads = tokio::task::JoinSet::new();
        if args.slowloris > 0 {
            loads.spawn(slowloris::run(slow_cfg, target.clone(), slow.clone()));
        }
        if args.garbage_rate > 0.0 {
            loads.spawn(garbage::run(garbage_cfg, target.clone(), junk.clone()));
        }
        if args.guessers > 0 {
            loads.spawn(guess::run(guess_cfg, target.clone(), guesses.clone()));
        }
        if args.churn_rate > 0.0 {
            loads.spawn(churn::run(churn_cfg, target.clone(), churned.clone()));
        }
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        // Every load and its connections end here (their tasks are aborted).
        loads.shutdown().await;
    });
    // Tasks spawned by the loads end with the runtime.
    rt.shutdown_timeout(Duration::from_secs(2));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = match (cpu0, self_cpu_seconds()) {
        (Some(a), Some(b)) => Some(((b - a) * 100.0).round() / 100.0),
        _ => None,
    };
    let out = json!({
        "rtsp": args.rtsp.to_string(),
        "http": args.http.to_string(),
        "duration_s": args.duration,
        "wall_s": (wall * 100.0).round() / 100.0,
        "generator_cpu_s": cpu,
        "generator_cpu_pct": cpu.map(|c| (c / wall * 1000.0).round() / 10.0),
        "threads": args.threads,
        "settings": {
            "slowloris": args.slowloris, "slowloris_from": args.slowloris_from,
            "garbage_rate": args.garbage_rate, "garbage_from": args.garbage_from,
            "guessers": args.guessers, "guess_from": args.guess_from,
            "churn_rate": args.churn_rate, "churn_from": args.churn_from,
        },
        "loads": {
            "slowloris": slow.to_json(),
            "garbage": junk.to_json(),
            "auth_guessing": guesses.to_json(),
            "churn": churned.to_json(),
        },
    });
    println!("{out}");
    Ok(())
}
