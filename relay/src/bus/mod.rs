//! The bus between relay nodes: NATS core (issue 12), in memory only, so nothing a session
//! says or leaves behind is ever stored there.
//!
//! What runs over it today:
//! - the nodes' knowledge of each other: every node publishes a heartbeat ([`peers::Beat`])
//!   on its own subject every [`BEAT_INTERVAL`], notices a node that falls silent
//!   ([`peers::LOST_AFTER`]), and measures the bus's request/reply round trip by pinging
//!   the others;
//! - resuming on any node: a connection whose first frame resumes a session held by
//!   another node is carried there ([`forward`]);
//! - one queue and one staff presence for the whole hotline: every node publishes
//!   snapshots of its own and shows the others' in its staff's views ([`lobby`]);
//! - one observatory for the whole hotline: a coordinator's figures add up every running
//!   node's records ([`observatory`]).
//!
//! A session lives wholly on the node it opened on.
//!
//! Security (deploy/README.md, "Several nodes"): TLS to the NATS server, trusting only the
//! configured CA (never the system's roots); each node authenticates with its own NKey
//! (the seed is read from a file, kept in a zeroizing buffer, never logged); the server
//! gives each node permission to publish only under its own name
//! ([`node_permissions`]), so one node cannot speak as another.
//!
//! Subjects, for node `N`:
//! - `approdo.node.N.beat`: N's heartbeat (postcard [`peers::Beat`]); every node listens to
//!   `approdo.node.*.beat`.
//! - `approdo.node.N.ping`: request/reply; N answers with an empty message. Replies go to
//!   the requester's `_INBOX.>`.
//! - `approdo.resume`: request/reply, a resume token's SHA-256; the node holding it answers
//!   with its name.
//! - `approdo.node.N.conn.M`: connections carried between N and M, from M to N.
//! - `approdo.node.N.lobby`: N's queue and staff snapshot (postcard
//!   [`crate::switchboard::LobbySnapshot`], with N's average waits per desk and what the
//!   staff connections other nodes carry to N hold there); every node listens to
//!   `approdo.node.*.lobby`.
//! - `approdo.node.N.observatory`: request/reply; N answers with the counts of its
//!   observatory records ([`observatory`]), for a coordinator's figures of the whole hotline.
//!
//! A node that cannot reach NATS keeps serving on its own and keeps retrying; the metrics
//! say whether it is connected.

pub mod acks;
pub mod carrier;
pub mod forward;
pub mod lobby;
pub mod observatory;
pub mod peers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use rustls::crypto::ring as provider;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::RelayError;
use crate::server::{SharedHub, lock};
use forward::BusCommand;
use peers::{Beat, Observed, Peers};
use tokio::sync::mpsc;

/// How often a node publishes its heartbeat.
pub const BEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How often a node pings each other node it knows alive, for the round-trip figures.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How long a ping may take before it counts as lost (it is then not a round trip).
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest node name: lowercase ASCII letters, digits and `-`, so it is one NATS subject
/// token and safe in a log line.
pub const MAX_NODE_NAME_LEN: usize = 32;

/// The `[bus]` section of the configuration file. Absent: a single node, no NATS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfigFile {
    /// This node's name, unique in the deployment (e.g. `rome-1`): 1–32 of `a-z`, `0-9`,
    /// `-`. It is the node's subject token, and what the NATS server's permissions name.
    /// May be left out of a file shared by several nodes (one Kubernetes ConfigMap), when
    /// each is started with `serve --bus-node`; a node with neither refuses to start, so
    /// two nodes can never share a name by accident.
    #[serde(default)]
    pub node: String,
    /// The NATS server, `tls://host:4222` (TLS is required; a `nats://` URL is refused).
    pub url: String,
    /// PEM file of the CA that signed the NATS server's certificate; the only trust anchor.
    pub ca_file: PathBuf,
    /// File holding this node's NKey seed (one line, `SU…`, from `nk -gen user`). Keep it
    /// readable by the relay's user only. May be left out, like `node`, when each node is
    /// started with `serve --bus-seed-file`.
    #[serde(default)]
    pub nkey_seed_file: PathBuf,
}

/// The bus as the relay uses it: checked name and URL, the CA, the seed (wiped when
/// dropped, never printed).
#[derive(Clone)]
pub struct BusConfig {
    node: String,
    url: String,
    ca: Vec<CertificateDer<'static>>,
    seed: Zeroizing<String>,
    drop_share: f64,
}

impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusConfig")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn bad(what: &str) -> RelayError {
    RelayError::Config(format!("[bus] {what}"))
}

