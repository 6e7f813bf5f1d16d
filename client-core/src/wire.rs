//! Wire frames between a client and the relay.
//!
//! A frame is the postcard encoding of a [`ClientFrame`] or a [`RelayFrame`], at most
//! [`MAX_FRAME_LEN`] bytes, carried as one WebSocket binary message. The relay reads the
//! frame envelope (who, which session, which sequence number) but never the content of a
//! [`Payload`]: that is a Noise message only the participants can open.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::{Role, SignedCertificate, SignedRevocationList};
use crate::ids::{DeskId, Language, ParticipantId, ResumeToken, SessionId};
use crate::limits::{CHALLENGE_LEN, MAX_FRAME_LEN};
use crate::observatory::{ObservatoryRecord, ObservatoryTables, StoredRecord};

/// What one participant sends another through the relay. The relay sees only which kind it
/// is and how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// A Noise handshake message.
    Handshake(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A Noise transport message with its explicit nonce.
    Cipher {
        /// The sender's nonce for this message on this channel.
        nonce: u64,
        /// Ciphertext and tag.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// The one answer to any handshake that failed, whatever the reason.
    HandshakeRefused,
    /// "My channel with you is broken (a message went missing or did not decrypt): start a
    /// new handshake." Sent by the pair's responder; the initiator answers with a fresh
    /// handshake. Carries nothing secret, and a relay that forges it can only cause a new
    /// handshake, which changes the safety code and shows on every screen.
    Restart,
}

/// One payload addressed to one participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The recipient.
    pub to: ParticipantId,
    /// What the recipient gets.
    pub payload: Payload,
}

/// Frames a client sends to the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// The person asks for a conversation in `language`, optionally with a regional desk.
    OpenSession {
        /// [`crate::PROTOCOL_VERSION`].
        version: u8,
        /// The language the person chose.
        language: Language,
        /// The region (desk) the person chose, if any.
        region: Option<DeskId>,
    },
    /// A participant whose connection dropped takes its place back.
    Resume {
        /// [`crate::PROTOCOL_VERSION`].
        version: u8,
        /// The token from [`RelayFrame::SessionOpened`] or [`RelayFrame::Joined`].
        token: ResumeToken,
        /// The highest event sequence number already processed.
        received_up_to: u64,
    },
    /// A staff member presents a certificate; the relay answers with a challenge.
    StaffHello {
        /// [`crate::PROTOCOL_VERSION`].
        version: u8,
        /// The organisation's certificate for this member.
        certificate: SignedCertificate,
    },
    /// The signature over the relay's challenge with the certified signing key.
    StaffProof {
        /// Ed25519 signature.
        #[serde(with = "crate::identity::sig_bytes")]
        signature: [u8; 64],
    },
    /// An operator takes a waiting session.
    Accept {
        /// The session.
        session: SessionId,
    },
    /// An operator asks for an interpreter in `language`.
    Invite {
        /// The session.
        session: SessionId,
        /// The language needed.
        language: Language,
    },
    /// An interpreter takes an invitation.
    Join {
        /// The session.
        session: SessionId,
    },
    /// A staff member leaves a session that goes on without them.
    Leave {
        /// The session.
        session: SessionId,
    },
    /// The session ends for everyone (an operator hangs up, or the person exits).
    End {
        /// The session.
        session: SessionId,
    },
    /// Payloads for other participants, numbered by the sender for resending after a drop.
    Send {
        /// The session.
        session: SessionId,
        /// The sender's sequence number, 1, 2, 3, … per session.
        seq: u64,
        /// One payload per recipient.
        envelopes: Vec<Envelope>,
    },
    /// Every event up to `up_to` has been processed and may be forgotten by the relay.
    Ack {
        /// The session.
        session: SessionId,
        /// Highest processed event sequence number.
        up_to: u64,
    },
    /// Keep-alive.
    Ping,
    /// An operator sends the session to another desk's queue. The operator stays until a
    /// colleague there accepts, hands over a note end-to-end, then leaves.
    Transfer {
        /// The session.
        session: SessionId,
        /// The desk that takes over.
        desk: DeskId,
    },
    /// An operator closes the case: the relay files the observatory record (with the
    /// month, nothing else) and ends the session.
    CloseCase {
        /// The session.
        session: SessionId,
        /// The record.
        record: ObservatoryRecord,
    },
    /// A coordinator asks for the observatory figures; the relay answers with
    /// [`RelayFrame::ObservatoryTables`].
    ObservatoryQuery,
    /// A participant enters the session's call with its WebRTC offer (SDP, non-trickle:
    /// every candidate gathered). The relay answers with [`RelayFrame::CallAnswer`] and
    /// tells every participant with [`SessionEvent::Call`].
    CallJoin {
        /// The session.
        session: SessionId,
        /// The SDP offer, at most [`crate::limits::MAX_SDP_LEN`] bytes.
        offer: String,
    },
    /// A participant leaves the call; the session and its chat go on.
    CallLeave {
        /// The session.
        session: SessionId,
    },
    /// A call member on a weak connection stops (or resumes) receiving video; audio and
    /// chat go on either way.
    CallVideo {
        /// The session.
        session: SessionId,
        /// Whether to receive the others' video.
        receive: bool,
    },
    /// The answer to [`RelayFrame::ProofRequired`]: `nonce` such that
    /// [`crate::pow::verify`] holds for the seed and the difficulty asked. The relay then
    /// takes one `OpenSession` on this connection.
    ProofOfWork {
        /// The seed from the relay's `ProofRequired`.
        seed: [u8; 32],
        /// The solution.
        nonce: u64,
    },
    /// The person's page was reloaded: take the seat back with a resume token kept in the
    /// tab, but with none of the old keys. The relay answers as for `Resume`, forgets the
    /// events held for the old page (they are under keys that are gone), and announces every
    /// other participant again (`Arrived`, and `Call` for call members), so the page runs
    /// fresh handshakes. Only the person rejoins.
    Rejoin {
        /// [`crate::PROTOCOL_VERSION`].
        version: u8,
        /// The token from `SessionOpened` or the latest `NewToken`.
        token: ResumeToken,
    },
    /// A call member whose direct connection to the SFU failed (UDP blocked, say) asks
    /// for short-lived TURN credentials to retry through the relay's TURN server. The
    /// relay answers with [`RelayFrame::Turn`]; it answers only a member of the session's
    /// live call, at most [`crate::limits::MAX_TURN_REQUESTS_PER_CALL`] times per entry into
    /// the call. Last, so every older frame keeps its index.
    TurnRequest {
        /// The session whose call it is.
        session: SessionId,
    },
}

