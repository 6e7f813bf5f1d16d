//! Agreed membership. The relay decides who joins a session, so it could add a hidden
//! participant; this is where the members check each other instead.
//!
//! Each member computes the roster digest of the members whose channels it has verified
//! (numbers, certified roles, serials, every channel's hash: [`crate::safety`]) and sends it
//! over each channel ([`Content::Roster`]) whenever it changes. A peer is *admitted* — may
//! receive content, notes, the backlog, frame keys — once every member has confirmed the
//! same roster including them. Disagreements become alarms: at once when a member speaks of
//! someone we were never shown or accepts someone we refused, after a short grace when the
//! same members come with different hashes, and after [`ROSTER_CONFIRM_TIMEOUT_SECS`] when a
//! newcomer is never confirmed. The safety code is derived from the same digest.

use super::session::{PeerState, Session};
use super::{
    Alarm, Client, Event, Identity, ROSTER_CONFIRM_TIMEOUT_SECS, ROSTER_MISMATCH_GRACE_SECS,
};
use crate::content::{Content, seal_plaintext};
use crate::error::Error;
use crate::identity::Role;
use crate::ids::{DeskId, ParticipantId, SessionId};
use crate::safety::{RosterGap, RosterMember, SafetyCode, code_of};
use crate::wire::ClientFrame;

impl Client {
    /// This client's own entry in the roster.
    fn own_member(&self, me: ParticipantId) -> RosterMember {
        match &self.identity {
            Identity::Person => RosterMember {
                id: me,
                role: None,
                serial: None,
            },
            Identity::Staff(c) => RosterMember {
                id: me,
                role: Some(c.info.role),
                serial: Some(c.info.serial),
            },
        }
    }

    /// The verified members (this client and every peer whose channel is up), sorted.
    fn verified_roster(&self, s: &Session) -> Vec<RosterMember> {
        let mut members = vec![self.own_member(s.me)];
        for (id, p) in &s.peers {
            if let Some(ch) = p.channel() {
                let cert = ch.peer_certificate();
                members.push(RosterMember {
                    id: *id,
                    role: cert.map(|c| c.role),
                    serial: cert.map(|c| c.serial),
                });
            }
        }
        members.sort_by_key(|m| m.id);
        members
    }

    /// Something the roster depends on changed (a channel, a report, a departure): confirm
    /// the new roster to everyone, see whether all agree, and update the safety code.
    pub(super) fn roster_changed(&mut self, session: SessionId) -> Result<(), Error> {
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let roster = self.verified_roster(s);
        let digest = s.safety.roster_digest(&session, &roster);
        if let Ok(digest) = digest
            && s.roster_sent != Some(digest)
        {
            let members: Vec<ParticipantId> = roster.iter().map(|m| m.id).collect();
            let to: Vec<ParticipantId> = members.iter().copied().filter(|m| *m != s.me).collect();
            if let Some(s) = self.sessions.get_mut(&session) {
                s.roster_sent = Some(digest);
            }
            let content = Content::Roster { members, digest };
            for id in to {
                self.send_control(session, id, &content)?;
            }
        }
        let members: Vec<ParticipantId> = roster.iter().map(|m| m.id).collect();
        if let Ok(digest) = digest {
            self.check_agreement(session, members, digest)?;
        }
        self.show_code(session, digest);
        Ok(())
    }

