//! The hub's side of carrying connections between nodes (`bus::forward` has the why):
//! on the edge node, client connections whose session lives elsewhere; on the home node,
//! connections carried here from other nodes, which the switchboard treats as its own.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use tokio::sync::mpsc;

use super::{Hub, Outgoing, Transport};
use crate::bus::forward::{BusCommand, Carried, MAX_FRAMES_WHILE_LOOKING, resume_token_hash};
use crate::ratelimit::AddressTag;
use crate::switchboard::ConnId;

/// A client connection on this node whose session lives on another.
enum Edge {
    /// Its first frame resumes a session this node does not hold; the bus is asked which
    /// node does. What the client sends meanwhile waits here.
    Looking(Vec<Vec<u8>>),
    /// Carried to this node.
    To(String),
}

/// The forwarding state of a hub: empty, and every method a no-op, on a single node.
#[derive(Default)]
pub(crate) struct Forwarding {
    bus: Option<mpsc::Sender<BusCommand>>,
    /// How long a carried connection may stay silent (the relay's `idle_timeout_secs`).
    idle: std::time::Duration,
    /// Connections attached that have sent nothing yet (with their tag), tracked only with
    /// a bus: their first frame decides whether they stay here.
    fresh: HashMap<ConnId, AddressTag>,
    /// Client connections here, sessions elsewhere.
    edges: HashMap<ConnId, (AddressTag, Edge)>,
    /// Frames from carried clients read since the last flush, per connection: one bus
    /// message per connection and burst.
    outgoing: HashMap<ConnId, Vec<Vec<u8>>>,
    /// Connections carried here: (edge node, its connection number) → our number, and
    /// when the last message for it came.
    carried: HashMap<(String, u64), (ConnId, Instant)>,
}

impl Forwarding {
    pub(super) fn attached(&mut self, conn: ConnId, tag: AddressTag) {
        if self.bus.is_some() {
            self.fresh.insert(conn, tag);
        }
    }

    /// The client's connection ended: the home node is told (no reply expected).
    pub(super) fn detached(&mut self, conn: ConnId) {
        self.fresh.remove(&conn);
        // What it sent last still goes first.
        if let (Some(frames), Some((_, Edge::To(home)))) =
            (self.outgoing.remove(&conn), self.edges.get(&conn))
        {
            self.send(home.clone(), Carried::Frames { conn, frames });
        }
        if let Some((_, Edge::To(home))) = self.edges.remove(&conn) {
            self.send(home, Carried::Closed { conn });
        }
    }

    /// Hand the frames read since the last flush to the bus; returns the connections the
    /// bus could not take them for (to be cut off).
    pub(super) fn send_outgoing(&mut self) -> Vec<ConnId> {
        let mut refused = Vec::new();
        for (conn, frames) in std::mem::take(&mut self.outgoing) {
            if let Some((_, Edge::To(home))) = self.edges.get(&conn)
                && !self.send(home.clone(), Carried::Frames { conn, frames })
            {
                refused.push(conn);
            }
        }
        refused
    }

    /// Queue `message` for node `to`; `false` when the bus cannot take it now.
    fn send(&self, to: String, message: Carried) -> bool {
        self.bus
            .as_ref()
            .is_some_and(|bus| bus.try_send(BusCommand::Send { to, message }).is_ok())
    }
}

impl Hub {
    /// Join the bus: from now on connections may be carried to and from other nodes.
    /// `idle`: how long a connection carried here may stay silent.
    pub(crate) fn set_bus(&mut self, bus: mpsc::Sender<BusCommand>, idle: std::time::Duration) {
        self.forwarding.bus = Some(bus);
        self.forwarding.idle = idle;
    }

    /// Whether this node's switchboard holds the resume token with this SHA-256 (a lookup
    /// from another node).
    pub(crate) fn holds_resume_token(&self, token_hash: &[u8; 32]) -> bool {
        self.switchboard.holds_resume_token_hash(token_hash)
    }

