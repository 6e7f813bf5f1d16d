//! Raw connections to the relay (WebSocket, QUIC, a bare HTTP request), for sending what
//! no honest client would and reading exactly what the relay answers.

use std::net::SocketAddr;

use crate::{TestRelay, WAIT, contains};

/// A bare WebSocket to the relay, for sending what no honest client would.
pub struct RawConn {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl RawConn {
    /// Connect.
    pub async fn open(relay: &TestRelay) -> RawConn {
        RawConn::open_url(&relay.ws_url()).await
    }

    /// Connect to the relay at this WebSocket URL (a relay in another process).
    pub async fn open_url(url: &str) -> RawConn {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        RawConn { ws }
    }

    /// Send raw bytes as one message.
    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt;
        let _ = self
            .ws
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                bytes.into(),
            ))
            .await;
    }

    /// Send a frame.
    pub async fn send(&mut self, frame: &approdo_core::wire::ClientFrame) {
        self.send_bytes(approdo_core::wire::encode(frame).expect("encode"))
            .await;
    }

    /// The next frame, or `None` once the relay closed the connection.
    pub async fn recv(&mut self) -> Option<approdo_core::wire::RelayFrame> {
        use futures_util::StreamExt;
        let next = tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) => {
                        return Some(approdo_core::wire::decode(&b).expect("relay frames decode"));
                    }
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
                    | None
                    | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        next.expect("the relay answers or closes in time")
    }

    /// Frames until the relay closes the connection.
    pub async fn until_closed(&mut self) -> Vec<approdo_core::wire::RelayFrame> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv().await {
            frames.push(f);
        }
        frames
    }
}

/// A bare QUIC connection (ALPN `approdo/1`) to the relay, its one stream opened, for
/// sending what no honest client would.
pub struct RawQuic {
    /// The connection and its stream.
    pub link: approdo_client::QuicLink,
}

impl RawQuic {
    /// Connect, pinning the relay's certificate hash.
    pub async fn open(relay: &TestRelay) -> RawQuic {
        let target = approdo_client::QuicTarget::parse(&relay.quic_url())
            .await
            .expect("quic url");
        let link = approdo_client::QuicLink::open(&target)
            .await
            .expect("quic connect");
        RawQuic { link }
    }

    /// Send a well-formed frame (with its length prefix).
    pub async fn send(&mut self, frame: &approdo_core::wire::ClientFrame) {
        let bytes = approdo_core::wire::encode(frame).expect("encode");
        self.link.write_frames(&[bytes]).await.expect("write");
    }

    /// Frames the relay sends until it closes the stream or the connection.
    pub async fn until_closed(&mut self) -> Vec<approdo_core::wire::RelayFrame> {
        let mut frames = Vec::new();
        let read = tokio::time::timeout(WAIT, async {
            while let Ok(bytes) = self.link.read_frame().await {
                frames.push(approdo_core::wire::decode(&bytes).expect("relay frames decode"));
            }
        });
        read.await.expect("the relay closes in time");
        frames
    }

    /// The application error code the relay closed the connection with (`None`: closed
    /// some other way).
    pub async fn close_code(&self) -> Option<u64> {
        let closed = tokio::time::timeout(WAIT, self.link.connection.closed())
            .await
            .expect("the relay closes the connection in time");
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => Some(close.error_code.into_inner()),
            _ => None,
        }
    }
}

/// A raw HTTP/1.1 request; returns the status line and the headers (lowercased names).
pub async fn http_head(addr: SocketAddr, request: &str) -> (String, Vec<(String, String)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !contains(&buf, b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("answer in time")
            .expect("read");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    parse_head(text.split("\r\n\r\n").next().unwrap_or_default())
}

/// An HTTP response head: the status line and the headers (lowercased names).
pub(crate) fn parse_head(head: &str) -> (String, Vec<(String, String)>) {
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}
