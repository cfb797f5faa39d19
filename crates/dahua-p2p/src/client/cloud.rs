//! One UDP socket's DH-HTTP exchanges: the sans-IO [`Transactor`] driven over a tokio socket.
//! Datagrams that are not HTTP (the device's STUN, PTCP from the agent) are kept, in order and
//! bounded, for the phase of the handshake that wants them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tracing::{debug, trace};

use crate::demux::{Kind, classify};
use crate::dhhttp::{Disposition, Request, Response, StartOptions, Transactor, TxEvent};

/// Receive buffer asked for on each socket (the kernel may cap it at `rmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// Non-HTTP datagrams kept for later at most.
const STASH_MAX: usize = 256;

/// A final answer to a request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) from: SocketAddr,
    pub(crate) request: Request,
    pub(crate) response: Response,
}

/// How an exchange ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A final response (any status but the clock-skew 401).
    Final(Answer),
    /// `401` with `<Error>TimeOut</Error>`.
    ClockSkew(Answer),
    /// Nothing came back after every retransmission.
    TimedOut {
        dest: SocketAddr,
        request: Request,
        transmissions: u32,
    },
}

/// A socket, its transactor, and what arrived on it that was not for the transactor.
pub(crate) struct CloudSocket {
    pub(crate) sock: Arc<UdpSocket>,
    tx: Transactor,
    stash: VecDeque<(SocketAddr, Vec<u8>)>,
    name: &'static str,
}

impl CloudSocket {
    /// Binds a socket at `local` (port 0 = any).
    pub(crate) async fn bind(
        name: &'static str,
        local: SocketAddr,
        tx: Transactor,
    ) -> std::io::Result<Self> {
        let sock = UdpSocket::bind(local).await?;
        // A video stream arrives in bursts of 1316-byte datagrams; the default buffer
        // (about 200 KiB) overflows at a few hundred Mbit/s and turns into retransmissions.
        let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(SOCKET_BUFFER);
        Ok(CloudSocket {
            sock: Arc::new(sock),
            tx,
            stash: VecDeque::new(),
            name,
        })
    }

    /// The socket's local address.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sends `request` to `dest` and waits for its final answer, retransmitting per the
    /// transactor's schedule.
    pub(crate) async fn exchange(
        &mut self,
        dest: SocketAddr,
        request: Request,
        opts: StartOptions,
    ) -> std::io::Result<Outcome> {
        let path = request.path.clone();
        let id = self.tx.start_with(Instant::now(), dest, request, opts);
        let mut buf = vec![0u8; 65536];
        loop {
            while let Some((to, bytes)) = self.tx.poll_transmit(Instant::now()) {
                trace!(socket = self.name, %to, %path, "DH-HTTP request");
                self.sock.send_to(&bytes, to).await?;
            }
            while let Some(ev) = self.tx.poll_event() {
                match ev {
                    TxEvent::Done {
                        id: i,
                        from,
                        request,
                        response,
                    } if i == id => {
                        return Ok(Outcome::Final(Answer {
                            from,
                            request: *request,
                            response: *response,
                        }));
                    }
                    TxEvent::ClockSkew {
                        id: i,
                        from,
                        request,
                        response,
                    } if i == id => {
                        return Ok(Outcome::ClockSkew(Answer {
                            from,
                            request: *request,
                            response: *response,
                        }));
                    }
                    TxEvent::TimedOut {
                        id: i,
                        dest,
                        request,
                        transmissions,
                    } if i == id => {
                        return Ok(Outcome::TimedOut {
                            dest,
                            request: *request,
                            transmissions,
                        });
                    }
                    TxEvent::Provisional { code, .. } => {
                        debug!(socket = self.name, %path, code, "provisional answer");
                    }
                    _ => {}
                }
            }
            let deadline = self.tx.poll_timeout();
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    let (n, from) = r?;
                    self.take(from, &buf[..n]);
                }
                _ = sleep_until(deadline) => self.tx.handle_timeout(Instant::now()),
            }
        }
    }

    /// Hands a received datagram to the transactor or keeps it.
    fn take(&mut self, from: SocketAddr, d: &[u8]) {
        match classify(d) {
            Kind::Http => match self.tx.handle_datagram(Instant::now(), from, d) {
                Ok(Disposition::Unmatched) => {
                    debug!(socket = self.name, %from, "unmatched DH-HTTP response ignored");
                }
                Ok(_) => {}
                Err(e) => debug!(socket = self.name, %from, "bad DH-HTTP datagram: {e}"),
            },
            _ => {
                if self.stash.len() == STASH_MAX {
                    self.stash.pop_front();
                }
                self.stash.push_back((from, d.to_vec()));
            }
        }
    }

    /// The next non-HTTP datagram (kept ones first), or `None` at `deadline`. HTTP datagrams
    /// that arrive meanwhile are handled (late duplicates, the agent's notices).
    pub(crate) async fn recv_other(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> std::io::Result<Option<(SocketAddr, Vec<u8>)>> {
        if let Some(d) = self.stash.pop_front() {
            return Ok(Some(d));
        }
        let mut buf = vec![0u8; 65536];
        loop {
            let r = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await;
            let Ok(r) = r else { return Ok(None) };
            let (n, from) = r?;
            self.take(from, &buf[..n]);
            if let Some(d) = self.stash.pop_front() {
                return Ok(Some(d));
            }
        }
    }

    /// Gives up the socket and the datagrams kept for later.
    pub(crate) fn into_parts(self) -> (Arc<UdpSocket>, VecDeque<(SocketAddr, Vec<u8>)>) {
        (self.sock, self.stash)
    }
}

/// Sleeps until `at`, or forever without a deadline.
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
