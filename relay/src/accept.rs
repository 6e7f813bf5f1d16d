//! What happens to a TCP connection before hyper sees it: the per-address and global
//! connection counts (held for the connection's whole life, WebSockets included), and a
//! bounded check of every HTTP request head.
//!
//! hyper answers a request it cannot parse (400), a URI or header block too long (414,
//! 431) by itself, outside axum's layers, so those answers would lack the security headers
//! every other response carries. [`GuardedStream`] hands hyper only request heads it has
//! already checked to be within our bounds and parseable the way hyper parses them, and
//! answers the others itself, with the same headers, then ends the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::ratelimit::{AddressTag, ConnectionCounter};

/// Longest request head (request line and headers) accepted. Our requests are a GET of a
/// page or an upgrade to a WebSocket: a few hundred bytes. hyper's own limits are larger,
/// so hyper never refuses a head this check let through.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// Most header lines in one request (hyper's own limit is 100).
pub const MAX_HEADERS: usize = 64;

/// Bytes read from the socket at once while looking for the end of a head.
const READ_CHUNK: usize = 4 * 1024;

/// How long the end of a WebSocket's input is held back from the WebSocket layer. Once
/// tungstenite sees the end of input it refuses to write anything more, so a client that
/// floods and hangs up at once would never get the `RateLimited` (or other last error)
/// already queued for it; this gives the connection's writer time to send it.
pub const EOF_HOLD: std::time::Duration = std::time::Duration::from_millis(100);

/// A place in the per-address count, given back when the connection ends.
pub struct ConnectionSlot {
    counter: Arc<Mutex<ConnectionCounter>>,
    tag: AddressTag,
}

impl std::fmt::Debug for ConnectionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSlot").finish_non_exhaustive()
    }
}

impl ConnectionSlot {
    /// Count a connection from `addr`; `None` when the address holds its share already.
    pub fn take(
        counter: &Arc<Mutex<ConnectionCounter>>,
        addr: std::net::IpAddr,
        now: std::time::Instant,
    ) -> Option<ConnectionSlot> {
        let tag = counter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .open(addr, now)?;
        Some(ConnectionSlot {
            counter: counter.clone(),
            tag,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.counter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close(self.tag);
    }
}

enum Mode {
    /// Reading HTTP request heads: `buf` holds bytes not yet checked, `ready` the checked
    /// bytes hyper has not taken yet.
    Heads,
    /// After an upgrade request: bytes are the WebSocket's, passed through unchecked.
    Passthrough,
    /// Writing our own error response, then end of stream.
    Refusing { response: Vec<u8>, written: usize },
    /// Refused and answered: end of stream for hyper.
    Done,
}

/// A connection as hyper sees it: counted while it lives, request heads checked. `S` is
/// the TCP stream itself, or the TLS stream over it on the HTTPS listener (the TLS layer
/// lies under this check, so HTTPS requests get exactly the same bounds).
pub struct GuardedStream<S = TcpStream> {
    inner: S,
    /// Refusals written here carry `Strict-Transport-Security` (the HTTPS listener).
    hsts: bool,
    mode: Mode,
    eof_hold: Option<Pin<Box<tokio::time::Sleep>>>,
    buf: Vec<u8>,
    ready: Vec<u8>,
    _permit: OwnedSemaphorePermit,
    _slot: Option<ConnectionSlot>,
}

impl<S> std::fmt::Debug for GuardedStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream").finish_non_exhaustive()
    }
}

/// The outcome of checking the bytes of one request head.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// More bytes are needed.
    Partial,
    /// A good head of this many bytes; `upgrade` when it asks for a protocol switch.
    Good { len: usize, upgrade: bool },
    /// Refuse with this status.
    Bad(StatusCode),
}

