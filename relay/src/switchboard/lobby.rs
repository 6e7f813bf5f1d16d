//! The lobby: queue and staff presence, the global half of the switchboard. It owns who is
//! online (the [`StaffIndex`]), the average waits per desk, when the views are due, and
//! the digests of the views last sent, and it builds the people's queue statuses and the
//! staff's queue and invitation views.
//!
//! It never reads a session: the switchboard hands it a read-only view of the waiting
//! sessions and open invitations ([`Waiting`], [`OpenInvitation`]) and sends what it
//! returns ([`Push`]). That seam is where presence and queues can later be shared between
//! relay nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use approdo_core::identity::{Certificate, Role};
use approdo_core::ids::{DeskId, Language, SessionId};
use approdo_core::limits::MAX_QUEUE_ENTRIES;
use approdo_core::wire::{Invitation, Outlook, QueueEntry, RelayFrame};

use super::ConnId;
use super::index::StaffIndex;
use super::remote::{
    LobbySnapshot, MAX_WAIT_WEIGHT, RemoteLobbies, Serves, SnapInvitation, SnapWait, SnapWaiting,
    Taken, Visitor,
};
use crate::config::Config;

/// How long an operator's queue view may go without a refresh.
const QUEUE_REFRESH: Duration = Duration::from_secs(10);

/// A person's place in the queue as last sent: position, estimated wait in seconds, and
/// who can answer (the fallback numbers follow the outlook).
pub(super) type Status = (u32, u32, Outlook);

/// A waiting session as the lobby sees it: no participants, no delivery state.
pub(super) struct Waiting<'a> {
    /// The session.
    pub(super) session: SessionId,
    /// The person's language.
    pub(super) language: &'a Language,
    /// The desk whose queue it is in.
    pub(super) desk: &'a DeskId,
    /// Since when it waits.
    pub(super) since: Instant,
    /// The person's live connection, if the person is connected here (never for a
    /// session of another node).
    pub(super) person: Option<ConnId>,
    /// Whether the person's connection is down.
    pub(super) away: bool,
    /// The status last sent to the person, so an unchanged one is not sent again.
    pub(super) last_status: Option<Status>,
}

/// An interpreter invitation still open, as the lobby sees it.
pub(super) struct OpenInvitation<'a> {
    /// When the operator asked.
    pub(super) at: Instant,
    /// The session.
    pub(super) session: SessionId,
    /// The language asked for.
    pub(super) language: &'a Language,
    /// The session's desk.
    pub(super) desk: &'a DeskId,
}

/// What the switchboard must do after a push: send these frames, in this order, and
/// remember these statuses as sent.
pub(super) struct Push {
    /// Frames for people (their queue status) and staff (their views), in sending order.
    pub(super) frames: Vec<(ConnId, RelayFrame)>,
    /// The statuses now sent, to keep with their sessions.
    pub(super) statuses: Vec<(SessionId, Status)>,
}

/// See the module documentation.
pub(super) struct Lobby {
    /// Desks and their fallback numbers.
    config: Arc<Config>,
    /// Online staff by desk and language, so queue work never scans every connection.
    staff: StaffIndex,
    /// Average observed wait per desk (moving 20 % towards each accept); absent until one
    /// was observed, so the person is never shown a guess.
    avg_wait: HashMap<DeskId, f64>,
    /// Accepts observed per desk here, at most [`MAX_WAIT_WEIGHT`]: the weight of this
    /// node's average among the hotline's.
    observed: HashMap<DeskId, u32>,
    /// Something the views show changed: push on the next `take_outputs`.
    dirty: bool,
    /// Send every staff view on the next push, changed or not.
    full_refresh: bool,
    /// When the views were last pushed.
    last_push: Instant,
    /// A digest of the last view sent to each staff connection, so an unchanged view is
    /// not sent again before the periodic refresh.
    last_view: HashMap<ConnId, u64>,
    /// The other nodes' queues and staff (several nodes only; empty otherwise).
    remote: RemoteLobbies,
    /// Something this node's snapshot shows changed since it was last taken.
    snapshot_due: bool,
}

impl Lobby {
    /// Nobody online, no waits observed.
    pub(super) fn new(config: Arc<Config>, now: Instant) -> Self {
        Lobby {
            config,
            staff: StaffIndex::default(),
            avg_wait: HashMap::new(),
            observed: HashMap::new(),
            dirty: false,
            full_refresh: false,
            last_push: now,
            last_view: HashMap::new(),
            remote: RemoteLobbies::default(),
            snapshot_due: false,
        }
    }

