//! `camgate dhip HOST ... COMMAND`: control of a Dahua device over DHIP (and its web port
//! for snapshots, downloads and DHAV streams), directly or through the Dahua P2P tunnel
//! (`--p2p`, HOST is then the serial number); and `camgate discover`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use dhip::client::{Client, ClientConfig, EventItem};
use dhip::http::HttpClient;
use dhip::methods::{PresetArg, PtzAddressing, PtzPolicy};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// `camgate dhip`.
#[derive(clap::Args, Debug)]
pub struct DhipArgs {
    /// The device's host name or address (with --p2p: its serial number).
    pub host: String,
    /// DHIP TCP port (5000; some devices use 37777 or 35000).
    #[arg(short = 'p', long, default_value_t = 5000)]
    pub port: u16,
    /// The device's web port (snapshot, download, stream).
    #[arg(long, default_value_t = 80)]
    pub http_port: u16,
    /// User name.
    #[arg(short = 'u', long, default_value = "admin")]
    pub username: String,
    /// Password.
    #[arg(short = 'P', long)]
    pub password: String,
    /// Print JSON (one object per result, one line per event).
    #[arg(long)]
    pub json: bool,
    /// Seconds a call may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Reach the device through the Dahua P2P cloud; HOST is its serial number.
    #[arg(long)]
    pub p2p: bool,
    /// With --p2p: the cloud and how to use it.
    #[command(flatten)]
    pub cloud: crate::p2p::CloudFlags,
    /// PTZ preset index argument: arg2 (most firmware) or arg1.
    #[arg(long, default_value = "arg2")]
    pub preset_arg: String,
    /// Address PTZ through a `ptz.factory.instance` object (firmware that needs one).
    #[arg(long)]
    pub ptz_object: bool,
    #[command(subcommand)]
    pub command: DhipCommand,
}

/// What to do.
#[derive(clap::Subcommand, Debug)]
pub enum DhipCommand {
    /// Device type, serial number, versions, vendor, name.
    Info,
    /// Read a configuration section; with --set, merge JSON into it and write it back.
    Config {
        /// Section name (General, Encode, Network, VideoWidget, ...).
        name: String,
        /// JSON merged into the section (objects key by key, per-channel lists by index).
        #[arg(long)]
        set: Option<String>,
        /// With --set: write the JSON as the whole section instead of merging.
        #[arg(long)]
        replace: bool,
    },
    /// List, add, modify or delete users.
    Users {
        #[command(subcommand)]
        action: Option<UsersAction>,
    },
    /// Pan, tilt, zoom, focus, iris, presets, tours, positions.
    Ptz {
        /// Channel (0-based).
        #[arg(long, default_value_t = 0)]
        channel: u32,
        #[command(subcommand)]
        action: PtzAction,
    },
    /// Read the device clock; --set TIME or --sync (to this machine's UTC time) to set it.
    Time {
        /// `YYYY-MM-DD HH:MM:SS`.
        #[arg(long)]
        set: Option<String>,
        /// Set the device clock to this machine's UTC time.
        #[arg(long, conflicts_with = "set")]
        sync: bool,
    },
    /// Reboot the device.
    Reboot,
    /// Save a JPEG from the device's snapshot CGI.
    Snapshot {
        /// Output file.
        file: PathBuf,
        /// Channel (1-based, as the CGI counts).
        #[arg(long, default_value_t = 1)]
        channel: u32,
    },
    /// Print events until Ctrl-C (one JSON line each with --json).
    Events {
        /// Event codes (default: All).
        #[arg(long, value_delimiter = ',')]
        codes: Vec<String>,
    },
    /// Find recorded files.
    Files {
        /// Start, `YYYY-MM-DD HH:MM:SS`.
        #[arg(long)]
        start: String,
        /// End, `YYYY-MM-DD HH:MM:SS`.
        #[arg(long)]
        end: String,
        /// Channel (0-based).
        #[arg(long, default_value_t = 0)]
        channel: u32,
        /// File types.
        #[arg(long, value_delimiter = ',', default_value = "dav")]
        types: Vec<String>,
    },
    /// Download a recorded file (a FilePath from `files`).
    Download {
        /// Path on the device.
        path: String,
        /// Output file.
        file: PathBuf,
    },
    /// Firmware state; --upgrade FILE --confirm uploads and applies a package.
    Firmware {
        /// Firmware package to upload.
        #[arg(long)]
        upgrade: Option<PathBuf>,
        /// Really upgrade.
        #[arg(long)]
        confirm: bool,
    },
    /// Record the live DHAV stream (HTTP RPC_Loadfile) to a .dav file.
    Stream {
        /// Output file.
        file: PathBuf,
        /// Seconds to record.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Channel (0-based).
        #[arg(long, default_value_t = 0)]
        channel: u32,
        /// 0 main stream, 1 sub stream.
        #[arg(long, default_value_t = 0)]
        subtype: u32,
    },
    /// Call any method with JSON params and print the whole reply.
    Call {
        /// Method, e.g. `magicBox.getSystemInfo`.
        method: String,
        /// JSON params.
        #[arg(long, default_value = "{}")]
        params: String,
        /// Instance id.
        #[arg(long)]
        object: Option<u64>,
    },
}

