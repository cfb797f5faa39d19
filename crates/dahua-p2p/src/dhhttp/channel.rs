//! The bodies of the p2p-channel exchange, both ways: the client's `/device/{SN}/p2p-channel`
//! request (type 0, or type 1 with device authentication) and the `200 Server Nat Info!`
//! answer, for the client and for the cloud simulator.
//!
//! Type 0: `Identify`, `IpEncrpt`, `LocalAddr` (octets inverted when `IpEncrpt` is true),
//! `version`. Type 1: the auth block, `Identify`, `IpEncrptV2=true`, `LocalAddr` = `Enc` of the
//! address list with DK(nonce), `version`; `DevAuth` signs the *encrypted* `LocalAddr` (signing
//! the plaintext is rejected by devices). A type-1 answer carries its own `Nonce`, and its
//! `LocalAddr` is encrypted with DK of that nonce.

use std::net::SocketAddrV4;

use thiserror::Error;

use crate::addr::{AddrError, Aid, IdentifyStyle, LocalAddrList};
use crate::devauth::{AuthBlock, AuthCheckFailure, DevAuthError, DeviceCredentials, DeviceKey};
use crate::xmlbody::XmlBody;

/// A p2p-channel body that cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ChannelError {
    /// A required element is absent.
    #[error("p2p-channel body has no <{0}>")]
    Missing(&'static str),
    /// `Identify` or `LocalAddr` is malformed.
    #[error(transparent)]
    Addr(#[from] AddrError),
    /// The auth block or an encrypted value is malformed.
    #[error(transparent)]
    DevAuth(#[from] DevAuthError),
    /// An encrypted `LocalAddr` arrived but no device credentials were given to decrypt it.
    #[error("LocalAddr is encrypted (type 1) but no device credentials are configured")]
    NeedsCredentials,
    /// `Nonce` is not an integer.
    #[error("bad <Nonce> {0:?}")]
    BadNonce(String),
}

/// What the client tells the cloud in a p2p-channel request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P2pChannelRequest {
    /// The AID the punch will carry.
    pub aid: Aid,
    /// The client's local addresses and the local port of the device socket (S_dev).
    pub local: LocalAddrList,
    /// The `version` element (`5.0.0` for dh-p2p, `6.7.x` for SDK clients).
    pub version: String,
}

impl P2pChannelRequest {
    /// The type-0 body; with `ip_encrypt` the addresses are written with inverted octets.
    pub fn type0_body(&self, identify: IdentifyStyle, ip_encrypt: bool) -> XmlBody {
        let local = if ip_encrypt {
            self.local.ip_encrypted()
        } else {
            self.local.clone()
        };
        XmlBody::new()
            .with("Identify", self.aid.format(identify))
            .with("IpEncrpt", ip_encrypt.to_string())
            .with("LocalAddr", local.to_string())
            .with("version", self.version.clone())
    }

    /// The type-1 body: the auth block (signing the encrypted `LocalAddr`), `Identify`,
    /// `IpEncrptV2`, the encrypted `LocalAddr` and `version`.
    pub fn type1_body(
        &self,
        identify: IdentifyStyle,
        device: &DeviceCredentials,
        nonce: i64,
        create_date: i64,
    ) -> XmlBody {
        let enc = device.key().encrypt(nonce, &self.local.to_string());
        let mut body = XmlBody::new();
        device
            .auth_block(nonce, create_date, &enc)
            .write_to(&mut body);
        body.push("Identify", self.aid.format(identify));
        body.push("IpEncrptV2", "true");
        body.push("LocalAddr", enc);
        body.push("version", self.version.clone());
        body
    }
}

/// A p2p-channel request body as the cloud reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedP2pChannel {
    /// `Identify`.
    pub aid: Aid,
    /// `LocalAddr` as written (inverted or encrypted).
    pub local_addr: String,
    /// `IpEncrpt` was `true`.
    pub ip_encrypt: bool,
    /// `IpEncrptV2` was `true` (`LocalAddr` is `Enc`'ed).
    pub ip_encrypt_v2: bool,
    /// `version`.
    pub version: Option<String>,
    /// The type-1 auth block, if present.
    pub auth: Option<AuthBlock>,
}