/// Whether `name` is a valid node name (see [`BusConfigFile::node`]).
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NODE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl BusConfig {
    /// Read the CA and seed files named in the configuration and check everything.
    pub fn load(file: &BusConfigFile) -> Result<BusConfig, RelayError> {
        if file.node.is_empty() {
            return Err(bad(
                "node: missing (set it here, or start the node with `serve --bus-node`)",
            ));
        }
        if !valid_node_name(&file.node) {
            return Err(bad("node: 1 to 32 of a-z, 0-9 and -"));
        }
        if file.nkey_seed_file.as_os_str().is_empty() {
            return Err(bad(
                "nkey_seed_file: missing (set it here, or start the node with `serve --bus-seed-file`)",
            ));
        }
        if !file.url.starts_with("tls://") || file.url.len() > 256 {
            return Err(bad("url: a tls:// URL (the bus is always encrypted)"));
        }
        let ca_pem = std::fs::read(&file.ca_file)
            .map_err(|e| bad(&format!("ca_file cannot be read: {}", e.kind())))?;
        let ca: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ca_pem)
            .collect::<Result<_, _>>()
            .map_err(|_| bad("ca_file: not PEM certificates"))?;
        if ca.is_empty() {
            return Err(bad("ca_file: no certificate"));
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(&file.nkey_seed_file)
                .map_err(|e| bad(&format!("nkey_seed_file cannot be read: {}", e.kind())))?,
        );
        let seed = Zeroizing::new(text.trim().to_owned());
        // A user seed; the key pair is checked here so a typo fails at start, not as an
        // endless reconnect.
        if !seed.starts_with("SU") || nkeys::KeyPair::from_seed(&seed).is_err() {
            return Err(bad("nkey_seed_file: not an NKey user seed (SU…)"));
        }
        Ok(BusConfig {
            node: file.node.clone(),
            url: file.url.clone(),
            ca,
            seed,
            drop_share: 0.0,
        })
    }

    /// For tests only: drop this share (0.0–1.0) of the messages this node sends for
    /// carried connections and of its queue snapshots, at random, as an overloaded bus may. Never set in `serve`.
    #[doc(hidden)]
    pub fn with_dropped_share(mut self, share: f64) -> BusConfig {
        self.drop_share = share.clamp(0.0, 1.0);
        self
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The rustls client configuration: TLS 1.2+ with ring, only the configured CA.
    fn tls(&self) -> Result<rustls::ClientConfig, RelayError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in &self.ca {
            roots
                .add(cert.clone())
                .map_err(|_| bad("ca_file: a certificate rustls does not accept"))?;
        }
        Ok(
            rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| bad(&e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// The subject node `node` publishes its heartbeat on.
pub fn beat_subject(node: &str) -> String {
    format!("approdo.node.{node}.beat")
}

/// The subject node `node` answers pings on.
pub fn ping_subject(node: &str) -> String {
    format!("approdo.node.{node}.ping")
}

/// The NATS server's permissions for node `node`, in nats-server's configuration syntax:
/// it may publish its own beat and queue snapshot, ping others (replies through
/// `allow_responses`), and listen to every beat and snapshot, its own pings and its inbox. deploy/ and the tests generate the
/// server's user list from this, so the two cannot drift apart.
pub fn node_permissions(node: &str) -> String {
    format!(
        "{{ publish: {{ allow: [\"{beat}\", \"{lobby}\", \"approdo.node.*.ping\", \"{observatories}\", \"{out}\", \"{resume}\"] }}, \
         subscribe: {{ allow: [\"approdo.node.*.beat\", \"{lobbies}\", \"{ping}\", \"{observatory}\", \"{inbox}\", \"{resume}\", \"_INBOX.>\"] }}, \
         allow_responses: {{ max: 1, expires: \"5s\" }} }}",
        beat = beat_subject(node),
        lobby = lobby::lobby_subject(node),
        lobbies = lobby::ALL_LOBBIES,
        ping = ping_subject(node),
        observatories = observatory::ALL_OBSERVATORIES,
        observatory = observatory::observatory_subject(node),
        out = forward::conn_subject("*", node),
        inbox = forward::conn_subject(node, "*"),
        resume = forward::RESUME_SUBJECT,
    )
}

/// Create node `node`'s NKey: write its seed to `path` (mode 0600, never over an existing
/// file) and return the NATS server's `authorization.users` entry for it, the public key
/// with [`node_permissions`], for the server's configuration.
pub fn create_node_key(node: &str, path: &std::path::Path) -> Result<String, RelayError> {
    if !valid_node_name(node) {
        return Err(bad("node: 1 to 32 of a-z, 0-9 and -"));
    }
    if path.exists() {
        return Err(RelayError::Config(format!(
            "{} exists; refusing to overwrite a node key",
            path.display()
        )));
    }
    let pair = nkeys::KeyPair::new_user();
    let seed = Zeroizing::new(pair.seed().map_err(|e| bad(&e.to_string()))?);
    let line = Zeroizing::new(format!("{}\n", seed.as_str()));
    crate::admin::write_private(path, line.as_bytes())?;
    Ok(format!(
        "{{ nkey: \"{}\", permissions: {} }}  # node {node}",
        pair.public_key(),
        node_permissions(node)
    ))
}

/// What the bus reports to the metrics endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusGauges {
    /// Connected to NATS now.
    pub connected: bool,
    /// Other nodes alive now.
    pub peers_alive: u64,
    /// Times another node was found lost since start.
    pub peers_lost_total: u64,
    /// Median and 99th percentile of recent bus round trips, in microseconds.
    pub round_trip_p50_us: Option<u64>,
    /// See `round_trip_p50_us`.
    pub round_trip_p99_us: Option<u64>,
    /// Bus messages ignored because they could not be read.
    pub malformed_total: u64,
}

/// A handle on the bus's state, shared with the metrics endpoint.
#[derive(Clone, Debug, Default)]
pub struct BusHandle {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    peers: Mutex<Peers>,
    connected: AtomicBool,
    malformed: AtomicU64,
}

impl BusHandle {
    fn peers(&self) -> std::sync::MutexGuard<'_, Peers> {
        // A panic elsewhere cannot leave the table half-written in a way that matters:
        // keep going with it.
        self.shared
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The figures now.
    pub fn gauges(&self) -> BusGauges {
        let peers = self.peers();
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        BusGauges {
            connected: self.shared.connected.load(Ordering::Relaxed),
            peers_alive: peers.alive() as u64,
            peers_lost_total: peers.lost_total(),
            round_trip_p50_us: peers.round_trip_quantile(0.5).map(micros),
            round_trip_p99_us: peers.round_trip_quantile(0.99).map(micros),
            malformed_total: self.shared.malformed.load(Ordering::Relaxed),
        }
    }
}

/// Connect to NATS and keep this node's part of the bus going until the task is dropped:
/// heartbeats and pings, resume lookups, and the connections carried to and from other
/// nodes (`commands` from the hub). Returns only on an error that retrying cannot fix (a
/// bad TLS configuration).
pub async fn run(
    config: BusConfig,
    handle: BusHandle,
    hub: SharedHub,
    mut commands: mpsc::Receiver<BusCommand>,
) -> Result<(), RelayError> {
    let node = config.node.clone();
    let connected = handle.clone();
    let options = async_nats::ConnectOptions::with_nkey(config.seed.to_string())
        .tls_client_config(config.tls()?)
        .require_tls(true)
        .name(format!("approdo-relay {node}"))
        .retry_on_initial_connect()
        .request_timeout(Some(PING_TIMEOUT))
        .event_callback(move |event| {
            let connected = connected.clone();
            async move {
                let up = match event {
                    async_nats::Event::Connected => Some(true),
                    async_nats::Event::Disconnected | async_nats::Event::Closed => Some(false),
                    _ => None,
                };
                if let Some(up) = up {
                    connected.shared.connected.store(up, Ordering::Relaxed);
                    tracing::info!(connected = up, "bus");
                }
            }
        });
    let client = options
        .connect(config.url.as_str())
        .await
        .map_err(|e| RelayError::Config(format!("[bus] {e}")))?;
    let mut beats = client
        .subscribe("approdo.node.*.beat")
        .await
        .map_err(|e| RelayError::Config(format!("[bus] subscribe: {e}")))?;
    let mut pings = client
        .subscribe(ping_subject(&node))
        .await
        .map_err(|e| RelayError::Config(format!("[bus] subscribe: {e}")))?;
    let mut lookups = client
        .subscribe(forward::RESUME_SUBJECT)
        .await
        .map_err(|e| RelayError::Config(format!("[bus] subscribe: {e}")))?;
    let mut inbox = client
        .subscribe(forward::conn_subject(&node, "*"))
        .await
        .map_err(|e| RelayError::Config(format!("[bus] subscribe: {e}")))?;
    let mut lobbies = client
        .subscribe(lobby::ALL_LOBBIES)
        .await
        .map_err(|e| RelayError::Config(format!("[bus] subscribe: {e}")))?;
    let mut observatory_asks = client
        .subscribe(observatory::observatory_subject(&node))
        .await
        .map_err(|e| RelayError::Config(format!("[bus] subscribe: {e}")))?;

    let own_beat = beat_subject(&node);
    let mut beat = Beat {
        epoch: random_epoch(),
        version: 0,
    };
    let mut beat_timer = tokio::time::interval(BEAT_INTERVAL);
    let mut ping_timer = tokio::time::interval(PING_INTERVAL);
    let own_lobby = lobby::lobby_subject(&node);
    let mut publisher = lobby::Publisher::new(beat.epoch);
    let mut lobby_timer = tokio::time::interval(lobby::CHECK_EVERY);
    let mut owed = acks::OwedAcks::default();
    let ack_timer = tokio::time::sleep(acks::ACK_DELAY);
    tokio::pin!(ack_timer);
    loop {
        tokio::select! {
            _ = beat_timer.tick() => {
                beat.version += 1;
                if let Ok(bytes) = postcard::to_allocvec(&beat) {
                    // At most once: a lost beat is repeated by the next one.
                    let _ = client.publish(own_beat.clone(), bytes.into()).await;
                }
                let lost = handle.peers().sweep(Instant::now());
                for name in lost {
                    tracing::warn!(node = %name, "bus: a node fell silent");
                    let mut hub = lock(&hub);
                    hub.node_lost(&name);
                    hub.flush();
                }
            }
            Some(message) = beats.next() => {
                let Some(name) = node_of_beat(message.subject.as_str()) else {
                    handle.shared.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if name == node {
                    continue;
                }
                let Ok(their) = postcard::from_bytes::<Beat>(&message.payload) else {
                    handle.shared.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if handle.peers().observe(name, their, Instant::now()) == Observed::Joined {
                    tracing::info!(node = %name, "bus: a node is alive");
                }
            }
            _ = lobby_timer.tick() => {
                if let Some(bytes) = publisher.due(&hub, Instant::now()) {
                    if config.drop_share > 0.0 && random_share() < config.drop_share {
                        continue; // a test's lossy bus
                    }
                    // At most once: a lost snapshot is repeated whole by the next one.
                    let _ = client.publish(own_lobby.clone(), bytes.into()).await;
                }
            }
            Some(message) = lobbies.next() => {
                let Some(name) = lobby::node_of_lobby(message.subject.as_str()) else {
                    handle.shared.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if name != node && !lobby::received(&hub, name, &message.payload) {
                    handle.shared.malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(request) = pings.next() => {
                if let Some(reply) = request.reply {
                    let _ = client.publish(reply, bytes::Bytes::new()).await;
                }
            }
            Some(request) = observatory_asks.next() => {
                // One at a time: another node asking often costs this one a read each.
                if let Some(reply) = request.reply
                    && let Some(counts) = observatory::answer(&hub)
                {
                    let _ = client.publish(reply, counts).await;
                }
            }
            Some(request) = lookups.next() => {
                let Ok(hash) = <[u8; 32]>::try_from(request.payload.as_ref()) else {
                    handle.shared.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                // Only the node holding the token answers; the others stay silent.
                if let Some(reply) = request.reply
                    && lock(&hub).holds_resume_token(&hash)
                {
                    let _ = client.publish(reply, node.clone().into()).await;
                }
            }
            Some(message) = inbox.next() => {
                // This bundle and those already waiting, under one lock and one flush: the
                // acknowledgements they call for go out once per connection.
                let mut hub = lock(&hub);
                let mut next = Some(message);
                let mut taken = 0;
                while let Some(message) = next.take() {
                    carried_in(&mut hub, &handle, &node, &message);
                    taken += 1;
                    if taken < INBOX_BATCH {
                        next = inbox.next().now_or_never().flatten();
                    }
                }
                hub.flush();
            }
            Some(command) = commands.recv() => {
                // This command and those already queued: what goes to one node leaves as
                // one bundle.
                let mut bundler = forward::Bundler::default();
                let mut next = Some(command);
                let mut taken = 0;
                while let Some(command) = next.take() {
                    match command {
                        BusCommand::Send { to, message } => {
                            if let Some(message) = owed.hold(&to, message, Instant::now()) {
                                bundler.add(&to, &message);
                            }
                        }
                        BusCommand::Lookup { conn, token_hash } => {
                            lookup(&client, &hub, conn, token_hash);
                        }
                        BusCommand::GatherObservatory { conn } => {
                            let (client, hub) = (client.clone(), hub.clone());
                            let others = handle.peers().alive_names();
                            tokio::spawn(async move {
                                let counts = observatory::gather(&client, others).await;
                                let mut hub = lock(&hub);
                                hub.switchboard_mut().observatory_gathered(conn, counts);
                                hub.flush();
                            });
                        }
                    }
                    taken += 1;
                    if taken < COMMAND_BATCH {
                        next = commands.try_recv().ok();
                    }
                }
                owed.ride_along(&mut bundler);
                if let Some(due) = owed.due() {
                    ack_timer.as_mut().reset(due.into());
                }
                publish(&client, &config, &node, bundler).await;
            }
            () = &mut ack_timer, if owed.due().is_some() => {
                let mut bundler = forward::Bundler::default();
                owed.all(&mut bundler);
                publish(&client, &config, &node, bundler).await;
            }
            _ = ping_timer.tick() => {
                let names = handle.peers().alive_names();
                for name in names {
                    let client = client.clone();
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        let started = Instant::now();
                        if client.request(ping_subject(&name), bytes::Bytes::new()).await.is_ok() {
                            handle.peers().record_round_trip(started.elapsed());
                        }
                    });
                }
            }
        }
    }
}

/// Most bus messages from the inbox handled under one lock of the hub.
const INBOX_BATCH: usize = 64;

/// Most hub commands gathered into the bundles of one round.
const COMMAND_BATCH: usize = 1024;

/// Publish `bundler`'s bundles, each to the node it is for.
async fn publish(
    client: &async_nats::Client,
    config: &BusConfig,
    node: &str,
    mut bundler: forward::Bundler,
) {
    for (to, bundle) in bundler.take() {
        if config.drop_share > 0.0 && random_share() < config.drop_share {
            continue; // a test's lossy bus
        }
        let subject = forward::conn_subject(&to, node);
        let _ = client.publish(subject, bundle.into()).await;
    }
}

/// Hand a bundle from the inbox to the hub, message by message.
fn carried_in(
    hub: &mut crate::server::Hub,
    handle: &BusHandle,
    node: &str,
    message: &async_nats::Message,
) {
    let Some(from) = forward::sender_of(message.subject.as_str(), node) else {
        handle.shared.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let messages = forward::unbundle(&message.payload).unwrap_or_else(|read| {
        handle.shared.malformed.fetch_add(1, Ordering::Relaxed);
        read
    });
    for carried in messages {
        hub.carried_in(&from, carried);
    }
}

/// A uniform number in [0, 1), for the test knob [`BusConfig::with_dropped_share`].
fn random_share() -> f64 {
    let mut bytes = [0u8; 8];
    approdo_core::ids::fill_random(&mut bytes);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Ask the bus which node holds the token `token_hash` (in the background) and hand the
/// answer to the hub for `conn`.
fn lookup(client: &async_nats::Client, hub: &SharedHub, conn: u64, token_hash: [u8; 32]) {
    let client = client.clone();
    let hub = hub.clone();
    tokio::spawn(async move {
        let asked = client.request(
            forward::RESUME_SUBJECT,
            bytes::Bytes::copy_from_slice(&token_hash),
        );
        let home = match tokio::time::timeout(forward::LOOKUP_TIMEOUT, asked).await {
            Ok(Ok(reply)) => std::str::from_utf8(&reply.payload)
                .ok()
                .filter(|n| valid_node_name(n))
                .map(str::to_owned),
            _ => None,
        };
        lock(&hub).lookup_done(conn, home);
    });
}

/// The node named by a beat subject `approdo.node.<name>.beat`, if it is one.
fn node_of_beat(subject: &str) -> Option<&str> {
    let name = subject
        .strip_prefix("approdo.node.")?
        .strip_suffix(".beat")?;
    valid_node_name(name).then_some(name)
}

fn random_epoch() -> u64 {
    let mut bytes = [0u8; 8];
    approdo_core::ids::fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_one_plain_subject_token() {
        assert!(valid_node_name("rome-1"));
        for bad in ["", "Rome", "a.b", "a*", "a>", "a b", &"x".repeat(33)] {
            assert!(!valid_node_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_unencrypted_bus_is_refused_at_start() {
        let file = BusConfigFile {
            node: "rome-1".into(),
            url: "nats://127.0.0.1:4222".into(),
            ca_file: "/nonexistent".into(),
            nkey_seed_file: "/nonexistent".into(),
        };
        let err = BusConfig::load(&file).expect_err("nats:// is refused");
        assert!(err.to_string().contains("tls://"), "{err}");
    }

    #[test]
    fn a_beat_subject_names_its_node_and_nothing_else_parses() {
        assert_eq!(node_of_beat(&beat_subject("milan-2")), Some("milan-2"));
        assert_eq!(node_of_beat("approdo.node.a.b.beat"), None);
        assert_eq!(node_of_beat("approdo.node..beat"), None);
        assert_eq!(node_of_beat("approdo.node.a.ping"), None);
    }
}
