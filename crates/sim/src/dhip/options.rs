//! Everything a test (or `camgate sim dhip`) can choose about the simulated device: ports,
//! credentials, login rules, firmware quirks as named policies, output style, events and
//! media.

use std::collections::BTreeMap;
use std::time::Duration;

use dhip::auth::Encryption;
use dhip::envelope::JsonStyle;
use dhip::frame::FragmentModel;

use super::files::FileFixture;
use super::ptz::PtzPolicy;
use super::state::DeviceIdentity;

/// What an unknown method gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownMethod {
    /// `{"code":405,"message":"Method not allowed"}` (python-dhip's fake).
    #[default]
    MethodNotAllowed,
    /// `268894210` (real firmware).
    NotFound,
}

/// Where `global.getCurrentTime` puts the time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeStyle {
    /// Mode A: `result: "YYYY-MM-DD HH:MM:SS"`, `params: null`.
    #[default]
    InResult,
    /// Mode B: `result: true`, `params: {"time": …}`.
    InParams,
}

/// The key case of `magicBox.getVendor`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VendorKey {
    /// `params.vendor` (python-dhip).
    #[default]
    Lower,
    /// `params.Vendor` (ipcmanview).
    Upper,
}

/// Split the replies to `method` into `pieces` packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentReplies {
    /// The method whose replies are split.
    pub method: String,
    /// The fragment model.
    pub model: FragmentModel,
    /// Number of packets (≥ 2).
    pub pieces: usize,
    /// Binary data sent with the reply, split over the packets (PerPacketJson only; the
    /// DahuaConsole model carries no binary).
    pub data: Vec<u8>,
}

/// Where the HTTP side's `/RPC2_Login` puts the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpSession {
    /// A 32-hex string (modern firmware).
    #[default]
    String,
    /// A number (old firmware).
    Int,
}

/// The simulated device's configuration.
#[derive(Clone, Debug)]
pub struct DhipSimOptions {
    /// DHIP TCP port on 127.0.0.1 (0: any).
    pub port: u16,
    /// HTTP port on 127.0.0.1 (0: any); `None`: no HTTP server.
    pub http_port: Option<u16>,
    /// UDP discovery port on 127.0.0.1 (0: any); `None`: no discovery responder.
    pub discovery_port: Option<u16>,
    /// The administrator account.
    pub username: String,
    /// Its password.
    pub password: String,
    /// Who the device is.
    pub identity: DeviceIdentity,
    /// Seed of session numbers, `random`s, object ids and tokens.
    pub seed: u64,
    /// The challenge's realm (`None`: `Login to <32 hex digits from the seed>`).
    pub realm: Option<String>,
    /// A fixed challenge `random` (`None`: fresh decimal numbers).
    pub random: Option<String>,
    /// The announced password scheme.
    pub encryption: Encryption,
    /// Accept a lowercase-hex Default digest.
    pub accept_lowercase_hash: bool,
    /// The challenge error carries a message.
    pub challenge_message: bool,
    /// `keepAliveInterval` granted at login (seconds).
    pub keep_alive_interval: u32,
    /// Sessions expire after `keep_alive_interval × session_timeout_factor` idle.
    pub session_timeout_factor: u32,
    /// Wrong passwords before the account locks.
    pub max_login_failures: u32,
    /// How long a locked account stays locked.
    pub lock_period: Duration,
    /// Close the DHIP connection after a wrong password (python-dhip's fake does).
    pub close_on_wrong_password: bool,
    /// Most simultaneous DHIP connections (more are closed at once) and HTTP sessions (more
    /// logins get HTTP 401).
    pub max_connections: Option<usize>,
    /// What unknown methods get.
    pub unknown_method: UnknownMethod,
    /// Where `getCurrentTime` puts the time.
    pub time_style: TimeStyle,
    /// `getVendor` key case.
    pub vendor_key: VendorKey,
    /// PTZ quirks.
    pub ptz: PtzPolicy,
    /// PTZ calls need a `ptz.factory.instance` object (no channel-in-params style).
    pub ptz_requires_object: bool,
    /// Per-method errors injected from the start (method → (code, message)).
    pub error_overrides: BTreeMap<String, (i64, Option<String>)>,
    /// Reply JSON layout.
    pub json: JsonStyle,
    /// End every DHIP reply with a `\n` counted in the lengths (VTO style).
    pub trailing_newline: bool,
    /// Split one method's replies into fragments.
    pub fragment: Option<FragmentReplies>,
    /// Push events on every logged-in DHIP connection, not only the attached ones (with the
    /// latest attach id, or 0).
    pub push_on_control: bool,
    /// Push this event code (as a `Pulse`) every period on attached connections (demos).
    pub periodic_event: Option<(String, Duration)>,
    /// The clock follows real time (otherwise only [`super::DhipSim::advance_clock`] moves it).
    pub real_time: bool,
    /// Wall clock at start, unix seconds.
    pub start_utc: i64,
    /// How long a rebooting device stays unreachable.
    pub reboot_delay: Duration,
    /// Recorded files.
    pub files: Vec<FileFixture>,
    /// Seconds of media in each generated `.dav` file.
    pub file_clip_secs: u32,
    /// Live stream picture size and rate (`streamReader`).
    pub video: (usize, usize, u32),
    /// Interleave G.711 A-law audio (`F0`) packets in live streams.
    pub audio: bool,
    /// Interleave auxiliary (`F1`) packets in live streams.
    pub aux: bool,
    /// HTTP session form.
    pub http_session: HttpSession,
    /// HTTP login challenge code 401 instead of 268632079.
    pub http_challenge_401: bool,
    /// Carrier-locked firmware: `/RPC2` answers `301 → /`.
    pub locked_firmware: bool,
    /// Send each discovery reply this many times (≥ 1).
    pub discovery_copies: u32,
    /// NUL-terminate discovery replies.
    pub discovery_nul: bool,
}

