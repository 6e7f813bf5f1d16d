//! Sessions: the per-session half of the switchboard. [`Sessions`] owns every session's
//! membership and resume tokens, the delivery windows, what is sealed in the store for the
//! participants who are away (and its quotas), and the memory of recently ended sessions
//! that may still file an observatory record.
//!
//! It knows a connection only by its number: which participants it carries (the
//! membership index, so a frame's session is checked without a scan) and where to send
//! their events. Who the connection is (its login, its budgets) stays with the
//! switchboard, which checks that before it calls in here. A participant who leaves the
//! session or goes away leaves its call too, so the methods that may remove one are handed
//! the [`Effects`]: the [`Calls`], and the [`Outbox`] for everything they decide to send.
//! `Calls` never calls back in here.
//!
//! Membership (joining, leaving, ending) is in `membership`; delivery (windows, storage,
//! resume) in `delivery`.

mod delivery;
mod membership;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use approdo_core::identity::{RevocationList, Role};
use approdo_core::ids::{DeskId, Language, ParticipantId, ResumeToken, SessionId};
use approdo_core::limits::MAX_PARTICIPANTS;
use approdo_core::wire::{ErrorCode, Outlook, RelayFrame};
use axum::body::Bytes;
use sha2::{Digest, Sha256};

use super::ConnId;
use super::budget::EndedKey;
use super::calls::Calls;
use super::lobby::{OpenInvitation, Status, Waiting};
use super::output::Outbox;
use crate::config::Config;
use crate::store::EphemeralStore;

/// How long after a session ends its operators may still file the observatory record (the
/// person often leaves first, by quick exit). Only the session id and the operators'
/// certificate serials are kept meanwhile, in memory.
const CLOSE_CASE_WINDOW: Duration = Duration::from_secs(3600);

struct Participant {
    role: Option<Role>,
    serial: Option<u64>,
    token_hash: [u8; 32],
    conn: Option<ConnId>,
    away_since: Option<Instant>,
    next_seq: u64,
    /// Events for the live connection not yet acknowledged, in order: those up to
    /// `sent_up_to` are on the wire, the rest wait for the window
    /// ([`super::SEND_WINDOW`]).
    unacked: VecDeque<(u64, Bytes)>,
    /// The last event written to the live connection (0: none yet on this connection).
    sent_up_to: u64,
    /// Events sealed in the store while away.
    stored: usize,
    /// Their bytes (before sealing).
    stored_bytes: u64,
    accepted_up_to: u64,
}

impl Participant {
    fn new(role: Option<Role>, serial: Option<u64>, token_hash: [u8; 32], conn: ConnId) -> Self {
        Participant {
            role,
            serial,
            token_hash,
            conn: Some(conn),
            away_since: None,
            next_seq: 1,
            unacked: VecDeque::new(),
            sent_up_to: 0,
            stored: 0,
            stored_bytes: 0,
            accepted_up_to: 0,
        }
    }
}

struct Session {
    id: SessionId,
    language: Language,
    desk: DeskId,
    waiting_since: Option<Instant>,
    last_activity: Instant,
    participants: BTreeMap<ParticipantId, Participant>,
    next_pid: u32,
    invitations: Vec<(Language, Instant)>,
    /// The last queue status sent to the person (position, wait, outlook; the fallback
    /// numbers follow the outlook): a new one goes out only when it differs, so a queue of
    /// n people costs O(n), not O(n²).
    last_status: Option<(u32, u32, Outlook)>,
}

/// What a change to a session reaches beyond the session, handed down by the switchboard:
/// the time it happens, the calls (a participant who leaves the session or goes away
/// leaves its call), and the outbox for what is to be sent.
pub(super) struct Effects<'a> {
    /// Now.
    pub(super) now: Instant,
    /// Every session's call.
    pub(super) calls: &'a mut Calls,
    /// Where frames, closes and SFU commands go, in order.
    pub(super) out: &'a mut Outbox,
}

