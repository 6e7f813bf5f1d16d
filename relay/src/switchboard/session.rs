//! Membership and delivery: participants joining and leaving, ordered events with
//! acknowledgement windows, storage for those away, resume, and the end of a session.

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
            self.end_session(session, "person left");
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
            None | Some(Role::Operator) => self.end_session(session, "ended by a participant"),
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

    pub(super) fn ack(
        &mut self,
        conn: ConnId,
        session: SessionId,
        up_to: u64,
    ) -> Result<(), ErrorCode> {
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
    pub(super) fn end_session(&mut self, session: SessionId, why: &'static str) {
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
    pub(super) fn deliver(
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

    pub(super) fn drop_participant(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        now: Instant,
    ) {
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

    pub(super) fn resume(
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
}
