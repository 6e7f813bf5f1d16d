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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::{
    Certificate, RevocationList, Role, SignedRevocationList, verify_challenge_answer,
};
use approdo_core::ids::{DeskId, Language, ParticipantId, ResumeToken, SessionId, fill_random};
use approdo_core::limits::{CHALLENGE_LEN, MAX_PARTICIPANTS};
use approdo_core::wire::{
    self, ClientFrame, ErrorCode, Invitation, QueueEntry, RelayFrame, SessionEvent,
};
use axum::body::Bytes;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::RelayError;
use crate::observatory::Observatory;
use crate::ratelimit::{AddressLimiter, AddressTag, TokenBucket};
use crate::store::EphemeralStore;

/// A connection's number, chosen by the shell. Not derived from anything about the client.
pub type ConnId = u64;

/// Work for the shell.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Send these frame bytes on the connection (shared, not copied, with the resend buffer).
    Frame(ConnId, Bytes),
    /// Close the connection (after the frames queued before this).
    Close(ConnId),
    /// Work for the SFU.
    Call(CallCommand),
}

/// What the SFU must do. `call` numbers each entry into a call, so a leave that overtakes
/// a slow join (or a join answered after its participant left) is recognised.
#[derive(Debug, PartialEq, Eq)]
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

/// How long after a session ends its operators may still file the observatory record (the
/// person often leaves first, by quick exit). Only the session id and the operators'
/// certificate serials are kept meanwhile, in memory.
const CLOSE_CASE_WINDOW: Duration = Duration::from_secs(3600);

/// How long an operator's queue view may go without a refresh.
const QUEUE_REFRESH: Duration = Duration::from_secs(10);
/// Estimated handling time per waiting session before any has been measured.
const DEFAULT_WAIT_SECS: f64 = 180.0;

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
    bucket: TokenBucket,
    memberships: BTreeSet<(SessionId, ParticipantId)>,
}

struct Participant {
    role: Option<Role>,
    serial: Option<u64>,
    token_hash: [u8; 32],
    conn: Option<ConnId>,
    away_since: Option<Instant>,
    next_seq: u64,
    /// Events sent on the live connection and not yet acknowledged.
    unacked: VecDeque<(u64, Bytes)>,
    /// Events sealed in the store while away.
    stored: usize,
    accepted_up_to: u64,
    /// In the call: the number of this entry into it.
    call: Option<u64>,
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
    /// The last queue status sent to the person (position, wait, fallback shown): a new
    /// one goes out only when it differs, so a queue of n people costs O(n), not O(n²).
    last_status: Option<(u32, u32, bool)>,
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
    session_limiter: AddressLimiter,
    connection_limiter: AddressLimiter,
    avg_wait: HashMap<DeskId, f64>,
    queues_dirty: bool,
    last_queue_push: Instant,
    /// Sessions ended without a record: who may still file one, and since when.
    recently_ended: HashMap<SessionId, (Vec<u64>, Instant)>,
    /// Senders owed an `Accepted`: sent once per batch of frames, not once per `Send`.
    accepted_owed: Vec<(ConnId, SessionId, ParticipantId)>,
    /// Numbers entries into calls.
    next_call: u64,
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

fn is_fatal(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::NotAllowed
            | ErrorCode::UnknownSession
            | ErrorCode::SessionFull
            | ErrorCode::ResumeFailed
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
            session_limiter: AddressLimiter::new(config.limits.sessions_per_min_per_addr, now),
            connection_limiter: AddressLimiter::new(
                config.limits.connections_per_min_per_addr,
                now,
            ),
            config,
            revoked,
            revocations,
            store,
            observatory,
            conns: HashMap::new(),
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            avg_wait: HashMap::new(),
            queues_dirty: false,
            last_queue_push: now,
            accepted_owed: Vec::new(),
            next_call: 1,
            recently_ended: HashMap::new(),
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
        if self.queues_dirty {
            self.push_queues();
        }
        std::mem::take(&mut self.outputs)
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

    /// Apply a new revocation list without a restart: it must be signed by the
    /// organisation and not older than the current one. Staff whose certificate it revokes
    /// are cut off at once (their participations end as if they had left), and every
    /// client learns the new list when it next opens a session or logs in.
    pub fn apply_revocations(
        &mut self,
        signed: SignedRevocationList,
        now: Instant,
    ) -> Result<usize, RelayError> {
        let list = self.config.org.open_revocations(&signed)?;
        if list.issued_at < self.revoked.issued_at {
            return Err(RelayError::Config(
                "refusing a revocation list older than the current one".into(),
            ));
        }
        self.revoked = list;
        self.revocations = signed;
        let cut: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(&c.state, ConnState::Staff { cert } if self.revoked.serials.binary_search(&cert.serial).is_ok()))
            .map(|(id, _)| *id)
            .collect();
        for conn in &cut {
            let memberships: Vec<(SessionId, ParticipantId)> = self
                .conns
                .get(conn)
                .map(|c| c.memberships.iter().copied().collect())
                .unwrap_or_default();
            self.refuse(*conn, ErrorCode::AuthFailed);
            self.conns.remove(conn);
            for (session, pid) in memberships {
                self.depart(session, pid, now);
            }
        }
        // Revoked staff who are away must not come back with their resume tokens either.
        let away: Vec<(SessionId, ParticipantId)> = self
            .sessions
            .values()
            .flat_map(|s| {
                s.participants
                    .iter()
                    .filter(|(_, p)| {
                        p.serial.is_some_and(|serial| {
                            self.revoked.serials.binary_search(&serial).is_ok()
                        })
                    })
                    .map(move |(pid, _)| (s.id, *pid))
            })
            .collect();
        for (session, pid) in away {
            self.depart(session, pid, now);
        }
        tracing::info!(
            revoked = self.revoked.serials.len(),
            cut_off = cut.len(),
            "revocation list applied"
        );
        self.queues_dirty = true;
        Ok(cut.len())
    }

