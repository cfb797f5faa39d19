//! The cost of a request head that arrives one byte per read (a slowloris client): camgate's
//! RTSP framer, which resumes its search where the last read stopped, beside parsing the whole
//! buffer again on every read (what the server did before, and what a naive server does).
//! Linear cost shows as the same bytes/s at every head size; re-parsing falls with the size.
//!
//!     cargo bench -p camgate-bench --bench request_head

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rtsp::server::framing::{Framer, Item};

/// A DESCRIBE whose head is about `size` bytes long.
fn head(size: usize) -> Vec<u8> {
    let mut h = b"DESCRIBE rtsp://127.0.0.1:8554/cam RTSP/1.0\r\nCSeq: 2\r\n".to_vec();
    let mut i = 0;
    while h.len() + 64 < size {
        h.extend_from_slice(format!("X-Pad-{i:04}: {}\r\n", "p".repeat(48)).as_bytes());
        i += 1;
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// Feeds `msg` one byte per read to a framer; the bytes of the request it finds.
fn framer(msg: &[u8]) -> usize {
    let mut f = Framer::new();
    let mut buf = Vec::with_capacity(msg.len());
    for &b in msg {
        buf.push(b);
        match f.next_item(&buf) {
            Ok(Item::NeedMore) => {}
            Ok(Item::Request(_, used)) => return used,
            other => panic!("{other:?}"),
        }
    }
    0
}

/// Feeds `msg` one byte per read, parsing the whole buffer on each.
fn reparse(msg: &[u8]) -> usize {
    let mut buf = Vec::with_capacity(msg.len());
    for &b in msg {
        buf.push(b);
        match rtsp_types::Message::<Vec<u8>>::parse(&buf) {
            Ok((_, used)) => return used,
            Err(rtsp_types::ParseError::Incomplete(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    0
}

fn byte_at_a_time(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_one_byte_per_read");
    for size in [1024, 4096, 16 * 1024 - 64] {
        let msg = head(size);
        assert_eq!(framer(&msg), msg.len());
        assert_eq!(reparse(&msg), msg.len());
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_with_input(BenchmarkId::new("framer", msg.len()), &msg, |b, m| {
            b.iter(|| framer(m))
        });
        g.bench_with_input(BenchmarkId::new("reparse", msg.len()), &msg, |b, m| {
            b.iter(|| reparse(m))
        });
    }
    g.finish();
}

criterion_group!(benches, byte_at_a_time);
criterion_main!(benches);
