//! Zero-copy fan-out (Linux): bytes written once into a pipe are duplicated into each
//! reader's pipe with `tee(2)` (page references, no copy) and moved to the reader's socket
//! with `splice(2)` (the socket's buffers take the pages, again without a copy). Used by
//! limit-server's `--splice` to measure what fan-out costs without the per-reader copy.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking pipe.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe (what was put in and not yet moved out).
    pub len: usize,
}

fn check(n: libc::ssize_t) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Pipe {
    /// A pipe that holds at least `capacity` bytes (the kernel rounds up to pages).
    pub fn new(capacity: usize) -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and now owned only here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ takes an int argument.
        let got = unsafe {
            libc::fcntl(
                write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                capacity as libc::c_int,
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        if (got as usize) < capacity {
            return Err(io::Error::other(format!(
                "pipe holds {got} bytes, {capacity} needed"
            )));
        }
        Ok(Pipe {
            read,
            write,
            len: 0,
        })
    }

    /// Copies `buf` into the pipe (all of it, or an error).
    pub fn fill(&mut self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n =
            check(unsafe { libc::write(self.write.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })?;
        self.len += n;
        if n < buf.len() {
            return Err(io::Error::other("pipe too small for the piece"));
        }
        Ok(())
    }

    /// Duplicates all of this pipe's bytes into `to` (which must be empty).
    pub fn tee_into(&self, to: &mut Pipe) -> io::Result<()> {
        // SAFETY: plain descriptors; tee does not touch user memory.
        let n = check(unsafe {
            libc::tee(
                self.read.as_raw_fd(),
                to.write.as_raw_fd(),
                self.len,
                libc::SPLICE_F_NONBLOCK,
            )
        })?;
        to.len += n;
        if n < self.len {
            return Err(io::Error::other("reader pipe too small for the piece"));
        }
        Ok(())
    }

    /// Moves what the socket `fd` takes now; `WouldBlock` when it takes nothing.
    pub fn splice_to(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut moved = 0;
        while self.len > 0 {
            match self.splice_once(fd) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && moved > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// Empties the pipe into `devnull` (an open /dev/null) without reading its bytes.
    pub fn drain(&mut self, devnull: RawFd) -> io::Result<()> {
        while self.len > 0 {
            if self.splice_once(devnull)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// One non-blocking `splice(2)` of the pipe's bytes to `fd`.
    fn splice_once(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: plain descriptors and null offsets (both ends are streams).
        let n = check(unsafe {
            libc::splice(
                self.read.as_raw_fd(),
                std::ptr::null_mut(),
                fd,
                std::ptr::null_mut(),
                self.len,
                libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
            )
        })?;
        self.len -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_piece_reaches_two_sockets_by_tee_and_splice_and_the_source_empties() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let piece: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut src = Pipe::new(64 * 1024).unwrap();
        src.fill(&piece).unwrap();
        for _ in 0..2 {
            let mut client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            let mut reader = Pipe::new(64 * 1024).unwrap();
            src.tee_into(&mut reader).unwrap();
            assert_eq!(reader.len, piece.len());
            while reader.len > 0 {
                reader.splice_to(server.as_raw_fd()).unwrap();
            }
            let mut got = vec![0u8; piece.len()];
            client.read_exact(&mut got).unwrap();
            assert_eq!(got, piece);
        }
        // tee left the source as it was; drain empties it.
        assert_eq!(src.len, piece.len());
        let devnull = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        src.drain(devnull.as_raw_fd()).unwrap();
        assert_eq!(src.len, 0);
    }

    #[test]
    fn a_piece_larger_than_the_pipe_is_an_error() {
        let mut p = Pipe::new(4096).unwrap();
        let cap = {
            // The kernel may round the capacity up; fill past whatever it chose.
            // SAFETY: F_GETPIPE_SZ takes no argument.
            unsafe { libc::fcntl(p.write.as_raw_fd(), libc::F_GETPIPE_SZ) as usize }
        };
        assert!(p.fill(&vec![1u8; cap + 1]).is_err());
    }
}
