//! Pairwise channels: who arrives, the Noise handshakes, restarting a channel that lost a
//! message, and what arrives on a channel.

use zeroize::Zeroizing;

use super::session::{Peer, PeerState};
use super::{Alarm, Client, Event, Identity, RESTART_MIN_INTERVAL_SECS};
use crate::content::{Content, open_plaintext, seal_plaintext};
use crate::error::Error;
use crate::identity::Role;
use crate::ids::{ParticipantId, SessionId};
use crate::limits::MAX_PARTICIPANTS;
use crate::noise::{CertPolicy, Handshake, HandshakeKind, prologue};
use crate::wire::{Envelope, Payload};

/// The anonymous person's participant number: the one who opened the session.
pub(super) const PERSON_ID: ParticipantId = ParticipantId(1);

impl Client {
    pub(super) fn staff_key(
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

    /// Which handshake this client starts with `peer`, or `None` when the peer starts.
    /// The person always starts towards staff; between two staff members, the one with the
    /// lower number. Both ends reach the same answer on their own.
    fn initiator_kind(&self, me: ParticipantId, peer: ParticipantId) -> Option<HandshakeKind> {
        match (&self.identity, peer == PERSON_ID) {
            (Identity::Person, _) => Some(HandshakeKind::PersonInitiator),
            (Identity::Staff(_), true) => None,
            (Identity::Staff(_), false) if me < peer => Some(HandshakeKind::StaffInitiator),
            (Identity::Staff(_), false) => None,
        }
    }

    pub(super) fn peer_arrived(
        &mut self,
        session: SessionId,
        id: ParticipantId,
        role: Option<Role>,
    ) -> Result<(), Error> {
        let i_am_person = matches!(self.identity, Identity::Person);
        let now = self.now_unix;
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let me = s.me;
        if id == me || s.peers.contains_key(&id) || s.peers.len() + 1 >= MAX_PARTICIPANTS {
            return Ok(());
        }
        let mut peer = Peer::new(role, now);
        // Exactly one anonymous participant: number 1, who opened the session. Anyone else
        // without a role is refused, sent nothing at all, and shown as an alarm.
        let second_person = role.is_none() && (i_am_person || id != PERSON_ID);
        let mut first = None;
        if second_person {
            peer.state = PeerState::Failed;
        } else if let Some(kind) = self.initiator_kind(me, id) {
            let mut hs = Handshake::new(kind, &prologue(&session, me, id), self.staff_key())?;
            first = Some(hs.write()?);
            peer.state = PeerState::Handshaking(Box::new(hs));
        }
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        s.peers.insert(id, peer);
        if let Some(msg) = first {
            s.push_send(
                &mut self.out,
                vec![Envelope {
                    to: id,
                    payload: Payload::Handshake(msg),
                }],
            );
        }
        self.events
            .push_back(Event::PeerArrived { session, peer: id });
        if second_person {
            self.alarm(session, Alarm::SecondPerson { peer: id });
        }
        self.refresh_code(session);
        Ok(())
    }

    pub(super) fn peer_payload(
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
            Payload::Restart => {
                let me = match self.sessions.get(&session) {
                    Some(s) => s.me,
                    None => return Ok(()),
                };
                // Only the pair's initiator acts on it: it starts a fresh handshake.
                if self.initiator_kind(me, from).is_some() {
                    self.restart_channel(session, from)?;
                }
                Ok(())
            }
        }
    }

