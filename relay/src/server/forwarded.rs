//! The hub's side of carrying connections between nodes (`bus::forward` has the why,
//! `bus::carrier` how each direction is made reliable): on the edge node, client
//! connections whose session lives elsewhere; on the home node, connections carried here
//! from other nodes, which the switchboard treats as its own.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use tokio::sync::mpsc;

use super::{Hub, Outgoing, Transport};
use crate::bus::carrier::{self, Acks, Direction, Input, Receiving};
use crate::bus::forward::{
    BusCommand, Carried, MAX_BYTES_WHILE_LOOKING, MAX_FRAMES_WHILE_LOOKING, resume_token_hash,
};
use crate::ratelimit::AddressTag;
use crate::switchboard::ConnId;

mod visiting;

/// Bursts of a client's frames waiting for the edge's carrier.
const EDGE_QUEUE: usize = 64;

/// A client connection on this node whose session lives on another.
enum Edge {
    /// Its first frame resumes a session this node does not hold; the bus is asked which
    /// node does. What the client sends meanwhile waits here.
    Looking(Vec<Vec<u8>>),
    /// Carried to `home`.
    To {
        home: String,
        /// The carrier's input: one batch per flush.
        batches: mpsc::Sender<Vec<Vec<u8>>>,
        /// Its acknowledgements.
        acks: Acks,
        /// Which of the home's messages come next.
        receiving: Receiving,
    },
    /// The client's connection ended; its carrier is still telling the home node and
    /// needs the acknowledgements. Forgotten once the carrier is done.
    Closing { home: String, acks: Acks },
}

/// A connection carried here from another node.
struct CarriedHere {
    ours: ConnId,
    /// When the last message for it came.
    seen: Instant,
    receiving: Receiving,
    /// The acknowledgements of our carrier back to the edge.
    acks: Acks,
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
    /// Connections carried here: (edge node, its connection number).
    carried: HashMap<(String, u64), CarriedHere>,
    /// Staff connections here with sessions on other nodes (`visiting`).
    staff: HashMap<ConnId, visiting::Routes>,
    /// Each staff sub-connection (an edge of ours) and the staff connection it belongs to.
    merged: HashMap<ConnId, ConnId>,
    /// Staff resumes waiting for their lookup, by the lookup's number.
    resuming: HashMap<ConnId, visiting::Resuming>,
    /// When the staff sub-connections were last sent a keep-alive.
    last_keepalive: Option<Instant>,
    /// The runtime carriers are spawned on (`set_bus`).
    runtime: Option<tokio::runtime::Handle>,
    /// Acknowledgements owed since the last flush, the highest per node, connection and
    /// direction: one goes out per flush, however many messages it covers.
    acks_due: HashMap<(String, u64, AckOf), u64>,
}

/// Which direction's messages an acknowledgement covers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum AckOf {
    /// The edge's `Frames` (sent by the home).
    Frames,
    /// The home's `Out` (sent by the edge).
    Out,
}

impl Forwarding {
    pub(super) fn attached(&mut self, conn: ConnId, tag: AddressTag) {
        if self.bus.is_some() {
            self.fresh.insert(conn, tag);
        }
    }

    /// The client's connection ended: what it sent last still goes, then its carrier
    /// tells the home node (dropping the batch sender ends it).
    pub(super) fn detached(&mut self, conn: ConnId) {
        self.fresh.remove(&conn);
        // A staff connection's sub-connections end with it.
        if let Some(routes) = self.staff.remove(&conn) {
            for sub in routes.into_subs() {
                self.merged.remove(&sub);
                self.detached(sub);
            }
        }
        if let (Some(frames), Some((_, Edge::To { batches, .. }))) =
            (self.outgoing.remove(&conn), self.edges.get(&conn))
        {
            let _ = batches.try_send(frames);
        }
        self.closing(conn);
    }

    /// `conn`'s carrier is to end: its input goes, its acknowledgements stay until it is
    /// done. A connection still looking up its home is simply forgotten.
    fn closing(&mut self, conn: ConnId) {
        match self.edges.remove(&conn) {
            Some((tag, Edge::To { home, acks, .. })) => {
                self.edges.insert(conn, (tag, Edge::Closing { home, acks }));
            }
            Some((tag, closing @ Edge::Closing { .. })) => {
                self.edges.insert(conn, (tag, closing));
            }
            _ => {}
        }
    }

    /// Forget the connections whose carrier has finished.
    fn forget_finished(&mut self) {
        self.edges
            .retain(|_, (_, e)| !matches!(e, Edge::Closing { acks, .. } if acks.is_closed()));
    }

    /// Hand the frames read since the last flush to the carriers; returns the
    /// connections whose carrier could not take them (to be cut off).
    pub(super) fn send_outgoing(&mut self) -> Vec<ConnId> {
        let mut refused = Vec::new();
        for (conn, frames) in std::mem::take(&mut self.outgoing) {
            if let Some((_, Edge::To { batches, .. })) = self.edges.get(&conn)
                && batches.try_send(frames).is_err()
            {
                refused.push(conn);
            }
        }
        refused
    }

