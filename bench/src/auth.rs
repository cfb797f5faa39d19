//! Client-side RTSP login for the bench client: credentials from a URL's userinfo, Basic, and
//! Digest (RFC 2617, MD5, with `qop=auth` and a growing nonce count when the server offers
//! it), plus the small encoders (base64, hex MD5) the abuse generator shares.

use base64::Engine;
use md5::{Digest, Md5};

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Splits `rtsp://user:pass@host/...` into the URL without userinfo and the credentials
/// (percent-escapes decoded); a URL without userinfo comes back unchanged with `None`.
pub fn split_userinfo(url: &str) -> (String, Option<Credentials>) {
    let Some(i) = url.find("://") else {
        return (url.to_string(), None);
    };
    let (scheme, rest) = url.split_at(i + 3);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let userinfo = &rest[..at];
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let creds = Credentials {
        username: text::percent_decode(user),
        password: text::percent_decode(pass),
    };
    (format!("{scheme}{}", &rest[at + 1..]), Some(creds))
}

/// One `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Digest realm="...", nonce="..."[, qop="auth"][, opaque="..."][, stale=true]`.
    Digest {
        /// The realm.
        realm: String,
        /// The server's nonce.
        nonce: String,
        /// `opaque`, echoed back when present.
        opaque: Option<String>,
        /// The server offers `qop=auth`.
        qop_auth: bool,
        /// The server says the credentials were right for an old nonce.
        stale: bool,
    },
}

/// Parses one `WWW-Authenticate` value; `None` for an unknown scheme or a Digest challenge
/// without realm or nonce (or with an algorithm other than MD5).
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let params = auth_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
        return None;
    }
    Some(Challenge::Digest {
        realm: get("realm")?,
        nonce: get("nonce")?,
        opaque: get("opaque"),
        qop_auth: get("qop")
            .is_some_and(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth"))),
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// Splits `k=v, k2="v, 2"` into pairs; quoted values may hold `\"`. Total over any input.
pub fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek().is_none() && key.trim().is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                // Skip anything between the closing quote and the next comma.
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// Picks the challenge to answer among `WWW-Authenticate` values: Digest before Basic.
pub fn pick_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let all: Vec<Challenge> = values.into_iter().filter_map(parse_challenge).collect();
    all.iter()
        .find(|c| matches!(c, Challenge::Digest { .. }))
        .or(all.first())
        .cloned()
}

/// Lowercase hex MD5 of `parts` joined with `:`.
pub fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The value of a `Basic` Authorization header for `username`/`password`.
pub fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64(format!("{username}:{password}").as_bytes())
    )
}

/// What a Digest answer is computed from (besides the credentials).
#[derive(Clone, Copy, Debug)]
pub struct DigestInput<'a> {
    /// The challenge's realm.
    pub realm: &'a str,
    /// The challenge's nonce.
    pub nonce: &'a str,
    /// The request method.
    pub method: &'a str,
    /// The request-URI, exactly as on the request line.
    pub uri: &'a str,
    /// `Some((nc, cnonce))` to answer with `qop=auth`.
    pub qop: Option<(u32, &'a str)>,
    /// The challenge's `opaque`, echoed back.
    pub opaque: Option<&'a str>,
}

/// The value of a `Digest` Authorization header (RFC 2617, MD5).
pub fn digest_header(creds: &Credentials, d: &DigestInput<'_>) -> String {
    let ha1 = md5_hex(&[&creds.username, d.realm, &creds.password]);
    let ha2 = md5_hex(&[d.method, d.uri]);
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut h = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"",
        quote(&creds.username),
        quote(d.realm),
        quote(d.nonce),
        quote(d.uri)
    );
    match d.qop {
        Some((nc, cnonce)) => {
            let nc = format!("{nc:08x}");
            let response = md5_hex(&[&ha1, d.nonce, &nc, cnonce, "auth", &ha2]);
            h.push_str(&format!(
                ", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{}\"",
                quote(cnonce)
            ));
        }
        None => {
            let response = md5_hex(&[&ha1, d.nonce, &ha2]);
            h.push_str(&format!(", response=\"{response}\", algorithm=MD5"));
        }
    }
    if let Some(o) = d.opaque {
        h.push_str(&format!(", opaque=\"{}\"", quote(o)));
    }
    h
}

/// The login state of one connection: the credentials, the last challenge and the nonce count.
#[derive(Clone, Debug)]
pub struct Authorizer {
    creds: Credentials,
    challenge: Option<Challenge>,
    nc: u32,
    cnonce: String,
}

