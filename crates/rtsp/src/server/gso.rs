//! UDP segmentation offload (Linux `UDP_SEGMENT`): one `sendmsg` carries a run of equal-size
//! RTP packets to one reader, and the kernel splits it into datagrams. Falls back to one
//! datagram per call where the kernel refuses it. Either way a datagram is gathered from its
//! pieces (per-reader header, shared payload) by the kernel, not copied together first.

use std::io::IoSlice;
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

/// Sends the bytes of `iov` to `dest`: one datagram, or with `segment` datagrams of that many
/// bytes (the last may be shorter).
pub(crate) async fn send(
    sock: &UdpSocket,
    dest: SocketAddr,
    iov: &[IoSlice<'_>],
    segment: Option<u16>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let addr = socket2::SockAddr::from(dest);
    let fd = sock.as_raw_fd();
    sock.async_io(Interest::WRITABLE, || {
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
        let mut control = [0u64; 4];
        debug_assert!(space <= std::mem::size_of_val(&control));
        // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = addr.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = addr.len();
        // IoSlice is ABI-compatible with iovec on Unix; sendmsg only reads the buffers.
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len() as _;
        if let Some(segment) = segment {
            set_segment(&mut msg, &mut control, space, segment);
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

/// Adds the UDP_SEGMENT control message to `msg`, in `control`.
#[cfg(target_os = "linux")]
fn set_segment(msg: &mut libc::msghdr, control: &mut [u64; 4], space: usize, segment: u16) {
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `control`, large enough for one u16 cmsg.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, segment);
    }
}

/// Not Linux: segmentation offload is never used (`available` is false).
#[cfg(not(target_os = "linux"))]
fn set_segment(_msg: &mut libc::msghdr, _control: &mut [u64; 4], _space: usize, _segment: u16) {}
