//! Relay configuration: desks, fallback numbers, limits and where the store lives.

use std::collections::BTreeMap;
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
    /// The name in the person's languages, by language tag (`ar = "توسكانا"`): region
    /// names are the deployment's, so their translations live with them; a language
    /// without one shows `name`.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
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
    /// Events a participant may leave unacknowledged (on the wire or waiting for the send
    /// window) before it is disconnected. At least a person's whole frame burst of
    /// six-message frames plus the window (checked at start), so that a burst cannot get
    /// the operator disconnected before its acknowledgements are back.
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
    /// Seconds a connection to the HTTPS listener has to complete its TLS handshake; it
    /// holds its place in `connections_per_addr` meanwhile, so a handshake flood from one
    /// address is bounded by that share.
    pub tls_handshake_timeout_secs: u64,
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
            max_unacked: 8192,
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
            tls_handshake_timeout_secs: 10,
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
    /// See [`ConfigFile::quick_exit_url`].
    pub quick_exit_url: Option<String>,
    /// Where calls' media flows.
    pub sfu: crate::sfu::SfuConfig,
    /// Where the TLS certificate of HTTPS (and QUIC) comes from; `None`: plain HTTP only.
    pub tls: Option<crate::tls::TlsSource>,
    /// TURN for calls on networks that block UDP; `None`: no TURN, pages are told so.
    pub turn: Option<crate::turn::Turn>,
    /// The bus to the other relay nodes; `None`: a single node.
    pub bus: Option<crate::bus::BusConfig>,
}

/// The on-disk form of [`Config`] (TOML); keys are given as paths to their files. Unknown
/// keys are an error, so a misspelt limit cannot silently keep its default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address to serve plain HTTP on, e.g. `127.0.0.1:8080` (loopback: health checks and
    /// local use; a browser treats loopback as a secure context).
    pub listen: String,
    /// Address to serve HTTPS on, e.g. `[::]:443`. Needs `tls_cert` and `tls_key` (or
    /// `tls_self_signed`). Every HTTPS response carries `Strict-Transport-Security`.
    #[serde(default)]
    pub https_listen: Option<String>,
    /// PEM certificate chain, leaf first (e.g. an ACME client's `fullchain.pem`). Re-read,
    /// with `tls_key`, on SIGHUP; a bad file then keeps the certificate in use.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (e.g. `privkey.pem`).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Without certificate files: serve a self-signed ECDSA P-256 certificate, renewed every
    /// few days, which the pages pin by hash (testing and staging; browsers warn on HTTPS).
    #[serde(default)]
    pub tls_self_signed: bool,
    /// UDP address of the QUIC endpoint (native clients and WebTransport), e.g.
    /// `0.0.0.0:443`; unset: WebSocket only.
    #[serde(default)]
    pub quic_listen: Option<String>,
    /// The UDP port browsers are told for WebTransport when it is not `quic_listen`'s own:
    /// a container or NAT that forwards UDP 443 to the relay's unprivileged 8443 sets 443
    /// here. Unset: `quic_listen`'s port.
    #[serde(default)]
    pub quic_advertised_port: Option<u16>,
    /// Address of the Prometheus metrics listener (`GET /metrics`, counts only), e.g.
    /// `127.0.0.1:9464`: a separate TCP listener to keep off the public network (loopback,
    /// or a private interface the monitoring reaches). Unset: no metrics listener.
    #[serde(default)]
    pub metrics_listen: Option<String>,
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
    /// Where the person's quick exit lands: an absolute `https://` URL of another site (a
    /// weather or news page, say), or a path on this relay. Unset: the relay's own neutral
    /// page, `/exit`, in the person's language. Checked at start.
    #[serde(default)]
    pub quick_exit_url: Option<String>,
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
    /// Calls through a TURN server (coturn) when UDP is blocked: the URLs handed out, the
    /// shared secret's file and the credentials' lifetime. Left out: no TURN.
    #[serde(default)]
    pub turn: Option<crate::turn::TurnConfigFile>,
    /// Several relay nodes: this node's name, the NATS server, its CA and this node's NKey
    /// seed. Left out: a single node, no NATS.
    #[serde(default)]
    pub bus: Option<crate::bus::BusConfigFile>,
}

