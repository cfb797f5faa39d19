//! Cloud authentication: the WSSE UsernameToken that every DH-HTTP request to Easy4IPCloud
//! carries, with an application credential pair (not the user's own credentials).
//!
//! ```text
//! PasswordDigest = Base64(SHA1(Nonce || Created || "DHP2P:" || Username || ":" || UserKey))
//! Authorization: WSSE profile="UsernameToken"
//! X-WSSE: UsernameToken Username="…", PasswordDigest="…", Nonce="…", Created="…"
//! ```
//!
//! Also the `Created` timestamps (UTC `…Z` for SmartPSS, local time with a numeric offset for
//! DMSS), written and read with a small calendar of our own, the nonce styles of the clients,
//! and [`verify`] for the cloud simulator.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng;
use sha1::{Digest, Sha1};
use thiserror::Error;

/// The `Authorization` header value that accompanies `X-WSSE`.
pub const AUTHORIZATION_VALUE: &str = r#"WSSE profile="UsernameToken""#;

/// An application credential pair (the `Username`/`UserKey` embedded in official clients).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppCredentials {
    /// The WSSE `Username`.
    pub username: String,
    /// The secret mixed into the digest.
    pub user_key: String,
}

impl AppCredentials {
    /// A pair from its two strings.
    pub fn new(username: &str, user_key: &str) -> Self {
        AppCredentials {
            username: username.to_owned(),
            user_key: user_key.to_owned(),
        }
    }
}

/// `Base64(SHA1(nonce || created || "DHP2P:" || username || ":" || user_key))`, with `nonce`
/// and `created` exactly as they appear in the header.
pub fn password_digest(nonce: &str, created: &str, username: &str, user_key: &str) -> String {
    let mut h = Sha1::new();
    for part in [nonce, created, "DHP2P:", username, ":", user_key] {
        h.update(part.as_bytes());
    }
    B64.encode(h.finalize())
}

/// The fields of one `X-WSSE` header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsernameToken {
    /// `Username`.
    pub username: String,
    /// `PasswordDigest` (Base64).
    pub password_digest: String,
    /// `Nonce` (a decimal integer, possibly negative in the DMSS dialect).
    pub nonce: String,
    /// `Created` (see [`format_created`]).
    pub created: String,
}

/// Why an `X-WSSE` header was rejected.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WsseError {
    /// The header is not `UsernameToken k="v", …` with the four fields.
    #[error("malformed X-WSSE header {header:?}: {why}")]
    Malformed { header: String, why: &'static str },
    /// The `Username` is not the configured pair's.
    #[error("unknown WSSE username {username:?}")]
    UnknownUser { username: String },
    /// The digest does not match (wrong UserKey, or fields altered).
    #[error("WSSE PasswordDigest mismatch for username {username:?}")]
    BadDigest { username: String },
    /// `Created` is not a timestamp.
    #[error("bad WSSE Created {created:?}")]
    BadCreated { created: String },
    /// `Created` is further from the server's clock than allowed.
    #[error("WSSE Created {created:?} is {skew_secs} s away from the server clock")]
    ClockSkew { created: String, skew_secs: i64 },
}

impl UsernameToken {
    /// Signs `nonce`/`created` with a credential pair.
    pub fn sign(creds: &AppCredentials, nonce: &str, created: &str) -> Self {
        UsernameToken {
            username: creds.username.clone(),
            password_digest: password_digest(nonce, created, &creds.username, &creds.user_key),
            nonce: nonce.to_owned(),
            created: created.to_owned(),
        }
    }

    /// The `X-WSSE` header value.
    pub fn header_value(&self) -> String {
        format!(
            r#"UsernameToken Username="{}", PasswordDigest="{}", Nonce="{}", Created="{}""#,
            self.username, self.password_digest, self.nonce, self.created
        )
    }

    /// Parses an `X-WSSE` header value. Field order and spacing are free; unknown fields are
    /// ignored; values are taken literally between double quotes (no escapes).
    pub fn parse(header: &str) -> Result<Self, WsseError> {
        let bad = |why| WsseError::Malformed {
            header: header.to_owned(),
            why,
        };
        let rest = header
            .trim()
            .strip_prefix("UsernameToken")
            .ok_or_else(|| bad("does not start with UsernameToken"))?;
        let (mut username, mut digest, mut nonce, mut created) = (None, None, None, None);
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once('=')
                .ok_or_else(|| bad("field without '='"))?;
            let after = after
                .trim_start()
                .strip_prefix('"')
                .ok_or_else(|| bad("value not in double quotes"))?;
            let (value, after) = after
                .split_once('"')
                .ok_or_else(|| bad("unterminated quoted value"))?;
            let slot = match key.trim() {
                "Username" => &mut username,
                "PasswordDigest" => &mut digest,
                "Nonce" => &mut nonce,
                "Created" => &mut created,
                _ => &mut None,
            };
            *slot = Some(value.to_owned());
            let after = after.trim_start();
            rest = match after.strip_prefix(',') {
                Some(a) => a.trim_start(),
                None if after.is_empty() => after,
                None => return Err(bad("expected ',' between fields")),
            };
        }
        Ok(UsernameToken {
            username: username.ok_or_else(|| bad("no Username"))?,
            password_digest: digest.ok_or_else(|| bad("no PasswordDigest"))?,
            nonce: nonce.ok_or_else(|| bad("no Nonce"))?,
            created: created.ok_or_else(|| bad("no Created"))?,
        })
    }
}

