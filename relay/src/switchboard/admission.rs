//! Who may connect, log in, open a session or take a seat again: address limits (through
//! the [`budget::Gate`]), staff login, new sessions, resume and revocation. What a session
//! is made of is `Sessions`' business; here is who the connection is.

use std::net::IpAddr;
use std::time::Instant;

use approdo_core::identity::{SignedRevocationList, verify_challenge_answer};
use approdo_core::ids::{DeskId, Language, ParticipantId, ResumeToken, SessionId, fill_random};
use approdo_core::limits::CHALLENGE_LEN;
use approdo_core::wire::{ErrorCode, RelayFrame};

use super::{Conn, ConnId, ConnState, Switchboard, budget, unix_now};
use crate::error::RelayError;
use crate::ratelimit::{AddressTag, TokenBucket};

impl Switchboard {
    /// Apply a new revocation list without a restart: it must be signed by the
    /// organisation and not older than the current one. Staff whose certificate it revokes
    /// are cut off at once (their participations end as if they had left), and every
    /// client learns the new list when it next opens a session or logs in.
    pub fn apply_revocations(
        &mut self,
        signed: SignedRevocationList,
        now: Instant,
    ) -> Result<usize, RelayError> {
        let list = self.config.org.open_revocations(&signed)?;
        if list.issued_at < self.revoked.issued_at {
            return Err(RelayError::Config(
                "refusing a revocation list older than the current one".into(),
            ));
        }
        self.revoked = list;
        self.revocations = signed;
        let cut: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(&c.state, ConnState::Staff { cert, .. } if self.revoked.serials.binary_search(&cert.serial).is_ok()))
            .map(|(id, _)| *id)
            .collect();
        for conn in &cut {
            self.refuse(*conn, ErrorCode::AuthFailed);
            let memberships = if self.forget_conn(*conn) {
                self.sessions.forget_conn(*conn)
            } else {
                Default::default()
            };
            for (session, pid) in memberships {
                let (sessions, mut fx) = self.parts(now);
                sessions.depart(session, pid, &mut fx);
            }
        }
        // Revoked staff who are away must not come back with their resume tokens either.
        let away: Vec<(SessionId, ParticipantId)> = self.sessions.revoked(&self.revoked);
        for (session, pid) in away {
            let (sessions, mut fx) = self.parts(now);
            sessions.depart(session, pid, &mut fx);
        }
        tracing::info!(
            revoked = self.revoked.serials.len(),
            cut_off = cut.len(),
            "revocation list applied"
        );
        self.lobby.changed();
        self.settle();
        Ok(cut.len())
    }

    /// May a new connection from this address be opened? The address is reduced to an
    /// HMAC tag at once and never kept.
    pub fn admit(&mut self, addr: IpAddr, now: Instant) -> Option<AddressTag> {
        let admitted = self.gate.admit(addr, self.conns.len(), now);
        if admitted.is_none() {
            let refused = &mut self.refusals.connection_rate;
            *refused = refused.saturating_add(1);
        }
        admitted
    }

    /// A WebSocket connection is open.
    pub fn connected(&mut self, conn: ConnId, addr: AddressTag, now: Instant) {
        self.advance(now);
        // A number reused before its close was reported: forget the old one first.
        if self.conns.contains_key(&conn) {
            self.disconnected(conn, now);
        }
        self.gate.attach(addr, now);
        let l = &self.config.limits;
        self.conns.insert(
            conn,
            Conn {
                addr,
                state: ConnState::Fresh,
                bucket: TokenBucket::new(l.frames_per_sec, l.frame_burst, now),
                light: TokenBucket::new(l.acks_per_sec, l.ack_burst, now),
                bytes: budget::ByteBucket::new(l.bytes_per_sec, l.byte_burst, now),
                pow: budget::PowState::default(),
            },
        );
    }

    pub(super) fn staff_hello(
        &mut self,
        conn: ConnId,
        certificate: &approdo_core::identity::SignedCertificate,
    ) -> Result<(), ErrorCode> {
        let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
        if !matches!(c.state, ConnState::Fresh) {
            return Err(ErrorCode::NotAllowed);
        }
        // Check now, answer later: every caller gets a challenge, and every failure
        // the same AuthFailed after the proof, whatever was wrong.
        let cert = self
            .config
            .org
            .check_certificate(certificate, &self.revoked, unix_now())
            .ok()
            .map(Box::new);
        let mut nonce = [0u8; CHALLENGE_LEN];
        fill_random(&mut nonce);
        c.state = ConnState::Challenged {
            cert,
            signed: Box::new(certificate.clone()),
            nonce,
        };
        self.outbox.frame(conn, &RelayFrame::Challenge { nonce });
        Ok(())
    }

    pub(super) fn staff_proof(
        &mut self,
        conn: ConnId,
        signature: &[u8; 64],
    ) -> Result<(), ErrorCode> {
        let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
        // Leave any other state as it is: a logged-in connection must stay in the staff
        // index until it is forgotten.
        if !matches!(c.state, ConnState::Challenged { .. }) {
            return Err(ErrorCode::AuthFailed);
        }
        let ConnState::Challenged {
            cert,
            signed,
            nonce,
        } = std::mem::replace(&mut c.state, ConnState::Fresh)
        else {
            return Err(ErrorCode::AuthFailed);
        };
        match cert {
            Some(cert) if verify_challenge_answer(&cert.signing_key, &nonce, signature) => {
                tracing::debug!(
                    conn,
                    role = cert.role.as_str(),
                    serial = cert.serial,
                    "staff logged in"
                );
                self.lobby.staff_joined(conn, &cert);
                c.state = ConnState::Staff {
                    cert,
                    signed: Some(signed),
                };
                let revocations = self.revocations.clone();
                self.outbox
                    .frame(conn, &RelayFrame::StaffReady { revocations });
                self.lobby.changed();
                Ok(())
            }
            _ => Err(ErrorCode::AuthFailed),
        }
    }

    pub(super) fn open_session(
        &mut self,
        conn: ConnId,
        language: Language,
        region: Option<DeskId>,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let c = self.conns.get(&conn).ok_or(ErrorCode::NotAllowed)?;
        let may_open = match c.state {
            ConnState::Fresh => true,
            ConnState::Person => self.sessions.held(conn) == 0,
            _ => false,
        };
        if !may_open {
            return Err(ErrorCode::NotAllowed);
        }
        // Languages and territories come from the configuration only.
        if !self.config.limits.languages.contains(&language) {
            return Err(ErrorCode::NotAllowed);
        }
        let desk = match region {
            None => self.config.national().id.clone(),
            Some(r) if self.config.desk(&r).is_some() => r,
            Some(_) => return Err(ErrorCode::NotAllowed),
        };
        if !self.proof_gate(conn, now) {
            return Ok(());
        }
        let addr = self.conns.get(&conn).ok_or(ErrorCode::NotAllowed)?.addr;
        if !self.gate.allow_session(addr, now) {
            return Err(ErrorCode::RateLimited);
        }
        if self.sessions.len() >= self.config.limits.max_sessions {
            return Err(ErrorCode::Busy);
        }
        let (id, me, token) = self.sessions.open(conn, language, desk, now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Person;
        }
        tracing::debug!(conn, "session opened");
        let revocations = self.revocations.clone();
        self.outbox.frame(
            conn,
            &RelayFrame::SessionOpened {
                session: id,
                you: me,
                token,
                revocations,
            },
        );
        Ok(())
    }

    /// The proof-of-work gate before a new session: counts the attempt, and under a flood
    /// asks this connection for a proof (answering `ProofRequired`) unless it holds one
    /// solved for its last puzzle, which it then spends. True when the session may open.
    fn proof_gate(&mut self, conn: ConnId, now: Instant) -> bool {
        let difficulty = self.gate.open_attempt(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if std::mem::take(&mut c.pow.solved) || difficulty == 0 {
            c.pow.asked = None;
            return true;
        }
        let seed = c.pow.ask(difficulty);
        tracing::debug!(difficulty, "proof of work asked");
        self.outbox
            .frame(conn, &RelayFrame::ProofRequired { seed, difficulty });
        false
    }

    /// A `ProofOfWork`: valid only for the connection's current puzzle, once. Anything
    /// else (no puzzle asked, another seed, a wrong nonce) is `RateLimited`, fatal.
    pub(super) fn proof_of_work(
        &mut self,
        conn: ConnId,
        seed: &[u8; 32],
        nonce: u64,
    ) -> Result<(), ErrorCode> {
        let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
        match c.pow.asked.take() {
            Some((asked, difficulty))
                if asked == *seed && approdo_core::pow::verify(seed, difficulty, nonce) =>
            {
                c.pow.solved = true;
                Ok(())
            }
            _ => Err(ErrorCode::RateLimited),
        }
    }
}

