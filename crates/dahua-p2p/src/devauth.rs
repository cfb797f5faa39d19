//! Type-1 device authentication (firmware ≈2023+): proving knowledge of the camera's own user
//! name and password to the device through the cloud, and the `/info/device` blob that carries
//! the device's `RandSalt`.
//!
//! ```text
//! Key       = ASCII(UPPERHEX(MD5(User ":Login to " RandSalt ":" Password)))      (32 bytes)
//! DK(nonce) = PBKDF2-HMAC-SHA256(Key, ASCII(decimal nonce), 20000, 32)
//! Enc(x)    = Base64(AES-256-OFB(DK(nonce), IV "2z52*lk9o6HRyJrf", x))
//! DevAuth   = Base64(HMAC-SHA256(Key, decimal nonce || decimal CreateDate || payload))
//! ```
//!
//! In a p2p-channel request the payload is the *encrypted* `LocalAddr`; in a relay-channel
//! request it is empty. DK costs 20 000 HMAC rounds, so derived keys are kept in a small
//! process-wide cache keyed by (Key, nonce): the client and an in-process simulator that use the
//! same nonce derive it once.

use std::sync::Mutex;

use aes::Aes256;
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use md5::Md5;
use ofb::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::xmlbody::XmlBody;

/// The `RandSalt` older firmware accepts from any client (dh-p2p's constant).
pub const DEFAULT_RAND_SALT: &str = "5daf91fc5cfc1be8e081cfb08f792726";

/// The IV of `Enc`/`Dec` (`PROXY_AES_DEVAUTH_IV` in the EasyViewer library).
pub const DEVAUTH_IV: &[u8; 16] = b"2z52*lk9o6HRyJrf";

/// The AES-256 key of the `/info/device` `<Info>` blob (`PROXY_AES_DEVINFO_KEY`).
pub const INFO_KEY: &[u8; 32] = b"kRjmsUB&ezmdGLL67H#$ojw@XflcaIaf";

/// The IV of the `/info/device` `<Info>` blob (`PROXY_AES_DEVINFO_IV`).
pub const INFO_IV: &[u8; 16] = b"MydvJw*Iw1w&i^kk";

/// PBKDF2 iterations of DK.
pub const DK_ITERATIONS: u32 = 20_000;

/// Derived keys kept in the process-wide cache.
const DK_CACHE_ENTRIES: usize = 64;

type Aes256Ofb = ofb::Ofb<Aes256>;
type HmacSha256 = Hmac<Sha256>;
/// Cache entries: ((Key, nonce), DK).
type DkCache = Vec<(([u8; 32], i64), [u8; 32])>;