fn check_head(bytes: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let window = &bytes[..bytes.len().min(MAX_HEAD_LEN)];
    match req.parse(window) {
        Ok(httparse::Status::Partial) => {
            if bytes.len() < MAX_HEAD_LEN {
                Head::Partial
            } else if window.windows(2).any(|w| w == b"\r\n") {
                Head::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            } else {
                Head::Bad(StatusCode::URI_TOO_LONG)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            let uri_ok = req
                .path
                .is_some_and(|p| axum::http::Uri::try_from(p).is_ok());
            let method_ok = req
                .method
                .is_some_and(|m| axum::http::Method::from_bytes(m.as_bytes()).is_ok());
            if !uri_ok || !method_ok {
                return Head::Bad(StatusCode::BAD_REQUEST);
            }
            let mut upgrade = false;
            for h in req.headers.iter() {
                if axum::http::HeaderName::from_bytes(h.name.as_bytes()).is_err()
                    || axum::http::HeaderValue::from_bytes(h.value).is_err()
                {
                    return Head::Bad(StatusCode::BAD_REQUEST);
                }
                // Nothing here takes a request body: a request announcing one is refused
                // (so every byte hyper reads is a checked head, or a WebSocket's).
                if h.name.eq_ignore_ascii_case("transfer-encoding")
                    || (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
                {
                    return Head::Bad(StatusCode::BAD_REQUEST);
                }
                if h.name.eq_ignore_ascii_case("upgrade") {
                    upgrade = true;
                }
            }
            Head::Good { len, upgrade }
        }
        Err(httparse::Error::TooManyHeaders) => {
            Head::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        }
        Err(_) => Head::Bad(StatusCode::BAD_REQUEST),
    }
}

/// The bytes of an error response carrying the security headers of every response, and
/// `Connection: close`.
pub fn error_response(status: StatusCode) -> Vec<u8> {
    error_response_over(status, false)
}

/// [`error_response`], with `Strict-Transport-Security` when `hsts` (sent over HTTPS).
pub fn error_response_over(status: StatusCode, hsts: bool) -> Vec<u8> {
    let mut headers = HeaderMap::new();
    crate::pages::apply_security_headers(&mut headers);
    if hsts {
        headers.insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static(crate::tls::HSTS),
        );
    }
    let body = status.canonical_reason().unwrap_or("error");
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        body,
        body.len()
    )
    .into_bytes();
    for (name, value) in headers.iter() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin> GuardedStream<S> {
    /// Wrap an accepted connection holding its places in the global and per-address counts.
    pub fn new(inner: S, permit: OwnedSemaphorePermit, slot: Option<ConnectionSlot>) -> Self {
        GuardedStream {
            inner,
            hsts: false,
            mode: Mode::Heads,
            eof_hold: None,
            buf: Vec::new(),
            ready: Vec::new(),
            _permit: permit,
            _slot: slot,
        }
    }

    /// Mark the connection as HTTPS: its refusals carry `Strict-Transport-Security`.
    pub fn with_hsts(mut self) -> Self {
        self.hsts = true;
        self
    }

    /// Move checked heads from `buf` to `ready`; switch mode on an upgrade or a bad head.
    fn check_buffered(&mut self) {
        while matches!(self.mode, Mode::Heads) && !self.buf.is_empty() {
            match check_head(&self.buf) {
                Head::Partial => return,
                Head::Good { len, upgrade } => {
                    self.ready.extend(self.buf.drain(..len));
                    if upgrade {
                        // What follows belongs to the WebSocket (or, if the upgrade is
                        // refused, the response says `Connection: close`). The head buffer
                        // is freed: a long-lived WebSocket keeps no memory here.
                        self.ready.append(&mut self.buf);
                        self.buf = Vec::new();
                        self.mode = Mode::Passthrough;
                    }
                }
                Head::Bad(status) => {
                    tracing::debug!(status = status.as_u16(), "request head refused");
                    self.buf.clear();
                    self.mode = Mode::Refusing {
                        response: error_response_over(status, self.hsts),
                        written: 0,
                    };
                }
            }
        }
    }
}

fn give(ready: &mut Vec<u8>, out: &mut ReadBuf<'_>) {
    let n = ready.len().min(out.remaining());
    out.put_slice(&ready[..n]);
    ready.drain(..n);
    if ready.is_empty() {
        // Free the buffer between requests and for the WebSocket's lifetime.
        *ready = Vec::new();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                give(&mut this.ready, out);
                return Poll::Ready(Ok(()));
            }
            match &mut this.mode {
                Mode::Passthrough => {
                    if let Some(hold) = &mut this.eof_hold {
                        std::task::ready!(hold.as_mut().poll(cx));
                        return Poll::Ready(Ok(()));
                    }
                    let before = out.filled().len();
                    std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                    if out.filled().len() > before || out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    // End of input: hold it back a moment (see `EOF_HOLD`).
                    this.eof_hold = Some(Box::pin(tokio::time::sleep(EOF_HOLD)));
                }
                Mode::Done => return Poll::Ready(Ok(())),
                Mode::Refusing { response, written } => {
                    while *written < response.len() {
                        let n = std::task::ready!(
                            Pin::new(&mut this.inner).poll_write(cx, &response[*written..])
                        )?;
                        if n == 0 {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                        }
                        *written += n;
                    }
                    std::task::ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
                    this.mode = Mode::Done;
                    // End of stream: hyper has no partial request, so it just closes.
                    return Poll::Ready(Ok(()));
                }
                Mode::Heads => {
                    // Read into the stack, so `buf` holds only what was read: an idle
                    // keep-alive connection keeps no buffer.
                    let mut chunk = [0u8; READ_CHUNK];
                    let mut rb = ReadBuf::new(&mut chunk);
                    std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                    if rb.filled().is_empty() {
                        // End of stream; an incomplete head is dropped unanswered.
                        this.buf = Vec::new();
                        this.mode = Mode::Done;
                        return Poll::Ready(Ok(()));
                    }
                    this.buf.extend_from_slice(rb.filled());
                    this.check_buffered();
                    if this.buf.is_empty() {
                        this.buf = Vec::new();
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_checked_as_hyper_would() {
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            check_head(get),
            Head::Good {
                len: get.len(),
                upgrade: false
            }
        );
        assert_eq!(check_head(b"GET / HTTP/1.1\r\nHo"), Head::Partial);
        assert_eq!(
            check_head(b"GARBAGE\r\n\r\n"),
            Head::Bad(StatusCode::BAD_REQUEST)
        );
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD_LEN));
        assert_eq!(
            check_head(long_uri.as_bytes()),
            Head::Bad(StatusCode::URI_TOO_LONG)
        );
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD_LEN));
        assert_eq!(
            check_head(big.as_bytes()),
            Head::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            check_head(many.as_bytes()),
            Head::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            check_head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Head::Bad(StatusCode::BAD_REQUEST)
        );
        assert!(matches!(
            check_head(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
            Head::Good { upgrade: true, .. }
        ));
    }

    #[test]
    fn error_responses_carry_the_security_headers() {
        let text = String::from_utf8(error_response(StatusCode::URI_TOO_LONG)).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 414 "));
        assert!(text.contains("content-security-policy: default-src 'none'"));
        assert!(text.contains("cache-control: no-store"));
        assert!(text.contains("connection: close"));
    }
}
