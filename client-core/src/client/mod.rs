//! The sans-IO client: one state machine for the person, an operator or an interpreter.
//!
//! Feed it what the relay sent with [`Client::handle_bytes`] (and the current time), call
//! its actions (`open_session`, `send_text`, …), call [`Client::handle_timeout`] about once a
//! second, then drain [`Client::poll_transmit`] for frames to send and
//! [`Client::poll_event`] for what to show. After a dropped connection, call
//! [`Client::reconnected`] on the new one: it resumes every session, resends what the relay
//! had not yet accepted and skips what was already received, so each message arrives
//! exactly once, in order.
//!
//! The relay is not trusted with membership. Every member confirms to every other, over
//! their end-to-end channels, the roster it sees (`roster`); nothing but handshakes and
//! those confirmations reaches a newcomer until everyone agrees on a roster including them.
//! A session has exactly one anonymous participant, number 1, who opened it. A channel that
//! loses a message is replaced by a new handshake and both sides are told (`channels`).
//!
//! The parts, by concern:
//! * `session` — per-session state and the outbox (how `Send` frames are cut);
//! * `channels` — arrivals, handshakes, restarts, and what arrives on a channel;
//! * `roster` — roster digests, confirmations, admission, alarms, the safety code;
//! * `calls` — call membership and frame keys;
//! * `event` — what the user interface is told.

mod calls;
mod channels;
mod event;
mod roster;
mod session;

use std::collections::VecDeque;

use zeroize::Zeroizing;

pub use event::{Alarm, Event};
use session::{PeerState, Session};

use crate::PROTOCOL_VERSION;
use crate::content::{Content, seal_plaintext};
use crate::credential::StaffCredential;
use crate::error::Error;
use crate::identity::{OrgPublicKey, RevocationList, Role, SignedRevocationList};
use crate::ids::{DeskId, Language, ParticipantId, ResumeToken, SessionId};
use crate::limits::{MAX_BACKLOG_MESSAGES, MAX_TEXT_LEN};
use crate::noise::Channel;
use crate::observatory::{ObservatoryRecord, Seeker};
use crate::safety::SafetyCode;
use crate::wire::{self, ClientFrame, ErrorCode, RelayFrame, SessionEvent};

/// How long the members of a session may take to confirm a newcomer in the roster before
/// the client raises [`Alarm::RosterUnconfirmed`]. Honest confirmations take a few round
/// trips; this is longer than the relay's default resume grace (120 s), so a member who is
/// briefly away and resumes (or leaves for good) raises no alarm. Nothing reaches the
/// newcomer meanwhile, whatever this value.
pub const ROSTER_CONFIRM_TIMEOUT_SECS: u64 = 150;

/// How long two members may see the same participants with different channel hashes,
/// roles or serials before it is an alarm: just after a channel is re-established one end
/// reports its new hash before the other.
pub const ROSTER_MISMATCH_GRACE_SECS: u64 = 10;

/// The shortest time between two restarts of the same channel: a relay that forges
/// `Restart` or breaks a channel over and over gets at most one new handshake per interval.
pub const RESTART_MIN_INTERVAL_SECS: u64 = 5;

/// How often an idle client should ping; the relay closes connections idle for 75 s.
pub const PING_INTERVAL_SECS: u64 = 20;

/// Who this client is.
enum Identity {
    Person,
    Staff(Box<StaffCredential>),
}

/// Staff login progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Login {
    Idle,
    HelloSent,
    Ready,
}

/// One client's whole protocol state. See the module documentation.
pub struct Client {
    org: OrgPublicKey,
    identity: Identity,
    revoked: RevocationList,
    login: Login,
    sessions: std::collections::BTreeMap<SessionId, Session>,
    out: VecDeque<ClientFrame>,
    events: VecDeque<Event>,
    now_unix: u64,
    /// The person's answer to "who needs help?", told to each operator of the intended
    /// desk once the roster including them is agreed.
    intake: Option<Seeker>,
    /// The national desk, whose operators may take any regional case (person only).
    national_desk: Option<DeskId>,
    /// The person's last `OpenSession`, sent again after a proof of work.
    opening: Option<(Language, Option<DeskId>)>,
    /// Proofs of work still to be answered for this opening: a relay asking again and
    /// again cannot keep a phone busy.
    proofs_left: u8,
    /// Sessions that ended while this operator was in them and still await their
    /// observatory record (the person often leaves first). Newest last, bounded.
    closable: VecDeque<SessionId>,
}

