//! The Hub: named streams, each pulling one source and fanning its frames out to readers.
//!
//! A stream dials its source when the first reader (or a describe) arrives, or at start with
//! `preload`; stops it after `idle_timeout` without readers; reconnects with bounded,
//! jittered backoff (also when the first dial fails); and treats `video_timeout` without a
//! frame on its primary track as a dead session. It keeps the last GOP so that a new reader
//! starts on a keyframe at once, and gives each reader a bounded queue: a reader that falls
//! behind is skipped to the next keyframe and counted, never stalling the others.

mod backoff;
mod gop;
mod lease;
mod reader;
mod stream;

pub use backoff::Backoff;
pub use lease::{LEASE_TRACKS, Lease, LeaseOut, LentTrack};
pub use reader::{Closed, Reader, ReaderHandle};
pub use stream::{MAX_TRACKS, Stream, StreamOptions, StreamState, StreamStats};

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use thiserror::Error;

use crate::Source;

/// Why a stream could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum HubError {
    /// No stream with that name.
    #[error("no stream named {0:?}")]
    NotFound(String),
    /// The source did not deliver its tracks in time, or failed; the message says why.
    #[error("stream {name:?} is unavailable: {reason}")]
    Unavailable { name: String, reason: String },
    /// The stream was removed or the hub shut down.
    #[error("stream {0:?} is closed")]
    Closed(String),
}

/// The set of named streams.
#[derive(Default)]
pub struct Hub {
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Adds (or replaces) a stream. Must be called inside a tokio runtime when `preload` is set.
    pub fn add_stream(
        &self,
        name: &str,
        source: Arc<dyn Source>,
        opts: StreamOptions,
    ) -> Arc<Stream> {
        let stream = Stream::new(name, source, opts);
        if stream.options().preload {
            stream.ensure_running();
        }
        let old = self
            .streams
            .write()
            .expect("hub lock")
            .insert(name.to_string(), stream.clone());
        if let Some(old) = old {
            old.close();
        }
        stream
    }

    /// The stream with this name.
    pub fn get(&self, name: &str) -> Result<Arc<Stream>, HubError> {
        self.streams
            .read()
            .expect("hub lock")
            .get(name)
            .cloned()
            .ok_or_else(|| HubError::NotFound(name.to_string()))
    }

    /// All streams, by name.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.streams
            .read()
            .expect("hub lock")
            .values()
            .cloned()
            .collect()
    }

    /// Stops every stream and disconnects every reader.
    pub fn close(&self) {
        for s in self.streams.write().expect("hub lock").values() {
            s.close();
        }
    }

    /// Closes every stream like [`Hub::close`] and waits (at most `within`) until each source
    /// has ended its camera session politely (see `SourceSession::close`). True if all did.
    pub async fn shutdown(&self, within: std::time::Duration) -> bool {
        let streams = self.streams();
        for s in &streams {
            s.close();
        }
        let all = futures_util::future::join_all(streams.iter().map(|s| s.stopped()));
        tokio::time::timeout(within, all).await.is_ok()
    }
}
