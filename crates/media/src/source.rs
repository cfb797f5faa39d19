//! The `Source` trait: how the Hub dials a camera and pulls its frames.

use futures_util::future::BoxFuture;
use thiserror::Error;

use crate::{Frame, TrackInfo};

/// What went wrong with a source, in categories a user can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// Could not reach the camera (refused, unreachable, DNS).
    Connect,
    /// The camera refused the credentials.
    Auth,
    /// The camera broke the protocol or sent something we cannot use.
    Protocol,
    /// The camera did not answer or send media in time.
    Timeout,
    /// The camera ended the stream.
    Ended,
}

/// A source failure with context: which camera, what happened.
#[derive(Clone, Debug, Error)]
#[error("{kind:?}: {message}")]
pub struct SourceError {
    /// The category.
    pub kind: SourceErrorKind,
    /// A message naming the peer and, where useful, the offending bytes.
    pub message: String,
}

impl SourceError {
    /// An error of this kind with a message.
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
        }
    }
}

/// A camera the Hub can dial, as many times as it needs (reconnects).
pub trait Source: Send + Sync + 'static {
    /// Dial the camera and start its media.
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SourceSession>, SourceError>>;
    /// A description for logs and the API (the URL without credentials).
    fn describe(&self) -> String;
}

/// One live connection to a camera.
pub trait SourceSession: Send + 'static {
    /// The tracks this session delivers; frames refer to them by index.
    fn tracks(&self) -> Vec<TrackInfo>;
    /// The next frame; `Err` with `SourceErrorKind::Ended` when the camera closes the stream.
    fn next_frame(&mut self) -> BoxFuture<'_, Result<Frame, SourceError>>;
    /// Ends the session politely (an RTSP `TEARDOWN`, a logout) and resolves once that is
    /// done or given up on. The default just drops the session.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        drop(self);
        Box::pin(std::future::ready(()))
    }
}