    /// Owe node `to` an acknowledgement of `conn`'s messages up to `up_to`; it leaves at
    /// the next flush ([`Forwarding::send_acks`]).
    fn ack(&mut self, to: &str, conn: u64, of: AckOf, up_to: u64) {
        let due = self.acks_due.entry((to.to_owned(), conn, of)).or_default();
        *due = (*due).max(up_to);
    }

    /// Send the acknowledgements owed, unnumbered: a lost one is made up by the next.
    pub(super) fn send_acks(&mut self) {
        if self.acks_due.is_empty() {
            return;
        }
        let Some(bus) = &self.bus else {
            self.acks_due.clear();
            return;
        };
        for ((to, conn, of), up_to) in self.acks_due.drain() {
            let message = match of {
                AckOf::Frames => Carried::AckFrames { conn, up_to },
                AckOf::Out => Carried::AckOut { conn, up_to },
            };
            let _ = bus.try_send(BusCommand::Send { to, message });
        }
    }
}

impl Hub {
    /// Join the bus: from now on connections may be carried to and from other nodes.
    /// `idle`: how long a connection carried here may stay silent.
    /// `runtime`: where carriers run (the bus's own thread, beside the bus task they feed).
    pub(crate) fn set_bus(
        &mut self,
        bus: mpsc::Sender<BusCommand>,
        idle: std::time::Duration,
        runtime: tokio::runtime::Handle,
    ) {
        self.forwarding.bus = Some(bus);
        self.forwarding.idle = idle;
        self.forwarding.runtime = Some(runtime);
        self.switchboard.gather_observatory_from_other_nodes();
    }

