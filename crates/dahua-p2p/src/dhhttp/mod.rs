//! DH-HTTP over UDP: the HTTP-shaped request/response exchange with Easy4IPCloud (main
//! server, P2P server "US", relay dispatcher and agents).
//!
//! * [`message`]: requests and responses, their lenient parser and serializer;
//! * [`dialect`]: how SmartPSS, DMSS and EasyViewer write requests, and the credential
//!   [`Profile`]s;
//! * [`transactor`]: the sans-IO retransmit-and-match state machine;
//! * [`channel`]: the p2p-channel request bodies (type 0 and 1) and the Server Nat Info answer;
//! * [`clock`]: the clock-skew rule and the offset from `Date`;
//! * [`cloud_error`]: error responses classified into what a person can act on.

pub mod channel;
pub mod clock;
pub mod cloud_error;
pub mod dialect;
pub mod message;
pub mod transactor;

pub use channel::{ChannelError, P2pChannelRequest, ReceivedP2pChannel, ServerNatInfo};
pub use clock::{clock_offset, is_clock_skew, parse_date};
pub use cloud_error::CloudError;
pub use dialect::{
    CSeqStyle, ContentHeaders, Dialect, PCS_REQUEST_ID, PROFILE_NAMES, PreHeader, Profile,
    RequestIdStyle, Verb, VerbStyle,
};
pub use message::{
    Headers, Message, Method, ParseError, ParseErrorKind, Request, Response, parse_message,
    parse_request, parse_response, serial_in_path,
};
pub use transactor::{
    CSeqCounter, Disposition, RequestId, RetransmitSchedule, StartOptions, Transactor,
    TransactorConfig, TxEvent, ZeroCSeqPolicy,
};
