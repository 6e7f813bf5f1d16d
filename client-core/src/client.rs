//! The sans-IO client: one state machine for the person, an operator or an interpreter.
//!
//! Feed it what the relay sent with [`Client::handle_bytes`] (and the current time), call
//! its actions (`open_session`, `send_text`, …), then drain [`Client::poll_transmit`] for
//! frames to send and [`Client::poll_event`] for what to show. After a dropped connection,
//! call [`Client::reconnected`] on the new one: it resumes every session, resends what the
//! relay had not yet accepted and skips what was already received, so each message arrives
//! exactly once, in order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use zeroize::Zeroizing;

use crate::PROTOCOL_VERSION;
use crate::content::{Content, open_plaintext, seal_plaintext};
use crate::credential::StaffCredential;
use crate::error::Error;
use crate::identity::{OrgPublicKey, RevocationList, Role, SignedRevocationList};
use crate::ids::{DeskId, Language, ParticipantId, ResumeToken, SessionId, fill_random};
use crate::limits::{MAX_PARTICIPANTS, MAX_SDP_LEN, MAX_TEXT_LEN};
use crate::noise::{CertPolicy, Channel, Handshake, HandshakeKind, prologue};
use crate::observatory::{ObservatoryRecord, Seeker, StoredRecord};
use crate::safety::{SafetyBook, SafetyCode};
use crate::wire::{
    self, ClientFrame, Envelope, ErrorCode, Invitation, Payload, QueueEntry, RelayFrame,
    SessionEvent,
};

/// How long the members of a session may take to confirm a newcomer in the roster before
/// the client raises [`Alarm::RosterUnconfirmed`]. Honest confirmations take a few round
/// trips; this allows for a member who is briefly away and resumes.
pub const ROSTER_CONFIRM_TIMEOUT_SECS: u64 = 30;

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

