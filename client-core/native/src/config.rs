//! How the terminal client finds the relay's QUIC endpoint: it reads `/config.json` from
//! the relay's HTTP address (the file the pages trust, covered by the integrity manifest and
//! the bundle hash) and takes its `webtransport` entry: `{"port": N, "hashes": [hex]}`.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use crate::DriverError;
use crate::quic::{QuicTarget, Trust};

/// Longest `/config.json` read (it holds keys, desks and a revocation list).
const MAX_CONFIG_LEN: usize = 256 * 1024;
/// How long fetching `/config.json` may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The `host:port` of a `ws://host:port/…` relay URL.
fn http_authority(ws_url: &str) -> Result<(String, u16), DriverError> {
    let bad = |what: &str| DriverError::Connection(format!("relay URL: {what}"));
    let url = url::Url::parse(ws_url).map_err(|_| bad("not a URL"))?;
    if url.scheme() != "ws" {
        return Err(bad(
            "QUIC discovery reads /config.json over plain HTTP (ws:// only)",
        ));
    }
    let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
    let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
    Ok((host, port))
}

/// Fetch and parse `/config.json` from the relay whose WebSocket URL is `ws_url`.
pub async fn fetch_config(ws_url: &str) -> Result<serde_json::Value, DriverError> {
    let conn_err = |e: &dyn std::fmt::Display| DriverError::Connection(e.to_string());
    let (host, port) = http_authority(ws_url)?;
    let work = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| conn_err(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| conn_err(&e))?;
        tokio::spawn(connection);
        let request = hyper::Request::get("/config.json")
            .header(hyper::header::HOST, format!("{host}:{port}"))
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
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| DriverError::Timeout("/config.json"))?
}

/// The QUIC endpoint `/config.json` announces for the relay at `ws_url`: same host, the
/// announced UDP port, the pinned hashes (none: the certificate must chain to `roots`).
pub async fn quic_target(ws_url: &str, roots: Option<Trust>) -> Result<QuicTarget, DriverError> {
    let bad = |what: &str| DriverError::Connection(format!("/config.json: {what}"));
    let config = fetch_config(ws_url).await?;
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
        roots.ok_or_else(|| bad("no hashes, and no CA file given"))?
    } else {
        Trust::Hashes(hashes)
    };
    let (host, _) = http_authority(ws_url)?;
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
