//! How each official client writes its DH-HTTP requests (§2.9 of the protocol notes), and the
//! application credential profiles (§2.3) that go with them.
//!
//! A [`Dialect`] fixes the verbs, the header order and extra headers, how `CSeq` and
//! `x-pcs-request-id` are chosen, the `Created` and `Nonce` styles and how `Identify` is
//! written. The DMSS cloud reportedly rejects correct crypto unless the app's header order
//! and random CSeq are used, so these are data, not hard-coded choices.

use rand::Rng;

use super::message::{Method, Request};
use crate::addr::IdentifyStyle;
use crate::wsse::{
    AUTHORIZATION_VALUE, AppCredentials, CreatedStyle, NonceStyle, UsernameToken, format_created,
};

/// GET or POST, before the dialect picks the verb's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// A lookup (`DHGET`/`NFGET`).
    Get,
    /// A request with a body (`DHPOST`/`NFPOST`).
    Post,
}

/// The verb family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VerbStyle {
    /// `DHGET`/`DHPOST` (SmartPSS, dh-p2p).
    #[default]
    Dh,
    /// `NFGET`/`NFPOST` (DMSS, EasyViewer).
    Nf,
}

/// How a request's `CSeq` is chosen. Retransmits of one logical request always reuse it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CSeqStyle {
    /// A counter starting at 1 (dh-p2p shares one per process: see
    /// [`super::transactor::CSeqCounter`]).
    #[default]
    Counter,
    /// A random non-zero signed 32-bit value per logical request (DMSS).
    RandomSigned,
}

/// Whether requests carry an `x-pcs-request-id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RequestIdStyle {
    /// No request id (SmartPSS).
    #[default]
    None,
    /// `x-pcs-request-id`: 32 random lowercase hex digits per logical request, echoed by the
    /// cloud \[U: the real format is not documented].
    PcsRequestId,
}

/// Which content headers accompany a body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentHeaders {
    /// `Content-Type: ` (empty on purpose) and `Content-Length` (dh-p2p Python, DMSS).
    #[default]
    EmptyTypeAndLength,
    /// None at all, even with a body (dh-p2p Rust; servers accept it).
    Omit,
}

/// One header that precedes `CSeq` in a dialect's order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PreHeader {
    /// A fixed name and value (`X-Version: 6.7.11`).
    Fixed(String, String),
    /// The `x-pcs-request-id` slot, filled per logical request.
    PcsRequestId,
}

/// Name of the request-id header.
pub const PCS_REQUEST_ID: &str = "x-pcs-request-id";

/// A client's way of writing DH-HTTP requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dialect {
    /// Short name (`smartpss`, `dmss`, `easyviewer`).
    pub name: &'static str,
    /// `DH…` or `NF…` verbs.
    pub verbs: VerbStyle,
    /// Headers written between the request line and `CSeq`, in order.
    pub pre_headers: Vec<PreHeader>,
    /// How `CSeq` is chosen.
    pub cseq: CSeqStyle,
    /// How `Created` is written.
    pub created: CreatedStyle,
    /// How WSSE and device-auth nonces are drawn.
    pub nonce: NonceStyle,
    /// How `Identify` is written.
    pub identify: IdentifyStyle,
    /// Content headers for bodies.
    pub content_headers: ContentHeaders,
    /// The `version` element of p2p-channel bodies.
    pub p2p_version: &'static str,
}

impl Default for Dialect {
    fn default() -> Self {
        Self::smartpss()
    }
}

impl Dialect {
    /// SmartPSS / gDMSS as dh-p2p speaks it: `DHGET`/`DHPOST`, request line, `CSeq`,
    /// `Authorization`, `X-WSSE`, content headers; counter CSeq; UTC `Created`; unpadded
    /// `Identify`.
    pub fn smartpss() -> Self {
        Dialect {
            name: "smartpss",
            verbs: VerbStyle::Dh,
            pre_headers: Vec::new(),
            cseq: CSeqStyle::Counter,
            created: CreatedStyle::Utc,
            nonce: NonceStyle::NonNegative31,
            identify: IdentifyStyle::Unpadded,
            content_headers: ContentHeaders::EmptyTypeAndLength,
            p2p_version: "5.0.0",
        }
    }