    /// Carry `bytes` from `conn` elsewhere if its session lives elsewhere (or may: a first
    /// frame resuming a token this node does not hold starts a lookup). Returns whether it
    /// was taken care of here; `false`: the switchboard handles it.
    pub(super) fn carry(&mut self, conn: ConnId, bytes: &[u8]) -> bool {
        let f = &mut self.forwarding;
        if let Some((_, edge)) = f.edges.get_mut(&conn) {
            let sent = match edge {
                Edge::Looking(waiting) if waiting.len() < MAX_FRAMES_WHILE_LOOKING => {
                    waiting.push(bytes.to_vec());
                    true
                }
                Edge::Looking(_) => false,
                Edge::To(_) => {
                    // Sent at the next flush, with the rest of the client's burst.
                    f.outgoing.entry(conn).or_default().push(bytes.to_vec());
                    true
                }
            };
            if !sent {
                self.cut_edge(conn);
            }
            return true;
        }
        let Some(tag) = f.fresh.remove(&conn) else {
            return false;
        };
        let Some(token_hash) = resume_token_hash(bytes) else {
            return false;
        };
        if self.switchboard.holds_resume_token_hash(&token_hash) {
            return false;
        }
        let asked = f.bus.as_ref().is_some_and(|bus| {
            bus.try_send(BusCommand::Lookup { conn, token_hash })
                .is_ok()
        });
        if !asked {
            return false;
        }
        f.edges
            .insert(conn, (tag, Edge::Looking(vec![bytes.to_vec()])));
        true
    }

    /// The bus's answer for `conn`'s lookup: carry it to `home`, or, when no node holds
    /// the token, let this switchboard answer what it sent (a failed resume).
    pub(crate) fn lookup_done(&mut self, conn: ConnId, home: Option<String>) {
        let Some((tag, Edge::Looking(waiting))) = self.forwarding.edges.remove(&conn) else {
            return;
        };
        match home {
            Some(home) => {
                let open = Carried::Open {
                    conn,
                    tag: tag.to_bytes(),
                    frames: waiting,
                };
                if self.forwarding.send(home.clone(), open) {
                    self.forwarding.edges.insert(conn, (tag, Edge::To(home)));
                } else {
                    self.cut_edge(conn);
                }
            }
            None => {
                let now = Instant::now();
                for frame in waiting {
                    self.switchboard.handle(conn, &frame, now);
                }
                self.flush();
            }
        }
    }

    /// A message from node `from` over the bus.
    pub(crate) fn carried_in(&mut self, from: &str, message: Carried) {
        match message {
            Carried::Open { conn, tag, frames } => self.open_carried(from, conn, tag, frames),
            Carried::Frames { conn, frames } => {
                if let Some((ours, seen)) =
                    self.forwarding.carried.get_mut(&(from.to_owned(), conn))
                {
                    let now = Instant::now();
                    *seen = now;
                    let ours = *ours;
                    for frame in frames {
                        self.switchboard.handle(ours, &frame, now);
                    }
                    self.flush();
                }
            }
            Carried::Closed { conn } => {
                if let Some((ours, _)) = self.forwarding.carried.remove(&(from.to_owned(), conn)) {
                    self.detach(ours, None);
                }
            }
            Carried::Out { conn, frames } => {
                if !self.is_carried_to(conn, from) {
                    return;
                }
                let Some(tx) = self.outboxes.get(&conn) else {
                    return;
                };
                let full = frames
                    .into_iter()
                    .any(|f| tx.try_send(Outgoing::Frame(Bytes::from(f))).is_err());
                if full {
                    self.cut_edge(conn);
                }
            }
            Carried::Close { conn, code } => {
                if self.is_carried_to(conn, from) {
                    self.forwarding.edges.remove(&conn);
                    if let Some(tx) = self.outboxes.remove(&conn) {
                        let _ = tx.try_send(code.map_or(Outgoing::Close, Outgoing::CloseWith));
                    }
                }
            }
        }
    }

