//! Membership: participants joining and leaving, what they send, and the end of a
//! session. Delivery of events (windows, storage, resume) is in `delivery`.

use approdo_core::identity::{Certificate, Role};
use approdo_core::ids::{ParticipantId, ResumeToken, SessionId};
use approdo_core::limits::MAX_PARTICIPANTS;
use approdo_core::wire::{Envelope, ErrorCode, RelayFrame, SessionEvent};

use super::{ConnId, Effects, Participant, Sessions, token_hash};

impl Sessions {
    /// The participant sent `Leave`: the person's leaving ends the session, a staff
    /// member's leaves it to the others.
    pub(in crate::switchboard) fn leave(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        fx: &mut Effects<'_>,
    ) {
        self.remove(session, pid, "person left", fx);
    }

    /// The participant sent `End`: the person or an operator ends the session; anyone
    /// else only leaves it.
    pub(in crate::switchboard) fn end(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        fx: &mut Effects<'_>,
    ) {
        let role = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .and_then(|p| p.role);
        match role {
            None | Some(Role::Operator) => self.end_session(session, "ended by a participant", fx),
            _ => self.depart(session, pid, fx),
        }
    }

    /// A `Send` from `from` on `conn`, envelopes already checked for size: each goes to
    /// its recipient as an event, once per sequence number; the sender is owed an
    /// `Accepted`. True when an away recipient could not keep its event and was removed
    /// (the sender is to hear why).
    pub(in crate::switchboard) fn relay(
        &mut self,
        conn: ConnId,
        session: SessionId,
        from: ParticipantId,
        seq: u64,
        envelopes: Vec<Envelope>,
        fx: &mut Effects<'_>,
    ) -> Result<bool, ErrorCode> {
        let s = self.session_mut(&session)?;
        let p = s
            .participants
            .get_mut(&from)
            .ok_or(ErrorCode::UnknownSession)?;
        let mut lost = false;
        if seq > p.accepted_up_to {
            p.accepted_up_to = seq;
            s.last_activity = fx.now;
            let deliveries: Vec<_> = envelopes
                .into_iter()
                .filter(|env| env.to != from && s.participants.contains_key(&env.to))
                .collect();
            for env in deliveries {
                let event = SessionEvent::Message {
                    from,
                    payload: env.payload,
                };
                lost |= !self.deliver(session, env.to, event, fx);
            }
        }
        if !self.accepted_owed.contains(&(conn, session, from)) {
            self.accepted_owed.push((conn, session, from));
        }
        Ok(lost)
    }

