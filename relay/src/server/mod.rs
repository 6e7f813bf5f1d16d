//! The network shell around the switchboard: an HTTP server (axum on hyper, with a header
//! timeout that `axum::serve` does not set) and one task pair per WebSocket.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use approdo_core::limits::MAX_FRAME_LEN;
use approdo_core::wire::ErrorCode;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::Service;

use crate::switchboard::ConnId;

mod forwarded;
mod hub;

pub(crate) use hub::Outgoing;
pub use hub::{Health, Hub, SharedHub, Transport, TransportCounts, lock};

/// Initial WebSocket read buffer. tungstenite's default (128 KiB) would be most of an idle
/// connection's memory; chat frames are small and a large one just takes more reads.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes buffered before a write goes out on its own (we flush explicitly anyway).
const WS_WRITE_BUFFER: usize = 16 * 1024;
/// Most messages handled under one lock before results are written.
const READ_BATCH: usize = 64;
/// How often the switchboard's clock ticks.
const TICK: Duration = Duration::from_secs(1);
/// How long a closing connection may take to write what is queued for it (its last error
/// above all) and its Close frame, or to read what its client is still sending so the
/// close is not turned into a reset that destroys that error unread.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long `/healthz` waits for the hub's lock before it reports the relay wedged.
pub const HEALTH_LOCK_BOUND: Duration = Duration::from_secs(1);
/// How often `/healthz` retries the lock within that bound (never blocking a worker).
const HEALTH_LOCK_RETRY: Duration = Duration::from_millis(5);
/// WebSocket close code "message too big" (RFC 6455 §7.4.1).
const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket close code "protocol error" (RFC 6455 §7.4.1).
const CLOSE_PROTOCOL: u16 = 1002;

enum WsErrorKind {
    TooBig,
    Protocol,
    Gone,
}

fn ws_error_kind(e: axum::Error) -> WsErrorKind {
    use tokio_tungstenite::tungstenite::Error as E;
    let inner = e.into_inner();
    match inner.downcast_ref::<E>() {
        Some(E::Capacity(_)) => WsErrorKind::TooBig,
        Some(E::Protocol(p)) if is_client_gone(p) => WsErrorKind::Gone,
        Some(E::Protocol(_) | E::Utf8(_)) => WsErrorKind::Protocol,
        _ => WsErrorKind::Gone,
    }
}

fn is_client_gone(p: &tokio_tungstenite::tungstenite::error::ProtocolError) -> bool {
    matches!(
        p,
        tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
    )
}

#[derive(Clone)]
struct AppState {
    hub: SharedHub,
    health: Arc<Health>,
    limits: Arc<crate::config::Limits>,
    address_header: Option<axum::http::HeaderName>,
}

/// The HTTP routes. Built apart from the listener so tests can call it directly.
pub fn app(
    hub: SharedHub,
    health: Arc<Health>,
    config: &crate::config::Config,
    pages: Router,
    webtransport_port: Option<u16>,
) -> Router {
    let state = AppState {
        hub,
        health,
        limits: Arc::new(config.limits.clone()),
        address_header: config
            .client_address_header
            .as_ref()
            .and_then(|h| axum::http::HeaderName::from_bytes(h.as_bytes()).ok()),
    };
    Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(pages)
        .layer(axum::middleware::map_response(
            crate::pages::security_headers,
        ))
        .layer(axum::middleware::from_fn(move |req, next| {
            allow_webtransport(req, next, webtransport_port)
        }))
        .layer(axum::middleware::from_fn(close_refused_upgrades))
}

