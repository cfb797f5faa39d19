//! Reader authentication: RTSP Basic and Digest (RFC 2617/7616 with MD5, with or without
//! `qop=auth`), and the user check HTTP Basic shares.
//!
//! - A Digest nonce belongs to one connection ([`DigestNonce`]): a header captured on one
//!   connection is refused on every other (with `stale=true`, so that a client that knows the
//!   password simply answers the new challenge).
//! - The header's `realm` must be ours, and its `uri` must name the resource of the request it
//!   comes with, so a header made for one camera cannot open another.
//! - With `qop=auth` the nonce count must grow on every request: a replayed header is refused.
//! - Every comparison of a secret takes the same time whatever the input, and runs over all
//!   users (which user exists cannot be told from the timing).

use base64::Engine;
use md5::{Digest, Md5};

/// A user allowed to read streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Password (kept in memory to check Digest responses).
    pub password: String,
}

/// A user with the hashes the checks compare against.
#[derive(Clone)]
struct Known {
    name: String,
    /// MD5 of the name, to compare names in constant time whatever their lengths.
    name_hash: [u8; 16],
    /// HA1 = MD5(name:realm:password), as lowercase hex.
    ha1: String,
}

impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Known").field("name", &self.name).finish()
    }
}

/// Checks credentials and issues challenges. With no users, everything is allowed.
#[derive(Clone, Debug)]
pub struct Authenticator {
    users: Vec<Known>,
    realm: String,
    /// Also offer Basic in the challenge (Digest is always offered).
    pub offer_basic: bool,
}

/// The Digest state of one connection: the nonce issued on it and the highest nonce count a
/// `qop=auth` request used with it.
#[derive(Clone, Debug)]
pub struct DigestNonce {
    nonce: String,
    last_nc: u32,
}

impl Default for DigestNonce {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestNonce {
    /// A fresh random nonce (128 bits).
    pub fn new() -> Self {
        DigestNonce {
            nonce: format!("{:032x}", rand::random::<u128>()),
            last_nc: 0,
        }
    }

    /// The nonce as sent in challenges.
    pub fn as_str(&self) -> &str {
        &self.nonce
    }
}

/// What a request offers to be checked.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// The request method (`DESCRIBE`...).
    pub method: &'a str,
    /// The request-URI exactly as on the request line.
    pub uri: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
}

/// Why a request was not authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Unparseable header, unknown scheme or an unsupported Digest variant.
    Malformed(&'static str),
    /// Unknown user or wrong password.
    Wrong {
        /// The user name the client gave.
        user: String,
    },
    /// A Digest nonce not issued on this connection, with a response that is right for it:
    /// the client knows the password and should answer the new challenge (`stale=true`).
    Stale,
    /// A `qop=auth` nonce count that did not grow: a replayed header.
    Replayed {
        /// The user name the client gave.
        user: String,
    },
    /// The Digest `uri` names another resource than the request does.
    UriMismatch {
        /// The `uri` of the header.
        digest_uri: String,
    },
    /// The Digest `realm` is not ours.
    WrongRealm,
}

impl AuthFailure {
    /// True for a failed guess (counts towards the per-address back-off); false when no
    /// credentials were offered yet or the nonce is merely stale.
    pub fn is_failed_login(&self) -> bool {
        !matches!(self, AuthFailure::Missing | AuthFailure::Stale)
    }

    /// The user name offered, when the header had one.
    pub fn user(&self) -> Option<&str> {
        match self {
            AuthFailure::Wrong { user } | AuthFailure::Replayed { user } => Some(user),
            _ => None,
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthFailure::Missing => write!(f, "no credentials"),
            AuthFailure::Malformed(why) => write!(f, "malformed Authorization header: {why}"),
            AuthFailure::Wrong { user } => write!(f, "wrong user name or password (user {user:?})"),
            AuthFailure::Stale => write!(f, "stale Digest nonce"),
            AuthFailure::Replayed { user } => {
                write!(
                    f,
                    "replayed Digest header (nonce count did not grow; user {user:?})"
                )
            }
            AuthFailure::UriMismatch { digest_uri } => {
                write!(f, "Digest uri {digest_uri:?} is not the request's resource")
            }
            AuthFailure::WrongRealm => write!(f, "Digest realm is not ours"),
        }
    }
}

