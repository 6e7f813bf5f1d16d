//! A native driver for the sans-IO core over QUIC (quinn, ALPN `approdo/1`) or WebSocket
//! (tokio-tungstenite).
//!
//! [`Driver`] owns a [`Client`] and one connection, QUIC (`quic://HOST:PORT/?sha256=HEX`)
//! or WebSocket (`ws://HOST:PORT/ws`, `wss://HOST/ws`), chosen by the URL's scheme. It
//! writes whatever the core wants sent, feeds it what arrives with the wall-clock time, and
//! hands out the core's events. The `approdo` terminal tool and the end-to-end tests are
//! both built on it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use approdo_core::client::{Client, Event};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod config;
pub mod quic;

pub use quic::{QuicLink, QuicTarget, Trust};

/// How often an idle driver pings the relay (well under its idle timeout).
pub const PING_EVERY: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the driver waits for QUIC (discovery, handshake, stream) before it falls back
/// to WebSocket. A QUIC handshake takes one round trip (two with a Retry); with UDP
/// blocked nothing answers at all, so this bounds the extra wait of a blocked network.
pub const QUIC_FALLBACK_AFTER: Duration = Duration::from_millis(2500);

/// What can go wrong in the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The WebSocket failed or closed.
    #[error("connection: {0}")]
    Connection(String),
    /// The relay sent something the core refused.
    #[error("protocol: {0}")]
    Protocol(#[from] approdo_core::Error),
    /// Nothing matching arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// A signed revocation list file as `approdo-relay admin revoke` writes it:
/// `{"body": hex, "signature": hex}`. `None` when the file is not one. Whether the list is
/// signed by the organisation is checked by [`Client::add_revocations`], not here.
pub fn parse_revocation_file(text: &str) -> Option<approdo_core::identity::SignedRevocationList> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let body = hex::decode(value.get("body")?.as_str()?.trim()).ok()?;
    let mut signature = [0u8; 64];
    hex::decode_to_slice(value.get("signature")?.as_str()?.trim(), &mut signature).ok()?;
    Some(approdo_core::identity::SignedRevocationList { body, signature })
}

/// Seconds since the Unix epoch, for certificate expiry checks.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An open connection of either transport.
enum Link {
    Ws(Box<Ws>),
    Quic(Box<QuicLink>),
}

/// Where the driver connects, and over what.
#[derive(Clone, Debug)]
pub enum Target {
    /// A WebSocket URL (`ws://host:port/ws`).
    Ws(String),
    /// A WebSocket over TLS (`wss://host/ws`, the relay's own HTTPS) and how its
    /// certificate is trusted (a pinned hash, a CA file, or the web PKI roots).
    Wss(String, Trust),
    /// A QUIC endpoint.
    Quic(QuicTarget),
}

impl Target {
    /// `quic://…`, `ws://…` or `wss://…` (trusted by the web PKI roots).
    pub async fn parse(url: &str) -> Result<Target, DriverError> {
        if url.starts_with("quic://") {
            Ok(Target::Quic(QuicTarget::parse(url).await?))
        } else {
            Ok(Target::websocket(url, None))
        }
    }

    /// The WebSocket at `url`; for `wss://`, its certificate trusted as `trust` says
    /// (default: the web PKI roots).
    pub fn websocket(url: &str, trust: Option<Trust>) -> Target {
        if url.starts_with("wss://") {
            Target::Wss(url.to_owned(), trust.unwrap_or_else(config::web_pki))
        } else {
            Target::Ws(url.to_owned())
        }
    }
}

/// A client and its connection to the relay.
pub struct Driver {
    target: Target,
    ws: Option<Link>,
    /// The protocol state machine.
    pub client: Client,
    /// Seconds added to the wall clock before it is given to the core: a phone whose date
    /// is wrong, or a test that needs a certificate to have expired.
    pub clock_offset_secs: i64,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("connected", &self.ws.is_some())
            .finish_non_exhaustive()
    }
}

