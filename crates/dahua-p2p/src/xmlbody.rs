//! The flat XML bodies of DH-HTTP messages: `<body><Tag>value</Tag>…</body>`, optionally
//! after an `<?xml …?>` prolog.
//!
//! **Flattening.** Parsing yields an ordered list of `(key, text)` entries, one per *leaf*
//! element (an element without child elements). The key is the element's path below the root,
//! joined with `/`: `<body><US>a</US><X><Y>b</Y></X></body>` gives `("US", "a")` and
//! `("X/Y", "b")`. Lookups ([`XmlBody::get`]) accept the key with or without the root prefix
//! (`"US"` or `"body/US"`, the form dh-p2p uses); [`XmlBody::get_leaf`] matches the last path
//! segment only. Text directly inside an element that has child elements is ignored, and so
//! are attributes, comments, processing instructions and DOCTYPEs. Leaf text is kept exactly
//! (not trimmed), with entity and character references resolved and CDATA sections merged.
//!
//! **Leniency.** A `&` that does not start a known reference is kept literally, and bytes that
//! are not UTF-8 become U+FFFD. Mismatched or unclosed tags, text outside the root element and
//! unterminated markup are errors. Tag names are matched case-sensitively.
//!
//! **Writing.** [`XmlBody::to_xml`] writes the entries in the order given or sorted by key
//! (the SDK builds bodies from a `std::map`, so its bodies are byte-wise key-sorted); keys with
//! `/` are written as nested elements, so `parse(to_xml(b)) == b`.

use std::borrow::Cow;
use std::fmt::Write;

use thiserror::Error;

use text::hex_excerpt;

/// The prolog some servers put before `<body>`.
pub const XML_PROLOG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// A parsed or to-be-written body: the root element's name and its leaf entries in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XmlBody {
    /// The root element's name (`body` in every DH-HTTP message seen).
    pub root: String,
    /// `(key, text)` per leaf element, in document order; nested keys are `/`-joined paths.
    pub entries: Vec<(String, String)>,
}

/// The order [`XmlBody::to_xml`] writes entries in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ElementOrder {
    /// As pushed (dh-p2p builds bodies by hand in a fixed order).
    #[default]
    AsGiven,
    /// Byte-wise sorted by key, stable for equal keys (SDK bodies, built from a `std::map`).
    KeySorted,
}

/// A body that is not well-formed enough to flatten.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("XML body: {kind} at byte {offset} (bytes there: {excerpt})")]
pub struct XmlError {
    /// What went wrong.
    pub kind: XmlErrorKind,
    /// Byte offset in the input.
    pub offset: usize,
    /// Hex of the input from `offset`.
    pub excerpt: String,
}

/// What made a body unparseable.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum XmlErrorKind {
    /// No root element (empty input, or only a prolog/comments).
    #[error("no root element")]
    NoRoot,
    /// Non-whitespace text before or after the root element.
    #[error("text outside the root element")]
    TextOutsideRoot,
    /// A second root element.
    #[error("more than one root element")]
    SecondRoot,
    /// `</b>` while `<a>` is open.
    #[error("end tag </{found}> while <{expected}> is open")]
    MismatchedEnd { expected: String, found: String },
    /// An end tag with nothing open.
    #[error("end tag </{0}> without a start tag")]
    UnexpectedEnd(String),
    /// The input ended with elements still open.
    #[error("input ended inside <{0}>")]
    Unclosed(String),
    /// `<`, `<!--`, `<![CDATA[`, `<?` or a tag that is never closed, or a bad tag name.
    #[error("malformed markup: {0}")]
    Malformed(&'static str),
}

impl Default for XmlBody {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlBody {
    /// An empty body rooted at `<body>`.
    pub fn new() -> Self {
        Self::with_root("body")
    }

    /// An empty body with another root element name.
    pub fn with_root(root: &str) -> Self {
        XmlBody {
            root: root.to_owned(),
            entries: Vec::new(),
        }
    }

    /// Appends an entry (builder style). `key` is an element name or a `/`-joined path.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.push(key, value);
        self
    }

