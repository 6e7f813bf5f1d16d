//! The switchboard's side of the queues: taking a waiting session (`Accept`), answering
//! an invitation (`Join`), inviting an interpreter and transferring to another desk, all of
//! which change sessions; and the hand-over to the [`lobby::Lobby`], which decides what the
//! people and the staff are shown.

use super::*;

impl Switchboard {
    pub(super) fn invite(
        &mut self,
        conn: ConnId,
        session: SessionId,
        language: Language,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        self.require_member(conn, &session, Some(Role::Operator))?;
        if !self.config.limits.languages.contains(&language) {
            return Err(ErrorCode::NotAllowed);
        }
        self.require_space(&session)?;
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        if !s.invitations.iter().any(|(l, _)| *l == language) {
            s.invitations.push((language, now));
        }
        self.lobby.changed();
        Ok(())
    }

    pub(super) fn transfer(
        &mut self,
        conn: ConnId,
        session: SessionId,
        desk: DeskId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        self.require_member(conn, &session, Some(Role::Operator))?;
        if self.config.desk(&desk).is_none() {
            return Err(ErrorCode::NotAllowed);
        }
        // The new operator comes in before the old one leaves: a full session cannot.
        self.require_space(&session)?;
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        s.desk = desk;
        s.waiting_since = Some(now);
        s.last_activity = now;
        tracing::debug!(conn, "session transferred");
        self.save_meta(&session);
        self.lobby.changed();
        Ok(())
    }

    /// Room for one more participant (`SessionFull` otherwise), checked before an
    /// invitation, a transfer, an acceptance or a join changes anything: a refused
    /// newcomer must not use up the invitation or take the session out of the queue.
    fn require_space(&self, session: &SessionId) -> Result<(), ErrorCode> {
        let s = self
            .sessions
            .get(session)
            .ok_or(ErrorCode::UnknownSession)?;
        if s.participants.len() >= MAX_PARTICIPANTS {
            return Err(ErrorCode::SessionFull);
        }
        Ok(())
    }

    /// A staff connection holds at most `max_sessions_per_staff` sessions at once
    /// (`NotAllowed` beyond): one credential cannot pin down a whole queue.
    fn require_room(&self, conn: ConnId) -> Result<(), ErrorCode> {
        let held = self.conns.get(&conn).map_or(0, |c| c.memberships.len());
        if held >= self.config.limits.max_sessions_per_staff {
            return Err(ErrorCode::NotAllowed);
        }
        Ok(())
    }

    pub(super) fn accept(
        &mut self,
        conn: ConnId,
        session: SessionId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let cert = self.staff_cert(conn).ok_or(ErrorCode::NotAllowed)?.clone();
        self.require_room(conn)?;
        let s = self
            .sessions
            .get(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        if !self
            .lobby
            .operator_eligible(cert.role, &cert.desks, &s.desk)
        {
            return Err(ErrorCode::NotAllowed);
        }
        let waited = s.waiting_since.ok_or(ErrorCode::UnknownSession)?;
        self.require_space(&session)?;
        if s.participants
            .values()
            .any(|p| p.serial == Some(cert.serial))
        {
            return Err(ErrorCode::NotAllowed);
        }
        let desk = s.desk.clone();
        self.lobby
            .observe_wait(desk, now.saturating_duration_since(waited));
        if let Some(s) = self.sessions.get_mut(&session) {
            s.waiting_since = None;
        }
        self.add_participant(conn, session, &cert, now)
    }

    pub(super) fn join(
        &mut self,
        conn: ConnId,
        session: SessionId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let cert = self.staff_cert(conn).ok_or(ErrorCode::NotAllowed)?.clone();
        if cert.role != Role::Interpreter {
            return Err(ErrorCode::NotAllowed);
        }
        self.require_room(conn)?;
        self.require_space(&session)?;
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        let idx = s
            .invitations
            .iter()
            .position(|(l, _)| cert.languages.contains(l))
            .ok_or(ErrorCode::NotAllowed)?;
        s.invitations.remove(idx);
        self.add_participant(conn, session, &cert, now)
    }

    /// Hand the lobby a read-only view of the waiting sessions and open invitations, send
    /// what it returns, in its order, and keep the statuses it sent with their sessions.
    pub(super) fn push_queues(&mut self) {
        let now = self.clock;
        let waiting: Vec<lobby::Waiting<'_>> = self
            .sessions
            .values()
            .filter_map(|s| {
                Some(lobby::Waiting {
                    session: s.id,
                    language: &s.language,
                    desk: &s.desk,
                    since: s.waiting_since?,
                    person: s.participants.get(&ParticipantId(1)).and_then(|p| p.conn),
                    last_status: s.last_status,
                })
            })
            .collect();
        let invitations: Vec<lobby::OpenInvitation<'_>> = self
            .sessions
            .values()
            .flat_map(|s| {
                s.invitations
                    .iter()
                    .map(move |(language, at)| lobby::OpenInvitation {
                        at: *at,
                        session: s.id,
                        language,
                        desk: &s.desk,
                    })
            })
            .collect();
        let push = self.lobby.push(waiting, invitations, now);
        for (conn, frame) in push.frames {
            self.outbox.frame(conn, &frame);
        }
        for (id, status) in push.statuses {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_status = Some(status);
            }
        }
    }
}