/// `users` actions.
#[derive(clap::Subcommand, Debug)]
pub enum UsersAction {
    /// Every user (the default).
    List,
    /// Groups.
    Groups,
    /// Users logged in now.
    Active,
    /// Add a user.
    Add {
        /// Name.
        name: String,
        /// Password.
        password: String,
        /// Group (admin or user).
        #[arg(long, default_value = "user")]
        group: String,
        /// Memo.
        #[arg(long, default_value = "")]
        memo: String,
    },
    /// Change a user's record (JSON merged into it).
    Modify {
        /// Name.
        name: String,
        /// JSON, e.g. `{"Memo":"night shift"}`.
        #[arg(long)]
        set: String,
    },
    /// Delete a user.
    Delete {
        /// Name.
        name: String,
    },
}

/// `ptz` actions.
#[derive(clap::Subcommand, Debug)]
pub enum PtzAction {
    /// Move in a direction (Up, Down, Left, Right, LeftUp, LeftDown, RightUp, RightDown).
    Move {
        /// Direction.
        direction: String,
        /// Speed 1–8.
        #[arg(long, default_value_t = 4)]
        speed: i64,
        /// How long, in milliseconds.
        #[arg(long, default_value_t = 500)]
        ms: u64,
    },
    /// Zoom `in` or `out`.
    Zoom {
        /// in or out.
        way: String,
        /// Speed 1–8.
        #[arg(long, default_value_t = 4)]
        speed: i64,
        /// How long, in milliseconds.
        #[arg(long, default_value_t = 500)]
        ms: u64,
    },
    /// Focus `near` or `far`.
    Focus {
        /// near or far.
        way: String,
        /// Speed 1–8.
        #[arg(long, default_value_t = 4)]
        speed: i64,
        /// How long, in milliseconds.
        #[arg(long, default_value_t = 500)]
        ms: u64,
    },
    /// Iris `open` or `close`.
    Iris {
        /// open or close.
        way: String,
        /// Speed 1–8.
        #[arg(long, default_value_t = 4)]
        speed: i64,
        /// How long, in milliseconds.
        #[arg(long, default_value_t = 500)]
        ms: u64,
    },
    /// Go to, set or clear a preset.
    Preset {
        /// goto, set or clear.
        op: String,
        /// Preset index.
        index: i64,
    },
    /// List presets.
    Presets,
    /// Start or stop a tour.
    Tour {
        /// start or stop.
        op: String,
        /// Tour index.
        index: i64,
    },
    /// List tours.
    Tours,
    /// Move to an absolute position in degrees.
    Absolute {
        /// Pan, 0–360.
        #[arg(long)]
        pan: f64,
        /// Tilt, 0–90.
        #[arg(long)]
        tilt: f64,
        /// Zoom.
        #[arg(long, default_value_t = 0.0)]
        zoom: f64,
    },
    /// Go to the home position.
    Home,
    /// Position and movement.
    Status,
}