    /// Hand `command` to the bus task; `false` when there is no bus or its queue is full.
    pub(super) fn ask_bus(&self, command: BusCommand) -> bool {
        self.forwarding
            .bus
            .as_ref()
            .is_some_and(|bus| bus.try_send(command).is_ok())
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
            match edge {
                Edge::Looking(waiting)
                    if waiting.len() < MAX_FRAMES_WHILE_LOOKING
                        && waiting.iter().map(Vec::len).sum::<usize>() + bytes.len()
                            <= MAX_BYTES_WHILE_LOOKING =>
                {
                    waiting.push(bytes.to_vec());
                }
                Edge::Looking(_) => self.cut_edge(conn),
                // Only after the client's connection ended: nothing more to carry.
                Edge::Closing { .. } => {}
                // Sent at the next flush, with the rest of the client's burst.
                Edge::To { .. } => f.outgoing.entry(conn).or_default().push(bytes.to_vec()),
            }
            return true;
        }
        let Some(tag) = f.fresh.remove(&conn) else {
            return false;
        };
        let Some(token_hash) =
            resume_token_hash(bytes).filter(|_| bytes.len() <= MAX_BYTES_WHILE_LOOKING)
        else {
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
        if self.resume_found(conn, home.clone()) {
            return;
        }
        let Some((tag, Edge::Looking(waiting))) = self.forwarding.edges.remove(&conn) else {
            return;
        };
        match (home, self.forwarding.bus.clone()) {
            (Some(home), Some(bus)) => {
                let (batches, input) = mpsc::channel(EDGE_QUEUE);
                let direction = Direction::ToHome {
                    tag: tag.to_bytes(),
                    staff: None,
                };
                let acks = carrier::spawn(
                    self.forwarding.runtime.as_ref(),
                    bus,
                    home.clone(),
                    conn,
                    direction,
                    Input::Batches(input, Default::default()),
                );
                let _ = batches.try_send(waiting);
                let edge = Edge::To {
                    home,
                    batches,
                    acks,
                    receiving: Receiving::default(),
                };
                self.forwarding.edges.insert(conn, (tag, edge));
            }
            _ => {
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
            Carried::Frames {
                conn,
                tag,
                seq,
                frames,
                staff,
            } => {
                let key = (from.to_owned(), conn);
                if !self.forwarding.carried.contains_key(&key) {
                    if seq != 1 {
                        return; // the first is still to come
                    }
                    self.open_carried(from, conn, tag, staff.as_ref());
                }
                let Some(here) = self.forwarding.carried.get_mut(&key) else {
                    return;
                };
                here.seen = Instant::now();
                let (take, up_to, ours) =
                    (here.receiving.take(seq), here.receiving.up_to(), here.ours);
                self.forwarding.ack(from, conn, AckOf::Frames, up_to);
                if take {
                    let now = Instant::now();
                    for frame in frames {
                        self.switchboard.handle(ours, &frame, now);
                    }
                }
            }
            Carried::Closed { conn, seq } => {
                let key = (from.to_owned(), conn);
                let Some(here) = self.forwarding.carried.get_mut(&key) else {
                    return;
                };
                let (take, up_to, ours) =
                    (here.receiving.take(seq), here.receiving.up_to(), here.ours);
                self.forwarding.ack(from, conn, AckOf::Frames, up_to);
                if take {
                    self.forwarding.carried.remove(&key);
                    self.detach(ours, None);
                }
            }
            Carried::AckOut { conn, up_to } => {
                if let Some(here) = self.forwarding.carried.get(&(from.to_owned(), conn)) {
                    let _ = here.acks.send(up_to);
                }
            }
            Carried::Out { conn, seq, frames } => {
                let Some(up_to) = self.edge_takes(conn, from, seq) else {
                    return;
                };
                self.forwarding.ack(from, conn, AckOf::Out, up_to.1);
                if !up_to.0 {
                    return;
                }
                if let Some(client) = self.forwarding.merged.get(&conn).copied() {
                    self.merge_out(client, from, frames);
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
            Carried::Close { conn, seq, code } => {
                let Some((take, up_to)) = self.edge_takes(conn, from, seq) else {
                    return;
                };
                self.forwarding.ack(from, conn, AckOf::Out, up_to);
                // The edge entry stays until the client's connection ends (its detach). A
                // staff sub-connection closed by its home closes the member's connection.
                let client = self.forwarding.merged.get(&conn).copied().unwrap_or(conn);
                if take && let Some(tx) = self.outboxes.remove(&client) {
                    let _ = tx.try_send(code.map_or(Outgoing::Close, Outgoing::CloseWith));
                }
            }
            Carried::AckFrames { conn, up_to } => {
                if let Some((_, Edge::To { home, acks, .. } | Edge::Closing { home, acks })) =
                    self.forwarding.edges.get(&conn)
                    && home == from
                {
                    let _ = acks.send(up_to);
                }
            }
        }
    }

    /// For a message numbered `seq` from `from` for our client connection `conn`:
    /// whether to take it, and what to acknowledge. `None` when `conn` is not carried to
    /// `from` (such a message is ignored).
    fn edge_takes(&mut self, conn: ConnId, from: &str, seq: u64) -> Option<(bool, u64)> {
        match self.forwarding.edges.get_mut(&conn) {
            Some((
                _,
                Edge::To {
                    home, receiving, ..
                },
            )) if home == from => Some((receiving.take(seq), receiving.up_to())),
            _ => None,
        }
    }

    /// Node `node` fell silent: its queue and staff leave the views, the clients carried
    /// there are closed (their session is gone
    /// with it; a resume anywhere then fails as for any ended session), and the
    /// connections carried here from it count as dropped (their participants are away and
    /// may resume through another node).
    pub(crate) fn node_lost(&mut self, node: &str) {
        self.switchboard.forget_remote_lobby(node);
        self.visiting_node_lost(node);
        let edges: Vec<ConnId> = self
            .forwarding
            .edges
            .iter()
            .filter(|(_, (_, e))| {
                matches!(e, Edge::To { home, .. } | Edge::Closing { home, .. } if home == node)
            })
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
    /// pings more often than that) count as dropped: the edge node may have gone without
    /// a word. Called every tick.
    pub(crate) fn expire_silent_carried(&mut self, now: Instant) {
        self.forwarding.forget_finished();
        self.keep_sub_connections_alive(now);
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
            .filter(|(key, here)| which(key, here.seen))
            .map(|(key, here)| (key.clone(), here.ours))
            .collect();
        for (key, ours) in gone {
            self.forwarding.carried.remove(&key);
            self.detach(ours, None);
        }
    }

    /// A client connection here that cannot be carried on (its carrier is overloaded):
    /// closed. Dropping its carrier's input tells the home node.
    pub(super) fn cut_edge(&mut self, conn: ConnId) {
        tracing::debug!(conn, "carried connection cut off");
        // A staff sub-connection that cannot go on takes the member's connection with it.
        if let Some(client) = self.forwarding.merged.get(&conn).copied() {
            self.outboxes.remove(&client);
        }
        self.forwarding.closing(conn);
        self.forwarding.outgoing.remove(&conn);
        self.outboxes.remove(&conn);
    }

    /// A client of node `from` is carried here: it gets a connection of ours, whose
    /// outbox a carrier drains back over the bus. With `staff`, the connection is that
    /// staff member's, vouched for by `from` (`server::visiting`).
    fn open_carried(
        &mut self,
        from: &str,
        edge_conn: u64,
        tag: [u8; 16],
        staff: Option<&approdo_core::identity::SignedCertificate>,
    ) {
        let Some(bus) = self.forwarding.bus.clone() else {
            return;
        };
        let ours = self.allocate_conn();
        let rx = self.attach(ours, AddressTag::from_bytes(tag), Transport::Forwarded);
        self.forwarding.fresh.remove(&ours);
        if let Some(signed) = staff
            && !self
                .switchboard
                .vouched_staff(ours, signed, from, edge_conn, Instant::now())
        {
            tracing::debug!("a vouched staff certificate does not check here");
        }
        let acks = carrier::spawn(
            self.forwarding.runtime.as_ref(),
            bus,
            from.to_owned(),
            edge_conn,
            Direction::ToEdge,
            Input::Outbox(rx),
        );
        self.forwarding.carried.insert(
            (from.to_owned(), edge_conn),
            CarriedHere {
                ours,
                seen: Instant::now(),
                receiving: Receiving::default(),
                acks,
            },
        );
    }
}
