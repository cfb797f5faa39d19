//! camgate's benchmark helpers: a small RTSP client (enough for OPTIONS/DESCRIBE/SETUP/PLAY
//! against camgate, gst-rtsp-server and the limit server, logging in with Digest or Basic),
//! interleaved-stream helpers, statistics, and the loads of the abuse generator. The binaries
//! are `rtsp-load` (N readers), `limit-server` (the floor) and `soak-abuse` (mixed abuse for
//! the soak test, `bench/soak.sh`).

pub mod abuse;
pub mod auth;
pub mod interleaved;
pub mod rtsp;
pub mod splice;
pub mod stats;