/// Who holds a resume token's seat, for the switchboard to decide whether the connection
/// presenting it may take the seat.
pub(super) struct Seat {
    /// The session.
    pub(super) session: SessionId,
    /// The participant.
    pub(super) pid: ParticipantId,
    /// The staff member's certificate serial; none for the person.
    pub(super) serial: Option<u64>,
    /// The connection that holds the seat now, if any.
    pub(super) conn: Option<ConnId>,
}

/// What the metrics need of the sessions, in counts, from one pass.
#[derive(Default)]
pub(super) struct Figures<'a> {
    /// Sessions waiting for an operator, by desk and language.
    pub(super) waiting_at: HashMap<(&'a DeskId, &'a Language), u64>,
    /// Sessions an operator has accepted and that are not waiting again.
    pub(super) running: u64,
    /// Participants whose connection dropped and who may still resume.
    pub(super) away: u64,
    /// Events sealed in the store for away participants.
    pub(super) stored_events: u64,
}

/// See the module documentation.
pub(super) struct Sessions {
    /// Limits and quotas.
    config: Arc<Config>,
    /// Sealed events of away participants and the sessions' routing metadata.
    store: EphemeralStore,
    sessions: HashMap<SessionId, Session>,
    /// Who each live resume token seats, by its hash.
    tokens: HashMap<[u8; 32], (SessionId, ParticipantId)>,
    /// The participants each connection carries, so a frame's session is checked and a
    /// dropped connection's participants found without a scan.
    memberships: HashMap<ConnId, BTreeSet<(SessionId, ParticipantId)>>,
    /// Bytes of events kept in the store for away participants, all sessions.
    stored_bytes: u64,
    /// Senders owed an `Accepted`: sent once per batch of frames, not once per `Send`.
    accepted_owed: Vec<(ConnId, SessionId, ParticipantId)>,
    /// Sessions ended without a record: who may still file one, and since when. Keyed by
    /// a keyed hash of the session id (see [`EndedKey`]), never the id itself.
    recently_ended: HashMap<[u8; 32], (Vec<u64>, Instant)>,
    ended_key: EndedKey,
    /// Connections cut off as slow consumers, for the switchboard to forget.
    cut_off: Vec<ConnId>,
    /// Something the queue views show changed (a session opened, waits again, ended...).
    queue_changed: bool,
}

fn token_hash(t: &ResumeToken) -> [u8; 32] {
    Sha256::digest(t.0).into()
}

impl Sessions {
    /// No sessions, over a freshly wiped store.
    pub(super) fn new(config: Arc<Config>, store: EphemeralStore) -> Self {
        Sessions {
            config,
            store,
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            memberships: HashMap::new(),
            stored_bytes: 0,
            accepted_owed: Vec::new(),
            recently_ended: HashMap::new(),
            ended_key: EndedKey::random(),
            cut_off: Vec::new(),
            queue_changed: false,
        }
    }

    /// The store, for tests that inspect what it holds.
    pub(super) fn store(&self) -> &EphemeralStore {
        &self.store
    }

    /// Sessions waiting or running.
    pub(super) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions whose key the store holds.
    pub(super) fn keys_held(&self) -> usize {
        self.sessions
            .keys()
            .filter(|s| self.store.has_key(s))
            .count()
    }

    /// Participants whose connection dropped and who may still resume.
    pub(super) fn away(&self) -> usize {
        self.sessions
            .values()
            .flat_map(|s| s.participants.values())
            .filter(|p| p.conn.is_none())
            .count()
    }

