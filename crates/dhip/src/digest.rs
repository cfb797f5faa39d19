//! HTTP Digest authentication (RFC 2617, MD5, `qop=auth` or none), as the device's CGI
//! endpoints (`snapshot.cgi`, `/cgi-bin/RPC_Loadfile`) use it: the client's answer to a
//! `WWW-Authenticate` challenge and the server's check of an `Authorization` header.

use md5::{Digest, Md5};

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// Splits `key=value, key="quoted value"` lists (the part after `Digest `).
pub fn fields(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .trim()
            .trim_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        out.push((key, value.to_string()));
        rest = tail.trim_start().trim_start_matches(',');
    }
    out
}

fn get<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// A `WWW-Authenticate: Digest ...` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// True when the server offers `qop=auth`.
    pub qop_auth: bool,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value; `None` if it is not a Digest challenge.
    pub fn parse(header: &str) -> Option<Challenge> {
        let h = header.trim();
        let rest = h.get(..7).filter(|p| p.eq_ignore_ascii_case("digest "))?;
        let f = fields(&h[rest.len()..]);
        Some(Challenge {
            realm: get(&f, "realm")?.to_string(),
            nonce: get(&f, "nonce")?.to_string(),
            opaque: get(&f, "opaque").map(str::to_owned),
            qop_auth: get(&f, "qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth")),
        })
    }

    /// The `Authorization` value for `method` on `uri` (request counter `nc`, client nonce
    /// `cnonce`).
    pub fn authorization(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let ha1 = md5_hex(&format!("{user}:{}:{password}", self.realm));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let mut h = format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\"",
            self.realm, self.nonce
        );
        if self.qop_auth {
            let nc = format!("{nc:08x}");
            let resp = md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce));
            h.push_str(&format!(
                ", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{resp}\""
            ));
        } else {
            let resp = md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce));
            h.push_str(&format!(", response=\"{resp}\""));
        }
        if let Some(o) = &self.opaque {
            h.push_str(&format!(", opaque=\"{o}\""));
        }
        h.push_str(", algorithm=MD5");
        h
    }
}

/// The server's check of an `Authorization: Digest ...` header for `realm`: user name,
/// realm, a nonce the server issued (`nonce_ok`), and the response (with or without
/// `qop=auth`).
pub fn verify(
    authorization: Option<&str>,
    realm: &str,
    nonce_ok: impl Fn(&str) -> bool,
    method: &str,
    user: &str,
    password: &str,
) -> bool {
    let Some(h) = authorization.map(str::trim) else {
        return false;
    };
    let Some(prefix) = h.get(..7).filter(|p| p.eq_ignore_ascii_case("digest ")) else {
        return false;
    };
    let f = fields(&h[prefix.len()..]);
    let (Some(name), Some(nonce), Some(uri), Some(response)) = (
        get(&f, "username"),
        get(&f, "nonce"),
        get(&f, "uri"),
        get(&f, "response"),
    ) else {
        return false;
    };
    if name != user || get(&f, "realm") != Some(realm) || !nonce_ok(nonce) {
        return false;
    }
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let want = match (get(&f, "qop"), get(&f, "nc"), get(&f, "cnonce")) {
        (Some("auth"), Some(nc), Some(cnonce)) => {
            md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
        }
        (None, _, _) => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
        _ => return false,
    };
    want.eq_ignore_ascii_case(response)
}