/// A configuration file read and checked, with what `serve` needs besides [`Config`].
#[derive(Debug)]
pub struct Loaded {
    /// The relay's configuration.
    pub config: Config,
    /// Plain HTTP address.
    pub listen: std::net::SocketAddr,
    /// HTTPS address, when configured.
    pub https_listen: Option<std::net::SocketAddr>,
    /// Metrics address, when configured.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// QUIC (UDP) address, when configured.
    pub quic_listen: Option<std::net::SocketAddr>,
    /// The UDP port clients are told, when it differs from `quic_listen`'s.
    pub quic_advertised_port: Option<u16>,
    /// The revocation list's path, re-read on SIGHUP.
    pub revocations_path: PathBuf,
}

/// What one node's command line sets over a configuration file that several nodes share
/// (`approdo-relay serve --bus-node … --bus-seed-file … --sfu-bind-ip …`): in Kubernetes
/// every relay pod mounts the same ConfigMap, yet each node needs its own bus name, its own
/// NKey seed and its own address for call media. `None` keeps the file's value.
#[derive(Clone, Debug, Default)]
pub struct NodeOverrides {
    /// Replaces `[bus] node`; checked like it ([`crate::bus::valid_node_name`]).
    pub bus_node: Option<String>,
    /// Replaces `[bus] nkey_seed_file`.
    pub bus_seed_file: Option<PathBuf>,
    /// Replaces `[sfu] bind_ip`: the node's address, which differs from node to node.
    pub sfu_bind_ip: Option<std::net::IpAddr>,
    /// Replaces `[sfu] public_ip` (behind a 1:1 NAT, also one per node).
    pub sfu_public_ip: Option<std::net::IpAddr>,
}

impl ConfigFile {
    /// Apply one node's [`NodeOverrides`]. The bus values need a `[bus]` section to go
    /// into (the URL and CA are the deployment's, not the node's), and an invalid node name
    /// is refused here, naming the flag, rather than later as the file's.
    pub fn override_node(&mut self, overrides: NodeOverrides) -> Result<(), RelayError> {
        let NodeOverrides {
            bus_node,
            bus_seed_file,
            sfu_bind_ip,
            sfu_public_ip,
        } = overrides;
        if bus_node.is_some() || bus_seed_file.is_some() {
            let Some(bus) = self.bus.as_mut() else {
                return Err(RelayError::Config(
                    "--bus-node and --bus-seed-file need a [bus] section in the configuration \
                     (its url and ca_file)"
                        .into(),
                ));
            };
            if let Some(node) = bus_node {
                if !crate::bus::valid_node_name(&node) {
                    // The name is the operator's own input, not a secret: quoting it (its
                    // Debug form, so nothing in it can break the line) says what was wrong.
                    return Err(RelayError::Config(format!(
                        "--bus-node {node:?}: a node name is 1 to {} of a-z, 0-9 and - \
                         (one NATS subject token)",
                        crate::bus::MAX_NODE_NAME_LEN
                    )));
                }
                bus.node = node;
            }
            if let Some(seed) = bus_seed_file {
                bus.nkey_seed_file = seed;
            }
        }
        if let Some(ip) = sfu_bind_ip {
            self.sfu.bind_ip = ip;
        }
        if let Some(ip) = sfu_public_ip {
            self.sfu.public_ip = Some(ip);
        }
        Ok(())
    }

    /// Read and parse a configuration file (strict: unknown keys are refused).
    pub fn read(path: &std::path::Path) -> Result<ConfigFile, RelayError> {
        let text = std::fs::read_to_string(path)?;
        toml::from_str(&text).map_err(|e| RelayError::Config(e.to_string()))
    }

