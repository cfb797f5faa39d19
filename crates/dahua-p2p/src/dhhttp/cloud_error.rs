//! What a failed cloud exchange means for the person running camgate: a classification of
//! DH-HTTP error responses (and unanswered requests) with the serial, the server and the
//! request in the message, and a hint at what to do.

use std::net::SocketAddr;

use thiserror::Error;

use super::clock::is_clock_skew;
use super::message::{Request, Response};
use crate::wsse::UsernameToken;

/// A cloud request that did not succeed, classified.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CloudError {
    /// `404` to `/online/p2psrv/SN`: the main server does not know the serial.
    #[error(
        "the cloud at {peer} does not know serial {serial} (404 for {path}): check the serial \
         number and that the profile's cloud is the one the device registers with"
    )]
    UnknownSerial {
        serial: String,
        peer: SocketAddr,
        path: String,
    },
    /// `404` to a device request: the device is not online.
    #[error(
        "device {serial} is offline according to {peer} (404 for {path}): check that the \
         device is powered and online and that its P2P setting is enabled"
    )]
    DeviceOffline {
        serial: String,
        peer: SocketAddr,
        path: String,
    },
    /// `401` without `TimeOut`: the application credential pair was rejected.
    #[error(
        "the cloud at {peer} rejected the application credentials (user {username:?}, 401 \
         for {path}): try another profile (smartpss, dmss, legacy, amcrest)"
    )]
    BadAppCredentials {
        username: String,
        peer: SocketAddr,
        path: String,
    },
    /// `401` with `<Error>TimeOut</Error>`: our clock is off.
    #[error(
        "the cloud at {peer} says our clock is off (401 TimeOut for {path}; server Date {}): \
         sync this machine's clock (camgate retries with the server's time)",
        server_date.as_deref().unwrap_or("not sent")
    )]
    ClockSkew {
        peer: SocketAddr,
        path: String,
        server_date: Option<String>,
    },
    /// `403` with `DevPwd_InvalidSalt`: the device wants type-1 device authentication.
    #[error(
        "device {serial} requires device authentication (403 DevPwd_InvalidSalt from {peer} \
         for {path}): configure the device's user name and password"
    )]
    DeviceAuthRequired {
        serial: String,
        peer: SocketAddr,
        path: String,
    },
    /// `403` with another `DevPwd_…` error: device credentials (or salt) are wrong.
    #[error(
        "device {serial} rejected the device user name or password (403 {detail} from {peer} \
         for {path}): check the credentials; newer firmware also needs the device's own salt"
    )]
    WrongDevicePassword {
        serial: String,
        peer: SocketAddr,
        path: String,
        detail: String,
    },
    /// No final answer after every retransmission.
    #[error(
        "no answer from {peer} to {path} after {transmissions} transmissions: check the \
         network, firewalls (UDP) and the cloud address"
    )]
    NoAnswer {
        peer: SocketAddr,
        path: String,
        transmissions: u32,
    },
    /// Any other non-success status.
    #[error("{peer} answered {path} with {code} {reason}{}", error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Other {
        code: u16,
        reason: String,
        error: Option<String>,
        peer: SocketAddr,
        path: String,
    },
}

impl CloudError {
    /// Classifies a final response to `request` from `from`; `None` for 1xx/2xx.
    pub fn classify(request: &Request, from: SocketAddr, response: &Response) -> Option<Self> {
        if response.code < 300 {
            return None;
        }
        let peer = from;
        let path = request.path.clone();
        let serial = request.serial().unwrap_or("(none)").to_owned();
        let error = response.error_text();
        let devpwd = [error.as_deref(), Some(response.reason.as_str())]
            .into_iter()
            .flatten()
            .find(|t| t.contains("DevPwd_"))
            .map(str::to_owned);
        Some(match response.code {
            404 if request
                .path
                .trim_start_matches('/')
                .starts_with("online/p2psrv") =>
            {
                CloudError::UnknownSerial { serial, peer, path }
            }
            404 => CloudError::DeviceOffline { serial, peer, path },
            401 if is_clock_skew(response) => CloudError::ClockSkew {
                peer,
                path,
                server_date: response.date().map(str::to_owned),
            },
            401 => CloudError::BadAppCredentials {
                username: request
                    .headers
                    .get("X-WSSE")
                    .and_then(|h| UsernameToken::parse(h).ok())
                    .map(|t| t.username)
                    .unwrap_or_default(),
                peer,
                path,
            },
            403 => match devpwd {
                Some(d) if d.contains("DevPwd_InvalidSalt") => {
                    CloudError::DeviceAuthRequired { serial, peer, path }
                }
                Some(detail) => CloudError::WrongDevicePassword {
                    serial,
                    peer,
                    path,
                    detail,
                },
                None => CloudError::Other {
                    code: 403,
                    reason: response.reason.clone(),
                    error,
                    peer,
                    path,
                },
            },
            code => CloudError::Other {
                code,
                reason: response.reason.clone(),
                error,
                peer,
                path,
            },
        })
    }

    /// The error for a request that timed out.
    pub fn no_answer(request: &Request, dest: SocketAddr, transmissions: u32) -> Self {
        CloudError::NoAnswer {
            peer: dest,
            path: request.path.clone(),
            transmissions,
        }
    }
}