/// With a QUIC endpoint, every page's CSP also allows WebTransport to it, on the host the
/// page was loaded from ([`crate::pages::csp_with_webtransport`]).
async fn allow_webtransport(
    req: axum::extract::Request,
    next: axum::middleware::Next,
    port: Option<u16>,
) -> Response {
    let csp = port.and_then(|port| {
        let host = req.headers().get(axum::http::header::HOST)?.to_str().ok()?;
        crate::pages::csp_with_webtransport(host, port)
    });
    let mut response = next.run(req).await;
    if let Some(value) = csp.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// A refused upgrade ends its connection: the request-head check in `accept` stops
/// checking once an upgrade is asked for, so hyper must not read another request there.
async fn close_refused_upgrades(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let upgrade = req.headers().contains_key(axum::http::header::UPGRADE);
    let mut response = next.run(req).await;
    if upgrade && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// 200 while the background tasks live and the hub's lock can be taken within
/// [`HEALTH_LOCK_BOUND`]; 503 otherwise (a wedged or poisoned switchboard). The lock is
/// tried, never waited on, so a wedged relay cannot tie up a runtime worker here.
async fn healthz(State(state): State<AppState>) -> Response {
    let unhealthy = || (StatusCode::SERVICE_UNAVAILABLE, "unhealthy").into_response();
    if !state.health.alive() {
        return unhealthy();
    }
    let deadline = Instant::now() + HEALTH_LOCK_BOUND;
    loop {
        // The guard is dropped within this statement, never held across an await.
        let busy = match state.hub.try_lock() {
            Ok(_) => false,
            Err(std::sync::TryLockError::Poisoned(_)) => return unhealthy(),
            Err(std::sync::TryLockError::WouldBlock) => true,
        };
        if !busy {
            return "ok".into_response();
        }
        if Instant::now() >= deadline {
            return unhealthy();
        }
        tokio::time::sleep(HEALTH_LOCK_RETRY).await;
    }
}

async fn ws_upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let now = Instant::now();
    // Behind a local reverse proxy, the proxy tells us the client's address; from anyone
    // else the header is ignored.
    let address = state
        .address_header
        .as_ref()
        .filter(|_| peer.ip().is_loopback())
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .unwrap_or(peer.ip());
    // The address becomes an HMAC tag here and is not kept or logged anywhere.
    let (tag, conn) = {
        let mut hub = lock(&state.hub);
        let Some(tag) = hub.switchboard_mut().admit(address, now) else {
            return (StatusCode::TOO_MANY_REQUESTS, "busy").into_response();
        };
        (tag, hub.allocate_conn())
    };
    let limits = state.limits.clone();
    ws.max_message_size(MAX_FRAME_LEN + 1024)
        .max_frame_size(MAX_FRAME_LEN + 1024)
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .on_upgrade(move |socket| connection(socket, state.hub, conn, tag, limits))
}

async fn connection(
    socket: WebSocket,
    hub: SharedHub,
    conn: ConnId,
    tag: crate::ratelimit::AddressTag,
    limits: Arc<crate::config::Limits>,
) {
    let mut rx = lock(&hub).attach(conn, tag, Transport::WebSocket);
    tracing::debug!(conn, "connection open");
    let (mut sink, mut stream) = socket.split();
    // The writer ends when the hub drops this connection's sender (after writing what was
    // queued before) or after writing a Close.
    let writer = async move {
        // Write everything already queued, then flush once: one system call for a burst of
        // frames instead of one per frame.
        'outer: while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(out) = next {
                let close = match out {
                    Outgoing::Frame(bytes) => {
                        if sink.feed(Message::Binary(bytes)).await.is_err() {
                            break 'outer;
                        }
                        None
                    }
                    Outgoing::Close => Some(None),
                    Outgoing::CloseWith(code) => Some(Some(axum::extract::ws::CloseFrame {
                        code,
                        reason: "".into(),
                    })),
                };
                if let Some(frame) = close {
                    let _ = sink.send(Message::Close(frame)).await;
                    break 'outer;
                }
                next = rx.try_recv().ok();
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    // Set once the writer is done: the reader then only drains what the client still
    // sends (so closing does not reset the connection before the client read our last
    // frames), handing nothing more to the switchboard.
    let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_closing = closing.clone();
    let reader_hub = hub.clone();
    let reader = async move {
        let mut timeout = Duration::from_secs(limits.first_frame_timeout_secs);
        loop {
            let next = tokio::time::timeout(timeout, stream.next()).await;
            timeout = Duration::from_secs(limits.idle_timeout_secs);
            if reader_closing.load(Ordering::SeqCst) {
                match next {
                    Ok(Some(Ok(_))) => continue,
                    _ => return None,
                }
            }
            let msg = match next {
                Err(_) => {
                    let mut h = lock(&reader_hub);
                    h.refuse(conn, ErrorCode::IdleTimeout);
                    h.flush();
                    return None;
                }
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    // The WebSocket layer refused the input: a message over its size limit
                    // gets its reason and the close code "message too big"; a protocol
                    // violation is malformed input; a vanished client is just gone.
                    let code = match ws_error_kind(e) {
                        WsErrorKind::TooBig => (ErrorCode::FrameTooLarge, CLOSE_TOO_BIG),
                        WsErrorKind::Protocol => (ErrorCode::Malformed, CLOSE_PROTOCOL),
                        WsErrorKind::Gone => return None,
                    };
                    let mut h = lock(&reader_hub);
                    h.send_frame(
                        conn,
                        &approdo_core::wire::RelayFrame::Error { code: code.0 },
                    );
                    return Some(code.1);
                }
                Ok(Some(Ok(m))) => m,
            };
            // Handle this message and any already waiting under one lock, then write the
            // results once: fewer lock round trips, and one `Accepted` per burst.
            let mut h = lock(&reader_hub);
            let mut next = Some(msg);
            let mut handled = 0;
            let mut closed = false;
            while let Some(msg) = next.take() {
                match msg {
                    Message::Binary(bytes) => h.handle(conn, &bytes),
                    Message::Text(_) => h.refuse(conn, ErrorCode::Malformed),
                    Message::Close(_) => closed = true,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
                handled += 1;
                if closed || handled >= READ_BATCH {
                    break;
                }
                next = match stream.next().now_or_never() {
                    Some(Some(Ok(m))) => Some(m),
                    _ => None,
                };
            }
            h.flush();
            if closed {
                return None;
            }
        }
    };
    tokio::pin!(writer);
    tokio::pin!(reader);
    let (writer_done, close) = tokio::select! {
        _ = &mut writer => (true, None),
        code = &mut reader => (false, Some(code.map_or(Outgoing::Close, Outgoing::CloseWith))),
    };
    {
        // From now on the switchboard treats the participant as away (what it is sent is
        // kept for its resume), whatever the socket still does below.
        lock(&hub).detach(conn, close);
    }
    if writer_done {
        // Our Close is written: read (and ignore) what the client still sends, for a
        // bounded time, so its socket is not reset before it read our last frames.
        closing.store(true, Ordering::SeqCst);
        let _ = tokio::time::timeout(CLOSE_GRACE, &mut reader).await;
    } else {
        // The client is gone or was refused: what was queued before (its last error above
        // all) is written, then a Close, within a bound.
        let _ = tokio::time::timeout(CLOSE_GRACE, &mut writer).await;
    }
    tracing::debug!(conn, "connection closed");
}

/// Tick the switchboard's clock until shutdown. Returns (and so stops the relay, see
/// `Relay::run`) when the hub's lock is poisoned: a panic left the switchboard in an
/// unknown state, and serving on from it could lose or misroute messages unseen.
pub async fn ticker(hub: SharedHub) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        // The lock is tried, never waited on: a wedged switchboard must not also block a
        // runtime worker (and whatever task waits in its queue, the health check included).
        loop {
            match try_tick(&hub) {
                Tick::Done => break,
                Tick::Busy => tokio::time::sleep(HEALTH_LOCK_RETRY).await,
                Tick::Poisoned => {
                    tracing::error!("the switchboard's lock is poisoned by a panic; stopping");
                    return;
                }
            }
        }
    }
}

