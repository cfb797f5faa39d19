//! Refusing a connection the gate does not admit: a `503` the client can read (RTSP with the
//! request's `CSeq` when it came at once, HTTP with a JSON body), then a clean close. At most
//! [`MAX_REFUSING`] refusals run at once; past that a connection is closed without a word, so
//! a flood cannot make refusing cost more than admitting.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Refusals in progress at most.
pub const MAX_REFUSING: usize = 64;

static REFUSING: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(MAX_REFUSING)));

/// The protocol a refused client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RTSP/1.0.
    Rtsp,
    /// HTTP/1.1.
    Http,
}

/// Answers `sock` with `503 Service Unavailable` saying `why`, then closes it, on a task of its
/// own (bounded in time: the whole refusal takes at most about 1.2 s).
pub fn refuse(sock: TcpStream, protocol: Protocol, why: &str) {
    let Ok(permit) = REFUSING.clone().try_acquire_owned() else {
        return;
    };
    let why = why.to_string();
    tokio::spawn(async move {
        let _permit = permit;
        let mut sock = sock;
        let mut buf = [0u8; 2048];
        let n = match tokio::time::timeout(Duration::from_millis(150), sock.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => 0,
        };
        let reply = reply(protocol, &buf[..n], &why);
        if tokio::time::timeout(Duration::from_secs(1), sock.write_all(reply.as_bytes()))
            .await
            .is_err()
        {
            return;
        }
        let _ = sock.shutdown().await;
        // Take what the client has sent meanwhile, so the close is a FIN and not a reset that
        // could destroy the reply before the client reads it.
        while matches!(sock.try_read(&mut buf), Ok(n) if n > 0) {}
    });
}

/// The refusal's bytes, given the start of what the client sent.
fn reply(protocol: Protocol, request: &[u8], why: &str) -> String {
    match protocol {
        Protocol::Rtsp => {
            let cseq = cseq_of(request)
                .map(|c| format!("CSeq: {c}\r\n"))
                .unwrap_or_default();
            format!(
                "RTSP/1.0 503 Service Unavailable\r\n{cseq}Server: camgate\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n"
            )
        }
        Protocol::Http => {
            let body =
                serde_json::json!({ "error": format!("too many connections: {why}") }).to_string();
            format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
    }
}

/// The `CSeq` of a request head, if it is a plain number.
fn cseq_of(request: &[u8]) -> Option<u32> {
    request.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        if !name.trim_ascii().eq_ignore_ascii_case(b"cseq") {
            return None;
        }
        std::str::from_utf8(value[1..].trim_ascii())
            .ok()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtsp_refusal_echoes_only_a_numeric_cseq() {
        let r = reply(
            Protocol::Rtsp,
            b"OPTIONS rtsp://x/a RTSP/1.0\r\nCSeq: 7\r\n\r\n",
            "full",
        );
        assert!(r.starts_with("RTSP/1.0 503 "), "{r}");
        assert!(r.contains("CSeq: 7\r\n"), "{r}");
        let r = reply(
            Protocol::Rtsp,
            b"OPTIONS rtsp://x/a RTSP/1.0\r\nCSeq: 7\rX: y\r\n\r\n",
            "full",
        );
        assert!(!r.contains("CSeq"), "{r}");
    }

    #[test]
    fn http_refusal_is_json_with_its_length() {
        let r = reply(Protocol::Http, b"", "10 connections are open");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("10 connections"));
    }
}
