//! One QUIC connection (native or WebTransport) as one relay connection: the client's one
//! bidirectional stream carries frames each way, every frame prefixed by its length as a
//! big-endian `u32`; the same switchboard calls, budgets and timeouts as a WebSocket.

use std::sync::Arc;
use std::time::Duration;

use approdo_core::limits::MAX_FRAME_LEN;
use approdo_core::wire::{ErrorCode, RelayFrame};
use tokio::sync::mpsc;
use web_transport_quinn::{RecvStream, SendStream, Session};

use crate::ratelimit::AddressTag;
use crate::server::{Outgoing, SharedHub, Transport, lock};
use crate::switchboard::ConnId;

/// Bytes of the length prefix before every frame.
pub const PREFIX_LEN: usize = 4;
/// Application close code: closed normally (after a fatal `Error` frame, or at the end).
pub const CLOSE_NORMAL: u16 = 0;
/// Application close code: a frame's length prefix exceeded [`MAX_FRAME_LEN`].
pub const CLOSE_FRAME_TOO_LARGE: u16 = 1;
/// Application close code: a protocol violation (a stream beyond the one, an unknown
/// ALPN, a stream that ends inside a frame).
pub const CLOSE_PROTOCOL: u16 = 2;
/// Application close code: nothing arrived within the first-frame or idle timeout.
pub const CLOSE_IDLE: u16 = 3;
/// Application close code: a stream beyond the relay's one was opened.
pub const CLOSE_STREAM_LIMIT: u16 = 4;

/// How long a closing connection may take to deliver what is queued (its last error above
/// all) before the connection is closed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Most bytes taken from the stream at once; also the read buffer kept between frames.
const READ_CHUNK: usize = 16 * 1024;
/// Most frames written at once.
const WRITE_BATCH: usize = 64;
/// Most frames handled under one lock before results are written.
const READ_BATCH: usize = 64;

/// Serve one established QUIC connection until either side ends it.
pub(super) async fn run(
    session: Session,
    transport: Transport,
    hub: SharedHub,
    conn: ConnId,
    tag: AddressTag,
    limits: Arc<crate::config::Limits>,
) {
    let first = Duration::from_secs(limits.first_frame_timeout_secs);
    let (send, recv) = match tokio::time::timeout(first, session.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        Ok(Err(_)) => return,
        Err(_) => {
            session.close(CLOSE_IDLE.into(), b"");
            return;
        }
    };
    let rx = lock(&hub).attach(conn, tag, transport);
    tracing::debug!(conn, "quic connection open");
    let reader = read_frames(recv, hub.clone(), conn, limits);
    tokio::pin!(reader);
    let writer = write_frames(send, rx);
    tokio::pin!(writer);
    let outcome = tokio::select! {
        code = &mut writer => Ok(code),
        code = &mut reader => Err(code),
        () = extra_stream(&session) => Err(Some(CLOSE_STREAM_LIMIT)),
    };
    let code = match outcome {
        // The relay closed it (its writer wrote the last frame and finished the stream).
        Ok(code) => {
            lock(&hub).detach(conn, None);
            code
        }
        // The client is gone or was refused: from now on the switchboard treats the
        // participant as away (what it is sent is kept for its resume); what was queued
        // before (its last error above all) is still written, within a bound.
        Err(code) => {
            let close = code.map_or(Outgoing::Close, Outgoing::CloseWith);
            lock(&hub).detach(conn, Some(close));
            let written = tokio::time::timeout(CLOSE_GRACE, &mut writer)
                .await
                .unwrap_or(CLOSE_NORMAL);
            code.unwrap_or(written)
        }
    };
    session.close(code.into(), b"");
    tracing::debug!(conn, "quic connection closed");
}

/// Resolves when the client opens a second stream of either kind.
async fn extra_stream(session: &Session) {
    tokio::select! {
        Ok(_) = session.accept_bi() => {},
        Ok(_) = session.accept_uni() => {},
        else => std::future::pending().await,
    }
}

