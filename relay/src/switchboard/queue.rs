//! Waiting sessions and who may take them: eligibility, the operators' queue views, the
//! interpreters' invitations and the person's place in the queue.

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
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        if !s.invitations.iter().any(|(l, _)| *l == language) {
            s.invitations.push((language, now));
        }
        self.queues_dirty = true;
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
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        s.desk = desk;
        s.waiting_since = Some(now);
        s.last_activity = now;
        tracing::info!(conn, "session transferred");
        self.save_meta(&session);
        self.queues_dirty = true;
        Ok(())
    }

    pub(super) fn operator_eligible(&self, cert: &Certificate, s: &Session) -> bool {
        if cert.role != Role::Operator {
            return false;
        }
        if cert.desks.contains(&s.desk) {
            return true;
        }
        // National operators take a regional queue when no regional operator is online.
        cert.desks.contains(&self.config.national().id) && !self.online_operator_at(&s.desk)
    }

    pub(super) fn online_operator_at(&self, desk: &DeskId) -> bool {
        self.conns.values().any(|c| matches!(&c.state, ConnState::Staff { cert } if cert.role == Role::Operator && cert.desks.contains(desk)))
    }

    pub(super) fn accept(
        &mut self,
        conn: ConnId,
        session: SessionId,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        let cert = self.staff_cert(conn).ok_or(ErrorCode::NotAllowed)?.clone();
        let s = self
            .sessions
            .get(&session)
            .ok_or(ErrorCode::UnknownSession)?;
        if !self.operator_eligible(&cert, s) {
            return Err(ErrorCode::NotAllowed);
        }
        let waited = s.waiting_since.ok_or(ErrorCode::UnknownSession)?;
        if s.participants
            .values()
            .any(|p| p.serial == Some(cert.serial))
        {
            return Err(ErrorCode::NotAllowed);
        }
        let desk = s.desk.clone();
        let w = now.saturating_duration_since(waited).as_secs_f64();
        let avg = self.avg_wait.entry(desk).or_insert(DEFAULT_WAIT_SECS);
        *avg = 0.8 * *avg + 0.2 * w.max(30.0);
        self.sessions
            .get_mut(&session)
            .expect("checked")
            .waiting_since = None;
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

    pub(super) fn speaks(&self, language: &Language) -> bool {
        self.conns.values().any(|c| {
            matches!(&c.state, ConnState::Staff { cert } if cert.role.joins_sessions() && cert.languages.contains(language))
        })
    }

    pub(super) fn push_queues(&mut self) {
        self.queues_dirty = false;
        let now = Instant::now();
        self.last_queue_push = now;
        let mut waiting: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.waiting_since.is_some())
            .collect();
        waiting.sort_by_key(|s| s.waiting_since);

        let staff: Vec<(ConnId, &Certificate)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| match &c.state {
                ConnState::Staff { cert } => Some((*id, cert.as_ref())),
                _ => None,
            })
            .collect();

        let mut frames = Vec::new();
        let mut updated = Vec::new();
        let mut ahead: HashMap<(&DeskId, &Language), u32> = HashMap::new();
        for s in &waiting {
            let position = {
                let n = ahead.entry((&s.desk, &s.language)).or_insert(0);
                *n += 1;
                *n
            };
            let operators = staff
                .iter()
                .filter(|(_, c)| self.operator_eligible(c, s))
                .count();
            let available = operators > 0 && self.speaks(&s.language);
            let avg = self
                .avg_wait
                .get(&s.desk)
                .copied()
                .unwrap_or(DEFAULT_WAIT_SECS);
            let wait_secs = (f64::from(position) * avg / operators.max(1) as f64) as u32;
            let fallback = if available {
                Vec::new()
            } else {
                let mut numbers = self
                    .config
                    .desk(&s.desk)
                    .map(|d| d.fallback_numbers.clone())
                    .unwrap_or_default();
                for n in &self.config.national().fallback_numbers {
                    if !numbers.contains(n) {
                        numbers.push(n.clone());
                    }
                }
                numbers
            };
            let status = (position, wait_secs, fallback.is_empty());
            if let Some(conn) = s.participants.get(&ParticipantId(1)).and_then(|p| p.conn)
                && s.last_status != Some(status)
            {
                updated.push((s.id, status));
                frames.push((
                    conn,
                    RelayFrame::QueueStatus {
                        session: s.id,
                        position,
                        wait_secs,
                        fallback,
                    },
                ));
            }
        }
        for (conn, cert) in &staff {
            match cert.role {
                Role::Operator => {
                    let entries = waiting
                        .iter()
                        .filter(|s| self.operator_eligible(cert, s))
                        .map(|s| QueueEntry {
                            session: s.id,
                            language: s.language.clone(),
                            desk: s.desk.clone(),
                            waiting_secs: secs_since(s.waiting_since, now),
                        })
                        .collect();
                    let entries: Vec<QueueEntry> = entries;
                    let total = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                    frames.push((*conn, RelayFrame::Queue { entries, total }));
                }
                Role::Interpreter => {
                    let mut entries: Vec<Invitation> = self
                        .sessions
                        .values()
                        .flat_map(|s| {
                            s.invitations
                                .iter()
                                .filter(|(l, _)| cert.languages.contains(l))
                                .map(|(l, at)| Invitation {
                                    session: s.id,
                                    language: l.clone(),
                                    desk: s.desk.clone(),
                                    waiting_secs: secs_since(Some(*at), now),
                                })
                        })
                        .collect();
                    entries.sort_by_key(|e| std::cmp::Reverse(e.waiting_secs));
                    let total = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                    frames.push((*conn, RelayFrame::Invitations { entries, total }));
                }
                Role::Coordinator => {}
            }
        }
        for (conn, frame) in frames {
            self.send(conn, &frame);
        }
        for (id, status) in updated {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_status = Some(status);
            }
        }
    }
}
