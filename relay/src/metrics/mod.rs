//! The metrics endpoint: Prometheus text (format 0.0.4) on a listener of its own, never on
//! the public ones, for the deployer's monitoring.
//!
//! It serves `GET /metrics` and answers 404 to anything else. What it reports is counts
//! only: connections by transport, sessions waiting by configured desk and language, staff
//! online by role, calls, forwarded packets, refusals by limit, store bytes. No session,
//! participant, certificate, staff label, token or address appears in it, as a label or
//! otherwise (`tests/tests/metrics_reveal_no_session_or_address.rs`).
//!
//! A scrape takes the hub's lock as the health check does: tried, never waited on, and given
//! up after [`crate::server::HEALTH_LOCK_BOUND`] with a 503, so a wedged switchboard cannot
//! also tie up a runtime worker here. The figures are copied under the lock (one pass over
//! the sessions) and written out after it is released.

mod tally;
mod text;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use tally::ConnectionTally;
pub use text::CONTENT_TYPE;

use crate::server::{Hub, SharedHub, TransportCounts};
use crate::sfu::SfuCensus;
use crate::switchboard::Gauges;

/// The one path served.
pub const PATH: &str = "/metrics";
/// How often a scrape retries the hub's lock within its bound.
const LOCK_RETRY: Duration = Duration::from_millis(5);
/// Scrape connections served at once; further ones are closed at accept. A monitoring
/// system needs one or two.
const MAX_CONNECTIONS: usize = 8;
/// How long a scraper has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one scrape connection may live, whatever the scraper does (one request per
/// connection: no keep-alive).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Everything one scrape reports, copied under the hub's lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The switchboard's counts.
    pub switchboard: Gauges,
    /// Connections open now, per transport.
    pub open_connections: TransportCounts,
    /// Connections opened since start, per transport.
    pub opened_connections: TransportCounts,
    /// QUIC Retry packets sent since start.
    pub quic_retries: u64,
    /// The SFU's counts (zeros before it starts).
    pub sfu: SfuCensus,
    /// RTP packets the SFU forwarded since start.
    pub forwarded_packets: u64,
    /// Call members whose media moved to a new address mid-call, since start.
    pub sfu_path_moves: u64,
    /// Connections closed at accept for want of a place.
    pub refused_places: u64,
    /// The bus to the other nodes; `None` for a single node.
    pub bus: Option<crate::bus::BusGauges>,
}

impl Snapshot {
    /// Copy the counts out of the hub (the caller holds its lock).
    pub fn read(hub: &Hub, refused_places: u64, bus: Option<crate::bus::BusGauges>) -> Snapshot {
        Snapshot {
            switchboard: hub.switchboard().gauges(),
            open_connections: hub.open_transport_counts(),
            opened_connections: hub.transport_counts(),
            quic_retries: hub.quic_retries(),
            sfu: hub.sfu().map(|s| s.census()).unwrap_or_default(),
            forwarded_packets: hub.sfu().map_or(0, |s| s.forwarded_packets()),
            sfu_path_moves: hub.sfu().map_or(0, |s| s.path_moves()),
            refused_places,
            bus,
        }
    }

    /// The exposition text ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        text::render(self)
    }
}

/// Where a scrape reads from.
#[derive(Clone)]
pub(crate) struct Sources {
    /// The hub.
    pub(crate) hub: SharedHub,
    /// The count of connections refused a place ([`crate::server::Places`]).
    pub(crate) refused_places: Arc<AtomicU64>,
    /// The bus's state, when this node is one of several.
    pub(crate) bus: Option<crate::bus::BusHandle>,
}

impl Sources {
    /// A snapshot, or `None` when the hub's lock could not be had within the bound (or is
    /// poisoned).
    async fn snapshot(&self) -> Option<Snapshot> {
        let deadline = Instant::now() + crate::server::HEALTH_LOCK_BOUND;
        let bus = self.bus.as_ref().map(crate::bus::BusHandle::gauges);
        loop {
            // The guard lives within this statement, never across an await.
            let attempt = match self.hub.try_lock() {
                Ok(hub) => Ok(Snapshot::read(
                    &hub,
                    self.refused_places.load(Ordering::Relaxed),
                    bus,
                )),
                Err(std::sync::TryLockError::Poisoned(_)) => return None,
                Err(std::sync::TryLockError::WouldBlock) => Err(()),
            };
            if let Ok(snapshot) = attempt {
                return Some(snapshot);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(LOCK_RETRY).await;
        }
    }
}

/// A plain response with `Cache-Control: no-store`.
fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /metrics`: the exposition; anything else: 404.
async fn answer<B>(request: Request<B>, sources: Sources) -> Response<Body> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if request.method() != Method::GET || request.uri().path() != PATH {
        return respond(StatusCode::NOT_FOUND, PLAIN, "not found\n".into());
    }
    match sources.snapshot().await {
        Some(snapshot) => respond(StatusCode::OK, CONTENT_TYPE, snapshot.render()),
        None => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            "the switchboard is busy\n".into(),
        ),
    }
}

/// Serve scrapes on `listener` until `shutdown` resolves: HTTP/1.1, one request per
/// connection, a header timeout and a bounded life, at most [`MAX_CONNECTIONS`] at once.
pub(crate) async fn serve(
    listener: TcpListener,
    sources: Sources,
    shutdown: impl Future<Output = ()>,
) {
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let sources = sources.clone();
                async move { Ok::<_, Infallible>(answer(request, sources).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(place);
        });
    }
}