impl Default for DhipSimOptions {
    fn default() -> Self {
        DhipSimOptions {
            port: 0,
            http_port: Some(0),
            discovery_port: Some(0),
            username: "admin".into(),
            password: "admin54321".into(),
            identity: DeviceIdentity::default(),
            seed: 1,
            realm: None,
            random: None,
            encryption: Encryption::Default,
            accept_lowercase_hash: false,
            challenge_message: true,
            keep_alive_interval: 60,
            session_timeout_factor: 3,
            max_login_failures: 5,
            lock_period: Duration::from_secs(300),
            close_on_wrong_password: false,
            max_connections: None,
            unknown_method: UnknownMethod::MethodNotAllowed,
            time_style: TimeStyle::InResult,
            vendor_key: VendorKey::Lower,
            ptz: PtzPolicy::default(),
            ptz_requires_object: false,
            error_overrides: BTreeMap::new(),
            json: JsonStyle::Compact,
            trailing_newline: false,
            fragment: None,
            push_on_control: false,
            periodic_event: None,
            real_time: true,
            start_utc: super::clock::DEFAULT_START_UTC,
            reboot_delay: Duration::from_millis(200),
            files: FileFixture::defaults(),
            file_clip_secs: 2,
            video: (640, 360, 25),
            audio: true,
            aux: false,
            http_session: HttpSession::String,
            http_challenge_401: false,
            locked_firmware: false,
            discovery_copies: 1,
            discovery_nul: false,
        }
    }
}

impl DhipSimOptions {
    /// The python-dhip fake-server setup: realm `Login to FAKE`, random `987654321`,
    /// keep-alive 1 s, manual clock (the §6.4 vectors reproduce exactly).
    pub fn python_dhip_fake() -> Self {
        DhipSimOptions {
            realm: Some("Login to FAKE".into()),
            random: Some("987654321".into()),
            keep_alive_interval: 1,
            real_time: false,
            ..DhipSimOptions::default()
        }
    }
}
