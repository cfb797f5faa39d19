//! Dahua's RTSP URLs in front of the simulated camera.
//!
//! Dahua cameras serve `rtsp://host/cam/realmonitor?channel=1&subtype=0`, and their SDP makes
//! clients SETUP `…/cam/realmonitor?channel=1&subtype=0/trackID=0`: the track id ends up in the
//! *query*. camgate's RTSP server takes the stream from the URL path (it also finds a track
//! id at the end of the query); the query's channel and subtype are the device's business, so
//! this adapter sits on the client→camera byte stream of realm port 554, moves such a suffix
//! back into the path (`…/cam/realmonitor/trackID=0?channel=1&subtype=0`), and sends channels
//! and subtypes the device does not have to a path the server answers with 404. Only request lines change; interleaved `$` frames and bodies pass through untouched,
//! and so does every reply (the `Content-Base` the client sees stays Dahua's).

use tracing::debug;

/// The stream path of the device's camera.
pub(crate) const REALMONITOR: &str = "cam/realmonitor";

/// Longest request head buffered before the adapter gives up and passes bytes through.
const MAX_HEAD: usize = 16 * 1024;

/// Rewrites Dahua realmonitor URLs in the request lines of one RTSP client stream.
#[derive(Debug)]
pub(crate) struct DahuaUrlAdapter {
    /// Channels the device has (`channel=1..=channels`).
    channels: u32,
    /// Bytes not yet passed on (an incomplete head or interleaved frame header).
    buf: Vec<u8>,
    /// Bytes still to pass through untouched (a body or an interleaved frame).
    passthrough: usize,
    /// Gave up parsing (a head too long): everything passes through.
    raw: bool,
}

impl DahuaUrlAdapter {
    /// An adapter for a device with `channels` channels.
    pub fn new(channels: u32) -> Self {
        DahuaUrlAdapter {
            channels,
            buf: Vec::new(),
            passthrough: 0,
            raw: false,
        }
    }

    /// Feeds bytes from the client; returns the bytes to send to the camera.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 32);
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            if rest.is_empty() {
                break;
            }
            if self.raw {
                out.extend_from_slice(rest);
                pos = self.buf.len();
                break;
            }
            if self.passthrough > 0 {
                let n = self.passthrough.min(rest.len());
                out.extend_from_slice(&rest[..n]);
                self.passthrough -= n;
                pos += n;
                continue;
            }
            if rest[0] == b'$' {
                // Interleaved frame: '$', channel, BE16 length, payload.
                if rest.len() < 4 {
                    break;
                }
                let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                out.extend_from_slice(&rest[..4]);
                pos += 4;
                self.passthrough = len;
                continue;
            }
            match find_head_end(rest) {
                Some(end) => {
                    let (head, body_len) = self.rewrite_head(&rest[..end]);
                    out.extend_from_slice(&head);
                    pos += end;
                    self.passthrough = body_len;
                }
                None if rest.len() > MAX_HEAD => {
                    debug!("RTSP URL adapter: request head too long, passing bytes through");
                    self.raw = true;
                }
                None => break,
            }
        }
        self.buf.drain(..pos);
        out
    }

    /// The head with its request line rewritten, and the body length it announces.
    fn rewrite_head(&self, head: &[u8]) -> (Vec<u8>, usize) {
        let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let body_len = content_length(head);
        let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
            return (head.to_vec(), body_len);
        };
        let line = line.trim_end_matches('\r');
        let mut parts = line.splitn(3, ' ');
        let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return (head.to_vec(), body_len);
        };
        let new_uri = rewrite_uri(uri, self.channels);
        if new_uri == uri {
            return (head.to_vec(), body_len);
        }
        debug!(%method, from = %uri, to = %new_uri, "RTSP URL adapter: request URI rewritten");
        let mut out = format!("{method} {new_uri} {version}\r\n").into_bytes();
        out.extend_from_slice(&head[(line_end + 1).min(head.len())..]);
        (out, body_len)
    }
}