/// What one attempt at a tick found.
enum Tick {
    Done,
    Busy,
    Poisoned,
}

fn try_tick(hub: &SharedHub) -> Tick {
    match hub.try_lock() {
        Ok(mut h) => {
            let now = Instant::now();
            h.switchboard_mut().tick(now);
            h.expire_silent_carried(now);
            h.flush();
            Tick::Done
        }
        Err(std::sync::TryLockError::WouldBlock) => Tick::Busy,
        Err(std::sync::TryLockError::Poisoned(_)) => Tick::Poisoned,
    }
}

/// The places connections take for their whole life, shared by every transport: one
/// count of all connections (`max_connections`) and one per address
/// (`connections_per_addr`), so a client cannot double its share by mixing HTTP, HTTPS and
/// QUIC.
#[derive(Clone)]
pub struct Places {
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    pub(crate) per_addr: Arc<Mutex<crate::ratelimit::ConnectionCounter>>,
    /// Connections closed for want of a place (a count for the metrics endpoint).
    pub(crate) refused: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Places {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Places").finish_non_exhaustive()
    }
}

impl Places {
    /// Empty counts for these limits.
    pub fn new(limits: &crate::config::Limits) -> Self {
        Places {
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
            per_addr: Arc::new(Mutex::new(crate::ratelimit::ConnectionCounter::new(
                limits.connections_per_addr,
                Instant::now(),
            ))),
            refused: Arc::default(),
        }
    }