    /// Appends an entry. `key` is an element name or a `/`-joined path of XML names.
    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        debug_assert!(
            key.split('/').all(is_name),
            "XmlBody key {key:?} is not a /-joined list of XML names"
        );
        self.entries.push((key.to_owned(), value.into()));
    }

    /// Replaces the first entry with this key (keeping its position), or appends one.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.into(),
            None => self.push(key, value),
        }
    }

    /// Removes every entry with this key.
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// The text of the first entry with this key (with or without the `root/` prefix).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key).next()
    }

    /// The texts of every entry with this key (with or without the `root/` prefix).
    pub fn get_all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> {
        let key = key
            .strip_prefix(self.root.as_str())
            .and_then(|k| k.strip_prefix('/'))
            .unwrap_or(key);
        self.entries
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The text of the first entry whose last path segment is `name`.
    pub fn get_leaf(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.rsplit('/').next() == Some(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over `(key, text)` in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Writes the body (no prolog) with entries in `order`.
    pub fn to_xml(&self, order: ElementOrder) -> String {
        let mut entries: Vec<&(String, String)> = self.entries.iter().collect();
        if order == ElementOrder::KeySorted {
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        }
        let mut out = String::new();
        let _ = write!(out, "<{}>", self.root);
        let mut open: Vec<&str> = Vec::new();
        for (key, value) in entries {
            let segs: Vec<&str> = key.split('/').collect();
            let (leaf, parents) = segs.split_last().expect("split yields at least one item");
            let common = open
                .iter()
                .zip(parents.iter())
                .take_while(|(a, b)| a == b)
                .count();
            while open.len() > common {
                let name = open.pop().expect("len > common >= 0");
                let _ = write!(out, "</{name}>");
            }
            for p in &parents[common..] {
                let _ = write!(out, "<{p}>");
                open.push(p);
            }
            let _ = write!(out, "<{leaf}>{}</{leaf}>", escape(value));
        }
        while let Some(name) = open.pop() {
            let _ = write!(out, "</{name}>");
        }
        let _ = write!(out, "</{}>", self.root);
        out
    }

    /// Writes the body after the `<?xml …?>` prolog.
    pub fn to_xml_with_prolog(&self, order: ElementOrder) -> String {
        format!("{XML_PROLOG}{}", self.to_xml(order))
    }

    /// Parses a body. Total over arbitrary bytes: malformed input is an [`XmlError`].
    pub fn parse(input: &[u8]) -> Result<Self, XmlError> {
        Parser { input, pos: 0 }.run()
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for element text.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Resolves the five predefined entities and `&#N;`/`&#xH;` references; any other `&` is
/// kept literally.
pub fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match resolve_reference(rest) {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `s` starts with `&`: the character it references and the bytes used, if it is a reference.
fn resolve_reference(s: &str) -> Option<(char, usize)> {
    let end = s.as_bytes().iter().take(12).position(|&b| b == b';')?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    u32::from_str_radix(h, 16).ok()?
                }
                Some(_) => return None,
                None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => {
                    num.parse().ok()?
                }
                None => return None,
            };
            char::from_u32(code)?
        }
    };
    Some((c, end + 1))
}

/// Whether `s` can be written as an element name (and is read back as the same name).
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_name_byte)
}

/// Bytes allowed in element names: anything but whitespace, controls and markup characters.
fn is_name_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace()
        || b.is_ascii_control()
        || matches!(
            b,
            b'<' | b'>' | b'/' | b'=' | b'"' | b'\'' | b'?' | b'!' | b'&'
        ))
}

/// Deepest element nesting accepted (DH-HTTP bodies are two or three levels deep).
const MAX_DEPTH: usize = 64;

/// One open element during parsing.
struct Open {
    name: String,
    /// Leaf text gathered so far, references resolved.
    text: String,
    has_children: bool,
}