    /// A staff member logged in on `conn`.
    pub(super) fn staff_joined(&mut self, conn: ConnId, cert: &Certificate) {
        self.staff.add(conn, cert);
        self.dirty = true;
        self.snapshot_due = true;
    }

    /// A connection is gone: if it was staff, it is no longer online. The caller marks the
    /// views changed when the departure affects them.
    pub(super) fn staff_left(&mut self, conn: ConnId) {
        self.staff.remove(conn);
        self.last_view.remove(&conn);
        self.snapshot_due = true;
    }

    /// Staff connections logged in.
    pub(super) fn staff_online(&self) -> usize {
        self.staff.online()
    }

    /// Operators and interpreters logged in (the rest of [`Lobby::staff_online`] are
    /// coordinators), for the metrics.
    pub(super) fn staff_by_role(&self) -> (usize, usize) {
        self.staff.by_role()
    }

    /// Something the queues show changed: push the views on the next `take_outputs`.
    pub(super) fn changed(&mut self) {
        self.dirty = true;
        self.snapshot_due = true;
    }

    /// Whether a push is due.
    pub(super) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Time passes: every view is refreshed at least every [`QUEUE_REFRESH`].
    pub(super) fn tick(&mut self, now: Instant) {
        if self.remote.expire(now) {
            self.dirty = true;
        }
        if now.saturating_duration_since(self.last_push) >= QUEUE_REFRESH {
            self.dirty = true;
            self.full_refresh = true;
        }
    }

    /// An operator took a session at `desk` after it waited `waited`. Counted as at least
    /// 30 s; the first wait observed at a desk is its average.
    pub(super) fn observe_wait(&mut self, desk: DeskId, waited: Duration) {
        let w = waited.as_secs_f64().max(30.0);
        self.avg_wait
            .entry(desk.clone())
            .and_modify(|avg| *avg = 0.8 * *avg + 0.2 * w)
            .or_insert(w);
        let n = self.observed.entry(desk).or_insert(0);
        *n = n.saturating_add(1).min(MAX_WAIT_WEIGHT);
        self.snapshot_due = true;
    }

    /// The hotline's average wait at `desk`: this node's and every other node's
    /// averages, each weighed by the accepts it is made of (at most [`MAX_WAIT_WEIGHT`]).
    /// `None` until some node observed one there, so the person is never shown a guess.
    fn average_wait(&self, desk: &DeskId) -> Option<f64> {
        let own = self
            .avg_wait
            .get(desk)
            .map(|avg| (*avg, self.observed.get(desk).copied().unwrap_or(1).max(1)));
        let (mut sum, mut weight) = (0.0f64, 0u64);
        for (avg, w) in own.into_iter().chain(self.remote.waits_at(desk)) {
            if avg.is_finite() && avg >= 0.0 {
                sum += avg * f64::from(w);
                weight = weight.saturating_add(u64::from(w));
            }
        }
        (weight > 0).then(|| sum / weight as f64)
    }

    /// Something only the other nodes see changed (what visitors hold): publish this
    /// node's snapshot soon, without pushing the views.
    pub(super) fn snapshot_soon(&mut self) {
        self.snapshot_due = true;
    }

    /// Whether an operator with this role and these desks may take a session waiting at
    /// `desk`. National operators take a regional queue when no regional operator is
    /// online.
    pub(super) fn operator_eligible(&self, role: Role, desks: &[DeskId], desk: &DeskId) -> bool {
        if role != Role::Operator {
            return false;
        }
        if desks.contains(desk) {
            return true;
        }
        desks.contains(&self.config.national().id) && self.operators_at(desk) == 0
    }

    /// Operators online at `desk`, on every node.
    fn operators_at(&self, desk: &DeskId) -> usize {
        self.staff
            .operators_at(desk)
            .saturating_add(self.remote.operators_at(desk))
    }

    /// How many online operators may take a session waiting at `desk`: those of the desk,
    /// or, when none is online there, the national ones.
    fn eligible_operators(&self, desk: &DeskId) -> usize {
        match self.operators_at(desk) {
            0 => self.operators_at(&self.config.national().id),
            n => n,
        }
    }