fn md5_hex(parts: &[&[u8]]) -> String {
    hex::encode(md5_raw(parts))
}

fn md5_raw(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    h.finalize().into()
}

/// Equality of two byte strings whose time depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// An authenticator for these users, in realm `camgate`.
    pub fn new(users: Vec<User>) -> Self {
        let realm = "camgate".to_string();
        let users = users
            .into_iter()
            .map(|u| Known {
                name_hash: md5_raw(&[u.username.as_bytes()]),
                ha1: md5_hex(&[
                    u.username.as_bytes(),
                    realm.as_bytes(),
                    u.password.as_bytes(),
                ]),
                name: u.username,
            })
            .collect();
        Authenticator {
            users,
            realm,
            offer_basic: false,
        }
    }

    /// True if no credentials are needed.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The `WWW-Authenticate` values to send with a 401 on a connection whose nonce is
    /// `nonce`; `stale` tells a client that its credentials were right for an old nonce.
    pub fn challenges(&self, nonce: &DigestNonce, stale: bool) -> Vec<String> {
        let stale = if stale { ", stale=true" } else { "" };
        let mut v = vec![format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"{stale}",
            self.realm, nonce.nonce
        )];
        if self.offer_basic {
            v.push(format!("Basic realm=\"{}\"", self.realm));
        }
        v
    }

    /// Checks a user name and password (HTTP or RTSP Basic) against every user in constant
    /// time; the user name when they match.
    pub fn check_password(&self, username: &str, password: &str) -> Option<&str> {
        let name_hash = md5_raw(&[username.as_bytes()]);
        let ha1 = md5_hex(&[
            username.as_bytes(),
            self.realm.as_bytes(),
            password.as_bytes(),
        ]);
        let mut found = None;
        for u in &self.users {
            let hit = ct_eq(&u.name_hash, &name_hash) & ct_eq(u.ha1.as_bytes(), ha1.as_bytes());
            if hit && found.is_none() {
                found = Some(u.name.as_str());
            }
        }
        found
    }

    /// Checks a request on the connection whose Digest state is `nonce`; the user name when
    /// allowed (`None` when no users are configured).
    pub fn check(
        &self,
        attempt: Attempt<'_>,
        nonce: &mut DigestNonce,
    ) -> Result<Option<String>, AuthFailure> {
        if self.is_open() {
            return Ok(None);
        }
        let Some(h) = attempt.authorization else {
            return Err(AuthFailure::Missing);
        };
        let h = h.trim();
        let (scheme, rest) = h.split_once([' ', '\t']).unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let (user, pass) = parse_basic(rest).ok_or(AuthFailure::Malformed("bad Basic"))?;
            return match self.check_password(&user, &pass) {
                Some(u) => Ok(Some(u.to_string())),
                None => Err(AuthFailure::Wrong { user }),
            };
        }
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(AuthFailure::Malformed("unknown scheme"));
        }
        self.check_digest(attempt, &parse_params(rest), nonce)
            .map(Some)
    }

    fn check_digest(
        &self,
        attempt: Attempt<'_>,
        params: &[(String, String)],
        state: &mut DigestNonce,
    ) -> Result<String, AuthFailure> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let (Some(username), Some(nonce), Some(uri), Some(response)) =
            (get("username"), get("nonce"), get("uri"), get("response"))
        else {
            return Err(AuthFailure::Malformed("missing Digest parameter"));
        };
        if let Some(alg) = get("algorithm")
            && !alg.eq_ignore_ascii_case("md5")
        {
            return Err(AuthFailure::Malformed("unsupported algorithm"));
        }
        match get("realm") {
            Some(r) if r == self.realm => {}
            Some(_) => return Err(AuthFailure::WrongRealm),
            None => return Err(AuthFailure::Malformed("missing realm")),
        }
        if !same_resource(uri, attempt.uri) {
            return Err(AuthFailure::UriMismatch {
                digest_uri: uri.chars().take(200).collect(),
            });
        }
        let response = response.to_ascii_lowercase();
        if response.len() != 32 || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthFailure::Malformed("response is not 32 hex digits"));
        }
        let qop = match (get("qop"), get("nc"), get("cnonce")) {
            (None, _, _) => None,
            (Some(q), Some(nc), Some(cnonce)) if q.eq_ignore_ascii_case("auth") => {
                let n = parse_nc(nc).ok_or(AuthFailure::Malformed("bad nonce count"))?;
                Some((q, nc, n, cnonce))
            }
            (Some(q), _, _) if !q.eq_ignore_ascii_case("auth") => {
                return Err(AuthFailure::Malformed("unsupported qop"));
            }
            _ => return Err(AuthFailure::Malformed("qop without nc and cnonce")),
        };
        let ha2 = md5_hex(&[attempt.method.as_bytes(), uri.as_bytes()]);
        let name_hash = md5_raw(&[username.as_bytes()]);
        let mut matched = None;
        for u in &self.users {
            let expected = match qop {
                Some((q, nc, _, cnonce)) => md5_hex(&[
                    u.ha1.as_bytes(),
                    nonce.as_bytes(),
                    nc.as_bytes(),
                    cnonce.as_bytes(),
                    q.as_bytes(),
                    ha2.as_bytes(),
                ]),
                None => md5_hex(&[u.ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
            };
            let hit =
                ct_eq(&u.name_hash, &name_hash) & ct_eq(expected.as_bytes(), response.as_bytes());
            if hit && matched.is_none() {
                matched = Some(u.name.clone());
            }
        }
        let Some(user) = matched else {
            return Err(AuthFailure::Wrong {
                user: username.chars().take(64).collect(),
            });
        };
        if !ct_eq(nonce.as_bytes(), state.nonce.as_bytes()) {
            return Err(AuthFailure::Stale);
        }
        if let Some((_, _, n, _)) = qop {
            if n <= state.last_nc {
                return Err(AuthFailure::Replayed { user });
            }
            state.last_nc = n;
        }
        Ok(user)
    }
}

