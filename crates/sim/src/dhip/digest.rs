//! HTTP Digest for the device's CGI endpoints (`/cgi-bin/snapshot.cgi`,
//! `/cgi-bin/RPC_Loadfile…`): the nonces the device issued and the `WWW-Authenticate`
//! challenge with the device realm. The check of an `Authorization` header is the protocol
//! crate's (`dhip::digest::verify`).

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
            hex::encode(Md5::digest(self.realm.as_bytes()))
        )
    }

    /// Whether `authorization` proves `user`/`password` for `method` with a nonce we issued.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        method: &str,
        user: &str,
        password: &str,
    ) -> bool {
        let issued = |nonce: &str| self.nonces.iter().any(|n| n == nonce);
        dhip::digest::verify(authorization, &self.realm, issued, method, user, password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhip::digest::Challenge;
    use rand::SeedableRng;

    #[test]
    fn an_answer_to_our_challenge_passes_and_others_fail() {
        let mut d = DigestAuth::new("Login to X");
        let ch = Challenge::parse(&d.challenge(&mut StdRng::seed_from_u64(1))).unwrap();
        assert!(ch.qop_auth);
        let uri = "/cgi-bin/snapshot.cgi?channel=1";
        let h = ch.authorization("admin", "pw", "GET", uri, 1, "abc");
        assert!(d.verify(Some(&h), "GET", "admin", "pw"));
        assert!(!d.verify(Some(&h), "GET", "admin", "other"));
        assert!(!d.verify(Some(&h.replace(&ch.nonce, "0000")), "GET", "admin", "pw"));
        assert!(!d.verify(None, "GET", "admin", "pw"));
    }
}
