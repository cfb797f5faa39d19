//! UDP segmentation offload (Linux `UDP_SEGMENT`): one `sendmsg` carries a run of equal-size
//! RTP packets to one reader, and the kernel splits it into datagrams. Falls back to one
//! datagram per call where the kernel refuses it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Most segments in one send (the kernel's UDP_MAX_SEGMENTS is at least 64).
pub(crate) const MAX_SEGMENTS: usize = 64;
/// Most bytes in one send (an IP datagram's limit, with room for headers).
pub(crate) const MAX_BYTES: usize = 65_000;

static AVAILABLE: AtomicBool = AtomicBool::new(cfg!(target_os = "linux"));

/// True until the kernel has refused a segmented send.
pub(crate) fn available() -> bool {
    AVAILABLE.load(Ordering::Relaxed)
}

/// Stops using segmentation offload for the rest of the process.
pub(crate) fn disable() {
    if AVAILABLE.swap(false, Ordering::Relaxed) {
        tracing::info!("UDP segmentation offload unavailable; sending one datagram per call");
    }
}

/// True for the errors a kernel without (or refusing) UDP_SEGMENT gives.
pub(crate) fn is_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO) | Some(libc::EINVAL) | Some(libc::ENOPROTOOPT) | Some(libc::EOPNOTSUPP)
    )
}

/// Sends `bytes` to `dest` as datagrams of `segment` bytes (the last may be shorter).
#[cfg(target_os = "linux")]
pub(crate) async fn send(
    sock: &UdpSocket,
    dest: SocketAddr,
    bytes: &[u8],
    segment: u16,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let addr = socket2::SockAddr::from(dest);
    let fd = sock.as_raw_fd();
    sock.async_io(Interest::WRITABLE, || {
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
        let mut control = [0u64; 4];
        debug_assert!(space <= std::mem::size_of_val(&control));
        // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = addr.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = addr.len();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `control`, large enough for one u16 cmsg.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, segment);
        }
        // SAFETY: a valid socket and a fully initialised msghdr.
        let n = unsafe { libc::sendmsg(fd, &msg, 0) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    })
    .await
}

/// Not Linux: never used (`available` is false).
#[cfg(not(target_os = "linux"))]
pub(crate) async fn send(
    _sock: &UdpSocket,
    _dest: SocketAddr,
    _bytes: &[u8],
    _segment: u16,
) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP))
}