/// Checks an `X-WSSE` header the way the cloud does: the username is the pair's, the digest
/// matches, and (when `max_skew_secs` is given) `Created` is within that many seconds of
/// `now_unix`. The digest is checked before the clock, as a skewed but correctly signed
/// request is what earns the distinct `401 … <Error>TimeOut</Error>`.
pub fn verify(
    pair: &AppCredentials,
    header: &str,
    now_unix: i64,
    max_skew_secs: Option<u64>,
) -> Result<UsernameToken, WsseError> {
    let token = UsernameToken::parse(header)?;
    if token.username != pair.username {
        return Err(WsseError::UnknownUser {
            username: token.username,
        });
    }
    let want = password_digest(&token.nonce, &token.created, &pair.username, &pair.user_key);
    if want != token.password_digest {
        return Err(WsseError::BadDigest {
            username: token.username,
        });
    }
    if let Some(max) = max_skew_secs {
        let created = parse_created(&token.created).map_err(|_| WsseError::BadCreated {
            created: token.created.clone(),
        })?;
        let skew = created - now_unix;
        if skew.unsigned_abs() > max {
            return Err(WsseError::ClockSkew {
                created: token.created,
                skew_secs: skew,
            });
        }
    }
    Ok(token)
}

/// How `Created` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CreatedStyle {
    /// UTC with a `Z` suffix: `2026-09-06T12:00:00Z` (SmartPSS, dh-p2p).
    #[default]
    Utc,
    /// Local time with a numeric offset, `2026-09-06T15:00:00+03:00` (DMSS). The value is the
    /// offset east of UTC in seconds; the caller supplies it (the core has no time zone).
    Offset(i32),
}

/// Formats a unix time as an ISO-8601 `Created` value.
pub fn format_created(unix: i64, style: CreatedStyle) -> String {
    let offset = match style {
        CreatedStyle::Utc => 0,
        CreatedStyle::Offset(o) => i64::from(o),
    };
    let local = unix + offset;
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    match style {
        CreatedStyle::Utc => out.push('Z'),
        CreatedStyle::Offset(_) => {
            let sign = if offset < 0 { '-' } else { '+' };
            let a = offset.unsigned_abs() / 60;
            out.push_str(&format!("{sign}{:02}:{:02}", a / 60, a % 60));
        }
    }
    out
}

/// A timestamp that [`parse_created`] cannot read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("not an ISO-8601 timestamp (YYYY-MM-DDTHH:MM:SS followed by Z or ±HH:MM): {0:?}")]
pub struct TimestampError(pub String);

/// Parses `YYYY-MM-DDTHH:MM:SS` followed by `Z`, `±HH:MM`, `±HHMM` or nothing (taken as UTC),
/// with optional fractional seconds (ignored); returns unix seconds.
pub fn parse_created(text: &str) -> Result<i64, TimestampError> {
    let bad = || TimestampError(text.to_owned());
    let b = text.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, TimestampError> {
        let s = &b[r];
        if s.iter().all(u8::is_ascii_digit) {
            Ok(s.iter().fold(0i64, |a, &c| a * 10 + i64::from(c - b'0')))
        } else {
            Err(bad())
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo as u32).into() {
        return Err(bad());
    }
    if h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(bad());
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ ..] => {
            let hh = match hh {
                [a, b, b':', c, d] | [a, b, c, d] => [*a, *b, *c, *d],
                _ => return Err(bad()),
            };
            if !hh.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let oh = i64::from(hh[0] - b'0') * 10 + i64::from(hh[1] - b'0');
            let om = i64::from(hh[2] - b'0') * 10 + i64::from(hh[3] - b'0');
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

/// How the clients pick the WSSE `Nonce` (and the type-1 device-auth nonce).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NonceStyle {
    /// `[0, 2^31)`: dh-p2p Python.
    #[default]
    NonNegative31,
    /// `[0, 2^32)`: dh-p2p Rust.
    Unsigned32,
    /// Any signed 32-bit value, negatives included: the DMSS app.
    Signed32,
}

impl NonceStyle {
    /// A fresh nonce in this style.
    pub fn generate(self, rng: &mut impl Rng) -> i64 {
        match self {
            NonceStyle::NonNegative31 => i64::from(rng.gen_range(0..=i32::MAX)),
            NonceStyle::Unsigned32 => i64::from(rng.r#gen::<u32>()),
            NonceStyle::Signed32 => i64::from(rng.r#gen::<i32>()),
        }
    }
}

/// Whether `y` is a Gregorian leap year.
fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1-12) of year `y`.
fn days_in_month(y: i64, m: u32) -> u8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
///
/// Counts in 400-year cycles (146 097 days each) of years that start on March 1st, so the
/// leap day is the last day of its year and month lengths follow a fixed 5-month pattern.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (y, m, d) = (if m <= 2 { y - 1 } else { y }, i64::from(m), i64::from(d));
    let cycle = y.div_euclid(400);
    let year_of_cycle = y.rem_euclid(400);
    let month_from_march = (m + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 719 468 days separate 0000-03-01 from 1970-01-01.
    cycle * 146_097 + day_of_cycle - 719_468
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) `days` after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let cycle = z.div_euclid(146_097);
    let day_of_cycle = z.rem_euclid(146_097);
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let m = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let y = year_of_cycle + cycle * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_every_day_for_a_millennium() {
        let start = days_from_civil(1600, 1, 1);
        let mut prev = civil_from_days(start - 1);
        for days in start..start + 366 * 1000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && u8::try_from(d).unwrap() <= days_in_month(y, m));
            assert!((y, m, d) > prev);
            prev = (y, m, d);
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