async fn open(target: &Target) -> Result<Link, DriverError> {
    match target {
        Target::Ws(url) => {
            // Small chat frames must not wait for Nagle's algorithm.
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
                .await
                .map_err(|e| DriverError::Connection(e.to_string()))?;
            Ok(Link::Ws(Box::new(ws)))
        }
        Target::Wss(url, trust) => {
            let mut tls = quic::tls_config(trust)?;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let connector = tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(tls));
            let (ws, _) =
                tokio_tungstenite::connect_async_tls_with_config(url, None, true, Some(connector))
                    .await
                    .map_err(|e| DriverError::Connection(e.to_string()))?;
            Ok(Link::Ws(Box::new(ws)))
        }
        Target::Quic(q) => Ok(Link::Quic(Box::new(QuicLink::open(q).await?))),
    }
}

impl Driver {
    /// Connect `client` to the relay at `url`: `quic://host:port/?sha256=HEX` or
    /// `ws://host:port/ws`.
    pub async fn connect(url: &str, client: Client) -> Result<Self, DriverError> {
        let target = Target::parse(url).await?;
        Self::connect_to(target, client).await
    }

    /// Connect `client` to `target`.
    pub async fn connect_to(target: Target, client: Client) -> Result<Self, DriverError> {
        let link = open(&target).await?;
        Ok(Driver {
            target,
            ws: Some(link),
            client,
            clock_offset_secs: 0,
        })
    }

    /// Connect over QUIC when the relay at `ws_url` announces it in `/config.json` and it
    /// answers within [`QUIC_FALLBACK_AFTER`]; otherwise over WebSocket at `ws_url`.
    /// `roots`: how the relay's certificate is trusted for the HTTPS fetch of
    /// `/config.json` (a `wss://` URL) and for a QUIC endpoint `/config.json` pins no hash
    /// for; `None`: the public web PKI roots.
    pub async fn connect_preferring_quic(
        ws_url: &str,
        roots: Option<Trust>,
        client: Client,
    ) -> Result<Self, DriverError> {
        let fallback = Target::websocket(ws_url, roots.clone());
        let quic = async {
            let target = config::quic_target(ws_url, roots).await?;
            let link = QuicLink::open(&target).await?;
            Ok::<_, DriverError>((target, link))
        };
        match tokio::time::timeout(QUIC_FALLBACK_AFTER, quic).await {
            Ok(Ok((target, link))) => Ok(Driver {
                target: Target::Quic(target),
                ws: Some(Link::Quic(Box::new(link))),
                client,
                clock_offset_secs: 0,
            }),
            _ => Self::connect_to(fallback, client).await,
        }
    }

