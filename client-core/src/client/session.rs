//! Per-session state of the client, and the outbox: how content becomes `Send` frames the
//! relay always accepts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use zeroize::Zeroizing;

use crate::error::Error;
use crate::identity::Role;
use crate::ids::{DeskId, ParticipantId, ResumeToken, SessionId};
use crate::limits::MAX_ENVELOPES_PER_SEND;
use crate::noise::{Channel, Handshake};
use crate::safety::{SafetyBook, SafetyCode};
use crate::wire::{ClientFrame, Envelope, Payload};

/// Most plaintexts held for one participant who is not (yet, or no longer) confirmed in
/// the roster. A relay that keeps a newcomer unconfirmed cannot make the client hoard
/// without bound; past this the oldest are dropped (the alarm is already on screen).
const MAX_HELD_PER_PEER: usize = 256;

/// Where the channel with one participant stands.
pub(super) enum PeerState {
    /// Present; waiting for the other side to start the handshake.
    Waiting,
    Handshaking(Box<Handshake>),
    Ready(Box<Channel>),
    /// Refused (bad certificate, second anonymous participant): nothing is ever sent to
    /// them again.
    Failed,
}

/// One other participant as this client sees them.
pub(super) struct Peer {
    /// The role the relay announced: only used to pick the handshake, never shown as proof.
    pub(super) announced_role: Option<Role>,
    pub(super) state: PeerState,
    /// Plaintexts addressed to this peer before the roster including them was agreed.
    pub(super) held: VecDeque<Zeroizing<Vec<u8>>>,
    /// Every member confirmed a roster including this peer over the current channel:
    /// content may be encrypted to them.
    pub(super) admitted: bool,
    /// The last roster this peer confirmed to us: members and digest.
    pub(super) confirmed: Option<(Vec<ParticipantId>, [u8; 32])>,
    /// When this peer arrived or its channel was last restarted (Unix seconds).
    pub(super) since: u64,
    /// When this peer's confirmed roster began to differ from ours for the same members.
    pub(super) differs_since: Option<u64>,
    /// An alarm about this peer is already on screen (raised once).
    pub(super) alarmed: bool,
    /// When the channel was last restarted (Unix seconds).
    pub(super) last_restart: Option<u64>,
    /// The person's intake went to this peer.
    pub(super) intake_sent: bool,
}

impl Peer {
    pub(super) fn new(announced_role: Option<Role>, now: u64) -> Self {
        Peer {
            announced_role,
            state: PeerState::Waiting,
            held: VecDeque::new(),
            admitted: false,
            confirmed: None,
            since: now,
            differs_since: None,
            alarmed: false,
            last_restart: None,
            intake_sent: false,
        }
    }

    /// Keep a plaintext until this peer is admitted.
    pub(super) fn hold(&mut self, plain: Zeroizing<Vec<u8>>) {
        if self.held.len() >= MAX_HELD_PER_PEER {
            self.held.pop_front();
        }
        self.held.push_back(plain);
    }

    /// The verified channel, if up.
    pub(super) fn channel(&self) -> Option<&Channel> {
        match &self.state {
            PeerState::Ready(ch) => Some(ch),
            _ => None,
        }
    }

    /// Whether the channel authenticates the anonymous person (no certificate).
    pub(super) fn is_person(&self) -> bool {
        match &self.state {
            PeerState::Ready(ch) => ch.peer_certificate().is_none(),
            _ => self.announced_role.is_none(),
        }
    }
}

