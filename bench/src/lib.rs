//! camgate's benchmark helpers: a small RTSP client (enough for OPTIONS/DESCRIBE/SETUP/PLAY
//! against camgate, gst-rtsp-server and the limit server), interleaved-stream helpers and
//! statistics. The binaries are `rtsp-load` (N readers) and `limit-server` (the floor).

pub mod interleaved;
pub mod rtsp;
pub mod splice;
pub mod stats;