/// Maps a `ptz zoom/focus/iris` way to its code.
pub fn lens_code(kind: &str, way: &str) -> Result<&'static str, String> {
    Ok(match (kind, way) {
        ("zoom", "in") => "ZoomTele",
        ("zoom", "out") => "ZoomWide",
        ("focus", "near") => "FocusNear",
        ("focus", "far") => "FocusFar",
        ("iris", "open") => "IrisLarge",
        ("iris", "close") => "IrisSmall",
        _ => return Err(format!("unknown {kind} direction {way:?}")),
    })
}

/// The PTZ policy from the flags.
pub fn ptz_policy(preset_arg: &str, object: bool) -> Result<PtzPolicy, String> {
    Ok(PtzPolicy {
        preset_arg: match preset_arg {
            "arg2" => PresetArg::Arg2,
            "arg1" => PresetArg::Arg1,
            other => return Err(format!("--preset-arg {other:?}: expected arg1 or arg2")),
        },
        addressing: if object {
            PtzAddressing::Instance
        } else {
            PtzAddressing::ChannelParam
        },
        ..PtzPolicy::default()
    })
}

fn parse_json(what: &str, s: &str) -> Result<Value, String> {
    serde_json::from_str(s).map_err(|e| format!("{what} is not valid JSON ({e}): {s}"))
}

/// Where the device's DHIP and web ports are (directly, or loopback ends of P2P tunnels).
struct Endpoints {
    dhip: (String, u16),
    http: (String, u16),
    _tunnels: Vec<tokio::task::AbortHandle>,
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        for t in &self._tunnels {
            t.abort();
        }
    }
}

async fn endpoints(a: &DhipArgs) -> Result<Endpoints, String> {
    if !a.p2p {
        return Ok(Endpoints {
            dhip: (a.host.clone(), a.port),
            http: (a.host.clone(), a.http_port),
            _tunnels: Vec::new(),
        });
    }
    let target = crate::p2p::P2pTarget {
        serial: a.host.clone(),
        cloud: a.cloud.cloud.clone(),
        profile: a.cloud.profile.clone(),
        mode: a.cloud.mode.clone(),
        auth: None,
        username: a.username.clone(),
        password: a.password.clone(),
        rand_salt: None,
        punch_timeout_s: None,
        idle_timeout_s: None,
    };
    let connector = dahua_p2p::client::Connector::new(target.client_config()?);
    connector
        .session()
        .await
        .map_err(|e| format!("dahua-p2p {}: {e}", a.host))?;
    let mut tunnels = Vec::new();
    let mut ends = Vec::new();
    for port in [a.port, a.http_port] {
        let t = dahua_p2p::client::Tunnel::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            connector.clone(),
            port,
        )
        .await
        .map_err(|e| format!("cannot open a loopback tunnel: {e}"))?;
        let addr = t.local_addr().map_err(|e| e.to_string())?;
        tunnels.push(tokio::spawn(t.run()).abort_handle());
        ends.push(("127.0.0.1".to_string(), addr.port()));
    }
    Ok(Endpoints {
        dhip: ends[0].clone(),
        http: ends[1].clone(),
        _tunnels: tunnels,
    })
}

fn client_config(a: &DhipArgs) -> Result<ClientConfig, String> {
    if !(0.1..=600.0).contains(&a.timeout) {
        return Err(format!(
            "--timeout {} is out of range (0.1 to 600)",
            a.timeout
        ));
    }
    let mut cfg = ClientConfig::new(&a.username, &a.password);
    cfg.call_timeout = Duration::from_secs_f64(a.timeout);
    Ok(cfg)
}

