//! One cap and one budget per staff connection across nodes (several nodes only).
//!
//! A staff member's connection lives on one node, their *own* node (the edge); sessions
//! homed on other nodes are reached through sub-connections (`server::visiting`), which
//! each home takes as a staff connection of its own. Counted per node, a member could
//! hold `max_sessions_per_staff` sessions on every node and spend a full frame budget on
//! each. So the own node is the authority for both:
//!
//! * **Budgets.** Every frame the edge carries to a home is charged here first, against
//!   the member's one connection (its bytes, its frame budget, and the address's bytes in
//!   the [`super::budget::Gate`]), exactly as a frame for a local session is. The home
//!   still charges the sub-connection's own budgets: a backstop against a buggy or hostile
//!   edge, which a well-behaved one never reaches first, since it sees a subset of the
//!   same frames. Only `Ack`s that release nothing are charged at the home alone (whether
//!   one releases anything only the home knows).
//! * **The session cap.** The edge counts the member's sessions wherever they live:
//!   those held here, those each home reports in its lobby snapshot for the member's
//!   sub-connection ([`super::remote::SnapVisitor`]), and those whose `Accept` or `Join`
//!   the edge carried but no snapshot has answered yet (*pending*). An `Accept` or `Join`
//!   for another node is carried only while that count is below the cap, and is counted
//!   as pending the moment it is carried: the hub handles one frame at a time, so two
//!   accepts raced towards two homes are counted one after the other and the second is
//!   refused at the cap. The home keeps its own per-connection cap as a backstop.
//!
//! Healing: a home's report is whole in every snapshot (published on change and every
//! 2 s), so a lost one is replaced by the next. A pending entry ends when a snapshot of
//! its home lists the session as held or answered, or after [`PENDING_FOR`] (the answer
//! was lost with a frame that never arrived); a lost home's reports and pending entries
//! go with it, as the edge tells the member its sessions there ended. Nothing is ever
//! decremented: each count is the size of a set rebuilt from what is known now, so no
//! message, lost, repeated or hostile, can make it negative or wrap it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use approdo_core::ids::SessionId;
use approdo_core::wire::{ClientFrame, ErrorCode};

use super::remote::{MAX_VISITOR_SESSIONS, SNAPSHOT_STALE, SnapVisitor};
use super::{ConnId, Switchboard};

/// How long an `Accept` or `Join` carried to another node counts without an answer: as
/// long as that node's snapshots may be missing before its entries are dropped anyway.
pub const PENDING_FOR: Duration = SNAPSHOT_STALE;

/// How long a home keeps reporting an `Accept` or `Join` it answered: as long as the
/// edge may still count it as pending.
const ANSWERED_FOR: Duration = PENDING_FOR;

/// Whether an `Accept` or `Join` for `session` carried to `home` at `at` still counts as
/// pending: no snapshot of `home` has answered it (listed it as held or answered) and it
/// is younger than [`PENDING_FOR`].
fn still_pending(
    lobby: &super::lobby::Lobby,
    abroad: &Abroad,
    session: &SessionId,
    home: &str,
    at: Instant,
    now: Instant,
) -> bool {
    let answered = abroad
        .subs
        .get(home)
        .and_then(|sub| lobby.visitor(home, *sub))
        .is_some_and(|v| v.held.contains(session) || v.answered.contains(session));
    !answered && now.saturating_duration_since(at) < PENDING_FOR
}

/// The edge's side: where a local staff connection's sub-connections go, and what it
/// asked for there that no snapshot has answered yet.
#[derive(Default)]
pub(super) struct Abroad {
    /// The sub-connection to each home node.
    subs: HashMap<String, ConnId>,
    /// `Accept`s and `Join`s carried and not yet answered: session, home, when.
    pending: Vec<(SessionId, String, Instant)>,
}

/// The home's side: which node carries a vouched staff connection, under what number,
/// and the `Accept`s and `Join`s it answered lately.
pub(super) struct Origin {
    edge: String,
    conn: u64,
    answered: VecDeque<(SessionId, Instant)>,
}

impl Origin {
    /// A staff connection `edge` carries here as its connection `conn`.
    pub(super) fn new(edge: &str, conn: u64) -> Self {
        Origin {
            edge: edge.to_owned(),
            conn,
            answered: VecDeque::new(),
        }
    }
}

impl Switchboard {
    /// Edge: staff connection `conn` reaches `home` through sub-connection `sub`.
    pub fn sub_opened(&mut self, conn: ConnId, home: &str, sub: ConnId) {
        if self.conns.contains_key(&conn) {
            self.abroad
                .entry(conn)
                .or_default()
                .subs
                .insert(home.to_owned(), sub);
        }
    }