/// A cursor over the input.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, kind: XmlErrorKind, offset: usize) -> XmlError {
        XmlError {
            kind,
            offset,
            excerpt: hex_excerpt(self.input.get(offset..).unwrap_or_default()),
        }
    }

    fn rest(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    /// Skips to just past `pat`, or fails with `what`.
    fn skip_past(&mut self, pat: &[u8], what: &'static str) -> Result<(), XmlError> {
        let start = self.pos;
        match find(self.rest(), pat) {
            Some(i) => {
                self.pos += i + pat.len();
                Ok(())
            }
            None => Err(self.err(XmlErrorKind::Malformed(what), start)),
        }
    }

    fn run(mut self) -> Result<XmlBody, XmlError> {
        let mut stack: Vec<Open> = Vec::new();
        let mut root: Option<String> = None;
        let mut entries = Vec::new();
        if self.input.starts_with(b"\xef\xbb\xbf") {
            self.pos = 3; // UTF-8 byte order mark
        }
        while self.pos < self.input.len() {
            let at = self.pos;
            if self.input[at] != b'<' {
                let len = self.rest().iter().position(|&b| b == b'<');
                let end = len.map_or(self.input.len(), |l| at + l);
                let raw = String::from_utf8_lossy(&self.input[at..end]);
                self.pos = end;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&unescape(&raw)),
                    None => {
                        if !raw.bytes().all(|b| b.is_ascii_whitespace() || b == 0) {
                            return Err(self.err(XmlErrorKind::TextOutsideRoot, at));
                        }
                    }
                }
                continue;
            }
            let rest = self.rest();
            if rest.starts_with(b"<!--") {
                self.pos += 4;
                self.skip_past(b"-->", "unterminated comment")?;
            } else if rest.starts_with(b"<![CDATA[") {
                self.pos += 9;
                let start = self.pos;
                self.skip_past(b"]]>", "unterminated CDATA section")?;
                let raw = String::from_utf8_lossy(&self.input[start..self.pos - 3]);
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&raw),
                    None => return Err(self.err(XmlErrorKind::TextOutsideRoot, at)),
                }
            } else if rest.starts_with(b"<?") {
                self.pos += 2;
                self.skip_past(b"?>", "unterminated processing instruction")?;
            } else if rest.starts_with(b"<!") {
                self.skip_doctype(at)?;
            } else if rest.starts_with(b"</") {
                self.pos += 2;
                let name = self.name(at)?;
                self.skip_ws();
                if self.rest().first() != Some(&b'>') {
                    return Err(self.err(XmlErrorKind::Malformed("bad end tag"), at));
                }
                self.pos += 1;
                let Some(top) = stack.pop() else {
                    return Err(self.err(XmlErrorKind::UnexpectedEnd(name), at));
                };
                if top.name != name {
                    return Err(self.err(
                        XmlErrorKind::MismatchedEnd {
                            expected: top.name,
                            found: name,
                        },
                        at,
                    ));
                }
                Self::close(top, &stack, &mut entries);
            } else {
                self.pos += 1;
                let name = self.name(at)?;
                let self_closing = self.skip_attributes(at)?;
                if stack.is_empty() {
                    if root.is_some() {
                        return Err(self.err(XmlErrorKind::SecondRoot, at));
                    }
                    root = Some(name.clone());
                } else if let Some(top) = stack.last_mut() {
                    top.has_children = true;
                }
                let open = Open {
                    name,
                    text: String::new(),
                    has_children: false,
                };
                if self_closing {
                    Self::close(open, &stack, &mut entries);
                } else if stack.len() >= MAX_DEPTH {
                    // Every leaf's key repeats its whole path: deep nesting would make a
                    // 64 KiB datagram cost hundreds of MiB of keys.
                    return Err(self.err(XmlErrorKind::Malformed("elements nested too deeply"), at));
                } else {
                    stack.push(open);
                }
            }
        }
        if let Some(top) = stack.last() {
            return Err(self.err(XmlErrorKind::Unclosed(top.name.clone()), self.input.len()));
        }
        match root {
            Some(root) => Ok(XmlBody { root, entries }),
            None => Err(self.err(XmlErrorKind::NoRoot, 0)),
        }
    }

    /// Records a closed element: leaves (other than the root) become entries.
    fn close(el: Open, stack: &[Open], entries: &mut Vec<(String, String)>) {
        if el.has_children || stack.is_empty() {
            return;
        }
        let mut key = String::new();
        for p in &stack[1..] {
            key.push_str(&p.name);
            key.push('/');
        }
        key.push_str(&el.name);
        entries.push((key, el.text));
    }

    /// Reads an element name at the cursor.
    fn name(&mut self, at: usize) -> Result<String, XmlError> {
        let len = self
            .rest()
            .iter()
            .position(|&b| !is_name_byte(b))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.err(XmlErrorKind::Malformed("missing or bad tag name"), at));
        }
        let name = String::from_utf8_lossy(&self.rest()[..len]).into_owned();
        self.pos += len;
        Ok(name)
    }

    fn skip_ws(&mut self) {
        while self.rest().first().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Skips attributes up to and including `>`; returns whether the tag was `/>`.
    fn skip_attributes(&mut self, at: usize) -> Result<bool, XmlError> {
        let mut quote = None;
        let mut prev = 0u8;
        while let Some(&b) = self.rest().first() {
            self.pos += 1;
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None => match b {
                    b'"' | b'\'' => quote = Some(b),
                    b'<' => break,
                    b'>' => return Ok(prev == b'/'),
                    _ => {}
                },
            }
            prev = b;
        }
        Err(self.err(XmlErrorKind::Malformed("unterminated start tag"), at))
    }

    /// Skips `<!DOCTYPE …>` including a bracketed internal subset.
    fn skip_doctype(&mut self, at: usize) -> Result<(), XmlError> {
        let mut depth = 0usize;
        while let Some(&b) = self.rest().first() {
            self.pos += 1;
            match b {
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b'>' if depth == 0 => return Ok(()),
                _ => {}
            }
        }
        Err(self.err(XmlErrorKind::Malformed("unterminated <! declaration"), at))
    }
}

