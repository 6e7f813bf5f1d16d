//! The Approdo relay: HTTP and WebSocket front, the switchboard, the crypto-shredded
//! ephemeral store, and the admin commands that manage the organisation's keys.
//!
//! [`run`] is the one seam: tests and `main` both call it with a configuration, bound
//! listeners and a shutdown future.

pub mod accept;
pub mod admin;
pub mod bus;
pub mod config;
pub mod error;
pub mod hangup;
pub mod metrics;
pub mod observatory;
pub mod pages;
pub mod preload;
pub mod quic;
pub mod ratelimit;
pub mod server;
pub mod sfu;
pub mod store;
pub mod switchboard;
pub mod thread_runtime;
pub mod tls;
pub mod turn;

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
}

impl Listeners {
    /// HTTP and WebSocket on `http` (HTTPS and QUIC are added with [`Relay::serve_https`]
    /// and [`Relay::serve_quic`]).
    pub fn http(http: tokio::net::TcpListener) -> Self {
        Listeners { http }
    }
}

/// A relay ready to run, with a handle tests use to look inside.
pub struct Relay {
    hub: SharedHub,
    config: Arc<Config>,
    health: Arc<server::Health>,
    supervised: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
    certificates: Option<Arc<tls::Certificates>>,
    served: Arc<pages::Served>,
    https: Option<tokio::net::TcpListener>,
    quic: Option<quic::QuicListener>,
    metrics: Option<tokio::net::TcpListener>,
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
    certificates: Option<Arc<tls::Certificates>>,
    served: Arc<pages::Served>,
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

    /// Re-read the certificate files (what `SIGHUP` does). On error the certificate in use
    /// stays. `Ok(false)`: nothing to re-read (no TLS, or a self-signed certificate).
    pub fn reload_certificates(&self) -> Result<bool, RelayError> {
        match &self.certificates {
            Some(c) => Ok(c.reload()?),
            None => Ok(false),
        }
    }

    /// Renew the self-signed certificate now, as the renewal task does when it is due:
    /// `/config.json`, its integrity entry and the bundle hash follow. Returns the new
    /// bundle hash (`None` when the pages are not built in); `Ok(None)` as well when there
    /// is nothing to renew (no TLS, or certificates from files).
    pub fn renew_certificate(&self) -> Result<Option<String>, RelayError> {
        match &self.certificates {
            Some(c) if c.renew(std::time::SystemTime::now())? => {
                Ok(certificate_renewed(c, &self.served))
            }
            _ => Ok(None),
        }
    }

    /// The certificate store, when TLS is configured.
    pub fn certificates(&self) -> Option<Arc<tls::Certificates>> {
        self.certificates.clone()
    }

    /// The bundle hash of what the pages serve now.
    pub fn bundle_hash(&self) -> Option<String> {
        self.served.bundle_hash()
    }

    /// Connections accepted since start, per transport (WebSocket, QUIC, WebTransport).
    pub fn transport_counts(&self) -> server::TransportCounts {
        server::lock(&self.hub).transport_counts()
    }

