//! Login: the challenge, the password transforms of each `encryption` scheme (Default digest,
//! OldDigest "gen1", Basic, Plain), the stage-1/stage-2 parameters, and what a failed login
//! means (wrong password with the attempts left, locked, blocked...). Also the check a
//! device makes, for simulators.

use std::fmt;

use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::codes;
use crate::envelope::{Response, SessionId, as_u64_lenient};

/// The client type python-dhip and the web UI send.
pub const DEFAULT_CLIENT_TYPE: &str = "Web3.0";

/// The password transform a device asks for in its challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// `MD5U(user:random:MD5U(user:realm:password))` (nearly every device).
    Default,
    /// The 8-character "gen1" hash of the password.
    OldDigest,
    /// base64 of `user:password`.
    Basic,
    /// The password itself.
    Plain,
    /// A scheme camgate does not implement.
    Other(String),
}

impl Encryption {
    /// From the challenge's `encryption` (missing or empty = Default).
    pub fn parse(s: Option<&str>) -> Encryption {
        match s.unwrap_or("") {
            "" | "Default" => Encryption::Default,
            "OldDigest" => Encryption::OldDigest,
            "Basic" => Encryption::Basic,
            "Plain" => Encryption::Plain,
            other => Encryption::Other(other.to_string()),
        }
    }

    /// The name devices use.
    pub fn name(&self) -> &str {
        match self {
            Encryption::Default => "Default",
            Encryption::OldDigest => "OldDigest",
            Encryption::Basic => "Basic",
            Encryption::Plain => "Plain",
            Encryption::Other(s) => s,
        }
    }

    /// The stage-2 `password` for this scheme, or `None` if it is not implemented.
    pub fn transform(
        &self,
        user: &str,
        password: &str,
        realm: &str,
        random: &str,
    ) -> Option<String> {
        match self {
            Encryption::Default => Some(default_hash(user, password, realm, random)),
            Encryption::OldDigest => Some(old_digest(password)),
            Encryption::Basic => {
                Some(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
            }
            Encryption::Plain => Some(password.to_string()),
            Encryption::Other(_) => None,
        }
    }
}

fn md5_upper(s: &str) -> String {
    hex::encode_upper(Md5::digest(s.as_bytes()))
}

/// The Default digest: `MD5U(user:random:MD5U(user:realm:password))`, uppercase hex.
pub fn default_hash(user: &str, password: &str, realm: &str, random: &str) -> String {
    let ha1 = md5_upper(&format!("{user}:{realm}:{password}"));
    md5_upper(&format!("{user}:{random}:{ha1}"))
}

/// The "gen1" (OldDigest) hash: each pair of MD5 bytes summed modulo 62 and mapped to
/// `0-9A-Za-z`.
pub fn old_digest(password: &str) -> String {
    Md5::digest(password.as_bytes())
        .chunks(2)
        .map(|p| {
            let v = ((u32::from(p[0]) + u32::from(p[1])) % 62) as u8;
            char::from(match v {
                0..=9 => b'0' + v,
                10..=35 => b'A' + v - 10,
                _ => b'a' + v - 36,
            })
        })
        .collect()
}

/// What the device said in its stage-1 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`, used verbatim in the hash (`Login to <salt>`).
    pub realm: String,
    /// `random`, a decimal string.
    pub random: String,
    /// The scheme.
    pub encryption: Encryption,
    /// The session the device assigned (JSON `session`, else the header's).
    pub session: Option<SessionId>,
    /// `opaque`, on newer firmware.
    pub opaque: Option<String>,
}

/// What stage 1 answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage1 {
    /// A challenge to answer.
    Challenge(Challenge),
    /// `result: true` without a realm: the device considers us logged in already.
    AlreadyAuthenticated(Option<SessionId>),
}

impl Stage1 {
    /// Reads a stage-1 reply (`header_session` is the DHIP header's, 0 over HTTP).
    pub fn from_response(r: &Response, header_session: u32) -> Result<Stage1, LoginError> {
        let session = r.session.clone().or(if header_session != 0 {
            Some(SessionId::Int(u64::from(header_session)))
        } else {
            None
        });
        let realm = r.params.get("realm").and_then(Value::as_str);
        if r.is_success() && realm.is_none() {
            return Ok(Stage1::AlreadyAuthenticated(session));
        }
        if let Some(e) = &r.error
            && !matches!(e.code, codes::LOGIN_CHALLENGE | 401)
        {
            return Err(LoginError::from_failure(r, "", 1));
        }
        let Some(realm) = realm else {
            return Err(LoginError::Protocol(format!(
                "the login challenge has no realm: {}",
                r.to_value()
            )));
        };
        let random = match r.params.get("random") {
            Some(Value::String(s)) => s.clone(),
            Some(v) if v.is_number() => v.to_string(),
            _ => {
                return Err(LoginError::Protocol(format!(
                    "the login challenge has no random: {}",
                    r.to_value()
                )));
            }
        };
        Ok(Stage1::Challenge(Challenge {
            realm: realm.to_string(),
            random,
            encryption: Encryption::parse(r.params.get("encryption").and_then(Value::as_str)),
            session,
            opaque: r
                .params
                .get("opaque")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }))
    }
}