    /// Who can answer a session in `language` with `operators` eligible operators online.
    fn outlook(&self, operators: usize, language: &Language) -> Outlook {
        if operators == 0 {
            Outlook::NobodyOnline
        } else if self.staff.operator_speaks(language) || self.remote.operator_speaks(language) {
            Outlook::Speaker
        } else if self.staff.speaks(language) || self.remote.speaks(language) {
            Outlook::WithInterpreter
        } else {
            Outlook::SeekingInterpreter
        }
    }

    /// The numbers to call instead when nobody here can answer: the desk's, then the
    /// national desk's not already listed.
    fn fallback(&self, desk: &DeskId) -> Vec<String> {
        let mut numbers = self
            .config
            .desk(desk)
            .map(|d| d.fallback_numbers.clone())
            .unwrap_or_default();
        for n in &self.config.national().fallback_numbers {
            if !numbers.contains(n) {
                numbers.push(n.clone());
            }
        }
        numbers
    }

    /// Whether this node's snapshot changed since it was last taken; clears the mark.
    pub(super) fn take_snapshot_due(&mut self) -> bool {
        std::mem::take(&mut self.snapshot_due)
    }

    /// This node's queue and presence as the other nodes need them (epoch and version are
    /// the publisher's to set): what its staff see in their views, and counts of staff.
    pub(super) fn snapshot(
        &self,
        waiting: &[Waiting<'_>],
        invitations: &[OpenInvitation<'_>],
        now: Instant,
    ) -> LobbySnapshot {
        LobbySnapshot {
            epoch: 0,
            version: 0,
            waiting: waiting
                .iter()
                .map(|w| SnapWaiting {
                    session: w.session,
                    language: w.language.clone(),
                    desk: w.desk.clone(),
                    waiting_ms: millis_since(w.since, now),
                    away: w.away,
                })
                .collect(),
            invitations: invitations
                .iter()
                .map(|i| SnapInvitation {
                    session: i.session,
                    language: i.language.clone(),
                    desk: i.desk.clone(),
                    waiting_ms: millis_since(i.at, now),
                })
                .collect(),
            staff: self.staff.summary(),
            waits: self
                .avg_wait
                .iter()
                .map(|(desk, avg)| SnapWait {
                    desk: desk.clone(),
                    avg_secs: avg.clamp(0.0, f64::from(u32::MAX)) as u32,
                    weight: self.observed.get(desk).copied().unwrap_or(1),
                })
                .collect(),
            visitors: Vec::new(),
        }
    }

    /// Take in another node's snapshot; the views go out again if it changes them.
    pub(super) fn apply_remote(
        &mut self,
        node: &str,
        snapshot: LobbySnapshot,
        now: Instant,
    ) -> Taken {
        let config = self.config.clone();
        let me = config.bus.as_ref().map_or("", |b| b.node());
        let serves = Serves {
            desk: &|desk| config.desk(desk).is_some(),
            language: &|language| config.limits.languages.contains(language),
        };
        let taken = self.remote.apply(node, snapshot, now, me, &serves);
        if taken == Taken::Changed {
            self.dirty = true;
        }
        taken
    }

    /// Node `node` is lost: its entries and staff go from the views.
    pub(super) fn forget_remote(&mut self, node: &str) {
        if self.remote.forget(node) {
            self.dirty = true;
        }
    }

    /// What node `node` last reported of this node's sub-connection `conn`.
    pub(super) fn visitor(&self, node: &str, conn: u64) -> Option<&Visitor> {
        self.remote.visitor(node, conn)
    }

    /// The node where `session` waits, if another does.
    pub(super) fn remote_home_of_waiting(&self, session: &SessionId) -> Option<&str> {
        self.remote.home_of_waiting(session)
    }

    /// The node holding an open invitation for `session` in one of `languages`, if
    /// another does.
    pub(super) fn remote_home_of_invitation(
        &self,
        session: &SessionId,
        languages: &[Language],
    ) -> Option<&str> {
        self.remote.home_of_invitation(session, languages)
    }

    /// The people waiting their place (when it changed) and the staff their views (when
    /// they changed, or all of them on the periodic refresh). The cost is one pass over the
    /// waiting sessions, plus one per distinct set of desks (operators) or languages
    /// (interpreters) among those online; never a pass over every connection.
    pub(super) fn push(
        &mut self,
        waiting: Vec<Waiting<'_>>,
        invitations: Vec<OpenInvitation<'_>>,
        now: Instant,
    ) -> Push {
        self.dirty = false;
        let full = std::mem::take(&mut self.full_refresh);
        self.last_push = now;
        // The other nodes' waiting sessions and invitations take their places among ours:
        // one queue for the whole hotline.
        let remote_waiting: Vec<_> = self.remote.waiting().cloned().collect();
        let remote_invitations: Vec<_> = self.remote.invitations().cloned().collect();
        let (mut waiting, mut invitations): (Vec<Waiting<'_>>, Vec<OpenInvitation<'_>>) =
            (waiting, invitations);
        waiting.extend(remote_waiting.iter().map(|r| Waiting {
            session: r.session,
            language: &r.language,
            desk: &r.desk,
            since: r.since,
            person: None,
            away: r.away,
            last_status: None,
        }));
        invitations.extend(remote_invitations.iter().map(|r| OpenInvitation {
            at: r.at,
            session: r.session,
            language: &r.language,
            desk: &r.desk,
        }));
        waiting.sort_by_key(|w| (w.since, w.session));

        let mut frames = Vec::new();
        let mut statuses = Vec::new();
        let mut ahead: HashMap<(&DeskId, &Language), u32> = HashMap::new();
        for w in &waiting {
            let position = {
                let n = ahead.entry((w.desk, w.language)).or_insert(0);
                *n = n.saturating_add(1);
                *n
            };
            let operators = self.eligible_operators(w.desk);
            let outlook = self.outlook(operators, w.language);
            let available = matches!(outlook, Outlook::Speaker | Outlook::WithInterpreter);
            // Only from waits observed at this desk (on any node), and only while someone
            // can answer: 0 says "no estimate" rather than showing a guess.
            let wait_secs = match self.average_wait(w.desk) {
                Some(avg) if operators > 0 => {
                    (f64::from(position) * avg / operators as f64).min(f64::from(u32::MAX)) as u32
                }
                _ => 0,
            };
            let fallback = if available {
                Vec::new()
            } else {
                self.fallback(w.desk)
            };
            let status = (position, wait_secs, outlook);
            if let Some(conn) = w.person
                && w.last_status != Some(status)
            {
                statuses.push((w.session, status));
                frames.push((
                    conn,
                    RelayFrame::QueueStatus {
                        session: w.session,
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
            let Some(profile) = self.staff.profile(conn) else {
                continue;
            };
            let mut desks = profile.desks.clone();
            desks.sort();
            desks.dedup();
            let (entries, total, digest) = views
                .entry(desks)
                .or_insert_with(|| {
                    let eligible = waiting
                        .iter()
                        .filter(|w| self.operator_eligible(profile.role, &profile.desks, w.desk));
                    let (entries, total) = capped(eligible, |w| QueueEntry {
                        session: w.session,
                        language: w.language.clone(),
                        desk: w.desk.clone(),
                        waiting_secs: secs_since(w.since, now),
                        away: w.away,
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
        invitations.sort_by_key(|i| (i.at, i.session, i.language.clone()));
        let mut inv_views: HashMap<Vec<Language>, (Vec<Invitation>, u32, u64)> = HashMap::new();
        for conn in self.staff.interpreters() {
            let Some(profile) = self.staff.profile(conn) else {
                continue;
            };
            let mut languages = profile.languages.clone();
            languages.sort();
            languages.dedup();
            let (entries, total, digest) = inv_views
                .entry(languages)
                .or_insert_with(|| {
                    let open = invitations
                        .iter()
                        .filter(|i| profile.languages.contains(i.language));
                    let (entries, total) = capped(open, |i| Invitation {
                        session: i.session,
                        language: i.language.clone(),
                        desk: i.desk.clone(),
                        waiting_secs: secs_since(i.at, now),
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

        for (conn, digest, frame) in staff_frames {
            if full || self.last_view.get(&conn) != Some(&digest) {
                self.last_view.insert(conn, digest);
                frames.push((conn, frame));
            }
        }
        Push { frames, statuses }
    }
}

/// Milliseconds from `t` to `now` (0 if `now` is earlier).
fn millis_since(t: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds from `t` to `now` (0 if `now` is earlier), within a `u32`.
fn secs_since(t: Instant, now: Instant) -> u32 {
    now.saturating_duration_since(t)
        .as_secs()
        .min(u64::from(u32::MAX)) as u32
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