    fn peer_handshake(
        &mut self,
        session: SessionId,
        from: ParticipantId,
        msg: &[u8],
    ) -> Result<(), Error> {
        let now = self.now_unix;
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let me = s.me;
        let Some(peer) = s.peers.get(&from) else {
            return Ok(());
        };
        let i_respond = self.initiator_kind(me, from).is_none();
        // A responder creates its handshake state on the first message; on a channel that
        // is up, a first message means the initiator restarted it (it lost a message, or
        // the person's page was reloaded). That always takes the initiator's part in a new
        // handshake, so it is not rate-limited: at worst it costs one handshake.
        let (fresh, restarted) = match &peer.state {
            PeerState::Waiting if i_respond => (true, false),
            PeerState::Waiting => {
                self.fail_peer(session, from, Error::Handshake, true);
                return Ok(());
            }
            PeerState::Ready(_) if i_respond => (true, true),
            _ => (false, false),
        };
        if fresh {
            let kind = if from == PERSON_ID {
                HandshakeKind::StaffAnsweringPerson
            } else {
                HandshakeKind::StaffResponder
            };
            let hs = Handshake::new(kind, &prologue(&session, from, me), self.staff_key())?;
            let Some(peer) = self
                .sessions
                .get_mut(&session)
                .and_then(|s| s.peers.get_mut(&from))
            else {
                return Ok(());
            };
            peer.state = PeerState::Handshaking(Box::new(hs));
            if restarted {
                peer.note_restart(now);
                self.channel_restarted(session, from);
            }
        }
        let revoked = std::mem::take(&mut self.revoked);
        let policy = CertPolicy {
            org: &self.org,
            revoked: &revoked,
            now_unix: self.now_unix,
        };
        let Some(peer) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.peers.get_mut(&from))
        else {
            self.revoked = revoked;
            return Ok(());
        };
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
        let reply = match step {
            Err(e) => {
                self.fail_peer(session, from, e, true);
                return Ok(());
            }
            Ok(reply) => reply,
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        if let Some(reply) = reply {
            s.push_send(
                &mut self.out,
                vec![Envelope {
                    to: from,
                    payload: Payload::Handshake(reply),
                }],
            );
        }
        let Some(peer) = s.peers.get_mut(&from) else {
            return Ok(());
        };
        if !matches!(&peer.state, PeerState::Handshaking(hs) if hs.is_finished()) {
            return Ok(());
        }
        let PeerState::Handshaking(hs) = std::mem::replace(&mut peer.state, PeerState::Failed)
        else {
            return Ok(());
        };
        match hs.into_channel() {
            Ok(ch) => {
                peer.state = PeerState::Ready(Box::new(ch));
                self.channel_ready(session, from)
            }
            Err(e) => {
                self.fail_peer(session, from, e, true);
                Ok(())
            }
        }
    }

