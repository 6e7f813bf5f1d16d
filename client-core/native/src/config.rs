//! How the terminal client finds the relay's QUIC endpoint: it reads `/config.json` from
//! the relay's address (the file the pages trust, covered by the integrity manifest and the
//! bundle hash) and takes its `webtransport` entry: `{"port": N, "hashes": [hex]}`.
//!
//! For a `ws://`/`http://` relay URL the file is read over plain HTTP; for `wss://`/
//! `https://` over HTTPS (TLS 1.3), trusting the relay's certificate as the caller says: a
//! pinned SHA-256 (a self-signed relay), a CA file, or by default the public web PKI roots.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use crate::DriverError;
use crate::quic::{QuicTarget, Trust};

/// Longest `/config.json` read (it holds keys, desks and a revocation list).
const MAX_CONFIG_LEN: usize = 256 * 1024;
/// How long fetching `/config.json` may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where `/config.json` is: host, port, and whether over TLS.
struct Origin {
    host: String,
    port: u16,
    tls: bool,
}

/// The origin of a `ws://`, `wss://`, `http://` or `https://` relay URL.
fn origin(relay_url: &str) -> Result<Origin, DriverError> {
    let bad = |what: &str| DriverError::Connection(format!("relay URL: {what}"));
    let url = url::Url::parse(relay_url).map_err(|_| bad("not a URL"))?;
    let tls = match url.scheme() {
        "ws" | "http" => false,
        "wss" | "https" => true,
        _ => return Err(bad("QUIC discovery needs a ws, wss, http or https URL")),
    };
    let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
    let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
    Ok(Origin { host, port, tls })
}

/// Trust in the public web PKI (Mozilla's root list, built in): for relays with a
/// publicly trusted certificate when no CA file or pinned hash is given.
pub fn web_pki() -> Trust {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    Trust::Roots(Arc::new(roots))
}

/// Send `GET /config.json` on `io` and read the answer (bounded).
async fn get_config<T>(io: T, authority: &str) -> Result<serde_json::Value, DriverError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn_err = |e: &dyn std::fmt::Display| DriverError::Connection(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| conn_err(&e))?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/config.json")
        .header(hyper::header::HOST, authority)
        .body(Empty::<hyper::body::Bytes>::new())
        .map_err(|e| conn_err(&e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| conn_err(&e))?;
    if !response.status().is_success() {
        return Err(DriverError::Connection(format!(
            "/config.json: {}",
            response.status()
        )));
    }
    let body = Limited::new(response.into_body(), MAX_CONFIG_LEN)
        .collect()
        .await
        .map_err(|e| conn_err(&e))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| conn_err(&e))
}

/// Fetch and parse `/config.json` from the relay at `relay_url` (its WebSocket URL, or
/// its page's `http(s)://` URL). Over TLS the certificate is trusted as `trust` says
/// (default: [`web_pki`]).
pub async fn fetch_config(
    relay_url: &str,
    trust: Option<&Trust>,
) -> Result<serde_json::Value, DriverError> {
    let conn_err = |e: &dyn std::fmt::Display| DriverError::Connection(e.to_string());
    let Origin { host, port, tls } = origin(relay_url)?;
    let authority = format!("{host}:{port}");
    let work = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| conn_err(&e))?;
        if !tls {
            return get_config(stream, &authority).await;
        }
        let trust = trust.cloned().unwrap_or_else(web_pki);
        let mut config = crate::quic::tls_config(&trust)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls::pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
        .map_err(|e| conn_err(&e))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|e| conn_err(&e))?;
        get_config(stream, &authority).await
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| DriverError::Timeout("/config.json"))?
}

/// The QUIC endpoint `/config.json` announces for the relay at `ws_url`: same host, the
/// announced UDP port, the hashes it pins (none: a publicly trusted certificate, checked
/// with `trust`, by default [`web_pki`]). `trust` also covers the HTTPS fetch itself for a
/// `wss://` or `https://` URL.
pub async fn quic_target(ws_url: &str, trust: Option<Trust>) -> Result<QuicTarget, DriverError> {
    let bad = |what: &str| DriverError::Connection(format!("/config.json: {what}"));
    let config = fetch_config(ws_url, trust.as_ref()).await?;
    let wt = config
        .get("webtransport")
        .filter(|v| !v.is_null())
        .ok_or_else(|| bad("the relay announces no QUIC endpoint"))?;
    let port = wt
        .get("port")
        .and_then(serde_json::Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| bad("no port"))?;
    let mut hashes = Vec::new();
    for h in wt
        .get("hashes")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(h.as_str().unwrap_or_default(), &mut hash)
            .map_err(|_| bad("bad hash"))?;
        hashes.push(hash);
    }
    let trust = if hashes.is_empty() {
        trust.unwrap_or_else(web_pki)
    } else {
        Trust::Hashes(hashes)
    };
    let Origin { host, .. } = origin(ws_url)?;
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| DriverError::Connection(e.to_string()))?
        .next()
        .ok_or_else(|| bad("host not found"))?;
    Ok(QuicTarget {
        addr,
        server_name: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        trust,
    })
}