    /// A member confirmed the roster it sees.
    pub(super) fn peer_roster(
        &mut self,
        session: SessionId,
        from: ParticipantId,
        mut members: Vec<ParticipantId>,
        digest: [u8; 32],
    ) -> Result<(), Error> {
        members.sort();
        members.dedup();
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let me = s.me;
        // Someone the relay never showed us, or someone we refused: the relay shows that
        // member another session than ours.
        let unknown = members
            .iter()
            .find(|m| **m != me && !s.peers.contains_key(m) && !s.gone.contains(m))
            .copied();
        let refused = members
            .iter()
            .any(|m| matches!(s.peers.get(m), Some(p) if matches!(p.state, PeerState::Failed)));
        if let Some(unknown) = unknown {
            self.alarm(
                session,
                Alarm::UnknownMember {
                    peer: from,
                    unknown,
                },
            );
        } else if refused || !members.contains(&me) || !members.contains(&from) {
            self.alarm(session, Alarm::RosterMismatch { peer: from });
        }
        if let Some(p) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.peers.get_mut(&from))
        {
            p.confirmed = Some((members, digest));
        }
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let roster = self.verified_roster(s);
        match s.safety.roster_digest(&session, &roster) {
            Ok(ours) => self.check_agreement(session, roster.iter().map(|m| m.id).collect(), ours),
            Err(_) => Ok(()),
        }
    }

    /// Admit every member once all confirmed the roster we see (`members`, `digest`); note
    /// disagreements.
    fn check_agreement(
        &mut self,
        session: SessionId,
        members: Vec<ParticipantId>,
        digest: [u8; 32],
    ) -> Result<(), Error> {
        let now = self.now_unix;
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let me = s.me;
        let mut all_agree = true;
        for id in members.iter().filter(|m| **m != me) {
            let Some(p) = s.peers.get_mut(id) else {
                all_agree = false;
                continue;
            };
            match &p.confirmed {
                Some((theirs, d)) if *theirs == members && *d == digest => {
                    p.differs_since = None;
                }
                Some((theirs, _)) if *theirs == members => {
                    // The same people with different channels, roles or serials: someone is
                    // in the middle, unless a channel was just re-established.
                    p.differs_since.get_or_insert(now);
                    all_agree = false;
                }
                _ => {
                    p.differs_since = None;
                    all_agree = false;
                }
            }
        }
        if !all_agree {
            return Ok(());
        }
        let newly: Vec<ParticipantId> = members
            .iter()
            .copied()
            .filter(|m| *m != me && s.peers.get(m).is_some_and(|p| !p.admitted))
            .collect();
        if s.agreed != members {
            s.agreed = members.clone();
            self.events
                .push_back(Event::RosterAgreed { session, members });
        }
        for id in newly {
            self.admit(session, id)?;
        }
        Ok(())
    }

    /// Everyone confirmed a roster including `peer`: deliver what waited for them.
    fn admit(&mut self, session: SessionId, peer: ParticipantId) -> Result<(), Error> {
        let national = self.national_desk.clone();
        let intake = self.intake;
        let i_am_person = matches!(self.identity, Identity::Person);
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let Some(p) = s.peers.get_mut(&peer) else {
            return Ok(());
        };
        p.admitted = true;
        let cert = p.channel().and_then(|c| c.peer_certificate()).cloned();
        let operator_desks = cert
            .as_ref()
            .filter(|c| c.role == Role::Operator)
            .map(|c| c.desks.clone());
        let mut plains = Vec::new();
        // The person's first words and intake go only to an operator of the desk they
        // asked for (or a national one), never to whoever is confirmed first.
        let eligible = operator_desks
            .as_ref()
            .is_some_and(|desks| desk_serves(desks, s.intended_desk.as_ref(), national.as_ref()));
        if i_am_person && eligible {
            plains.append(&mut s.backlog);
            if let (Some(seeker), false) = (intake, p.intake_sent) {
                p.intake_sent = true;
                plains.push(seal_plaintext(&Content::Intake { seeker })?);
            }
        }
        plains.extend(p.held.drain(..));
        // A transfer: the note goes to an operator of the desk it names, then we leave.
        let handover = match (&s.handover, &operator_desks) {
            (Some((desk, _)), Some(desks)) if desks.contains(desk) => s.handover.take(),
            _ => None,
        };
        let leave_after = handover.is_some();
        if let Some((desk, note)) = handover {
            plains.push(seal_plaintext(&Content::HandoverNote {
                desk,
                body: note.to_string(),
            })?);
        }
        let mut envelopes = Vec::new();
        if let Some(PeerState::Ready(ch)) = s.peers.get_mut(&peer).map(|p| &mut p.state) {
            for plain in plains {
                envelopes.push(super::session::envelope(ch, peer, &plain)?);
            }
        }
        s.push_send(&mut self.out, envelopes);
        if leave_after {
            self.out.push_back(ClientFrame::Leave { session });
            self.forget(session);
        }
        Ok(())
    }

    /// Alarms that need time: a newcomer never confirmed, a disagreement that lasted.
    pub(super) fn roster_timeouts(&mut self, session: SessionId) {
        let now = self.now_unix;
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let mut alarms = Vec::new();
        for (id, p) in s.peers.iter_mut() {
            if p.alarmed || matches!(p.state, PeerState::Failed) {
                continue;
            }
            if p.differs_since
                .is_some_and(|t| now.saturating_sub(t) >= ROSTER_MISMATCH_GRACE_SECS)
            {
                p.alarmed = true;
                alarms.push(Alarm::RosterMismatch { peer: *id });
            } else if !p.admitted && now.saturating_sub(p.since) >= ROSTER_CONFIRM_TIMEOUT_SECS {
                p.alarmed = true;
                alarms.push(Alarm::RosterUnconfirmed { peer: *id });
            }
        }
        for alarm in alarms {
            self.alarm(session, alarm);
        }
        self.refresh_code(session);
    }

    /// Put an alarm on screen. The session's words are no longer "intact" either.
    pub(super) fn alarm(&mut self, session: SessionId, alarm: Alarm) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.intact = false;
        }
        self.events
            .push_back(Event::MembershipAlarm { session, alarm });
    }

    /// Recompute the safety code from the roster digest of everyone present (a member
    /// still handshaking keeps it pending); tell the page when it changes.
    pub(super) fn refresh_code(&mut self, session: SessionId) {
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        let roster = self.verified_roster(s);
        let digest = s.safety.roster_digest(&session, &roster);
        self.show_code(session, digest);
    }

    /// The safety code of the roster digest just computed (see [`Self::refresh_code`]).
    fn show_code(&mut self, session: SessionId, digest: Result<[u8; 32], RosterGap>) {
        let now = self.now_unix;
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        let waiting = s
            .peers
            .values()
            .any(|p| !matches!(p.state, PeerState::Ready(_) | PeerState::Failed));
        let code = if waiting {
            SafetyCode::Pending
        } else {
            match digest {
                Ok(d) => SafetyCode::Ready(code_of(&d)),
                Err(RosterGap::Conflict { since })
                    if now.saturating_sub(since) >= ROSTER_MISMATCH_GRACE_SECS =>
                {
                    SafetyCode::Mismatch
                }
                Err(_) => SafetyCode::Pending,
            }
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        if s.last_code.as_ref() != Some(&code) {
            s.last_code = Some(code.clone());
            self.events.push_back(Event::SafetyCode { session, code });
        }
    }
}