/// The index of the first occurrence of `pat` in `hay`.
fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    hay.windows(pat.len()).position(|w| w == pat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flat_body_in_order() {
        let b =
            XmlBody::parse(b"<body><DS>45.43.62.214:8802</DS><US>45.43.62.214:8803</US></body>")
                .unwrap();
        assert_eq!(b.root, "body");
        assert_eq!(b.get("US"), Some("45.43.62.214:8803"));
        assert_eq!(b.get("body/DS"), Some("45.43.62.214:8802"));
        assert_eq!(b.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["DS", "US"]);
    }

    #[test]
    fn skips_prolog_and_whitespace() {
        let b = XmlBody::parse(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<body>\n  <Address>1.2.3.4:8900</Address>\n</body>\r\n",
        )
        .unwrap();
        assert_eq!(
            b.entries,
            [("Address".to_owned(), "1.2.3.4:8900".to_owned())]
        );
    }

    #[test]
    fn flattens_nested_elements_as_paths() {
        let b = XmlBody::parse(b"<body><A>1</A><B><C>2</C><D/></B></body>").unwrap();
        assert_eq!(b.get("B/C"), Some("2"));
        assert_eq!(b.get("B/D"), Some(""));
        assert_eq!(b.get_leaf("C"), Some("2"));
        assert_eq!(b.get("C"), None);
        assert_eq!(
            XmlBody::parse(b.to_xml(ElementOrder::AsGiven).as_bytes()).unwrap(),
            b
        );
    }

    #[test]
    fn unescapes_references_and_keeps_lone_ampersands() {
        let b = XmlBody::parse(b"<body><A>a&amp;b&lt;&#65;&#x42; & c &bogus;</A></body>").unwrap();
        assert_eq!(b.get("A"), Some("a&b<AB & c &bogus;"));
    }

    #[test]
    fn lone_ampersand_before_multibyte_text_is_literal() {
        // The reference scan must not cut a UTF-8 character (found by proptest).
        assert_eq!(unescape("&quot;\u{b4b}A\u{897}"), "\"\u{b4b}A\u{897}");
        assert_eq!(
            unescape("&\u{b4b}\u{b4b}\u{b4b}\u{b4b};"),
            "&\u{b4b}\u{b4b}\u{b4b}\u{b4b};"
        );
    }

    #[test]
    fn cdata_and_comments_join_text() {
        let b = XmlBody::parse(b"<body><A>x<!-- c --><![CDATA[<y>]]>z</A></body>").unwrap();
        assert_eq!(b.get("A"), Some("x<y>z"));
    }

    #[test]
    fn attributes_are_ignored() {
        let b =
            XmlBody::parse(b"<body a='>' b=\"/>\"><A k=\"v\">1</A><B x=\"y\"/></body>").unwrap();
        assert_eq!(b.get("A"), Some("1"));
        assert_eq!(b.get("B"), Some(""));
    }

    #[test]
    fn writes_key_sorted_and_escaped() {
        let b = XmlBody::new()
            .with("version", "5.0.0")
            .with("Identify", "0 1")
            .with("LocalAddr", "a<b&c");
        assert_eq!(
            b.to_xml(ElementOrder::KeySorted),
            "<body><Identify>0 1</Identify><LocalAddr>a&lt;b&amp;c</LocalAddr><version>5.0.0</version></body>"
        );
        assert_eq!(
            b.to_xml(ElementOrder::AsGiven),
            "<body><version>5.0.0</version><Identify>0 1</Identify><LocalAddr>a&lt;b&amp;c</LocalAddr></body>"
        );
        assert!(
            b.to_xml_with_prolog(ElementOrder::AsGiven)
                .starts_with("<?xml")
        );
    }

    #[test]
    fn set_replaces_in_place() {
        let mut b = XmlBody::new().with("A", "1").with("B", "2");
        b.set("A", "3");
        b.set("C", "4");
        assert_eq!(
            b.to_xml(ElementOrder::AsGiven),
            "<body><A>3</A><B>2</B><C>4</C></body>"
        );
        b.remove("B");
        assert_eq!(b.get("B"), None);
    }

    #[test]
    fn rejects_malformed_bodies_with_offsets() {
        let e = XmlBody::parse(b"<body><A>1</B></body>").unwrap_err();
        assert_eq!(e.offset, 10);
        assert!(matches!(e.kind, XmlErrorKind::MismatchedEnd { .. }));
        assert!(e.to_string().contains("3c 2f 42"), "{e}");
        for bad in [
            &b""[..],
            b"   ",
            b"<?xml version='1.0'?>",
            b"<body><A>1</A>",
            b"junk<body/>",
            b"<body/><again/>",
            b"</body>",
            b"<body><!-- x",
            b"<body><A",
            b"< body/>",
        ] {
            assert!(
                XmlBody::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn tolerates_trailing_nuls_and_non_utf8() {
        let b = XmlBody::parse(b"<body><A>\xff</A></body>\0\0").unwrap();
        assert_eq!(b.get("A"), Some("\u{fffd}"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_memory_blowup() {
        // 10 000 nested elements and 8 000 leaves inside them: one datagram's worth of bytes
        // made 8 000 keys of 20 000 bytes each (160 MB).
        let mut x = "<a>".repeat(10_000);
        x.push_str(&"<b/>".repeat(8_000));
        x.push_str(&"</a>".repeat(10_000));
        let e = XmlBody::parse(x.as_bytes()).unwrap_err();
        assert_eq!(
            e.kind,
            XmlErrorKind::Malformed("elements nested too deeply")
        );
        assert_eq!(e.offset, 3 * MAX_DEPTH);
        // Nesting up to the limit still parses, with the full path as the key.
        let depth = MAX_DEPTH - 1;
        let x = format!(
            "<body>{}<b/>{}</body>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        let b = XmlBody::parse(x.as_bytes()).unwrap();
        assert_eq!(b.get(&format!("{}b", "a/".repeat(depth))), Some(""));
    }
}
