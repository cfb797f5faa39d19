//! Dahua P2P tunnel benchmark: bulk bytes through a realm of a P2P session with the simulated
//! cloud and device on loopback, at several PTCP loss rates, beside a plain TCP relay of the
//! same bytes (the limit), plus the time from start to the first video frame of the device's
//! RTSP camera through the tunnel. Prints one JSON object per line.
//!
//! `p2p-tunnel [--mb 64] [--loss "0 0.01 0.05"] [--mode direct|relay] [--first-frame-runs 5]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use dahua_p2p::client::{ClientConfig, Connector, Mode, Tunnel, connect};
use media::Source;
use serde_json::json;
use sim::dahua_p2p::{DahuaP2pSim, DahuaP2pSimOptions, DeviceOptions, RTSP_PATH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug)]
struct Args {
    /// Megabytes moved per throughput run.
    #[arg(long, default_value_t = 64)]
    mb: usize,
    /// PTCP loss rates to run (fraction of datagrams the simulated device and agent drop,
    /// each way).
    #[arg(long, default_value = "0 0.01 0.05")]
    loss: String,
    /// Data path.
    #[arg(long, default_value = "direct")]
    mode: String,
    /// Runs of the start-to-first-frame measurement.
    #[arg(long, default_value_t = 5)]
    first_frame_runs: usize,
}

/// User+system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is index 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// A TCP service that writes `bytes` to each connection, then closes it.
async fn bulk_source(bytes: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let chunk: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A plain TCP relay to `target` (the limit: the same bytes through one more TCP hop).
async fn tcp_relay(target: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut a, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut b) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    });
    addr
}

