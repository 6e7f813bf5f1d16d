//! The switchboard: queues, staff, sessions and the ordered, resumable delivery of
//! ciphertext between participants.
//!
//! It is plain logic with no sockets: the server shell calls [`Switchboard::handle`],
//! [`Switchboard::disconnected`] and [`Switchboard::tick`] with the current time and then
//! drains [`Switchboard::take_outputs`]. Tests drive it the same way.
//!
//! What it holds per session is routing state and, for participants who are away, events
//! sealed in the [`EphemeralStore`]. It never sees a plaintext: payloads are Noise
//! messages between the participants.
//!
//! It is split by concern. [`Switchboard`] is the entry point: it owns the connections and
//! the sessions (membership, delivery, calls) and routes every frame. Queue and staff
//! presence, the global part, is a `lobby::Lobby` it owns: the lobby sees sessions only
//! through the read-only view the switchboard hands it, and returns the frames to send.
//! Admission budgets shared by every connection (per-address limits and bytes, the load
//! that sets the proof of work) are a `budget::Gate`; each connection's own budgets stay
//! with it.

mod admission;
mod budget;
mod calls;
mod delivery;
mod gauges;
mod index;
mod lobby;
mod queue;
mod session;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::{
    Certificate, RevocationList, Role, SignedRevocationList, verify_challenge_answer,
};
use approdo_core::ids::{DeskId, Language, ParticipantId, ResumeToken, SessionId, fill_random};
use approdo_core::limits::{
    CHALLENGE_LEN, MAX_ENVELOPES_PER_SEND, MAX_PARTICIPANTS, MAX_PAYLOAD_LEN,
};
use approdo_core::wire::{self, ClientFrame, ErrorCode, Outlook, RelayFrame, SessionEvent};
use axum::body::Bytes;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::RelayError;
use crate::observatory::Observatory;
use crate::ratelimit::{AddressTag, TokenBucket};
use crate::store::EphemeralStore;

pub use gauges::{Gauges, Refusals, StaffOnline, TurnAnswers};

/// A connection's number, chosen by the shell. Not derived from anything about the client.
pub type ConnId = u64;

/// Work for the shell. `Debug` prints sizes, never frame bytes.
#[derive(PartialEq, Eq)]
pub enum Output {
    /// Send these frame bytes on the connection (shared, not copied, with the resend buffer).
    Frame(ConnId, Bytes),
    /// Close the connection (after the frames queued before this).
    Close(ConnId),
    /// Work for the SFU.
    Call(CallCommand),
}

/// What the SFU must do. `call` numbers each entry into a call, so a leave that overtakes
/// a slow join (or a join answered after its participant left) is recognised. `Debug`
/// never prints the offer: it names the browser's candidate addresses.
#[derive(PartialEq, Eq)]
pub enum CallCommand {
    /// Build the participant's peer connection from its offer; answer on `conn`.
    Join {
        /// Where the answer goes.
        conn: ConnId,
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// This entry's number.
        call: u64,
        /// The SDP offer.
        offer: String,
    },
    /// Forward (or stop forwarding) the others' video to the participant.
    ReceiveVideo {
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// The entry into the call.
        call: u64,
        /// Whether to forward video.
        receive: bool,
    },
    /// Close the participant's peer connection.
    Leave {
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// The entry being ended.
        call: u64,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Frame(conn, bytes) => f
                .debug_struct("Frame")
                .field("conn", conn)
                .field("len", &bytes.len())
                .finish_non_exhaustive(),
            Output::Close(conn) => f.debug_tuple("Close").field(conn).finish(),
            Output::Call(c) => f.debug_tuple("Call").field(c).finish(),
        }
    }
}

impl std::fmt::Debug for CallCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallCommand::Join {
                conn,
                participant,
                call,
                ..
            } => f
                .debug_struct("Join")
                .field("conn", conn)
                .field("participant", participant)
                .field("call", call)
                .finish_non_exhaustive(),
            CallCommand::ReceiveVideo {
                participant,
                call,
                receive,
                ..
            } => f
                .debug_struct("ReceiveVideo")
                .field("participant", participant)
                .field("call", call)
                .field("receive", receive)
                .finish_non_exhaustive(),
            CallCommand::Leave {
                participant, call, ..
            } => f
                .debug_struct("Leave")
                .field("participant", participant)
                .field("call", call)
                .finish_non_exhaustive(),
        }
    }
}

