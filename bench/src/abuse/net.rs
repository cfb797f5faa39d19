//! Sockets from chosen loopback source addresses, source address lists, and reading answers
//! (RTSP or HTTP responses) with a deadline. Only loopback addresses are accepted, as sources
//! and as destinations.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::rtsp::{Message, parse_message};

/// Most source addresses one list may name.
const MAX_SOURCES: usize = 65_536;

/// Parses a comma-separated list of loopback IPv4 addresses and ranges
/// (`127.0.0.2,127.0.2.1-127.0.2.254`).
pub fn parse_sources(spec: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<Ipv4Addr>()
                .map_err(|e| format!("{s:?}: {e}"))
                .and_then(|ip| {
                    if ip.is_loopback() {
                        Ok(u32::from(ip))
                    } else {
                        Err(format!("{ip} is not a loopback address"))
                    }
                })
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if b < a || (b - a) as usize >= MAX_SOURCES - out.len() {
            return Err(format!("{part:?}: empty or too large a range"));
        }
        out.extend((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
    }
    if out.is_empty() {
        return Err(format!("{spec:?} names no address"));
    }
    Ok(out)
}

/// Connects from `src` (the port is picked at connect time, so that many connections to
/// different ports share the source ports) to `dst`, both loopback, within `timeout`.
pub async fn connect_from(
    src: IpAddr,
    dst: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    if !src.is_loopback() || !dst.ip().is_loopback() {
        return Err(io::Error::other(format!("{src} -> {dst}: not loopback")));
    }
    let sock = match src {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if src.is_ipv4() {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and a pointer to an int with its size.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    sock.bind(SocketAddr::new(src, 0))?;
    let s = tokio::time::timeout(timeout, sock.connect(dst))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Closes `s` with a reset (SO_LINGER 0) instead of a FIN.
pub fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

/// Why no answer was read.
#[derive(Debug)]
pub enum NoAnswer {
    /// The server closed the connection (FIN) first.
    Closed,
    /// Our deadline passed.
    TimedOut,
    /// A read failed.
    Io(io::Error),
    /// Bytes that are no RTSP/HTTP response.
    Malformed(String),
}

/// The status code of an `RTSP/1.0 NNN ...` or `HTTP/1.x NNN ...` status line.
pub fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.split_ascii_whitespace();
    let version = parts.next()?;
    if !(version.starts_with("RTSP/") || version.starts_with("HTTP/")) {
        return None;
    }
    parts.next()?.parse().ok()
}

/// The status codes of every status line in `data` (at its start or after a CRLF).
pub fn statuses_in(data: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let end = data[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(data.len(), |i| start + i);
        if let Some(c) = std::str::from_utf8(&data[start..end])
            .ok()
            .and_then(status_code)
        {
            out.push(c);
        }
        start = end + 2;
    }
    out
}

/// Reads until one complete response (head and `Content-Length` body) is at the start of
/// `buf`, then takes it out; requests from the server and interleaved data are skipped.
pub async fn read_response(
    sock: &mut TcpStream,
    buf: &mut BytesMut,
    deadline: Instant,
) -> Result<(u16, Message), NoAnswer> {
    loop {
        if buf.first() == Some(&b'$') {
            if buf.len() >= 4 {
                let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                if buf.len() >= len {
                    buf.advance(len);
                    continue;
                }
            }
        } else if !buf.is_empty() {
            match parse_message(buf) {
                Ok(Some((m, used))) => {
                    buf.advance(used);
                    match status_code(&m.start_line) {
                        Some(code) => return Ok((code, m)),
                        None if m.start_line.ends_with("RTSP/1.0") => continue,
                        None => return Err(NoAnswer::Malformed(m.start_line)),
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(NoAnswer::Malformed(e)),
            }
        }
        buf.reserve(4096);
        match tokio::time::timeout_at(deadline, sock.read_buf(buf)).await {
            Err(_) => return Err(NoAnswer::TimedOut),
            Ok(Ok(0)) => return Err(NoAnswer::Closed),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(NoAnswer::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_lists_and_ranges_of_loopback_addresses() {
        let v = parse_sources("127.0.0.2, 127.0.2.1-127.0.2.3").unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[3], IpAddr::V4(Ipv4Addr::new(127, 0, 2, 3)));
        assert!(parse_sources("10.0.0.1").is_err());
        assert!(parse_sources("127.0.0.9-127.0.0.1").is_err());
        assert!(parse_sources("127.0.0.0-127.255.255.255").is_err());
        assert!(parse_sources("").is_err());
    }

    #[test]
    fn status_lines_are_found() {
        assert_eq!(status_code("RTSP/1.0 408 Request Timeout"), Some(408));
        assert_eq!(status_code("HTTP/1.1 429 Too Many Requests"), Some(429));
        assert_eq!(status_code("DESCRIBE rtsp://h/s RTSP/1.0"), None);
        let data = b"RTSP/1.0 400 Bad Request\r\nCSeq: 1\r\n\r\nHTTP/1.1 503 x\r\n\r\n\xff\xfe";
        assert_eq!(statuses_in(data), vec![400, 503]);
        assert_eq!(statuses_in(b""), Vec::<u16>::new());
    }

    #[tokio::test]
    async fn refuses_other_addresses() {
        let e = connect_from(
            "127.0.0.2".parse().unwrap(),
            "192.0.2.1:80".parse().unwrap(),
            Duration::from_millis(10),
        )
        .await;
        assert!(e.is_err());
    }

    #[tokio::test]
    async fn reads_one_response_and_keeps_the_rest() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"$\x00\x00\x02abRTSP/1.0 401 Unauthorized\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 429 x\r\n\r\n")
                .await
                .unwrap();
        });
        let mut s = connect_from("127.0.0.3".parse().unwrap(), addr, Duration::from_secs(2))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        let (code, m) = read_response(&mut s, &mut buf, deadline).await.unwrap();
        assert_eq!((code, m.body.as_slice()), (401, &b"ok"[..]));
        let (code, _) = read_response(&mut s, &mut buf, deadline).await.unwrap();
        assert_eq!(code, 429);
        assert!(matches!(
            read_response(&mut s, &mut buf, deadline).await,
            Err(NoAnswer::Closed)
        ));
        server.await.unwrap();
    }
}
