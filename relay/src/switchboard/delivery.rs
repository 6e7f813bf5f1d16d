//! Delivery of events: numbered per participant, held until acknowledged on the live
//! connection, sealed into the store (within quotas) while the participant is away, and
//! replayed on resume with a fresh token.

use super::*;

/// Why an event could not be kept for an away participant.
enum Unkept {
    /// Their count, the session's bytes or the relay's bytes would go over the quota.
    Quota,
    /// The store refused the write.
    Store,
}

impl Switchboard {
    /// Deliver an event to a participant: on the live connection, or sealed into the store
    /// while they are away. False when the participant was away and the event could not be
    /// kept: the participant has then been removed from the session (the person: the
    /// session ended), so no event is lost in silence.
    pub(super) fn deliver(
        &mut self,
        session: SessionId,
        to: ParticipantId,
        event: SessionEvent,
        now: Instant,
    ) -> bool {
        let max_unacked = self.config.limits.max_unacked;
        let Some(p) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&to))
        else {
            return true;
        };
        let seq = p.next_seq;
        let Ok(encoded) = wire::encode(&RelayFrame::Event {
            session,
            seq,
            event,
        }) else {
            // Input limits make this unreachable; never panic on it.
            tracing::error!("a session event exceeded the frame limit and was dropped");
            return true;
        };
        p.next_seq = p.next_seq.saturating_add(1);
        let bytes: Bytes = encoded.into();
        match p.conn {
            Some(conn) if p.unacked.len() < max_unacked => {
                // Nothing waits (or this one would wait behind it) while the window has room.
                let on_the_wire = p.unacked.partition_point(|(s, _)| *s <= p.sent_up_to);
                p.unacked.push_back((seq, bytes.clone()));
                if on_the_wire < SEND_WINDOW {
                    p.sent_up_to = seq;
                    self.outbox.encoded(conn, bytes);
                }
                true
            }
            Some(conn) => {
                // It does not read what it is sent: cut it off; it may resume.
                p.unacked.push_back((seq, bytes));
                self.outbox.frame(
                    conn,
                    &RelayFrame::Error {
                        code: ErrorCode::SlowConsumer,
                    },
                );
                self.outbox.close(conn);
                self.disconnected(conn, now);
                true
            }
            None => match self.keep(session, to, seq, &bytes) {
                Ok(()) => true,
                Err(why) => {
                    match why {
                        Unkept::Quota => {
                            tracing::debug!("store quota reached; participant removed")
                        }
                        Unkept::Store => tracing::error!("store write failed; participant removed"),
                    }
                    self.drop_participant(session, to, now);
                    false
                }
            },
        }
    }

    /// Seal one event for an away participant, within the per-participant count and the
    /// per-session and relay-wide byte quotas.
    fn keep(
        &mut self,
        session: SessionId,
        to: ParticipantId,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), Unkept> {
        let limits = &self.config.limits;
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let Some(s) = self.sessions.get(&session) else {
            return Ok(());
        };
        let session_bytes: u64 = s
            .participants
            .values()
            .map(|p| p.stored_bytes)
            .fold(0, u64::saturating_add);
        let Some(p) = s.participants.get(&to) else {
            return Ok(());
        };
        if p.stored >= limits.max_stored_per_participant
            || session_bytes.saturating_add(len) > limits.max_stored_bytes_per_session
            || self.stored_bytes.saturating_add(len) > limits.max_stored_bytes
        {
            return Err(Unkept::Quota);
        }
        if self.store.put_event(&session, to, seq, bytes).is_err() {
            return Err(Unkept::Store);
        }
        self.stored_bytes = self.stored_bytes.saturating_add(len);
        if let Some(p) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&to))
        {
            p.stored = p.stored.saturating_add(1);
            p.stored_bytes = p.stored_bytes.saturating_add(len);
        }
        Ok(())
    }

    /// A participant who cannot stay (gone past the grace period, or over a quota) leaves;
    /// if it is the person, the session ends.
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
            self.end_session(session, "person gone", now);
        } else {
            self.depart(session, pid, now);
        }
    }

    /// A cumulative acknowledgement. One that releases nothing costs from the connection's
    /// light budget; one that releases events is free, being bounded by what others sent.
    pub(super) fn ack(
        &mut self,
        conn: ConnId,
        session: SessionId,
        up_to: u64,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let pid = match self.require_member(conn, &session, None) {
            Ok(pid) => Some(pid),
            Err(ErrorCode::UnknownSession) => None,
            Err(e) => return Err(e),
        };
        let mut released = 0usize;
        if let Some(p) = pid.and_then(|pid| {
            self.sessions
                .get_mut(&session)
                .and_then(|s| s.participants.get_mut(&pid))
        }) {
            while p.unacked.front().is_some_and(|(seq, _)| *seq <= up_to) {
                p.unacked.pop_front();
                released = released.saturating_add(1);
            }
            // What waited for the window goes out now.
            if let Some(live) = p.conn {
                send_within_window(p, live, &mut self.outbox);
            }
        }
        if released == 0 {
            let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
            if !c.light.try_take(now) {
                return Err(ErrorCode::RateLimited);
            }
        }
        // An ack for a session this connection is not in (it just ended) is harmless.
        pid.map(|_| ()).ok_or(ErrorCode::UnknownSession)
    }

    pub(super) fn resume(
        &mut self,
        conn: ConnId,
        token: &ResumeToken,
        received_up_to: u64,
        now: Instant,
        fresh_keys: bool,
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
        // A page that lost its keys (a reload) can only be the person's.
        if !allowed || (fresh_keys && p.serial.is_some()) {
            return Err(ErrorCode::ResumeFailed);
        }
        // A connection still holding the seat is replaced: it is told so and closed, and
        // what it had not acknowledged is kept for the replay below.
        if let Some(old) = p.conn.filter(|old| *old != conn)
            && self.conns.contains_key(&old)
        {
            self.refuse(old, ErrorCode::Replaced);
            self.disconnected(old, now);
        }
        let stored = self
            .store
            .take_events(&session, pid)
            .map_err(|_| ErrorCode::ResumeFailed)?;
        let new_token = ResumeToken::random();
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::ResumeFailed)?;
        // Whatever the person last saw may have been lost with the connection.
        s.last_status = None;
        let p = s
            .participants
            .get_mut(&pid)
            .ok_or(ErrorCode::ResumeFailed)?;
        let mut events: BTreeMap<u64, Bytes> = stored
            .into_iter()
            .map(|(q, b)| (q, Bytes::copy_from_slice(&b)))
            .collect();
        events.extend(p.unacked.drain(..));
        // After a reload the old keys are gone: what was kept for the old page can never be
        // read, so it is dropped, and the page is told who is here instead (below).
        events.retain(|seq, _| !fresh_keys && *seq > received_up_to);
        p.conn = Some(conn);
        p.away_since = None;
        p.stored = 0;
        let freed = std::mem::take(&mut p.stored_bytes);
        let old_hash = std::mem::replace(&mut p.token_hash, token_hash(&new_token));
        let accepted_up_to = p.accepted_up_to;
        p.unacked = events.into_iter().collect();
        p.sent_up_to = 0;
        let is_person = p.role.is_none();
        self.stored_bytes = self.stored_bytes.saturating_sub(freed);
        // The token just used dies; only the new one resumes from now on.
        self.tokens.remove(&old_hash);
        self.tokens.insert(token_hash(&new_token), (session, pid));
        if let Some(c) = self.conns.get_mut(&conn) {
            if is_person {
                c.state = ConnState::Person;
            }
            c.memberships.insert((session, pid));
        }
        self.outbox.frame(
            conn,
            &RelayFrame::Resumed {
                session,
                you: pid,
                accepted_up_to,
            },
        );
        self.outbox.frame(
            conn,
            &RelayFrame::NewToken {
                session,
                token: new_token,
            },
        );
        // The replay, a window at a time: the rest follows the acknowledgements.
        if let Some(p) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&pid))
        {
            send_within_window(p, conn, &mut self.outbox);
        }
        if fresh_keys {
            self.announce_everyone_to(session, pid, now);
        }
        tracing::debug!(conn, "participant resumed");
        self.lobby.changed();
        Ok(())
    }

    /// Tell a participant who rejoined with new keys who is in the session and in its call,
    /// as a newcomer is told.
    fn announce_everyone_to(&mut self, session: SessionId, pid: ParticipantId, now: Instant) {
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        let others: Vec<(ParticipantId, Option<Role>)> = s
            .participants
            .iter()
            .filter(|(id, _)| **id != pid)
            .map(|(id, p)| (*id, p.role))
            .collect();
        let in_call: Vec<ParticipantId> = self
            .calls
            .members(&session)
            .into_iter()
            .filter(|id| *id != pid)
            .collect();
        for (id, role) in others {
            self.deliver(session, pid, SessionEvent::Arrived { id, role }, now);
        }
        for id in in_call {
            self.deliver(session, pid, SessionEvent::Call { id, joined: true }, now);
        }
    }

    /// A connection is gone. Its participants become "away": what they are sent is sealed
    /// into the store until they resume or their grace period ends (or a quota is reached).
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        let Some(c) = self.forget_conn(conn) else {
            return;
        };
        let mut unkeepable = Vec::new();
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
            p.sent_up_to = 0;
            let pending: Vec<(u64, Bytes)> = p.unacked.drain(..).collect();
            for (seq, bytes) in pending {
                if self.keep(session, pid, seq, &bytes).is_err() {
                    unkeepable.push((session, pid));
                    break;
                }
            }
            // A page that comes back joins the call again with a new peer connection.
            self.leave_call(session, pid, now);
        }
        for (session, pid) in unkeepable {
            tracing::debug!("unacknowledged events over the store quota; participant removed");
            self.drop_participant(session, pid, now);
        }
        self.lobby.changed();
    }
}

/// Write to `conn` the events of `p` that wait, while fewer than [`SEND_WINDOW`] are on the
/// wire.
fn send_within_window(p: &mut Participant, conn: ConnId, out: &mut output::Outbox) {
    let mut on_the_wire = p.unacked.partition_point(|(s, _)| *s <= p.sent_up_to);
    while on_the_wire < SEND_WINDOW {
        let Some((seq, bytes)) = p.unacked.get(on_the_wire) else {
            break;
        };
        p.sent_up_to = *seq;
        out.encoded(conn, bytes.clone());
        on_the_wire += 1;
    }
}