/// Something for the user interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The person's session exists and waits in the queue.
    SessionOpened {
        /// The session.
        session: SessionId,
    },
    /// The person's place in the queue; `fallback` is non-empty when nobody is online.
    QueueStatus {
        /// The session.
        session: SessionId,
        /// 1 for next.
        position: u32,
        /// Estimated wait in seconds.
        wait_secs: u32,
        /// Phone numbers to call.
        fallback: Vec<String>,
    },
    /// Staff login succeeded.
    LoggedIn,
    /// The operator's queue changed.
    Queue {
        /// Oldest first, at most [`crate::limits::MAX_QUEUE_ENTRIES`].
        entries: Vec<QueueEntry>,
        /// How many wait in all.
        total: u32,
    },
    /// The interpreter's invitations changed.
    Invitations {
        /// Oldest first, at most [`crate::limits::MAX_QUEUE_ENTRIES`].
        entries: Vec<Invitation>,
        /// How many are open in all.
        total: u32,
    },
    /// This staff member is now in `session`.
    Joined {
        /// The session.
        session: SessionId,
    },
    /// A participant arrived (not yet verified).
    PeerArrived {
        /// The session.
        session: SessionId,
        /// Who.
        peer: ParticipantId,
    },
    /// The channel to a participant is up and, for staff, their certificate checked.
    PeerVerified {
        /// The session.
        session: SessionId,
        /// Who.
        peer: ParticipantId,
        /// Their certified role; `None` is the person.
        role: Option<Role>,
        /// Their certified label; `None` for the person.
        label: Option<String>,
    },
    /// The channel to a participant failed; nothing was or will be sent to them.
    PeerRejected {
        /// The session.
        session: SessionId,
        /// Who.
        peer: ParticipantId,
        /// Why (local only; never sent).
        reason: Error,
    },
    /// A participant left.
    PeerLeft {
        /// The session.
        session: SessionId,
        /// Who.
        peer: ParticipantId,
    },
    /// A chat message.
    Message {
        /// The session.
        session: SessionId,
        /// The sender.
        from: ParticipantId,
        /// The words; wiped when the event is dropped.
        body: Zeroizing<String>,
        /// A staff side-conversation.
        private: bool,
    },
    /// The safety code changed.
    SafetyCode {
        /// The session.
        session: SessionId,
        /// The new state.
        code: SafetyCode,
    },
    /// A message could not be decrypted and was dropped; the channel carries on.
    Undecryptable {
        /// The session.
        session: SessionId,
        /// The claimed sender.
        peer: ParticipantId,
    },
    /// A resume succeeded.
    Resumed {
        /// The session.
        session: SessionId,
    },
    /// The session ended; everything about it is forgotten.
    SessionEnded {
        /// The session.
        session: SessionId,
    },
    /// The relay refused something.
    RelayError {
        /// Its code.
        code: ErrorCode,
    },
    /// The person said who is asking (staff only see this).
    Intake {
        /// The session.
        session: SessionId,
        /// The person's participant number.
        from: ParticipantId,
        /// Who is asking.
        seeker: Seeker,
    },
    /// The previous operator's note on a transferred case.
    HandoverNote {
        /// The session.
        session: SessionId,
        /// The previous operator.
        from: ParticipantId,
        /// The desk the case was transferred to.
        desk: DeskId,
        /// The note; wiped when the event is dropped.
        body: Zeroizing<String>,
    },
    /// The observatory records (coordinators).
    Observatory {
        /// The records.
        records: Vec<StoredRecord>,
    },
    /// The session's membership cannot be trusted: show it on screen.
    MembershipAlarm {
        /// The session.
        session: SessionId,
        /// What is wrong.
        alarm: Alarm,
    },
    /// Every member confirmed the same roster: content now reaches all of them, newcomers
    /// included.
    RosterAgreed {
        /// The session.
        session: SessionId,
        /// Everyone in it, this client included, sorted.
        members: Vec<ParticipantId>,
    },
    /// The channel with a participant broke (a message went missing or did not decrypt) and
    /// is being replaced by a new handshake; messages between may be lost, and the safety
    /// code changes.
    ChannelRestarted {
        /// The session.
        session: SessionId,
        /// The participant.
        peer: ParticipantId,
    },
    /// The person wrote as many messages as are kept while nobody has answered yet; this
    /// one was not kept.
    BacklogFull {
        /// The session.
        session: SessionId,
    },
    /// An operator announced that the case passes to another desk.
    Transferred {
        /// The session.
        session: SessionId,
        /// The desk taking over.
        desk: DeskId,
    },
    /// The relay's SDP answer to [`Client::join_call`].
    CallAnswer {
        /// The session.
        session: SessionId,
        /// The SDP.
        sdp: String,
    },
    /// Who is in the session's call now (this client included when it is in).
    CallMembers {
        /// The session.
        session: SessionId,
        /// The members, by number.
        members: Vec<ParticipantId>,
    },
    /// A frame key: this client's own when `participant` is its own number (encrypt with
    /// it), otherwise that participant's (decrypt their frames with it).
    MediaKey {
        /// The session.
        session: SessionId,
        /// Whose key; taken from the Noise channel it arrived on, never from the relay.
        participant: ParticipantId,
        /// Counts that participant's keys.
        epoch: u32,
        /// This client's own key (encrypt with it), the page not knowing its number.
        own: bool,
        /// SFrame base key; wiped when the event is dropped.
        key: Zeroizing<[u8; 16]>,
    },
}

/// Why a session's membership cannot be trusted right now. Every one of these is shown
/// on the screen of whoever sees it: it means the relay (or someone with its keys) is
/// announcing participants the members do not agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alarm {
    /// The relay announced a second anonymous participant. A session has exactly one: the
    /// person who opened it. The newcomer is refused and sent nothing.
    SecondPerson {
        /// The refused arrival.
        peer: ParticipantId,
    },
    /// A member confirmed a different roster from ours: the relay shows members different
    /// sessions.
    RosterMismatch {
        /// The member whose roster differs.
        peer: ParticipantId,
    },
    /// A member spoke of a participant we were never told about.
    UnknownMember {
        /// The member who mentioned them.
        peer: ParticipantId,
        /// The participant we do not know.
        unknown: ParticipantId,
    },
    /// A newcomer was not confirmed by every member in time; nothing was sent to them.
    RosterUnconfirmed {
        /// The newcomer.
        peer: ParticipantId,
    },
}