/// One session this client takes part in.
pub(super) struct Session {
    pub(super) id: SessionId,
    pub(super) me: ParticipantId,
    pub(super) token: ResumeToken,
    /// Highest event sequence number processed.
    pub(super) received_up_to: u64,
    /// Highest event sequence number acknowledged to the relay.
    pub(super) acked_up_to: u64,
    /// Next `Send` sequence number.
    pub(super) next_seq: u64,
    /// `Send` frames the relay has not confirmed, for resending after a drop.
    pub(super) unaccepted: VecDeque<ClientFrame>,
    pub(super) peers: BTreeMap<ParticipantId, Peer>,
    /// Participants who left: a late mention of them is no alarm.
    pub(super) gone: BTreeSet<ParticipantId>,
    pub(super) safety: SafetyBook,
    pub(super) last_code: Option<SafetyCode>,
    /// The last roster digest this client confirmed to the others.
    pub(super) roster_sent: Option<[u8; 32]>,
    /// The members of the last roster everyone agreed on (sorted).
    pub(super) agreed: Vec<ParticipantId>,
    /// The person's words written while nobody was there yet; delivered to the first
    /// operator of the intended desk confirmed in the roster.
    pub(super) backlog: Vec<Zeroizing<Vec<u8>>>,
    /// The desk the person asked for (`None`: the national one), then the desk a transfer
    /// named. Only its operators (or national ones) get the backlog and the intake.
    pub(super) intended_desk: Option<DeskId>,
    /// A transfer in progress: the note for the operator who takes the case.
    pub(super) handover: Option<(DeskId, Zeroizing<String>)>,
    /// Who is in the session's call, as the relay announced it.
    pub(super) call: BTreeSet<ParticipantId>,
    /// The epoch of this client's latest frame key.
    pub(super) media_epoch: u32,
    /// Nothing was refused, lost or undecryptable since the last resume.
    pub(super) intact: bool,
    /// Taken back after a reload, with new keys: sequence numbers continue from the relay's.
    pub(super) rejoining: bool,
    /// A `TurnRequest` is in flight: only its answer is passed on to the page.
    pub(super) turn_asked: bool,
}

impl Session {
    pub(super) fn new(id: SessionId, me: ParticipantId, token: ResumeToken) -> Self {
        Session {
            id,
            me,
            token,
            received_up_to: 0,
            acked_up_to: 0,
            next_seq: 1,
            unaccepted: VecDeque::new(),
            peers: BTreeMap::new(),
            gone: BTreeSet::new(),
            safety: SafetyBook::default(),
            last_code: None,
            roster_sent: None,
            agreed: Vec::new(),
            backlog: Vec::new(),
            intended_desk: None,
            handover: None,
            call: BTreeSet::new(),
            media_epoch: 0,
            turn_asked: false,
            intact: true,
            rejoining: false,
        }
    }

    /// Number, remember and queue `Send` frames for `envelopes`, at most
    /// [`MAX_ENVELOPES_PER_SEND`] per frame, in order. Every envelope's payload is within
    /// [`crate::limits::MAX_PAYLOAD_LEN`] (texts and notes are bounded, handshakes small), so
    /// every frame fits, and the relay never refuses one.
    pub(super) fn push_send(&mut self, out: &mut VecDeque<ClientFrame>, envelopes: Vec<Envelope>) {
        let mut envelopes = envelopes.into_iter().peekable();
        while envelopes.peek().is_some() {
            let chunk: Vec<Envelope> = envelopes.by_ref().take(MAX_ENVELOPES_PER_SEND).collect();
            let frame = ClientFrame::Send {
                session: self.id,
                seq: self.next_seq,
                envelopes: chunk,
            };
            self.next_seq = self.next_seq.saturating_add(1);
            self.unaccepted.push_back(frame.clone());
            out.push_back(frame);
        }
    }
}

/// Encrypt one plaintext for `to` on its channel.
pub(super) fn envelope(
    ch: &mut Channel,
    to: ParticipantId,
    plain: &[u8],
) -> Result<Envelope, Error> {
    let (nonce, data) = ch.encrypt(plain)?;
    Ok(Envelope {
        to,
        payload: Payload::Cipher { nonce, data },
    })
}

/// The sequence number of a `Send` frame (0 for anything else).
pub(super) fn seq_of(frame: &ClientFrame) -> u64 {
    match frame {
        ClientFrame::Send { seq, .. } => *seq,
        _ => 0,
    }
}
