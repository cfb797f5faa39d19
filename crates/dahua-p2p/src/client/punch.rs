//! The inverted-STUN hole punch from the device socket: Binding Requests to the device's
//! public (and LAN) address, answers to the device's own requests, done at the first Binding
//! Success from the device, then a few confirms.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use tracing::debug;

use super::cloud::CloudSocket;
use crate::addr::Aid;
use crate::demux::{Kind, classify};
use crate::stun::{BINDING_REQUEST, BINDING_SUCCESS, MAGIC_COOKIE, StunMessage};

/// How often the Binding Requests are repeated while no answer came.
const RESEND: Duration = Duration::from_millis(400);
/// Confirms sent after success.
const CONFIRMS: usize = 3;

/// Punches toward `targets`; returns the address the device answered from, or `None` after
/// `timeout`. `device_lan` goes into the answers to the device's requests (devices do not
/// check it).
pub(crate) async fn punch(
    dev: &mut CloudSocket,
    aid: Aid,
    targets: &[SocketAddrV4],
    device_lan: SocketAddrV4,
    timeout: Duration,
) -> std::io::Result<Option<SocketAddr>> {
    let txid: [u8; 12] = rand::random();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut next_send = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        if now >= next_send {
            for t in targets {
                let req = StunMessage::binding_request(MAGIC_COOKIE, txid, aid, *t);
                dev.sock
                    .send_to(&req.to_inverted_bytes(), SocketAddr::V4(*t))
                    .await?;
            }
            next_send = now + RESEND;
        }
        let Some((from, d)) = dev.recv_other(next_send.min(deadline)).await? else {
            continue;
        };
        if classify(&d) != Kind::InvertedStun {
            debug!(%from, "non-STUN datagram during the punch ignored");
            continue;
        }
        let msg = match StunMessage::parse_inverted(&d) {
            Ok(m) => m,
            Err(e) => {
                debug!(%from, "bad STUN datagram during the punch: {e}");
                continue;
            }
        };
        match msg.msg_type {
            BINDING_REQUEST => {
                // The device punches toward us too: answer with its transaction id.
                let resp = StunMessage::binding_success(msg.cookie, msg.txid, aid, device_lan);
                dev.sock.send_to(&resp.to_inverted_bytes(), from).await?;
            }
            BINDING_SUCCESS if msg.txid == txid || msg.aid() == Some(aid) => {
                debug!(%from, "punch answered");
                for _ in 0..CONFIRMS {
                    let c = StunMessage::binding_confirm(MAGIC_COOKIE, txid, aid);
                    dev.sock.send_to(&c.to_inverted_bytes(), from).await?;
                }
                return Ok(Some(from));
            }
            _ => {}
        }
    }
}
