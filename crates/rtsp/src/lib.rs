//! camgate's RTSP: the server that re-serves every Hub stream, and the RTSP camera source.

pub mod server;
pub mod source;
