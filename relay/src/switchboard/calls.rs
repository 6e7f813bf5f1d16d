//! Call membership: who is in a session's call, and the `CallCommand`s for the SFU.

use super::*;
use approdo_core::limits::MAX_TURN_REQUESTS_PER_CALL;
use approdo_core::wire::TurnAnswer;

impl Switchboard {
    pub(super) fn call_join(
        &mut self,
        conn: ConnId,
        session: SessionId,
        offer: String,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        if offer.len() > approdo_core::limits::MAX_SDP_LEN {
            return Err(ErrorCode::Malformed);
        }
        // Calls take UDP ports: none for sessions still waiting in the queue.
        let operator_present = self.sessions.get(&session).is_some_and(|s| {
            s.participants
                .values()
                .any(|p| p.role == Some(Role::Operator))
        });
        if !operator_present {
            return Err(ErrorCode::NotAllowed);
        }
        // A page that joins again (after a reconnect) replaces its connection.
        self.leave_call(session, pid, now);
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        // The others already in the call: each needs a slot at the newcomer. Every
        // participant fits (CALL_SLOTS + 1 = MAX_PARTICIPANTS); this guards the SFU's rooms
        // should the two limits ever part.
        let members = s.participants.values().filter(|p| p.call.is_some()).count();
        if members > approdo_core::limits::CALL_SLOTS {
            return Err(ErrorCode::SessionFull);
        }
        let call = self.next_call;
        self.next_call = self.next_call.wrapping_add(1);
        let p = s
            .participants
            .get_mut(&pid)
            .ok_or(ErrorCode::UnknownSession)?;
        p.call = Some(call);
        p.turn_minted = 0;
        s.last_activity = now;
        self.outbox.call(CallCommand::Join {
            conn,
            session,
            participant: pid,
            call,
            offer,
        });
        self.announce_call(session, pid, true, now);
        Ok(())
    }

    pub(super) fn call_video(
        &mut self,
        conn: ConnId,
        session: SessionId,
        receive: bool,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        let call = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .and_then(|p| p.call)
            .ok_or(ErrorCode::NotAllowed)?;
        self.outbox.call(CallCommand::ReceiveVideo {
            session,
            participant: pid,
            call,
            receive,
        });
        Ok(())
    }

    /// A call member's direct connection failed: mint TURN credentials for it, at most
    /// [`MAX_TURN_REQUESTS_PER_CALL`] per entry into the call. Someone not in the session
    /// gets `UnknownSession` like for any session frame; a member not in the live call, or
    /// on a relay without TURN, a `Turn` refusal. Nothing about the session, the
    /// participant or the connection goes into the credentials.
    pub(super) fn turn_request(
        &mut self,
        conn: ConnId,
        session: SessionId,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        let p = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&pid))
            .ok_or(ErrorCode::UnknownSession)?;
        let answer = match &self.config.turn {
            None => TurnAnswer::Unavailable,
            Some(_) if p.call.is_none() => TurnAnswer::NotInCall,
            Some(_) if p.turn_minted >= MAX_TURN_REQUESTS_PER_CALL => TurnAnswer::TooMany,
            Some(turn) => {
                p.turn_minted += 1;
                turn.mint(unix_now())
            }
        };
        self.turn_answers.count(&answer);
        self.outbox
            .frame(conn, &RelayFrame::Turn { session, answer });
        Ok(())
    }

    /// Take a participant out of the call, if in it: close its peer connection and tell
    /// everyone.
    pub(super) fn leave_call(&mut self, session: SessionId, pid: ParticipantId, now: Instant) {
        let Some(call) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.participants.get_mut(&pid))
            .and_then(|p| p.call.take())
        else {
            return;
        };
        self.outbox.call(CallCommand::Leave {
            session,
            participant: pid,
            call,
        });
        self.announce_call(session, pid, false, now);
    }

    /// Tell every participant, `pid` included, that it entered or left the call.
    pub(super) fn announce_call(
        &mut self,
        session: SessionId,
        pid: ParticipantId,
        joined: bool,
        now: Instant,
    ) {
        let everyone: Vec<ParticipantId> = self
            .sessions
            .get(&session)
            .map(|s| s.participants.keys().copied().collect())
            .unwrap_or_default();
        for id in everyone {
            self.deliver(session, id, SessionEvent::Call { id: pid, joined }, now);
        }
    }

    /// The SFU could not set up a participant's call (no free port, a bad offer): take it
    /// out of the call and tell its page.
    pub fn call_failed(
        &mut self,
        conn: ConnId,
        session: SessionId,
        pid: ParticipantId,
        call: u64,
        tell: bool,
        now: Instant,
    ) {
        let current = self
            .sessions
            .get(&session)
            .and_then(|s| s.participants.get(&pid))
            .and_then(|p| p.call);
        if current != Some(call) {
            return;
        }
        self.leave_call(session, pid, now);
        if tell {
            self.outbox.frame(
                conn,
                &RelayFrame::Error {
                    code: ErrorCode::Busy,
                },
            );
        }
    }

    /// Whether `call` is still the participant's current entry into the call (its answer
    /// is worth sending).
    pub fn call_is_current(&self, session: &SessionId, pid: ParticipantId, call: u64) -> bool {
        self.sessions
            .get(session)
            .and_then(|s| s.participants.get(&pid))
            .and_then(|p| p.call)
            == Some(call)
    }
}