    /// Where the certificate comes from, checking the TLS keys agree.
    pub fn tls_source(&self) -> Result<Option<crate::tls::TlsSource>, RelayError> {
        use crate::tls::TlsSource;
        let source = match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), false) => Some(TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, true) => Some(TlsSource::SelfSigned { hosts: Vec::new() }),
            (None, None, false) => None,
            (Some(_), Some(_), true) => {
                return Err(RelayError::Config(
                    "tls_self_signed and certificate files exclude each other".into(),
                ));
            }
            _ => {
                return Err(RelayError::Config(
                    "tls_cert and tls_key go together".into(),
                ));
            }
        };
        if self.https_listen.is_some() && source.is_none() {
            return Err(RelayError::Config(
                "https_listen needs tls_cert and tls_key (or tls_self_signed)".into(),
            ));
        }
        Ok(source)
    }

    /// Turn the file into the relay's configuration: read the revocation list it names,
    /// parse the addresses and keys. The one loader `serve` and the deploy/ checks use.
    pub fn load(self) -> Result<Loaded, RelayError> {
        let tls = self.tls_source()?;
        let org = crate::admin::parse_public_key(&self.org_public_key)?;
        let revocations = crate::admin::load_revocations(&self.revocations)?;
        let addr = |a: &str, what: &str| {
            a.parse::<std::net::SocketAddr>()
                .map_err(|_| RelayError::Config(format!("{what} is not an address: {a}")))
        };
        let listen = addr(&self.listen, "listen")?;
        let https_listen = match &self.https_listen {
            Some(a) => Some(addr(a, "https_listen")?),
            None => None,
        };
        let metrics_listen = match &self.metrics_listen {
            Some(a) => Some(addr(a, "metrics_listen")?),
            None => None,
        };
        let quic_listen = match &self.quic_listen {
            Some(a) => Some(addr(a, "quic_listen")?),
            None => None,
        };
        if self.quic_advertised_port.is_some() && quic_listen.is_none() {
            return Err(RelayError::Config(
                "quic_advertised_port is set but quic_listen is not".into(),
            ));
        }
        if self.quic_advertised_port == Some(0) {
            return Err(RelayError::Config(
                "quic_advertised_port cannot be 0".into(),
            ));
        }
        let turn = match &self.turn {
            Some(t) => Some(crate::turn::Turn::load(t)?),
            None => None,
        };
        let bus = match &self.bus {
            Some(b) => Some(crate::bus::BusConfig::load(b)?),
            None => None,
        };
        Ok(Loaded {
            config: Config {
                org,
                revocations,
                desks: self.desks,
                store_dir: self.store_dir,
                observatory_dir: self.observatory_dir,
                limits: self.limits,
                client_address_header: self.client_address_header,
                not_safe_word: self.not_safe_word,
                quick_exit_url: self.quick_exit_url,
                sfu: self.sfu,
                tls,
                turn,
                bus,
            },
            listen,
            https_listen,
            metrics_listen,
            quic_listen,
            quic_advertised_port: self.quic_advertised_port,
            revocations_path: self.revocations,
        })
    }
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
        if let Some(u) = &self.quick_exit_url {
            check_quick_exit_url(u)?;
        }
        let burst_events = (self.limits.frame_burst.max(0.0) as usize)
            .saturating_mul(approdo_core::limits::MAX_ENVELOPES_PER_SEND)
            .saturating_add(crate::switchboard::SEND_WINDOW);
        if self.limits.max_unacked < burst_events {
            return Err(RelayError::Config(format!(
                "limits.max_unacked ({}) must be at least frame_burst × 6 + 256 ({burst_events}): \
                 otherwise one person's burst can get the operator disconnected",
                self.limits.max_unacked
            )));
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

/// A quick exit must leave at once and for a page that cannot be turned against the
/// person: an absolute `https://` URL with a host and no credentials, or a path on this
/// relay (`/…`, not `//host`, which a browser reads as another origin). Plain `http://` is
/// taken only for a loopback host (a local demo or test), which browsers treat as secure.
pub fn check_quick_exit_url(u: &str) -> Result<(), RelayError> {
    let bad = |why: &str| Err(RelayError::Config(format!("quick_exit_url: {why}")));
    if u.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("no spaces or control characters");
    }
    if u.starts_with('/') {
        if u.starts_with("//") || u.contains('\\') {
            return bad("a path on this relay starts with a single /");
        }
        return Ok(());
    }
    match url::Url::parse(u) {
        Ok(p)
            if p.host_str().is_some_and(|h| !h.is_empty())
                && (p.scheme() == "https" || (p.scheme() == "http" && is_loopback(&p))) =>
        {
            if !p.username().is_empty() || p.password().is_some() {
                return bad("no user name or password in the address");
            }
            Ok(())
        }
        _ => bad("an absolute https:// address or a path starting with /"),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod quick_exit_tests {
    use super::check_quick_exit_url;

    #[test]
    fn quick_exit_url_is_https_or_a_path_here() {
        for ok in [
            "/exit",
            "/exit?l=ar",
            "https://www.example.org/weather",
            "http://127.0.0.1:8081/",
            "http://localhost:9/x",
        ] {
            assert!(check_quick_exit_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "exit",
            "//evil.example/",
            "/\\evil.example",
            "http://example.org/",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://user:pw@example.org/",
            "https://",
            "/exit page",
        ] {
            assert!(check_quick_exit_url(bad).is_err(), "{bad}");
        }
    }
}
