//! The hub: the switchboard and each connection's outbox, shared by every connection task
//! (WebSocket, QUIC, WebTransport) under one lock, and what carries out the switchboard's
//! outputs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use approdo_core::wire::ErrorCode;
use tokio::sync::mpsc;

use crate::switchboard::{ConnId, Output, Switchboard};

/// What a connection's writer is asked to do (WebSocket or QUIC alike).
pub(crate) enum Outgoing {
    /// Write one frame.
    Frame(axum::body::Bytes),
    /// Write what is queued, then close normally.
    Close,
    /// Close with a code that says why: a WebSocket close code, or a QUIC application
    /// error code on a QUIC connection (each transport only ever reads its own).
    CloseWith(u16),
}

/// Which transport a connection arrived on: the relay treats them alike and only counts
/// them apart (for tests, benchmarks and the operator's view of what clients use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket over TCP (`/ws`).
    WebSocket,
    /// QUIC with ALPN `approdo/1` (native clients).
    Quic,
    /// WebTransport over HTTP/3 (browsers), on the same QUIC endpoint.
    WebTransport,
    /// A client connected to another node, carried here over the bus because its session
    /// lives here (`bus::forward`).
    Forwarded,
}

/// Connections accepted since start, per transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportCounts {
    /// WebSocket connections.
    pub websocket: u64,
    /// Native QUIC connections.
    pub quic: u64,
    /// WebTransport sessions.
    pub webtransport: u64,
    /// Connections held by another node and carried here.
    pub forwarded: u64,
}

/// Whether the relay's background tasks are all alive. The supervisor in `Relay::run`
/// clears it when one dies; `/healthz` reports it.
#[derive(Debug, Default)]
pub struct Health {
    dead: std::sync::atomic::AtomicBool,
}

impl Health {
    /// A background task has died: the relay is shutting down.
    pub fn set_dead(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// Whether every background task is alive.
    pub fn alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }
}

/// State shared by every connection task: the switchboard and each connection's outbox.
pub struct Hub {
    pub(super) switchboard: Switchboard,
    pub(super) outboxes: std::collections::HashMap<ConnId, mpsc::Sender<Outgoing>>,
    sfu: Option<crate::sfu::Sfu>,
    next_conn: ConnId,
    pub(super) connections: crate::metrics::ConnectionTally,
    /// Connections carried to or from other nodes (several nodes only).
    pub(super) forwarding: super::forwarded::Forwarding,
    /// QUIC Retry packets sent (address validation under load or over a share). An atomic
    /// the QUIC accept loop bumps without taking the hub's lock.
    quic_retries: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// Wrap a switchboard.
    pub fn new(switchboard: Switchboard) -> Self {
        Hub {
            switchboard,
            outboxes: Default::default(),
            sfu: None,
            next_conn: 1,
            connections: Default::default(),
            forwarding: Default::default(),
            quic_retries: Arc::default(),
        }
    }

    /// The counter of QUIC Retry packets sent, for the accept loop to bump.
    pub(crate) fn quic_retry_counter(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.quic_retries.clone()
    }

    /// QUIC Retry packets sent since start.
    pub fn quic_retries(&self) -> u64 {
        self.quic_retries.load(Ordering::Relaxed)
    }

    /// A fresh connection number, unique across transports.
    pub(crate) fn allocate_conn(&mut self) -> ConnId {
        let conn = self.next_conn;
        self.next_conn = self.next_conn.wrapping_add(1);
        conn
    }

    /// Connections accepted since start, per transport.
    pub fn transport_counts(&self) -> TransportCounts {
        self.connections.opened()
    }

    /// Connections open now, per transport.
    pub fn open_transport_counts(&self) -> TransportCounts {
        self.connections.open_now()
    }

    /// A connection is open: the switchboard knows it and its outbox exists. Returns the
    /// receiving end the connection's writer drains.
    pub(crate) fn attach(
        &mut self,
        conn: ConnId,
        tag: crate::ratelimit::AddressTag,
        transport: Transport,
    ) -> mpsc::Receiver<Outgoing> {
        // Frames queued for one connection before it counts as not reading: sized by the
        // switchboard's send window, so only a reader that stopped fills it.
        let (tx, rx) = mpsc::channel::<Outgoing>(self.switchboard.outbox_frames());
        self.switchboard.connected(conn, tag, Instant::now());
        self.outboxes.insert(conn, tx);
        self.connections.attached(conn, transport);
        self.forwarding.attached(conn, tag);
        rx
    }

