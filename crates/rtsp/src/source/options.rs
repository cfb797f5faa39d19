//! `RtspSourceOptions`: how to dial one RTSP camera, including retina's named tolerance
//! policies for broken servers, as they appear in camgate's TOML config.

use serde::Deserialize;

/// The RTP transport to request in `SETUP`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtspTransport {
    /// RTP interleaved on the RTSP TCP connection (robust through NAT and firewalls).
    #[default]
    Tcp,
    /// RTP over UDP (lower latency on a LAN; retina drops reordered packets).
    Udp,
}

/// Which of the camera's tracks to set up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSelection {
    /// Every supported video and audio track.
    #[default]
    All,
    /// Video tracks only.
    Video,
    /// Audio tracks only.
    Audio,
}

/// Whether to accept a camera that changes its session id between `SETUP`s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionIdPolicy {
    /// Retina's default (currently `require_match`).
    #[default]
    Default,
    /// Every `SETUP` response must carry the same session id.
    RequireMatch,
    /// Keep the first session id and ignore later changes (some broken cameras).
    UseFirst,
}

/// How to use the `rtptime` of the `PLAY` response's `RTP-Info` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialTimestampPolicy {
    /// Retina's default: `require` with several tracks, `ignore` with one.
    #[default]
    Default,
    /// Require `rtptime` for every track, for accurate multi-track sync.
    Require,
    /// Ignore `rtptime`; each track starts at its first packet (cameras that get it wrong).
    Ignore,
    /// Use `rtptime` if every track has it, else ignore it.
    Permissive,
}

/// How to use the `seq` of the `PLAY` response's `RTP-Info` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialSequenceNumberPolicy {
    /// Retina's default (currently `ignore_suspicious_values`).
    #[default]
    Default,
    /// Always trust `seq`.
    Respect,
    /// Ignore `seq=0` and `seq=1` (Hikvision, Tapo send these and then something else).
    IgnoreSuspiciousValues,
    /// Always ignore `seq`; start from the first packet.
    Ignore,
}

/// What to do with RTCP packets whose SSRC matches no track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownRtcpSsrcPolicy {
    /// Retina's default (currently `drop_packets`).
    #[default]
    Default,
    /// Fail the session.
    AbortSession,
    /// Drop such packets.
    DropPackets,
    /// Process them as if the SSRC matched (Tapo C320WS).
    ProcessPackets,
}

/// When to send `TEARDOWN` as a session ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeardownPolicy {
    /// Retina decides: always for UDP and known-buggy live555 servers, else one try on TCP.
    #[default]
    Auto,
    /// Keep trying until the session is torn down or expires.
    Always,
    /// Never send `TEARDOWN` (just close the connection).
    Never,
}

/// What to do with interleaved data on a channel no `SETUP` assigned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnassignedChannelDataPolicy {
    /// Retina decides (`assume_stale_session` for buggy live555, else `ignore`).
    #[default]
    Auto,
    /// Treat it as a stale session of an old connection (live555 bug) and fail.
    AssumeStaleSession,
    /// Fail the session.
    Error,
    /// Ignore it (cameras that stream tracks nobody set up).
    Ignore,
}

/// Options for an RTSP camera; every field has a default, unknown fields are rejected.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspSourceOptions {
    /// RTP over the RTSP connection (`tcp`, default) or `udp`.
    pub transport: RtspTransport,
    /// User name; also taken from the URL's userinfo when unset here.
    pub username: Option<String>,
    /// Password; also taken from the URL's userinfo when unset here.
    pub password: Option<String>,
    /// Session id consistency between `SETUP`s.
    pub session_id_policy: SessionIdPolicy,
    /// Use of `RTP-Info: rtptime`.
    pub initial_timestamp_policy: InitialTimestampPolicy,
    /// Use of `RTP-Info: seq`.
    pub initial_sequence_number_policy: InitialSequenceNumberPolicy,
    /// RTCP packets with an unknown SSRC.
    pub unknown_rtcp_ssrc_policy: UnknownRtcpSsrcPolicy,
    /// When to send `TEARDOWN`.
    pub teardown_policy: TeardownPolicy,
    /// Interleaved data on unassigned channels.
    pub unassigned_channel_data_policy: UnassignedChannelDataPolicy,
    /// The `User-Agent` header (retina's default when unset).
    pub user_agent: Option<String>,
    /// Seconds allowed for connect + `DESCRIBE` + `SETUP` + `PLAY` + the first parameters.
    pub connect_timeout_s: f64,
    /// Seconds without any frame before the session fails with `Timeout` (0 = wait forever).
    pub read_timeout_s: f64,
    /// Which tracks to set up.
    pub media: MediaSelection,
}