/// Write queued frames with their prefix until told to close (the code returned) or the
/// outbox is dropped. A Close finishes the stream and waits until the client has read it
/// (bounded by the caller), so the last `Error` arrives before the connection closes.
async fn write_frames(mut send: SendStream, mut rx: mpsc::Receiver<Outgoing>) -> u16 {
    // Prefixes and frames copied into one buffer: one chunk for quinn to packetize, no
    // allocation per frame (a chunk per prefix and per frame cost more than the copy).
    let mut out = bytes::BytesMut::new();
    let code = 'outer: loop {
        let Some(first) = rx.recv().await else {
            break CLOSE_NORMAL;
        };
        // Everything already queued goes out in one write: fewer wake-ups of the
        // connection and fuller packets for a burst of frames.
        let mut next = Some(first);
        let mut close = None;
        let mut frames = 0;
        while let Some(item) = next.take() {
            match item {
                Outgoing::Frame(bytes) => {
                    if let Ok(len) = u32::try_from(bytes.len()) {
                        out.extend_from_slice(&len.to_be_bytes());
                        out.extend_from_slice(&bytes);
                        frames += 1;
                    }
                }
                Outgoing::Close => close = Some(CLOSE_NORMAL),
                Outgoing::CloseWith(code) => close = Some(code),
            }
            if close.is_some() || frames >= WRITE_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !out.is_empty() && send.write_chunk(out.split().freeze()).await.is_err() {
            return CLOSE_NORMAL;
        }
        if out.capacity() > READ_CHUNK {
            // What is left of a large burst's buffer is not kept by a quiet connection.
            out = bytes::BytesMut::new();
        }
        if let Some(code) = close {
            break 'outer code;
        }
    };
    let _ = send.finish();
    let _ = tokio::time::timeout(CLOSE_GRACE, send.stopped()).await;
    code
}

/// Read frames until the client ends the stream (`None`) or must be closed (the code).
/// The timeouts count from the last complete frame, as on the WebSocket.
async fn read_frames(
    mut recv: RecvStream,
    hub: SharedHub,
    conn: ConnId,
    limits: Arc<crate::config::Limits>,
) -> Option<u16> {
    // Empty until bytes arrive, and given back once a large frame is done: an idle
    // connection holds no read buffer of its own (quinn holds what arrived).
    let mut buf: Vec<u8> = Vec::new();
    let mut deadline =
        tokio::time::Instant::now() + Duration::from_secs(limits.first_frame_timeout_secs);
    loop {
        // Hand every complete frame in the buffer to the switchboard under one lock.
        let mut start: usize = 0;
        let mut handled = 0;
        let mut refused = None;
        {
            let mut h = None;
            while let Some(prefix) = buf.get(start..start.saturating_add(PREFIX_LEN)) {
                let mut len_bytes = [0u8; PREFIX_LEN];
                len_bytes.copy_from_slice(prefix);
                let len = u32::from_be_bytes(len_bytes) as usize;
                if len > MAX_FRAME_LEN {
                    refused = Some(CLOSE_FRAME_TOO_LARGE);
                    break;
                }
                let body_start = start + PREFIX_LEN;
                let Some(frame) = buf.get(body_start..body_start.saturating_add(len)) else {
                    break;
                };
                let h = h.get_or_insert_with(|| lock(&hub));
                h.handle(conn, frame);
                start = body_start + len;
                handled += 1;
                if handled >= READ_BATCH {
                    break;
                }
            }
            if let Some(mut h) = h {
                h.flush();
            }
        }
        if let Some(code) = refused {
            let mut h = lock(&hub);
            h.send_frame(
                conn,
                &RelayFrame::Error {
                    code: ErrorCode::FrameTooLarge,
                },
            );
            return Some(code);
        }
        buf.drain(..start);
        if buf.is_empty() && buf.capacity() > READ_CHUNK {
            buf = Vec::new();
        }
        if handled > 0 {
            deadline = tokio::time::Instant::now() + Duration::from_secs(limits.idle_timeout_secs);
            if handled >= READ_BATCH {
                continue;
            }
        }
        match tokio::time::timeout_at(deadline, recv.read_chunk(READ_CHUNK, true)).await {
            Err(_) => {
                let mut h = lock(&hub);
                h.refuse(conn, ErrorCode::IdleTimeout);
                h.flush();
                return Some(CLOSE_IDLE);
            }
            // The stream ended: between frames it is a goodbye, inside one a protocol
            // error.
            Ok(Ok(None)) if buf.is_empty() => return None,
            Ok(Ok(None)) => return Some(CLOSE_PROTOCOL),
            Ok(Ok(Some(chunk))) => buf.extend_from_slice(&chunk.bytes),
            // A reset stream or a lost connection: just gone.
            Ok(Err(_)) => return None,
        }
    }
}