    /// May a new connection from this address be opened? The address is reduced to an
    /// HMAC tag at once and never kept.
    pub fn admit(&mut self, addr: IpAddr, now: Instant) -> Option<AddressTag> {
        if self.conns.len() >= self.config.limits.max_connections {
            return None;
        }
        let tag = self.connection_limiter.tag(addr, now);
        self.connection_limiter.allow(tag, now).then_some(tag)
    }

    /// A WebSocket connection is open.
    pub fn connected(&mut self, conn: ConnId, addr: AddressTag, now: Instant) {
        let l = &self.config.limits;
        self.conns.insert(
            conn,
            Conn {
                addr,
                state: ConnState::Fresh,
                bucket: TokenBucket::new(l.frames_per_sec, l.frame_burst, now),
                memberships: BTreeSet::new(),
            },
        );
    }

    /// Refuse with `code`; fatal codes also close the connection.
    pub fn refuse(&mut self, conn: ConnId, code: ErrorCode) {
        self.send(conn, &RelayFrame::Error { code });
        if is_fatal(code) {
            self.outputs.push(Output::Close(conn));
        }
    }

    fn send(&mut self, conn: ConnId, frame: &RelayFrame) {
        let bytes = wire::encode(frame).expect("relay frames stay within limits");
        self.outputs.push(Output::Frame(conn, bytes.into()));
    }

