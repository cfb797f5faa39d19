//! The TOML configuration: `[server]`, `[[users]]`, `[[camera]]`. A bad file is an error that
//! names the line and the key, and nothing starts.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen addresses and server-wide settings.
    #[serde(default)]
    pub server: ServerSection,
    /// Users allowed to read streams (RTSP and HTTP); none = open.
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// Cameras to serve.
    #[serde(default)]
    pub camera: Vec<CameraEntry>,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// RTSP listen address.
    pub rtsp_listen: SocketAddr,
    /// HTTP API listen address.
    pub http_listen: SocketAddr,
    /// UDP port for RTP (RTCP = next port); 0 picks any free pair.
    pub rtp_port: u16,
    /// Offer RTSP over UDP at all.
    pub udp: bool,
    /// UDP sessions without keep-alive for this long are dropped.
    pub session_timeout_s: u64,
    /// Also offer Basic in RTSP challenges (Digest is always offered).
    pub offer_basic_auth: bool,
    /// Open client connections at most, RTSP and HTTP together (lowered to what the file
    /// descriptor limit allows).
    pub max_connections: usize,
    /// Open client connections at most from one address (an IPv6 client counts as its /64).
    pub max_connections_per_address: usize,
    /// A request must arrive in full within this once it has begun (an idle HTTP keep-alive
    /// connection is closed after it too).
    pub header_timeout_s: f64,
    /// An RTSP connection that has not authenticated is closed after this long without a
    /// request.
    pub auth_timeout_s: f64,
    /// An authenticated RTSP connection that plays nothing is closed after this long without
    /// a request.
    pub connection_idle_timeout_s: f64,
    /// RTSP sessions one connection may hold.
    pub max_sessions_per_connection: usize,
    /// Failed logins one address may make before each further one makes it wait.
    pub login_failures_before_backoff: u32,
    /// The longest wait of the login back-off (the first is 1 s, doubling).
    pub login_backoff_max_s: f64,
    /// How long shutdown (SIGTERM, SIGINT) may take before camgate exits anyway.
    pub shutdown_timeout_s: f64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            rtsp_listen: "0.0.0.0:8554".parse().expect("valid literal"),
            http_listen: "0.0.0.0:1984".parse().expect("valid literal"),
            rtp_port: 8000,
            udp: true,
            session_timeout_s: 60,
            offer_basic_auth: false,
            max_connections: 1024,
            max_connections_per_address: 128,
            header_timeout_s: 10.0,
            auth_timeout_s: 15.0,
            connection_idle_timeout_s: 60.0,
            max_sessions_per_connection: 16,
            login_failures_before_backoff: 5,
            login_backoff_max_s: 60.0,
            shutdown_timeout_s: 5.0,
        }
    }
}

impl ServerSection {
    /// Checks the values' ranges; the offending key and what is wrong.
    fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [
            ("header_timeout_s", self.header_timeout_s),
            ("auth_timeout_s", self.auth_timeout_s),
            ("connection_idle_timeout_s", self.connection_idle_timeout_s),
            ("login_backoff_max_s", self.login_backoff_max_s),
            ("shutdown_timeout_s", self.shutdown_timeout_s),
        ] {
            if !(0.1..=86_400.0).contains(&v) {
                return Err((
                    key,
                    format!("{key} = {v} is out of range (0.1 to 86400 seconds)"),
                ));
            }
        }
        for (key, v) in [
            ("max_connections", self.max_connections),
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
            (
                "max_sessions_per_connection",
                self.max_sessions_per_connection,
            ),
        ] {
            if !(1..=1_000_000).contains(&v) {
                return Err((key, format!("{key} = {v} is out of range (1 to 1000000)")));
            }
        }
        Ok(())
    }

    /// The connection timeouts and caps for the RTSP server.
    pub fn connection_policy(&self) -> rtsp::server::ConnectionPolicy {
        rtsp::server::ConnectionPolicy {
            header_timeout: Duration::from_secs_f64(self.header_timeout_s),
            auth_timeout: Duration::from_secs_f64(self.auth_timeout_s),
            idle_timeout: Duration::from_secs_f64(self.connection_idle_timeout_s),
            max_sessions: self.max_sessions_per_connection,
        }
    }

    /// The login back-off for both servers.
    pub fn login_backoff(&self) -> rtsp::server::LoginBackoff {
        rtsp::server::LoginBackoff {
            free_failures: self.login_failures_before_backoff,
            max_wait: Duration::from_secs_f64(self.login_backoff_max_s),
            ..rtsp::server::LoginBackoff::default()
        }
    }
}

/// `[[users]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `[[camera]]`: the common keys; everything else is an option of the camera's source kind.
#[derive(Debug, Deserialize)]
pub struct CameraEntry {
    /// Stream name: `rtsp://HOST:8554/<name>`.
    pub name: String,
    /// Source URL (`rtsp://...`, `test://...`).
    pub source: String,
    /// Keep the camera connected without readers.
    #[serde(default)]
    pub preload: bool,
    /// Disconnect this long after the last reader leaves.
    pub idle_timeout_s: Option<f64>,
    /// No video for this long = reconnect.
    pub video_timeout_s: Option<f64>,
    /// How long connecting may take.
    pub start_timeout_s: Option<f64>,
    /// GOP cache budget in MiB (0 disables instant start).
    pub gop_cache_mb: Option<f64>,
    /// Each reader's queue budget in MiB.
    pub reader_queue_mb: Option<f64>,
    /// Source-specific options, checked by the source.
    #[serde(flatten)]
    pub options: toml::Table,
}

