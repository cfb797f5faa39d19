//! Fuzzes the DHIP stream decoder: the input (after a few bytes choosing the chunk sizes) is
//! pushed to a [`Decoder`] in input-sized chunks and decoded until more bytes are needed or
//! an error. Checks that the decoded messages do not depend on the chunking, that an error
//! sticks, that every message re-encodes (plain, with a terminator, and in both fragment
//! models) to bytes that decode back to an equal message, and that the [`Reassembler`]
//! conserves the messages and data it is fed.

#![no_main]

use bytes::BytesMut;
use dhip::frame::{
    Decoder, FragmentModel, Message, Reassembler, Terminator, encode, encode_fragmented,
    encode_with,
};
use libfuzzer_sys::fuzz_target;

/// Largest message the fuzzed decoder accepts (keeps allocations small).
const MAX: usize = 1 << 16;

/// Decodes `stream` pushed in chunks of the given sizes (cycled). Returns the messages and
/// whether the decoder failed.
fn decode(stream: &[u8], sizes: &[usize]) -> (Vec<Message>, bool) {
    let mut d = Decoder::new(MAX);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let n = sizes[i % sizes.len()].min(stream.len() - pos);
        i += 1;
        d.push(&stream[pos..pos + n]);
        pos += n;
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => {
                    // The stream is out of step: the same error comes again.
                    assert_eq!(d.next_message(), Err(e));
                    return (out, true);
                }
            }
        }
    }
    (out, false)
}

/// Decodes everything in `bytes` (a decoder whose limit fits it); it must be exactly the
/// messages of one encoder call.
fn decode_all(bytes: &[u8]) -> Vec<Message> {
    let mut d = Decoder::new(bytes.len());
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().expect("encoded bytes must decode") {
        out.push(m);
    }
    assert_eq!(d.buffered(), 0, "encoded bytes left over");
    out
}

fn same(a: &Message, json: &[u8], data: &[u8], session: u32, request_id: u32) {
    assert_eq!(&a.json[..], json);
    assert_eq!(&a.data[..], data);
    assert_eq!(a.session, session);
    assert_eq!(a.request_id, request_id);
}

fn check_roundtrip(m: &Message, knob: u8) {
    let mut out = BytesMut::new();
    encode(m.session, m.request_id, &m.json, &m.data, &mut out);
    let back = decode_all(&out);
    assert_eq!(back.len(), 1);
    same(&back[0], &m.json, &m.data, m.session, m.request_id);
    assert_eq!(back[0].index, 0);

    // A terminator after the JSON is counted in the lengths and trimmed again.
    let term = [Terminator::None, Terminator::Newline, Terminator::Nul][usize::from(knob % 3)];
    let mut out = BytesMut::new();
    encode_with(m.session, m.request_id, &m.json, term, &m.data, &mut out);
    let back = decode_all(&out);
    assert_eq!(back.len(), 1);
    same(&back[0], &m.json, &m.data, m.session, m.request_id);

    // Both fragment models.
    let pieces = usize::from(knob >> 2) % 9 + 1;
    let mut out = BytesMut::new();
    encode_fragmented(
        m.session,
        m.request_id,
        &m.json,
        &m.data,
        FragmentModel::PerPacketJson,
        pieces,
        &mut out,
    );
    let mut r = Reassembler::default();
    let mut joined = Vec::new();
    for p in decode_all(&out) {
        joined.extend(r.push(p).expect("within the default limit"));
    }
    joined.extend(r.flush());
    assert!(!r.is_holding());
    assert_eq!(
        joined.len(),
        1,
        "per-packet fragments must join into one message"
    );
    same(&joined[0], &m.json, &m.data, m.session, m.request_id);

    if !m.json.is_empty() {
        let mut out = BytesMut::new();
        encode_fragmented(
            m.session,
            m.request_id,
            &m.json,
            &m.data,
            FragmentModel::TotalLength,
            pieces,
            &mut out,
        );
        let back = decode_all(&out);
        assert_eq!(
            back.len(),
            1,
            "total-length fragments must join into one message"
        );
        // That model carries no binary part.
        same(&back[0], &m.json, &[], m.session, m.request_id);
    }
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: how many chunk-size bytes follow (1-8); each gives a chunk of 1-256 bytes.
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 8 + 1).min(rest.len());
    let (size_bytes, stream) = rest.split_at(k);
    let mut sizes: Vec<usize> = size_bytes.iter().map(|b| usize::from(*b) + 1).collect();
    if sizes.is_empty() {
        sizes.push(1);
    }

    let (msgs, failed) = decode(stream, &sizes);
    // Chunking must not change what is decoded.
    let (whole, whole_failed) = decode(stream, &[stream.len().max(1)]);
    assert_eq!(msgs, whole, "messages depend on chunking");
    assert_eq!(failed, whole_failed, "failure depends on chunking");

    let mut r = Reassembler::default();
    let mut joined = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        check_roundtrip(
            m,
            size_bytes.get(i % k.max(1)).copied().unwrap_or(0) ^ i as u8,
        );
        // The fuzzed stream is far below the default limit.
        joined.extend(r.push(m.clone()).expect("within the default limit"));
    }
    joined.extend(r.flush());
    assert!(!r.is_holding());
    // The reassembler drops nothing: every message that is not a continuation of the one
    // held comes out, and all data bytes are kept.
    assert!(joined.len() <= msgs.len());
    let firsts = |v: &[Message]| v.iter().filter(|m| m.index == 0).count();
    assert_eq!(firsts(&joined), firsts(&msgs));
    let data_len = |v: &[Message]| v.iter().map(|m| m.data.len()).sum::<usize>();
    assert_eq!(data_len(&joined), data_len(&msgs));
});
