//! The DHIP TCP server: many concurrent connections, each read through the protocol crate's
//! decoder (a bad magic or header size closes the connection, so legacy DVRIP or HTTP bytes
//! get no answer), each request handed to the device, the reply written in the configured
//! style, and notifications for other connections delivered beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use dhip::frame::{Decoder, Message};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tracing::debug;

use super::device::Incoming;
use super::net::{ConnCmd, Shared};
use super::rpc::Effect;
use super::sessions::{Caller, Transport};

/// Accepts DHIP connections until the task is aborted.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                if !shared.is_up() {
                    drop(sock);
                    continue;
                }
                let _ = sock.set_nodelay(true);
                let (tx, rx) = unbounded_channel();
                let Some(conn) = shared.register(Transport::Dhip, tx) else {
                    debug!(%peer, "dhip sim: connection limit reached, closing");
                    drop(sock);
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    connection(sock, peer, conn, shared.clone(), rx).await;
                    shared.unregister(conn);
                });
            }
            Err(e) => {
                debug!("dhip sim: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    conn: u64,
    shared: Arc<Shared>,
    mut rx: UnboundedReceiver<ConnCmd>,
) {
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                ConnCmd::Write(b) => {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                ConnCmd::Close => break,
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut reader = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    'conn: loop {
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = closed(&writer) => break,
        };
        reader.push(&buf[..n]);
        loop {
            let msg = match reader.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    debug!(%peer, "dhip sim: closing connection {conn}: {e}");
                    break 'conn;
                }
            };
            if !handle(&shared, conn, peer, msg) {
                break 'conn;
            }
        }
    }
    shared.close(conn);
    let _ = writer.await;
}

/// Resolves when the writer task has finished (the connection was closed from our side).
async fn closed(writer: &tokio::task::JoinHandle<()>) {
    while !writer.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Handles one message; false when the connection must close.
fn handle(shared: &Arc<Shared>, conn: u64, peer: SocketAddr, msg: Message) -> bool {
    let req: Value = match serde_json::from_slice(&msg.json) {
        Ok(v) => v,
        Err(_) => json!({"id": msg.request_id}),
    };
    let handled = shared.device().handle(Incoming {
        caller: Caller {
            transport: Transport::Dhip,
            conn,
            addr: peer.to_string(),
        },
        req: &req,
        header: Some((msg.session, msg.request_id)),
        binary: &msg.data,
        cookie_session: None,
    });
    let (session, id) = (handled.header_session, handled.header_id);
    let bytes = match &shared.opts.fragment {
        Some(f) if f.method == handled.method => {
            shared.encode_fragmented(session, id, &handled.reply, f)
        }
        _ => {
            let mut out = Vec::new();
            shared.encode(session, id, &handled.reply, &mut out);
            out
        }
    };
    shared.send(conn, bytes);
    shared.deliver(handled.pushes);
    match handled.effects.first() {
        None => true,
        Some(Effect::Close) => {
            shared.close(conn);
            false
        }
        Some(Effect::Reboot) => {
            shared.power_cycle(Some(shared.opts.reboot_delay));
            false
        }
        Some(Effect::Shutdown) => {
            shared.power_cycle(None);
            false
        }
    }
}
