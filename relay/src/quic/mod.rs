//! The QUIC shell around the switchboard: one quinn endpoint serving native clients (ALPN
//! `approdo/1`) and browsers (WebTransport over HTTP/3, ALPN `h3`, path [`WT_PATH`]).
//!
//! Every accepted connection becomes one relay connection exactly like a WebSocket one:
//! the same switchboard entry points, per-connection state, budgets and timeouts, the same
//! count of places per address and in all. The client opens one bidirectional stream and
//! both sides write frames on it, each prefixed by its length as a big-endian `u32`
//! ([`conn`]). State is per connection, never per address: a client whose address changes
//! (QUIC connection migration) keeps its connection, its session and its place.

mod conn;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::server::{Places, SharedHub, Transport, lock};

/// ALPN of the native protocol: the WebSocket's frames, length-prefixed on one stream.
pub const ALPN_NATIVE: &[u8] = b"approdo/1";
/// ALPN of HTTP/3, which WebTransport runs on.
pub const ALPN_H3: &[u8] = b"h3";
/// The WebTransport session's path (`https://host:port/wt`).
pub const WT_PATH: &str = "/wt";

/// Application close code sent to every client when the relay shuts down.
pub const CLOSE_SHUTDOWN: u16 = 5;
/// How long a stopping relay waits for its close to reach QUIC clients.
pub const CLOSE_FLUSH: Duration = Duration::from_millis(300);

pub use conn::{
    CLOSE_FRAME_TOO_LARGE, CLOSE_IDLE, CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_STREAM_LIMIT, PREFIX_LEN,
};

/// Idle timeout of a QUIC connection: with no packet from the peer for this long, the
/// connection is gone and a client falls back to `Resume` on a new one. Long enough to
/// ride out a handover between a shelter's Wi-Fi and mobile data (typically 1–10 s of
/// silence), short enough that a vanished phone's seat is freed soon.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive: a packet at least this often keeps NAT bindings (often 30 s for UDP on
/// mobile networks) and the idle timer alive while nobody types. A third of the idle
/// timeout, so two lost keep-alives do not end the connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// Handshakes in progress above which unvalidated clients are sent a Retry first, so a
/// flood of Initial packets with forged source addresses costs the relay no state.
pub const RETRY_ABOVE_HANDSHAKES: usize = 32;
/// Bidirectional streams a client may open at once: one for native clients; WebTransport
/// needs a second (its CONNECT request is a stream too). Any stream beyond the relay's one
/// closes the connection ([`conn::CLOSE_STREAM_LIMIT`]).
const MAX_BIDI_STREAMS: u32 = 2;
/// Unidirectional streams: HTTP/3's control stream and QPACK's two streams (browsers);
/// native clients may open none.
const MAX_UNI_STREAMS: u32 = 3;
/// Flow-control window of one stream: one frame of the largest size and its prefix fit,
/// with room for the next.
const STREAM_WINDOW: u32 = 160 * 1024;
/// Flow-control window of the whole connection.
const CONNECTION_WINDOW: u32 = 256 * 1024;
/// Bytes the relay buffers towards one client before its writer waits.
const SEND_WINDOW: u64 = 256 * 1024;
/// ACK frequency (draft-ietf-quic-ack-frequency) the relay asks its peers for: acknowledge
/// after this many ack-eliciting packets (instead of every second one), so a burst of
/// chat frames costs the client and the relay fewer ACK packets to build, encrypt and read.
const ACK_ELICITING_THRESHOLD: u32 = 8;
/// ... or after this long at most. Shorter than QUIC's default 25 ms: a peer's
/// `max_ack_delay` is part of the probe timeout, so a lost tail packet (the last line of a
/// conversation, on a lossy mobile link) is resent sooner.
const ACK_DELAY: Duration = Duration::from_millis(5);
/// Bytes of kernel buffer the relay asks for on its UDP socket, each way.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Connection attempts queued before the accept loop has looked at them.
const MAX_INCOMING: usize = 1024;