/// Prints `v`: JSON on one line with --json, else indented.
fn print(json_out: bool, v: &Value) {
    if json_out {
        println!("{v}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
    }
}

/// Prints a done message (`{"ok":true,...}` with --json).
fn done(json_out: bool, what: &str, extra: Value) {
    if json_out {
        let mut v = json!({"ok": true, "done": what});
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        println!("{v}");
    } else {
        println!("{what}");
    }
}

/// Runs `camgate dhip`.
pub async fn run(a: DhipArgs) -> Result<(), String> {
    let cfg = client_config(&a)?;
    let ends = endpoints(&a).await?;
    let http = || HttpClient::new(&ends.http.0, ends.http.1, cfg.clone());
    let j = a.json;
    // Commands on the web port only.
    match &a.command {
        DhipCommand::Snapshot { file, channel } => {
            let jpeg = http().snapshot(*channel).await.map_err(|e| e.to_string())?;
            tokio::fs::write(file, &jpeg)
                .await
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            done(
                j,
                &format!("saved {} bytes to {}", jpeg.len(), file.display()),
                json!({"bytes": jpeg.len(), "file": file}),
            );
            return Ok(());
        }
        DhipCommand::Download { path, file } => {
            let h = http();
            h.login().await.map_err(|e| e.to_string())?;
            let mut out = tokio::fs::File::create(file)
                .await
                .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
            let n = h.download(path, &mut out).await.map_err(|e| e.to_string());
            let _ = h.logout().await;
            let n = n?;
            done(
                j,
                &format!("saved {n} bytes to {}", file.display()),
                json!({"bytes": n, "file": file}),
            );
            return Ok(());
        }
        DhipCommand::Stream {
            file,
            duration,
            channel,
            subtype,
        } => {
            if !(0.1..=86_400.0).contains(duration) {
                return Err(format!("--duration {duration} is out of range"));
            }
            let h = http();
            h.login().await.map_err(|e| e.to_string())?;
            let mut out = tokio::fs::File::create(file)
                .await
                .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
            let n = h
                .stream(
                    *channel,
                    *subtype,
                    Duration::from_secs_f64(*duration),
                    &mut out,
                )
                .await
                .map_err(|e| e.to_string());
            let _ = h.logout().await;
            let n = n?;
            out.flush().await.map_err(|e| e.to_string())?;
            done(
                j,
                &format!("recorded {n} bytes of DHAV to {}", file.display()),
                json!({"bytes": n, "file": file}),
            );
            return Ok(());
        }
        _ => {}
    }
    let client = Client::connect(&ends.dhip.0, ends.dhip.1, cfg.clone())
        .await
        .map_err(|e| e.to_string())?;
    let result = command(&a, &client).await;
    if !matches!(a.command, DhipCommand::Reboot) {
        let _ = client.logout().await;
    }
    result
}

async fn command(a: &DhipArgs, c: &Client) -> Result<(), String> {
    let j = a.json;
    let e = |e: dhip::client::Error| e.to_string();
    match &a.command {
        DhipCommand::Info => {
            let v = c.info().await.map_err(e)?;
            if j {
                print(true, &v);
            } else {
                for (k, label) in [
                    ("deviceType", "type"),
                    ("serialNumber", "serial"),
                    ("hardwareVersion", "hardware"),
                    ("vendor", "vendor"),
                    ("machineName", "name"),
                ] {
                    if let Some(s) = v.get(k).and_then(Value::as_str) {
                        println!("{label}: {s}");
                    }
                }
                if let Some(sv) = v.get("softwareVersion") {
                    let ver = sv.get("Version").and_then(Value::as_str).unwrap_or("?");
                    let date = sv.get("BuildDate").and_then(Value::as_str).unwrap_or("?");
                    println!("software: {ver} ({date})");
                }
                print(false, &json!({"systemInfo": v["systemInfo"]}));
            }
        }
        DhipCommand::Config { name, set, replace } => match set {
            None => print(j, &c.get_config(name).await.map_err(e)?),
            Some(s) => {
                let patch = parse_json("--set", s)?;
                let written = if *replace {
                    c.set_config(name, &patch).await.map_err(e)?;
                    patch
                } else {
                    c.patch_config(name, &patch).await.map_err(e)?
                };
                if j {
                    print(true, &json!({"ok": true, "name": name, "table": written}));
                } else {
                    println!("wrote {name}");
                }
            }
        },
        DhipCommand::Users { action } => match action.as_ref().unwrap_or(&UsersAction::List) {
            UsersAction::List => print(j, &Value::Array(c.users().await.map_err(e)?)),
            UsersAction::Groups => print(j, &Value::Array(c.groups().await.map_err(e)?)),
            UsersAction::Active => print(j, &Value::Array(c.active_users().await.map_err(e)?)),
            UsersAction::Add {
                name,
                password,
                group,
                memo,
            } => {
                c.add_user(name, password, group, memo).await.map_err(e)?;
                done(j, &format!("added user {name}"), json!({"user": name}));
            }
            UsersAction::Modify { name, set } => {
                let changes = parse_json("--set", set)?;
                let u = c.modify_user(name, &changes).await.map_err(e)?;
                if j {
                    print(true, &json!({"ok": true, "user": u}));
                } else {
                    println!("modified user {name}");
                }
            }
            UsersAction::Delete { name } => {
                c.delete_user(name).await.map_err(e)?;
                done(j, &format!("deleted user {name}"), json!({"user": name}));
            }
        },
        DhipCommand::Ptz { channel, action } => {
            let p = ptz_policy(&a.preset_arg, a.ptz_object)?;
            let ch = *channel;
            let lens = |kind: &str, way: &str, speed: i64, ms: u64| {
                let code = lens_code(kind, way);
                async move {
                    let code = code?;
                    c.ptz_move(&p, ch, code, speed, Duration::from_millis(ms))
                        .await
                        .map_err(|e| e.to_string())
                }
            };
            match action {
                PtzAction::Move {
                    direction,
                    speed,
                    ms,
                } => {
                    c.ptz_move(&p, ch, direction, *speed, Duration::from_millis(*ms))
                        .await
                        .map_err(e)?;
                    done(j, &format!("moved {direction}"), json!({}));
                }
                PtzAction::Zoom { way, speed, ms } => {
                    lens("zoom", way, *speed, *ms).await?;
                    done(j, &format!("zoomed {way}"), json!({}));
                }
                PtzAction::Focus { way, speed, ms } => {
                    lens("focus", way, *speed, *ms).await?;
                    done(j, &format!("focused {way}"), json!({}));
                }
                PtzAction::Iris { way, speed, ms } => {
                    lens("iris", way, *speed, *ms).await?;
                    done(j, &format!("iris {way}"), json!({}));
                }
                PtzAction::Preset { op, index } => {
                    c.ptz_preset(&p, ch, op, *index).await.map_err(e)?;
                    done(j, &format!("preset {op} {index}"), json!({"index": index}));
                }
                PtzAction::Presets => {
                    print(j, &Value::Array(c.ptz_presets(&p, ch).await.map_err(e)?))
                }
                PtzAction::Tour { op, index } => {
                    let start = match op.as_str() {
                        "start" => true,
                        "stop" => false,
                        o => return Err(format!("tour {o:?}: expected start or stop")),
                    };
                    c.ptz_tour(&p, ch, start, *index).await.map_err(e)?;
                    done(j, &format!("tour {op} {index}"), json!({"index": index}));
                }
                PtzAction::Tours => print(j, &Value::Array(c.ptz_tours(&p, ch).await.map_err(e)?)),
                PtzAction::Absolute { pan, tilt, zoom } => {
                    c.ptz_absolute(&p, ch, *pan, *tilt, *zoom)
                        .await
                        .map_err(e)?;
                    done(j, &format!("moving to pan {pan}° tilt {tilt}°"), json!({}));
                }
                PtzAction::Home => {
                    c.ptz_home(&p, ch).await.map_err(e)?;
                    done(j, "going home", json!({}));
                }
                PtzAction::Status => {
                    let s = c.ptz_status(&p, ch).await.map_err(e)?;
                    print(j, &serde_json::to_value(&s).unwrap_or(Value::Null));
                }
            }
        }
        DhipCommand::Time { set, sync } => {
            let value = match (set, sync) {
                (Some(t), _) => Some(t.clone()),
                (None, true) => Some(now_utc_string()),
                (None, false) => None,
            };
            match value {
                Some(t) => {
                    c.set_current_time(&t).await.map_err(e)?;
                    done(j, &format!("time set to {t}"), json!({"time": t}));
                }
                None => {
                    let t = c.current_time().await.map_err(e)?;
                    if j {
                        print(true, &json!({"time": t}));
                    } else {
                        println!("{t}");
                    }
                }
            }
        }
        DhipCommand::Reboot => {
            c.reboot().await.map_err(e)?;
            done(j, "rebooting", json!({}));
        }
        DhipCommand::Events { codes } => {
            let codes = if codes.is_empty() {
                vec!["All".to_string()]
            } else {
                codes.clone()
            };
            let mut events = c.events(codes);
            loop {
                let item = tokio::select! {
                    i = events.next() => i,
                    _ = crate::signals::stop() => break,
                };
                match item {
                    Some(EventItem::Event(ev)) => {
                        if j {
                            println!("{}", serde_json::to_string(&ev).unwrap_or_default());
                        } else {
                            println!(
                                "{} {} index={} {}",
                                ev.code,
                                ev.action,
                                ev.index.map_or("-".into(), |i| i.to_string()),
                                ev.data
                            );
                        }
                    }
                    Some(EventItem::Attached { sid }) => {
                        eprintln!(
                            "attached (SID {})",
                            sid.map_or("?".into(), |s| s.to_string())
                        )
                    }
                    Some(EventItem::Disconnected { reason, retry_in }) => {
                        eprintln!("disconnected: {reason}; retrying in {retry_in:.1?}")
                    }
                    Some(EventItem::Failed(err)) => return Err(err.to_string()),
                    None => break,
                }
            }
            events.close().await;
        }
        DhipCommand::Files {
            start,
            end,
            channel,
            types,
        } => {
            let types: Vec<&str> = types.iter().map(String::as_str).collect();
            let files = c
                .find_files(*channel, start, end, &types, 64)
                .await
                .map_err(e)?;
            if j {
                for f in &files {
                    println!("{}", serde_json::to_string(f).unwrap_or_default());
                }
            } else {
                for f in &files {
                    println!(
                        "{}  {} – {}  {} bytes",
                        f.path,
                        f.start.as_deref().unwrap_or("?"),
                        f.end.as_deref().unwrap_or("?"),
                        f.length.unwrap_or(0)
                    );
                }
                println!("{} files", files.len());
            }
        }
        DhipCommand::Firmware { upgrade, confirm } => match upgrade {
            None => print(j, &c.upgrade_state().await.map_err(e)?),
            Some(path) => {
                let data = tokio::fs::read(path)
                    .await
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                let total = data.len();
                c.upgrade(Bytes::from(data), *confirm, |sent, total| {
                    if !j {
                        eprint!("\ruploaded {sent} of {total} bytes");
                    }
                })
                .await
                .map_err(e)?;
                if !j {
                    eprintln!();
                }
                done(
                    j,
                    &format!("uploaded {total} bytes; the device applies the upgrade"),
                    json!({"bytes": total}),
                );
            }
        },
        DhipCommand::Call {
            method,
            params,
            object,
        } => {
            let params = parse_json("--params", params)?;
            let mut call = dhip::client::Call::new(method, params);
            call.object = *object;
            let (r, data) = c.request_raw(&call).await.map_err(e)?;
            let mut v = r.to_value();
            if !data.is_empty()
                && let Value::Object(m) = &mut v
            {
                m.insert("data_len".into(), data.len().into());
            }
            print(j, &v);
            if !r.is_success() {
                return Err(format!(
                    "{method} failed{}",
                    r.error.map(|e| format!(": {e}")).unwrap_or_default()
                ));
            }
        }
        DhipCommand::Snapshot { .. }
        | DhipCommand::Download { .. }
        | DhipCommand::Stream { .. } => {}
    }
    Ok(())
}

/// This machine's UTC time as `YYYY-MM-DD HH:MM:SS`.
pub fn now_utc_string() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let d = dhip::dhav::PackedDate::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        d.year, d.month, d.day, d.hour, d.minute, d.second
    )
}