    /// QUIC Retry packets sent since start: each asked a client to prove its address
    /// before the relay spent a handshake on it (more than
    /// [`quic::RETRY_ABOVE_HANDSHAKES`] handshakes in progress, or an unproven address over
    /// its share). A count only, never who.
    pub fn quic_retries(&self) -> u64 {
        server::lock(&self.hub).quic_retries()
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

    /// The SFU's candidate addresses, one per shard (empty before it starts).
    pub fn sfu_candidates(&self) -> Vec<std::net::SocketAddr> {
        server::lock(&self.hub)
            .sfu()
            .map(|s| s.candidates().to_vec())
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
        let certificates = match &config.tls {
            Some(source) => Some(tls::Certificates::new(
                source.clone(),
                std::time::SystemTime::now(),
            )?),
            None => None,
        };
        let served = pages::Served::new(config.clone());
        if let Some(c) = &certificates {
            served.set_certificate_hashes(c.web_transport_hashes());
        }
        Ok(Relay {
            hub: Arc::new(Mutex::new(Hub::new(switchboard))),
            config,
            health: Arc::new(server::Health::default()),
            supervised: Vec::new(),
            certificates,
            served,
            https: None,
            quic: None,
            metrics: None,
        })
    }

    /// Also serve the same routes over HTTPS on `listener` (TLS from the configured
    /// certificate, `Strict-Transport-Security` on every response). An error when the
    /// configuration has no TLS source.
    pub fn serve_https(&mut self, listener: tokio::net::TcpListener) -> Result<(), RelayError> {
        if self.certificates.is_none() {
            return Err(RelayError::Config(
                "HTTPS needs a certificate (tls_cert and tls_key, or tls_self_signed)".into(),
            ));
        }
        self.https = Some(listener);
        Ok(())
    }

    /// Also serve QUIC on `listener`: native clients (ALPN `approdo/1`) and browsers
    /// (WebTransport), with the configured certificate. `/config.json` lists the port at
    /// once (so the bundle hash changes: read it again with [`Relay::bundle_hash`]). An
    /// error when the configuration has no TLS source.
    pub fn serve_quic(&mut self, listener: quic::QuicListener) -> Result<(), RelayError> {
        if self.certificates.is_none() {
            return Err(RelayError::Config(
                "QUIC needs a certificate (tls_cert and tls_key, or tls_self_signed)".into(),
            ));
        }
        self.served
            .set_web_transport_port(Some(listener.advertised_port()));
        self.quic = Some(listener);
        Ok(())
    }

    /// Also serve Prometheus metrics on `listener`, a separate listener the deployer keeps
    /// off the public network ([`metrics`]): `GET /metrics` only, counts only. The public
    /// listeners never serve it.
    pub fn serve_metrics(&mut self, listener: tokio::net::TcpListener) {
        self.metrics = Some(listener);
    }

    /// The certificate store, for the QUIC endpoint's rustls configuration
    /// ([`tls::Certificates::tls13_server_config`]); `None` without TLS.
    pub fn certificates(&self) -> Option<Arc<tls::Certificates>> {
        self.certificates.clone()
    }

    /// What the page routes serve: the QUIC endpoint sets its WebTransport port there
    /// ([`pages::Served::set_web_transport_port`]).
    pub fn served(&self) -> Arc<pages::Served> {
        self.served.clone()
    }

    /// The bundle hash of what this relay serves now (the one to publish; it changes at
    /// each renewal of a self-signed certificate). `None` when the pages are not built in.
    pub fn bundle_hash(&self) -> Option<String> {
        self.served.bundle_hash()
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
            certificates: self.certificates.clone(),
            served: self.served.clone(),
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
            certificates,
            served,
            https,
            quic: quic_listener,
            metrics: metrics_listener,
        } = self;
        let acceptor = match (&https, &certificates) {
            (Some(_), Some(c)) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
                c.server_config(&[tls::ALPN_HTTP1])?,
            ))),
            _ => None,
        };
        let limits = Arc::new(config.limits.clone());
        let webtransport_port = quic_listener
            .as_ref()
            .map(quic::QuicListener::advertised_port);
        let router = server::app(
            hub.clone(),
            health.clone(),
            &config,
            pages::router(served.clone()),
            webtransport_port,
        );
        supervised.push(("ticker", tokio::spawn(server::ticker(hub.clone()))));
        if let Some(c) = certificates.as_ref().filter(|c| c.is_self_signed()) {
            supervised.push((
                "certificate renewal",
                tokio::spawn(renew_certificates(c.clone(), served.clone())),
            ));
        }
        let places = server::Places::new(&config.limits);
        let bus = config.bus.clone().map(|c| (c, bus::BusHandle::default()));
        let metrics_sources = metrics::Sources {
            hub: hub.clone(),
            refused_places: places.refused.clone(),
            bus: bus.as_ref().map(|(_, handle)| handle.clone()),
        };
        let mut bus_runtime = None;
        if let Some((bus_config, handle)) = bus {
            tracing::info!(node = bus_config.node(), "joining the bus");
            let (commands, received) = tokio::sync::mpsc::channel(bus::forward::COMMAND_QUEUE);
            // The bus task, the NATS client's connection task and every carrier run on a
            // thread of their own (`thread_runtime`).
            let runtime = thread_runtime::ThreadRuntime::start("approdo-bus")?;
            server::lock(&hub).set_bus(
                commands,
                std::time::Duration::from_secs(config.limits.idle_timeout_secs),
                runtime.handle().clone(),
            );
            let bus_hub = hub.clone();
            supervised.push((
                "bus",
                runtime.handle().spawn(async move {
                    if let Err(e) = bus::run(bus_config, handle, bus_hub, received).await {
                        tracing::error!(error = %e, "the bus stopped");
                    }
                }),
            ));
            bus_runtime = Some(runtime);
        }
        let mut endpoint = None;
        let mut quic_shard = None;
        if let Some(listener) = quic_listener {
            let resolver: Arc<dyn rustls::server::ResolvesServerCert> = certificates
                .clone()
                .ok_or_else(|| RelayError::Config("QUIC needs a certificate".into()))?;
            let shard = thread_runtime::ThreadRuntime::start("approdo-quic")?;
            let e = {
                let _in_shard = shard.handle().enter();
                quic::endpoint(listener.socket, resolver)?
            };
            endpoint = Some(e.clone());
            supervised.push((
                "quic",
                shard
                    .handle()
                    .spawn(quic::serve(e, hub.clone(), limits.clone(), places.clone())),
            ));
            quic_shard = Some(shard);
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
        })?;
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
        let shutdown = futures_util::FutureExt::shared(Box::pin(shutdown));
        let plain = server::serve(
            listeners.http,
            router.clone(),
            limits.clone(),
            places.clone(),
            proxied,
            None,
            shutdown.clone(),
        );
        let scrapes_shutdown = shutdown.clone();
        let scrapes = async {
            if let Some(listener) = metrics_listener {
                metrics::serve(listener, metrics_sources, scrapes_shutdown).await;
            }
        };
        let secure = async {
            if let (Some(listener), Some(acceptor)) = (https, acceptor) {
                server::serve(
                    listener,
                    router,
                    limits,
                    places,
                    proxied,
                    Some(acceptor),
                    shutdown,
                )
                .await;
            }
        };
        let serving = async { tokio::join!(plain, secure, scrapes) };
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
            // Let the shard send every client its close before its thread stops.
            let _ = tokio::time::timeout(quic::CLOSE_FLUSH, e.wait_idle()).await;
        }
        drop(quic_shard);
        drop(bus_runtime);
        if let Err(e) = server::lock(&hub).switchboard().store().wipe() {
            tracing::error!(error = %e, "the session store could not be wiped");
        }
        result
    }
}