    /// Which transport the driver uses: `"quic"` or `"ws"`.
    pub fn transport(&self) -> &'static str {
        match self.target {
            Target::Ws(_) | Target::Wss(..) => "ws",
            Target::Quic(_) => "quic",
        }
    }

    /// The QUIC connection, when connected over QUIC (tests read its `stable_id`).
    pub fn quic(&self) -> Option<&QuicLink> {
        match &self.ws {
            Some(Link::Quic(q)) => Some(q),
            _ => None,
        }
    }

    /// Move the QUIC connection to a new local socket (as a phone changing networks
    /// does): the same connection and session continue, with no new handshake.
    pub fn rebind(&self, socket: std::net::UdpSocket) -> Result<(), DriverError> {
        self.quic()
            .ok_or_else(|| DriverError::Connection("not connected over QUIC".into()))?
            .rebind(socket)
    }

    /// Send everything the core has queued.
    pub async fn flush(&mut self) -> Result<(), DriverError> {
        let link = self
            .ws
            .as_mut()
            .ok_or_else(|| DriverError::Connection("not connected".into()))?;
        match link {
            Link::Ws(ws) => {
                while let Some(bytes) = self.client.poll_transmit() {
                    ws.feed(Message::Binary(bytes.into()))
                        .await
                        .map_err(|e| DriverError::Connection(e.to_string()))?;
                }
                ws.flush()
                    .await
                    .map_err(|e| DriverError::Connection(e.to_string()))
            }
            Link::Quic(q) => {
                let mut frames = Vec::new();
                while let Some(bytes) = self.client.poll_transmit() {
                    frames.push(bytes);
                }
                if frames.is_empty() {
                    return Ok(());
                }
                q.write_frames(&frames).await
            }
        }
    }

    /// Send raw bytes as one frame (tests use this to send garbage).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), DriverError> {
        let link = self
            .ws
            .as_mut()
            .ok_or_else(|| DriverError::Connection("not connected".into()))?;
        match link {
            Link::Ws(ws) => ws
                .send(Message::Binary(bytes.into()))
                .await
                .map_err(|e| DriverError::Connection(e.to_string())),
            Link::Quic(q) => q.write_frames(&[bytes]).await,
        }
    }

    /// The next event, reading from the relay as needed and pinging while idle. For a
    /// single-task caller; a caller that also waits on other input uses [`Driver::flush`]
    /// and [`Driver::recv`] inside its own `select!`.
    pub async fn next_event(&mut self) -> Result<Event, DriverError> {
        loop {
            if let Some(e) = self.client.poll_event() {
                return Ok(e);
            }
            self.flush().await?;
            match tokio::time::timeout(PING_EVERY, self.recv()).await {
                Err(_) => self.client_ping(),
                Ok(r) => r?,
            }
        }
    }

    /// Read one message from the relay and give it to the core. Cancel-safe: dropping the
    /// future loses nothing, so it can sit in a `select!` beside other input.
    pub async fn recv(&mut self) -> Result<(), DriverError> {
        let link = self
            .ws
            .as_mut()
            .ok_or_else(|| DriverError::Connection("not connected".into()))?;
        let ws = match link {
            Link::Ws(ws) => ws,
            Link::Quic(q) => {
                let bytes = q.read_frame().await?;
                let now = unix_now().saturating_add_signed(self.clock_offset_secs);
                self.client.handle_bytes(&bytes, now)?;
                return Ok(());
            }
        };
        match ws.next().await {
            None => Err(DriverError::Connection("closed by the relay".into())),
            Some(Err(e)) => Err(DriverError::Connection(e.to_string())),
            Some(Ok(Message::Binary(bytes))) => {
                let now = unix_now().saturating_add_signed(self.clock_offset_secs);
                self.client.handle_bytes(&bytes, now)?;
                Ok(())
            }
            Some(Ok(Message::Close(_))) => {
                Err(DriverError::Connection("closed by the relay".into()))
            }
            Some(Ok(_)) => Ok(()),
        }
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.ws.is_some()
    }

    /// Queue a keep-alive; the core has no timer, so the driver owns it.
    pub fn client_ping(&mut self) {
        self.client.ping();
    }

    /// Wait (at most `within`) for the first event matching `pred`; others are discarded.
    pub async fn wait_for(
        &mut self,
        what: &'static str,
        within: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Result<Event, DriverError> {
        tokio::time::timeout(within, async {
            loop {
                let e = self.next_event().await?;
                if pred(&e) {
                    return Ok(e);
                }
            }
        })
        .await
        .map_err(|_| DriverError::Timeout(what))?
    }

    /// Drop the connection abruptly, as a network failure would.
    pub fn drop_connection(&mut self) {
        self.ws = None;
    }

    /// Open a new connection and resume every session on it.
    pub async fn reconnect(&mut self) -> Result<(), DriverError> {
        self.ws = Some(open(&self.target).await?);
        self.client.reconnected()?;
        self.flush().await
    }

    /// Reconnect to another address of the relay (another node of a deployment with
    /// several, as DNS or a load balancer may hand out after a network change) and resume
    /// every session there; it stays the address for later reconnects.
    pub async fn reconnect_to(&mut self, url: &str) -> Result<(), DriverError> {
        self.target = Target::parse(url).await?;
        self.reconnect().await
    }
}