/// `camgate discover`.
#[derive(clap::Args, Debug)]
pub struct DiscoverArgs {
    /// Where to send the probe, HOST:PORT (repeatable). Default: the DHDiscover multicast
    /// group 239.255.255.251:37810 and the broadcast address 255.255.255.255:37810.
    #[arg(long)]
    pub target: Vec<SocketAddr>,
    /// Seconds to wait for replies.
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
    /// Print one JSON object per device.
    #[arg(long)]
    pub json: bool,
}

/// Runs `camgate discover`: one line per device found.
pub async fn discover(a: DiscoverArgs) -> Result<(), String> {
    let targets = if a.target.is_empty() {
        vec![
            SocketAddr::from((dhip::discovery::MULTICAST_GROUP, dhip::discovery::PORT)),
            SocketAddr::from(([255, 255, 255, 255], dhip::discovery::PORT)),
        ]
    } else {
        a.target.clone()
    };
    if !(0.1..=60.0).contains(&a.timeout) {
        return Err(format!(
            "--timeout {} is out of range (0.1 to 60)",
            a.timeout
        ));
    }
    let devices = discover_devices(&targets, Duration::from_secs_f64(a.timeout)).await?;
    for (from, d) in &devices {
        if a.json {
            let mut v = json!({"address": from.to_string(), "serial": d.serial, "type": d.device_type,
                "class": d.device_class, "vendor": d.vendor, "version": d.version,
                "name": d.machine_name, "ip": d.ipv4, "port": d.port, "http_port": d.http_port,
                "mac": d.mac, "channels": d.video_inputs});
            if let Value::Object(m) = &mut v {
                m.insert("deviceInfo".into(), d.raw.clone());
            }
            println!("{v}");
        } else {
            println!(
                "{}  {}  {}  serial {}  DHIP/TCP port {}  web {}",
                d.ipv4.clone().unwrap_or_else(|| from.ip().to_string()),
                d.device_type.as_deref().unwrap_or("?"),
                d.machine_name.as_deref().unwrap_or("?"),
                d.serial.as_deref().unwrap_or("?"),
                d.port.map_or("?".into(), |p| p.to_string()),
                d.http_port.map_or("?".into(), |p| p.to_string()),
            );
        }
    }
    if !a.json {
        eprintln!("{} devices", devices.len());
    }
    Ok(())
}

/// Probes `targets` and collects replies (one per device) for `wait`.
pub async fn discover_devices(
    targets: &[SocketAddr],
    wait: Duration,
) -> Result<Vec<(SocketAddr, dhip::discovery::DeviceInfo)>, String> {
    let sock = tokio::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    if targets.iter().any(|t| t.ip().is_multicast()) {
        let _ = sock.set_multicast_ttl_v4(2);
    }
    if targets
        .iter()
        .any(|t| t.ip() == std::net::IpAddr::from([255, 255, 255, 255]))
    {
        let _ = sock.set_broadcast(true);
    }
    let probe = dhip::discovery::probe(0);
    for t in targets {
        if let Err(e) = sock.send_to(&probe, t).await {
            eprintln!("discover: cannot send to {t}: {e}");
        }
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen = dhip::discovery::Dedup::default();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        let Ok(Ok((n, from))) = r else { break };
        match dhip::discovery::parse_reply(&buf[..n]) {
            Ok(d) => {
                if seen.first(&d, &from.to_string()) {
                    out.push((from, d));
                }
            }
            Err(e) => tracing::debug!(%from, "not a discovery reply: {e}"),
        }
    }
    Ok(out)
}