    /// Node `node` fell silent: the clients carried there are closed (their session is gone
    /// with it; a resume anywhere then fails as for any ended session), and the
    /// connections carried here from it count as dropped (their participants are away and
    /// may resume through another node).
    pub(crate) fn node_lost(&mut self, node: &str) {
        let edges: Vec<ConnId> = self
            .forwarding
            .edges
            .iter()
            .filter(|(_, (_, e))| matches!(e, Edge::To(home) if home == node))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in edges {
            self.forwarding.edges.remove(&conn);
            if let Some(tx) = self.outboxes.remove(&conn) {
                let _ = tx.try_send(Outgoing::Close);
            }
        }
        self.drop_carried(|(edge, _), _| edge == node);
    }

    /// Connections carried here that nothing came for in `idle_timeout_secs` (a client
    /// pings more often than that) count as dropped: the message saying the client left
    /// may have been lost on the bus, which delivers at most once. Called every tick.
    pub(crate) fn expire_silent_carried(&mut self, now: Instant) {
        if self.forwarding.carried.is_empty() {
            return;
        }
        let idle = self.forwarding.idle;
        self.drop_carried(|_, seen| now.saturating_duration_since(seen) > idle);
    }

    /// Detach every connection carried here for which `which(key, last seen)` holds.
    fn drop_carried(&mut self, which: impl Fn(&(String, u64), Instant) -> bool) {
        let gone: Vec<((String, u64), ConnId)> = self
            .forwarding
            .carried
            .iter()
            .filter(|(key, (_, seen))| which(key, *seen))
            .map(|(key, (ours, _))| (key.clone(), *ours))
            .collect();
        for (key, ours) in gone {
            self.forwarding.carried.remove(&key);
            self.detach(ours, None);
        }
    }

    fn is_carried_to(&self, conn: ConnId, node: &str) -> bool {
        matches!(self.forwarding.edges.get(&conn), Some((_, Edge::To(home))) if home == node)
    }

    /// A client connection here that cannot be carried on (the bus is overloaded): closed.
    pub(super) fn cut_edge(&mut self, conn: ConnId) {
        tracing::debug!(conn, "carried connection cut off");
        if let Some((_, Edge::To(home))) = self.forwarding.edges.remove(&conn) {
            self.forwarding.send(home, Carried::Closed { conn });
        }
        self.outboxes.remove(&conn);
    }

    /// A client of node `from` is carried here: it gets a connection of ours, whose
    /// outbox a task drains back over the bus, and its first frames are handled.
    fn open_carried(&mut self, from: &str, edge_conn: u64, tag: [u8; 16], frames: Vec<Vec<u8>>) {
        let Some(bus) = self.forwarding.bus.clone() else {
            return;
        };
        let key = (from.to_owned(), edge_conn);
        if self.forwarding.carried.contains_key(&key) {
            return;
        }
        let ours = self.allocate_conn();
        let mut rx = self.attach(ours, AddressTag::from_bytes(tag), Transport::Forwarded);
        self.forwarding.fresh.remove(&ours);
        self.forwarding.carried.insert(key, (ours, Instant::now()));
        let edge = from.to_owned();
        tokio::spawn(async move {
            let mut code = None;
            // Everything queued goes in one message: a burst of events is one bus message.
            'drain: while let Some(first) = rx.recv().await {
                let mut frames = Vec::new();
                let mut next = Some(first);
                let mut closing = false;
                while let Some(out) = next {
                    match out {
                        Outgoing::Frame(bytes) => frames.push(bytes.to_vec()),
                        Outgoing::Close => closing = true,
                        Outgoing::CloseWith(c) => {
                            code = Some(c);
                            closing = true;
                        }
                    }
                    next = if closing { None } else { rx.try_recv().ok() };
                }
                if !frames.is_empty() {
                    let message = Carried::Out {
                        conn: edge_conn,
                        frames,
                    };
                    let to = edge.clone();
                    if bus.send(BusCommand::Send { to, message }).await.is_err() {
                        return;
                    }
                }
                if closing {
                    break 'drain;
                }
            }
            let close = Carried::Close {
                conn: edge_conn,
                code,
            };
            let _ = bus
                .send(BusCommand::Send {
                    to: edge,
                    message: close,
                })
                .await;
        });
        let now = Instant::now();
        for frame in frames {
            self.switchboard.handle(ours, &frame, now);
        }
        self.flush();
    }
}
