//! The Approdo relay: HTTP and WebSocket front, the switchboard, the crypto-shredded
//! ephemeral store, and the admin commands that manage the organisation's keys.
//!
//! [`run`] is the one seam: tests and `main` both call it with a configuration, bound
//! listeners and a shutdown future.

pub mod accept;
pub mod admin;
pub mod config;
pub mod error;
pub mod observatory;
pub mod pages;
pub mod quic;
pub mod ratelimit;
pub mod server;
pub mod sfu;
pub mod store;
pub mod switchboard;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use config::{Config, DeskConfig, Limits};
pub use error::RelayError;

use crate::server::{Hub, SharedHub};
use crate::store::EphemeralStore;
use crate::switchboard::{Census, Switchboard};

/// Sockets the relay serves on, bound by the caller (tests bind port 0).
#[derive(Debug)]
pub struct Listeners {
    /// HTTP and WebSocket.
    pub http: tokio::net::TcpListener,
    /// QUIC (native `approdo/1` and WebTransport); `None` serves TCP only.
    pub quic: Option<quic::QuicListener>,
}

impl Listeners {
    /// HTTP and WebSocket only.
    pub fn http(http: tokio::net::TcpListener) -> Self {
        Listeners { http, quic: None }
    }
}

/// A relay ready to run, with a handle tests use to look inside.
pub struct Relay {
    hub: SharedHub,
    config: Arc<Config>,
    health: Arc<server::Health>,
    supervised: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

/// A cheap handle on a running relay: counts and the store's raw bytes (never a session's
/// content) for tests and health checks, and the one admin action that must not wait for a
/// restart, applying a new revocation list.
#[derive(Clone)]
pub struct Inspector {
    hub: SharedHub,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector").finish_non_exhaustive()
    }
}

impl Inspector {
    /// Connections, sessions, stored records, session keys.
    pub fn census(&self) -> Census {
        server::lock(&self.hub).switchboard().census()
    }

    /// The store's values exactly as held (sealed).
    pub fn raw_store_values(&self) -> Vec<Vec<u8>> {
        server::lock(&self.hub).switchboard().store().raw_values()
    }

    /// Flush the store to its files.
    pub fn flush_store(&self) -> Result<(), RelayError> {
        server::lock(&self.hub).switchboard().store().flush()
    }

    /// Apply a new signed revocation list now (what `SIGHUP` does in `serve` mode).
    /// Returns how many staff connections were cut off.
    pub fn apply_revocations(
        &self,
        signed: approdo_core::identity::SignedRevocationList,
    ) -> Result<usize, RelayError> {
        let mut hub = server::lock(&self.hub);
        let cut = hub
            .switchboard_mut()
            .apply_revocations(signed, Instant::now())?;
        hub.flush();
        Ok(cut)
    }

    /// Connections accepted since start, per transport (WebSocket, QUIC, WebTransport).
    pub fn transport_counts(&self) -> server::TransportCounts {
        server::lock(&self.hub).transport_counts()
    }

    /// Records in the observatory.
    pub fn observatory_len(&self) -> usize {
        server::lock(&self.hub).switchboard().observatory().len()
    }

    /// The observatory directory.
    pub fn observatory_dir(&self) -> std::path::PathBuf {
        server::lock(&self.hub)
            .switchboard()
            .observatory_dir()
            .to_owned()
    }

    /// Call members and live peer connections in the SFU (zeros before it starts).
    pub fn sfu_census(&self) -> sfu::SfuCensus {
        server::lock(&self.hub)
            .sfu()
            .map(|s| s.census())
            .unwrap_or_default()
    }

    /// Test hook: panic on another thread while holding the hub's lock, as a bug in the
    /// switchboard would. The relay must then stop with an error, not serve on.
    #[doc(hidden)]
    pub fn test_hook_panic_holding_the_lock(&self) {
        let hub = self.hub.clone();
        let _ = std::thread::spawn(move || {
            let _guard = hub.lock();
            panic!("test hook: a panic while holding the hub's lock");
        })
        .join();
    }

    /// Test hook: hold the hub's lock for `duration` on another thread, as a wedged
    /// switchboard would. Returns once the lock is held.
    #[doc(hidden)]
    pub fn test_hook_hold_the_lock(&self, duration: std::time::Duration) {
        let hub = self.hub.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _guard = server::lock(&hub);
            let _ = tx.send(());
            std::thread::sleep(duration);
        });
        let _ = rx.recv();
    }

    /// The store directory.
    pub fn store_dir(&self) -> std::path::PathBuf {
        server::lock(&self.hub)
            .switchboard()
            .store()
            .dir()
            .to_owned()
    }
}

impl Relay {
    /// Check the configuration, wipe and open the store.
    pub fn new(config: Config) -> Result<Self, RelayError> {
        config.validate()?;
        let config = Arc::new(config);
        if store::on_ram_fs(&config.store_dir) == Some(false) {
            tracing::warn!(
                "the session store is not on a RAM file system (tmpfs or ramfs): removed \
                 records may linger on disk until overwritten; see deploy/README.md"
            );
        }
        let store = EphemeralStore::open_wiped(&config.store_dir)?;
        let observatory = observatory::Observatory::open(&config.observatory_dir)?;
        let switchboard = Switchboard::new(config.clone(), store, observatory, Instant::now())?;
        Ok(Relay {
            hub: Arc::new(Mutex::new(Hub::new(switchboard))),
            config,
            health: Arc::new(server::Health::default()),
            supervised: Vec::new(),
        })
    }

