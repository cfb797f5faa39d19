//! A multi-client TCP tunnel: every accepted connection becomes its own realm to one device
//! port over a shared P2P session, which is set up on first use and again (a new cloud
//! handshake) after it dies.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::driver::{RealmIo, SessionHandle};
use super::{ClientConfig, P2pError, TunnelError, connect};

/// Hands out realms over a live session, reconnecting when the session has died.
pub struct Connector {
    cfg: ClientConfig,
    current: Mutex<Option<SessionHandle>>,
}

impl Connector {
    /// A connector for one device; nothing is dialed until the first use.
    pub fn new(cfg: ClientConfig) -> Arc<Self> {
        Arc::new(Connector {
            cfg,
            current: Mutex::new(None),
        })
    }

    /// The device config.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The live session, set up (again) if needed.
    pub async fn session(&self) -> Result<SessionHandle, P2pError> {
        let mut cur = self.current.lock().await;
        if let Some(s) = cur.as_ref()
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        if let Some(s) = cur.take() {
            info!(
                serial = %self.cfg.serial,
                "P2P session ended ({}); setting up a new one",
                s.closed_reason().unwrap_or_default()
            );
        }
        let s = connect(&self.cfg).await?;
        *cur = Some(s.clone());
        Ok(s)
    }

    /// Opens a realm to `port`, setting up the session first if needed; one retry on a
    /// fresh session when the current one turns out to be dead.
    pub async fn open(&self, port: u16) -> Result<RealmIo, OpenError> {
        let s = self.session().await?;
        match s.open(port).await {
            Err(TunnelError::SessionClosed(_)) => Ok(self.session().await?.open(port).await?),
            r => Ok(r?),
        }
    }

    /// Drops the current session (its realms close).
    pub async fn reset(&self) {
        self.current.lock().await.take();
    }
}

/// Why a realm could not be opened through a [`Connector`].
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The session could not be set up.
    #[error("{0}")]
    Connect(#[from] P2pError),
    /// The realm could not be opened.
    #[error("{0}")]
    Realm(#[from] TunnelError),
}

/// A TCP listener whose connections are tunnelled to one device port.
pub struct Tunnel {
    listener: TcpListener,
    connector: Arc<Connector>,
    port: u16,
}

impl Tunnel {
    /// Binds `listen` for connections to the device's `port`.
    pub async fn bind(
        listen: SocketAddr,
        connector: Arc<Connector>,
        port: u16,
    ) -> std::io::Result<Tunnel> {
        Ok(Tunnel {
            listener: TcpListener::bind(listen).await?,
            connector,
            port,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts and tunnels connections until the task is dropped.
    pub async fn run(self) -> std::io::Result<()> {
        loop {
            let (tcp, peer) = self.listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let connector = self.connector.clone();
            let port = self.port;
            tokio::spawn(async move {
                match connector.open(port).await {
                    Ok(realm) => {
                        let id = realm.realm;
                        info!(%peer, port, realm = format_args!("{id:#010x}"), "tunnel connection");
                        let (up, down) = realm.bridge(tcp).await;
                        info!(%peer, port, up, down, "tunnel connection closed");
                    }
                    Err(e) => warn!(%peer, port, "cannot tunnel this connection: {e}"),
                }
            });
        }
    }
}