    /// A connection's reader or writer ended: from now on the switchboard treats the
    /// participant as away (what it is sent is kept for its resume). `close` is queued
    /// for the writer, which may still be writing what came before.
    pub(crate) fn detach(&mut self, conn: ConnId, close: Option<Outgoing>) {
        if let (Some(tx), Some(close)) = (self.outboxes.remove(&conn), close) {
            let _ = tx.try_send(close);
        }
        self.forwarding.detached(conn);
        self.switchboard.disconnected(conn, Instant::now());
        self.connections.detached(conn);
        self.flush();
    }

    /// Hand one frame that arrived on `conn` to the switchboard (results wait for
    /// [`Hub::flush`]).
    pub(crate) fn handle(&mut self, conn: ConnId, bytes: &[u8]) {
        if self.route_staff(conn, bytes) || self.carry(conn, bytes) {
            return;
        }
        self.switchboard.handle(conn, bytes, Instant::now());
    }

    /// The switchboard refuses something on `conn` (fatal codes also close it).
    pub(crate) fn refuse(&mut self, conn: ConnId, code: ErrorCode) {
        self.switchboard.refuse(conn, code);
    }

    /// Attach the SFU that carries out the switchboard's call commands.
    pub fn set_sfu(&mut self, sfu: crate::sfu::Sfu) {
        self.sfu = Some(sfu);
    }

    /// The SFU, once attached.
    pub fn sfu(&self) -> Option<&crate::sfu::Sfu> {
        self.sfu.as_ref()
    }

    /// Send one frame to a connection from outside the switchboard (the SFU's answers).
    pub fn send_frame(&mut self, conn: ConnId, frame: &approdo_core::wire::RelayFrame) {
        if let (Ok(bytes), Some(tx)) = (approdo_core::wire::encode(frame), self.outboxes.get(&conn))
            && tx.try_send(Outgoing::Frame(bytes.into())).is_err()
        {
            self.outboxes.remove(&conn);
            self.switchboard.disconnected(conn, Instant::now());
            self.flush();
        }
    }

    /// The switchboard (for inspection).
    pub fn switchboard(&self) -> &Switchboard {
        &self.switchboard
    }

    /// The switchboard, to act on it from outside a connection (admin actions).
    pub fn switchboard_mut(&mut self) -> &mut Switchboard {
        &mut self.switchboard
    }

    /// Carry out what the switchboard asked for. A connection whose outbox is full is
    /// not reading: it is cut off, which may queue frames for others, hence the loop.
    pub fn flush(&mut self) {
        for conn in self.forwarding.send_outgoing() {
            self.cut_edge(conn);
        }
        self.forwarding.send_acks();
        loop {
            let outputs = self.switchboard.take_outputs();
            if outputs.is_empty() {
                return;
            }
            let mut cut = Vec::new();
            for out in outputs {
                match out {
                    Output::Frame(conn, bytes) => {
                        if let Some(tx) = self.outboxes.get(&conn)
                            && tx.try_send(Outgoing::Frame(bytes)).is_err()
                        {
                            cut.push(conn);
                        }
                    }
                    Output::Close(conn) => {
                        if let Some(tx) = self.outboxes.remove(&conn) {
                            let _ = tx.try_send(Outgoing::Close);
                        }
                    }
                    Output::GatherObservatory(conn) => {
                        if !self
                            .ask_bus(crate::bus::forward::BusCommand::GatherObservatory { conn })
                        {
                            self.switchboard.observatory_gathered(conn, None);
                        }
                    }
                    Output::Call(command) => match &self.sfu {
                        Some(sfu) => sfu.command(command),
                        None => {
                            if let crate::switchboard::CallCommand::Join {
                                conn,
                                session,
                                participant,
                                call,
                                ..
                            } = command
                            {
                                self.switchboard.call_failed(
                                    conn,
                                    session,
                                    participant,
                                    call,
                                    true,
                                    Instant::now(),
                                );
                            }
                        }
                    },
                }
            }
            let now = Instant::now();
            cut.sort_unstable();
            cut.dedup();
            for conn in cut {
                tracing::debug!(conn, "outbox full: connection cut off");
                // Dropping the sender ends its writer, and so the connection.
                self.outboxes.remove(&conn);
                self.switchboard.disconnected(conn, now);
            }
        }
    }
}

/// Shared handle on the hub.
pub type SharedHub = Arc<Mutex<Hub>>;

/// Lock the hub. A panic while holding the lock is a bug that may have left the
/// switchboard half-changed: the ticker notices the poisoned lock within a tick and stops,
/// and `Relay::run` then ends with an error (the service manager restarts the relay). Until
/// then the other callers carry on rather than cascade.
pub fn lock(hub: &SharedHub) -> std::sync::MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