impl Switchboard {
    /// `Resume` (or, with `fresh_keys`, `Rejoin` after a reload): the connection takes the
    /// seat the token holds, if it may: a fresh connection or the person's without a
    /// session for the person's seat, the same staff member's for a staff seat, and only
    /// the person after a reload. A connection still holding the seat is told it was
    /// replaced and closed; what it had not acknowledged is replayed on the new one.
    pub(super) fn resume(
        &mut self,
        conn: ConnId,
        token: &ResumeToken,
        received_up_to: u64,
        now: Instant,
        fresh_keys: bool,
    ) -> Result<(), ErrorCode> {
        let seat = self.sessions.seat(token)?;
        let c = self.conns.get(&conn).ok_or(ErrorCode::NotAllowed)?;
        let allowed = match (&c.state, seat.serial) {
            (ConnState::Fresh, None) => true,
            (ConnState::Person, None) => self.sessions.held(conn) == 0,
            (ConnState::Staff { cert, .. }, Some(serial)) => cert.serial == serial,
            _ => false,
        };
        // A page that lost its keys (a reload) can only be the person's.
        if !allowed || (fresh_keys && seat.serial.is_some()) {
            return Err(ErrorCode::ResumeFailed);
        }
        if let Some(old) = seat.conn.filter(|old| *old != conn)
            && self.conns.contains_key(&old)
        {
            self.refuse(old, ErrorCode::Replaced);
            self.disconnected(old, now);
        }
        let (sessions, mut fx) = self.parts(now);
        let is_person = sessions.resume(conn, &seat, received_up_to, fresh_keys, &mut fx)?;
        if is_person && let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Person;
        }
        Ok(())
    }
}