    /// DMSS (Dolynk) as dh-fwd's profile speaks it: `NFGET`/`NFPOST`, `X-Version`,
    /// `X-Sversion`, `x-pcs-request-id`, `X-ToUType` before `CSeq`; random signed CSeq;
    /// `Created` with a local offset (set [`Dialect::created`] to the real offset; `+00:00`
    /// by default); signed nonces; padded `Identify`. The header values are not documented
    /// \[U\] and can be replaced.
    pub fn dmss() -> Self {
        Dialect {
            name: "dmss",
            verbs: VerbStyle::Nf,
            pre_headers: vec![
                PreHeader::Fixed("X-Version".into(), "6.7.11".into()),
                PreHeader::Fixed("X-Sversion".into(), "6.7.11".into()),
                PreHeader::PcsRequestId,
                PreHeader::Fixed("X-ToUType".into(), "Dmss_Android".into()),
            ],
            cseq: CSeqStyle::RandomSigned,
            created: CreatedStyle::Offset(0),
            nonce: NonceStyle::Signed32,
            identify: IdentifyStyle::Padded,
            content_headers: ContentHeaders::EmptyTypeAndLength,
            p2p_version: "6.7.11",
        }
    }

    /// EasyViewer Pro as in pabloromeo's capture: `NFGET`/`NFPOST`, `X-Version: 6.7.11`,
    /// `X-TSVersion: TS_1.1.4`, `x-pcs-request-id`, `X-ToUType: Client` \[U: CSeq style and the
    /// rest as DMSS].
    pub fn easyviewer() -> Self {
        Dialect {
            name: "easyviewer",
            pre_headers: vec![
                PreHeader::Fixed("X-Version".into(), "6.7.11".into()),
                PreHeader::Fixed("X-TSVersion".into(), "TS_1.1.4".into()),
                PreHeader::PcsRequestId,
                PreHeader::Fixed("X-ToUType".into(), "Client".into()),
            ],
            ..Self::dmss()
        }
    }

    /// The dialect with this name.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "smartpss" => Some(Self::smartpss()),
            "dmss" => Some(Self::dmss()),
            "easyviewer" => Some(Self::easyviewer()),
            _ => None,
        }
    }

    /// The verb as this dialect spells it.
    pub fn method(&self, verb: Verb) -> Method {
        match (self.verbs, verb) {
            (VerbStyle::Dh, Verb::Get) => Method::DhGet,
            (VerbStyle::Dh, Verb::Post) => Method::DhPost,
            (VerbStyle::Nf, Verb::Get) => Method::NfGet,
            (VerbStyle::Nf, Verb::Post) => Method::NfPost,
        }
    }

    /// A fresh nonce in this dialect's style, as text.
    pub fn new_nonce(&self, rng: &mut impl Rng) -> String {
        self.nonce.generate(rng).to_string()
    }

    /// `Created` for a unix time in this dialect's style.
    pub fn created(&self, now_unix: i64) -> String {
        format_created(now_unix, self.created)
    }

    /// A WSSE token for `creds` with a fresh nonce and `Created` at `now_unix`.
    pub fn sign(&self, creds: &AppCredentials, now_unix: i64, rng: &mut impl Rng) -> UsernameToken {
        UsernameToken::sign(creds, &self.new_nonce(rng), &self.created(now_unix))
    }

    /// Builds a request in this dialect's header order. `CSeq` (and `x-pcs-request-id`) are
    /// left empty for the [`super::Transactor`] to fill; `wsse: None` leaves out
    /// `Authorization`/`X-WSSE` (the unauthenticated `/online/stun`).
    pub fn request(
        &self,
        verb: Verb,
        path: &str,
        wsse: Option<&UsernameToken>,
        body: Option<&[u8]>,
    ) -> Request {
        let mut r = Request::new(self.method(verb), path);
        for h in &self.pre_headers {
            match h {
                PreHeader::Fixed(n, v) => r.headers.push(n, v.clone()),
                PreHeader::PcsRequestId => r.headers.push(PCS_REQUEST_ID, ""),
            }
        }
        r.headers.push("CSeq", "");
        if let Some(t) = wsse {
            r.headers.push("Authorization", AUTHORIZATION_VALUE);
            r.headers.push("X-WSSE", t.header_value());
        }
        if let Some(body) = body {
            if self.content_headers == ContentHeaders::EmptyTypeAndLength {
                r.headers.push("Content-Type", "");
                r.headers.push("Content-Length", body.len().to_string());
            }
            r.body = body.to_vec();
        }
        r
    }

    /// Re-signs a request built by [`Dialect::request`] in place (fresh `X-WSSE`), keeping
    /// `CSeq` and the request id: DMSS-style retransmits refresh `Nonce`/`Created`.
    pub fn resign(&self, request: &mut Request, token: &UsernameToken) {
        request.headers.set("X-WSSE", token.header_value());
    }

    /// Where `CSeq` goes in a request that lacks it: after the leading headers that this
    /// dialect writes before `CSeq`.
    pub(crate) fn cseq_slot(&self, request: &Request) -> usize {
        request
            .headers
            .0
            .iter()
            .take_while(|(n, _)| {
                self.pre_headers.iter().any(|p| match p {
                    PreHeader::Fixed(f, _) => f.eq_ignore_ascii_case(n),
                    PreHeader::PcsRequestId => n.eq_ignore_ascii_case(PCS_REQUEST_ID),
                })
            })
            .count()
    }

    /// Whether this dialect sends `x-pcs-request-id`.
    pub fn request_id(&self) -> RequestIdStyle {
        if self.pre_headers.contains(&PreHeader::PcsRequestId) {
            RequestIdStyle::PcsRequestId
        } else {
            RequestIdStyle::None
        }
    }
}

