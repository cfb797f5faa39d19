//! The process's open-file limit: raised to the hard limit at start, and the number of client
//! connections that fits under it with room left for cameras, files and child processes.

/// The open-file limit in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit (what `open` and `accept` are held to).
    pub soft: u64,
    /// The hard limit (how far the soft one may be raised).
    pub hard: u64,
}

/// The soft limit is not raised past this, even when the hard one allows more.
const CEILING: u64 = 1 << 20;

/// Raises the soft open-file limit as far as the hard one allows; the limit in force after.
pub fn raise() -> std::io::Result<FdLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let want = lim.rlim_max.min(CEILING);
    if want > lim.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = want;
        }
    }
    Ok(FdLimit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// Descriptors kept out of the connection cap: the listeners, logs and pipes, and a few per
/// camera (its connections, a tunnel, an ffmpeg child).
pub fn reserve(cameras: usize) -> u64 {
    64 + 8 * cameras as u64
}

/// The connection cap: `configured`, lowered so that every client connection, plus the
/// refusals in progress and the reserve, fits under the soft limit.
pub fn connection_cap(configured: usize, limit: FdLimit, cameras: usize) -> usize {
    let room = limit
        .soft
        .saturating_sub(reserve(cameras))
        .saturating_sub(rtsp::server::refuse::MAX_REFUSING as u64)
        .max(8);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_leaves_room_under_a_low_limit() {
        let low = FdLimit {
            soft: 1024,
            hard: 1024,
        };
        assert_eq!(connection_cap(1024, low, 2), 1024 - 64 - 16 - 64);
        let high = FdLimit {
            soft: 1 << 20,
            hard: 1 << 20,
        };
        assert_eq!(connection_cap(1024, high, 2), 1024);
        let tiny = FdLimit { soft: 50, hard: 50 };
        assert_eq!(connection_cap(1024, tiny, 0), 8);
    }

    #[test]
    fn raise_reports_a_limit_within_the_hard_one() {
        let l = raise().unwrap();
        assert!(l.soft <= l.hard);
        assert!(l.soft > 0);
    }
}
