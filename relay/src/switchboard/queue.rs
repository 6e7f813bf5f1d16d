//! The switchboard's side of the queues: taking a waiting session (`Accept`), answering
//! an invitation (`Join`), inviting an interpreter and transferring to another desk. Each
//! puts the [`lobby::Lobby`] (who may take what) and the `Sessions` (what changes)
//! together; and the hand-over of the sessions' read-only views to the lobby, which
//! decides what the people and the staff are shown.

use std::time::Instant;

use approdo_core::identity::Role;
use approdo_core::ids::{DeskId, Language, SessionId};
use approdo_core::wire::ErrorCode;

use super::remote::{LobbySnapshot, Taken};
use super::{ConnId, Switchboard, lobby};

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
        self.sessions.require_space(&session)?;
        self.sessions.invite(&session, language, now)
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
        self.sessions.require_space(&session)?;
        self.sessions.transfer(&session, desk, now)?;
        tracing::debug!(conn, "session transferred");
        Ok(())
    }

    /// A staff connection holds at most `max_sessions_per_staff` sessions at once
    /// (`NotAllowed` beyond): one credential cannot pin down a whole queue. Counted on
    /// every node for a connection that logged in here (`abroad`).
    fn require_room(&self, conn: ConnId, now: Instant) -> Result<(), ErrorCode> {
        if self.held_everywhere(conn, now) >= self.config.limits.max_sessions_per_staff {
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
        self.require_room(conn, now)?;
        let desk = self
            .sessions
            .desk(&session)
            .ok_or(ErrorCode::UnknownSession)?
            .clone();
        if !self.lobby.operator_eligible(cert.role, &cert.desks, &desk) {
            return Err(ErrorCode::NotAllowed);
        }
        let waited = self
            .sessions
            .waiting_since(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        self.sessions.require_space(&session)?;
        if self.sessions.has_serial(&session, cert.serial) {
            return Err(ErrorCode::NotAllowed);
        }
        self.lobby
            .observe_wait(desk, now.saturating_duration_since(waited));
        self.sessions.stop_waiting(&session);
        let (sessions, mut fx) = self.parts(now);
        sessions.add_participant(conn, session, &cert, &mut fx)
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
        self.require_room(conn, now)?;
        self.sessions.require_space(&session)?;
        self.sessions.take_invitation(&session, &cert.languages)?;
        let (sessions, mut fx) = self.parts(now);
        sessions.add_participant(conn, session, &cert, &mut fx)
    }

    /// Hand the lobby a read-only view of the waiting sessions and open invitations, send
    /// what it returns, in its order, and keep the statuses it sent with their sessions.
    pub(super) fn push_queues(&mut self) {
        let now = self.clock;
        let (waiting, invitations) = self.sessions.queue_views();
        let push: lobby::Push = self.lobby.push(waiting, invitations, now);
        for (conn, frame) in push.frames {
            self.outbox.frame(conn, &frame);
        }
        self.sessions.statuses_sent(push.statuses);
    }

    /// This node's queue and presence for the other nodes (`bus::lobby` publishes it):
    /// when something it shows changed since the last one, or always with `force` (the
    /// periodic snapshot). `None`: nothing to publish.
    pub fn lobby_snapshot(&mut self, force: bool) -> Option<LobbySnapshot> {
        if !self.lobby.take_snapshot_due() && !force {
            return None;
        }
        let now = self.clock;
        let visitors = self.visitor_report(now);
        let (waiting, invitations) = self.sessions.queue_views();
        let mut snapshot = self.lobby.snapshot(&waiting, &invitations, now);
        snapshot.visitors = visitors;
        Some(snapshot)
    }

    /// Another node's snapshot, received at `now`: its waiting sessions, invitations and
    /// staff join this node's views (and the people's "who can answer").
    pub fn apply_remote_lobby(
        &mut self,
        node: &str,
        snapshot: LobbySnapshot,
        now: Instant,
    ) -> Taken {
        self.advance(now);
        self.lobby.apply_remote(node, snapshot, now)
    }

    /// Node `node` is lost: its queue and staff leave the views.
    pub fn forget_remote_lobby(&mut self, node: &str) {
        self.lobby.forget_remote(node);
        self.forget_abroad(node);
    }
}
