//! TLS helpers for the HTTPS tests: a client that accepts whatever certificate the relay
//! shows (checking only that the relay holds its key) and records it, plain HTTPS
//! requests, a pass-through that carries a WebSocket client over TLS, and certificate
//! files like an ACME client writes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::WAIT;

/// Accepts any certificate (the tests look at it afterwards) but checks the handshake
/// signature, so the relay must hold the certificate's key.
#[derive(Debug)]
struct ShowMeAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for ShowMeAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ShowMeAnything(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// SHA-256 of a DER certificate (what `/config.json` lists).
pub fn sha256(der: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(der).into()
}

/// Open a TLS connection to `addr`; returns it and the leaf certificate the relay showed.
pub async fn connect(addr: SocketAddr) -> (TlsStream<TcpStream>, Vec<u8>) {
    let tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio::time::timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(client_config()).connect(name, tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a certificate")
        .to_vec();
    (tls, leaf)
}

/// The leaf certificate a new TLS connection to `addr` is shown.
pub async fn served_certificate(addr: SocketAddr) -> Vec<u8> {
    connect(addr).await.1
}

/// One HTTP/1.1 answer read to its end.
#[derive(Debug)]
pub struct Answer {
    /// The status line.
    pub status: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (not decoded: ask without `Accept-Encoding`).
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_answer(bytes: &[u8]) -> Answer {
    let split = memchr::memmem::find(bytes, b"\r\n\r\n").expect("a complete head");
    let (status, headers) = crate::raw::parse_head(&String::from_utf8_lossy(&bytes[..split]));
    Answer {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

async fn exchange<S>(mut s: S, request: &str) -> Answer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    // A TLS peer may end with a close_notify or just close; both end the answer.
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("answer in time");
    parse_answer(&buf)
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// `GET path` over HTTPS.
pub async fn https_get(addr: SocketAddr, path: &str) -> Answer {
    https_raw(addr, &get_request(path)).await
}

/// A raw request over HTTPS, read until the relay closes.
pub async fn https_raw(addr: SocketAddr, request: &str) -> Answer {
    let (tls, _) = connect(addr).await;
    exchange(tls, request).await
}

/// `GET path` over plain HTTP.
pub async fn http_get(addr: SocketAddr, path: &str) -> Answer {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    exchange(tcp, &get_request(path)).await
}

/// A local pass-through for WebSocket clients that speak plain `ws://`: each connection
/// to it is carried over a TLS connection of its own to the relay's HTTPS port, so the
/// test's clients talk `wss` to the relay without knowing it.
pub struct TlsProxy {
    /// Where clients connect (`ws://ADDR/ws`).
    pub addr: SocketAddr,
    /// The SHA-256 of the certificate each TLS connection was shown, in order of opening.
    pub opened: Arc<Mutex<Vec<[u8; 32]>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Start forwarding to the relay's HTTPS address.
    pub async fn start(https: SocketAddr) -> TlsProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("addr");
        let opened = Arc::new(Mutex::new(Vec::new()));
        let seen = opened.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut plain, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (mut tls, leaf) = connect(https).await;
                    seen.lock().expect("lock").push(sha256(&leaf));
                    let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
                });
            }
        });
        TlsProxy { addr, opened, task }
    }

    /// The WebSocket URL clients use.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// How many TLS connections it has opened so far, and the certificates they saw.
    pub fn opened(&self) -> Vec<[u8; 32]> {
        self.opened.lock().expect("lock").clone()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Write a PEM chain and key for `localhost` into `dir` as `name.crt` / `name.key` (what an
/// ACME client leaves); returns their paths and the certificate's SHA-256.
pub fn write_certificate_files(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, [u8; 32]) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write certificate");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path, sha256(cert.der()))
}

/// `/config.json`'s `webtransport.hashes`, decoded.
pub fn listed_hashes(config_json: &[u8]) -> Vec<[u8; 32]> {
    let value: serde_json::Value = serde_json::from_slice(config_json).expect("json");
    value["webtransport"]["hashes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    let mut out = [0u8; 32];
                    hex::decode_to_slice(h.as_str().expect("hex string"), &mut out)
                        .expect("64 hex digits");
                    out
                })
                .collect()
        })
        .unwrap_or_default()
}
