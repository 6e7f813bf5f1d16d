//! Calls: who is in each session's call, the numbers of their entries into it, how many
//! TURN credentials each entry had, and the [`CallCommand`]s for the SFU. [`Calls`] knows
//! nothing else of a session: the switchboard checks membership before it asks, and
//! [`super::sessions::Sessions`] takes a participant out of the call (and tells the
//! session) when it leaves the session or goes away.
//!
//! Below it, the switchboard's handling of the call frames, which puts the two together.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::limits::{CALL_SLOTS, MAX_SDP_LEN, MAX_TURN_REQUESTS_PER_CALL};
use approdo_core::wire::{ErrorCode, RelayFrame, TurnAnswer};

use super::output::{CallCommand, Outbox};
use super::{ConnId, Switchboard, TurnAnswers, unix_now};
use crate::config::Config;

/// One participant's entry into a call.
struct Entry {
    /// Its number, so the SFU tells a late answer or leave from the current entry's.
    call: u64,
    /// TURN credentials minted for it.
    turn_minted: u8,
}

/// See the module documentation.
pub(super) struct Calls {
    /// Whether TURN is configured, and its secret.
    config: Arc<Config>,
    /// Each session's call members, by participant (sessions with nobody in a call are
    /// absent).
    members: HashMap<SessionId, BTreeMap<ParticipantId, Entry>>,
    /// Numbers entries into calls.
    next_call: u64,
    /// TURN answers counted for the metrics endpoint.
    turn_answers: TurnAnswers,
}

impl Calls {
    /// Nobody in a call.
    pub(super) fn new(config: Arc<Config>) -> Self {
        Calls {
            config,
            members: HashMap::new(),
            next_call: 1,
            turn_answers: TurnAnswers::default(),
        }
    }

    /// The participant (not in the call) enters it with `offer`, answered on `conn`:
    /// `SessionFull` when every slot is taken.
    pub(super) fn join(
        &mut self,
        conn: ConnId,
        session: SessionId,
        participant: ParticipantId,
        offer: String,
        out: &mut Outbox,
    ) -> Result<(), ErrorCode> {
        let members = self.members.entry(session).or_default();
        // The others already in the call: each needs a slot at the newcomer. Every
        // participant fits (CALL_SLOTS + 1 = MAX_PARTICIPANTS); this guards the SFU's rooms
        // should the two limits ever part.
        if members.len() > CALL_SLOTS {
            return Err(ErrorCode::SessionFull);
        }
        let call = self.next_call;
        self.next_call = self.next_call.wrapping_add(1);
        members.insert(
            participant,
            Entry {
                call,
                turn_minted: 0,
            },
        );
        out.call(CallCommand::Join {
            conn,
            session,
            participant,
            call,
            offer,
        });
        Ok(())
    }

    /// Take the participant out of the call, if in it, closing its peer connection. True
    /// when it was in it (the session is then to be told).
    pub(super) fn leave(
        &mut self,
        session: &SessionId,
        participant: ParticipantId,
        out: &mut Outbox,
    ) -> bool {
        let Some(members) = self.members.get_mut(session) else {
            return false;
        };
        let Some(entry) = members.remove(&participant) else {
            return false;
        };
        if members.is_empty() {
            self.members.remove(session);
        }
        out.call(CallCommand::Leave {
            session: *session,
            participant,
            call: entry.call,
        });
        true
    }

    /// The session ended: every member's peer connection closes.
    pub(super) fn end_session(&mut self, session: &SessionId, out: &mut Outbox) {
        for (participant, entry) in self.members.remove(session).unwrap_or_default() {
            out.call(CallCommand::Leave {
                session: *session,
                participant,
                call: entry.call,
            });
        }
    }

    /// The participant's current entry into the call, if in it.
    pub(super) fn entry(&self, session: &SessionId, participant: ParticipantId) -> Option<u64> {
        self.members
            .get(session)
            .and_then(|m| m.get(&participant))
            .map(|e| e.call)
    }

