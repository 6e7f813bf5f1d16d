//! Staff across nodes, the hub's side on the node holding a staff member's connection
//! (the edge). A staff member logged in here who takes a session living on another node
//! (accepting a person waiting there, joining on an invitation there) reaches it through a
//! *sub-connection*: a connection this node carries to that home node over the bus, with
//! the same reliable carrier as a resumed connection (`bus::carrier`), opened with the
//! member's certificate, which this node vouches for (`switchboard::visiting` says why the
//! home may trust it). One sub-connection per home node and staff connection.
//!
//! Frames naming a session routed to a home node go down its sub-connection, untouched;
//! the home's switchboard does everything (it acknowledges, numbers and resends events as
//! for its own staff; this node never answers for it). What the home writes back is merged
//! into the member's one connection, in order per home, less what only the edge decides
//! (queue and invitation views, which come from the global snapshots, and pongs). This
//! node pings every sub-connection as often as a client pings, so a quiet session's node
//! never takes a busy member for gone.
//!
//! What the member sends there is charged here, against their one connection's budgets,
//! and an `Accept` or `Join` goes only while the member's sessions on every node are
//! under the cap (`switchboard::abroad`, where the counting is and why it holds).
//!
//! When a home node is lost, its sessions end for the member: this node writes the
//! session's `Ended` event itself (numbered after the last event the member was sent),
//! as the home would have.

use std::collections::HashMap;
use std::sync::Arc;

use approdo_core::ids::SessionId;
use approdo_core::wire::{ClientFrame, RelayFrame, SessionEvent};
use axum::body::Bytes;
use tokio::sync::mpsc;

use super::{EDGE_QUEUE, Edge};
use crate::bus::carrier::{self, Direction, Input, Receiving};
use crate::server::{Hub, Outgoing};
use crate::switchboard::ConnId;

/// How often staff sub-connections are sent a keep-alive: as often as a client pings.
const KEEPALIVE_EVERY: std::time::Duration =
    std::time::Duration::from_secs(approdo_core::client::PING_INTERVAL_SECS);

/// Most staff resumes waiting for their lookup at once; more are answered here (a failed
/// resume).
const MAX_RESUMING: usize = 1024;

/// Where one staff connection's sessions on other nodes live.
#[derive(Default)]
pub(in crate::server) struct Routes {
    /// The sub-connection to each home node.
    subs: HashMap<String, ConnId>,
    /// Each session taken elsewhere, and its home node.
    sessions: HashMap<SessionId, String>,
    /// The last event number the member was sent for each such session.
    last_seq: HashMap<SessionId, u64>,
}

/// A staff member's `Resume` of a seat this node does not hold, waiting for the bus to say
/// which node holds it (keyed by a number of the lookup's own).
pub(in crate::server) struct Resuming {
    /// The staff connection.
    client: ConnId,
    /// The `Resume` frame, as sent.
    frame: Vec<u8>,
}

impl Routes {
    /// Its sub-connections.
    pub(super) fn into_subs(self) -> impl Iterator<Item = ConnId> {
        self.subs.into_values()
    }
}

/// The session a client frame names, if it names one.
fn session_of(frame: &ClientFrame) -> Option<SessionId> {
    match frame {
        ClientFrame::Accept { session }
        | ClientFrame::Invite { session, .. }
        | ClientFrame::Join { session }
        | ClientFrame::Leave { session }
        | ClientFrame::End { session }
        | ClientFrame::Send { session, .. }
        | ClientFrame::Ack { session, .. }
        | ClientFrame::Transfer { session, .. }
        | ClientFrame::CloseCase { session, .. }
        | ClientFrame::CallJoin { session, .. }
        | ClientFrame::CallVideo { session, .. }
        | ClientFrame::CallLeave { session }
        | ClientFrame::TurnRequest { session } => Some(*session),
        _ => None,
    }
}