/// The relay's answer to [`ClientFrame::TurnRequest`]. Indices are stable on the wire.
/// `Debug` names the kind only: never the username or the credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TurnAnswer {
    /// Credentials for the TURN server, in the TURN REST form (`use-auth-secret`): valid
    /// until the expiry in `username`, for any of `urls`.
    Credentials {
        /// The TURN URLs to use as `iceServers[].urls` (`turns:host:443?transport=tcp`,
        /// `turn:host:3478?transport=tcp`), at most
        /// [`crate::limits::MAX_TURN_URLS`], each at most
        /// [`crate::limits::MAX_TURN_URL_LEN`] bytes.
        urls: Vec<String>,
        /// `<unix expiry>:<random id>`: names no session, participant or address.
        username: String,
        /// `base64(HMAC-SHA1(shared secret, username))`.
        credential: String,
        /// Seconds the credentials stay valid from now.
        lifetime_secs: u32,
    },
    /// This relay has no TURN server configured.
    Unavailable,
    /// The asker is not in the session's call (it never joined, or left, or its entry
    /// ended).
    NotInCall,
    /// This entry into the call has had all the credentials it may get.
    TooMany,
}

impl std::fmt::Debug for TurnAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnAnswer::Credentials {
                urls,
                lifetime_secs,
                ..
            } => f
                .debug_struct("Credentials")
                .field("urls", &urls.len())
                .field("lifetime_secs", lifetime_secs)
                .finish_non_exhaustive(),
            TurnAnswer::Unavailable => f.write_str("Unavailable"),
            TurnAnswer::NotInCall => f.write_str("NotInCall"),
            TurnAnswer::TooMany => f.write_str("TooMany"),
        }
    }
}

/// A session waiting in an operator's queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The session.
    pub session: SessionId,
    /// The person's language.
    pub language: Language,
    /// The desk it waits at.
    pub desk: DeskId,
    /// Seconds since it was opened.
    pub waiting_secs: u32,
    /// The waiting person's connection is down right now (they may come back within
    /// the grace period); last, so older fields keep their place on the wire.
    pub away: bool,
}