impl Authorizer {
    /// A login with `creds`, answering no challenge yet.
    pub fn new(creds: Credentials) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Authorizer {
            creds,
            challenge: None,
            nc: 0,
            cnonce: format!("{:016x}", (seed as u64) ^ u64::from(std::process::id())),
        }
    }

    /// Takes the `WWW-Authenticate` values of a 401: true when there is a challenge to answer
    /// (so that sending the request again may succeed).
    pub fn on_unauthorized<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> bool {
        match pick_challenge(values) {
            Some(c) => {
                if let (
                    Some(Challenge::Digest { nonce: old, .. }),
                    Challenge::Digest { nonce: new, .. },
                ) = (&self.challenge, &c)
                    && old != new
                {
                    self.nc = 0;
                }
                self.challenge = Some(c);
                true
            }
            None => false,
        }
    }

    /// The Authorization header for a request, once a challenge has been seen (each Digest
    /// answer with `qop=auth` uses the next nonce count).
    pub fn header(&mut self, method: &str, uri: &str) -> Option<String> {
        match self.challenge.as_ref()? {
            Challenge::Basic => Some(basic_header(&self.creds.username, &self.creds.password)),
            Challenge::Digest {
                realm,
                nonce,
                opaque,
                qop_auth,
                ..
            } => {
                let qop = if *qop_auth {
                    self.nc = self.nc.wrapping_add(1).max(1);
                    Some((self.nc, self.cnonce.as_str()))
                } else {
                    None
                };
                Some(digest_header(
                    &self.creds,
                    &DigestInput {
                        realm,
                        nonce,
                        method,
                        uri,
                        qop,
                        opaque: opaque.as_deref(),
                    },
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5 (its method is GET).
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let h = digest_header(
            &creds,
            &DigestInput {
                realm: "testrealm@host.com",
                nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                method: "GET",
                uri: "/dir/index.html",
                qop: Some((1, "0a4f113b")),
                opaque: Some("5ccc069c403ebaf9f0171e9517f40e41"),
            },
        );
        assert!(
            h.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{h}"
        );
        assert!(h.contains("nc=00000001"), "{h}");
        assert!(
            h.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{h}"
        );
    }

    #[test]
    fn userinfo_is_split_and_decoded() {
        let (url, c) = split_userinfo("rtsp://viewer:p%40ss:x@127.0.0.1:8554/cam");
        assert_eq!(url, "rtsp://127.0.0.1:8554/cam");
        let c = c.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("viewer", "p@ss:x")
        );
        let (url, c) = split_userinfo("rtsp://127.0.0.1/a@b");
        assert_eq!((url.as_str(), c), ("rtsp://127.0.0.1/a@b", None));
    }

    #[test]
    fn challenges_are_parsed_and_digest_preferred() {
        let d = "Digest realm=\"camgate\", nonce=\"ab, c\\\"d\", algorithm=MD5, qop=\"auth\", stale=true";
        let picked = pick_challenge(["Basic realm=\"camgate\"", d]).unwrap();
        assert_eq!(
            picked,
            Challenge::Digest {
                realm: "camgate".into(),
                nonce: "ab, c\"d".into(),
                opaque: None,
                qop_auth: true,
                stale: true,
            }
        );
        assert_eq!(pick_challenge(["Basic realm=x"]), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge("Digest realm=x, nonce=y, algorithm=SHA-256"),
            None
        );
        assert_eq!(parse_challenge("Bearer x"), None);
        assert!(auth_params("\"=,,= \"\\").len() < 4);
    }

    #[test]
    fn nonce_count_grows_and_restarts_with_a_new_nonce() {
        let mut a = Authorizer::new(Credentials {
            username: "u".into(),
            password: "p".into(),
        });
        assert_eq!(a.header("DESCRIBE", "rtsp://h/s"), None);
        assert!(a.on_unauthorized(["Digest realm=\"r\", nonce=\"n1\", qop=\"auth\""]));
        assert!(
            a.header("DESCRIBE", "rtsp://h/s")
                .unwrap()
                .contains("nc=00000001")
        );
        assert!(
            a.header("SETUP", "rtsp://h/s")
                .unwrap()
                .contains("nc=00000002")
        );
        assert!(a.on_unauthorized(["Digest realm=\"r\", nonce=\"n2\", qop=\"auth\""]));
        assert!(
            a.header("PLAY", "rtsp://h/s")
                .unwrap()
                .contains("nc=00000001")
        );
        assert!(!a.on_unauthorized(["Negotiate"]));
    }

    #[test]
    fn camgate_accepts_the_answers() {
        use ::rtsp::server::auth::{Attempt, Authenticator, DigestNonce, User};
        let server = Authenticator::new(vec![User {
            username: "viewer".into(),
            password: "pw".into(),
        }]);
        let mut nonce = DigestNonce::new();
        let mut a = Authorizer::new(Credentials {
            username: "viewer".into(),
            password: "pw".into(),
        });
        let challenges = server.challenges(&nonce, false);
        assert!(a.on_unauthorized(challenges.iter().map(String::as_str)));
        for (method, uri) in [
            ("DESCRIBE", "rtsp://127.0.0.1:8554/cam"),
            ("SETUP", "rtsp://127.0.0.1:8554/cam/trackID=0"),
            ("PLAY", "rtsp://127.0.0.1:8554/cam/"),
        ] {
            let h = a.header(method, uri).unwrap();
            let attempt = Attempt {
                method,
                uri,
                authorization: Some(&h),
            };
            assert_eq!(
                server.check(attempt, &mut nonce),
                Ok(Some("viewer".to_string())),
                "{method} {h}"
            );
        }
        let basic = basic_header("viewer", "pw");
        let attempt = Attempt {
            method: "DESCRIBE",
            uri: "rtsp://127.0.0.1:8554/cam",
            authorization: Some(&basic),
        };
        assert!(server.check(attempt, &mut nonce).is_ok());
    }
}