impl ReceivedP2pChannel {
    /// Reads a request body (type 0 or 1; type 1 is recognised by `DevAuth`).
    pub fn from_body(body: &XmlBody) -> Result<Self, ChannelError> {
        let aid = Aid::parse(
            body.get("Identify")
                .ok_or(ChannelError::Missing("Identify"))?,
        )?;
        let flag = |k| {
            body.get(k)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        Ok(ReceivedP2pChannel {
            aid,
            local_addr: body
                .get("LocalAddr")
                .ok_or(ChannelError::Missing("LocalAddr"))?
                .to_owned(),
            ip_encrypt: flag("IpEncrpt"),
            ip_encrypt_v2: flag("IpEncrptV2"),
            version: body.get("version").map(str::to_owned),
            auth: match body.get("DevAuth") {
                Some(_) => Some(AuthBlock::from_body(body)?),
                None => None,
            },
        })
    }

    /// Checks the auth block against the device's credentials (`Missing` for type 0).
    pub fn verify(&self, device: &DeviceCredentials) -> Result<(), AuthCheckFailure> {
        let block = self.auth.as_ref().ok_or(AuthCheckFailure::Missing)?;
        crate::devauth::verify(device, block, &self.local_addr)
    }

    /// The client's addresses in clear: decrypted with the auth block's nonce (type 1, needs
    /// the device credentials) or with the octet inversion undone (`IpEncrpt`).
    pub fn local_addrs(
        &self,
        device: Option<&DeviceCredentials>,
    ) -> Result<LocalAddrList, ChannelError> {
        decode_local_addr(
            &self.local_addr,
            self.ip_encrypt,
            self.ip_encrypt_v2
                .then(|| self.auth.as_ref().map(|a| a.nonce)),
            device.map(DeviceCredentials::key).as_ref(),
        )
    }
}

/// The `200 Server Nat Info!` body: where the device is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerNatInfo {
    /// `Identify` (the client's AID, echoed).
    pub aid: Option<Aid>,
    /// `IpEncrpt`.
    pub ip_encrypt: bool,
    /// `LocalAddr` as written (plain, inverted, or `Enc`'ed with DK(`nonce`)).
    pub local_addr: Option<String>,
    /// `Nonce` (type 1): the nonce `LocalAddr` is encrypted with.
    pub nonce: Option<i64>,
    /// `NatValueT`.
    pub nat_value: Option<String>,
    /// `Policy`, split on commas (`p2p`, `udprelay`, `tcprelay`).
    pub policy: Vec<String>,
    /// `PubAddr`: the device's public mapping, the punch target (sometimes absent).
    pub pub_addr: Option<SocketAddrV4>,
    /// `Relay` (`:0` when unused).
    pub relay: Option<String>,
    /// `version` (`6.x`/`7.x`: 2024+ device generation).
    pub version: Option<String>,
}

impl ServerNatInfo {
    /// Reads an answer body. Unparseable `PubAddr`/`Identify` values are treated as absent.
    pub fn from_body(body: &XmlBody) -> Result<Self, ChannelError> {
        let nonce = match body.get("Nonce") {
            Some(n) => Some(
                n.trim()
                    .parse()
                    .map_err(|_| ChannelError::BadNonce(n.to_owned()))?,
            ),
            None => None,
        };
        Ok(ServerNatInfo {
            aid: body.get("Identify").and_then(|v| Aid::parse(v).ok()),
            ip_encrypt: body
                .get("IpEncrpt")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            local_addr: body.get("LocalAddr").map(str::to_owned),
            nonce,
            nat_value: body.get("NatValueT").map(str::to_owned),
            policy: body
                .get("Policy")
                .map(|p| {
                    p.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            pub_addr: body.get("PubAddr").and_then(|v| v.trim().parse().ok()),
            relay: body.get("Relay").map(str::to_owned),
            version: body.get("version").map(str::to_owned),
        })
    }

    /// Writes the body in the cloud's (key-sorted) element order.
    pub fn to_body(&self, identify: IdentifyStyle) -> XmlBody {
        let mut b = XmlBody::new();
        if let Some(aid) = self.aid {
            b.push("Identify", aid.format(identify));
        }
        b.push("IpEncrpt", self.ip_encrypt.to_string());
        if let Some(l) = &self.local_addr {
            b.push("LocalAddr", l.clone());
        }
        if let Some(v) = &self.nat_value {
            b.push("NatValueT", v.clone());
        }
        if let Some(n) = self.nonce {
            b.push("Nonce", n.to_string());
        }
        if !self.policy.is_empty() {
            b.push("Policy", self.policy.join(","));
        }
        if let Some(p) = self.pub_addr {
            b.push("PubAddr", p.to_string());
        }
        if let Some(r) = &self.relay {
            b.push("Relay", r.clone());
        }
        if let Some(v) = &self.version {
            b.push("version", v.clone());
        }
        b
    }

    /// Whether `Policy` lists this transport.
    pub fn allows(&self, policy: &str) -> bool {
        self.policy.iter().any(|p| p == policy)
    }

    /// The device's LAN addresses in clear: decrypted with DK(`Nonce`) when a `Nonce` is
    /// present (needs the device key), with the inversion undone when `IpEncrpt` is true.
    pub fn local_addrs(&self, key: Option<&DeviceKey>) -> Result<LocalAddrList, ChannelError> {
        let raw = self
            .local_addr
            .as_deref()
            .ok_or(ChannelError::Missing("LocalAddr"))?;
        decode_local_addr(raw, self.ip_encrypt, self.nonce.map(Some), key)
    }
}

/// Decodes a `LocalAddr`: `encrypted` is `Some(nonce)` for an `Enc`'ed value (`Some(None)`
/// when the nonce is unknown).
fn decode_local_addr(
    raw: &str,
    ip_encrypt: bool,
    encrypted: Option<Option<i64>>,
    key: Option<&DeviceKey>,
) -> Result<LocalAddrList, ChannelError> {
    let list = match encrypted {
        Some(nonce) => {
            let nonce = nonce.ok_or(ChannelError::Missing("Nonce"))?;
            let key = key.ok_or(ChannelError::NeedsCredentials)?;
            LocalAddrList::parse(&key.decrypt(nonce, raw)?)?
        }
        None => LocalAddrList::parse(raw)?,
    };
    Ok(if ip_encrypt {
        list.ip_encrypted()
    } else {
        list
    })
}