enum PeerState {
    /// Present; waiting for the other side to start the handshake.
    Waiting,
    Handshaking(Box<Handshake>),
    Ready(Box<Channel>),
    Failed,
}

struct Peer {
    /// The role the relay announced: only used to pick the handshake, never shown as proof.
    announced_role: Option<Role>,
    state: PeerState,
    /// Plaintexts addressed to this peer before its channel was ready.
    pending: Vec<Zeroizing<Vec<u8>>>,
}

struct Session {
    id: SessionId,
    me: ParticipantId,
    token: ResumeToken,
    /// Highest event sequence number processed.
    received_up_to: u64,
    /// Highest event sequence number acknowledged to the relay.
    acked_up_to: u64,
    /// Next `Send` sequence number.
    next_seq: u64,
    /// `Send` frames the relay has not confirmed, for resending after a drop.
    unaccepted: VecDeque<ClientFrame>,
    peers: BTreeMap<ParticipantId, Peer>,
    safety: SafetyBook,
    last_code: Option<SafetyCode>,
    /// The person's words written while nobody was there yet; delivered to the first
    /// verified staff member.
    backlog: Vec<Zeroizing<Vec<u8>>>,
    /// A transfer in progress: the note for the operator who takes the case.
    handover: Option<(DeskId, Zeroizing<String>)>,
    /// Who is in the session's call, as the relay announced it.
    call: BTreeSet<ParticipantId>,
    /// The epoch of this client's latest frame key.
    media_epoch: u32,
}