/// How long after a session ends its operators may still file the observatory record (the
/// person often leaves first, by quick exit). Only the session id and the operators'
/// certificate serials are kept meanwhile, in memory.
const CLOSE_CASE_WINDOW: Duration = Duration::from_secs(3600);

/// Events on the wire to one participant, unacknowledged, at most; the rest wait in order
/// and go out as acknowledgements come back. A burst (a person's whole frame budget, or a
/// long replay at resume) then never fills a connection's outbox, which would cut off a
/// reader that is only slower than the writer. A client acknowledges what it has processed
/// after every read, so the window only paces, never stalls (docs/protocol.md).
pub const SEND_WINDOW: usize = 256;

/// Frames a connection's outbox holds: the window of every session a staff member may be
/// in, and room for the frames outside sessions (queue views, acceptances, errors).
pub fn outbox_frames(max_sessions_per_staff: usize) -> usize {
    max_sessions_per_staff
        .saturating_mul(SEND_WINDOW)
        .saturating_add(1024)
}

/// How often `tick` logs one line of counts at INFO.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

enum ConnState {
    Fresh,
    Person,
    Challenged {
        cert: Option<Box<Certificate>>,
        nonce: [u8; CHALLENGE_LEN],
    },
    Staff {
        cert: Box<Certificate>,
    },
}

struct Conn {
    addr: AddressTag,
    state: ConnState,
    /// Frames other than `Ping` and `Ack`.
    bucket: TokenBucket,
    /// `Ping`s and `Ack`s that release nothing.
    light: TokenBucket,
    /// Bytes of every frame.
    bytes: budget::ByteBucket,
    memberships: BTreeSet<(SessionId, ParticipantId)>,
    /// Proof of work asked of, or presented by, this connection.
    pow: budget::PowState,
}

struct Participant {
    role: Option<Role>,
    serial: Option<u64>,
    token_hash: [u8; 32],
    conn: Option<ConnId>,
    away_since: Option<Instant>,
    next_seq: u64,
    /// Events for the live connection not yet acknowledged, in order: those up to
    /// `sent_up_to` are on the wire, the rest wait for the window ([`SEND_WINDOW`]).
    unacked: VecDeque<(u64, Bytes)>,
    /// The last event written to the live connection (0: none yet on this connection).
    sent_up_to: u64,
    /// Events sealed in the store while away.
    stored: usize,
    /// Their bytes (before sealing).
    stored_bytes: u64,
    accepted_up_to: u64,
    /// In the call: the number of this entry into it.
    call: Option<u64>,
    /// TURN credentials minted for this entry into the call.
    turn_minted: u8,
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

/// Figures for tests and health checks: counts only, never content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Open WebSocket connections.
    pub connections: usize,
    /// Sessions waiting or running.
    pub sessions: usize,
    /// Records in the ephemeral store.
    pub stored_records: usize,
    /// Session keys held in memory.
    pub session_keys: usize,
    /// Participants whose connection dropped and who may still resume.
    pub away_participants: usize,
}

/// The switchboard. See the module documentation.
pub struct Switchboard {
    config: Arc<Config>,
    revoked: RevocationList,
    /// The signed form of `revoked`, handed to every client.
    revocations: SignedRevocationList,
    store: EphemeralStore,
    observatory: Observatory,
    conns: HashMap<ConnId, Conn>,
    sessions: HashMap<SessionId, Session>,
    tokens: HashMap<[u8; 32], (SessionId, ParticipantId)>,
    /// Queue and staff presence (global): who is online, average waits, the views.
    lobby: lobby::Lobby,
    /// Sessions ended without a record: who may still file one, and since when. Keyed by
    /// a keyed hash of the session id (see [`budget::EndedKey`]), never the id itself.
    recently_ended: HashMap<[u8; 32], (Vec<u64>, Instant)>,
    ended_key: budget::EndedKey,
    /// Admission and budgets shared by every connection (global): per-address limits and
    /// bytes, the proof-of-work load.
    gate: budget::Gate,
    /// Bytes of events kept in the store for away participants, all sessions.
    stored_bytes: u64,
    /// The latest time the switchboard was told (simulated in tests).
    clock: Instant,
    /// When the last summary line was logged.
    last_summary: Instant,
    /// Senders owed an `Accepted`: sent once per batch of frames, not once per `Send`.
    accepted_owed: Vec<(ConnId, SessionId, ParticipantId)>,
    /// Numbers entries into calls.
    next_call: u64,
    /// Refusals counted for the metrics endpoint.
    refusals: Refusals,
    /// TURN answers counted for the metrics endpoint.
    turn_answers: TurnAnswers,
    outputs: Vec<Output>,
}

