//! Who may connect, log in and open a session: address limits, staff login, new sessions
//! and revocation.

use super::*;

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
            .filter(|(_, c)| matches!(&c.state, ConnState::Staff { cert } if self.revoked.serials.binary_search(&cert.serial).is_ok()))
            .map(|(id, _)| *id)
            .collect();
        for conn in &cut {
            let memberships: Vec<(SessionId, ParticipantId)> = self
                .conns
                .get(conn)
                .map(|c| c.memberships.iter().copied().collect())
                .unwrap_or_default();
            self.refuse(*conn, ErrorCode::AuthFailed);
            self.conns.remove(conn);
            for (session, pid) in memberships {
                self.depart(session, pid, now);
            }
        }
        // Revoked staff who are away must not come back with their resume tokens either.
        let away: Vec<(SessionId, ParticipantId)> = self
            .sessions
            .values()
            .flat_map(|s| {
                s.participants
                    .iter()
                    .filter(|(_, p)| {
                        p.serial.is_some_and(|serial| {
                            self.revoked.serials.binary_search(&serial).is_ok()
                        })
                    })
                    .map(move |(pid, _)| (s.id, *pid))
            })
            .collect();
        for (session, pid) in away {
            self.depart(session, pid, now);
        }
        tracing::info!(
            revoked = self.revoked.serials.len(),
            cut_off = cut.len(),
            "revocation list applied"
        );
        self.queues_dirty = true;
        Ok(cut.len())
    }

    /// May a new connection from this address be opened? The address is reduced to an
    /// HMAC tag at once and never kept.
    pub fn admit(&mut self, addr: IpAddr, now: Instant) -> Option<AddressTag> {
        if self.conns.len() >= self.config.limits.max_connections {
            return None;
        }
        let tag = self.connection_limiter.tag(addr, now);
        self.connection_limiter.allow(tag, now).then_some(tag)
    }

    /// A WebSocket connection is open.
    pub fn connected(&mut self, conn: ConnId, addr: AddressTag, now: Instant) {
        let l = &self.config.limits;
        self.conns.insert(
            conn,
            Conn {
                addr,
                state: ConnState::Fresh,
                bucket: TokenBucket::new(l.frames_per_sec, l.frame_burst, now),
                memberships: BTreeSet::new(),
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
        c.state = ConnState::Challenged { cert, nonce };
        self.send(conn, &RelayFrame::Challenge { nonce });
        Ok(())
    }

    pub(super) fn staff_proof(
        &mut self,
        conn: ConnId,
        signature: &[u8; 64],
    ) -> Result<(), ErrorCode> {
        let c = self.conns.get_mut(&conn).ok_or(ErrorCode::NotAllowed)?;
        let ConnState::Challenged { cert, nonce } =
            std::mem::replace(&mut c.state, ConnState::Fresh)
        else {
            return Err(ErrorCode::AuthFailed);
        };
        match cert {
            Some(cert) if verify_challenge_answer(&cert.signing_key, &nonce, signature) => {
                tracing::info!(
                    conn,
                    role = cert.role.as_str(),
                    serial = cert.serial,
                    "staff logged in"
                );
                c.state = ConnState::Staff { cert };
                let revocations = self.revocations.clone();
                self.send(conn, &RelayFrame::StaffReady { revocations });
                self.queues_dirty = true;
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
            ConnState::Person => c.memberships.is_empty(),
            _ => false,
        };
        if !may_open {
            return Err(ErrorCode::NotAllowed);
        }
        if !self.session_limiter.allow(c.addr, now) {
            return Err(ErrorCode::RateLimited);
        }
        if self.sessions.len() >= self.config.limits.max_sessions {
            return Err(ErrorCode::Busy);
        }
        let desk = region
            .filter(|r| self.config.desk(r).is_some())
            .unwrap_or_else(|| self.config.national().id.clone());
        let id = SessionId::random();
        let me = ParticipantId(1);
        let token = ResumeToken::random();
        self.store.begin(id);
        let mut session = Session {
            id,
            language,
            desk,
            waiting_since: Some(now),
            last_activity: now,
            participants: BTreeMap::new(),
            next_pid: 2,
            invitations: Vec::new(),
            last_status: None,
        };
        session
            .participants
            .insert(me, Participant::new(None, None, token_hash(&token), conn));
        self.tokens.insert(token_hash(&token), (id, me));
        self.sessions.insert(id, session);
        self.save_meta(&id);
        let c = self.conns.get_mut(&conn).expect("checked above");
        c.state = ConnState::Person;
        c.memberships.insert((id, me));
        tracing::info!(conn, "session opened");
        let revocations = self.revocations.clone();
        self.send(
            conn,
            &RelayFrame::SessionOpened {
                session: id,
                you: me,
                token,
                revocations,
            },
        );
        self.queues_dirty = true;
        Ok(())
    }
}