/// A bound UDP socket for the QUIC endpoint, handed to [`crate::Relay::serve_quic`]. The
/// certificate is the relay's own ([`crate::tls::Certificates`]), so renewals and SIGHUP
/// reloads reach QUIC handshakes as they reach HTTPS ones.
pub struct QuicListener {
    /// The socket (tests bind port 0).
    pub socket: std::net::UdpSocket,
    /// The UDP port clients are told, when it differs from the bound one (a firewall or
    /// NAT forwarding 443 to an unprivileged port).
    pub advertised_port: Option<u16>,
}

impl std::fmt::Debug for QuicListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicListener").finish_non_exhaustive()
    }
}

impl QuicListener {
    /// Bind `addr` (UDP).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(QuicListener {
            socket: std::net::UdpSocket::bind(addr)?,
            advertised_port: None,
        })
    }

    /// The port `/config.json` gives clients.
    pub fn advertised_port(&self) -> u16 {
        self.advertised_port
            .unwrap_or_else(|| self.socket.local_addr().map(|a| a.port()).unwrap_or(0))
    }
}

/// The quinn endpoint on `socket`: TLS 1.3 (ring), the two ALPNs, no 0-RTT (replayable),
/// the stream and flow-control limits above, migration allowed.
pub fn endpoint(
    socket: std::net::UdpSocket,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<quinn::Endpoint, crate::RelayError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| crate::RelayError::Config(format!("QUIC TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    tls.alpn_protocols = vec![ALPN_NATIVE.to_vec(), ALPN_H3.to_vec()];
    // 0-RTT data can be replayed by anyone who saw it: never accepted.
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| crate::RelayError::Config(format!("QUIC TLS: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport_config()));
    server.migration(true);
    server.max_incoming(MAX_INCOMING);
    enlarge_buffers(&socket);
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| crate::RelayError::Config(format!("QUIC endpoint: {e}")))
}

/// Ask the kernel for [`SOCKET_BUFFER`] each way. The default receive buffer (about 208 KiB
/// on Linux) overflows when the relay's thread is briefly busy while many clients send,
/// and a datagram dropped there is a loss to QUIC: a retransmission and a smaller
/// congestion window for a client that did nothing wrong. TCP has no such loss (its sender
/// waits). Linux caps the request at `net.core.rmem_max`/`wmem_max` (deploy/README.md);
/// failing to get it is not fatal, only slower under load.
fn enlarge_buffers(socket: &std::net::UdpSocket) {
    let Ok(state) = quinn::udp::UdpSocketState::new(socket.into()) else {
        return;
    };
    let recv = state.set_recv_buffer_size(socket.into(), SOCKET_BUFFER);
    let send = state.set_send_buffer_size(socket.into(), SOCKET_BUFFER);
    if recv.is_err() || send.is_err() {
        tracing::warn!("the QUIC socket's buffers could not be enlarged");
    }
    tracing::debug!(
        recv = state.recv_buffer_size(socket.into()).unwrap_or(0),
        send = state.send_buffer_size(socket.into()).unwrap_or(0),
        "QUIC socket buffers"
    );
}

/// Timeouts, keep-alive and limits of every connection (see the constants).
fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(MAX_BIDI_STREAMS.into())
        .max_concurrent_uni_streams(MAX_UNI_STREAMS.into())
        .stream_receive_window(STREAM_WINDOW.into())
        .receive_window(CONNECTION_WINDOW.into())
        .send_window(SEND_WINDOW)
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok())
        .ack_frequency_config(Some(ack_frequency()));
    t
}

/// What the relay asks of its peers' acknowledgements (ignored by peers without the
/// extension, browsers today).
fn ack_frequency() -> quinn::AckFrequencyConfig {
    let mut a = quinn::AckFrequencyConfig::default();
    a.ack_eliciting_threshold(ACK_ELICITING_THRESHOLD.into())
        .max_ack_delay(Some(ACK_DELAY));
    a
}

/// Accept QUIC connections on `endpoint` until the task is dropped. Before any handshake
/// work: a Retry when many handshakes are in progress (address validation), then a place
/// for the address and in all (refused without a handshake when there is none), then the
/// switchboard's per-address connection rate. Addresses are never logged.
pub async fn serve(
    endpoint: quinn::Endpoint,
    hub: SharedHub,
    limits: Arc<crate::config::Limits>,
    places: Places,
) {
    let handshakes = Arc::new(AtomicUsize::new(0));
    let retries = lock(&hub).quic_retry_counter();
    let retry = |incoming: quinn::Incoming| {
        if incoming.retry().is_ok() {
            retries.fetch_add(1, Ordering::Relaxed);
        }
    };
    while let Some(incoming) = endpoint.accept().await {
        let validated = incoming.remote_address_validated();
        let busy = handshakes.load(Ordering::Relaxed) >= RETRY_ABOVE_HANDSHAKES;
        if busy && !validated && incoming.may_retry() {
            retry(incoming);
            continue;
        }
        let ip = incoming.remote_address().ip().to_canonical();
        let now = Instant::now();
        let Some(slot) = crate::accept::ConnectionSlot::take(&places.per_addr, ip, now) else {
            // An unvalidated address could be forged to lock someone else out: make it
            // prove itself first; a proven one over its share is refused.
            if !validated && incoming.may_retry() {
                retry(incoming);
            } else {
                incoming.refuse();
                Places::refuse(&places.refused);
            }
            continue;
        };
        let Ok(permit) = places.permits.clone().try_acquire_owned() else {
            incoming.refuse();
            Places::refuse(&places.refused);
            continue;
        };
        let admitted = {
            let mut h = lock(&hub);
            h.switchboard_mut()
                .admit(ip, now)
                .map(|tag| (tag, h.allocate_conn()))
        };
        let Some((tag, conn)) = admitted else {
            incoming.refuse();
            continue;
        };
        let Ok(connecting) = incoming.accept() else {
            continue;
        };
        let hub = hub.clone();
        let limits = limits.clone();
        let handshaking = HandshakeGuard::new(handshakes.clone());
        tokio::spawn(async move {
            let handshake = Duration::from_secs(limits.header_timeout_secs);
            let Some((session, transport)) = establish(connecting, handshake, handshaking).await
            else {
                return;
            };
            conn::run(session, transport, hub, conn, tag, limits).await;
            drop((slot, permit));
        });
    }
}

/// Counts a handshake in progress until dropped.
struct HandshakeGuard(Arc<AtomicUsize>);

impl HandshakeGuard {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        HandshakeGuard(count)
    }
}

impl Drop for HandshakeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Finish the QUIC handshake, and for `h3` the WebTransport one (path [`WT_PATH`] only),
/// within `within`. `None` when the client failed, was too slow or asked for another path.
async fn establish(
    connecting: quinn::Connecting,
    within: Duration,
    _handshaking: HandshakeGuard,
) -> Option<(web_transport_quinn::Session, Transport)> {
    let work = async {
        let connection = connecting.await.ok()?;
        let alpn = connection
            .handshake_data()
            .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|d| d.protocol);
        match alpn.as_deref() {
            Some(ALPN_NATIVE) => Some((
                web_transport_quinn::Session::raw(connection),
                Transport::Quic,
            )),
            Some(ALPN_H3) => {
                let request = web_transport_quinn::Request::accept(connection)
                    .await
                    .ok()?;
                if request.url.path() != WT_PATH {
                    let _ = request
                        .reject(web_transport_quinn::http::StatusCode::NOT_FOUND)
                        .await;
                    return None;
                }
                let session = request.ok().await.ok()?;
                Some((session, Transport::WebTransport))
            }
            _ => {
                connection.close(conn::CLOSE_PROTOCOL.into(), b"");
                None
            }
        }
    };
    tokio::time::timeout(within, work).await.ok().flatten()
}
