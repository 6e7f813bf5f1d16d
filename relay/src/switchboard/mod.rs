//! The switchboard: queues, staff, sessions and the ordered, resumable delivery of
//! ciphertext between participants.
//!
//! It is plain logic with no sockets: the server shell calls [`Switchboard::handle`],
//! [`Switchboard::disconnected`] and [`Switchboard::tick`] with the current time and then
//! drains [`Switchboard::take_outputs`]. Tests drive it the same way.
//!
//! What it holds per session is routing state and, for participants who are away, events
//! sealed in the [`crate::store::EphemeralStore`]. It never sees a plaintext: payloads are
//! Noise messages between the participants.
//!
//! It is split by concern, each part with its own state:
//! * [`Switchboard`] holds the connection table (who each connection is: fresh, the
//!   person, challenged, logged-in staff; its frame and byte budgets) and is the thin
//!   composition over the rest: it authenticates a connection's frame, dispatches it to the
//!   part it concerns, and collects what they decide in one `output::Outbox`.
//! * `lobby::Lobby`: queue and staff presence (global). It sees sessions only as the
//!   read-only views it is handed, and returns the frames to send.
//! * `sessions::Sessions`: per-session membership, resume tokens, delivery windows, the
//!   sealed store and its quotas, resume.
//! * `calls::Calls`: per-session call membership, entry numbers, TURN limits, and the
//!   [`CallCommand`]s for the SFU.
//! * `budget::Gate`: the admission budgets shared by every connection (per-address
//!   limits and bytes, the load that sets the proof of work).
//!
//! The line between the connection table and `Sessions`/`Calls` is where a bus between
//! relay nodes goes: the connection's node checks who is speaking, the session's home
//! node does the rest.

mod abroad;
mod admission;
mod budget;
mod calls;
mod gauges;
mod index;
mod lobby;
mod observatory;
mod output;
mod queue;
mod remote;
mod sessions;
mod visiting;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::{
    Certificate, RevocationList, Role, SignedCertificate, SignedRevocationList,
};
use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::limits::{CHALLENGE_LEN, MAX_ENVELOPES_PER_SEND, MAX_PAYLOAD_LEN};
use approdo_core::wire::{ClientFrame, Envelope, ErrorCode, Payload, RelayFrame};

use crate::config::Config;
use crate::error::RelayError;
use crate::observatory::Observatory;
use crate::ratelimit::{AddressTag, TokenBucket};
use crate::store::EphemeralStore;

pub use abroad::PENDING_FOR;
pub use gauges::{Gauges, Refusals, StaffOnline, TurnAnswers};
pub use output::{CallCommand, Output};
pub use remote::{
    LobbySnapshot, SNAPSHOT_EVERY, SnapInvitation, SnapVisitor, SnapWait, SnapWaiting,
    StaffSummary, Taken,
};

/// A connection's number, chosen by the shell. Not derived from anything about the client.
pub type ConnId = u64;

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
        signed: Box<SignedCertificate>,
        nonce: [u8; CHALLENGE_LEN],
    },
    /// Logged in. `signed` is the certificate the member presented, for vouching for it
    /// to other nodes; `None` on a connection another node vouched for (it is staff here
    /// only for the sessions it carries, and never vouched for again).
    Staff {
        cert: Box<Certificate>,
        signed: Option<Box<SignedCertificate>>,
    },
}