    /// Supervise a task of the caller's (`main`'s revocation reloader): if it ends or
    /// panics, [`Relay::run`] stops with [`RelayError::TaskDied`].
    pub fn supervise(&mut self, name: &'static str, task: tokio::task::JoinHandle<()>) {
        self.supervised.push((name, task));
    }

    /// A handle for inspection.
    pub fn inspector(&self) -> Inspector {
        Inspector {
            hub: self.hub.clone(),
        }
    }

    /// Serve until `shutdown` resolves, then wipe the session store. Returns an error,
    /// after the same wipe, as soon as a background task (the ticker, the SFU, any task
    /// handed to [`Relay::supervise`]) ends or panics: a relay must not run on half-dead.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RelayError> {
        let Relay {
            hub,
            config,
            health,
            mut supervised,
        } = self;
        let limits = Arc::new(config.limits.clone());
        let advert = listeners.quic.as_ref().map(quic::QuicListener::advert);
        let router = server::app(
            hub.clone(),
            health.clone(),
            &config,
            pages::router(&config, advert.as_ref()),
            advert.as_ref().map(|a| a.port),
        );
        supervised.push(("ticker", tokio::spawn(server::ticker(hub.clone()))));
        let places = server::Places::new(&config.limits);
        let mut endpoint = None;
        if let Some(listener) = listeners.quic {
            let e = quic::endpoint(listener.socket, &listener.identity)?;
            endpoint = Some(e.clone());
            supervised.push((
                "quic",
                tokio::spawn(quic::serve(e, hub.clone(), limits.clone(), places.clone())),
            ));
        }
        let reply_hub = hub.clone();
        let (sfu, sfu_task) = sfu::Sfu::start_supervised(&config.sfu, move |reply| {
            let mut hub = server::lock(&reply_hub);
            match reply {
                sfu::Reply::Answer {
                    conn,
                    session,
                    participant,
                    call,
                    sdp,
                } => {
                    if hub
                        .switchboard()
                        .call_is_current(&session, participant, call)
                    {
                        hub.send_frame(
                            conn,
                            &approdo_core::wire::RelayFrame::CallAnswer { session, sdp },
                        );
                    }
                }
                sfu::Reply::Failed {
                    conn,
                    session,
                    participant,
                    call,
                    tell,
                } => {
                    hub.switchboard_mut().call_failed(
                        conn,
                        session,
                        participant,
                        call,
                        tell,
                        Instant::now(),
                    );
                    hub.flush();
                }
            }
        });
        supervised.push(("sfu", sfu_task));
        server::lock(&hub).set_sfu(sfu);
        let aborts: Vec<_> = supervised.iter().map(|(_, t)| t.abort_handle()).collect();
        let watched =
            futures_util::future::select_all(supervised.into_iter().map(|(name, task)| {
                Box::pin(async move {
                    let outcome = task.await;
                    (name, outcome.is_err())
                })
            }));
        tracing::info!(desks = config.desks.len(), "relay serving");
        let proxied = config.client_address_header.is_some();
        let serving = server::serve(listeners.http, router, limits, places, proxied, shutdown);
        let result = tokio::select! {
            _ = serving => Ok(()),
            ((name, panicked), _, _) = watched => {
                health.set_dead();
                tracing::error!(task = name, panicked, "a background task stopped; the relay stops");
                Err(RelayError::TaskDied(name))
            }
        };
        for abort in aborts {
            abort.abort();
        }
        if let Some(e) = endpoint {
            e.close(quic::CLOSE_SHUTDOWN.into(), b"");
        }
        if let Err(e) = server::lock(&hub).switchboard().store().wipe() {
            tracing::error!(error = %e, "the session store could not be wiped");
        }
        result
    }
}

/// Crates whose logs never reach the relay's output: they name peer addresses.
const QUIET_CRATES: [&str; 4] = ["quinn", "quinn_proto", "quinn_udp", "web_transport_quinn"];

/// Send the relay's logs to standard output, filtered by `APPRODO_LOG` (default `info`).
/// Structured fields only; the relay never logs an address, a token, a key or content.
///
/// The subscriber is set with `set_global_default`, not `init()`: `init()` would also route
/// the `log` crate into these logs, and webrtc-rs logs ICE candidates (browsers' addresses)
/// through `log`.
pub fn init_logs() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("APPRODO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // quinn logs peer addresses at trace level (migration, stray packets): its crates are
    // silenced whatever the filter asks, as webrtc-rs's `log` output is.
    for quiet in QUIET_CRATES {
        if let Ok(directive) = format!("{quiet}=off").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Run a relay: the seam every integration test and `main` use.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RelayError> {
    Relay::new(config)?.run(listeners, shutdown).await
}
