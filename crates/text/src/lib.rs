//! Bytes and text the way camgate shows and reads them, in one place for every crate: a hex
//! excerpt of offending bytes (errors and logs carry it so that a user can find the packet in
//! Wireshark) and percent-decoding of URL parts.

/// Bytes a hex excerpt shows at most.
pub const EXCERPT_BYTES: usize = 32;

/// The first [`EXCERPT_BYTES`] of `data` as lowercase hex bytes separated by spaces (as
/// Wireshark's hex pane shows them, and as `camgate dissect --hex` reads them back), then
/// `… (N bytes)` when cut; `(none)` when empty.
pub fn hex_excerpt(data: &[u8]) -> String {
    if data.is_empty() {
        return "(none)".into();
    }
    let shown = &data[..data.len().min(EXCERPT_BYTES)];
    let mut s = String::with_capacity(shown.len() * 3 + 16);
    for (i, b) in shown.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&hex::encode([*b]));
    }
    if data.len() > EXCERPT_BYTES {
        s.push_str(&format!(" … ({} bytes)", data.len()));
    }
    s
}

/// Decodes `%XX` escapes (URL userinfo, paths); an invalid escape is kept as written and
/// invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex_digit(c)),
                b.get(i + 2).and_then(|&c| hex_digit(c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query component that is not valid `application/x-www-form-urlencoded` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidEscape;

impl std::fmt::Display for InvalidEscape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not valid percent-encoded UTF-8")
    }
}

impl std::error::Error for InvalidEscape {}

/// Decodes a query component strictly: `+` is a space, every `%` takes exactly two hex digits
/// (no sign: `%+f` is refused), and the result must be UTF-8.
pub fn decode_query_component(s: &str) -> Result<String, InvalidEscape> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = b
                    .get(i + 1)
                    .and_then(|&c| hex_digit(c))
                    .ok_or(InvalidEscape)?;
                let l = b
                    .get(i + 2)
                    .and_then(|&c| hex_digit(c))
                    .ok_or(InvalidEscape)?;
                out.push(h << 4 | l);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| InvalidEscape)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_hex_cut_with_the_length_or_none() {
        assert_eq!(hex_excerpt(&[0xde, 0xad]), "de ad");
        assert_eq!(hex_excerpt(&[]), "(none)");
        let long = hex_excerpt(&[0xab; 40]);
        assert!(long.starts_with(&["ab"; EXCERPT_BYTES].join(" ")), "{long}");
        assert!(long.ends_with("ab … (40 bytes)"), "{long}");
    }

    #[test]
    fn lossy_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(percent_decode("p%40ss%3a"), "p@ss:");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn query_components_are_decoded_strictly() {
        assert_eq!(decode_query_component("a%20b+c").unwrap(), "a b c");
        for bad in ["%zz", "%ff", "%4", "%+f", "%-1", "%"] {
            assert_eq!(decode_query_component(bad), Err(InvalidEscape), "{bad}");
        }
    }
}