/// Who a connection is and what it may still send; which sessions it is in is kept by
/// `Sessions`.
struct Conn {
    addr: AddressTag,
    state: ConnState,
    /// Frames other than `Ping` and `Ack`.
    bucket: TokenBucket,
    /// `Ping`s and `Ack`s that release nothing.
    light: TokenBucket,
    /// Bytes of every frame.
    bytes: budget::ByteBucket,
    /// Proof of work asked of, or presented by, this connection.
    pow: budget::PowState,
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
    observatory: Observatory,
    /// The connection table.
    conns: HashMap<ConnId, Conn>,
    /// Queue and staff presence (global): who is online, average waits, the views.
    lobby: lobby::Lobby,
    /// Sessions (per session): membership, tokens, delivery, the sealed store.
    sessions: sessions::Sessions,
    /// Calls (per session): who is in each call, and the commands for the SFU.
    calls: calls::Calls,
    /// Admission and budgets shared by every connection (global): per-address limits and
    /// bytes, the proof-of-work load.
    gate: budget::Gate,
    /// Local staff connections with sessions on other nodes: their sub-connections and
    /// pending accepts, for the one cap across nodes (`abroad`).
    abroad: HashMap<ConnId, abroad::Abroad>,
    /// Staff connections other nodes carry here: which node, under what number
    /// (reported in the lobby snapshot so that node can count them).
    visitors: HashMap<ConnId, abroad::Origin>,
    /// The latest time the switchboard was told (simulated in tests).
    clock: Instant,
    /// When the last summary line was logged.
    last_summary: Instant,
    /// Refusals counted for the metrics endpoint.
    refusals: Refusals,
    /// What every part decided, in order, for the shell.
    outbox: output::Outbox,
    /// Coordinators' observatory queries (several nodes only; see `observatory`).
    observatory_queries: observatory::Queries,
}

