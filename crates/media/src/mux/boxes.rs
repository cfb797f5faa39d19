//! ISO BMFF box writing helpers: size-prefixed boxes and full boxes appended to a `Vec<u8>`,
//! and MPEG-4 descriptors (for `esds`).

/// Appends a box of type `kind` whose body `body` writes; the size is patched in after.
pub(crate) fn write_box(buf: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    buf.extend_from_slice(kind);
    body(buf);
    let size = u32::try_from(buf.len() - start).expect("box larger than 4 GiB");
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box (a box with a version byte and 24 bits of flags).
pub(crate) fn write_full_box(
    buf: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(buf, kind, |b| {
        put_u32(b, (u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(b);
    });
}

/// Appends an MPEG-4 descriptor (ISO 14496-1 §7.2.2) with a 4-byte length field.
pub(crate) fn write_descriptor(buf: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    buf.push(tag);
    let len_pos = buf.len();
    buf.extend_from_slice(&[0x80, 0x80, 0x80, 0]);
    body(buf);
    let len = buf.len() - len_pos - 4;
    assert!(len < 1 << 28, "descriptor too long");
    buf[len_pos] = 0x80 | ((len >> 21) & 0x7f) as u8;
    buf[len_pos + 1] = 0x80 | ((len >> 14) & 0x7f) as u8;
    buf[len_pos + 2] = 0x80 | ((len >> 7) & 0x7f) as u8;
    buf[len_pos + 3] = (len & 0x7f) as u8;
}

/// Appends a big-endian u16.
pub(crate) fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian u32.
pub(crate) fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian u64.
pub(crate) fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// The unity transformation matrix of `mvhd` and `tkhd`.
pub(crate) const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Appends the unity matrix.
pub(crate) fn put_matrix(buf: &mut Vec<u8>) {
    for v in UNITY_MATRIX {
        put_u32(buf, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_boxes_get_their_sizes() {
        let mut b = Vec::new();
        write_box(&mut b, b"moov", |b| {
            write_full_box(b, b"mvhd", 1, 0x000203, |b| put_u16(b, 7));
        });
        assert_eq!(
            b,
            [
                0, 0, 0, 22, b'm', b'o', b'o', b'v', //
                0, 0, 0, 14, b'm', b'v', b'h', b'd', 1, 0, 2, 3, 0, 7
            ]
        );
    }

    #[test]
    fn descriptors_use_four_byte_lengths() {
        let mut b = Vec::new();
        write_descriptor(&mut b, 5, |b| b.extend_from_slice(&[0x12, 0x10]));
        assert_eq!(b, [5, 0x80, 0x80, 0x80, 2, 0x12, 0x10]);
        let mut b = Vec::new();
        write_descriptor(&mut b, 3, |b| b.extend(std::iter::repeat_n(0, 200)));
        assert_eq!(&b[..5], &[3, 0x80, 0x80, 0x81, 0x48]);
    }
}
