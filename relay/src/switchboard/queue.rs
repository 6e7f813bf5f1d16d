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
        if !self.config.limits.languages.contains(&language) {
            return Err(ErrorCode::NotAllowed);
        }
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
        tracing::debug!(conn, "session transferred");
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
        self.staff.operators_at(desk) > 0
    }

    /// How many online operators may take a session waiting at `desk`: those of the desk,
    /// or, when none is online there, the national ones.
    fn eligible_operators(&self, desk: &DeskId) -> usize {
        match self.staff.operators_at(desk) {
            0 => self.staff.operators_at(&self.config.national().id),
            n => n,
        }
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
        // Counted as at least 30 s; the first wait observed at a desk is its average.
        let w = now
            .saturating_duration_since(waited)
            .as_secs_f64()
            .max(30.0);
        self.avg_wait
            .entry(desk)
            .and_modify(|avg| *avg = 0.8 * *avg + 0.2 * w)
            .or_insert(w);
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

    /// Who can answer a session in `language` with `operators` eligible operators online.
    fn outlook(&self, operators: usize, language: &Language) -> Outlook {
        if operators == 0 {
            Outlook::NobodyOnline
        } else if self.staff.operator_speaks(language) {
            Outlook::Speaker
        } else if self.staff.speaks(language) {
            Outlook::WithInterpreter
        } else {
            Outlook::SeekingInterpreter
        }
    }

    /// Send the people waiting their place (when it changed) and the staff their views
    /// (when they changed, or all of them on the periodic refresh). The cost is one pass
    /// over the waiting sessions, plus one per distinct set of desks (operators) or
    /// languages (interpreters) among those online; never a pass over every connection.
    pub(super) fn push_queues(&mut self) {
        self.queues_dirty = false;
        let full = std::mem::take(&mut self.queues_full_refresh);
        let now = self.clock;
        self.last_queue_push = now;
        let mut waiting: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.waiting_since.is_some())
            .collect();
        waiting.sort_by_key(|s| (s.waiting_since, s.id));

        let mut frames = Vec::new();
        let mut updated = Vec::new();
        let mut ahead: HashMap<(&DeskId, &Language), u32> = HashMap::new();
        for s in &waiting {
            let position = {
                let n = ahead.entry((&s.desk, &s.language)).or_insert(0);
                *n = n.saturating_add(1);
                *n
            };
            let operators = self.eligible_operators(&s.desk);
            let outlook = self.outlook(operators, &s.language);
            let available = matches!(outlook, Outlook::Speaker | Outlook::WithInterpreter);
            // Only from waits observed at this desk, and only while someone can answer:
            // 0 says "no estimate" rather than showing a guess.
            let wait_secs = match self.avg_wait.get(&s.desk) {
                Some(avg) if operators > 0 => {
                    (f64::from(position) * avg / operators as f64).min(f64::from(u32::MAX)) as u32
                }
                _ => 0,
            };
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
            let status = (position, wait_secs, outlook);
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
                        outlook,
                    },
                ));
            }
        }

        // Operators: one view per distinct set of desks.
        let mut views: HashMap<Vec<DeskId>, (Vec<QueueEntry>, u32, u64)> = HashMap::new();
        let mut staff_frames: Vec<(ConnId, u64, RelayFrame)> = Vec::new();
        for conn in self.staff.operators() {
            let Some(cert) = self.staff_cert(conn) else {
                continue;
            };
            let mut desks = cert.desks.clone();
            desks.sort();
            desks.dedup();
            let (entries, total, digest) = views
                .entry(desks)
                .or_insert_with(|| {
                    let eligible = waiting.iter().filter(|s| self.operator_eligible(cert, s));
                    let (entries, total) = capped(eligible, |s| QueueEntry {
                        session: s.id,
                        language: s.language.clone(),
                        desk: s.desk.clone(),
                        waiting_secs: secs_since(s.waiting_since, now),
                        away: s
                            .participants
                            .get(&ParticipantId(1))
                            .is_none_or(|p| p.conn.is_none()),
                    });
                    let digest = view_digest(
                        entries
                            .iter()
                            .map(|e| (&e.session, &e.language, &e.desk, e.away)),
                        total,
                    );
                    (entries, total, digest)
                })
                .clone();
            staff_frames.push((conn, digest, RelayFrame::Queue { entries, total }));
        }

        // Interpreters: every open invitation once, oldest first, then one view per
        // distinct set of languages.
        let mut invitations: Vec<(Instant, &Session, &Language)> = self
            .sessions
            .values()
            .flat_map(|s| s.invitations.iter().map(move |(l, at)| (*at, s, l)))
            .collect();
        invitations.sort_by_key(|(at, s, l)| (*at, s.id, (*l).clone()));
        let mut inv_views: HashMap<Vec<Language>, (Vec<Invitation>, u32, u64)> = HashMap::new();
        for conn in self.staff.interpreters() {
            let Some(cert) = self.staff_cert(conn) else {
                continue;
            };
            let mut languages = cert.languages.clone();
            languages.sort();
            languages.dedup();
            let (entries, total, digest) = inv_views
                .entry(languages)
                .or_insert_with(|| {
                    let open = invitations
                        .iter()
                        .filter(|(_, _, l)| cert.languages.contains(l));
                    let (entries, total) = capped(open, |(at, s, l)| Invitation {
                        session: s.id,
                        language: (*l).clone(),
                        desk: s.desk.clone(),
                        waiting_secs: secs_since(Some(*at), now),
                    });
                    let digest = view_digest(
                        entries
                            .iter()
                            .map(|e| (&e.session, &e.language, &e.desk, false)),
                        total,
                    );
                    (entries, total, digest)
                })
                .clone();
            staff_frames.push((conn, digest, RelayFrame::Invitations { entries, total }));
        }

        for (conn, frame) in frames {
            self.send(conn, &frame);
        }
        for (conn, digest, frame) in staff_frames {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if full || c.last_view != Some(digest) {
                c.last_view = Some(digest);
                self.send(conn, &frame);
            }
        }
        for (id, status) in updated {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_status = Some(status);
            }
        }
    }
}

/// What makes a staff view different from the last one sent: the sessions listed, whether
/// each waiting person is away, and the total (not the seconds waited, which change every
/// second and go out on the refresh).
fn view_digest<'a>(
    entries: impl Iterator<Item = (&'a SessionId, &'a Language, &'a DeskId, bool)>,
    total: u32,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in entries {
        e.hash(&mut h);
    }
    total.hash(&mut h);
    h.finish()
}

/// The first [`MAX_QUEUE_ENTRIES`] items, built, and how many there were in all: a view
/// stays within one frame whatever the queue's length, and still says how long it is.
fn capped<I, T>(items: impl Iterator<Item = I>, build: impl Fn(I) -> T) -> (Vec<T>, u32) {
    let mut total = 0u32;
    let mut kept = Vec::new();
    for item in items {
        total = total.saturating_add(1);
        if kept.len() < MAX_QUEUE_ENTRIES {
            kept.push(build(item));
        }
    }
    (kept, total)
}
