//! HTTP Digest authentication (RFC 2617, MD5, `qop=auth`) for the device's CGI endpoints
//! (`/cgi-bin/snapshot.cgi`, `/cgi-bin/RPC_Loadfile…`): issues nonces, builds the
//! `WWW-Authenticate` challenge with the device realm, and checks `Authorization` headers.

use std::collections::VecDeque;

use md5::{Digest, Md5};
use rand::Rng;
use rand::rngs::StdRng;

/// Most outstanding nonces remembered.
const MAX_NONCES: usize = 256;

/// The Digest state of one device.
#[derive(Debug)]
pub struct DigestAuth {
    realm: String,
    nonces: VecDeque<String>,
}

fn md5_lower_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// The `key="value"` pairs after `Digest `.
fn fields(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.trim();
    while let Some(eq) = chars.find('=') {
        let key = chars[..eq]
            .trim()
            .trim_matches(',')
            .trim()
            .to_ascii_lowercase();
        let rest = chars[eq + 1..].trim_start();
        let (value, tail) = if let Some(q) = rest.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            (rest[..end].trim(), &rest[end..])
        };
        out.push((key, value.to_owned()));
        chars = tail.trim_start().trim_start_matches(',');
    }
    out
}

impl DigestAuth {
    /// Digest auth in `realm`.
    pub fn new(realm: &str) -> Self {
        DigestAuth {
            realm: realm.to_owned(),
            nonces: VecDeque::new(),
        }
    }

    /// A fresh `WWW-Authenticate` value.
    pub fn challenge(&mut self, rng: &mut StdRng) -> String {
        let nonce: String = (0..32)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect();
        if self.nonces.len() >= MAX_NONCES {
            self.nonces.pop_front();
        }
        self.nonces.push_back(nonce.clone());
        format!(
            "Digest realm=\"{}\", qop=\"auth\", nonce=\"{nonce}\", opaque=\"{}\"",
            self.realm,
            md5_lower_hex(&self.realm)
        )
    }

    /// Whether `authorization` proves `user`/`password` for `method` on `uri` with a nonce we
    /// issued.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        method: &str,
        user: &str,
        password: &str,
    ) -> bool {
        let Some(h) = authorization else {
            return false;
        };
        let Some(rest) = h
            .trim()
            .strip_prefix("Digest ")
            .or_else(|| h.trim().strip_prefix("digest "))
        else {
            return false;
        };
        let f = fields(rest);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(name), Some(nonce), Some(uri), Some(response)) =
            (get("username"), get("nonce"), get("uri"), get("response"))
        else {
            return false;
        };
        if name != user
            || get("realm") != Some(self.realm.as_str())
            || !self.nonces.iter().any(|n| n == nonce)
        {
            return false;
        }
        let ha1 = md5_lower_hex(&format!("{user}:{}:{password}", self.realm));
        let ha2 = md5_lower_hex(&format!("{method}:{uri}"));
        let want = match (get("qop"), get("nc"), get("cnonce")) {
            (Some("auth"), Some(nc), Some(cnonce)) => {
                md5_lower_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
            }
            (None, _, _) => md5_lower_hex(&format!("{ha1}:{nonce}:{ha2}")),
            _ => return false,
        };
        want.eq_ignore_ascii_case(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_correct_qop_auth_response_passes_and_a_wrong_one_fails() {
        let mut d = DigestAuth::new("Login to X");
        let ch = d.challenge(&mut StdRng::seed_from_u64(1));
        let nonce = fields(ch.strip_prefix("Digest ").unwrap())
            .into_iter()
            .find(|(k, _)| k == "nonce")
            .unwrap()
            .1;
        let ha1 = md5_lower_hex("admin:Login to X:pw");
        let ha2 = md5_lower_hex("GET:/cgi-bin/snapshot.cgi?channel=1");
        let resp = md5_lower_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        let h = format!(
            "Digest username=\"admin\", realm=\"Login to X\", nonce=\"{nonce}\", \
             uri=\"/cgi-bin/snapshot.cgi?channel=1\", qop=auth, nc=00000001, cnonce=\"abc\", \
             response=\"{resp}\""
        );
        assert!(d.verify(Some(&h), "GET", "admin", "pw"));
        assert!(!d.verify(Some(&h), "GET", "admin", "other"));
        assert!(!d.verify(Some(&h.replace(&nonce, "0000")), "GET", "admin", "pw"));
        assert!(!d.verify(None, "GET", "admin", "pw"));
    }
}
