//! camgate's media model, independent of any vendor protocol: frames and tracks, codec
//! helpers, RTP packetizers and depacketizers, SDP media descriptions, and the Hub that fans
//! one camera out to many readers.

pub mod codec;
pub mod frame;
pub mod hub;
pub mod mux;
pub mod rtp;
pub mod sdp;
pub mod source;
pub mod track;

pub use frame::Frame;
pub use source::{Source, SourceError, SourceErrorKind, SourceSession};
pub use track::{Codec, G711Law, MediaKind, TrackInfo};