impl Hub {
    /// A frame from staff connection `conn`: if it concerns a session living on another
    /// node, carry it there (true); otherwise this switchboard handles it (false).
    pub(in crate::server) fn route_staff(&mut self, conn: ConnId, bytes: &[u8]) -> bool {
        if self.forwarding.bus.is_none()
            || !(self.forwarding.staff.contains_key(&conn) || self.switchboard.is_local_staff(conn))
        {
            return false;
        }
        let Ok(frame) = approdo_core::wire::decode::<ClientFrame>(bytes) else {
            return false; // the switchboard answers what it cannot read
        };
        if let ClientFrame::Resume { .. } = frame {
            return self.resume_elsewhere(conn, bytes);
        }
        let Some(session) = session_of(&frame) else {
            return false;
        };
        let routed = self
            .forwarding
            .staff
            .get(&conn)
            .and_then(|r| r.sessions.get(&session))
            .cloned();
        let Some(home) = routed.or_else(|| self.switchboard.remote_home(conn, &frame)) else {
            return false;
        };
        let Some(sub) = self.sub_connection(conn, &home) else {
            return false;
        };
        if let Err(code) =
            self.switchboard
                .admit_abroad(conn, bytes, &frame, &home, std::time::Instant::now())
        {
            self.switchboard.refuse(conn, code);
            return true;
        }
        let routes = self.forwarding.staff.entry(conn).or_default();
        routes.sessions.insert(session, home);
        self.forwarding
            .outgoing
            .entry(sub)
            .or_default()
            .push(bytes.to_vec());
        true
    }

    /// A staff member's `Resume` (after logging in again, here or on any node) of a seat
    /// this node does not hold: ask the bus which node holds the token, and carry the
    /// frame there when one answers (`resume_found`). True when the lookup is under way.
    fn resume_elsewhere(&mut self, conn: ConnId, bytes: &[u8]) -> bool {
        let Some(token_hash) = crate::bus::forward::resume_token_hash(bytes) else {
            return false;
        };
        if self.switchboard.holds_resume_token_hash(&token_hash)
            || self.forwarding.resuming.len() >= MAX_RESUMING
        {
            return false;
        }
        let lookup = self.allocate_conn();
        let asked = self.forwarding.bus.as_ref().is_some_and(|bus| {
            bus.try_send(crate::bus::forward::BusCommand::Lookup {
                conn: lookup,
                token_hash,
            })
            .is_ok()
        });
        if asked {
            let frame = bytes.to_vec();
            self.forwarding.resuming.insert(
                lookup,
                Resuming {
                    client: conn,
                    frame,
                },
            );
        }
        asked
    }

    /// The bus's answer to a staff resume's lookup (`lookup` is its number): carry the
    /// `Resume` to the node holding the seat, or let this switchboard answer it (a failed
    /// resume) when none does. False when `lookup` is not a staff resume's.
    pub(super) fn resume_found(&mut self, lookup: ConnId, home: Option<String>) -> bool {
        let Some(Resuming { client, frame }) = self.forwarding.resuming.remove(&lookup) else {
            return false;
        };
        if !self.outboxes.contains_key(&client) {
            return true; // gone meanwhile
        }
        match home.and_then(|home| self.sub_connection(client, &home)) {
            Some(sub) => self.forwarding.outgoing.entry(sub).or_default().push(frame),
            None => self
                .switchboard
                .handle(client, &frame, std::time::Instant::now()),
        }
        self.flush();
        true
    }

    /// Every [`KEEPALIVE_EVERY`], a `Ping` down every staff sub-connection: a member busy
    /// with sessions here sends nothing to a quiet session's node, which would otherwise
    /// take the silence for a dropped connection (`idle_timeout_secs`). Its `Pong` is
    /// dropped on the way back. Called every tick.
    pub(super) fn keep_sub_connections_alive(&mut self, now: std::time::Instant) {
        let f = &mut self.forwarding;
        if f.merged.is_empty() {
            return;
        }
        let due = f
            .last_keepalive
            .is_none_or(|at| now.saturating_duration_since(at) >= KEEPALIVE_EVERY);
        if !due {
            return;
        }
        f.last_keepalive = Some(now);
        let Ok(ping) = approdo_core::wire::encode(&ClientFrame::Ping) else {
            return;
        };
        let subs: Vec<ConnId> = f.merged.keys().copied().collect();
        for sub in subs {
            f.outgoing.entry(sub).or_default().push(ping.clone());
        }
        self.flush();
    }