/// A named application credential pair with its default cloud and dialect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// `smartpss`, `dmss`, `legacy` or `amcrest`.
    pub name: &'static str,
    /// WSSE `Username`.
    pub username: &'static str,
    /// WSSE `UserKey`.
    pub user_key: &'static str,
    /// Main server, `host:port` (UDP).
    pub default_cloud: &'static str,
    /// How requests are written.
    pub dialect: Dialect,
}

/// The names [`Profile::by_name`] knows.
pub const PROFILE_NAMES: [&str; 4] = ["smartpss", "dmss", "legacy", "amcrest"];

impl Profile {
    /// SmartPSS-Lite pair (current dh-p2p), `www.easy4ipcloud.com:8800`.
    pub fn smartpss() -> Self {
        Profile {
            name: "smartpss",
            username: "cba1b29e32cb17aa46b8ff9e73c7f40b",
            user_key: "996103384cdf19179e19243e959bbf8b",
            default_cloud: "www.easy4ipcloud.com:8800",
            dialect: Dialect::smartpss(),
        }
    }

    /// DMSS / Dolynk pair, `p2p.dolynkcloud.com:8800`, DMSS dialect.
    pub fn dmss() -> Self {
        Profile {
            name: "dmss",
            username: "793k5zdi4dd5f037sooag8yo_dolynkc",
            user_key: "ef8hatgmcuk4qamgg4fxx19x33s9q1xy",
            default_cloud: "p2p.dolynkcloud.com:8800",
            dialect: Dialect::dmss(),
        }
    }

    /// The original `P2PClient` pair (mcw0 2020, dh-p2p 2023); rejected for some users since 2024.
    pub fn legacy() -> Self {
        Profile {
            name: "legacy",
            username: "P2PClient",
            user_key: "YXQ3Mahe-5H-R1Z_",
            default_cloud: "www.easy4ipcloud.com:8800",
            dialect: Dialect::smartpss(),
        }
    }

    /// Amcrest pair (dh-p2p#17, partial success only), `p2p.amcrestview.com:8800`.
    pub fn amcrest() -> Self {
        Profile {
            name: "amcrest",
            username: "default\\1ee97e027b2140a19b08606dcede9b9e",
            user_key: "da16f30fd0af413d97921ce0d24e165c",
            default_cloud: "p2p.amcrestview.com:8800",
            dialect: Dialect::smartpss(),
        }
    }

    /// The profile with this name ([`PROFILE_NAMES`]).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "smartpss" => Some(Self::smartpss()),
            "dmss" => Some(Self::dmss()),
            "legacy" => Some(Self::legacy()),
            "amcrest" => Some(Self::amcrest()),
            _ => None,
        }
    }

    /// The credential pair.
    pub fn credentials(&self) -> AppCredentials {
        AppCredentials::new(self.username, self.user_key)
    }

    /// A WSSE token with a fresh nonce and `Created` at `now_unix`, in this profile's dialect.
    pub fn sign(&self, now_unix: i64, rng: &mut impl Rng) -> UsernameToken {
        self.dialect.sign(&self.credentials(), now_unix, rng)
    }

    /// A signed request in this profile's dialect (see [`Dialect::request`]).
    pub fn request(
        &self,
        verb: Verb,
        path: &str,
        body: Option<&[u8]>,
        now_unix: i64,
        rng: &mut impl Rng,
    ) -> Request {
        let token = self.sign(now_unix, rng);
        self.dialect.request(verb, path, Some(&token), body)
    }
}