/// Base64 that accepts input with or without `=` padding.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Device-auth input that cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DevAuthError {
    /// A value that should be Base64 is not.
    #[error("{what} is not Base64: {text:?}")]
    BadBase64 { what: &'static str, text: String },
    /// Decrypted bytes are not UTF-8 text (usually: the wrong key, salt or nonce).
    #[error("decrypted {what} is not text (wrong password, salt or nonce?): {excerpt}")]
    NotText { what: &'static str, excerpt: String },
    /// The decrypted `/info/device` blob is not JSON.
    #[error("decrypted device info is not JSON ({error}): {text:?}")]
    BadJson { error: String, text: String },
    /// An element the auth block needs is missing.
    #[error("auth block has no <{0}>")]
    Missing(&'static str),
    /// An element that should be a decimal integer is not.
    #[error("auth block <{field}> is not an integer: {text:?}")]
    BadNumber { field: &'static str, text: String },
}

/// `Key`: 32 ASCII bytes, the uppercase hex MD5 of `User:Login to RandSalt:Password`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceKey([u8; 32]);

impl std::fmt::Debug for DeviceKey {
    /// Keeps the key out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(…)")
    }
}

impl DeviceKey {
    /// Derives `Key` from the device's user name, password and `RandSalt`.
    pub fn derive(user: &str, password: &str, rand_salt: &str) -> Self {
        let mut h = Md5::new();
        for part in [user, ":Login to ", rand_salt, ":", password] {
            h.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        hex::encode_to_slice(h.finalize(), &mut out).expect("16 bytes fit 32 hex digits");
        out.make_ascii_uppercase();
        DeviceKey(out)
    }

    /// The key as its 32 hex characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }

    /// `DK(nonce)`, from the process-wide cache when it was derived before.
    pub fn dk(&self, nonce: i64) -> [u8; 32] {
        static CACHE: Mutex<DkCache> = Mutex::new(Vec::new());
        let id = (self.0, nonce);
        if let Ok(cache) = CACHE.lock()
            && let Some((_, dk)) = cache.iter().find(|(k, _)| *k == id)
        {
            return *dk;
        }
        let mut dk = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            &self.0,
            nonce.to_string().as_bytes(),
            DK_ITERATIONS,
            &mut dk,
        );
        if let Ok(mut cache) = CACHE.lock() {
            if cache.len() >= DK_CACHE_ENTRIES {
                cache.remove(0);
            }
            cache.push((id, dk));
        }
        dk
    }

    /// `Enc(plaintext)` with `DK(nonce)`.
    pub fn encrypt(&self, nonce: i64, plaintext: &str) -> String {
        let mut buf = plaintext.as_bytes().to_vec();
        Aes256Ofb::new(&self.dk(nonce).into(), DEVAUTH_IV.into()).apply_keystream(&mut buf);
        B64.encode(buf)
    }

    /// Decrypts an `Enc`'ed value (e.g. the device's `LocalAddr`) with `DK(nonce)`.
    pub fn decrypt(&self, nonce: i64, b64: &str) -> Result<String, DevAuthError> {
        let mut buf = decode_b64("encrypted value", b64)?;
        Aes256Ofb::new(&self.dk(nonce).into(), DEVAUTH_IV.into()).apply_keystream(&mut buf);
        String::from_utf8(buf).map_err(|e| DevAuthError::NotText {
            what: "value",
            excerpt: text::hex_excerpt(e.as_bytes()),
        })
    }

    /// `DevAuth` over `nonce || create_date || payload`.
    pub fn dev_auth(&self, nonce: i64, create_date: i64, payload: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(nonce.to_string().as_bytes());
        mac.update(create_date.to_string().as_bytes());
        mac.update(payload.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }
}

/// The device's login: what type-1 auth proves knowledge of.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DeviceCredentials {
    /// Device user name (as for RTSP/web login).
    pub user: String,
    /// Device password.
    pub password: String,
    /// The device's `RandSalt` ([`DEFAULT_RAND_SALT`] for older firmware).
    pub rand_salt: String,
}

impl std::fmt::Debug for DeviceCredentials {
    /// Keeps the password out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCredentials")
            .field("user", &self.user)
            .field("rand_salt", &self.rand_salt)
            .finish_non_exhaustive()
    }
}

impl DeviceCredentials {
    /// Credentials with the default `RandSalt`.
    pub fn new(user: &str, password: &str) -> Self {
        Self::with_salt(user, password, DEFAULT_RAND_SALT)
    }

    /// Credentials with a device-specific `RandSalt` (from `/info/device`).
    pub fn with_salt(user: &str, password: &str, rand_salt: &str) -> Self {
        DeviceCredentials {
            user: user.to_owned(),
            password: password.to_owned(),
            rand_salt: rand_salt.to_owned(),
        }
    }

    /// `Key` for these credentials.
    pub fn key(&self) -> DeviceKey {
        DeviceKey::derive(&self.user, &self.password, &self.rand_salt)
    }

    /// Signs `payload` into an auth block.
    pub fn auth_block(&self, nonce: i64, create_date: i64, payload: &str) -> AuthBlock {
        AuthBlock {
            create_date,
            dev_auth: self.key().dev_auth(nonce, create_date, payload),
            nonce,
            rand_salt: self.rand_salt.clone(),
            user_name: self.user.clone(),
        }
    }
}

/// The type-1 elements `CreateDate`, `DevAuth`, `Nonce`, `RandSalt`, `UserName`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthBlock {
    /// `CreateDate`: unix seconds.
    pub create_date: i64,
    /// `DevAuth`: Base64 HMAC.
    pub dev_auth: String,
    /// `Nonce`: decimal, possibly negative (DMSS).
    pub nonce: i64,
    /// `RandSalt` the key was derived with.
    pub rand_salt: String,
    /// `UserName`: the device user.
    pub user_name: String,
}