    /// Replace the channel with `peer` by a new handshake: as the pair's initiator, start
    /// one; as the responder, ask the initiator to with `Restart`. Content to the peer waits
    /// until the roster with the new channel's hash is agreed again.
    fn restart_channel(&mut self, session: SessionId, peer: ParticipantId) -> Result<(), Error> {
        let now = self.now_unix;
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let me = s.me;
        let Some(p) = s.peers.get(&peer) else {
            return Ok(());
        };
        if matches!(p.state, PeerState::Failed)
            || p.last_restart
                .is_some_and(|t| now.saturating_sub(t) < RESTART_MIN_INTERVAL_SECS)
        {
            return Ok(());
        }
        let (state, payload) = match self.initiator_kind(me, peer) {
            Some(kind) => {
                let mut hs = Handshake::new(kind, &prologue(&session, me, peer), self.staff_key())?;
                let first = hs.write()?;
                (
                    PeerState::Handshaking(Box::new(hs)),
                    Payload::Handshake(first),
                )
            }
            None => (PeerState::Waiting, Payload::Restart),
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        if let Some(p) = s.peers.get_mut(&peer) {
            p.state = state;
            p.note_restart(now);
        }
        s.push_send(&mut self.out, vec![Envelope { to: peer, payload }]);
        self.channel_restarted(session, peer);
        Ok(())
    }

    /// Tell the user a channel is being replaced, and take it out of the agreed roster.
    fn channel_restarted(&mut self, session: SessionId, peer: ParticipantId) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.intact = false;
        }
        self.events
            .push_back(Event::ChannelRestarted { session, peer });
        self.refresh_code(session);
    }

    pub(super) fn fail_peer(
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
        p.admitted = false;
        p.held.clear();
        if tell_peer {
            s.push_send(
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
        // Whoever we refused is out of our roster: recompute, and maybe agree without them.
        let _ = self.roster_changed(session);
    }

    /// A channel is up: report its hash to everyone, tell the new peer ours, and confirm
    /// the roster. Content waits for the roster agreement (`roster`).
    fn channel_ready(&mut self, session: SessionId, peer: ParticipantId) -> Result<(), Error> {
        let now = self.now_unix;
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let me = s.me;
        let Some(ch) = s.peers.get(&peer).and_then(|p| p.channel()) else {
            return Ok(());
        };
        let (role, label) = match ch.peer_certificate() {
            Some(c) => (Some(c.role), Some(c.label.clone())),
            None => (None, None),
        };
        let hash = *ch.handshake_hash();
        s.safety.record(me, me, peer, hash, now);
        if let Some(p) = s.peers.get_mut(&peer) {
            p.unconfirm();
        }
        self.events.push_back(Event::PeerVerified {
            session,
            peer,
            role,
            label,
        });
        let own: Vec<Content> = s
            .safety
            .own_reports(me)
            .map(|(a, b, hash)| Content::ChannelHash { a, b, hash })
            .collect();
        let announce = Content::ChannelHash {
            a: me.min(peer),
            b: me.max(peer),
            hash,
        };
        let others: Vec<ParticipantId> = s
            .peers
            .iter()
            .filter(|(id, p)| **id != peer && p.channel().is_some())
            .map(|(id, _)| *id)
            .collect();
        for c in &own {
            self.send_control(session, peer, c)?;
        }
        for id in others {
            self.send_control(session, id, &announce)?;
        }
        self.roster_changed(session)
    }

    /// Encrypt a control message (channel hash, roster) to a peer whose channel is up,
    /// confirmed in the roster or not: these are what the roster agreement is built from.
    pub(super) fn send_control(
        &mut self,
        session: SessionId,
        to: ParticipantId,
        content: &Content,
    ) -> Result<(), Error> {
        let plain = seal_plaintext(content)?;
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let Some(PeerState::Ready(ch)) = s.peers.get_mut(&to).map(|p| &mut p.state) else {
            return Ok(());
        };
        let env = super::session::envelope(ch, to, &plain)?;
        s.push_send(&mut self.out, vec![env]);
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
        let Some(peer) = s.peers.get_mut(&from) else {
            // Not a participant we know: it cannot be read, and the user is told.
            s.intact = false;
            self.events.push_back(Event::Undecryptable {
                session,
                peer: from,
            });
            return Ok(());
        };
        let PeerState::Ready(ch) = &mut peer.state else {
            // During a restart, messages under the old keys cannot be read any more.
            if !matches!(peer.state, PeerState::Failed) {
                s.intact = false;
                self.events.push_back(Event::Undecryptable {
                    session,
                    peer: from,
                });
            }
            return Ok(());
        };
        let expected = ch.next_recv_nonce();
        if nonce < expected {
            return Ok(()); // a replay of something already read: drop it quietly
        }
        let content = match ch.decrypt(nonce, data).and_then(|p| open_plaintext(&p)) {
            Ok(c) => c,
            Err(_) => {
                // A message went missing (a gap in the nonces) or was altered: this
                // direction cannot be trusted to carry on. Replace the channel and say so.
                s.intact = false;
                self.events.push_back(Event::Undecryptable {
                    session,
                    peer: from,
                });
                return self.restart_channel(session, from);
            }
        };
        self.peer_content(session, from, content)
    }

    /// What a verified channel carried.
    fn peer_content(
        &mut self,
        session: SessionId,
        from: ParticipantId,
        content: Content,
    ) -> Result<(), Error> {
        let now = self.now_unix;
        let i_am_person = matches!(self.identity, Identity::Person);
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let me = s.me;
        let Some(peer) = s.peers.get(&from) else {
            return Ok(());
        };
        let cert = peer.channel().and_then(|c| c.peer_certificate());
        let from_person = cert.is_none();
        let from_operator = cert.is_some_and(|c| c.role == Role::Operator);
        let admitted = peer.admitted;
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
                if from_person && !i_am_person {
                    self.events.push_back(Event::Intake {
                        session,
                        from,
                        seeker,
                    });
                }
            }
            Content::HandoverNote { desk, body } => {
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
            Content::ChannelHash { a, b, hash } => {
                // A participant may only report channels it is part of.
                if a != from && b != from {
                    return Ok(());
                }
                let other = if a == from { b } else { a };
                if other != me && !s.peers.contains_key(&other) && !s.gone.contains(&other) {
                    // The relay shows that member someone it never showed us.
                    self.alarm(
                        session,
                        Alarm::UnknownMember {
                            peer: from,
                            unknown: other,
                        },
                    );
                    return Ok(());
                }
                s.safety.record(from, a, b, hash, now);
                self.roster_changed(session)?;
            }
            Content::Roster { members, digest } => {
                self.peer_roster(session, from, members, digest)?;
            }
            Content::NotSafe => {
                if from_person && !i_am_person {
                    self.events.push_back(Event::NotSafe { session, from });
                }
            }
            Content::Transferred { desk } => {
                if i_am_person && from_operator && admitted {
                    s.intended_desk = Some(desk.clone());
                    self.events.push_back(Event::Transferred { session, desk });
                }
            }
        }
        Ok(())
    }
}

impl Peer {
    /// Record a restart: the channel must be confirmed in the roster again.
    fn note_restart(&mut self, now: u64) {
        self.last_restart = Some(now);
        self.since = now;
        self.alarmed = false;
        self.unconfirm();
    }

    /// A new channel: whatever was confirmed about the old one no longer counts.
    fn unconfirm(&mut self) {
        self.admitted = false;
        self.confirmed = None;
        self.differs_since = None;
    }
}