    /// Sessions waiting for an operator.
    pub(super) fn waiting(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| s.waiting_since.is_some())
            .count()
    }

    /// Bytes of events kept in the store for away participants.
    pub(super) fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// The counts the metrics show, in one pass over the sessions and none over the store.
    pub(super) fn figures(&self) -> Figures<'_> {
        let mut f = Figures::default();
        for s in self.sessions.values() {
            if s.waiting_since.is_some() {
                *f.waiting_at.entry((&s.desk, &s.language)).or_default() += 1;
            } else {
                f.running += 1;
            }
            for p in s.participants.values() {
                f.away += u64::from(p.conn.is_none());
                let stored = u64::try_from(p.stored).unwrap_or(u64::MAX);
                f.stored_events = f.stored_events.saturating_add(stored);
            }
        }
        f
    }

    /// The participant `conn` is in `session`, with `role` when one is asked:
    /// `UnknownSession` when the connection is not in it, `NotAllowed` for another role.
    pub(super) fn member(
        &self,
        conn: ConnId,
        session: &SessionId,
        role: Option<Role>,
    ) -> Result<ParticipantId, ErrorCode> {
        let (_, pid) = self
            .memberships
            .get(&conn)
            .and_then(|m| m.iter().find(|(s, _)| s == session))
            .ok_or(ErrorCode::UnknownSession)?;
        if let Some(role) = role {
            let actual = self
                .sessions
                .get(session)
                .and_then(|s| s.participants.get(pid))
                .and_then(|p| p.role);
            if actual != Some(role) {
                return Err(ErrorCode::NotAllowed);
            }
        }
        Ok(*pid)
    }

    /// Whether a live resume token has this SHA-256 (another node asks before carrying a
    /// connection here).
    pub(super) fn holds_token_hash(&self, hash: &[u8; 32]) -> bool {
        self.tokens.contains_key(hash)
    }

    /// How many participants `conn` carries.
    pub(super) fn held(&self, conn: ConnId) -> usize {
        self.memberships.get(&conn).map_or(0, BTreeSet::len)
    }

    /// The sessions `conn` carries a participant of.
    pub(super) fn held_sessions(&self, conn: ConnId) -> Vec<SessionId> {
        let mut sessions: Vec<SessionId> = self
            .memberships
            .get(&conn)
            .map(|m| m.iter().map(|(s, _)| *s).collect())
            .unwrap_or_default();
        sessions.dedup();
        sessions
    }

    /// Record that `conn` carries the participant.
    fn link(&mut self, conn: ConnId, session: SessionId, pid: ParticipantId) {
        self.memberships
            .entry(conn)
            .or_default()
            .insert((session, pid));
    }

    /// Record that `conn` no longer carries the participant.
    fn unlink(&mut self, conn: ConnId, session: SessionId, pid: ParticipantId) {
        if let Some(m) = self.memberships.get_mut(&conn) {
            m.remove(&(session, pid));
            if m.is_empty() {
                self.memberships.remove(&conn);
            }
        }
    }

    /// Forget which participants `conn` carries, and say which: the caller makes them
    /// away (`disconnected`) or removes them (a revoked staff member's connection).
    pub(super) fn forget_conn(&mut self, conn: ConnId) -> BTreeSet<(SessionId, ParticipantId)> {
        self.memberships.remove(&conn).unwrap_or_default()
    }

    /// Connections cut off as slow consumers since the last call: the switchboard forgets
    /// them (their participants are away already).
    pub(super) fn take_cut_off(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.cut_off)
    }

    /// Whether something the queue views show changed since the last call.
    pub(super) fn take_queue_changed(&mut self) -> bool {
        std::mem::take(&mut self.queue_changed)
    }

    /// Open a session for the person on `conn`, waiting at `desk`: its id, the person's
    /// participant number and resume token.
    pub(super) fn open(
        &mut self,
        conn: ConnId,
        language: Language,
        desk: DeskId,
        now: Instant,
    ) -> (SessionId, ParticipantId, ResumeToken) {
        let id = SessionId::random();
        let me = ParticipantId(1);
        let token = ResumeToken::random();
        self.store.begin(id);
        let mut session = Session {
            id,
            language,
            desk,
            waiting_since: Some(now),
            last_activity: now,
            participants: BTreeMap::new(),
            next_pid: 2,
            invitations: Vec::new(),
            last_status: None,
        };
        session
            .participants
            .insert(me, Participant::new(None, None, token_hash(&token), conn));
        self.tokens.insert(token_hash(&token), (id, me));
        self.sessions.insert(id, session);
        self.save_meta(&id);
        self.link(conn, id, me);
        self.queue_changed = true;
        (id, me, token)
    }

    /// The session, to change it; `UnknownSession` when it is not (or no longer) here.
    fn session_mut(&mut self, session: &SessionId) -> Result<&mut Session, ErrorCode> {
        self.sessions
            .get_mut(session)
            .ok_or(ErrorCode::UnknownSession)
    }

    /// Room for one more participant (`SessionFull` otherwise), checked before an
    /// invitation, a transfer, an acceptance or a join changes anything: a refused
    /// newcomer must not use up the invitation or take the session out of the queue.
    pub(super) fn require_space(&self, session: &SessionId) -> Result<(), ErrorCode> {
        let s = self
            .sessions
            .get(session)
            .ok_or(ErrorCode::UnknownSession)?;
        if s.participants.len() >= MAX_PARTICIPANTS {
            return Err(ErrorCode::SessionFull);
        }
        Ok(())
    }

    /// The desk whose queue the session is in (or was, once accepted).
    pub(super) fn desk(&self, session: &SessionId) -> Option<&DeskId> {
        self.sessions.get(session).map(|s| &s.desk)
    }

    /// Since when the session waits for an operator; none once accepted.
    pub(super) fn waiting_since(&self, session: &SessionId) -> Option<Instant> {
        self.sessions.get(session).and_then(|s| s.waiting_since)
    }

    /// Whether the staff member with this certificate serial is in the session.
    pub(super) fn has_serial(&self, session: &SessionId, serial: u64) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.participants.values().any(|p| p.serial == Some(serial)))
    }

    /// Whether an operator is in the session (calls take UDP ports: none for sessions
    /// still waiting in the queue).
    pub(super) fn operator_present(&self, session: &SessionId) -> bool {
        self.sessions.get(session).is_some_and(|s| {
            s.participants
                .values()
                .any(|p| p.role == Some(Role::Operator))
        })
    }

    /// Whether the participant is (still) in the session.
    pub(super) fn contains(&self, session: &SessionId, pid: ParticipantId) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.participants.contains_key(&pid))
    }

    /// Something happened in the session: its idle timer starts again.
    pub(super) fn touch(&mut self, session: &SessionId, now: Instant) {
        if let Some(s) = self.sessions.get_mut(session) {
            s.last_activity = now;
        }
    }

    /// An operator took the session from the queue.
    pub(super) fn stop_waiting(&mut self, session: &SessionId) {
        if let Some(s) = self.sessions.get_mut(session) {
            s.waiting_since = None;
        }
    }

    /// An operator asks for an interpreter of `language` (once per language).
    pub(super) fn invite(
        &mut self,
        session: &SessionId,
        language: Language,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let s = self.session_mut(session)?;
        if !s.invitations.iter().any(|(l, _)| *l == language) {
            s.invitations.push((language, now));
        }
        self.queue_changed = true;
        Ok(())
    }

    /// An interpreter speaking one of `languages` answers the session's oldest such
    /// invitation, which closes; `NotAllowed` when none is open for them.
    pub(super) fn take_invitation(
        &mut self,
        session: &SessionId,
        languages: &[Language],
    ) -> Result<(), ErrorCode> {
        let s = self.session_mut(session)?;
        let idx = s
            .invitations
            .iter()
            .position(|(l, _)| languages.contains(l))
            .ok_or(ErrorCode::NotAllowed)?;
        s.invitations.remove(idx);
        Ok(())
    }

    /// The session goes to `desk`'s queue.
    pub(super) fn transfer(
        &mut self,
        session: &SessionId,
        desk: DeskId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let s = self.session_mut(session)?;
        s.desk = desk;
        s.waiting_since = Some(now);
        s.last_activity = now;
        self.save_meta(session);
        self.queue_changed = true;
        Ok(())
    }

    /// The read-only views the lobby works from: the waiting sessions and the open
    /// invitations.
    pub(super) fn queue_views(&self) -> (Vec<Waiting<'_>>, Vec<OpenInvitation<'_>>) {
        let waiting = self
            .sessions
            .values()
            .filter_map(|s| {
                Some(Waiting {
                    session: s.id,
                    language: &s.language,
                    desk: &s.desk,
                    since: s.waiting_since?,
                    person: s.participants.get(&ParticipantId(1)).and_then(|p| p.conn),
                    away: s
                        .participants
                        .get(&ParticipantId(1))
                        .is_none_or(|p| p.conn.is_none()),
                    last_status: s.last_status,
                })
            })
            .collect();
        let invitations = self
            .sessions
            .values()
            .flat_map(|s| {
                s.invitations
                    .iter()
                    .map(move |(language, at)| OpenInvitation {
                        at: *at,
                        session: s.id,
                        language,
                        desk: &s.desk,
                    })
            })
            .collect();
        (waiting, invitations)
    }

    /// Keep the queue statuses the lobby sent with their sessions.
    pub(super) fn statuses_sent(&mut self, statuses: Vec<(SessionId, Status)>) {
        for (id, status) in statuses {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_status = Some(status);
            }
        }
    }

    /// Send the `Accepted` owed to senders since the last call, one per sender and
    /// session.
    pub(super) fn send_accepted(&mut self, out: &mut Outbox) {
        for (conn, session, pid) in std::mem::take(&mut self.accepted_owed) {
            let up_to = self
                .sessions
                .get(&session)
                .and_then(|s| s.participants.get(&pid))
                .map(|p| p.accepted_up_to);
            if let Some(up_to) = up_to {
                out.frame(conn, &RelayFrame::Accepted { session, up_to });
            }
        }
    }

    /// Whether an operator with this certificate serial was in the session, which ended
    /// within the last hour without a record.
    pub(super) fn ended_with_operator(&self, session: &SessionId, serial: u64) -> bool {
        self.recently_ended
            .get(&self.ended_key.of(session))
            .is_some_and(|(ops, _)| ops.contains(&serial))
    }

    /// The session's record was filed: it may not be filed again.
    pub(super) fn forget_ended(&mut self, session: &SessionId) {
        self.recently_ended.remove(&self.ended_key.of(session));
    }

    /// Participants whose certificate the list revokes, away or not.
    pub(super) fn revoked(&self, list: &RevocationList) -> Vec<(SessionId, ParticipantId)> {
        self.sessions
            .values()
            .flat_map(|s| {
                s.participants
                    .iter()
                    .filter(|(_, p)| {
                        p.serial
                            .is_some_and(|serial| list.serials.binary_search(&serial).is_ok())
                    })
                    .map(move |(pid, _)| (s.id, *pid))
            })
            .collect()
    }

    /// Time passes: end idle sessions, drop participants away past the grace period, and
    /// forget ended sessions past the window for their record.
    pub(super) fn tick(&mut self, fx: &mut Effects<'_>) {
        let grace = self.config.limits.resume_grace();
        let idle = Duration::from_secs(self.config.limits.session_idle_secs);
        let mut gone = Vec::new();
        let mut idle_sessions = Vec::new();
        for s in self.sessions.values() {
            if fx.now.saturating_duration_since(s.last_activity) >= idle {
                idle_sessions.push(s.id);
                continue;
            }
            for (pid, p) in &s.participants {
                if p.away_since
                    .is_some_and(|t| fx.now.saturating_duration_since(t) >= grace)
                {
                    gone.push((s.id, *pid));
                }
            }
        }
        for id in idle_sessions {
            self.end_session(id, "idle", fx);
        }
        for (session, pid) in gone {
            self.drop_participant(session, pid, fx);
        }
        self.recently_ended
            .retain(|_, (_, at)| fx.now.saturating_duration_since(*at) < CLOSE_CASE_WINDOW);
    }
}