    /// Count a connection closed for want of a place.
    pub(crate) fn refuse(refused: &std::sync::atomic::AtomicU64) {
        refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accept HTTP connections until `shutdown` resolves. Every connection first takes a
/// place in its address's share (`connections_per_addr`, counted before any HTTP is read,
/// for the connection's whole life) and in the global `max_connections`; its request heads
/// are checked by [`crate::accept::GuardedStream`]; hyper adds a header read timeout.
/// `proxied`: a local reverse proxy forwards clients, so loopback peers are not counted per
/// address (they are all the proxy).
///
/// With `tls`, this is the HTTPS listener: the TLS handshake runs first, within
/// `tls_handshake_timeout_secs`, while the connection already holds its places (so a
/// handshake flood from one address is bounded by its share), then the same checks run on
/// the decrypted stream, and every response, refusals included, carries
/// `Strict-Transport-Security`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Arc<crate::config::Limits>,
    places: Places,
    proxied: bool,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let Places {
        permits,
        per_addr,
        refused,
    } = places;
    let router = if tls.is_some() {
        router.layer(axum::middleware::map_response(strict_transport_security))
    } else {
        router
    };
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let slot = if proxied && peer.ip().to_canonical().is_loopback() {
            None
        } else {
            match crate::accept::ConnectionSlot::take(&per_addr, peer.ip(), Instant::now()) {
                Some(slot) => Some(slot),
                None => {
                    drop(stream); // this address holds its share: close at once
                    Places::refuse(&refused);
                    continue;
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream); // over capacity: close at once
            Places::refuse(&refused);
            continue;
        };
        // Chat is many small writes; Nagle's algorithm would hold them back ~40 ms.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let header_timeout = Duration::from_secs(limits.header_timeout_secs);
        let handshake_timeout = Duration::from_secs(limits.tls_handshake_timeout_secs);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let io = crate::accept::GuardedStream::new(stream, permit, slot);
                    serve_connection(io, peer, router, header_timeout).await;
                }
                Some(acceptor) => {
                    // The places are held through the handshake and dropped with it on
                    // failure or timeout.
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                    else {
                        tracing::debug!("tls handshake failed or timed out");
                        return;
                    };
                    let io = crate::accept::GuardedStream::new(stream, permit, slot).with_hsts();
                    serve_connection(io, peer, router, header_timeout).await;
                }
            }
        });
    }
}

/// Serve HTTP/1.1 (with upgrades) on one checked connection.
async fn serve_connection<S>(
    io: crate::accept::GuardedStream<S>,
    peer: SocketAddr,
    router: Router,
    header_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { router.call(req.map(axum::body::Body::new)).await }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let _ = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

/// Add `Strict-Transport-Security` (HTTPS responses only).
async fn strict_transport_security(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static(crate::tls::HSTS),
    );
    response
}