/// An open invitation for an interpreter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The session.
    pub session: SessionId,
    /// The language needed.
    pub language: Language,
    /// The desk of the inviting operator.
    pub desk: DeskId,
    /// Seconds since the invitation.
    pub waiting_secs: u32,
}

/// Something that happened in a session, in the order every participant sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEvent {
    /// A participant is present (sent once for everyone already there when one joins).
    Arrived {
        /// Their number.
        id: ParticipantId,
        /// The role the relay saw certified, `None` for the person. Only a hint: each
        /// client trusts the certificate in the handshake, not this.
        role: Option<Role>,
    },
    /// A participant left.
    Departed {
        /// Their number.
        id: ParticipantId,
    },
    /// A payload from another participant.
    Message {
        /// The sender.
        from: ParticipantId,
        /// What they sent.
        payload: Payload,
    },
    /// The session is over; the relay has forgotten it.
    Ended,
    /// A participant entered (`joined`) or left the session's call. Every member draws a
    /// fresh frame key on each such change.
    Call {
        /// Their number.
        id: ParticipantId,
        /// In the call now.
        joined: bool,
    },
}

/// Who can answer a waiting person right now, so the page never promises an answer
/// "soon" beside "nobody can answer online", and never says "nobody" while an operator who
/// will bring in an interpreter is about to accept. Indices are stable on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outlook {
    /// An operator who may take the session is online and speaks its language.
    Speaker,
    /// Operators who may take the session are online, none speaks its language, and an
    /// interpreter for it is online: an operator will answer with an interpreter.
    WithInterpreter,
    /// Operators who may take the session are online, but nobody online speaks its
    /// language: an operator can take the case and look for an interpreter (slower).
    SeekingInterpreter,
    /// No operator who may take the session is online: call the fallback numbers.
    NobodyOnline,
}

/// Why the relay refused something. Codes are stable on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame could not be decoded.
    Malformed,
    /// The frame was longer than [`MAX_FRAME_LEN`].
    FrameTooLarge,
    /// Too many frames or sessions; slow down.
    RateLimited,
    /// Staff login failed (one answer for every reason).
    AuthFailed,
    /// The action needs a role or a state this connection does not have.
    NotAllowed,
    /// No such session, or it has ended.
    UnknownSession,
    /// The session has as many participants as it may.
    SessionFull,
    /// The client speaks another protocol version.
    VersionMismatch,
    /// Nothing arrived for too long.
    IdleTimeout,
    /// The client did not acknowledge what it was sent.
    SlowConsumer,
    /// The resume token is unknown or expired.
    ResumeFailed,
    /// The relay is at capacity; try again shortly.
    Busy,
    /// The relay could not keep an event for a participant who is away (their share of
    /// the store, the session's or the relay's is full): that participant was removed
    /// from the session, and the others were told with `Departed`. The connection stays
    /// open.
    QuotaExceeded,
    /// Another connection resumed this connection's seat with a valid token; this one is
    /// closed.
    Replaced,
}

