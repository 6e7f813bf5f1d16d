//! Relay configuration: desks, fallback numbers, limits and where the store lives.

use std::path::PathBuf;
use std::time::Duration;

use approdo_core::identity::{OrgPublicKey, SignedRevocationList};
use approdo_core::ids::{DeskId, Language, Tag};
use serde::{Deserialize, Serialize};

use crate::error::RelayError;

/// One desk: the national switchboard or a regional project.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskConfig {
    /// Identifier used by certificates and by the person's region choice.
    pub id: DeskId,
    /// Name shown on pages.
    pub name: String,
    /// Phone numbers offered when nobody is online.
    #[serde(default)]
    pub fallback_numbers: Vec<String>,
}

/// Limits that protect the relay and its other sessions from one bad client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Frames a connection may send per second on average.
    pub frames_per_sec: f64,
    /// Burst allowance on top of the average.
    pub frame_burst: f64,
    /// Sessions one network address (keyed by HMAC, never stored raw) may open per minute.
    pub sessions_per_min_per_addr: f64,
    /// Connections one address may open per minute.
    pub connections_per_min_per_addr: f64,
    /// Concurrent connections the relay accepts.
    pub max_connections: usize,
    /// Seconds a client has to send its HTTP request headers.
    pub header_timeout_secs: u64,
    /// Seconds a new WebSocket has to send its first frame.
    pub first_frame_timeout_secs: u64,
    /// Seconds without any frame before a connection is closed (clients ping every 20 s).
    pub idle_timeout_secs: u64,
    /// Seconds a dropped participant may take to resume.
    pub resume_grace_secs: u64,
    /// Seconds without any message before a session ends.
    pub session_idle_secs: u64,
    /// Events a participant may leave unacknowledged before it is disconnected.
    pub max_unacked: usize,
    /// Events kept for a dropped participant before it is removed from the session.
    pub max_stored_per_participant: usize,
    /// Sessions waiting or running at once.
    pub max_sessions: usize,
    /// Sessions one staff connection may be a participant of at once.
    pub max_sessions_per_staff: usize,
    /// Bytes a connection may send per second on average, every frame counted whatever its
    /// kind: frame counts alone let a few huge frames through.
    pub bytes_per_sec: f64,
    /// Bytes a connection may send in a burst above that average (a backlog, handshakes
    /// with certificates, a call offer).
    pub byte_burst: f64,
    /// Bytes all connections from one address (HMAC tag, never stored raw) may send per
    /// second on average. Behind a proxy every client has the proxy's address.
    pub bytes_per_sec_per_addr: f64,
    /// Burst allowance of the per-address byte budget.
    pub byte_burst_per_addr: f64,
    /// `Ping`s and `Ack`s that release nothing, per second on average. They have their own
    /// budget, apart from `frames_per_sec`, so a person who makes an operator acknowledge
    /// many events cannot get that operator cut off; an `Ack` that releases events is free
    /// (it is bounded by what others were allowed to send).
    pub acks_per_sec: f64,
    /// Burst allowance of the `Ping`/`Ack` budget.
    pub ack_burst: f64,
    /// Bytes of events kept for away participants of one session (all of them together).
    pub max_stored_bytes_per_session: u64,
    /// Bytes of events kept for away participants in the whole relay (the store is on
    /// tmpfs: this is memory).
    pub max_stored_bytes: u64,
    /// New-session attempts per second (all addresses, measured over the last 10 s) above
    /// which `OpenSession` must carry a proof of work.
    pub open_sessions_per_sec_before_proof: f64,
    /// The languages sessions may be opened and interpreters invited in; anything else is
    /// refused, so a client cannot fill queue views with made-up tags.
    pub languages: Vec<Language>,
    /// Live TCP connections one address (an IPv6 /64; keyed by HMAC, never stored raw) may
    /// hold, counted at accept before any HTTP parsing, WebSockets included. Enough for a
    /// household or a shelter behind one address; far below `max_connections`, so a flood
    /// from one address cannot take every place. Not applied to loopback peers when
    /// `client_address_header` is set (the local proxy must limit them itself).
    pub connections_per_addr: u32,
}

