//! camgate as a library: configuration, HTTP API, dissectors and commands, used by the binary and the tests.
pub mod config;
pub mod control;
pub mod demo;
pub mod devurl;
pub mod dhipcmd;
pub mod dhipsrc;
pub mod dissect;
pub mod dump;
pub mod fdlimit;
pub mod http;
pub mod p2p;
pub mod serve;
pub mod signals;
pub mod simcmd;
pub mod sources;
