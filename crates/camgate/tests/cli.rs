//! The camgate binary as a user runs it: `sim` prints its JSON line, `dump` writes files that
//! ffprobe decodes with the expected frame count (also after Ctrl-C), a bad configuration
//! names its line and key and starts nothing, and `demo` serves decodable streams.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CAMGATE: &str = env!("CARGO_BIN_EXE_camgate");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `camgate sim ...` and returns it with its JSON line.
fn sim(args: &[&str]) -> (Proc, serde_json::Value) {
    let mut child = Command::new(CAMGATE)
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("sim printed {line:?}: {e}"));
    (Proc(child), v)
}

fn ffprobe_frames(path: &std::path::Path) -> (u64, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is needed: run scripts/setup");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (codec, n) = text
        .split_once(',')
        .unwrap_or_else(|| panic!("ffprobe said {text:?}"));
    (n.trim().parse().unwrap(), codec.to_string())
}

fn decode_errors(path: &std::path::Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into()
}

#[test]
fn sim_prints_one_json_line_with_url_and_credentials() {
    let (_p, v) = sim(&["rtsp", "--username", "admin", "--password", "pw"]);
    assert!(v["url"].as_str().unwrap().starts_with("rtsp://127.0.0.1:"));
    assert_eq!(v["username"], "admin");
    assert_eq!(v["password"], "pw");
    let (_p, v) = sim(&["jpeg"]);
    assert!(v["url"].as_str().unwrap().starts_with("rtsp://127.0.0.1:"));
    assert!(v.get("username").is_none());
}

#[test]
fn dump_writes_h264_h265_and_mp4_with_the_requested_frame_count() {
    let dir = tempdir();
    for (video, ext, codec) in [
        ("h264", "h264", "h264"),
        ("h265", "h265", "hevc"),
        ("h264", "mp4", "h264"),
    ] {
        let (_p, v) = sim(&[
            "rtsp",
            "--video",
            video,
            "--audio",
            "pcma",
            "--username",
            "u",
            "--password",
            "p",
        ]);
        let out = dir.join(format!("out-{video}.{ext}"));
        let status = Command::new(CAMGATE)
            .args([
                "dump",
                v["url"].as_str().unwrap(),
                "-u",
                "u",
                "-P",
                "p",
                "--frames",
                "100",
                "-o",
            ])
            .arg(&out)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "dump {video} to .{ext} failed");
        let (n, c) = ffprobe_frames(&out);
        assert_eq!((n, c.as_str()), (100, codec), "{}", out.display());
        assert_eq!(decode_errors(&out), "", "{}", out.display());
    }
}

/// Runs `dump` into an MP4 for 4 s, stops it with `signal` and checks the file plays whole.
fn dump_stopped_by(signal: &str) {
    let dir = tempdir();
    let (_p, v) = sim(&["rtsp"]);
    let out = dir.join("interrupted.mp4");
    let mut child = Command::new(CAMGATE)
        .args(["dump", v["url"].as_str().unwrap(), "-o"])
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "dump exited with {status} after SIG{signal}"
    );
    let (n, _) = ffprobe_frames(&out);
    assert!(n >= 50, "only {n} frames in the interrupted file");
    assert_eq!(decode_errors(&out), "");
}

#[test]
fn dump_interrupted_by_ctrl_c_leaves_a_playable_mp4() {
    // SIGINT, as Ctrl-C sends.
    dump_stopped_by("INT");
}

#[test]
fn dump_stopped_by_sigterm_leaves_a_playable_mp4() {
    // SIGTERM, as systemd and Docker send.
    dump_stopped_by("TERM");
}

#[test]
fn dump_with_a_wrong_password_says_so() {
    let (_p, v) = sim(&["rtsp", "--username", "u", "--password", "right"]);
    let out = Command::new(CAMGATE)
        .args([
            "dump",
            v["url"].as_str().unwrap(),
            "-u",
            "u",
            "-P",
            "wrong",
            "--frames",
            "5",
            "-o",
            "/tmp/camgate-never.h264",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("auth") || err.contains("401"), "{err}");
    assert!(
        !err.contains("wrong"),
        "the password leaked into the message: {err}"
    );
}

#[test]
fn a_bad_configuration_names_line_and_key_and_starts_nothing() {
    let dir = tempdir();
    let cases = [
        (
            "[server]\nrtsp_listen = \"127.0.0.1:0\"\nhttp_port = 1\n",
            ":3:",
            "http_port",
        ),
        (
            "[[camera]]\nname = \"a\"\nsource = \"rtsp://127.0.0.1:9/x\"\ntransprot = \"tcp\"\n",
            ":4:",
            "transprot",
        ),
        (
            "[[camera]]\nname = \"a\"\nsource = \"ftp://x\"\n",
            ":3:",
            "ftp",
        ),
        (
            "[[camera]]\nname = \"a\"\nsource = \"rtsp://127.0.0.1:9/x\"\ntransport = \"carrier-pigeon\"\n",
            ":4:",
            "carrier-pigeon",
        ),
        (
            "[[camera]]\nname = \"a\"\nsource = \"dahua-p2p://SN1\"\ncloud = \"127.0.0.1:9\"\n\
             username = \"u\"\npassword = \"p\"\nmoed = \"relay\"\n",
            ":7:",
            "moed",
        ),
        (
            "[[camera]]\nname = \"a\"\nsource = \"dahua-p2p://u:p@SN1\"\nmode = \"sideways\"\n",
            ":4:",
            "sideways",
        ),
        (
            "[[camera]]\nname = \"a\"\nsource = \"dhip://127.0.0.1:5000\"\nusername = \"u\"\n\
             password = \"x\"\nrtsp_template = \"weird\"\n",
            ":6:",
            "weird",
        ),
        (
            "[[camera]]\nname = \"a\"\nsource = \"dhip://u:p@127.0.0.1\"\nmedai = \"dhav\"\n",
            ":4:",
            "medai",
        ),
    ];
    for (i, (text, line, key)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let t0 = Instant::now();
        let out = Command::new(CAMGATE)
            .args(["serve", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "case {i} started");
        assert!(t0.elapsed() < Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(line) && err.contains(key), "case {i}: {err}");
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "case {i} printed URLs: it started"
        );
    }
}

#[test]
fn demo_serves_streams_that_ffmpeg_decodes() {
    let port = free_port();
    let http = free_port();
    let mut child = Command::new(CAMGATE)
        .args([
            "demo",
            "--rtsp-port",
            &port.to_string(),
            "--http-port",
            &http.to_string(),
            "--rtp-port",
            "0",
            "--duration",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Proc(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut urls = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        if let Some(u) = l.strip_prefix("  rtsp://") {
            urls.push(format!("rtsp://{}", u.split_whitespace().next().unwrap()));
        }
        if l.starts_with("Try:") {
            break;
        }
    }
    assert_eq!(urls.len(), 5, "{urls:?}");
    // The first RTSP camera, and the DHIP camera (DHAV over HTTP).
    for url in [&urls[0], &urls[4]] {
        let out = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                url,
                "-frames:v",
                "50",
                "-f",
                "null",
                "-",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "camgate-cli-{}-{:x}",
        std::process::id(),
        rand_u64()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}
