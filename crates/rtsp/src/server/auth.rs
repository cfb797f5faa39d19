//! RTSP authentication for the server: Basic and Digest (RFC 2617, MD5, with or without qop).

use std::time::{SystemTime, UNIX_EPOCH};

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

/// Checks credentials and issues challenges. With no users, everything is allowed.
#[derive(Clone, Debug)]
pub struct Authenticator {
    users: Vec<User>,
    realm: String,
    secret: [u8; 16],
    /// Also offer Basic in the challenge (Digest is always offered).
    pub offer_basic: bool,
}

/// How long a Digest nonce stays valid.
const NONCE_LIFETIME_S: u64 = 600;

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authenticator {
    /// An authenticator for these users.
    pub fn new(users: Vec<User>) -> Self {
        Authenticator {
            users,
            realm: "camgate".into(),
            secret: rand::random(),
            offer_basic: false,
        }
    }

    /// True if no credentials are needed.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    fn nonce_at(&self, t: u64) -> String {
        let sig = md5_hex(&[&self.secret, t.to_string().as_bytes()]);
        format!("{t:x}{}", &sig[..16])
    }

    fn nonce_valid(&self, nonce: &str) -> bool {
        if nonce.len() <= 16 {
            return false;
        }
        let (t_hex, _) = nonce.split_at(nonce.len() - 16);
        let Ok(t) = u64::from_str_radix(t_hex, 16) else {
            return false;
        };
        self.nonce_at(t) == nonce && now_s().saturating_sub(t) <= NONCE_LIFETIME_S
    }

    /// The `WWW-Authenticate` values to send with a 401.
    pub fn challenges(&self) -> Vec<String> {
        let mut v = vec![format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5",
            self.realm,
            self.nonce_at(now_s())
        )];
        if self.offer_basic {
            v.push(format!("Basic realm=\"{}\"", self.realm));
        }
        v
    }

    /// Checks an `Authorization` header for `method`; returns the user name when allowed.
    pub fn check(
        &self,
        method: &str,
        authorization: Option<&str>,
    ) -> Result<Option<String>, AuthFailure> {
        if self.is_open() {
            return Ok(None);
        }
        let Some(h) = authorization else {
            return Err(AuthFailure::Missing);
        };
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| AuthFailure::Malformed)?;
            let decoded = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
            let (u, p) = decoded.split_once(':').ok_or(AuthFailure::Malformed)?;
            return self
                .users
                .iter()
                .find(|x| x.username == u && x.password == p)
                .map(|x| Some(x.username.clone()))
                .ok_or(AuthFailure::Wrong);
        }
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(AuthFailure::Malformed);
        }
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let (Some(username), Some(nonce), Some(uri), Some(response)) =
            (get("username"), get("nonce"), get("uri"), get("response"))
        else {
            return Err(AuthFailure::Malformed);
        };
        if !self.nonce_valid(nonce) {
            return Err(AuthFailure::Stale);
        }
        let Some(user) = self.users.iter().find(|x| x.username == username) else {
            return Err(AuthFailure::Wrong);
        };
        let ha1 = md5_hex(&[
            user.username.as_bytes(),
            self.realm.as_bytes(),
            user.password.as_bytes(),
        ]);
        let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
        let expected = match (get("qop"), get("nc"), get("cnonce")) {
            (Some(qop), Some(nc), Some(cnonce)) => md5_hex(&[
                ha1.as_bytes(),
                nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                qop.as_bytes(),
                ha2.as_bytes(),
            ]),
            _ => md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
        };
        if expected.eq_ignore_ascii_case(response) {
            Ok(Some(user.username.clone()))
        } else {
            Err(AuthFailure::Wrong)
        }
    }
}

/// Why a request was not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Unparseable header or unknown scheme.
    Malformed,
    /// Unknown user or wrong password.
    Wrong,
    /// A Digest nonce we did not issue or that expired.
    Stale,
}

/// Parses `k=v, k2="v 2"` parameter lists.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(stripped) = rest.strip_prefix('"') {
            let end = stripped.find('"').unwrap_or(stripped.len());
            value = stripped[..end].to_string();
            rest = stripped.get(end + 1..).unwrap_or("");
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
        Authenticator::new(vec![User {
            username: "admin".into(),
            password: "secret".into(),
        }])
    }

    fn digest_header(a: &Authenticator, method: &str, uri: &str, password: &str) -> String {
        let challenge = &a.challenges()[0];
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let ha1 = md5_hex(&[b"admin", b"camgate", password.as_bytes()]);
        let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
        let resp = md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]);
        format!(
            "Digest username=\"admin\", realm=\"camgate\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\""
        )
    }

    #[test]
    fn digest_with_right_password_is_accepted() {
        let a = auth();
        let h = digest_header(&a, "DESCRIBE", "rtsp://127.0.0.1:8554/cam", "secret");
        assert_eq!(a.check("DESCRIBE", Some(&h)), Ok(Some("admin".into())));
    }

    #[test]
    fn digest_with_wrong_password_or_method_is_refused() {
        let a = auth();
        let h = digest_header(&a, "DESCRIBE", "rtsp://x/cam", "nope");
        assert_eq!(a.check("DESCRIBE", Some(&h)), Err(AuthFailure::Wrong));
        let h = digest_header(&a, "DESCRIBE", "rtsp://x/cam", "secret");
        assert_eq!(a.check("PLAY", Some(&h)), Err(AuthFailure::Wrong));
    }

    #[test]
    fn digest_with_forged_nonce_is_stale() {
        let a = auth();
        let h =
            "Digest username=\"admin\", nonce=\"12345678901234567890\", uri=\"x\", response=\"0\"";
        assert_eq!(a.check("DESCRIBE", Some(h)), Err(AuthFailure::Stale));
    }

    #[test]
    fn basic_is_checked() {
        let a = auth();
        let ok = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:secret")
        );
        let bad = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:x")
        );
        assert_eq!(a.check("PLAY", Some(&ok)), Ok(Some("admin".into())));
        assert_eq!(a.check("PLAY", Some(&bad)), Err(AuthFailure::Wrong));
        assert_eq!(a.check("PLAY", None), Err(AuthFailure::Missing));
        assert_eq!(
            a.check("PLAY", Some("Bearer x")),
            Err(AuthFailure::Malformed)
        );
    }

    #[test]
    fn no_users_means_open() {
        assert_eq!(Authenticator::new(vec![]).check("PLAY", None), Ok(None));
    }
}