/// One client's whole protocol state. See the module documentation.
pub struct Client {
    org: OrgPublicKey,
    identity: Identity,
    revoked: RevocationList,
    login: Login,
    sessions: BTreeMap<SessionId, Session>,
    out: VecDeque<ClientFrame>,
    events: VecDeque<Event>,
    now_unix: u64,
    /// The person's answer to "who needs help?", told to each staff member.
    intake: Option<Seeker>,
    /// Sessions that ended while this operator was in them and still await their
    /// observatory record (the person often leaves first). Newest last, bounded.
    closable: VecDeque<SessionId>,
}

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
            sessions: BTreeMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            now_unix: 0,
            intake: None,
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
        self.poll_frame()
            .map(|f| wire::encode(&f).expect("the client only builds frames within limits"))
    }

    /// The next frame to send, as a value (for tests and in-process drivers).
    pub fn poll_frame(&mut self) -> Option<ClientFrame> {
        if let Some(f) = self.out.pop_front() {
            return Some(f);
        }
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

    /// Time passes (call about once a second, and whenever convenient): a newcomer whose
    /// membership the others have not confirmed within [`ROSTER_CONFIRM_TIMEOUT_SECS`]
    /// raises [`Alarm::RosterUnconfirmed`]. `now_unix` is wall-clock seconds.
    pub fn handle_timeout(&mut self, now_unix: u64) {
        self.now_unix = self.now_unix.max(now_unix);
    }

    /// The next event for the user interface.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- actions -------------------------------------------------------------------

    /// The person asks for a conversation.
    pub fn open_session(
        &mut self,
        language: Language,
        region: Option<DeskId>,
    ) -> Result<(), Error> {
        if !matches!(self.identity, Identity::Person) {
            return Err(Error::State("only the person opens sessions"));
        }
        self.out.push_back(ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language,
            region,
        });
        Ok(())
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
            self.out.push_back(ClientFrame::Resume {
                version: PROTOCOL_VERSION,
                token: s.token.clone(),
                received_up_to: s.received_up_to,
            });
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

    /// The person says who is asking; staff receive it end-to-end as soon as they are verified.
    pub fn set_intake(&mut self, seeker: Seeker) -> Result<(), Error> {
        if self.role().is_some() {
            return Err(Error::State("only the person answers the intake"));
        }
        self.intake = Some(seeker);
        Ok(())
    }

    /// An operator transfers the case to another desk. The operator stays in the session
    /// until a colleague of that desk accepts, sends them `note` end-to-end, then leaves.
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
        self.out.push_back(ClientFrame::Transfer { session, desk });
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

    /// Enter the session's call with a WebRTC offer (all candidates gathered). The answer
    /// comes as [`Event::CallAnswer`]; frame keys follow as [`Event::MediaKey`].
    pub fn join_call(&mut self, session: SessionId, offer: &str) -> Result<(), Error> {
        if offer.len() > MAX_SDP_LEN {
            return Err(Error::Invalid("offer too long"));
        }
        if !self.sessions.contains_key(&session) {
            return Err(Error::State("unknown session"));
        }
        self.out.push_back(ClientFrame::CallJoin {
            session,
            offer: offer.to_owned(),
        });
        Ok(())
    }

    /// Stop or resume receiving the others' video in the call (a weak connection keeps
    /// its audio).
    pub fn receive_video(&mut self, session: SessionId, receive: bool) -> Result<(), Error> {
        if !self.sessions.contains_key(&session) {
            return Err(Error::State("unknown session"));
        }
        self.out
            .push_back(ClientFrame::CallVideo { session, receive });
        Ok(())
    }

    /// Leave the session's call; the chat goes on.
    pub fn leave_call(&mut self, session: SessionId) -> Result<(), Error> {
        if !self.sessions.contains_key(&session) {
            return Err(Error::State("unknown session"));
        }
        self.out.push_back(ClientFrame::CallLeave { session });
        Ok(())
    }

    /// A coordinator asks for the observatory records.
    pub fn query_observatory(&mut self) -> Result<(), Error> {
        self.require_role(Role::Coordinator)?;
        self.out.push_back(ClientFrame::ObservatoryQuery);
        Ok(())
    }

    /// Send a chat message to everyone in the session.
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
        let mut delivered_somewhere = false;
        for (id, peer) in s.peers.iter_mut() {
            if only.is_some_and(|o| o != *id) {
                continue;
            }
            match &mut peer.state {
                PeerState::Ready(ch) => {
                    let (nonce, data) = ch.encrypt(&plain)?;
                    envelopes.push(Envelope {
                        to: *id,
                        payload: Payload::Cipher { nonce, data },
                    });
                    delivered_somewhere = true;
                }
                PeerState::Waiting | PeerState::Handshaking(_) => {
                    peer.pending.push(plain.clone());
                    delivered_somewhere = true;
                }
                PeerState::Failed => {}
            }
        }
        if !delivered_somewhere {
            if only.is_some() {
                return Err(Error::State("that participant cannot be reached"));
            }
            s.backlog.push(plain);
        }
        push_send(s, &mut self.out, envelopes);
        Ok(())
    }

    // ----- input ---------------------------------------------------------------------

    /// Process one frame received from the relay. `now_unix` is the wall-clock time in
    /// seconds, used to check certificate expiry.
    pub fn handle_bytes(&mut self, bytes: &[u8], now_unix: u64) -> Result<(), Error> {
        let frame: RelayFrame = wire::decode(bytes)?;
        self.handle_frame(frame, now_unix)
    }

    /// Process one decoded frame from the relay.
    pub fn handle_frame(&mut self, frame: RelayFrame, now_unix: u64) -> Result<(), Error> {
        self.now_unix = now_unix;
        match frame {
            RelayFrame::SessionOpened {
                session,
                you,
                token,
                revocations,
            } => {
                self.take_revocations(&revocations);
                self.sessions
                    .insert(session, Session::new(session, you, token));
                self.events.push_back(Event::SessionOpened { session });
            }
            RelayFrame::QueueStatus {
                session,
                position,
                wait_secs,
                fallback,
            } => {
                self.events.push_back(Event::QueueStatus {
                    session,
                    position,
                    wait_secs,
                    fallback,
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
            RelayFrame::ProofRequired { .. } => {}
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
                ..
            } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.unaccepted.retain(|f| seq_of(f) > accepted_up_to);
                    self.out.extend(s.unaccepted.iter().cloned());
                    self.events.push_back(Event::Resumed { session });
                }
            }
            RelayFrame::Accepted { session, up_to } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    while s.unaccepted.front().is_some_and(|f| seq_of(f) <= up_to) {
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
                self.events.push_back(Event::RelayError { code });
            }
            RelayFrame::Pong => {}
            RelayFrame::Observatory { records } => {
                self.events.push_back(Event::Observatory { records })
            }
            RelayFrame::CallAnswer { session, sdp } => {
                if self.sessions.contains_key(&session) {
                    self.events.push_back(Event::CallAnswer { session, sdp });
                }
            }
        }
        Ok(())
    }

    /// Pin a revocation list the client got by other means (shipped with the page, say),
    /// so a relay serving an older one cannot bring a revoked certificate back.
    pub fn add_revocations(&mut self, signed: &SignedRevocationList) -> Result<(), Error> {
        self.org.open_revocations(signed)?;
        self.take_revocations(signed);
        Ok(())
    }

    fn take_revocations(&mut self, signed: &SignedRevocationList) {
        // A list that does not verify is ignored: we keep the newest one we could check.
        if let Ok(list) = self.org.open_revocations(signed)
            && list.issued_at >= self.revoked.issued_at
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
                    s.safety.forget(id);
                }
                self.events.push_back(Event::PeerLeft { session, peer: id });
                self.refresh_code(session);
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

    fn staff_key(
        &self,
    ) -> Option<(
        &crate::noise::NoiseStaticKey,
        &crate::identity::SignedCertificate,
    )> {
        match &self.identity {
            Identity::Person => None,
            Identity::Staff(c) => Some((&c.noise, &c.certificate)),
        }
    }

    fn peer_arrived(
        &mut self,
        session: SessionId,
        id: ParticipantId,
        role: Option<Role>,
    ) -> Result<(), Error> {
        let i_am_person = matches!(self.identity, Identity::Person);
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let me = s.me;
        if id == me || s.peers.contains_key(&id) || s.peers.len() + 1 >= MAX_PARTICIPANTS {
            return Ok(());
        }
        // Who starts: the person always starts towards staff; between two staff members,
        // the one with the lower number. Both ends reach the same answer on their own.
        let kind = match (i_am_person, role) {
            (true, Some(_)) => Some(HandshakeKind::PersonInitiator),
            (true, None) => None, // a second "person" is not something we talk to
            (false, None) => None,
            (false, Some(_)) if me < id => Some(HandshakeKind::StaffInitiator),
            (false, Some(_)) => None,
        };
        let mut peer = Peer {
            announced_role: role,
            state: PeerState::Waiting,
            pending: Vec::new(),
        };
        let mut first = None;
        if let Some(kind) = kind {
            let mut hs = Handshake::new(kind, &prologue(&session, me, id), self.staff_key())?;
            first = Some(hs.write()?);
            peer.state = PeerState::Handshaking(Box::new(hs));
        } else if i_am_person {
            peer.state = PeerState::Failed;
        }
        let s = self.sessions.get_mut(&session).expect("checked above");
        s.peers.insert(id, peer);
        if let Some(msg) = first {
            push_send(
                s,
                &mut self.out,
                vec![Envelope {
                    to: id,
                    payload: Payload::Handshake(msg),
                }],
            );
        }
        self.events
            .push_back(Event::PeerArrived { session, peer: id });
        Ok(())
    }

    fn peer_payload(
        &mut self,
        session: SessionId,
        from: ParticipantId,
        payload: Payload,
    ) -> Result<(), Error> {
        match payload {
            Payload::Handshake(msg) => self.peer_handshake(session, from, &msg),
            Payload::Cipher { nonce, data } => self.peer_cipher(session, from, nonce, &data),
            Payload::HandshakeRefused => {
                self.fail_peer(session, from, Error::Handshake, false);
                Ok(())
            }
            Payload::Restart => Ok(()),
        }
    }

    fn peer_handshake(
        &mut self,
        session: SessionId,
        from: ParticipantId,
        msg: &[u8],
    ) -> Result<(), Error> {
        let i_am_person = matches!(self.identity, Identity::Person);
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let me = s.me;
        let Some(peer) = s.peers.get(&from) else {
            return Ok(());
        };
        // A responder creates its handshake state on the first message.
        let fresh = match (&peer.state, i_am_person, peer.announced_role) {
            (PeerState::Waiting, false, None) => Some(HandshakeKind::StaffAnsweringPerson),
            (PeerState::Waiting, false, Some(_)) if from < me => {
                Some(HandshakeKind::StaffResponder)
            }
            (PeerState::Waiting, _, _) => {
                self.fail_peer(session, from, Error::Handshake, true);
                return Ok(());
            }
            _ => None,
        };
        let fresh = match fresh {
            Some(kind) => Some(Handshake::new(
                kind,
                &prologue(&session, from, me),
                self.staff_key(),
            )?),
            None => None,
        };
        let revoked = std::mem::take(&mut self.revoked);
        let policy = CertPolicy {
            org: &self.org,
            revoked: &revoked,
            now_unix: self.now_unix,
        };
        let s = self.sessions.get_mut(&session).expect("checked above");
        let peer = s.peers.get_mut(&from).expect("checked above");
        if let Some(hs) = fresh {
            peer.state = PeerState::Handshaking(Box::new(hs));
        }
        let PeerState::Handshaking(hs) = &mut peer.state else {
            self.revoked = revoked;
            return Ok(()); // a handshake message for a finished or failed channel: ignore
        };
        let step = (|| {
            hs.read(msg, &policy)?;
            let reply = if hs.is_my_turn() {
                Some(hs.write()?)
            } else {
                None
            };
            Ok::<_, Error>(reply)
        })();
        self.revoked = revoked;
        match step {
            Err(e) => {
                self.fail_peer(session, from, e, true);
                Ok(())
            }
            Ok(reply) => {
                let s = self.sessions.get_mut(&session).expect("checked above");
                if let Some(reply) = reply {
                    push_send(
                        s,
                        &mut self.out,
                        vec![Envelope {
                            to: from,
                            payload: Payload::Handshake(reply),
                        }],
                    );
                }
                let peer = s.peers.get_mut(&from).expect("checked above");
                let finished =
                    matches!(&peer.state, PeerState::Handshaking(hs) if hs.is_finished());
                if finished {
                    let PeerState::Handshaking(hs) =
                        std::mem::replace(&mut peer.state, PeerState::Failed)
                    else {
                        unreachable!("matched just above")
                    };
                    match hs.into_channel() {
                        Ok(ch) => {
                            peer.state = PeerState::Ready(Box::new(ch));
                            self.channel_ready(session, from)?;
                        }
                        Err(e) => self.fail_peer(session, from, e, true),
                    }
                }
                Ok(())
            }
        }
    }

    fn fail_peer(
        &mut self,
        session: SessionId,
        peer: ParticipantId,
        reason: Error,
        tell_peer: bool,
    ) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(p) = s.peers.get_mut(&peer) else {
            return;
        };
        p.state = PeerState::Failed;
        p.pending.clear();
        if tell_peer {
            push_send(
                s,
                &mut self.out,
                vec![Envelope {
                    to: peer,
                    payload: Payload::HandshakeRefused,
                }],
            );
        }
        self.events.push_back(Event::PeerRejected {
            session,
            peer,
            reason,
        });
        self.refresh_code(session);
    }

    fn channel_ready(&mut self, session: SessionId, peer: ParticipantId) -> Result<(), Error> {
        let s = self.sessions.get_mut(&session).expect("caller checked");
        let me = s.me;
        let p = s.peers.get_mut(&peer).expect("caller checked");
        let PeerState::Ready(ch) = &mut p.state else {
            return Ok(());
        };
        let (role, label) = match ch.peer_certificate() {
            Some(c) => (Some(c.role), Some(c.label.clone())),
            None => (None, None),
        };
        let hash = *ch.handshake_hash();
        s.safety.record(me, peer, hash);
        self.events.push_back(Event::PeerVerified {
            session,
            peer,
            role,
            label,
        });

        // Tell the new peer every channel hash we know of ours, and tell everyone else the
        // new one, then deliver what was waiting for this channel.
        let own_reports: Vec<Content> = s
            .safety
            .reports()
            .filter(|(a, b, _)| *a == me || *b == me)
            .map(|(a, b, hash)| Content::ChannelHash { a, b, hash })
            .collect();
        let mut plains: Vec<(ParticipantId, Zeroizing<Vec<u8>>)> = Vec::new();
        for c in &own_reports {
            plains.push((peer, seal_plaintext(c)?));
        }
        let announce = seal_plaintext(&Content::ChannelHash {
            a: me.min(peer),
            b: me.max(peer),
            hash,
        })?;
        for (id, other) in s.peers.iter() {
            if *id != peer && matches!(other.state, PeerState::Ready(_)) {
                plains.push((*id, announce.clone()));
            }
        }
        if role.is_some()
            && let Some(seeker) = self.intake
        {
            plains.push((peer, seal_plaintext(&Content::Intake { seeker })?));
        }
        let mut leave_after = false;
        if role == Some(Role::Operator)
            && let Some((desk, note)) = s.handover.take()
        {
            plains.push((
                peer,
                seal_plaintext(&Content::HandoverNote {
                    desk,
                    body: note.to_string(),
                })?,
            ));
            leave_after = true;
        }
        let p = s.peers.get_mut(&peer).expect("caller checked");
        for pending in p.pending.drain(..) {
            plains.push((peer, pending));
        }
        if role.is_some() && !s.backlog.is_empty() {
            for b in s.backlog.drain(..) {
                plains.push((peer, b));
            }
        }
        let mut envelopes = Vec::new();
        for (to, plain) in plains {
            if let Some(Peer {
                state: PeerState::Ready(ch),
                ..
            }) = s.peers.get_mut(&to)
            {
                let (nonce, data) = ch.encrypt(&plain)?;
                envelopes.push(Envelope {
                    to,
                    payload: Payload::Cipher { nonce, data },
                });
            }
        }
        push_send(s, &mut self.out, envelopes);
        if leave_after {
            // The case is handed over: leave it to the new operator.
            self.out.push_back(ClientFrame::Leave { session });
            self.forget(session);
            return Ok(());
        }
        self.refresh_code(session);
        Ok(())
    }

    fn peer_cipher(
        &mut self,
        session: SessionId,
        from: ParticipantId,
        nonce: u64,
        data: &[u8],
    ) -> Result<(), Error> {
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let Some(Peer {
            state: PeerState::Ready(ch),
            ..
        }) = s.peers.get_mut(&from)
        else {
            self.events.push_back(Event::Undecryptable {
                session,
                peer: from,
            });
            return Ok(());
        };
        let content = match ch.decrypt(nonce, data).and_then(|p| open_plaintext(&p)) {
            Ok(c) => c,
            Err(_) => {
                self.events.push_back(Event::Undecryptable {
                    session,
                    peer: from,
                });
                return Ok(());
            }
        };
        match content {
            Content::Text { body, private } => {
                self.events.push_back(Event::Message {
                    session,
                    from,
                    body: Zeroizing::new(body),
                    private,
                });
            }
            Content::Intake { seeker } => {
                let from_person = matches!(s.peers.get(&from), Some(Peer { state: PeerState::Ready(ch), .. }) if ch.peer_certificate().is_none());
                if from_person {
                    self.events.push_back(Event::Intake {
                        session,
                        from,
                        seeker,
                    });
                }
            }
            Content::HandoverNote { desk, body } => {
                let from_operator = matches!(s.peers.get(&from), Some(Peer { state: PeerState::Ready(ch), .. }) if ch.peer_certificate().is_some_and(|c| c.role == Role::Operator));
                if from_operator {
                    self.events.push_back(Event::HandoverNote {
                        session,
                        from,
                        desk,
                        body: Zeroizing::new(body),
                    });
                }
            }
            Content::MediaKey { epoch, key } => {
                // Only a call member's key, and only from its own channel: `from` is who
                // the Noise channel authenticates, so nobody can announce another's key.
                if s.call.contains(&from) {
                    self.events.push_back(Event::MediaKey {
                        session,
                        participant: from,
                        epoch,
                        own: false,
                        key: Zeroizing::new(key),
                    });
                }
            }
            Content::Roster { .. } | Content::Transferred { .. } => {}
            Content::ChannelHash { a, b, hash } => {
                // A participant may only report channels it is part of.
                if a == from || b == from {
                    s.safety.record(a, b, hash);
                    self.refresh_code(session);
                }
            }
        }
        Ok(())
    }

    /// The call's membership changed: tell the page and, while in the call, draw a fresh
    /// frame key and send it to the other members only. Someone who left never gets a key
    /// used after they left; someone who joined never gets one used before.
    fn call_changed(
        &mut self,
        session: SessionId,
        id: ParticipantId,
        joined: bool,
    ) -> Result<(), Error> {
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let changed = if joined {
            s.call.insert(id)
        } else {
            s.call.remove(&id)
        };
        if !changed {
            return Ok(());
        }
        let me = s.me;
        self.events.push_back(Event::CallMembers {
            session,
            members: s.call.iter().copied().collect(),
        });
        if !s.call.contains(&me) {
            return Ok(());
        }
        s.media_epoch += 1;
        let epoch = s.media_epoch;
        let mut key = Zeroizing::new([0u8; 16]);
        fill_random(&mut key[..]);
        let others: Vec<ParticipantId> = s.call.iter().copied().filter(|p| *p != me).collect();
        let content = Content::MediaKey { epoch, key: *key };
        for to in others {
            // A member we cannot reach (failed channel) simply gets no key.
            let _ = self.send_content(session, Some(to), &content, 0);
        }
        self.events.push_back(Event::MediaKey {
            session,
            participant: me,
            epoch,
            own: true,
            key,
        });
        Ok(())
    }

    fn refresh_code(&mut self, session: SessionId) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let mut members = vec![s.me];
        members.extend(
            s.peers
                .iter()
                .filter(|(_, p)| !matches!(p.state, PeerState::Failed))
                .map(|(id, _)| *id),
        );
        let code = s.safety.code(&session, &members);
        if s.last_code.as_ref() != Some(&code) {
            s.last_code = Some(code.clone());
            self.events.push_back(Event::SafetyCode { session, code });
        }
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

impl Session {
    fn new(id: SessionId, me: ParticipantId, token: ResumeToken) -> Self {
        Session {
            id,
            me,
            token,
            received_up_to: 0,
            acked_up_to: 0,
            next_seq: 1,
            unaccepted: VecDeque::new(),
            peers: BTreeMap::new(),
            safety: SafetyBook::default(),
            last_code: None,
            backlog: Vec::new(),
            handover: None,
            call: BTreeSet::new(),
            media_epoch: 0,
        }
    }
}

/// Number, remember and queue a `Send` (nothing when there is nothing to send).
fn push_send(s: &mut Session, out: &mut VecDeque<ClientFrame>, envelopes: Vec<Envelope>) {
    if envelopes.is_empty() {
        return;
    }
    let frame = ClientFrame::Send {
        session: s.id,
        seq: s.next_seq,
        envelopes,
    };
    s.next_seq += 1;
    s.unaccepted.push_back(frame.clone());
    out.push_back(frame);
}

fn seq_of(frame: &ClientFrame) -> u64 {
    match frame {
        ClientFrame::Send { seq, .. } => *seq,
        _ => 0,
    }
}
