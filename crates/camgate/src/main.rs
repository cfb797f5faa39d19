//! The camgate command line: `serve`, `demo`, `dump`, `dissect`, `tunnel`, `dhip`, `discover`,
//! `sim`.

use std::path::PathBuf;
use std::process::ExitCode;

use camgate::config::Config;
use clap::{Parser, Subcommand};

/// camgate frees IP cameras from vendor clouds and private protocols and re-serves them over
/// RTSP and HTTP.
#[derive(Parser, Debug)]
#[command(name = "camgate", version, about)]
struct Cli {
    /// Log filter (e.g. info, debug, camgate=debug); also from RUST_LOG.
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve every camera of a configuration file over RTSP and HTTP.
    Serve {
        /// The TOML configuration file.
        #[arg(short, long, default_value = "camgate.toml")]
        config: PathBuf,
        /// Check the configuration and exit.
        #[arg(long)]
        check: bool,
    },
    /// Serve built-in simulated cameras (no hardware needed) and print their URLs.
    Demo(camgate::demo::DemoArgs),
    /// Pull an RTSP camera into a .h264/.h265/.mp4 file.
    Dump(camgate::dump::DumpArgs),
    /// Decode captured protocol bytes into one JSON object per message or packet.
    Dissect(camgate::dissect::DissectArgs),
    /// Tunnel TCP connections to a device port through a vendor P2P service.
    #[command(subcommand)]
    Tunnel(TunnelKind),
    /// Control a Dahua device over DHIP: info, config, users, PTZ, time, events, files...
    Dhip(camgate::dhipcmd::DhipArgs),
    /// Find Dahua devices with DHDiscover.
    Discover(camgate::dhipcmd::DiscoverArgs),
    /// Run a simulated device on loopback and print how to reach it as one JSON line.
    #[command(subcommand)]
    Sim(camgate::simcmd::SimKind),
}

/// Which P2P service to tunnel through.
#[derive(Subcommand, Debug)]
enum TunnelKind {
    /// A Dahua device by serial number, through Easy4IPCloud and PTCP; every connection to
    /// the listen address is its own realm to the device's port.
    Dahua(camgate::p2p::TunnelArgs),
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let env = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(config: PathBuf, check: bool) -> Result<(), String> {
    let (cfg, text) = Config::load(&config).map_err(|e| e.to_string())?;
    let file = config.display().to_string();
    if check {
        for (i, cam) in cfg.camera.iter().enumerate() {
            camgate::sources::make_source(cam).map_err(|e| {
                let key = camgate::serve::offending_key(cam, &e);
                let line = camgate::config::camera_key_line(&text, i, key).unwrap_or(0);
                format!("{file}:{line}: camera {:?}: {e}", cam.name)
            })?;
        }
        println!("{file}: OK, {} cameras", cfg.camera.len());
        return Ok(());
    }
    let running = camgate::serve::start(&cfg, &text, &file).await?;
    let rtsp = running.rtsp.local_addr();
    for cam in &cfg.camera {
        println!("rtsp://{rtsp}/{}", cam.name);
    }
    println!("HTTP API: http://{}/api/streams", running.http_addr);
    camgate::signals::survive_hangup();
    let signal = camgate::signals::stop().await;
    tracing::info!("{signal}: shutting down");
    if running.shutdown().await {
        tracing::info!("shut down cleanly");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("camgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve { config, check } => serve(config, check).await,
            Command::Demo(args) => camgate::demo::run(args).await,
            Command::Dump(args) => camgate::dump::run(args).await.map_err(|e| e.to_string()),
            Command::Dissect(args) => {
                let mut out = std::io::stdout().lock();
                camgate::dissect::run(&args, &mut out).map_err(|e| e.to_string())
            }
            Command::Sim(kind) => camgate::simcmd::run(kind).await,
            Command::Dhip(args) => camgate::dhipcmd::run(args).await,
            Command::Discover(args) => camgate::dhipcmd::discover(args).await,
            Command::Tunnel(TunnelKind::Dahua(args)) => camgate::p2p::run_tunnel(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camgate: {e}");
            ExitCode::FAILURE
        }
    }
}