    /// Who is in the session's call, in participant order.
    pub(super) fn members(&self, session: &SessionId) -> Vec<ParticipantId> {
        self.members
            .get(session)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Participants in a call, all sessions.
    pub(super) fn participants(&self) -> usize {
        self.members.values().map(BTreeMap::len).sum()
    }

    /// TURN answers given since start.
    pub(super) fn turn_answers(&self) -> TurnAnswers {
        self.turn_answers
    }

    /// Credentials for a participant whose direct connection failed, at most
    /// [`MAX_TURN_REQUESTS_PER_CALL`] per entry into the call; or why not. Counted.
    fn turn(&mut self, session: &SessionId, participant: ParticipantId) -> TurnAnswer {
        let entry = self
            .members
            .get_mut(session)
            .and_then(|m| m.get_mut(&participant));
        let answer = match (&self.config.turn, entry) {
            (None, _) => TurnAnswer::Unavailable,
            (Some(_), None) => TurnAnswer::NotInCall,
            (Some(_), Some(e)) if e.turn_minted >= MAX_TURN_REQUESTS_PER_CALL => {
                TurnAnswer::TooMany
            }
            (Some(turn), Some(e)) => {
                e.turn_minted += 1;
                turn.mint(unix_now())
            }
        };
        self.turn_answers.count(&answer);
        answer
    }
}

impl Switchboard {
    /// `CallJoin`: a member of a session with an operator present enters its call (again,
    /// after a reconnect: the earlier entry ends first).
    pub(super) fn call_join(
        &mut self,
        conn: ConnId,
        session: SessionId,
        offer: String,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        if offer.len() > MAX_SDP_LEN {
            return Err(ErrorCode::Malformed);
        }
        if !self.sessions.operator_present(&session) {
            return Err(ErrorCode::NotAllowed);
        }
        let (sessions, mut fx) = self.parts(now);
        sessions.leave_call(session, pid, &mut fx);
        if !sessions.contains(&session, pid) {
            return Err(ErrorCode::UnknownSession);
        }
        fx.calls.join(conn, session, pid, offer, fx.out)?;
        sessions.touch(&session, now);
        sessions.announce_call(session, pid, true, &mut fx);
        Ok(())
    }

    /// `CallVideo`: forward the others' video to a call member, or stop.
    pub(super) fn call_video(
        &mut self,
        conn: ConnId,
        session: SessionId,
        receive: bool,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        let call = self
            .calls
            .entry(&session, pid)
            .ok_or(ErrorCode::NotAllowed)?;
        self.outbox.call(CallCommand::ReceiveVideo {
            session,
            participant: pid,
            call,
            receive,
        });
        Ok(())
    }

    /// `CallLeave`: a member leaves the call (and stays in the session).
    pub(super) fn call_leave(
        &mut self,
        conn: ConnId,
        session: SessionId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let pid = self.require_member(conn, &session, None)?;
        let (sessions, mut fx) = self.parts(now);
        sessions.leave_call(session, pid, &mut fx);
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
        let answer = self.calls.turn(&session, pid);
        self.outbox
            .frame(conn, &RelayFrame::Turn { session, answer });
        Ok(())
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
        if self.calls.entry(&session, pid) != Some(call) {
            return;
        }
        let (sessions, mut fx) = self.parts(now);
        sessions.leave_call(session, pid, &mut fx);
        if tell {
            self.outbox.frame(
                conn,
                &RelayFrame::Error {
                    code: ErrorCode::Busy,
                },
            );
        }
        self.settle();
    }

    /// Whether `call` is still the participant's current entry into the call (its answer
    /// is worth sending).
    pub fn call_is_current(&self, session: &SessionId, pid: ParticipantId, call: u64) -> bool {
        self.calls.entry(session, pid) == Some(call)
    }
}
