//! Membership: participants joining and leaving, what they send, and the end of a
//! session. Delivery of events (windows, storage, resume) is in `delivery`.

use super::*;

impl Switchboard {
    pub(super) fn leave(
        &mut self,
        conn: ConnId,
        session: SessionId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        if self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .is_some_and(|p| p.role.is_none())
        {
            self.end_session(session, "person left", now);
        } else {
            self.depart(session, pid, now);
        }
        Ok(())
    }

    pub(super) fn end(
        &mut self,
        conn: ConnId,
        session: SessionId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        let role = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .and_then(|p| p.role);
        match role {
            None | Some(Role::Operator) => self.end_session(session, "ended by a participant", now),
            _ => self.depart(session, pid, now),
        }
        Ok(())
    }

    pub(super) fn send_envelopes(
        &mut self,
        conn: ConnId,
        session: SessionId,
        seq: u64,
        envelopes: Vec<approdo_core::wire::Envelope>,
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
            let mut lost = false;
            for env in deliveries {
                let event = SessionEvent::Message {
                    from,
                    payload: env.payload,
                };
                lost |= !self.deliver(session, env.to, event, now);
            }
            if lost {
                // The away recipient was removed rather than lose the event in silence:
                // the sender hears why (the others got `Departed`, or `Ended`).
                self.refuse(conn, ErrorCode::QuotaExceeded);
            }
        }
        if !self.accepted_owed.contains(&(conn, session, from)) {
            self.accepted_owed.push((conn, session, from));
        }
        Ok(())
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

    pub(super) fn add_participant(
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
        s.next_pid = s.next_pid.checked_add(1).ok_or(ErrorCode::SessionFull)?;
        s.last_activity = now;
        let token = ResumeToken::random();
        let existing: Vec<(ParticipantId, Option<Role>)> =
            s.participants.iter().map(|(id, p)| (*id, p.role)).collect();
        let in_call = self.calls.members(&session);
        s.participants.insert(
            pid,
            Participant::new(Some(cert.role), Some(cert.serial), token_hash(&token), conn),
        );
        self.tokens.insert(token_hash(&token), (session, pid));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.memberships.insert((session, pid));
        }
        tracing::debug!(conn, role = cert.role.as_str(), "staff joined a session");
        self.outbox.frame(
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
        self.lobby.changed();
        Ok(())
    }

    /// A staff member leaves; the session carries on (back to the queue if no operator
    /// remains with the person).
    pub(super) fn depart(&mut self, session: SessionId, pid: ParticipantId, now: Instant) {
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
        self.stored_bytes = self.stored_bytes.saturating_sub(p.stored_bytes);
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
        self.lobby.changed();
    }

    /// End a session: tell whoever is connected, forget everything, wipe the key.
    pub(super) fn end_session(&mut self, session: SessionId, why: &'static str, now: Instant) {
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
                .insert(self.ended_key.of(&session), (operators, now));
        }
        self.calls.end_session(&session, &mut self.outbox);
        for (pid, p) in &s.participants {
            self.stored_bytes = self.stored_bytes.saturating_sub(p.stored_bytes);
            self.tokens.remove(&p.token_hash);
            if let Some(conn) = p.conn {
                let frame = RelayFrame::Event {
                    session,
                    seq: p.next_seq,
                    event: SessionEvent::Ended,
                };
                self.outbox.frame(conn, &frame);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.memberships.remove(&(session, *pid));
                }
            }
        }
        if let Err(e) = self.store.end(&session) {
            tracing::error!(error = %e, "store cleanup failed");
        }
        tracing::debug!(reason = why, "session ended");
        self.lobby.changed();
    }
}

/// The length of what an envelope carries: the Noise message, or nothing.
fn payload_len(p: &approdo_core::wire::Payload) -> usize {
    match p {
        approdo_core::wire::Payload::Handshake(bytes) => bytes.len(),
        approdo_core::wire::Payload::Cipher { data, .. } => data.len(),
        approdo_core::wire::Payload::HandshakeRefused | approdo_core::wire::Payload::Restart => 0,
    }
}