    /// `conn`'s sub-connection to `home`, opened now if it has none.
    fn sub_connection(&mut self, conn: ConnId, home: &str) -> Option<ConnId> {
        if let Some(sub) = self
            .forwarding
            .staff
            .get(&conn)
            .and_then(|r| r.subs.get(home))
        {
            return Some(*sub);
        }
        let (tag, signed) = self.switchboard.vouch(conn)?;
        let bus = self.forwarding.bus.clone()?;
        let sub = self.allocate_conn();
        let (batches, input) = mpsc::channel(EDGE_QUEUE);
        let direction = Direction::ToHome {
            tag: tag.to_bytes(),
            staff: Some(Arc::new(signed)),
        };
        let acks = carrier::spawn(
            self.forwarding.runtime.as_ref(),
            bus,
            home.to_owned(),
            sub,
            direction,
            Input::Batches(input, Default::default()),
        );
        let edge = Edge::To {
            home: home.to_owned(),
            batches,
            acks,
            receiving: Receiving::default(),
        };
        self.forwarding.edges.insert(sub, (tag, edge));
        self.forwarding.merged.insert(sub, conn);
        self.switchboard.sub_opened(conn, home, sub);
        self.forwarding
            .staff
            .entry(conn)
            .or_default()
            .subs
            .insert(home.to_owned(), sub);
        Some(sub)
    }

    /// Frames a home node wrote on sub-connection `sub` of staff connection `client`:
    /// into the client's connection, less the views and pongs. A client that does not
    /// read is cut off.
    pub(super) fn merge_out(&mut self, client: ConnId, home: &str, frames: Vec<Vec<u8>>) {
        let Some(tx) = self.outboxes.get(&client) else {
            return;
        };
        let mut routes = self.forwarding.staff.get_mut(&client);
        let mut full = false;
        for bytes in frames {
            match approdo_core::wire::decode::<RelayFrame>(&bytes) {
                Ok(
                    RelayFrame::Pong
                    | RelayFrame::Queue { .. }
                    | RelayFrame::Invitations { .. }
                    | RelayFrame::StaffReady { .. }
                    | RelayFrame::Challenge { .. },
                ) => continue,
                Ok(RelayFrame::Event { session, seq, .. }) => {
                    if let Some(r) = routes.as_mut() {
                        r.last_seq.insert(session, seq);
                    }
                }
                // A seat resumed there: the session's frames go there from now on.
                Ok(RelayFrame::Resumed { session, .. }) => {
                    if let Some(r) = routes.as_mut() {
                        r.sessions.insert(session, home.to_owned());
                    }
                }
                _ => {}
            }
            if tx.try_send(Outgoing::Frame(Bytes::from(bytes))).is_err() {
                full = true;
                break;
            }
        }
        if full {
            self.cut_edge(client);
        }
    }

    /// Home node `node` is lost: every staff connection here with sessions there is told
    /// they ended (as their home would have), and its sub-connection there is forgotten.
    pub(super) fn visiting_node_lost(&mut self, node: &str) {
        let mut ended: Vec<(ConnId, SessionId, u64)> = Vec::new();
        for (client, routes) in &mut self.forwarding.staff {
            let Some(sub) = routes.subs.remove(node) else {
                continue;
            };
            self.forwarding.merged.remove(&sub);
            let gone: Vec<SessionId> = routes
                .sessions
                .iter()
                .filter(|(_, home)| *home == node)
                .map(|(s, _)| *s)
                .collect();
            for session in gone {
                routes.sessions.remove(&session);
                let last = routes.last_seq.remove(&session).unwrap_or(0);
                ended.push((*client, session, last + 1));
            }
        }
        for (client, session, seq) in ended {
            let frame = RelayFrame::Event {
                session,
                seq,
                event: SessionEvent::Ended,
            };
            if let (Ok(bytes), Some(tx)) = (
                approdo_core::wire::encode(&frame),
                self.outboxes.get(&client),
            ) {
                let _ = tx.try_send(Outgoing::Frame(bytes.into()));
            }
        }
    }
}