impl std::fmt::Debug for Switchboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchboard")
            .field("census", &self.census())
            .finish_non_exhaustive()
    }
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
        Ok(Switchboard {
            revoked,
            revocations,
            observatory,
            conns: HashMap::new(),
            lobby: lobby::Lobby::new(config.clone(), now),
            sessions: sessions::Sessions::new(config.clone(), store),
            calls: calls::Calls::new(config.clone()),
            gate: budget::Gate::new(config.clone(), now),
            abroad: HashMap::new(),
            visitors: HashMap::new(),
            config,
            clock: now,
            last_summary: now,
            refusals: Refusals::default(),
            outbox: output::Outbox::default(),
            observatory_queries: Default::default(),
        })
    }

    /// Everything the shell must do now.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        self.settle();
        self.sessions.send_accepted(&mut self.outbox);
        if self.lobby.is_dirty() {
            self.push_queues();
        }
        self.outbox.take()
    }

    /// Frames a connection's outbox should hold ([`outbox_frames`] for this relay's
    /// sessions-per-staff limit).
    pub fn outbox_frames(&self) -> usize {
        outbox_frames(self.config.limits.max_sessions_per_staff)
    }

    /// Whether a participant's resume token with this SHA-256 is live here: another node
    /// asks before carrying a connection here (`bus::forward`).
    pub fn holds_resume_token_hash(&self, hash: &[u8; 32]) -> bool {
        self.sessions.holds_token_hash(hash)
    }

    /// Counts for tests and health checks.
    pub fn census(&self) -> Census {
        Census {
            connections: self.conns.len(),
            sessions: self.sessions.len(),
            stored_records: self.sessions.store().record_count(),
            session_keys: self.sessions.keys_held(),
            away_participants: self.sessions.away(),
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
        self.sessions.store()
    }

    /// Refuse with `code`; fatal codes also close the connection.
    pub fn refuse(&mut self, conn: ConnId, code: ErrorCode) {
        if code == ErrorCode::RateLimited {
            self.refusals.budget = self.refusals.budget.saturating_add(1);
        }
        self.outbox.frame(conn, &RelayFrame::Error { code });
        if is_fatal(code) {
            tracing::debug!(conn, ?code, "connection refused");
            self.outbox.close(conn);
        }
    }

    /// The sessions, and what a change to them reaches beyond them (the calls, the
    /// outbox), borrowed apart so the one can be changed with the other.
    fn parts(&mut self, now: Instant) -> (&mut sessions::Sessions, sessions::Effects<'_>) {
        let effects = sessions::Effects {
            now,
            calls: &mut self.calls,
            out: &mut self.outbox,
        };
        (&mut self.sessions, effects)
    }

    /// Move the switchboard's clock forward (never back).
    fn advance(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
    }

    /// Carry out what the parts left for the composition: forget the connections
    /// `Sessions` cut off as slow consumers, and tell the lobby when the queues changed.
    /// Called before every public method returns, so the connection table and the lobby
    /// are never seen behind.
    fn settle(&mut self) {
        for conn in self.sessions.take_cut_off() {
            self.forget_conn(conn);
        }
        if self.sessions.take_queue_changed() {
            self.lobby.changed();
        }
    }

    /// One frame arrived on a connection. Bad input gets an error code (and, when fatal, a
    /// closed connection); it never affects another connection or session.
    pub fn handle(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        self.advance(now);
        self.check_and_dispatch(conn, bytes, now);
        self.settle();
    }

    /// The connection's budgets, then the frame's decoding, then its handler.
    fn check_and_dispatch(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        // Bytes first: a few huge frames cost as much as many small ones.
        let len = bytes.len() as f64;
        let addr = c.addr;
        if !c.bytes.try_take(len, now) || !self.gate.take_bytes(addr, len, now) {
            return self.refuse(conn, ErrorCode::RateLimited);
        }
        let frame: ClientFrame = match approdo_core::wire::decode(bytes) {
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
        self.note_answered(conn, &frame, now);
        if let Err(code) = self.dispatch(conn, frame, now) {
            self.refuse(conn, code);
        }
    }

    /// Hand the frame to the part it concerns: admission (`admission`), the queues
    /// (`queue`, with the lobby), a session (`Sessions`), its call (`calls`).
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
            ClientFrame::Leave { session } => {
                let pid = self.require_member(conn, &session, None)?;
                let (sessions, mut fx) = self.parts(now);
                sessions.leave(session, pid, &mut fx);
                Ok(())
            }
            ClientFrame::End { session } => {
                let pid = self.require_member(conn, &session, None)?;
                let (sessions, mut fx) = self.parts(now);
                sessions.end(session, pid, &mut fx);
                Ok(())
            }
            ClientFrame::Send {
                session,
                seq,
                envelopes,
            } => self.send_envelopes(conn, session, seq, envelopes, now),
            ClientFrame::Ack { session, up_to } => self.ack(conn, session, up_to, now),
            ClientFrame::Ping => {
                self.outbox.frame(conn, &RelayFrame::Pong);
                Ok(())
            }
            ClientFrame::Transfer { session, desk } => self.transfer(conn, session, desk, now),
            ClientFrame::CloseCase { session, record } => {
                self.close_case(conn, session, &record, now)
            }
            ClientFrame::CallJoin { session, offer } => self.call_join(conn, session, offer, now),
            ClientFrame::CallVideo { session, receive } => self.call_video(conn, session, receive),
            ClientFrame::CallLeave { session } => self.call_leave(conn, session, now),
            ClientFrame::ProofOfWork { seed, nonce } => self.proof_of_work(conn, &seed, nonce),
            ClientFrame::Rejoin { version, token } => {
                check_version(version)?;
                self.resume(conn, &token, 0, now, true)
            }
            ClientFrame::ObservatoryQuery => self.observatory_query(conn),
            ClientFrame::TurnRequest { session } => self.turn_request(conn, session),
        }
    }

    /// `Send`: bounded envelopes from a member, relayed by `Sessions`; an away recipient
    /// removed rather than lose an event is answered with `QuotaExceeded`.
    fn send_envelopes(
        &mut self,
        conn: ConnId,
        session: SessionId,
        seq: u64,
        envelopes: Vec<Envelope>,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        // These bounds make every `Event` built from an envelope fit a frame.
        if envelopes.len() > MAX_ENVELOPES_PER_SEND
            || envelopes
                .iter()
                .any(|e| payload_len(&e.payload) > MAX_PAYLOAD_LEN)
        {
            return Err(ErrorCode::Malformed);
        }
        let from = self.require_member(conn, &session, None)?;
        let (sessions, mut fx) = self.parts(now);
        let lost = sessions.relay(conn, session, from, seq, envelopes, &mut fx)?;
        if lost {
            // The away recipient was removed rather than lose the event in silence:
            // the sender hears why (the others got `Departed`, or `Ended`).
            self.refuse(conn, ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    /// A cumulative acknowledgement. One that releases nothing costs from the connection's
    /// light budget; one that releases events is free, being bounded by what others sent.
    fn ack(
        &mut self,
        conn: ConnId,
        session: SessionId,
        up_to: u64,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let pid = match self.require_member(conn, &session, None) {
            Ok(pid) => Some(pid),
            Err(ErrorCode::UnknownSession) => None,
            Err(e) => return Err(e),
        };
        let released = pid.map_or(0, |pid| {
            self.sessions.ack(session, pid, up_to, &mut self.outbox)
        });
        if released == 0 {
            let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
            if !c.light.try_take(now) {
                return Err(ErrorCode::RateLimited);
            }
        }
        // An ack for a session this connection is not in (it just ended) is harmless.
        pid.map(|_| ()).ok_or(ErrorCode::UnknownSession)
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
        let after_end = !member
            && serial.is_some_and(|serial| self.sessions.ended_with_operator(&session, serial));
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
        self.sessions.forget_ended(&session);
        if member {
            let (sessions, mut fx) = self.parts(now);
            sessions.end_session(session, "case closed", &mut fx);
        }
        Ok(())
    }

    /// The participant a known connection is in `session`, with `role` if one is asked.
    fn require_member(
        &self,
        conn: ConnId,
        session: &SessionId,
        role: Option<Role>,
    ) -> Result<ParticipantId, ErrorCode> {
        if !self.conns.contains_key(&conn) {
            return Err(ErrorCode::NotAllowed);
        }
        self.sessions.member(conn, session, role)
    }

    fn staff_cert(&self, conn: ConnId) -> Option<&Certificate> {
        match &self.conns.get(&conn)?.state {
            ConnState::Staff { cert, .. } => Some(cert),
            _ => None,
        }
    }

    /// Time passes: end abandoned and idle sessions, refresh queue views.
    pub fn tick(&mut self, now: Instant) {
        self.advance(now);
        let (sessions, mut fx) = self.parts(now);
        sessions.tick(&mut fx);
        self.settle();
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
        tracing::info!(
            connections = self.conns.len(),
            sessions = self.sessions.len(),
            waiting = self.sessions.waiting(),
            staff_online = self.lobby.staff_online(),
            in_calls = self.calls.participants(),
            stored_bytes = self.sessions.stored_bytes(),
            "switchboard summary"
        );
    }

    /// A connection is gone. Its participants become "away" (see `Sessions`): what they
    /// are sent is sealed into the store until they resume or their grace period ends.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        if self.forget_conn(conn) {
            let (sessions, mut fx) = self.parts(now);
            sessions.disconnected(conn, &mut fx);
        }
        self.settle();
    }

    /// Remove a connection and its place in the staff index and address budgets. False
    /// when it was not in the table.
    fn forget_conn(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns.remove(&conn) else {
            return false;
        };
        if matches!(c.state, ConnState::Staff { .. }) {
            self.lobby.staff_left(conn);
        }
        self.abroad.remove(&conn);
        if self.visitors.remove(&conn).is_some() {
            self.lobby.snapshot_soon();
        }
        self.gate.release(c.addr);
        self.observatory_queries.forget(conn);
        true
    }
}

fn check_version(v: u8) -> Result<(), ErrorCode> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ErrorCode::VersionMismatch)
    }
}

/// The length of what an envelope carries: the Noise message, or nothing.
fn payload_len(p: &Payload) -> usize {
    match p {
        Payload::Handshake(bytes) => bytes.len(),
        Payload::Cipher { data, .. } => data.len(),
        Payload::HandshakeRefused | Payload::Restart => 0,
    }
}