/// Whether an operator certified for `desks` may take the person's words: an operator of
/// the desk asked for, or of the national desk (who takes regional cases when no regional
/// operator is there). Without a known national desk, any operator of the desk asked for;
/// with no desk asked for, national operators (or, not knowing which desk is national, any
/// operator).
fn desk_serves(desks: &[DeskId], wanted: Option<&DeskId>, national: Option<&DeskId>) -> bool {
    let national_op = national.is_some_and(|n| desks.contains(n));
    match (wanted, national) {
        (Some(w), _) => desks.contains(w) || national_op,
        (None, Some(_)) => national_op,
        (None, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::channels::PERSON_ID;
    use super::*;

    fn tag(s: &str) -> DeskId {
        DeskId::new(s).expect("tag")
    }

    #[test]
    fn only_operators_of_the_wanted_or_national_desk_serve() {
        let (nat, tos, ven) = (tag("national"), tag("toscana"), tag("veneto"));
        let (n, t, v) = (vec![nat.clone()], vec![tos.clone()], vec![ven.clone()]);
        assert!(desk_serves(&t, Some(&tos), Some(&nat)));
        assert!(desk_serves(&n, Some(&tos), Some(&nat)));
        assert!(!desk_serves(&v, Some(&tos), Some(&nat)));
        assert!(!desk_serves(&v, None, Some(&nat)));
        assert!(desk_serves(&n, None, Some(&nat)));
        assert!(desk_serves(&v, None, None));
        assert!(!desk_serves(&[ven], Some(&tos), None));
    }

    #[test]
    fn the_person_is_participant_one() {
        assert_eq!(PERSON_ID, ParticipantId(1));
    }
}