impl Default for RtspSourceOptions {
    fn default() -> Self {
        RtspSourceOptions {
            transport: RtspTransport::Tcp,
            username: None,
            password: None,
            session_id_policy: SessionIdPolicy::Default,
            initial_timestamp_policy: InitialTimestampPolicy::Default,
            initial_sequence_number_policy: InitialSequenceNumberPolicy::Default,
            unknown_rtcp_ssrc_policy: UnknownRtcpSsrcPolicy::Default,
            teardown_policy: TeardownPolicy::Auto,
            unassigned_channel_data_policy: UnassignedChannelDataPolicy::Auto,
            user_agent: None,
            connect_timeout_s: 10.0,
            read_timeout_s: 20.0,
            media: MediaSelection::All,
        }
    }
}

impl std::fmt::Debug for RtspSourceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspSourceOptions")
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("session_id_policy", &self.session_id_policy)
            .field("initial_timestamp_policy", &self.initial_timestamp_policy)
            .field(
                "initial_sequence_number_policy",
                &self.initial_sequence_number_policy,
            )
            .field("unknown_rtcp_ssrc_policy", &self.unknown_rtcp_ssrc_policy)
            .field("teardown_policy", &self.teardown_policy)
            .field(
                "unassigned_channel_data_policy",
                &self.unassigned_channel_data_policy,
            )
            .field("user_agent", &self.user_agent)
            .field("connect_timeout_s", &self.connect_timeout_s)
            .field("read_timeout_s", &self.read_timeout_s)
            .field("media", &self.media)
            .finish()
    }
}

impl RtspTransport {
    pub(super) fn to_retina(self) -> retina::client::Transport {
        match self {
            RtspTransport::Tcp => {
                retina::client::Transport::Tcp(retina::client::TcpTransportOptions::default())
            }
            RtspTransport::Udp => {
                retina::client::Transport::Udp(retina::client::UdpTransportOptions::default())
            }
        }
    }
}

impl SessionIdPolicy {
    pub(super) fn to_retina(self) -> retina::client::SessionIdPolicy {
        use retina::client::SessionIdPolicy as R;
        match self {
            SessionIdPolicy::Default => R::Default,
            SessionIdPolicy::RequireMatch => R::RequireMatch,
            SessionIdPolicy::UseFirst => R::UseFirst,
        }
    }
}

impl InitialTimestampPolicy {
    pub(super) fn to_retina(self) -> retina::client::InitialTimestampPolicy {
        use retina::client::InitialTimestampPolicy as R;
        match self {
            InitialTimestampPolicy::Default => R::Default,
            InitialTimestampPolicy::Require => R::Require,
            InitialTimestampPolicy::Ignore => R::Ignore,
            InitialTimestampPolicy::Permissive => R::Permissive,
        }
    }
}

impl InitialSequenceNumberPolicy {
    pub(super) fn to_retina(self) -> retina::client::InitialSequenceNumberPolicy {
        use retina::client::InitialSequenceNumberPolicy as R;
        match self {
            InitialSequenceNumberPolicy::Default => R::Default,
            InitialSequenceNumberPolicy::Respect => R::Respect,
            InitialSequenceNumberPolicy::IgnoreSuspiciousValues => R::IgnoreSuspiciousValues,
            InitialSequenceNumberPolicy::Ignore => R::Ignore,
        }
    }
}

impl UnknownRtcpSsrcPolicy {
    pub(super) fn to_retina(self) -> retina::client::UnknownRtcpSsrcPolicy {
        use retina::client::UnknownRtcpSsrcPolicy as R;
        match self {
            UnknownRtcpSsrcPolicy::Default => R::Default,
            UnknownRtcpSsrcPolicy::AbortSession => R::AbortSession,
            UnknownRtcpSsrcPolicy::DropPackets => R::DropPackets,
            UnknownRtcpSsrcPolicy::ProcessPackets => R::ProcessPackets,
        }
    }
}

impl TeardownPolicy {
    pub(super) fn to_retina(self) -> retina::client::TeardownPolicy {
        use retina::client::TeardownPolicy as R;
        match self {
            TeardownPolicy::Auto => R::Auto,
            TeardownPolicy::Always => R::Always,
            TeardownPolicy::Never => R::Never,
        }
    }
}

impl UnassignedChannelDataPolicy {
    pub(super) fn to_retina(self) -> retina::client::UnassignedChannelDataPolicy {
        use retina::client::UnassignedChannelDataPolicy as R;
        match self {
            UnassignedChannelDataPolicy::Auto => R::Auto,
            UnassignedChannelDataPolicy::AssumeStaleSession => R::AssumeStaleSession,
            UnassignedChannelDataPolicy::Error => R::Error,
            UnassignedChannelDataPolicy::Ignore => R::Ignore,
        }
    }
}