impl AuthBlock {
    /// Appends the five elements in the order clients send them (alphabetical, which is also
    /// where they land in a key-sorted body).
    pub fn write_to(&self, body: &mut XmlBody) {
        body.push("CreateDate", self.create_date.to_string());
        body.push("DevAuth", self.dev_auth.clone());
        body.push("Nonce", self.nonce.to_string());
        body.push("RandSalt", self.rand_salt.clone());
        body.push("UserName", self.user_name.clone());
    }

    /// Reads the five elements from a body.
    pub fn from_body(body: &XmlBody) -> Result<Self, DevAuthError> {
        let get = |f: &'static str| body.get(f).ok_or(DevAuthError::Missing(f));
        let int = |f: &'static str| -> Result<i64, DevAuthError> {
            let t = get(f)?;
            t.trim().parse().map_err(|_| DevAuthError::BadNumber {
                field: f,
                text: t.to_owned(),
            })
        };
        Ok(AuthBlock {
            create_date: int("CreateDate")?,
            dev_auth: get("DevAuth")?.to_owned(),
            nonce: int("Nonce")?,
            rand_salt: get("RandSalt")?.to_owned(),
            user_name: get("UserName")?.to_owned(),
        })
    }
}

/// Which check a received auth block failed (the simulator's device side).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AuthCheckFailure {
    /// The request carried no auth block at all.
    #[error("no device auth block (type-1 device)")]
    Missing,
    /// `RandSalt` is not the device's.
    #[error("RandSalt {got:?} is not the device's")]
    WrongSalt { got: String },
    /// `UserName` is not a user of the device.
    #[error("unknown device user {got:?}")]
    UnknownUser { got: String },
    /// `DevAuth` does not match (wrong password, or the plaintext was signed).
    #[error("DevAuth mismatch for user {user:?} (wrong password?)")]
    BadDevAuth { user: String },
}

impl AuthCheckFailure {
    /// The `<Error>` text (and DMSS status reason) the cloud answers a 403 with: a missing
    /// block or foreign salt is `DevPwd_InvalidSalt`, the rest `DevPwd_InvalidDigest` \[U: which
    /// of the two the real cloud uses for a wrong user name is not known].
    pub fn cloud_error_text(&self) -> &'static str {
        match self {
            AuthCheckFailure::Missing | AuthCheckFailure::WrongSalt { .. } => "DevPwd_InvalidSalt",
            AuthCheckFailure::UnknownUser { .. } | AuthCheckFailure::BadDevAuth { .. } => {
                "DevPwd_InvalidDigest"
            }
        }
    }
}

/// Checks a received auth block against the device's credentials: salt, user, then `DevAuth`
/// over `payload` (the encrypted `LocalAddr` for p2p-channel, empty for relay-channel).
pub fn verify(
    device: &DeviceCredentials,
    block: &AuthBlock,
    payload: &str,
) -> Result<(), AuthCheckFailure> {
    if block.rand_salt != device.rand_salt {
        return Err(AuthCheckFailure::WrongSalt {
            got: block.rand_salt.clone(),
        });
    }
    if block.user_name != device.user {
        return Err(AuthCheckFailure::UnknownUser {
            got: block.user_name.clone(),
        });
    }
    let want = device
        .key()
        .dev_auth(block.nonce, block.create_date, payload);
    if want != block.dev_auth {
        return Err(AuthCheckFailure::BadDevAuth {
            user: block.user_name.clone(),
        });
    }
    Ok(())
}