impl std::fmt::Debug for Switchboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchboard")
            .field("census", &self.census())
            .finish_non_exhaustive()
    }
}

fn token_hash(t: &ResumeToken) -> [u8; 32] {
    Sha256::digest(t.0).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether the relay closes the connection after this code.
pub fn is_fatal(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::NotAllowed
            | ErrorCode::UnknownSession
            | ErrorCode::SessionFull
            | ErrorCode::ResumeFailed
            | ErrorCode::QuotaExceeded
    )
}

impl Switchboard {
    /// A switchboard over a freshly wiped store.
    pub fn new(
        config: Arc<Config>,
        store: EphemeralStore,
        observatory: Observatory,
        now: Instant,
    ) -> Result<Self, RelayError> {
        let revoked = config.org.open_revocations(&config.revocations)?;
        let revocations = config.revocations.clone();
        let lobby = lobby::Lobby::new(config.clone(), now);
        let gate = budget::Gate::new(config.clone(), now);
        Ok(Switchboard {
            config,
            revoked,
            revocations,
            store,
            observatory,
            conns: HashMap::new(),
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            lobby,
            accepted_owed: Vec::new(),
            next_call: 1,
            recently_ended: HashMap::new(),
            ended_key: budget::EndedKey::random(),
            gate,
            stored_bytes: 0,
            clock: now,
            last_summary: now,
            refusals: Refusals::default(),
            turn_answers: TurnAnswers::default(),
            outputs: Vec::new(),
        })
    }