/// Frames the relay sends to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayFrame {
    /// The person's session exists; they are participant `you`.
    SessionOpened {
        /// The session.
        session: SessionId,
        /// The person's participant number.
        you: ParticipantId,
        /// Proof for resuming after a drop. Held in memory only.
        token: ResumeToken,
        /// The organisation's current revocation list.
        revocations: SignedRevocationList,
    },
    /// Where the person is in the queue. `fallback` lists phone numbers to call and is
    /// non-empty exactly when nobody is online who could answer in the person's language
    /// (`outlook` says whether someone can still take the case with an interpreter).
    QueueStatus {
        /// The session.
        session: SessionId,
        /// 1 for next.
        position: u32,
        /// Estimated wait in seconds, from waits the relay observed; 0 when it has observed
        /// none at the desk yet, or when nobody is online (no estimate is better than a guess).
        wait_secs: u32,
        /// Phone numbers to call when nobody is online.
        fallback: Vec<String>,
        /// Who can answer right now (the last field, so older fields keep their offsets).
        outlook: Outlook,
    },
    /// The relay's login challenge for a staff member.
    Challenge {
        /// Random bytes to sign.
        nonce: [u8; CHALLENGE_LEN],
    },
    /// Login succeeded.
    StaffReady {
        /// The organisation's current revocation list.
        revocations: SignedRevocationList,
    },
    /// The sessions waiting at the operator's desks: always the full current view (not a
    /// change), oldest first, at most [`crate::limits::MAX_QUEUE_ENTRIES`] entries.
    Queue {
        /// Oldest first.
        entries: Vec<QueueEntry>,
        /// How many sessions wait for this operator in all, shown or not.
        total: u32,
    },
    /// Open invitations for the interpreter's languages: always the full current view,
    /// oldest first, at most [`crate::limits::MAX_QUEUE_ENTRIES`] entries.
    Invitations {
        /// Oldest first.
        entries: Vec<Invitation>,
        /// How many invitations are open for this interpreter in all, shown or not.
        total: u32,
    },
    /// A staff member is now participant `you` of `session`.
    Joined {
        /// The session.
        session: SessionId,
        /// Their participant number.
        you: ParticipantId,
        /// Proof for resuming after a drop.
        token: ResumeToken,
    },
    /// A resume succeeded; events after the client's `received_up_to` follow.
    Resumed {
        /// The session.
        session: SessionId,
        /// The participant number.
        you: ParticipantId,
        /// The highest `Send` sequence number the relay holds; resend anything after it.
        accepted_up_to: u64,
    },
    /// A session event, numbered 1, 2, 3, … per participant.
    Event {
        /// The session.
        session: SessionId,
        /// Sequence number for ordering, acknowledging and resuming.
        seq: u64,
        /// What happened.
        event: SessionEvent,
    },
    /// The relay holds every `Send` up to `up_to`.
    Accepted {
        /// The session.
        session: SessionId,
        /// Highest accepted `Send` sequence number.
        up_to: u64,
    },
    /// A refusal; fatal ones are followed by closing the connection.
    Error {
        /// What went wrong.
        code: ErrorCode,
    },
    /// Answer to [`ClientFrame::Ping`].
    Pong,
    /// Never sent: relays before the aggregated observatory answered a coordinator with
    /// every record. The variant keeps its place (and so the later variants' indices); a
    /// client ignores it.
    Observatory {
        /// The records.
        records: Vec<StoredRecord>,
    },
    /// The relay's answer to [`ClientFrame::CallJoin`]: its SDP, carrying only the relay's
    /// own candidates.
    CallAnswer {
        /// The session.
        session: SessionId,
        /// The SDP answer.
        sdp: String,
    },
    /// Under a flood of new sessions the relay asks the person's client for a small proof
    /// of work before it takes `OpenSession`. The connection stays open.
    ProofRequired {
        /// Random bytes, valid for this connection only and for one solution.
        seed: [u8; 32],
        /// Leading zero bits required, at most [`crate::limits::MAX_POW_DIFFICULTY`].
        difficulty: u8,
    },
    /// Sent right after [`RelayFrame::Resumed`]: the token for the next resume. The token
    /// just used is dead from now on, so a token seen once (on a shared phone, in a
    /// memory dump of an old tab) cannot take the seat back later.
    NewToken {
        /// The session.
        session: SessionId,
        /// The next resume token. Held in memory only.
        token: ResumeToken,
    },
    /// The answer to [`ClientFrame::ObservatoryQuery`]: the records counted into tables,
    /// small counts suppressed so that no cell below
    /// [`crate::observatory::MIN_DISCLOSED`] can be read or worked out.
    ObservatoryTables {
        /// The tables.
        tables: ObservatoryTables,
    },
    /// The answer to [`ClientFrame::TurnRequest`]: credentials, or why there are none.
    /// Sent only to a client that asked, so a client that never asks never sees it.
    Turn {
        /// The session.
        session: SessionId,
        /// Credentials or a refusal.
        answer: TurnAnswer,
    },
}

/// Encode a frame. Fails only if the result would exceed [`MAX_FRAME_LEN`].
pub fn encode<T: Serialize>(frame: &T) -> Result<Vec<u8>, Error> {
    let bytes = postcard::to_allocvec(frame).map_err(|_| Error::Malformed)?;
    if bytes.len() > MAX_FRAME_LEN {
        return Err(Error::FrameTooLarge);
    }
    Ok(bytes)
}

/// Decode a frame. The length is checked before anything is decoded, and trailing bytes
/// are an error, so one byte string has at most one meaning.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    if bytes.len() > MAX_FRAME_LEN {
        return Err(Error::FrameTooLarge);
    }
    let (frame, rest) = postcard::take_from_bytes(bytes).map_err(|_| Error::Malformed)?;
    if !rest.is_empty() {
        return Err(Error::Malformed);
    }
    Ok(frame)
}