    /// Edge: a frame of staff connection `conn` is about to be carried to `home`. It is
    /// charged against the connection's budgets here (see the module documentation),
    /// and an `Accept` or `Join` must find room under the cap counted across every node,
    /// where it then counts as pending. `Err`: refuse it (and carry nothing).
    pub fn admit_abroad(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        frame: &ClientFrame,
        home: &str,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        self.advance(now);
        let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
        let len = bytes.len() as f64;
        if !c.bytes.try_take(len, now) || !self.gate.take_bytes(c.addr, len, now) {
            return Err(ErrorCode::RateLimited);
        }
        let within = match frame {
            ClientFrame::Ack { .. } => true,
            ClientFrame::Ping => c.light.try_take(now),
            _ => c.bucket.try_take(now),
        };
        if !within {
            return Err(ErrorCode::RateLimited);
        }
        let (ClientFrame::Accept { session } | ClientFrame::Join { session }) = frame else {
            return Ok(());
        };
        self.prune_pending(conn, now);
        if self.held_everywhere(conn, now) >= self.config.limits.max_sessions_per_staff {
            return Err(ErrorCode::NotAllowed);
        }
        self.abroad
            .entry(conn)
            .or_default()
            .pending
            .push((*session, home.to_owned(), now));
        Ok(())
    }

    /// The sessions staff connection `conn` holds on every node, as its own node knows
    /// them: here, reported by the homes, and pending. For a connection carried here
    /// from another node, only those held here (its own node counts the rest).
    pub(super) fn held_everywhere(&self, conn: ConnId, now: Instant) -> usize {
        let here = self.sessions.held(conn);
        let Some(abroad) = self.abroad.get(&conn) else {
            return here;
        };
        let mut elsewhere: HashSet<SessionId> = HashSet::new();
        for (home, sub) in &abroad.subs {
            if let Some(v) = self.lobby.visitor(home, *sub) {
                elsewhere.extend(v.held.iter().copied());
            }
        }
        for (session, home, at) in &abroad.pending {
            if still_pending(&self.lobby, abroad, session, home, *at, now) {
                elsewhere.insert(*session);
            }
        }
        here.saturating_add(elsewhere.len())
    }

    /// Drop `conn`'s pending entries that a home has answered, or that waited too long.
    fn prune_pending(&mut self, conn: ConnId, now: Instant) {
        let Some(abroad) = self.abroad.get_mut(&conn) else {
            return;
        };
        let mut pending = std::mem::take(&mut abroad.pending);
        pending.retain(|(session, home, at)| {
            still_pending(&self.lobby, abroad, session, home, *at, now)
        });
        abroad.pending = pending;
    }

    /// Edge: home node `node` is lost; what it reported and what was pending there no
    /// longer counts (the member is told those sessions ended).
    pub(super) fn forget_abroad(&mut self, node: &str) {
        for abroad in self.abroad.values_mut() {
            abroad.subs.remove(node);
            abroad.pending.retain(|(_, home, _)| home != node);
        }
    }

    /// Home: a vouched staff connection sent an `Accept` or `Join` for `session` (taken
    /// or refused, its result is in what it holds once handled): reported for a while,
    /// so its own node can stop counting it as pending.
    pub(super) fn note_answered(&mut self, conn: ConnId, frame: &ClientFrame, now: Instant) {
        let (ClientFrame::Accept { session } | ClientFrame::Join { session }) = frame else {
            return;
        };
        let Some(origin) = self.visitors.get_mut(&conn) else {
            return;
        };
        origin.answered.push_back((*session, now));
        while origin.answered.len() > MAX_VISITOR_SESSIONS {
            origin.answered.pop_front();
        }
        self.lobby.snapshot_soon();
    }

    /// Home: what the other nodes need to count their staff's sessions here, for the
    /// lobby snapshot.
    pub(super) fn visitor_report(&mut self, now: Instant) -> Vec<SnapVisitor> {
        let mut report = Vec::new();
        for (conn, origin) in &mut self.visitors {
            while origin
                .answered
                .front()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= ANSWERED_FOR)
            {
                origin.answered.pop_front();
            }
            let held: Vec<SessionId> = self.sessions.held_sessions(*conn);
            if held.is_empty() && origin.answered.is_empty() {
                continue;
            }
            report.push(SnapVisitor {
                edge: origin.edge.clone(),
                conn: origin.conn,
                held,
                answered: origin.answered.iter().map(|(s, _)| *s).collect(),
            });
        }
        report
    }
}