/// How many proofs of work the client computes for one `OpenSession` before it gives up
/// and tells the person the service is busy.
const MAX_PROOFS_PER_OPENING: u8 = 3;

/// How many ended sessions an operator may still file a record for.
const MAX_CLOSABLE: usize = 32;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the anonymous person, pinning the organisation key.
    pub fn person(org: OrgPublicKey) -> Self {
        Self::new(org, Identity::Person)
    }

    /// A client for a staff member.
    pub fn staff(org: OrgPublicKey, credential: StaffCredential) -> Self {
        Self::new(org, Identity::Staff(Box::new(credential)))
    }

    fn new(org: OrgPublicKey, identity: Identity) -> Self {
        Client {
            org,
            identity,
            revoked: RevocationList::default(),
            login: Login::Idle,
            sessions: Default::default(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            now_unix: 0,
            intake: None,
            national_desk: None,
            opening: None,
            proofs_left: 0,
            closable: VecDeque::new(),
        }
    }

    /// The staff role, or `None` for the person.
    pub fn role(&self) -> Option<Role> {
        match &self.identity {
            Identity::Person => None,
            Identity::Staff(c) => Some(c.info.role),
        }
    }

    /// Sessions this client takes part in.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }

    /// The next frame to send, encoded. Acknowledgements for processed events come last.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        // The outbox only builds frames within the limits (`session::push_send`); a frame
        // that would not encode is a bug and is dropped rather than sent or panicked on.
        while let Some(frame) = self.poll_frame() {
            if let Ok(bytes) = wire::encode(&frame) {
                return Some(bytes);
            }
            debug_assert!(false, "the client built a frame over the limits");
        }
        None
    }

    /// The next frame to send, as a value (for tests and in-process drivers).
    pub fn poll_frame(&mut self) -> Option<ClientFrame> {
        if let Some(f) = self.out.pop_front() {
            return Some(f);
        }
        // Acknowledgements are cumulative: one per session for everything processed so far.
        for s in self.sessions.values_mut() {
            if s.received_up_to > s.acked_up_to {
                s.acked_up_to = s.received_up_to;
                return Some(ClientFrame::Ack {
                    session: s.id,
                    up_to: s.received_up_to,
                });
            }
        }
        None
    }

    /// Time passes (call about once a second): raises [`Alarm::RosterUnconfirmed`] for a
    /// participant the members have not confirmed within [`ROSTER_CONFIRM_TIMEOUT_SECS`], and
    /// [`Alarm::RosterMismatch`] for a disagreement that outlasts
    /// [`ROSTER_MISMATCH_GRACE_SECS`]. `now_unix` is wall-clock seconds.
    pub fn handle_timeout(&mut self, now_unix: u64) {
        self.now_unix = self.now_unix.max(now_unix);
        let sessions: Vec<SessionId> = self.sessions.keys().copied().collect();
        for session in sessions {
            self.roster_timeouts(session);
        }
    }

    /// The next event for the user interface.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- actions -------------------------------------------------------------------

    /// The person's client learns which desk is the national one (from the organisation's
    /// configuration the page pins): its operators may take any regional case, so the
    /// person's first words and intake may go to them. Without it, any certified operator
    /// of the chosen region — or, with no region, any certified operator — may receive them.
    pub fn set_national_desk(&mut self, desk: DeskId) {
        self.national_desk = Some(desk);
    }

    /// The person asks for a conversation.
    pub fn open_session(
        &mut self,
        language: Language,
        region: Option<DeskId>,
    ) -> Result<(), Error> {
        if !matches!(self.identity, Identity::Person) {
            return Err(Error::State("only the person opens sessions"));
        }
        self.opening = Some((language.clone(), region.clone()));
        self.proofs_left = MAX_PROOFS_PER_OPENING;
        self.out.push_back(ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language,
            region,
        });
        Ok(())
    }

    /// The person's page was reloaded: take the session back with the resume token the tab
    /// kept, with fresh end-to-end channels (the old keys went with the old page). Staff are
    /// told the person reconnected with new keys; the safety code changes.
    pub fn rejoin(&mut self, session: SessionId, token: ResumeToken) -> Result<(), Error> {
        if !matches!(self.identity, Identity::Person) || !self.sessions.is_empty() {
            return Err(Error::State("only a fresh person's client rejoins"));
        }
        let mut s = Session::new(session, channels::PERSON_ID, token.clone());
        s.rejoining = true;
        s.intact = false;
        self.sessions.insert(session, s);
        self.out.push_back(ClientFrame::Rejoin {
            version: PROTOCOL_VERSION,
            token,
        });
        Ok(())
    }

    /// The token that takes this session back after a reload (the page keeps it in the
    /// tab only while it is being reloaded). It changes at every resume.
    pub fn resume_token(&self, session: &SessionId) -> Option<ResumeToken> {
        self.sessions.get(session).map(|s| s.token.clone())
    }

    /// A staff member starts the login.
    pub fn login(&mut self) -> Result<(), Error> {
        let Identity::Staff(cred) = &self.identity else {
            return Err(Error::State("the person does not log in"));
        };
        self.out.push_back(ClientFrame::StaffHello {
            version: PROTOCOL_VERSION,
            certificate: cred.certificate.clone(),
        });
        self.login = Login::HelloSent;
        Ok(())
    }

    /// Queue a keep-alive for the relay (call every [`PING_INTERVAL_SECS`] when idle).
    pub fn ping(&mut self) {
        self.out.push_back(ClientFrame::Ping);
    }

    /// After a new connection replaces a dropped one: log in again (staff) and resume
    /// every session.
    pub fn reconnected(&mut self) -> Result<(), Error> {
        self.out.clear();
        match self.identity {
            Identity::Person => self.queue_resumes(),
            Identity::Staff(_) => self.login()?,
        }
        Ok(())
    }

    fn queue_resumes(&mut self) {
        for s in self.sessions.values() {
            let frame = if s.rejoining {
                // Not yet taken back: ask again, still without the old keys.
                ClientFrame::Rejoin {
                    version: PROTOCOL_VERSION,
                    token: s.token.clone(),
                }
            } else {
                ClientFrame::Resume {
                    version: PROTOCOL_VERSION,
                    token: s.token.clone(),
                    received_up_to: s.received_up_to,
                }
            };
            self.out.push_back(frame);
        }
    }

    /// An operator accepts a waiting session.
    pub fn accept(&mut self, session: SessionId) -> Result<(), Error> {
        self.require_role(Role::Operator)?;
        self.out.push_back(ClientFrame::Accept { session });
        Ok(())
    }

    /// An operator asks for an interpreter.
    pub fn invite(&mut self, session: SessionId, language: Language) -> Result<(), Error> {
        self.require_role(Role::Operator)?;
        self.out
            .push_back(ClientFrame::Invite { session, language });
        Ok(())
    }

    /// An interpreter takes an invitation.
    pub fn join(&mut self, session: SessionId) -> Result<(), Error> {
        self.require_role(Role::Interpreter)?;
        self.out.push_back(ClientFrame::Join { session });
        Ok(())
    }

    /// Leave a session that goes on without us (staff).
    pub fn leave(&mut self, session: SessionId) -> Result<(), Error> {
        if self.role().is_none() {
            return self.end(session);
        }
        self.out.push_back(ClientFrame::Leave { session });
        self.forget(session);
        Ok(())
    }

    /// End the session for everyone: the operator hangs up, or the person exits.
    pub fn end(&mut self, session: SessionId) -> Result<(), Error> {
        self.out.push_back(ClientFrame::End { session });
        self.forget(session);
        Ok(())
    }

    fn require_role(&self, role: Role) -> Result<(), Error> {
        if self.role() != Some(role) || self.login != Login::Ready {
            return Err(Error::State("not allowed for this role or before login"));
        }
        Ok(())
    }

    /// The person says who is asking; operators of the intended desk receive it end-to-end
    /// once the roster including them is agreed.
    pub fn set_intake(&mut self, seeker: Seeker) -> Result<(), Error> {
        if self.role().is_some() {
            return Err(Error::State("only the person answers the intake"));
        }
        self.intake = Some(seeker);
        Ok(())
    }

    /// An operator transfers the case to another desk. The person is told (end-to-end);
    /// the operator stays in the session until a colleague of that desk is confirmed in
    /// the roster, sends them `note` end-to-end, then leaves.
    pub fn transfer(&mut self, session: SessionId, desk: DeskId, note: &str) -> Result<(), Error> {
        self.require_role(Role::Operator)?;
        if note.len() > MAX_TEXT_LEN {
            return Err(Error::Invalid("note too long"));
        }
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(Error::State("unknown session"))?;
        s.handover = Some((desk.clone(), Zeroizing::new(note.to_owned())));
        let person = s
            .peers
            .iter()
            .find(|(_, p)| p.is_person())
            .map(|(id, _)| *id);
        self.out.push_back(ClientFrame::Transfer {
            session,
            desk: desk.clone(),
        });
        if let Some(person) = person {
            // The person may be unreachable (already gone): the transfer goes on.
            let _ = self.send_content(session, Some(person), &Content::Transferred { desk }, 0);
        }
        Ok(())
    }

    /// An operator closes the case with its observatory record; the session ends. Also
    /// works for a session that already ended (the person left first), for an hour.
    pub fn close_case(
        &mut self,
        session: SessionId,
        record: ObservatoryRecord,
    ) -> Result<(), Error> {
        self.require_role(Role::Operator)?;
        let ended = self.closable.iter().position(|s| *s == session);
        if !self.sessions.contains_key(&session) && ended.is_none() {
            return Err(Error::State("unknown session"));
        }
        if let Some(i) = ended {
            self.closable.remove(i);
        }
        self.out
            .push_back(ClientFrame::CloseCase { session, record });
        self.forget(session);
        Ok(())
    }

    /// A coordinator asks for the observatory's tables ([`Event::ObservatoryTables`]).
    pub fn query_observatory(&mut self) -> Result<(), Error> {
        self.require_role(Role::Coordinator)?;
        self.out.push_back(ClientFrame::ObservatoryQuery);
        Ok(())
    }

    /// Send a chat message to everyone in the session. While nobody has answered yet, the
    /// person's words are kept (at most [`MAX_BACKLOG_MESSAGES`]) for the first operator of
    /// the intended desk; beyond that this fails and [`Event::BacklogFull`] says so.
    pub fn send_text(&mut self, session: SessionId, body: &str) -> Result<(), Error> {
        self.send_content(
            session,
            None,
            &Content::Text {
                body: body.to_owned(),
                private: false,
            },
            body.len(),
        )
    }

    /// The person signals, silently, that they cannot talk freely now: staff see it at
    /// once; the relay sees an ordinary short message.
    pub fn signal_not_safe(&mut self, session: SessionId) -> Result<(), Error> {
        if self.role().is_some() {
            return Err(Error::State("only the person signals"));
        }
        self.send_content(session, None, &Content::NotSafe, 0)
    }

    /// Send a chat message to one colleague only (staff side-conversation).
    pub fn send_private(
        &mut self,
        session: SessionId,
        to: ParticipantId,
        body: &str,
    ) -> Result<(), Error> {
        if self.role().is_none() {
            return Err(Error::State("private messages are between staff"));
        }
        let s = self
            .sessions
            .get(&session)
            .ok_or(Error::State("unknown session"))?;
        let peer = s
            .peers
            .get(&to)
            .ok_or(Error::State("unknown participant"))?;
        if peer.announced_role.is_none() {
            return Err(Error::State("private messages are between staff"));
        }
        self.send_content(
            session,
            Some(to),
            &Content::Text {
                body: body.to_owned(),
                private: true,
            },
            body.len(),
        )
    }

    /// Encrypt `content` for every admitted member (or only `only`); a member not yet
    /// confirmed in the roster gets it once they are. With nobody there at all, the
    /// person's words wait in the backlog.
    fn send_content(
        &mut self,
        session: SessionId,
        only: Option<ParticipantId>,
        content: &Content,
        text_len: usize,
    ) -> Result<(), Error> {
        if text_len > MAX_TEXT_LEN {
            return Err(Error::Invalid("message too long"));
        }
        let plain = seal_plaintext(content)?;
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(Error::State("unknown session"))?;
        let mut envelopes = Vec::new();
        let mut reachable = false;
        for (id, peer) in s.peers.iter_mut() {
            if only.is_some_and(|o| o != *id) {
                continue;
            }
            match &mut peer.state {
                PeerState::Failed => {}
                PeerState::Ready(ch) if peer.admitted => {
                    envelopes.push(session::envelope(ch, *id, &plain)?);
                    reachable = true;
                }
                _ => {
                    peer.hold(plain.clone());
                    reachable = true;
                }
            }
        }
        if !reachable {
            if only.is_some() {
                return Err(Error::State("that participant cannot be reached"));
            }
            if s.backlog.len() >= MAX_BACKLOG_MESSAGES {
                self.events.push_back(Event::BacklogFull { session });
                return Err(Error::State("backlog full"));
            }
            s.backlog.push(plain);
        }
        s.push_send(&mut self.out, envelopes);
        Ok(())
    }

    // ----- input ---------------------------------------------------------------------

    /// Process one frame received from the relay. `now_unix` is the wall-clock time in
    /// seconds, used to check certificate expiry and roster timeouts.
    pub fn handle_bytes(&mut self, bytes: &[u8], now_unix: u64) -> Result<(), Error> {
        let frame: RelayFrame = wire::decode(bytes)?;
        self.handle_frame(frame, now_unix)
    }

    /// Process one decoded frame from the relay.
    pub fn handle_frame(&mut self, frame: RelayFrame, now_unix: u64) -> Result<(), Error> {
        self.now_unix = self.now_unix.max(now_unix);
        match frame {
            RelayFrame::SessionOpened {
                session,
                you,
                token,
                revocations,
            } => {
                self.take_revocations(&revocations);
                let intended = self.opening.take().and_then(|(_, region)| region);
                let mut s = Session::new(session, you, token);
                s.intended_desk = intended;
                self.sessions.insert(session, s);
                self.events.push_back(Event::SessionOpened { session });
            }
            RelayFrame::QueueStatus {
                session,
                position,
                wait_secs,
                fallback,
                outlook,
            } => {
                self.events.push_back(Event::QueueStatus {
                    session,
                    position,
                    wait_secs,
                    fallback,
                    outlook,
                });
            }
            RelayFrame::Challenge { nonce } => {
                let Identity::Staff(cred) = &self.identity else {
                    return Err(Error::State("challenge to the person"));
                };
                if self.login != Login::HelloSent {
                    return Err(Error::State("unexpected challenge"));
                }
                let signature = cred.signing.answer_challenge(&nonce);
                self.out.push_back(ClientFrame::StaffProof { signature });
            }
            RelayFrame::StaffReady { revocations } => {
                self.take_revocations(&revocations);
                self.login = Login::Ready;
                self.events.push_back(Event::LoggedIn);
                self.queue_resumes();
            }
            RelayFrame::Queue { entries, total } => {
                self.events.push_back(Event::Queue { entries, total })
            }
            RelayFrame::Invitations { entries, total } => {
                self.events.push_back(Event::Invitations { entries, total })
            }
            RelayFrame::ProofRequired { seed, difficulty } => {
                self.answer_proof(&seed, difficulty);
            }
            RelayFrame::NewToken { session, token } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.token = token;
                }
            }
            RelayFrame::Joined {
                session,
                you,
                token,
            } => {
                self.sessions
                    .insert(session, Session::new(session, you, token));
                self.events.push_back(Event::Joined { session });
            }
            RelayFrame::Resumed {
                session,
                accepted_up_to,
                you,
            } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    if std::mem::take(&mut s.rejoining) {
                        // A new page: number its sends after what the relay already holds.
                        s.next_seq = accepted_up_to.saturating_add(1);
                        s.me = you;
                    }
                    s.unaccepted.retain(|f| session::seq_of(f) > accepted_up_to);
                    self.out.extend(s.unaccepted.iter().cloned());
                    let intact = std::mem::replace(&mut s.intact, true);
                    self.events.push_back(Event::Resumed { session, intact });
                }
            }
            RelayFrame::Accepted { session, up_to } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    while s
                        .unaccepted
                        .front()
                        .is_some_and(|f| session::seq_of(f) <= up_to)
                    {
                        s.unaccepted.pop_front();
                    }
                }
            }
            RelayFrame::Event {
                session,
                seq,
                event,
            } => self.handle_event(session, seq, event)?,
            RelayFrame::Error { code } => {
                if code == ErrorCode::AuthFailed {
                    self.login = Login::Idle;
                }
                // Whatever was in flight may not have arrived: no page may say "nothing lost".
                for s in self.sessions.values_mut() {
                    s.intact = false;
                }
                self.events.push_back(Event::RelayError { code });
            }
            RelayFrame::Pong => {}
            // Individual records are never for a client; only an old relay sends them.
            RelayFrame::Observatory { .. } => {}
            RelayFrame::ObservatoryTables { tables } => {
                self.events.push_back(Event::ObservatoryTables { tables })
            }
            RelayFrame::CallAnswer { session, sdp } => {
                if self.sessions.contains_key(&session) {
                    self.events.push_back(Event::CallAnswer { session, sdp });
                }
            }
            RelayFrame::Turn { session, answer } => self.turn_answer(session, answer),
        }
        Ok(())
    }

    /// Answer the relay's proof-of-work request and ask for the session again. A relay
    /// asking more than [`crate::limits::MAX_POW_DIFFICULTY`] is told nothing: the page says
    /// the service is busy.
    fn answer_proof(&mut self, seed: &[u8; 32], difficulty: u8) {
        let Some((language, region)) = self.opening.clone() else {
            return;
        };
        if self.proofs_left == 0 {
            self.events.push_back(Event::RelayError {
                code: ErrorCode::Busy,
            });
            return;
        }
        self.proofs_left -= 1;
        match crate::pow::solve(seed, difficulty) {
            Some(nonce) => {
                self.out
                    .push_back(ClientFrame::ProofOfWork { seed: *seed, nonce });
                self.out.push_back(ClientFrame::OpenSession {
                    version: PROTOCOL_VERSION,
                    language,
                    region,
                });
            }
            None => self.events.push_back(Event::RelayError {
                code: ErrorCode::Busy,
            }),
        }
    }

    /// Pin a revocation list the client got by other means (shipped with the page, say),
    /// so a relay serving an older one cannot bring a revoked certificate back.
    pub fn add_revocations(&mut self, signed: &SignedRevocationList) -> Result<(), Error> {
        self.org.open_revocations(signed)?;
        self.take_revocations(signed);
        Ok(())
    }

    fn take_revocations(&mut self, signed: &SignedRevocationList) {
        // A list that does not verify is ignored: we keep the newest one we could check,
        // and a list of the same age cannot replace the one held (a relay could otherwise
        // swap in another list signed in the same second).
        if let Ok(list) = self.org.open_revocations(signed)
            && list.issued_at > self.revoked.issued_at
        {
            self.revoked = list;
        }
    }

    fn handle_event(
        &mut self,
        session: SessionId,
        seq: u64,
        event: SessionEvent,
    ) -> Result<(), Error> {
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(()); // an event for a session we already left
        };
        if seq <= s.received_up_to {
            return Ok(()); // a replay after resume: already processed once
        }
        s.received_up_to = seq;
        match event {
            SessionEvent::Arrived { id, role } => self.peer_arrived(session, id, role)?,
            SessionEvent::Departed { id } => {
                self.call_changed(session, id, false)?;
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.peers.remove(&id);
                    s.gone.insert(id);
                    s.safety.forget(id);
                }
                self.events.push_back(Event::PeerLeft { session, peer: id });
                self.roster_changed(session)?;
            }
            SessionEvent::Message { from, payload } => self.peer_payload(session, from, payload)?,
            SessionEvent::Call { id, joined } => self.call_changed(session, id, joined)?,
            SessionEvent::Ended => {
                if self.role() == Some(Role::Operator) {
                    if self.closable.len() >= MAX_CLOSABLE {
                        self.closable.pop_front();
                    }
                    self.closable.push_back(session);
                }
                self.forget(session);
                self.events.push_back(Event::SessionEnded { session });
            }
        }
        Ok(())
    }

    fn forget(&mut self, session: SessionId) {
        self.sessions.remove(&session);
    }

    /// The current safety code of a session.
    pub fn safety_code(&self, session: &SessionId) -> Option<SafetyCode> {
        self.sessions.get(session).and_then(|s| s.last_code.clone())
    }

    /// Test hook: the channel to a peer, to exercise nonce limits and rekeying.
    #[doc(hidden)]
    pub fn channel_for_tests(
        &mut self,
        session: &SessionId,
        peer: ParticipantId,
    ) -> Option<&mut Channel> {
        match &mut self.sessions.get_mut(session)?.peers.get_mut(&peer)?.state {
            PeerState::Ready(ch) => Some(ch),
            _ => None,
        }
    }
}
