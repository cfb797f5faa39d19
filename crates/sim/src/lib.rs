//! Simulators for every device and cloud camgate speaks to, with fault knobs, used by the demo
//! and the tests: they behave like the real devices and reject what the real devices reject.

pub mod camera;
pub mod dahua_p2p;
pub mod dhip;
pub mod rtsp_camera;
pub mod testsrc;