    /// Everything the shell must do now.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        for (conn, session, pid) in std::mem::take(&mut self.accepted_owed) {
            let up_to = self
                .sessions
                .get(&session)
                .and_then(|s| s.participants.get(&pid))
                .map(|p| p.accepted_up_to);
            if let Some(up_to) = up_to {
                self.send(conn, &RelayFrame::Accepted { session, up_to });
            }
        }
        if self.lobby.is_dirty() {
            self.push_queues();
        }
        std::mem::take(&mut self.outputs)
    }

    /// Frames a connection's outbox should hold ([`outbox_frames`] for this relay's
    /// sessions-per-staff limit).
    pub fn outbox_frames(&self) -> usize {
        outbox_frames(self.config.limits.max_sessions_per_staff)
    }

    /// Whether a participant's resume token with this SHA-256 is live here: another node
    /// asks before carrying a connection here (`bus::forward`).
    pub fn holds_resume_token_hash(&self, hash: &[u8; 32]) -> bool {
        self.tokens.contains_key(hash)
    }

    /// Counts for tests and health checks.
    pub fn census(&self) -> Census {
        Census {
            connections: self.conns.len(),
            sessions: self.sessions.len(),
            stored_records: self.store.record_count(),
            session_keys: self
                .sessions
                .keys()
                .filter(|s| self.store.has_key(s))
                .count(),
            away_participants: self
                .sessions
                .values()
                .flat_map(|s| s.participants.values())
                .filter(|p| p.conn.is_none())
                .count(),
        }
    }

    /// The observatory, for tests and health checks.
    pub fn observatory(&self) -> &Observatory {
        &self.observatory
    }

    /// The observatory's directory.
    pub fn observatory_dir(&self) -> &std::path::Path {
        self.observatory.dir()
    }

    /// The store, for tests that inspect what it holds.
    pub fn store(&self) -> &EphemeralStore {
        &self.store
    }

    /// Refuse with `code`; fatal codes also close the connection.
    pub fn refuse(&mut self, conn: ConnId, code: ErrorCode) {
        if code == ErrorCode::RateLimited {
            self.refusals.budget = self.refusals.budget.saturating_add(1);
        }
        self.send(conn, &RelayFrame::Error { code });
        if is_fatal(code) {
            tracing::debug!(conn, ?code, "connection refused");
            self.outputs.push(Output::Close(conn));
        }
    }

    /// Queue a frame for a connection. Every frame the relay builds is bounded by the limits
    /// it enforces on input; one that still does not encode is a bug, logged (without its
    /// content) and dropped, never a panic in the ticker, a reader or the SIGHUP task.
    fn send(&mut self, conn: ConnId, frame: &RelayFrame) {
        match wire::encode(frame) {
            Ok(bytes) => self.outputs.push(Output::Frame(conn, bytes.into())),
            Err(_) => tracing::error!("a relay frame exceeded the frame limit and was dropped"),
        }
    }

    /// Move the switchboard's clock forward (never back).
    fn advance(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
    }

    /// One frame arrived on a connection. Bad input gets an error code (and, when fatal, a
    /// closed connection); it never affects another connection or session.
    pub fn handle(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        self.advance(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        // Bytes first: a few huge frames cost as much as many small ones.
        let len = bytes.len() as f64;
        let addr = c.addr;
        if !c.bytes.try_take(len, now) || !self.gate.take_bytes(addr, len, now) {
            return self.refuse(conn, ErrorCode::RateLimited);
        }
        let frame: ClientFrame = match wire::decode(bytes) {
            Ok(f) => f,
            Err(approdo_core::Error::FrameTooLarge) => {
                return self.refuse(conn, ErrorCode::FrameTooLarge);
            }
            Err(_) => {
                // Garbage still costs a frame.
                let _ = self.conns.get_mut(&conn).map(|c| c.bucket.try_take(now));
                return self.refuse(conn, ErrorCode::Malformed);
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        // Acks are charged in `ack` (only those that release nothing), pings against the
        // light budget: what others send a staff member must not use up its frame budget.
        let within = match frame {
            ClientFrame::Ack { .. } => true,
            ClientFrame::Ping => c.light.try_take(now),
            _ => c.bucket.try_take(now),
        };
        if !within {
            return self.refuse(conn, ErrorCode::RateLimited);
        }
        if let Err(code) = self.dispatch(conn, frame, now) {
            self.refuse(conn, code);
        }
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        frame: ClientFrame,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        match frame {
            ClientFrame::OpenSession {
                version,
                language,
                region,
            } => {
                check_version(version)?;
                self.open_session(conn, language, region, now)
            }
            ClientFrame::Resume {
                version,
                token,
                received_up_to,
            } => {
                check_version(version)?;
                self.resume(conn, &token, received_up_to, now, false)
            }
            ClientFrame::StaffHello {
                version,
                certificate,
            } => {
                check_version(version)?;
                self.staff_hello(conn, &certificate)
            }
            ClientFrame::StaffProof { signature } => self.staff_proof(conn, &signature),
            ClientFrame::Accept { session } => self.accept(conn, session, now),
            ClientFrame::Invite { session, language } => self.invite(conn, session, language, now),
            ClientFrame::Join { session } => self.join(conn, session, now),
            ClientFrame::Leave { session } => self.leave(conn, session, now),
            ClientFrame::End { session } => self.end(conn, session, now),
            ClientFrame::Send {
                session,
                seq,
                envelopes,
            } => self.send_envelopes(conn, session, seq, envelopes, now),
            ClientFrame::Ack { session, up_to } => self.ack(conn, session, up_to, now),
            ClientFrame::Ping => {
                self.send(conn, &RelayFrame::Pong);
                Ok(())
            }
            ClientFrame::Transfer { session, desk } => self.transfer(conn, session, desk, now),
            ClientFrame::CloseCase { session, record } => {
                self.close_case(conn, session, &record, now)
            }
            ClientFrame::CallJoin { session, offer } => self.call_join(conn, session, offer, now),
            ClientFrame::CallVideo { session, receive } => self.call_video(conn, session, receive),
            ClientFrame::CallLeave { session } => {
                let pid = self.require_member(conn, &session, None)?;
                self.leave_call(session, pid, now);
                Ok(())
            }
            ClientFrame::ProofOfWork { seed, nonce } => self.proof_of_work(conn, &seed, nonce),
            ClientFrame::Rejoin { version, token } => {
                check_version(version)?;
                self.resume(conn, &token, 0, now, true)
            }
            ClientFrame::ObservatoryQuery => self.observatory_query(conn),
            ClientFrame::TurnRequest { session } => self.turn_request(conn, session),
        }
    }

    fn close_case(
        &mut self,
        conn: ConnId,
        session: SessionId,
        record: &approdo_core::observatory::ObservatoryRecord,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let member = self
            .require_member(conn, &session, Some(Role::Operator))
            .is_ok();
        let serial = self
            .staff_cert(conn)
            .filter(|c| c.role == Role::Operator)
            .map(|c| c.serial);
        let ended = self.ended_key.of(&session);
        let after_end = !member
            && serial.is_some_and(|serial| {
                self.recently_ended
                    .get(&ended)
                    .is_some_and(|(ops, _)| ops.contains(&serial))
            });
        if !member && !after_end {
            return Err(ErrorCode::NotAllowed);
        }
        // Territories are configured desks, and a case has at most one entry per kind of
        // exploitation: nothing else reaches the observatory.
        let unknown_territory = [&record.territory_emerged, &record.territory_exploitation]
            .into_iter()
            .flatten()
            .any(|t| self.config.desk(t).is_none());
        let mut kinds = record.exploitation.clone();
        kinds.sort_by_key(|k| *k as u8);
        kinds.dedup();
        if unknown_territory || kinds.len() != record.exploitation.len() {
            return Err(ErrorCode::NotAllowed);
        }
        if let Err(e) = self.observatory.file(record, unix_now()) {
            tracing::error!(error = %e, "observatory write failed");
        }
        self.recently_ended.remove(&ended);
        if member {
            self.end_session(session, "case closed", now);
        }
        Ok(())
    }

    fn observatory_query(&mut self, conn: ConnId) -> Result<(), ErrorCode> {
        if self.staff_cert(conn).map(|c| c.role) != Some(Role::Coordinator) {
            return Err(ErrorCode::NotAllowed);
        }
        // Counts only, small ones suppressed: a coordinator never receives a record.
        let records = self
            .observatory
            .recent_records(crate::observatory::MAX_MONTHS);
        let territories: Vec<String> = self
            .config
            .desks
            .iter()
            .map(|d| d.id.as_str().to_owned())
            .collect();
        let tables = crate::observatory::aggregate(&records, &territories);
        self.send(conn, &RelayFrame::ObservatoryTables { tables });
        Ok(())
    }

    fn require_member(
        &self,
        conn: ConnId,
        session: &SessionId,
        role: Option<Role>,
    ) -> Result<ParticipantId, ErrorCode> {
        let c = self.conns.get(&conn).ok_or(ErrorCode::NotAllowed)?;
        let (_, pid) = c
            .memberships
            .iter()
            .find(|(s, _)| s == session)
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

    fn staff_cert(&self, conn: ConnId) -> Option<&Certificate> {
        match &self.conns.get(&conn)?.state {
            ConnState::Staff { cert } => Some(cert),
            _ => None,
        }
    }

    /// Time passes: end abandoned and idle sessions, refresh queue views.
    pub fn tick(&mut self, now: Instant) {
        self.advance(now);
        let grace = self.config.limits.resume_grace();
        let idle = Duration::from_secs(self.config.limits.session_idle_secs);
        let mut gone = Vec::new();
        let mut idle_sessions = Vec::new();
        for s in self.sessions.values() {
            if now.saturating_duration_since(s.last_activity) >= idle {
                idle_sessions.push(s.id);
                continue;
            }
            for (pid, p) in &s.participants {
                if p.away_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= grace)
                {
                    gone.push((s.id, *pid));
                }
            }
        }
        for id in idle_sessions {
            self.end_session(id, "idle", now);
        }
        for (session, pid) in gone {
            self.drop_participant(session, pid, now);
        }
        self.recently_ended
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < CLOSE_CASE_WINDOW);
        self.lobby.tick(now);
        self.gate.prune(now);
        if now.saturating_duration_since(self.last_summary) >= SUMMARY_INTERVAL {
            self.last_summary = now;
            self.log_summary();
        }
    }

    /// One INFO line of counts: nothing that could place a session, a record or a staff
    /// member at a time.
    fn log_summary(&self) {
        let waiting = self
            .sessions
            .values()
            .filter(|s| s.waiting_since.is_some())
            .count();
        let in_calls = self
            .sessions
            .values()
            .flat_map(|s| s.participants.values())
            .filter(|p| p.call.is_some())
            .count();
        tracing::info!(
            connections = self.conns.len(),
            sessions = self.sessions.len(),
            waiting,
            staff_online = self.lobby.staff_online(),
            in_calls,
            stored_bytes = self.stored_bytes,
            "switchboard summary"
        );
    }

    /// Remove a connection and its place in the staff index and address budgets.
    fn forget_conn(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        if matches!(c.state, ConnState::Staff { .. }) {
            self.lobby.staff_left(conn);
        }
        self.gate.release(c.addr);
        Some(c)
    }
}

fn check_version(v: u8) -> Result<(), ErrorCode> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ErrorCode::VersionMismatch)
    }
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
            call: None,
            turn_minted: 0,
        }
    }
}
