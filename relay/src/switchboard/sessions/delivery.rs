//! Delivery of events: numbered per participant, held until acknowledged on the live
//! connection, sealed into the store (within quotas) while the participant is away, and
//! replayed on resume with a fresh token.

use std::collections::BTreeMap;

use approdo_core::ids::{ParticipantId, ResumeToken, SessionId};
use approdo_core::wire::{self, ErrorCode, RelayFrame, SessionEvent};
use axum::body::Bytes;

use super::super::SEND_WINDOW;
use super::{ConnId, Effects, Outbox, Participant, Seat, Sessions, token_hash};

/// Why an event could not be kept for an away participant.
enum Unkept {
    /// Their count, the session's bytes or the relay's bytes would go over the quota.
    Quota,
    /// The store refused the write.
    Store,
}

impl Sessions {
    /// Deliver an event to a participant: on the live connection, or sealed into the store
    /// while they are away. False when the participant was away and the event could not be
    /// kept: the participant has then been removed from the session (the person: the
    /// session ended), so no event is lost in silence.
    pub(in crate::switchboard) fn deliver(
        &mut self,
        session: SessionId,
        to: ParticipantId,
        event: SessionEvent,
        fx: &mut Effects<'_>,
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
                    fx.out.encoded(conn, bytes);
                }
                true
            }
            Some(conn) => {
                // It does not read what it is sent: cut it off; it may resume.
                p.unacked.push_back((seq, bytes));
                fx.out.frame(
                    conn,
                    &RelayFrame::Error {
                        code: ErrorCode::SlowConsumer,
                    },
                );
                fx.out.close(conn);
                self.cut_off.push(conn);
                self.disconnected(conn, fx);
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
                    self.drop_participant(session, to, fx);
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

    /// A cumulative acknowledgement from the participant: what it releases is forgotten
    /// and what waited for the window goes out. How many events it released (one that
    /// releases nothing is charged by the switchboard).
    pub(in crate::switchboard) fn ack(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        up_to: u64,
        out: &mut Outbox,
    ) -> usize {
        let mut released = 0usize;
        if let Some(p) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&pid))
        {
            while p.unacked.front().is_some_and(|(seq, _)| *seq <= up_to) {
                p.unacked.pop_front();
                released = released.saturating_add(1);
            }
            // What waited for the window goes out now.
            if let Some(live) = p.conn {
                send_within_window(p, live, out);
            }
        }
        released
    }

    /// Whose seat a resume token holds.
    pub(in crate::switchboard) fn seat(&self, token: &ResumeToken) -> Result<Seat, ErrorCode> {
        let (session, pid) = *self
            .tokens
            .get(&token_hash(token))
            .ok_or(ErrorCode::ResumeFailed)?;
        let p = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .ok_or(ErrorCode::ResumeFailed)?;
        Ok(Seat {
            session,
            pid,
            serial: p.serial,
            conn: p.conn,
        })
    }

    /// The participant comes back on `conn` (the switchboard has checked it may, and
    /// replaced a connection that still held the seat): it gets a fresh token and what it
    /// had not received since `received_up_to`, a window at a time. With `fresh_keys` (a
    /// reload) what was kept can never be read, so it is dropped and the participant is
    /// told who is here instead. True when the participant is the person.
    pub(in crate::switchboard) fn resume(
        &mut self,
        conn: ConnId,
        seat: &Seat,
        received_up_to: u64,
        fresh_keys: bool,
        fx: &mut Effects<'_>,
    ) -> Result<bool, ErrorCode> {
        let (session, pid) = (seat.session, seat.pid);
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
        // The token just used dies; only the new one resumes from fx.now on.
        self.tokens.remove(&old_hash);
        self.tokens.insert(token_hash(&new_token), (session, pid));
        self.link(conn, session, pid);
        fx.out.frame(
            conn,
            &RelayFrame::Resumed {
                session,
                you: pid,
                accepted_up_to,
            },
        );
        fx.out.frame(
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
            send_within_window(p, conn, fx.out);
        }
        if fresh_keys {
            self.announce_everyone_to(session, pid, fx);
        }
        tracing::debug!(conn, "participant resumed");
        self.queue_changed = true;
        Ok(is_person)
    }

    /// Tell a participant who rejoined with new keys who is in the session and in its call,
    /// as a newcomer is told.
    fn announce_everyone_to(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        fx: &mut Effects<'_>,
    ) {
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        let others: Vec<(ParticipantId, Option<approdo_core::identity::Role>)> = s
            .participants
            .iter()
            .filter(|(id, _)| **id != pid)
            .map(|(id, p)| (*id, p.role))
            .collect();
        let in_call: Vec<ParticipantId> = fx
            .calls
            .members(&session)
            .into_iter()
            .filter(|id| *id != pid)
            .collect();
        for (id, role) in others {
            self.deliver(session, pid, SessionEvent::Arrived { id, role }, fx);
        }
        for id in in_call {
            let event = SessionEvent::Call { id, joined: true };
            self.deliver(session, pid, event, fx);
        }
    }

    /// A connection is gone. Its participants become "away": what they are sent is sealed
    /// into the store until they resume or their grace period ends (or a quota is reached),
    /// and they leave the call (a page that comes back joins it again).
    pub(in crate::switchboard) fn disconnected(&mut self, conn: ConnId, fx: &mut Effects<'_>) {
        let mut unkeepable = Vec::new();
        for (session, pid) in self.forget_conn(conn) {
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
            p.away_since = Some(fx.now);
            p.sent_up_to = 0;
            let pending: Vec<(u64, Bytes)> = p.unacked.drain(..).collect();
            for (seq, bytes) in pending {
                if self.keep(session, pid, seq, &bytes).is_err() {
                    unkeepable.push((session, pid));
                    break;
                }
            }
            // A page that comes back joins the call again with a new peer connection.
            self.leave_call(session, pid, fx);
        }
        for (session, pid) in unkeepable {
            tracing::debug!("unacknowledged events over the store quota; participant removed");
            self.drop_participant(session, pid, fx);
        }
        self.queue_changed = true;
    }
}

/// Write to `conn` the events of `p` that wait, while fewer than [`SEND_WINDOW`] are on the
/// wire.
fn send_within_window(p: &mut Participant, conn: ConnId, out: &mut Outbox) {
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
