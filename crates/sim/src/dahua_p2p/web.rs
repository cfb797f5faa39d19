//! A tiny HTTP responder standing in for a device's web UI behind realm port 80, so the
//! tunnel can be tested on a port other than RTSP: every request gets `200 OK` with a short
//! text naming the device and echoing the request line, then the connection closes.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::debug;

/// Longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// A running responder; it stops when dropped.
pub struct WebResponder {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl WebResponder {
    /// Starts a responder on 127.0.0.1 (any port) that introduces itself as `serial`.
    pub async fn start(serial: &str) -> std::io::Result<WebResponder> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let serial = serial.to_owned();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((sock, peer)) => {
                        let serial = serial.clone();
                        tokio::spawn(async move {
                            if let Err(e) = answer(sock, &serial).await {
                                debug!(%peer, "web responder: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        debug!("web responder accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(WebResponder { addr, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for WebResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body the responder sends for a request line.
pub fn page(serial: &str, request_line: &str) -> String {
    format!("camgate dahua-p2p simulated device {serial}\nrequest: {request_line}\n")
}

async fn answer(mut sock: TcpStream, serial: &str) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 || head.len() > MAX_HEAD {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    let body = page(serial, &line);
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(reply.as_bytes()).await?;
    sock.shutdown().await
}