/// The languages of the pages in `web-client/i18n/`.
pub const DEFAULT_LANGUAGES: [&str; 12] = [
    "en", "it", "fr", "es", "ro", "ru", "uk", "sq", "zh", "ar", "ur", "pcm",
];

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frames_per_sec: 100.0,
            frame_burst: 1000.0,
            sessions_per_min_per_addr: 10.0,
            connections_per_min_per_addr: 120.0,
            max_connections: 10_000,
            header_timeout_secs: 10,
            first_frame_timeout_secs: 15,
            idle_timeout_secs: 75,
            resume_grace_secs: 120,
            session_idle_secs: 3600,
            max_unacked: 4096,
            max_stored_per_participant: 10_000,
            max_sessions: 5_000,
            max_sessions_per_staff: 16,
            bytes_per_sec: 64.0 * 1024.0,
            byte_burst: 1024.0 * 1024.0,
            bytes_per_sec_per_addr: 256.0 * 1024.0,
            byte_burst_per_addr: 4.0 * 1024.0 * 1024.0,
            acks_per_sec: 1000.0,
            ack_burst: 10_000.0,
            max_stored_bytes_per_session: 16 * 1024 * 1024,
            max_stored_bytes: 256 * 1024 * 1024,
            open_sessions_per_sec_before_proof: 5.0,
            languages: DEFAULT_LANGUAGES
                .iter()
                .filter_map(|l| Tag::new(*l).ok())
                .collect(),
            connections_per_addr: 64,
        }
    }
}

/// Everything the relay needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The organisation key staff certificates are checked against.
    pub org: OrgPublicKey,
    /// The organisation's current revocation list.
    pub revocations: SignedRevocationList,
    /// The desks; the first is the national switchboard, used when no region is chosen.
    pub desks: Vec<DeskConfig>,
    /// Directory of the ephemeral session store. Wiped at start-up; put it on a swap-free
    /// tmpfs in production.
    pub store_dir: PathBuf,
    /// Directory of the observatory (anonymous case records). Kept across restarts; back
    /// it up.
    pub observatory_dir: PathBuf,
    /// Limits.
    pub limits: Limits,
    /// See [`ConfigFile::client_address_header`].
    pub client_address_header: Option<String>,
    /// See [`ConfigFile::not_safe_word`].
    pub not_safe_word: Option<String>,
    /// Where calls' media flows.
    pub sfu: crate::sfu::SfuConfig,
}

/// The on-disk form of [`Config`] (TOML); keys are given as paths to their files. Unknown
/// keys are an error, so a misspelt limit cannot silently keep its default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// UDP address of the QUIC endpoint (native clients and WebTransport), e.g.
    /// `0.0.0.0:443`; unset: WebSocket only.
    #[serde(default)]
    pub quic_listen: Option<String>,
    /// Hex of the organisation public key.
    pub org_public_key: String,
    /// Path of the signed revocation list (written by `approdo-relay admin revoke`).
    pub revocations: PathBuf,
    /// Behind a reverse proxy on the same machine: the header carrying the client's address
    /// (e.g. `X-Real-IP`), used only to key rate limits and only when the connection comes
    /// from loopback. Unset: the TCP peer address is used.
    #[serde(default)]
    pub client_address_header: Option<String>,
    /// A code word the person's page treats as the silent "I cannot talk now" signal when
    /// typed as a message (case and surrounding spaces ignored), instead of sending it.
    /// Shared with people by word of mouth or on a leaflet; unset: only the button.
    #[serde(default)]
    pub not_safe_word: Option<String>,
    /// Desks.
    pub desks: Vec<DeskConfig>,
    /// Store directory.
    pub store_dir: PathBuf,
    /// Observatory directory (persistent, unlike the store).
    pub observatory_dir: PathBuf,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// Calls: the address and UDP port range for media.
    #[serde(default)]
    pub sfu: crate::sfu::SfuConfig,
}

impl Config {
    /// Check the configuration before starting.
    pub fn validate(&self) -> Result<(), RelayError> {
        if self.desks.is_empty() {
            return Err(RelayError::Config(
                "at least one desk (the national one) is needed".into(),
            ));
        }
        if self.limits.languages.is_empty() {
            return Err(RelayError::Config(
                "at least one language must be served (limits.languages)".into(),
            ));
        }
        self.org.open_revocations(&self.revocations)?;
        Ok(())
    }

    /// The national desk, where sessions without a region go.
    pub fn national(&self) -> &DeskConfig {
        &self.desks[0]
    }

    /// A desk by id.
    pub fn desk(&self, id: &DeskId) -> Option<&DeskConfig> {
        self.desks.iter().find(|d| &d.id == id)
    }
}

impl Limits {
    /// [`Limits::resume_grace_secs`] as a duration.
    pub fn resume_grace(&self) -> Duration {
        Duration::from_secs(self.resume_grace_secs)
    }
}
