//! The QUIC transport of the native driver: ALPN `approdo/1`, one bidirectional stream
//! the client opens, every frame prefixed by its length as a big-endian `u32`.
//!
//! The relay's certificate is trusted either by its SHA-256 hash (the demo's self-signed
//! certificate; the relay prints it and puts it in `/config.json`) or by a CA file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use approdo_core::limits::MAX_FRAME_LEN;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;

use crate::DriverError;

/// ALPN of the native protocol.
pub const ALPN: &[u8] = b"approdo/1";
/// Bytes of the length prefix before every frame.
pub const PREFIX_LEN: usize = 4;
/// Keep-alive: a packet at least this often keeps the relay's idle timer and NAT bindings
/// alive (see the relay's `quic::KEEP_ALIVE`).
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// With nothing from the relay for this long, the connection is gone and the client
/// resumes on a new one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// ACK frequency the client asks the relay for (the relay asks the same of the client):
/// an ACK after this many ack-eliciting packets, fewer packets for a burst of frames.
const ACK_ELICITING_THRESHOLD: u32 = 8;
/// ... or after this long at most (QUIC's default is 25 ms; it is part of the probe
/// timeout, so a shorter one resends a lost last packet sooner).
const ACK_DELAY: Duration = Duration::from_millis(5);
/// Bytes read from the stream at once.
const READ_CHUNK: usize = 16 * 1024;

/// How the relay's certificate is trusted.
#[derive(Clone)]
pub enum Trust {
    /// Its SHA-256 is one of these (a self-signed certificate, pinned).
    Hashes(Vec<[u8; 32]>),
    /// It chains to one of these roots and names the host.
    Roots(Arc<rustls::RootCertStore>),
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trust::Hashes(h) => f.debug_tuple("Hashes").field(&h.len()).finish(),
            Trust::Roots(_) => f.debug_tuple("Roots").finish_non_exhaustive(),
        }
    }
}