/// The JSON inside `/info/device`'s `<Info>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceInfo {
    /// `randsalt`: the device's RandSalt for [`DeviceKey::derive`].
    pub rand_salt: Option<String>,
    /// `devp2pver` or `devP2PVersion`.
    pub p2p_version: Option<String>,
    /// `rtspport`.
    pub rtsp_port: Option<u16>,
    /// `httpport`.
    pub http_port: Option<u16>,
    /// The whole JSON object, for fields not listed above.
    pub json: serde_json::Value,
}

impl DeviceInfo {
    /// Reads the known fields from a JSON object. Numbers may also be written as strings.
    pub fn from_json(json: serde_json::Value) -> Self {
        let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let port = |k: &str| match json.get(k) {
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        DeviceInfo {
            rand_salt: text("randsalt"),
            p2p_version: text("devp2pver").or_else(|| text("devP2PVersion")),
            rtsp_port: port("rtspport"),
            http_port: port("httpport"),
            json,
        }
    }

    /// The JSON text a device would send: `json` with the known fields written over it.
    pub fn to_json(&self) -> String {
        let mut obj = match &self.json {
            serde_json::Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        if let Some(s) = &self.rand_salt {
            obj.insert("randsalt".into(), s.clone().into());
        }
        if let Some(s) = &self.p2p_version {
            obj.insert("devp2pver".into(), s.clone().into());
        }
        if let Some(p) = self.rtsp_port {
            obj.insert("rtspport".into(), p.into());
        }
        if let Some(p) = self.http_port {
            obj.insert("httpport".into(), p.into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

/// Decrypts an `<Info>` value: Base64, AES-256-OFB with [`INFO_KEY`]/[`INFO_IV`], trailing NULs
/// stripped, JSON.
pub fn decrypt_info(b64: &str) -> Result<DeviceInfo, DevAuthError> {
    let mut buf = decode_b64("<Info>", b64)?;
    Aes256Ofb::new(INFO_KEY.into(), INFO_IV.into()).apply_keystream(&mut buf);
    while buf.last() == Some(&0) {
        buf.pop();
    }
    let text = String::from_utf8(buf).map_err(|e| DevAuthError::NotText {
        what: "<Info>",
        excerpt: text::hex_excerpt(e.as_bytes()),
    })?;
    let json = serde_json::from_str(&text).map_err(|e| DevAuthError::BadJson {
        error: e.to_string(),
        text: text.clone(),
    })?;
    Ok(DeviceInfo::from_json(json))
}

/// Encrypts JSON text into an `<Info>` value (the simulator's US server). The text is padded
/// with NULs to a multiple of 16 bytes, which clients must strip \[U: whether real servers pad].
pub fn encrypt_info(json: &str) -> String {
    let mut buf = json.as_bytes().to_vec();
    buf.resize(buf.len().div_ceil(16) * 16, 0);
    Aes256Ofb::new(INFO_KEY.into(), INFO_IV.into()).apply_keystream(&mut buf);
    B64.encode(buf)
}

/// The device's RandSalt from an `/info/device` reply body: `<Info>`'s `randsalt`, else a
/// plain `<RandSalt>` element; `Ok(None)` when the body has neither.
pub fn rand_salt_from_info_body(body: &XmlBody) -> Result<Option<String>, DevAuthError> {
    if let Some(info) = body.get("Info")
        && let Some(salt) = decrypt_info(info)?.rand_salt
    {
        return Ok(Some(salt));
    }
    Ok(body.get("RandSalt").map(str::to_owned))
}

/// Decodes Base64 with or without padding, ignoring surrounding whitespace.
fn decode_b64(what: &'static str, text: &str) -> Result<Vec<u8>, DevAuthError> {
    B64_LENIENT
        .decode(text.trim())
        .map_err(|_| DevAuthError::BadBase64 {
            what,
            text: text.to_owned(),
        })
}
