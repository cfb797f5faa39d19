//! Stop signals: SIGINT (Ctrl-C) and SIGTERM (what systemd and Docker send) end a command the
//! same clean way; SIGHUP does not kill a server.

use tokio::signal::unix::{SignalKind, signal};
use tracing::warn;

/// Resolves with the name of the first SIGINT or SIGTERM the process gets.
pub async fn stop() -> &'static str {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("cannot watch SIGTERM: {e}");
            None
        }
    };
    let sigterm = async {
        match &mut term {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = sigterm => "SIGTERM",
    }
}

/// Keeps SIGHUP from killing a server: each one is logged, and the server runs on with the
/// configuration it loaded.
pub fn survive_hangup() {
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    warn!(
                        "SIGHUP: reloading the configuration is not supported yet; running on with the loaded one"
                    );
                }
            });
        }
        Err(e) => warn!("cannot watch SIGHUP: {e}"),
    }
}