/// `user:password` from a Basic credential.
pub fn parse_basic(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The 8-hex-digit nonce count; 0 is not a valid count.
fn parse_nc(nc: &str) -> Option<u32> {
    if nc.is_empty() || nc.len() > 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(nc, 16).ok().filter(|&n| n > 0)
}

/// The resource a URI names: its path and query, without scheme and authority, without a
/// trailing `/` and without a per-track `trackID=N` segment (clients put it at the end of the
/// path or after the query).
fn resource(uri: &str) -> (&str, &str) {
    let mut s = uri.trim();
    if let Some(i) = s.find("://") {
        let after = &s[i + 3..];
        s = match after.find(['/', '?']) {
            Some(j) => &after[j..],
            None => "",
        };
    }
    let (path, query) = s.split_once('?').unwrap_or((s, ""));
    (without_track(path), without_track(query))
}

/// `s` without a trailing `trackID=N` segment and trailing separators.
fn without_track(s: &str) -> &str {
    let s = s.trim_end_matches('/');
    let s = match s.rfind("trackID=") {
        Some(i)
            if s[i + "trackID=".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit()) =>
        {
            &s[..i]
        }
        _ => s,
    };
    s.trim_end_matches(['/', '&'])
}

/// Whether a Digest `uri` names the resource the request names. Clients put the exact
/// request-URI there; some use the aggregate URL for a track's request, or the path alone.
fn same_resource(digest_uri: &str, request_uri: &str) -> bool {
    resource(digest_uri) == resource(request_uri)
}

/// Parses `k=v, k2="v 2"` parameter lists (quoted values may hold `\"`). Total over any input.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() && out.len() < 32 {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(vec![
            User {
                username: "viewer".into(),
                password: "other".into(),
            },
            User {
                username: "admin".into(),
                password: "secret".into(),
            },
        ])
    }

    /// A Digest header as ffmpeg makes it (qop=auth with a count) or as GStreamer and live555
    /// make it (no qop).
    fn digest(nonce: &str, method: &str, uri: &str, password: &str, nc: Option<u32>) -> String {
        let ha1 = md5_hex(&[b"admin", b"camgate", password.as_bytes()]);
        let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
        match nc {
            Some(nc) => {
                let nc = format!("{nc:08x}");
                let resp = md5_hex(&[
                    ha1.as_bytes(),
                    nonce.as_bytes(),
                    nc.as_bytes(),
                    b"0a4f113b",
                    b"auth",
                    ha2.as_bytes(),
                ]);
                format!(
                    "Digest username=\"admin\", realm=\"camgate\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=\"MD5\", qop=auth, nc={nc}, cnonce=\"0a4f113b\""
                )
            }
            None => {
                let resp = md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]);
                format!(
                    "Digest username=\"admin\", realm=\"camgate\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\""
                )
            }
        }
    }

    fn attempt<'a>(method: &'a str, uri: &'a str, h: &'a str) -> Attempt<'a> {
        Attempt {
            method,
            uri,
            authorization: Some(h),
        }
    }

    #[test]
    fn digest_with_right_password_is_accepted() {
        let a = auth();
        let mut n = DigestNonce::new();
        let uri = "rtsp://127.0.0.1:8554/cam";
        let h = digest(n.as_str(), "DESCRIBE", uri, "secret", None);
        assert_eq!(
            a.check(attempt("DESCRIBE", uri, &h), &mut n),
            Ok(Some("admin".into()))
        );
    }

    #[test]
    fn digest_with_wrong_password_or_method_is_refused() {
        let a = auth();
        let mut n = DigestNonce::new();
        let uri = "rtsp://x/cam";
        let h = digest(n.as_str(), "DESCRIBE", uri, "nope", None);
        assert_eq!(
            a.check(attempt("DESCRIBE", uri, &h), &mut n),
            Err(AuthFailure::Wrong {
                user: "admin".into()
            })
        );
        let h = digest(n.as_str(), "DESCRIBE", uri, "secret", None);
        assert!(matches!(
            a.check(attempt("PLAY", uri, &h), &mut n),
            Err(AuthFailure::Wrong { .. })
        ));
    }

    #[test]
    fn digest_from_another_connection_is_stale() {
        let a = auth();
        let mut first = DigestNonce::new();
        let mut second = DigestNonce::new();
        let uri = "rtsp://x/cam";
        let h = digest(first.as_str(), "DESCRIBE", uri, "secret", None);
        assert!(a.check(attempt("DESCRIBE", uri, &h), &mut first).is_ok());
        assert_eq!(
            a.check(attempt("DESCRIBE", uri, &h), &mut second),
            Err(AuthFailure::Stale)
        );
        assert!(a.challenges(&second, true)[0].contains("stale=true"));
    }

    #[test]
    fn digest_for_another_stream_is_refused() {
        let a = auth();
        let mut n = DigestNonce::new();
        let h = digest(n.as_str(), "DESCRIBE", "rtsp://x/cam1", "secret", None);
        assert_eq!(
            a.check(attempt("DESCRIBE", "rtsp://x/cam2", &h), &mut n),
            Err(AuthFailure::UriMismatch {
                digest_uri: "rtsp://x/cam1".into()
            })
        );
    }

    #[test]
    fn digest_uri_may_be_the_aggregate_or_the_path() {
        let a = auth();
        let mut n = DigestNonce::new();
        let h = digest(n.as_str(), "SETUP", "rtsp://x/cam/", "secret", None);
        assert!(
            a.check(attempt("SETUP", "rtsp://x/cam/trackID=1", &h), &mut n)
                .is_ok()
        );
        let h = digest(n.as_str(), "PLAY", "/cam", "secret", None);
        assert!(
            a.check(attempt("PLAY", "rtsp://x:8554/cam/", &h), &mut n)
                .is_ok()
        );
        assert!(same_resource("rtsp://h/a?x=1/trackID=0", "rtsp://h/a?x=1"));
        // ffmpeg's request line and its Digest uri put the track on either side of the query.
        assert!(same_resource(
            "rtsp://h:1/cam/realmonitor?channel=1&subtype=0/trackID=0",
            "rtsp://h:1/cam/realmonitor/trackID=0?channel=1&subtype=0"
        ));
        assert!(!same_resource(
            "rtsp://h/a?channel=1",
            "rtsp://h/a?channel=2"
        ));
        assert!(!same_resource("rtsp://h/cam1/trackID=0", "rtsp://h/cam2"));
    }

    #[test]
    fn digest_realm_must_be_ours() {
        let a = auth();
        let mut n = DigestNonce::new();
        let uri = "rtsp://x/cam";
        let h = digest(n.as_str(), "DESCRIBE", uri, "secret", None)
            .replace("realm=\"camgate\"", "realm=\"other\"");
        assert_eq!(
            a.check(attempt("DESCRIBE", uri, &h), &mut n),
            Err(AuthFailure::WrongRealm)
        );
    }

    #[test]
    fn qop_nonce_count_must_grow() {
        let a = auth();
        let mut n = DigestNonce::new();
        let uri = "rtsp://x/cam";
        let h1 = digest(n.as_str(), "DESCRIBE", uri, "secret", Some(1));
        let h2 = digest(n.as_str(), "DESCRIBE", uri, "secret", Some(2));
        assert!(a.check(attempt("DESCRIBE", uri, &h1), &mut n).is_ok());
        assert!(a.check(attempt("DESCRIBE", uri, &h2), &mut n).is_ok());
        assert_eq!(
            a.check(attempt("DESCRIBE", uri, &h2), &mut n),
            Err(AuthFailure::Replayed {
                user: "admin".into()
            })
        );
        assert_eq!(
            a.check(attempt("DESCRIBE", uri, &h1), &mut n),
            Err(AuthFailure::Replayed {
                user: "admin".into()
            })
        );
    }

    #[test]
    fn multibyte_nonce_is_refused_not_a_panic() {
        let a = auth();
        let mut n = DigestNonce::new();
        let h = "Digest username=\"admin\", realm=\"camgate\", nonce=\"€€€€€€€€\", uri=\"rtsp://x/cam\", response=\"0123456789abcdef0123456789abcdef\"";
        assert!(matches!(
            a.check(attempt("DESCRIBE", "rtsp://x/cam", h), &mut n),
            Err(AuthFailure::Wrong { .. })
        ));
    }

    #[test]
    fn basic_is_checked_against_every_user() {
        let a = auth();
        let mut n = DigestNonce::new();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ok = format!("Basic {}", b64("admin:secret"));
        let ok2 = format!("Basic {}", b64("viewer:other"));
        let bad = format!("Basic {}", b64("admin:other"));
        assert_eq!(
            a.check(attempt("PLAY", "rtsp://x/a", &ok), &mut n),
            Ok(Some("admin".into()))
        );
        assert_eq!(
            a.check(attempt("PLAY", "rtsp://x/a", &ok2), &mut n),
            Ok(Some("viewer".into()))
        );
        assert!(matches!(
            a.check(attempt("PLAY", "rtsp://x/a", &bad), &mut n),
            Err(AuthFailure::Wrong { .. })
        ));
        let missing = Attempt {
            method: "PLAY",
            uri: "rtsp://x/a",
            authorization: None,
        };
        assert_eq!(a.check(missing, &mut n), Err(AuthFailure::Missing));
        assert!(matches!(
            a.check(attempt("PLAY", "rtsp://x/a", "Bearer x"), &mut n),
            Err(AuthFailure::Malformed(_))
        ));
    }

    #[test]
    fn no_users_means_open() {
        let missing = Attempt {
            method: "PLAY",
            uri: "rtsp://x/a",
            authorization: None,
        };
        assert_eq!(
            Authenticator::new(vec![]).check(missing, &mut DigestNonce::new()),
            Ok(None)
        );
    }

    #[test]
    fn params_take_escaped_quotes() {
        let p = parse_params(r#"username="a\"b", realm=camgate,nonce="x,y""#);
        assert_eq!(p[0], ("username".into(), "a\"b".into()));
        assert_eq!(p[1], ("realm".into(), "camgate".into()));
        assert_eq!(p[2], ("nonce".into(), "x,y".into()));
    }
}