    /// Keep the session's routing metadata sealed in the store (language, desk, roles).
    pub(super) fn save_meta(&mut self, id: &SessionId) {
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

    /// A staff member joins the session on `conn`: it gets its token and is told who is
    /// here and in the call; the others are told it arrived.
    pub(in crate::switchboard) fn add_participant(
        &mut self,
        conn: ConnId,
        session: SessionId,
        cert: &Certificate,
        fx: &mut Effects<'_>,
    ) -> Result<(), ErrorCode> {
        let s = self.session_mut(&session)?;
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
        s.next_pid = s.next_pid.checked_add(1).ok_or(ErrorCode::SessionFull)?;
        s.last_activity = fx.now;
        let token = ResumeToken::random();
        let existing: Vec<(ParticipantId, Option<Role>)> =
            s.participants.iter().map(|(id, p)| (*id, p.role)).collect();
        let in_call = fx.calls.members(&session);
        s.participants.insert(
            pid,
            Participant::new(Some(cert.role), Some(cert.serial), token_hash(&token), conn),
        );
        self.tokens.insert(token_hash(&token), (session, pid));
        self.link(conn, session, pid);
        tracing::debug!(conn, role = cert.role.as_str(), "staff joined a session");
        fx.out.frame(
            conn,
            &RelayFrame::Joined {
                session,
                you: pid,
                token,
            },
        );
        for (id, role) in &existing {
            let event = SessionEvent::Arrived {
                id: *id,
                role: *role,
            };
            self.deliver(session, pid, event, fx);
        }
        for id in in_call {
            let event = SessionEvent::Call { id, joined: true };
            self.deliver(session, pid, event, fx);
        }
        for (id, _) in existing {
            let event = SessionEvent::Arrived {
                id: pid,
                role: Some(cert.role),
            };
            self.deliver(session, id, event, fx);
        }
        self.save_meta(&session);
        self.queue_changed = true;
        Ok(())
    }

    /// A staff member leaves; the session carries on (back to the queue if no operator
    /// remains with the person).
    pub(in crate::switchboard) fn depart(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        fx: &mut Effects<'_>,
    ) {
        self.leave_call(session, pid, fx);
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(p) = s.participants.remove(&pid) else {
            return;
        };
        let no_operator = !s
            .participants
            .values()
            .any(|p| p.role == Some(Role::Operator));
        if no_operator && s.waiting_since.is_none() {
            s.waiting_since = Some(fx.now);
        }
        let others: Vec<ParticipantId> = s.participants.keys().copied().collect();
        self.tokens.remove(&p.token_hash);
        if let Some(c) = p.conn {
            self.unlink(c, session, pid);
        }
        self.stored_bytes = self.stored_bytes.saturating_sub(p.stored_bytes);
        if let Err(e) = self.store.drop_events(&session, pid) {
            tracing::error!(error = %e, "store cleanup failed");
        }
        for id in others {
            self.deliver(session, id, SessionEvent::Departed { id: pid }, fx);
        }
        self.save_meta(&session);
        self.queue_changed = true;
    }

    /// End a session: tell whoever is connected, forget everything, wipe the key.
    pub(in crate::switchboard) fn end_session(
        &mut self,
        session: SessionId,
        why: &'static str,
        fx: &mut Effects<'_>,
    ) {
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
                .insert(self.ended_key.of(&session), (operators, fx.now));
        }
        fx.calls.end_session(&session, fx.out);
        for (pid, p) in &s.participants {
            self.stored_bytes = self.stored_bytes.saturating_sub(p.stored_bytes);
            self.tokens.remove(&p.token_hash);
            if let Some(conn) = p.conn {
                let frame = RelayFrame::Event {
                    session,
                    seq: p.next_seq,
                    event: SessionEvent::Ended,
                };
                fx.out.frame(conn, &frame);
                self.unlink(conn, session, *pid);
            }
        }
        if let Err(e) = self.store.end(&session) {
            tracing::error!(error = %e, "store cleanup failed");
        }
        tracing::debug!(reason = why, "session ended");
        self.queue_changed = true;
    }

    /// A participant who cannot stay (gone past the grace period, over a quota, or
    /// revoked) leaves; if it is the person, the session ends.
    pub(in crate::switchboard) fn drop_participant(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        fx: &mut Effects<'_>,
    ) {
        self.remove(session, pid, "person gone", fx);
    }

    /// Take the participant out of the session: a staff member departs, the person's
    /// going ends the session (for `why`).
    fn remove(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        why: &'static str,
        fx: &mut Effects<'_>,
    ) {
        let is_person = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .is_some_and(|p| p.role.is_none());
        if is_person {
            self.end_session(session, why, fx);
        } else {
            self.depart(session, pid, fx);
        }
    }

    /// Take a participant out of the call, if in it: its peer connection closes and
    /// everyone is told.
    pub(in crate::switchboard) fn leave_call(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        fx: &mut Effects<'_>,
    ) {
        if fx.calls.leave(&session, pid, fx.out) {
            self.announce_call(session, pid, false, fx);
        }
    }

    /// Tell every participant, `pid` included, that it entered or left the call.
    pub(in crate::switchboard) fn announce_call(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        joined: bool,
        fx: &mut Effects<'_>,
    ) {
        let everyone: Vec<ParticipantId> = self
            .sessions
            .get(&session)
            .map(|s| s.participants.keys().copied().collect())
            .unwrap_or_default();
        for id in everyone {
            let event = SessionEvent::Call { id: pid, joined };
            self.deliver(session, id, event, fx);
        }
    }
}