async fn read_all(mut s: TcpStream) -> usize {
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    while let Ok(k) = s.read(&mut buf).await {
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

fn sim_options(loss: f64, services: &[(u16, SocketAddr)]) -> DahuaP2pSimOptions {
    let mut dev = DeviceOptions::new("BENCH0DAHUA0001");
    for (p, a) in services {
        dev.services.insert(*p, *a);
    }
    DahuaP2pSimOptions {
        devices: vec![dev],
        ptcp_loss: loss,
        ptcp_seed: 7,
        ..DahuaP2pSimOptions::default()
    }
}

fn client_config(sim: &DahuaP2pSim, mode: Mode) -> ClientConfig {
    let info = sim.info();
    let mut cfg = ClientConfig::new(&info.serial, &info.username, &info.password);
    cfg.cloud = Some(info.cloud);
    cfg.mode = mode;
    cfg
}

async fn tunnel_run(bytes: usize, loss: f64, mode: Mode) -> serde_json::Value {
    let src = bulk_source(bytes).await;
    let sim = DahuaP2pSim::start(sim_options(loss, &[(9000, src)]))
        .await
        .expect("simulator");
    let cfg = client_config(&sim, mode);
    let t0 = Instant::now();
    let session = match connect(&cfg).await {
        Ok(s) => s,
        Err(e) => return json!({"kind": "tunnel", "loss": loss, "error": e.to_string()}),
    };
    let setup_ms = t0.elapsed().as_secs_f64() * 1e3;
    let c0 = cpu_seconds();
    let t1 = Instant::now();
    let mut realm = match session.open(9000).await {
        Ok(r) => r,
        Err(e) => return json!({"kind": "tunnel", "loss": loss, "error": e.to_string()}),
    };
    let mut got = 0usize;
    let limit = Duration::from_secs(120);
    while let Ok(Some(b)) = tokio::time::timeout(limit, realm.rx.recv()).await {
        got += b.len();
    }
    let secs = t1.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let stats = session.stats();
    let device = sim
        .observed()
        .ptcp
        .iter()
        .max_by_key(|r| r.stats.data_bytes_sent)
        .map(|r| r.stats.clone());
    json!({
        "kind": "tunnel", "mode": mode.to_string(), "loss": loss, "bytes": got,
        "complete": got == bytes, "secs": secs, "mbit_s": got as f64 * 8.0 / secs / 1e6,
        "cpu_s": cpu, "cpu_s_per_gb": cpu / (got as f64 / 1e9), "setup_ms": setup_ms,
        "client_dropped": stats.as_ref().map(|s| s.dropped),
        "client_out_of_order": stats.as_ref().map(|s| s.out_of_order),
        "device_retransmits": device.as_ref().map(|s| s.retransmits),
        "device_fast_retransmits": device.as_ref().map(|s| s.fast_retransmits),
        "device_timeouts": device.as_ref().map(|s| s.timeouts),
        "device_rto_ms": device.as_ref().map(|s| s.rto.as_secs_f64() * 1e3),
        "agent_relay_overflows": sim.observed().counters.relay_overflows,
    })
}

async fn relay_run(bytes: usize) -> serde_json::Value {
    let src = bulk_source(bytes).await;
    let relay = tcp_relay(src).await;
    let c0 = cpu_seconds();
    let t1 = Instant::now();
    let s = TcpStream::connect(relay).await.expect("connect relay");
    let got = read_all(s).await;
    let secs = t1.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    json!({
        "kind": "tcp-relay", "bytes": got, "complete": got == bytes, "secs": secs,
        "mbit_s": got as f64 * 8.0 / secs / 1e6, "cpu_s": cpu,
        "cpu_s_per_gb": cpu / (got as f64 / 1e9),
    })
}

/// Start (no session yet) to the first decoded-ready video frame through the tunnel.
async fn first_frame_run(mode: Mode) -> serde_json::Value {
    let sim = DahuaP2pSim::start(sim_options(0.0, &[]))
        .await
        .expect("simulator");
    let cfg = client_config(&sim, mode);
    let (user, pass) = (cfg.username.clone(), cfg.password.clone());
    let t0 = Instant::now();
    let connector = Connector::new(cfg);
    if let Err(e) = connector.session().await {
        return json!({"kind": "first-frame", "error": e.to_string()});
    }
    let session_ms = t0.elapsed().as_secs_f64() * 1e3;
    let tunnel = Tunnel::bind(SocketAddr::from(([127, 0, 0, 1], 0)), connector, 554)
        .await
        .expect("tunnel");
    let addr = tunnel.local_addr().expect("addr");
    let task = tokio::spawn(tunnel.run());
    let url = format!("rtsp://{addr}/{RTSP_PATH}");
    let opts = rtsp::source::RtspSourceOptions {
        username: Some(user),
        password: Some(pass),
        ..Default::default()
    };
    let r = async {
        let src = rtsp::source::RtspSource::new(&url, opts).map_err(|e| e.to_string())?;
        let mut s = src.connect().await.map_err(|e| e.to_string())?;
        loop {
            let f = s.next_frame().await.map_err(|e| e.to_string())?;
            if f.track == 0 {
                return Ok::<_, String>(f.keyframe);
            }
        }
    };
    let out = match tokio::time::timeout(Duration::from_secs(20), r).await {
        Ok(Ok(keyframe)) => json!({
            "kind": "first-frame", "mode": mode.to_string(), "session_ms": session_ms,
            "first_frame_ms": t0.elapsed().as_secs_f64() * 1e3, "keyframe": keyframe,
        }),
        Ok(Err(e)) => json!({"kind": "first-frame", "error": e}),
        Err(_) => json!({"kind": "first-frame", "error": "no frame in 20 s"}),
    };
    task.abort();
    out
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mode: Mode = args.mode.parse().expect("--mode");
    let bytes = args.mb << 20;
    for _ in 0..args.first_frame_runs {
        println!("{}", first_frame_run(mode).await);
    }
    println!("{}", relay_run(bytes).await);
    for loss in args.loss.split_whitespace() {
        let loss: f64 = loss.parse().expect("--loss values are fractions");
        println!("{}", tunnel_run(bytes, loss, mode).await);
    }
    println!("{}", relay_run(bytes).await);
}
