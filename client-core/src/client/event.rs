//! What the client tells its user interface. `Debug` never prints a message body, a note
//! or a key: events end up in logs and test output.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::identity::Role;
use crate::ids::{DeskId, ParticipantId, SessionId};
use crate::observatory::{ObservatoryTables, Seeker};
use crate::safety::SafetyCode;
use crate::wire::{ErrorCode, Invitation, Outlook, QueueEntry, TurnAnswer};

/// Something for the user interface.
#[derive(Clone, PartialEq, Eq)]
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
        /// Who can answer now (see [`crate::wire::Outlook`]).
        outlook: Outlook,
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
        /// Nothing of this session was refused by the relay, failed to decrypt or was
        /// dropped since the last resume (only then may a page say "nothing lost").
        intact: bool,
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
    /// The observatory's tables (coordinators): counts, never records.
    ObservatoryTables {
        /// The tables, small counts suppressed by the relay.
        tables: ObservatoryTables,
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
    /// The person signalled that they cannot talk freely now (staff only see this).
    NotSafe {
        /// The session.
        session: SessionId,
        /// The person's participant number.
        from: ParticipantId,
    },
    /// The relay's SDP answer to [`Client::join_call`].
    CallAnswer {
        /// The session.
        session: SessionId,
        /// The SDP.
        sdp: String,
    },
    /// The relay's answer to [`Client::request_turn`]: TURN credentials for retrying the
    /// call through the relay's TURN server, or why there are none. `Debug` never prints
    /// the credential.
    Turn {
        /// The session.
        session: SessionId,
        /// Credentials or a refusal.
        answer: TurnAnswer,
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

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Message {
                session,
                from,
                private,
                ..
            } => f
                .debug_struct("Message")
                .field("session", session)
                .field("from", from)
                .field("private", private)
                .finish_non_exhaustive(),
            Event::HandoverNote {
                session,
                from,
                desk,
                ..
            } => f
                .debug_struct("HandoverNote")
                .field("session", session)
                .field("from", from)
                .field("desk", desk)
                .finish_non_exhaustive(),
            Event::MediaKey {
                session,
                participant,
                epoch,
                own,
                ..
            } => f
                .debug_struct("MediaKey")
                .field("session", session)
                .field("participant", participant)
                .field("epoch", epoch)
                .field("own", own)
                .finish_non_exhaustive(),
            other => PlainEvent(other).fmt(f),
        }
    }
}

/// The events without secrets, printed field by field.
struct PlainEvent<'a>(&'a Event);

impl fmt::Debug for PlainEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Event::SessionOpened { session } => f
                .debug_struct("SessionOpened")
                .field("session", session)
                .finish(),
            Event::QueueStatus {
                session,
                position,
                wait_secs,
                fallback,
                outlook,
            } => f
                .debug_struct("QueueStatus")
                .field("session", session)
                .field("position", position)
                .field("wait_secs", wait_secs)
                .field("fallback", fallback)
                .field("outlook", outlook)
                .finish(),
            Event::LoggedIn => f.write_str("LoggedIn"),
            Event::Queue { entries, total } => f
                .debug_struct("Queue")
                .field("entries", entries)
                .field("total", total)
                .finish(),
            Event::Invitations { entries, total } => f
                .debug_struct("Invitations")
                .field("entries", entries)
                .field("total", total)
                .finish(),
            Event::Joined { session } => {
                f.debug_struct("Joined").field("session", session).finish()
            }
            Event::PeerArrived { session, peer } => f
                .debug_struct("PeerArrived")
                .field("session", session)
                .field("peer", peer)
                .finish(),
            Event::PeerVerified {
                session,
                peer,
                role,
                label,
            } => f
                .debug_struct("PeerVerified")
                .field("session", session)
                .field("peer", peer)
                .field("role", role)
                .field("label", label)
                .finish(),
            Event::PeerRejected {
                session,
                peer,
                reason,
            } => f
                .debug_struct("PeerRejected")
                .field("session", session)
                .field("peer", peer)
                .field("reason", reason)
                .finish(),
            Event::PeerLeft { session, peer } => f
                .debug_struct("PeerLeft")
                .field("session", session)
                .field("peer", peer)
                .finish(),
            Event::SafetyCode { session, code } => f
                .debug_struct("SafetyCode")
                .field("session", session)
                .field("code", code)
                .finish(),
            Event::Undecryptable { session, peer } => f
                .debug_struct("Undecryptable")
                .field("session", session)
                .field("peer", peer)
                .finish(),
            Event::Resumed { session, intact } => f
                .debug_struct("Resumed")
                .field("session", session)
                .field("intact", intact)
                .finish(),
            Event::SessionEnded { session } => f
                .debug_struct("SessionEnded")
                .field("session", session)
                .finish(),
            Event::RelayError { code } => f.debug_struct("RelayError").field("code", code).finish(),
            Event::Intake {
                session,
                from,
                seeker,
            } => f
                .debug_struct("Intake")
                .field("session", session)
                .field("from", from)
                .field("seeker", seeker)
                .finish(),
            Event::ObservatoryTables { tables } => f
                .debug_struct("ObservatoryTables")
                .field("months", &tables.months.len())
                .finish_non_exhaustive(),
            Event::MembershipAlarm { session, alarm } => f
                .debug_struct("MembershipAlarm")
                .field("session", session)
                .field("alarm", alarm)
                .finish(),
            Event::RosterAgreed { session, members } => f
                .debug_struct("RosterAgreed")
                .field("session", session)
                .field("members", members)
                .finish(),
            Event::ChannelRestarted { session, peer } => f
                .debug_struct("ChannelRestarted")
                .field("session", session)
                .field("peer", peer)
                .finish(),
            Event::BacklogFull { session } => f
                .debug_struct("BacklogFull")
                .field("session", session)
                .finish(),
            Event::Transferred { session, desk } => f
                .debug_struct("Transferred")
                .field("session", session)
                .field("desk", desk)
                .finish(),
            Event::NotSafe { session, from } => f
                .debug_struct("NotSafe")
                .field("session", session)
                .field("from", from)
                .finish(),
            Event::CallAnswer { session, .. } => f
                .debug_struct("CallAnswer")
                .field("session", session)
                .finish_non_exhaustive(),
            Event::Turn { session, answer } => f
                .debug_struct("Turn")
                .field("session", session)
                .field("answer", answer)
                .finish(),
            Event::CallMembers { session, members } => f
                .debug_struct("CallMembers")
                .field("session", session)
                .field("members", members)
                .finish(),
            // Printed by `Event`'s own `Debug` without their secrets.
            Event::Message { .. } | Event::HandoverNote { .. } | Event::MediaKey { .. } => {
                f.write_str("Event")
            }
        }
    }
}