    /// One frame arrived on a connection. Bad input gets an error code (and, when fatal, a
    /// closed connection); it never affects another connection or session.
    pub fn handle(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.bucket.try_take(now) {
            return self.refuse(conn, ErrorCode::RateLimited);
        }
        let frame: ClientFrame = match wire::decode(bytes) {
            Ok(f) => f,
            Err(approdo_core::Error::FrameTooLarge) => {
                return self.refuse(conn, ErrorCode::FrameTooLarge);
            }
            Err(_) => return self.refuse(conn, ErrorCode::Malformed),
        };
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
                self.resume(conn, &token, received_up_to, now)
            }
            ClientFrame::StaffHello {
                version,
                certificate,
            } => {
                check_version(version)?;
                let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
                if !matches!(c.state, ConnState::Fresh) {
                    return Err(ErrorCode::NotAllowed);
                }
                // Check now, answer later: every caller gets a challenge, and every failure
                // the same AuthFailed after the proof, whatever was wrong.
                let cert = self
                    .config
                    .org
                    .check_certificate(&certificate, &self.revoked, unix_now())
                    .ok()
                    .map(Box::new);
                let mut nonce = [0u8; CHALLENGE_LEN];
                fill_random(&mut nonce);
                c.state = ConnState::Challenged { cert, nonce };
                self.send(conn, &RelayFrame::Challenge { nonce });
                Ok(())
            }
            ClientFrame::StaffProof { signature } => {
                let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
                let ConnState::Challenged { cert, nonce } =
                    std::mem::replace(&mut c.state, ConnState::Fresh)
                else {
                    return Err(ErrorCode::AuthFailed);
                };
                match cert {
                    Some(cert)
                        if verify_challenge_answer(&cert.signing_key, &nonce, &signature) =>
                    {
                        tracing::info!(
                            conn,
                            role = cert.role.as_str(),
                            serial = cert.serial,
                            "staff logged in"
                        );
                        c.state = ConnState::Staff { cert };
                        let revocations = self.revocations.clone();
                        self.send(conn, &RelayFrame::StaffReady { revocations });
                        self.queues_dirty = true;
                        Ok(())
                    }
                    _ => Err(ErrorCode::AuthFailed),
                }
            }
            ClientFrame::Accept { session } => self.accept(conn, session, now),
            ClientFrame::Invite { session, language } => {
                self.require_member(conn, &session, Some(Role::Operator))?;
                let s = self
                    .sessions
                    .get_mut(&session)
                    .ok_or(ErrorCode::UnknownSession)?;
                if !s.invitations.iter().any(|(l, _)| *l == language) {
                    s.invitations.push((language, now));
                }
                self.queues_dirty = true;
                Ok(())
            }
            ClientFrame::Join { session } => self.join(conn, session, now),
            ClientFrame::Leave { session } => {
                let pid = self.require_member(conn, &session, None)?;
                if self
                    .sessions
                    .get(&session)
                    .and_then(|s| s.participants.get(&pid))
                    .is_some_and(|p| p.role.is_none())
                {
                    self.end_session(session, "person left");
                } else {
                    self.depart(session, pid, now);
                }
                Ok(())
            }
            ClientFrame::End { session } => {
                let pid = self.require_member(conn, &session, None)?;
                let role = self
                    .sessions
                    .get(&session)
                    .and_then(|s| s.participants.get(&pid))
                    .and_then(|p| p.role);
                match role {
                    None | Some(Role::Operator) => {
                        self.end_session(session, "ended by a participant")
                    }
                    _ => self.depart(session, pid, now),
                }
                Ok(())
            }
            ClientFrame::Send {
                session,
                seq,
                envelopes,
            } => {
                let from = self.require_member(conn, &session, None)?;
                if envelopes.len() > MAX_PARTICIPANTS {
                    return Err(ErrorCode::Malformed);
                }
                let s = self
                    .sessions
                    .get_mut(&session)
                    .ok_or(ErrorCode::UnknownSession)?;
                let p = s
                    .participants
                    .get_mut(&from)
                    .ok_or(ErrorCode::UnknownSession)?;
                if seq > p.accepted_up_to {
                    p.accepted_up_to = seq;
                    s.last_activity = now;
                    let deliveries: Vec<_> = envelopes
                        .into_iter()
                        .filter(|env| env.to != from && s.participants.contains_key(&env.to))
                        .collect();
                    for env in deliveries {
                        let event = SessionEvent::Message {
                            from,
                            payload: env.payload,
                        };
                        self.deliver(session, env.to, event, now);
                    }
                }
                if !self.accepted_owed.contains(&(conn, session, from)) {
                    self.accepted_owed.push((conn, session, from));
                }
                Ok(())
            }
            ClientFrame::Ack { session, up_to } => {
                let pid = self.require_member(conn, &session, None)?;
                if let Some(p) = self
                    .sessions
                    .get_mut(&session)
                    .and_then(|s| s.participants.get_mut(&pid))
                {
                    while p.unacked.front().is_some_and(|(seq, _)| *seq <= up_to) {
                        p.unacked.pop_front();
                    }
                }
                Ok(())
            }
            ClientFrame::Ping => {
                self.send(conn, &RelayFrame::Pong);
                Ok(())
            }
            ClientFrame::Transfer { session, desk } => {
                self.require_member(conn, &session, Some(Role::Operator))?;
                if self.config.desk(&desk).is_none() {
                    return Err(ErrorCode::NotAllowed);
                }
                let s = self
                    .sessions
                    .get_mut(&session)
                    .ok_or(ErrorCode::UnknownSession)?;
                s.desk = desk;
                s.waiting_since = Some(now);
                s.last_activity = now;
                tracing::info!(conn, "session transferred");
                self.save_meta(&session);
                self.queues_dirty = true;
                Ok(())
            }
            ClientFrame::CloseCase { session, record } => {
                let member = self
                    .require_member(conn, &session, Some(Role::Operator))
                    .is_ok();
                let serial = self
                    .staff_cert(conn)
                    .filter(|c| c.role == Role::Operator)
                    .map(|c| c.serial);
                let after_end = !member
                    && serial.is_some_and(|serial| {
                        self.recently_ended
                            .get(&session)
                            .is_some_and(|(ops, _)| ops.contains(&serial))
                    });
                if !member && !after_end {
                    return Err(ErrorCode::NotAllowed);
                }
                if let Err(e) = self.observatory.file(&record, unix_now()) {
                    tracing::error!(error = %e, "observatory write failed");
                }
                self.recently_ended.remove(&session);
                if member {
                    self.end_session(session, "case closed");
                }
                Ok(())
            }
            ClientFrame::CallJoin { session, offer } => {
                let pid = self.require_member(conn, &session, None)?;
                if offer.len() > approdo_core::limits::MAX_SDP_LEN {
                    return Err(ErrorCode::Malformed);
                }
                // A page that joins again (after a reconnect) replaces its connection.
                self.leave_call(session, pid, now);
                let s = self
                    .sessions
                    .get_mut(&session)
                    .ok_or(ErrorCode::UnknownSession)?;
                let members = s.participants.values().filter(|p| p.call.is_some()).count();
                if members > approdo_core::limits::CALL_SLOTS {
                    return Err(ErrorCode::SessionFull);
                }
                let call = self.next_call;
                self.next_call += 1;
                let p = s
                    .participants
                    .get_mut(&pid)
                    .ok_or(ErrorCode::UnknownSession)?;
                p.call = Some(call);
                s.last_activity = now;
                self.outputs.push(Output::Call(CallCommand::Join {
                    conn,
                    session,
                    participant: pid,
                    call,
                    offer,
                }));
                self.announce_call(session, pid, true, now);
                Ok(())
            }
            ClientFrame::CallVideo { session, receive } => {
                let pid = self.require_member(conn, &session, None)?;
                let call = self
                    .sessions
                    .get(&session)
                    .and_then(|s| s.participants.get(&pid))
                    .and_then(|p| p.call)
                    .ok_or(ErrorCode::NotAllowed)?;
                self.outputs.push(Output::Call(CallCommand::ReceiveVideo {
                    session,
                    participant: pid,
                    call,
                    receive,
                }));
                Ok(())
            }
            ClientFrame::CallLeave { session } => {
                let pid = self.require_member(conn, &session, None)?;
                self.leave_call(session, pid, now);
                Ok(())
            }
            ClientFrame::ProofOfWork { .. } => Err(ErrorCode::NotAllowed),
            ClientFrame::ObservatoryQuery => {
                if self.staff_cert(conn).map(|c| c.role) != Some(Role::Coordinator) {
                    return Err(ErrorCode::NotAllowed);
                }
                let records = self.observatory.records();
                // Keep the answer within one frame: newest records first if it would not fit.
                let mut records = records;
                while wire::encode(&RelayFrame::Observatory {
                    records: records.clone(),
                })
                .is_err()
                {
                    let keep = records.len() * 3 / 4;
                    records.drain(..records.len() - keep);
                }
                self.send(conn, &RelayFrame::Observatory { records });
                Ok(())
            }
        }
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

    /// Take a participant out of the call, if in it: close its peer connection and tell
    /// everyone.
    fn leave_call(&mut self, session: SessionId, pid: ParticipantId, now: Instant) {
        let Some(call) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&pid))
            .and_then(|p| p.call.take())
        else {
            return;
        };
        self.outputs.push(Output::Call(CallCommand::Leave {
            session,
            participant: pid,
            call,
        }));
        self.announce_call(session, pid, false, now);
    }

    /// Tell every participant, `pid` included, that it entered or left the call.
    fn announce_call(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        joined: bool,
        now: Instant,
    ) {
        let everyone: Vec<ParticipantId> = self
            .sessions
            .get(&session)
            .map(|s| s.participants.keys().copied().collect())
            .unwrap_or_default();
        for id in everyone {
            self.deliver(session, id, SessionEvent::Call { id: pid, joined }, now);
        }
    }

    /// The SFU could not set up a participant's call (no free port, a bad offer): take it
    /// out of the call and tell its page.
    pub fn call_failed(
        &mut self,
        conn: ConnId,
        session: SessionId,
        pid: ParticipantId,
        call: u64,
        tell: bool,
        now: Instant,
    ) {
        let current = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .and_then(|p| p.call);
        if current != Some(call) {
            return;
        }
        self.leave_call(session, pid, now);
        if tell {
            self.send(
                conn,
                &RelayFrame::Error {
                    code: ErrorCode::Busy,
                },
            );
        }
    }

    /// Whether `call` is still the participant's current entry into the call (its answer
    /// is worth sending).
    pub fn call_is_current(&self, session: &SessionId, pid: ParticipantId, call: u64) -> bool {
        self.sessions
            .get(session)
            .and_then(|s| s.participants.get(&pid))
            .and_then(|p| p.call)
            == Some(call)
    }

    fn staff_cert(&self, conn: ConnId) -> Option<&Certificate> {
        match &self.conns.get(&conn)?.state {
            ConnState::Staff { cert } => Some(cert),
            _ => None,
        }
    }

    // ----- sessions -------------------------------------------------------------------

    fn open_session(
        &mut self,
        conn: ConnId,
        language: Language,
        region: Option<DeskId>,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let c = self.conns.get(&conn).ok_or(ErrorCode::NotAllowed)?;
        let may_open = match c.state {
            ConnState::Fresh => true,
            ConnState::Person => c.memberships.is_empty(),
            _ => false,
        };
        if !may_open {
            return Err(ErrorCode::NotAllowed);
        }
        if !self.session_limiter.allow(c.addr, now) {
            return Err(ErrorCode::RateLimited);
        }
        if self.sessions.len() >= self.config.limits.max_sessions {
            return Err(ErrorCode::Busy);
        }
        let desk = region
            .filter(|r| self.config.desk(r).is_some())
            .unwrap_or_else(|| self.config.national().id.clone());
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
        let c = self.conns.get_mut(&conn).expect("checked above");
        c.state = ConnState::Person;
        c.memberships.insert((id, me));
        tracing::info!(conn, "session opened");
        let revocations = self.revocations.clone();
        self.send(
            conn,
            &RelayFrame::SessionOpened {
                session: id,
                you: me,
                token,
                revocations,
            },
        );
        self.queues_dirty = true;
        Ok(())
    }

    /// Keep the session's routing metadata sealed in the store (language, desk, roles).
    fn save_meta(&mut self, id: &SessionId) {
        let Some(s) = self.sessions.get(id) else {
            return;
        };
        let roles: Vec<(u32, Option<Role>)> =
            s.participants.iter().map(|(p, v)| (p.0, v.role)).collect();
        let meta = (s.language.as_str(), s.desk.as_str(), roles);
        if let Ok(bytes) = postcard::to_allocvec(&meta)
            && let Err(e) = self.store.put_meta(id, &bytes)
        {
            tracing::error!(error = %e, "store write failed");
        }
    }

    fn operator_eligible(&self, cert: &Certificate, s: &Session) -> bool {
        if cert.role != Role::Operator {
            return false;
        }
        if cert.desks.contains(&s.desk) {
            return true;
        }
        // National operators take a regional queue when no regional operator is online.
        cert.desks.contains(&self.config.national().id) && !self.online_operator_at(&s.desk)
    }

    fn online_operator_at(&self, desk: &DeskId) -> bool {
        self.conns.values().any(|c| matches!(&c.state, ConnState::Staff { cert } if cert.role == Role::Operator && cert.desks.contains(desk)))
    }

    fn accept(&mut self, conn: ConnId, session: SessionId, now: Instant) -> Result<(), ErrorCode> {
        let cert = self.staff_cert(conn).ok_or(ErrorCode::NotAllowed)?.clone();
        let s = self
            .sessions
            .get(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        if !self.operator_eligible(&cert, s) {
            return Err(ErrorCode::NotAllowed);
        }
        let waited = s.waiting_since.ok_or(ErrorCode::UnknownSession)?;
        if s.participants
            .values()
            .any(|p| p.serial == Some(cert.serial))
        {
            return Err(ErrorCode::NotAllowed);
        }
        let desk = s.desk.clone();
        let w = now.saturating_duration_since(waited).as_secs_f64();
        let avg = self.avg_wait.entry(desk).or_insert(DEFAULT_WAIT_SECS);
        *avg = 0.8 * *avg + 0.2 * w.max(30.0);
        self.sessions
            .get_mut(&session)
            .expect("checked")
            .waiting_since = None;
        self.add_participant(conn, session, &cert, now)
    }

    fn join(&mut self, conn: ConnId, session: SessionId, now: Instant) -> Result<(), ErrorCode> {
        let cert = self.staff_cert(conn).ok_or(ErrorCode::NotAllowed)?.clone();
        if cert.role != Role::Interpreter {
            return Err(ErrorCode::NotAllowed);
        }
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        let idx = s
            .invitations
            .iter()
            .position(|(l, _)| cert.languages.contains(l))
            .ok_or(ErrorCode::NotAllowed)?;
        s.invitations.remove(idx);
        self.add_participant(conn, session, &cert, now)
    }

    fn add_participant(
        &mut self,
        conn: ConnId,
        session: SessionId,
        cert: &Certificate,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        if s.participants.len() >= MAX_PARTICIPANTS {
            return Err(ErrorCode::SessionFull);
        }
        if s.participants
            .values()
            .any(|p| p.serial == Some(cert.serial))
        {
            return Err(ErrorCode::NotAllowed);
        }
        let pid = ParticipantId(s.next_pid);
        s.next_pid += 1;
        s.last_activity = now;
        let token = ResumeToken::random();
        let existing: Vec<(ParticipantId, Option<Role>)> =
            s.participants.iter().map(|(id, p)| (*id, p.role)).collect();
        let in_call: Vec<ParticipantId> = s
            .participants
            .iter()
            .filter(|(_, p)| p.call.is_some())
            .map(|(id, _)| *id)
            .collect();
        s.participants.insert(
            pid,
            Participant::new(Some(cert.role), Some(cert.serial), token_hash(&token), conn),
        );
        self.tokens.insert(token_hash(&token), (session, pid));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.memberships.insert((session, pid));
        }
        tracing::info!(conn, role = cert.role.as_str(), "staff joined a session");
        self.send(
            conn,
            &RelayFrame::Joined {
                session,
                you: pid,
                token,
            },
        );
        for (id, role) in &existing {
            self.deliver(
                session,
                pid,
                SessionEvent::Arrived {
                    id: *id,
                    role: *role,
                },
                now,
            );
        }
        for id in in_call {
            self.deliver(session, pid, SessionEvent::Call { id, joined: true }, now);
        }
        for (id, _) in existing {
            self.deliver(
                session,
                id,
                SessionEvent::Arrived {
                    id: pid,
                    role: Some(cert.role),
                },
                now,
            );
        }
        self.save_meta(&session);
        self.queues_dirty = true;
        Ok(())
    }

    /// A staff member leaves; the session carries on (back to the queue if no operator
    /// remains with the person).
    fn depart(&mut self, session: SessionId, pid: ParticipantId, now: Instant) {
        self.leave_call(session, pid, now);
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(p) = s.participants.remove(&pid) else {
            return;
        };
        self.tokens.remove(&p.token_hash);
        if let Some(c) = p.conn.and_then(|c| self.conns.get_mut(&c)) {
            c.memberships.remove(&(session, pid));
        }
        if let Err(e) = self.store.drop_events(&session, pid) {
            tracing::error!(error = %e, "store cleanup failed");
        }
        let no_operator = !s
            .participants
            .values()
            .any(|p| p.role == Some(Role::Operator));
        if no_operator && s.waiting_since.is_none() {
            s.waiting_since = Some(now);
        }
        let others: Vec<ParticipantId> = s.participants.keys().copied().collect();
        for id in others {
            self.deliver(session, id, SessionEvent::Departed { id: pid }, now);
        }
        self.save_meta(&session);
        self.queues_dirty = true;
    }

    /// End a session: tell whoever is connected, forget everything, wipe the key.
    fn end_session(&mut self, session: SessionId, why: &'static str) {
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        let operators: Vec<u64> = s
            .participants
            .values()
            .filter(|p| p.role == Some(Role::Operator))
            .filter_map(|p| p.serial)
            .collect();
        if !operators.is_empty() && why != "case closed" {
            self.recently_ended
                .insert(session, (operators, Instant::now()));
        }
        for (pid, p) in &s.participants {
            if let Some(call) = p.call {
                self.outputs.push(Output::Call(CallCommand::Leave {
                    session,
                    participant: *pid,
                    call,
                }));
            }
            self.tokens.remove(&p.token_hash);
            if let Some(conn) = p.conn {
                let frame = RelayFrame::Event {
                    session,
                    seq: p.next_seq,
                    event: SessionEvent::Ended,
                };
                self.send(conn, &frame);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.memberships.remove(&(session, *pid));
                }
            }
        }
        if let Err(e) = self.store.end(&session) {
            tracing::error!(error = %e, "store cleanup failed");
        }
        tracing::info!(reason = why, "session ended");
        self.queues_dirty = true;
    }

    /// Deliver an event to a participant: on the live connection, or sealed into the store
    /// while they are away.
    fn deliver(
        &mut self,
        session: SessionId,
        to: ParticipantId,
        event: SessionEvent,
        now: Instant,
    ) {
        let max_unacked = self.config.limits.max_unacked;
        let max_stored = self.config.limits.max_stored_per_participant;
        let Some(p) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&to))
        else {
            return;
        };
        let seq = p.next_seq;
        p.next_seq += 1;
        let bytes: Bytes = wire::encode(&RelayFrame::Event {
            session,
            seq,
            event,
        })
        .expect("events within limits")
        .into();
        match p.conn {
            Some(conn) if p.unacked.len() < max_unacked => {
                p.unacked.push_back((seq, bytes.clone()));
                self.outputs.push(Output::Frame(conn, bytes));
            }
            Some(conn) => {
                // It does not read what it is sent: cut it off; it may resume.
                p.unacked.push_back((seq, bytes));
                self.send(
                    conn,
                    &RelayFrame::Error {
                        code: ErrorCode::SlowConsumer,
                    },
                );
                self.outputs.push(Output::Close(conn));
                self.disconnected(conn, now);
            }
            None => {
                p.stored += 1;
                let too_many = p.stored > max_stored;
                if let Err(e) = self.store.put_event(&session, to, seq, &bytes) {
                    tracing::error!(error = %e, "store write failed");
                }
                if too_many {
                    self.drop_participant(session, to, now);
                }
            }
        }
    }

    fn drop_participant(&mut self, session: SessionId, pid: ParticipantId, now: Instant) {
        let is_person = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .is_some_and(|p| p.role.is_none());
        if is_person {
            self.end_session(session, "person gone");
        } else {
            self.depart(session, pid, now);
        }
    }

    fn resume(
        &mut self,
        conn: ConnId,
        token: &ResumeToken,
        received_up_to: u64,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let (session, pid) = *self
            .tokens
            .get(&token_hash(token))
            .ok_or(ErrorCode::ResumeFailed)?;
        let c = self.conns.get(&conn).ok_or(ErrorCode::NotAllowed)?;
        let s = self.sessions.get(&session).ok_or(ErrorCode::ResumeFailed)?;
        let p = s.participants.get(&pid).ok_or(ErrorCode::ResumeFailed)?;
        let allowed = match (&c.state, p.serial) {
            (ConnState::Fresh, None) => true,
            (ConnState::Person, None) => c.memberships.is_empty(),
            (ConnState::Staff { cert }, Some(serial)) => cert.serial == serial,
            _ => false,
        };
        if !allowed {
            return Err(ErrorCode::ResumeFailed);
        }
        // Detach a stale connection the relay has not yet seen drop.
        if let Some(old) = p.conn.filter(|old| *old != conn)
            && let Some(oc) = self.conns.get_mut(&old)
        {
            oc.memberships.remove(&(session, pid));
        }
        let stored = self
            .store
            .take_events(&session, pid)
            .map_err(|_| ErrorCode::ResumeFailed)?;
        let s = self.sessions.get_mut(&session).expect("checked above");
        // Whatever the person last saw may have been lost with the connection.
        s.last_status = None;
        let p = s.participants.get_mut(&pid).expect("checked above");
        let mut events: BTreeMap<u64, Bytes> = stored
            .into_iter()
            .map(|(q, b)| (q, Bytes::copy_from_slice(&b)))
            .collect();
        events.extend(p.unacked.drain(..));
        events.retain(|seq, _| *seq > received_up_to);
        p.conn = Some(conn);
        p.away_since = None;
        p.stored = 0;
        let accepted_up_to = p.accepted_up_to;
        let replay: Vec<Bytes> = events.values().cloned().collect();
        p.unacked = events.into_iter().collect();
        let c = self.conns.get_mut(&conn).expect("checked above");
        if p.role.is_none() {
            c.state = ConnState::Person;
        }
        c.memberships.insert((session, pid));
        self.send(
            conn,
            &RelayFrame::Resumed {
                session,
                you: pid,
                accepted_up_to,
            },
        );
        for bytes in replay {
            self.outputs.push(Output::Frame(conn, bytes));
        }
        let _ = now;
        tracing::info!(conn, "participant resumed");
        self.queues_dirty = true;
        Ok(())
    }

    /// A connection is gone. Its participants become "away": what they are sent is sealed
    /// into the store until they resume or their grace period ends.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        for (session, pid) in c.memberships {
            let Some(p) = self
                .sessions
                .get_mut(&session)
                .and_then(|s| s.participants.get_mut(&pid))
            else {
                continue;
            };
            if p.conn != Some(conn) {
                continue;
            }
            p.conn = None;
            p.away_since = Some(now);
            let pending: Vec<(u64, Bytes)> = p.unacked.drain(..).collect();
            p.stored += pending.len();
            for (seq, bytes) in pending {
                if let Err(e) = self.store.put_event(&session, pid, seq, &bytes) {
                    tracing::error!(error = %e, "store write failed");
                }
            }
            // A page that comes back joins the call again with a new peer connection.
            self.leave_call(session, pid, now);
        }
        self.queues_dirty = true;
    }

    /// Time passes: end abandoned and idle sessions, refresh queue views.
    pub fn tick(&mut self, now: Instant) {
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
            self.end_session(id, "idle");
        }
        for (session, pid) in gone {
            self.drop_participant(session, pid, now);
        }
        self.recently_ended
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < CLOSE_CASE_WINDOW);
        if now.saturating_duration_since(self.last_queue_push) >= QUEUE_REFRESH {
            self.queues_dirty = true;
        }
    }

    // ----- queue views ------------------------------------------------------------------

    fn speaks(&self, language: &Language) -> bool {
        self.conns.values().any(|c| {
            matches!(&c.state, ConnState::Staff { cert } if cert.role.joins_sessions() && cert.languages.contains(language))
        })
    }

    fn push_queues(&mut self) {
        self.queues_dirty = false;
        let now = Instant::now();
        self.last_queue_push = now;
        let mut waiting: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.waiting_since.is_some())
            .collect();
        waiting.sort_by_key(|s| s.waiting_since);

        let staff: Vec<(ConnId, &Certificate)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| match &c.state {
                ConnState::Staff { cert } => Some((*id, cert.as_ref())),
                _ => None,
            })
            .collect();

        let mut frames = Vec::new();
        let mut updated = Vec::new();
        let mut ahead: HashMap<(&DeskId, &Language), u32> = HashMap::new();
        for s in &waiting {
            let position = {
                let n = ahead.entry((&s.desk, &s.language)).or_insert(0);
                *n += 1;
                *n
            };
            let operators = staff
                .iter()
                .filter(|(_, c)| self.operator_eligible(c, s))
                .count();
            let available = operators > 0 && self.speaks(&s.language);
            let avg = self
                .avg_wait
                .get(&s.desk)
                .copied()
                .unwrap_or(DEFAULT_WAIT_SECS);
            let wait_secs = (f64::from(position) * avg / operators.max(1) as f64) as u32;
            let fallback = if available {
                Vec::new()
            } else {
                let mut numbers = self
                    .config
                    .desk(&s.desk)
                    .map(|d| d.fallback_numbers.clone())
                    .unwrap_or_default();
                for n in &self.config.national().fallback_numbers {
                    if !numbers.contains(n) {
                        numbers.push(n.clone());
                    }
                }
                numbers
            };
            let status = (position, wait_secs, fallback.is_empty());
            if let Some(conn) = s.participants.get(&ParticipantId(1)).and_then(|p| p.conn)
                && s.last_status != Some(status)
            {
                updated.push((s.id, status));
                frames.push((
                    conn,
                    RelayFrame::QueueStatus {
                        session: s.id,
                        position,
                        wait_secs,
                        fallback,
                    },
                ));
            }
        }
        for (conn, cert) in &staff {
            match cert.role {
                Role::Operator => {
                    let entries = waiting
                        .iter()
                        .filter(|s| self.operator_eligible(cert, s))
                        .map(|s| QueueEntry {
                            session: s.id,
                            language: s.language.clone(),
                            desk: s.desk.clone(),
                            waiting_secs: secs_since(s.waiting_since, now),
                        })
                        .collect();
                    let entries: Vec<QueueEntry> = entries;
                    let total = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                    frames.push((*conn, RelayFrame::Queue { entries, total }));
                }
                Role::Interpreter => {
                    let mut entries: Vec<Invitation> = self
                        .sessions
                        .values()
                        .flat_map(|s| {
                            s.invitations
                                .iter()
                                .filter(|(l, _)| cert.languages.contains(l))
                                .map(|(l, at)| Invitation {
                                    session: s.id,
                                    language: l.clone(),
                                    desk: s.desk.clone(),
                                    waiting_secs: secs_since(Some(*at), now),
                                })
                        })
                        .collect();
                    entries.sort_by_key(|e| std::cmp::Reverse(e.waiting_secs));
                    let total = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                    frames.push((*conn, RelayFrame::Invitations { entries, total }));
                }
                Role::Coordinator => {}
            }
        }
        for (conn, frame) in frames {
            self.send(conn, &frame);
        }
        for (id, status) in updated {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_status = Some(status);
            }
        }
    }
}

fn secs_since(t: Option<Instant>, now: Instant) -> u32 {
    t.map(|t| {
        now.saturating_duration_since(t)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32
    })
    .unwrap_or(0)
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
            stored: 0,
            accepted_up_to: 0,
            call: None,
        }
    }
}