/// After a renewal of the self-signed certificate: list the new hashes in `/config.json`
/// (which changes the manifest and the bundle hash) and say so. Returns the new bundle hash.
fn certificate_renewed(c: &tls::Certificates, served: &pages::Served) -> Option<String> {
    let bundle_hash = served.set_certificate_hashes(c.web_transport_hashes());
    tracing::info!(
        certificate_sha256 = %hex::encode(c.current_hash()),
        bundle_hash = bundle_hash.as_deref().unwrap_or("none"),
        "self-signed certificate renewed; the published bundle hash changes with it"
    );
    bundle_hash
}

/// Renew the self-signed certificate when due (checked every [`tls::RENEW_CHECK`]). A
/// failure keeps the current one (still valid for days) and is retried at the next check.
async fn renew_certificates(c: Arc<tls::Certificates>, served: Arc<pages::Served>) {
    loop {
        tokio::time::sleep(tls::RENEW_CHECK).await;
        match c.renew_if_due(std::time::SystemTime::now()) {
            Ok(true) => {
                certificate_renewed(&c, &served);
            }
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "the self-signed certificate was not renewed"),
        }
    }
}

/// Crates whose logs never reach the relay's output: they name peer addresses.
const QUIET_CRATES: [&str; 4] = ["quinn", "quinn_proto", "quinn_udp", "web_transport_quinn"];

/// Send the relay's logs to standard output, filtered by `APPRODO_LOG` (default `info`).
/// Structured fields only; the relay never logs an address, a token, a key or content.
///
/// The subscriber is set with `set_global_default`, not `init()`: `init()` would also route
/// the `log` crate into these logs, and `rtc` (the SFU's WebRTC core) logs ICE candidates
/// (browsers' addresses) through `log`.
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