impl Trust {
    /// Roots from a PEM file of CA certificates.
    pub fn ca_file(path: &std::path::Path) -> Result<Trust, DriverError> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| DriverError::Connection(format!("CA file: {e}")))?
        {
            let cert = cert.map_err(|e| DriverError::Connection(format!("CA file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| DriverError::Connection(format!("CA file: {e}")))?;
        }
        Ok(Trust::Roots(Arc::new(roots)))
    }
}

/// Where a QUIC relay is and how to trust it.
#[derive(Clone, Debug)]
pub struct QuicTarget {
    /// UDP address of the relay's QUIC endpoint.
    pub addr: SocketAddr,
    /// Name the certificate must carry (checked with [`Trust::Roots`] only).
    pub server_name: String,
    /// How the certificate is trusted.
    pub trust: Trust,
}

impl QuicTarget {
    /// Parse `quic://HOST:PORT/?sha256=HEX[,HEX]` (pinned hashes). Host names are
    /// resolved here.
    pub async fn parse(url: &str) -> Result<QuicTarget, DriverError> {
        let bad = |what: &str| DriverError::Connection(format!("QUIC URL: {what}"));
        let parsed = url::Url::parse(url).map_err(|_| bad("not a URL"))?;
        if parsed.scheme() != "quic" {
            return Err(bad("scheme is not quic"));
        }
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
        let port = parsed.port().ok_or_else(|| bad("no port"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut hashes = Vec::new();
        for (k, v) in parsed.query_pairs() {
            if k == "sha256" {
                for h in v.split(',') {
                    let mut hash = [0u8; 32];
                    hex::decode_to_slice(h.trim(), &mut hash).map_err(|_| bad("bad sha256"))?;
                    hashes.push(hash);
                }
            }
        }
        if hashes.is_empty() {
            return Err(bad("no sha256= certificate hash"));
        }
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| DriverError::Connection(e.to_string()))?
            .next()
            .ok_or_else(|| bad("host not found"))?;
        Ok(QuicTarget {
            addr,
            server_name: host,
            trust: Trust::Hashes(hashes),
        })
    }
}

/// Accepts exactly the certificates whose SHA-256 is pinned (names and dates are not
/// checked: the hash says which certificate it is), and checks the handshake signature
/// with it as usual.
#[derive(Debug)]
struct PinnedHashes {
    hashes: Vec<[u8; 32]>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedHashes {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let hash: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if self.hashes.contains(&hash) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // QUIC is TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS 1.3 client configuration (ring) that trusts the relay as `trust` says, with no
/// ALPN set: shared by QUIC (below) and HTTPS (`/config.json` from a `wss://` relay), so
/// one pinned hash or CA file covers both.
pub fn tls_config(trust: &Trust) -> Result<rustls::ClientConfig, DriverError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| DriverError::Connection(e.to_string()))?;
    let tls = match trust {
        Trust::Hashes(hashes) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedHashes {
                hashes: hashes.clone(),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Trust::Roots(roots) => builder
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
    };
    Ok(tls)
}

/// The quinn client configuration for `trust`: TLS 1.3 with ring, ALPN `approdo/1`, the
/// keep-alive and idle timeout above.
pub fn client_config(trust: &Trust) -> Result<quinn::ClientConfig, DriverError> {
    let mut tls = tls_config(trust)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| DriverError::Connection(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok())
        .max_concurrent_bidi_streams(0u32.into())
        .max_concurrent_uni_streams(0u32.into());
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(ACK_ELICITING_THRESHOLD.into())
        .max_ack_delay(Some(ACK_DELAY));
    transport.ack_frequency_config(Some(ack));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// An open QUIC connection to the relay and its one stream.
pub struct QuicLink {
    /// The endpoint (its socket can be replaced: [`QuicLink::rebind`]).
    pub endpoint: quinn::Endpoint,
    /// The connection.
    pub connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// Bytes read and not yet returned as frames start at `start`.
    buf: Vec<u8>,
    start: usize,
}

impl std::fmt::Debug for QuicLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicLink").finish_non_exhaustive()
    }
}

impl QuicLink {
    /// Connect to `target` from an ephemeral local port and open the stream.
    pub async fn open(target: &QuicTarget) -> Result<QuicLink, DriverError> {
        let conn_err = |e: &dyn std::fmt::Display| DriverError::Connection(e.to_string());
        let local: SocketAddr = if target.addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let endpoint = quinn::Endpoint::client(local).map_err(|e| conn_err(&e))?;
        QuicLink::open_on(endpoint, target).await
    }

    /// Connect to `target` from `endpoint`, which other connections may share (one socket
    /// and one driver task for many connections, as a benchmark's clients do). Rebinding
    /// such a link moves all of them.
    pub async fn open_on(
        endpoint: quinn::Endpoint,
        target: &QuicTarget,
    ) -> Result<QuicLink, DriverError> {
        let conn_err = |e: &dyn std::fmt::Display| DriverError::Connection(e.to_string());
        let connection = endpoint
            .connect_with(
                client_config(&target.trust)?,
                target.addr,
                &target.server_name,
            )
            .map_err(|e| conn_err(&e))?
            .await
            .map_err(|e| conn_err(&e))?;
        let (send, recv) = connection.open_bi().await.map_err(|e| conn_err(&e))?;
        Ok(QuicLink {
            endpoint,
            connection,
            send,
            recv,
            buf: Vec::new(),
            start: 0,
        })
    }

    /// Write frames, each with its prefix, in one write. The buffer is sized once and
    /// handed to quinn as it is (`write_chunk`): no copy into quinn's send buffer and no
    /// regrowth per frame, which a burst of small chat frames would pay per message.
    pub async fn write_frames(&mut self, frames: &[Vec<u8>]) -> Result<(), DriverError> {
        let total = frames.iter().map(|f| PREFIX_LEN + f.len()).sum();
        let mut out = Vec::with_capacity(total);
        for f in frames {
            let len = u32::try_from(f.len())
                .map_err(|_| DriverError::Connection("frame too large".into()))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(f);
        }
        self.send
            .write_chunk(bytes::Bytes::from(out))
            .await
            .map_err(|e| DriverError::Connection(e.to_string()))
    }

    /// Write bytes on the stream as they are (tests: prefixes no honest client sends).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), DriverError> {
        self.send
            .write_all(bytes)
            .await
            .map_err(|e| DriverError::Connection(e.to_string()))
    }

    /// The next frame from the relay. Cancel-safe: a partial frame stays buffered.
    pub async fn read_frame(&mut self) -> Result<Vec<u8>, DriverError> {
        loop {
            // Frames are taken from the front by an offset; the buffer is compacted only
            // before it grows, so a burst of small frames is not moved once per frame.
            let rest = self.buf.get(self.start..).unwrap_or_default();
            if let Some(prefix) = rest.get(..PREFIX_LEN) {
                let mut len = [0u8; PREFIX_LEN];
                len.copy_from_slice(prefix);
                let len = u32::from_be_bytes(len) as usize;
                if len > MAX_FRAME_LEN {
                    return Err(DriverError::Connection("relay frame too large".into()));
                }
                if let Some(frame) = rest.get(PREFIX_LEN..PREFIX_LEN + len) {
                    let frame = frame.to_vec();
                    self.start += PREFIX_LEN + len;
                    return Ok(frame);
                }
            }
            self.buf.drain(..self.start);
            self.start = 0;
            // quinn's own chunk, copied once into the buffer: reading into a zeroed
            // stack array first cost a 16 KiB memset and a second copy per read.
            match self.recv.read_chunk(READ_CHUNK, true).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                Ok(None) => return Err(DriverError::Connection("closed by the relay".into())),
                Err(e) => return Err(DriverError::Connection(e.to_string())),
            }
        }
    }

    /// Move to a new local socket (a new network): the connection migrates, no new
    /// handshake.
    pub fn rebind(&self, socket: std::net::UdpSocket) -> Result<(), DriverError> {
        self.endpoint
            .rebind(socket)
            .map_err(|e| DriverError::Connection(e.to_string()))
    }
}

impl Drop for QuicLink {
    fn drop(&mut self) {
        self.connection.close(0u32.into(), b"");
    }
}