/// The index just past the blank line ending an RTSP head (CRLF or bare LF).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `Content-Length` of a head (0 when absent or malformed).
fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Rewrites one request URI (unchanged unless it is a realmonitor URL with a query).
pub(crate) fn rewrite_uri(uri: &str, channels: u32) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_owned();
    };
    if !path.trim_end_matches('/').ends_with(REALMONITOR) {
        return uri.to_owned();
    }
    let (params, suffix) = match query.split_once('/') {
        Some((p, s)) => (p, Some(s)),
        None => (query, None),
    };
    let mut channel = None;
    let mut subtype = None;
    for kv in params.split('&') {
        match kv.split_once('=') {
            Some(("channel", v)) => channel = Some(v),
            Some(("subtype", v)) => subtype = Some(v),
            _ => {}
        }
    }
    let channel_ok = channel
        .unwrap_or("1")
        .parse::<u32>()
        .is_ok_and(|c| (1..=channels).contains(&c));
    let subtype_ok = matches!(subtype.unwrap_or("0"), "0" | "1");
    let path = path.trim_end_matches('/');
    let mut out = String::with_capacity(uri.len() + 16);
    out.push_str(path);
    if !(channel_ok && subtype_ok) {
        // A stream the camera does not have: the server answers 404.
        out.push_str("/no-such-channel");
    }
    if let Some(s) = suffix.filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(s);
    }
    out.push('?');
    out.push_str(params);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_suffix_moves_from_the_query_into_the_path() {
        assert_eq!(
            rewrite_uri(
                "rtsp://127.0.0.1:5/cam/realmonitor?channel=1&subtype=0/trackID=1",
                1
            ),
            "rtsp://127.0.0.1:5/cam/realmonitor/trackID=1?channel=1&subtype=0"
        );
        assert_eq!(
            rewrite_uri("rtsp://h/cam/realmonitor?channel=1&subtype=0/", 1),
            "rtsp://h/cam/realmonitor?channel=1&subtype=0"
        );
        assert_eq!(
            rewrite_uri("rtsp://h/cam/realmonitor?channel=1&subtype=1", 1),
            "rtsp://h/cam/realmonitor?channel=1&subtype=1"
        );
    }

    #[test]
    fn unknown_channels_go_to_a_missing_stream() {
        assert_eq!(
            rewrite_uri("rtsp://h/cam/realmonitor?channel=2&subtype=0", 1),
            "rtsp://h/cam/realmonitor/no-such-channel?channel=2&subtype=0"
        );
        assert_eq!(
            rewrite_uri("rtsp://h/cam/realmonitor?channel=1&subtype=7/trackID=0", 1),
            "rtsp://h/cam/realmonitor/no-such-channel/trackID=0?channel=1&subtype=7"
        );
    }

    #[test]
    fn other_uris_are_untouched() {
        for u in ["*", "rtsp://h/other?x=1/y", "rtsp://h/cam/realmonitor"] {
            assert_eq!(rewrite_uri(u, 1), u);
        }
    }

    #[test]
    fn adapter_rewrites_request_lines_split_anywhere_and_passes_frames_and_bodies() {
        let input = b"SETUP rtsp://h/cam/realmonitor?channel=1&subtype=0/trackID=0 RTSP/1.0\r\nCSeq: 3\r\n\r\n\
$\x01\x00\x04abcdSET_PARAMETER rtsp://h/cam/realmonitor?channel=1&subtype=0/ RTSP/1.0\r\nContent-Length: 5\r\n\r\nx\r\n\r\nOPTIONS * RTSP/1.0\r\n\r\n";
        let want = b"SETUP rtsp://h/cam/realmonitor/trackID=0?channel=1&subtype=0 RTSP/1.0\r\nCSeq: 3\r\n\r\n\
$\x01\x00\x04abcdSET_PARAMETER rtsp://h/cam/realmonitor?channel=1&subtype=0 RTSP/1.0\r\nContent-Length: 5\r\n\r\nx\r\n\r\nOPTIONS * RTSP/1.0\r\n\r\n";
        for split in 1..input.len() {
            let mut a = DahuaUrlAdapter::new(1);
            let mut out = Vec::new();
            for chunk in input.chunks(split) {
                out.extend(a.push(chunk));
            }
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(want),
                "chunks of {split}"
            );
        }
    }
}