/// A configuration error with its location.
#[derive(Debug)]
pub struct ConfigError {
    /// File name (or "<config>").
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        let cfg = Config::parse(&text, &path.display().to_string())?;
        Ok((cfg, text))
    }

    /// Parses and checks text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            ConfigError {
                file: file.into(),
                line,
                message: e.message().trim().to_string(),
            }
        })?;
        if let Err((key, message)) = cfg.server.check() {
            return Err(ConfigError {
                file: file.into(),
                line: section_key_line(text, "server", key),
                message,
            });
        }
        let mut seen = std::collections::HashSet::new();
        for (i, cam) in cfg.camera.iter().enumerate() {
            let err = |key: &str, message: String| ConfigError {
                file: file.into(),
                line: camera_key_line(text, i, key),
                message,
            };
            if cam.name.is_empty()
                || !cam
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(err(
                    "name",
                    format!(
                        "camera name {:?}: use letters, digits, '-', '_' or '.'",
                        cam.name
                    ),
                ));
            }
            if !seen.insert(cam.name.clone()) {
                return Err(err(
                    "name",
                    format!("camera name {:?} is used twice", cam.name),
                ));
            }
            for (key, v) in [
                ("idle_timeout_s", cam.idle_timeout_s),
                ("video_timeout_s", cam.video_timeout_s),
                ("start_timeout_s", cam.start_timeout_s),
                ("gop_cache_mb", cam.gop_cache_mb),
                ("reader_queue_mb", cam.reader_queue_mb),
            ] {
                if let Some(v) = v.filter(|v| !(0.0..=86_400.0).contains(v)) {
                    return Err(err(key, format!("{key} = {v} is out of range")));
                }
            }
        }
        Ok(cfg)
    }
}

/// The 1-based line of byte offset `pos`.
pub fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line of `key = ...` inside the `[section]` table, if found.
pub fn section_key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let header = format!("[{section}]");
    let mut inside = false;
    for (lineno, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t.starts_with(&header);
            continue;
        }
        if inside
            && t.split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return Some(lineno + 1);
        }
    }
    None
}

/// The line of `key = ...` inside the `index`-th `[[camera]]` table, if found.
pub fn camera_key_line(text: &str, index: usize, key: &str) -> Option<usize> {
    let mut cam = None;
    let mut n = 0usize;
    for (lineno, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("[[camera]]") {
            cam = Some(n);
            n += 1;
            continue;
        }
        if t.starts_with('[') {
            cam = None;
            continue;
        }
        if cam == Some(index)
            && t.split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return Some(lineno + 1);
        }
    }
    // The key may be absent (a missing key); point at the table header then.
    let mut n = 0usize;
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().starts_with("[[camera]]") {
            if n == index {
                return Some(lineno + 1);
            }
            n += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_parses() {
        let cfg = Config::parse(
            r#"
[server]
rtsp_listen = "127.0.0.1:8554"
http_listen = "127.0.0.1:1984"

[[users]]
username = "viewer"
password = "pw"

[[camera]]
name = "front"
source = "rtsp://10.0.0.1/stream"
preload = true
transport = "udp"
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(cfg.camera.len(), 1);
        assert!(cfg.camera[0].preload);
        assert_eq!(cfg.camera[0].options["transport"].as_str(), Some("udp"));
        assert_eq!(cfg.users[0].username, "viewer");
    }

    #[test]
    fn unknown_server_key_names_line_and_key() {
        let e = Config::parse(
            "[server]\nrtsp_listen = \"127.0.0.1:1\"\nlisten_rtsp = 5\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("listen_rtsp"), "{e}");
    }

    #[test]
    fn bad_value_type_names_line() {
        let e = Config::parse(
            "[[camera]]\nname = \"a\"\nsource = \"rtsp://x\"\npreload = \"yes\"\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
    }

    #[test]
    fn missing_source_is_reported() {
        let e = Config::parse("[[camera]]\nname = \"a\"\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("source"), "{e}");
    }

    #[test]
    fn duplicate_camera_names_are_refused() {
        let e = Config::parse(
            "[[camera]]\nname = \"a\"\nsource = \"x\"\n[[camera]]\nname = \"a\"\nsource = \"y\"\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
    }

    #[test]
    fn connection_limits_are_read_and_checked() {
        let cfg = Config::parse(
            "[server]\nmax_connections = 50\nheader_timeout_s = 2.5\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(cfg.server.max_connections, 50);
        assert_eq!(
            cfg.server.connection_policy().header_timeout,
            Duration::from_millis(2500)
        );
        let e = Config::parse(
            "[server]\nrtp_port = 8000\nmax_connections_per_address = 0\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("max_connections_per_address"), "{e}");
    }

    #[test]
    fn syntax_error_names_line() {
        let e = Config::parse("[server]\nrtsp_listen = \n", "c.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
