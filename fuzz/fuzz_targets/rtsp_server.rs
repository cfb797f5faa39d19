//! Fuzzes the RTSP server's request handling as a whole: a real server on loopback (users with
//! Digest and Basic, UDP, short timeouts, a live H.264 + G.711 stream to DESCRIBE, SETUP and
//! PLAY) gets the input as one client's bytes, in reads of a fuzzer-chosen size.
//!
//! The first byte sets the read size (low 6 bits) and whether the client first plays the stream
//! with valid credentials (bit 7), so the rest reaches the paths of a playing, authenticated
//! connection. In the rest, `{A}` becomes a valid Basic `Authorization` header and `{S}` the
//! session id. A panic on any of the server's tasks aborts the process (libFuzzer's panic
//! hook), so it shows as a crash.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use camgate_fuzz::{hub_with, runtime};
use futures_util::future::BoxFuture;
use libfuzzer_sys::fuzz_target;
use media::hub::Hub;
use media::{Codec, Frame, G711Law, Source, SourceError, SourceSession, TrackInfo};
use rtsp::server::{ConnectionPolicy, RtspServer, ServerConfig, User};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AUTH: &str = "Authorization: Basic YWRtaW46cHc=";

/// A camera that sends a small H.264 picture and a G.711 frame every 20 ms.
struct Camera;

struct Session {
    n: i64,
}

impl Source for Camera {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>> {
        Box::pin(async { Ok(Box::new(Session { n: 0 }) as Box<dyn SourceSession>) })
    }

    fn describe(&self) -> String {
        "fuzz camera".into()
    }
}

impl SourceSession for Session {
    fn tracks(&self) -> Vec<TrackInfo> {
        vec![
            TrackInfo::new(Codec::H264 {
                sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe]),
                pps: Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
            }),
            TrackInfo::new(Codec::G711 {
                law: G711Law::A,
                rate: 8000,
                channels: 1,
            }),
        ]
    }

    fn next_frame(&mut self) -> BoxFuture<'_, Result<Frame, SourceError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.n += 1;
            if self.n % 2 == 0 {
                return Ok(Frame::new(
                    1,
                    self.n * 80,
                    true,
                    Bytes::from(vec![0xd5; 160]),
                ));
            }
            let key = self.n % 10 == 1;
            // 4-byte length-prefixed NAL units; keyframes carry their parameter sets.
            let mut au = Vec::new();
            if key {
                au.extend_from_slice(&[
                    0, 0, 0, 9, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe,
                ]);
                au.extend_from_slice(&[0, 0, 0, 4, 0x68, 0xce, 0x3c, 0x80]);
            }
            let slice_len = 3000u32;
            au.extend_from_slice(&slice_len.to_be_bytes());
            au.push(if key { 0x65 } else { 0x41 });
            au.resize(au.len() + slice_len as usize - 1, 0x9a);
            Ok(Frame::new(0, self.n * 1800, key, Bytes::from(au)))
        })
    }
}

fn hub() -> &'static Arc<Hub> {
    static HUB: OnceLock<Arc<Hub>> = OnceLock::new();
    HUB.get_or_init(|| hub_with(Arc::new(Camera)))
}

/// Reads one response (head and `Content-Length` body), skipping interleaved data; its head.
async fn response(sock: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        while got.first() == Some(&b'$') && got.len() >= 4 {
            let len = 4 + usize::from(u16::from_be_bytes([got[2], got[3]]));
            if got.len() < len {
                break;
            }
            got.drain(..len);
        }
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let body: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + body {
                return Some(head);
            }
        }
        match tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

/// Reads what the server sends until it has been quiet for `quiet` or closed; the bytes.
async fn drain(sock: &mut TcpStream, quiet: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tokio::time::timeout(quiet, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return if got.is_empty() { None } else { Some(got) },
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return Some(got),
        }
    }
}

/// DESCRIBE, SETUP of both tracks over TCP and PLAY with valid credentials; the session id.
async fn play(sock: &mut TcpStream, url: &str) -> Option<String> {
    let mut session = String::new();
    let steps = [
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n{AUTH}\r\n\r\n"),
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n{AUTH}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
        "SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 3\r\n{AUTH}\r\nSession: {S}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n".into(),
        "PLAY {url} RTSP/1.0\r\nCSeq: 4\r\n{AUTH}\r\nSession: {S}\r\n\r\n".into(),
    ];
    for step in steps {
        let req = step
            .replace("{url}", url)
            .replace("{AUTH}", AUTH)
            .replace("{S}", &session);
        sock.write_all(req.as_bytes()).await.ok()?;
        let text = response(sock).await?;
        if let Some(s) = text
            .lines()
            .find_map(|l| l.strip_prefix("Session: "))
            .and_then(|v| v.split(';').next())
        {
            session = s.trim().to_string();
        }
    }
    Some(session)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let hub = hub().clone();
    runtime().block_on(async move {
        let server = RtspServer::bind(
            hub,
            ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                rtp_port: Some(0),
                users: vec![User {
                    username: "admin".into(),
                    password: "pw".into(),
                }],
                offer_basic: true,
                policy: ConnectionPolicy {
                    header_timeout: Duration::from_millis(300),
                    auth_timeout: Duration::from_millis(300),
                    idle_timeout: Duration::from_millis(300),
                    max_sessions: 4,
                },
                ..ServerConfig::default()
            },
        )
        .await
        .expect("bind a loopback server");
        let addr = server.local_addr();
        let accept = server.clone().spawn();
        let mut sock = TcpStream::connect(addr).await.expect("connect");
        let url = format!("rtsp://{addr}/cam");
        let session = if mode & 0x80 != 0 {
            play(&mut sock, &url).await.unwrap_or_default()
        } else {
            String::new()
        };
        let input = String::from_utf8_lossy(rest)
            .replace("{A}", AUTH)
            .replace("{S}", &session)
            .into_bytes();
        let step = usize::from(mode & 0x3f).max(1);
        for chunk in input.chunks(step) {
            if sock.write_all(chunk).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let _ = drain(&mut sock, Duration::from_millis(5)).await;
        drop(sock);
        server.shutdown(Duration::from_secs(2)).await;
        accept.abort();
    });
});