/// Stage-1 parameters: an empty password asks for the challenge.
pub fn stage1_params(user: &str, client_type: &str) -> Value {
    json!({"userName": user, "password": "", "clientType": client_type, "loginType": "Direct"})
}

/// Stage-2 parameters answering `c` (an unimplemented scheme is an error naming it).
pub fn stage2_params(
    user: &str,
    password: &str,
    client_type: &str,
    c: &Challenge,
) -> Result<Value, LoginError> {
    let hashed = c
        .encryption
        .transform(user, password, &c.realm, &c.random)
        .ok_or_else(|| LoginError::UnsupportedScheme(c.encryption.name().to_string()))?;
    let scheme = c.encryption.name();
    Ok(json!({
        "userName": user,
        "password": hashed,
        "clientType": client_type,
        "loginType": "Direct",
        "authorityType": scheme,
        "passwordType": scheme,
        "realm": c.realm,
        "random": c.random,
    }))
}

/// The check a device makes on a stage-2 password (hash compared in uppercase; lowercase
/// accepted only when `accept_lowercase`).
pub fn verify(
    scheme: &Encryption,
    user: &str,
    stored_password: &str,
    realm: &str,
    random: &str,
    received: &str,
    accept_lowercase: bool,
) -> bool {
    let Some(want) = scheme.transform(user, stored_password, realm, random) else {
        return false;
    };
    if received == want {
        return true;
    }
    accept_lowercase
        && matches!(scheme, Encryption::Default)
        && received == want.to_ascii_lowercase()
}

/// Why a login did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user or password.
    WrongPassword {
        /// The user.
        user: String,
        /// Attempts left before the account locks, when the device says.
        attempts_left: Option<u64>,
    },
    /// The account is locked.
    Locked {
        /// The user.
        user: String,
        /// Seconds until it unlocks, when the device says.
        seconds: Option<u64>,
    },
    /// The user is blocked or in use elsewhere (the device's message).
    Refused {
        /// The user.
        user: String,
        /// The code.
        code: i64,
        /// The device's message or the code's description.
        message: String,
    },
    /// The device asks for a password scheme camgate does not implement.
    UnsupportedScheme(String),
    /// The device answered something that is not a login reply.
    Protocol(String),
}

impl LoginError {
    /// Classifies a failed login reply.
    pub fn from_failure(r: &Response, user: &str, _stage: u8) -> LoginError {
        let code = r.error.as_ref().map_or(0, |e| e.code);
        let message = r
            .error
            .as_ref()
            .and_then(|e| e.message.clone())
            .unwrap_or_default();
        let left = r.params.get("remainLoginTimes").and_then(as_u64_lenient);
        let lock = r
            .params
            .get("remainLockSecond")
            .and_then(as_u64_lenient)
            .filter(|s| *s > 0);
        let user = user.to_string();
        if code == codes::ACCOUNT_LOCKED || lock.is_some() || message.contains("HasBeenLocked") {
            return LoginError::Locked {
                user,
                seconds: lock,
            };
        }
        match code {
            codes::WRONG_PASSWORD | codes::USER_OR_PASSWORD | codes::LOGIN_FAILURE | 401 => {
                LoginError::WrongPassword {
                    user,
                    attempts_left: left,
                }
            }
            _ if message.contains("PasswordNotValid") || message.contains("UserNotValid") => {
                LoginError::WrongPassword {
                    user,
                    attempts_left: left,
                }
            }
            0 => LoginError::Protocol(format!("login refused without an error: {}", r.to_value())),
            code => LoginError::Refused {
                user,
                code,
                message: if message.is_empty() {
                    codes::describe(code).to_string()
                } else {
                    message
                },
            },
        }
    }
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::WrongPassword {
                user,
                attempts_left: Some(n),
            } => write!(
                f,
                "wrong password for user {user}: {n} attempt{} left before the account locks",
                if *n == 1 { "" } else { "s" }
            ),
            LoginError::WrongPassword { user, .. } => {
                write!(f, "wrong user name or password for user {user}")
            }
            LoginError::Locked {
                user,
                seconds: Some(s),
            } => write!(
                f,
                "account {user} is locked after too many wrong passwords; it unlocks in {s} s"
            ),
            LoginError::Locked { user, .. } => {
                write!(f, "account {user} is locked after too many wrong passwords")
            }
            LoginError::Refused {
                user,
                code,
                message,
            } => write!(f, "login of {user} refused: {message} (code {code})"),
            LoginError::UnsupportedScheme(s) => write!(
                f,
                "the device asks for the {s:?} password scheme, which camgate does not implement"
            ),
            LoginError::Protocol(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for LoginError {}
