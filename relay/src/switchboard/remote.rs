//! The other nodes' queues and staff presence, as their snapshots tell them (several nodes
//! only). Pure: time comes in, so the versioning rules are tested without a bus.
//!
//! Each node publishes a [`LobbySnapshot`] of its own waiting sessions, open invitations
//! and online staff: on change (debounced by the bus task) and at least every
//! [`SNAPSHOT_EVERY`]. A snapshot is always the whole picture, never a change, so a lost
//! one is healed by the next. NATS core may drop messages, and reorder them across a
//! reconnect: a snapshot carries the publisher's epoch (random, new at each start) and a
//! version rising within the epoch, and [`RemoteLobbies::apply`] ignores one no newer than
//! the last applied. A node that falls silent (lost, or nothing for [`SNAPSHOT_STALE`])
//! takes its entries with it.
//!
//! A snapshot holds only what staff already see in their queue views (desk, language,
//! seconds waited, whether the person is away) and, for staff, counts per desk and the
//! languages spoken: no participant, no token, no certificate, no address.
//!
//! Two more things make counts global rather than per node (`docs/counts-across-nodes.md`):
//! the node's own average wait per desk, with its weight ([`SnapWait`]), so a person's
//! estimate anywhere uses every node's observations; and, for each staff connection
//! another node carries here, the sessions it holds here and the `Accept`s and `Join`s
//! answered lately ([`SnapVisitor`]), so the member's own node counts their sessions
//! on every node against the one cap. Both are whole in every snapshot, so they heal
//! with it.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use approdo_core::ids::{DeskId, Language, SessionId};
use serde::{Deserialize, Serialize};

/// How often a node publishes its snapshot even when nothing changed.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(2);

/// A node whose snapshot is older than this is forgotten, even if its heartbeats still
/// come (a node whose lobby publishing is stuck must not show a frozen queue).
pub const SNAPSHOT_STALE: Duration = Duration::from_secs(10);

/// Most waiting sessions or invitations taken from one node's snapshot; the rest are
/// ignored (a node holds far fewer: its `max_sessions`).
pub const MAX_REMOTE_ENTRIES: usize = 20_000;

/// Most desks or languages taken from one node's staff summary.
pub const MAX_REMOTE_TAGS: usize = 256;

/// Most other nodes whose snapshots are kept.
pub const MAX_REMOTE_NODES: usize = 64;

/// Most staff connections of this node taken from one node's snapshot (a node carries
/// one sub-connection per staff connection and home, so this is far above real use).
pub const MAX_REMOTE_VISITORS: usize = 10_000;

/// Most sessions taken per visitor entry: held or answered. A visitor holds at most the
/// home's `max_sessions_per_staff`; more is bad input, and counting it only ever refuses
/// that member more.
pub const MAX_VISITOR_SESSIONS: usize = 64;

/// The most a node's average wait at a desk weighs (observations): a node that
/// observed many accepts weighs no more than one that observed this many, so one node
/// cannot drown the others' recent picture.
pub const MAX_WAIT_WEIGHT: u32 = 10;

/// A waiting session, as another node's staff see it in their queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapWaiting {
    /// The session.
    pub session: SessionId,
    /// The person's language.
    pub language: Language,
    /// The desk whose queue it is in.
    pub desk: DeskId,
    /// Milliseconds it had waited when the snapshot was taken (milliseconds, so sessions
    /// opened within the same second keep their order across nodes).
    pub waiting_ms: u64,
    /// Whether the person's connection is down.
    pub away: bool,
}

/// An open interpreter invitation, as another node's interpreters see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapInvitation {
    /// The session.
    pub session: SessionId,
    /// The language asked for.
    pub language: Language,
    /// The session's desk.
    pub desk: DeskId,
    /// Milliseconds since the invitation when the snapshot was taken.
    pub waiting_ms: u64,
}

/// Who is online on a node, as the queue work needs it: counts, never who.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffSummary {
    /// Operators online per desk of their certificates.
    pub operators_at: Vec<(DeskId, u32)>,
    /// Languages an online operator or interpreter speaks.
    pub speakers: Vec<Language>,
    /// Languages an online operator speaks.
    pub operator_speakers: Vec<Language>,
}

/// A desk's average observed wait on the publishing node (its own accepts only, never
/// what it merged from others, so nothing echoes between nodes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapWait {
    /// The desk.
    pub desk: DeskId,
    /// Its moving average of observed waits, in seconds.
    pub avg_secs: u32,
    /// How many accepts it is made of, at most [`MAX_WAIT_WEIGHT`].
    pub weight: u32,
}

/// A staff connection another node carries to the publishing node (a staff member's
/// sub-connection), as its own node needs it to count the member's sessions: named by
/// the node and the number that node gave it, never by who the member is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapVisitor {
    /// The node holding the member's connection.
    pub edge: String,
    /// That node's number for the sub-connection.
    pub conn: u64,
    /// The sessions the sub-connection holds here.
    pub held: Vec<SessionId>,
    /// The sessions it sent an `Accept` or `Join` for lately (taken or refused), so its
    /// node knows the answer is already in `held`.
    pub answered: Vec<SessionId>,
}

/// One node's queue and presence, whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbySnapshot {
    /// Random at each start of the publishing node.
    pub epoch: u64,
    /// Rises with each snapshot within an epoch.
    pub version: u64,
    /// Its waiting sessions.
    pub waiting: Vec<SnapWaiting>,
    /// Its open invitations.
    pub invitations: Vec<SnapInvitation>,
    /// Its online staff.
    pub staff: StaffSummary,
    /// Its average observed wait per desk.
    pub waits: Vec<SnapWait>,
    /// The staff connections other nodes carry to it, with the sessions they hold.
    pub visitors: Vec<SnapVisitor>,
}

/// What another node reports of one of this node's staff sub-connections.
#[derive(Clone, Debug, Default)]
pub(super) struct Visitor {
    /// Sessions held there.
    pub(super) held: Vec<SessionId>,
    /// `Accept`s and `Join`s answered there lately.
    pub(super) answered: Vec<SessionId>,
}

/// A waiting session of another node, with the time it started waiting on this node's
/// clock.
#[derive(Clone, Debug)]
pub(super) struct RemoteWaiting {
    pub(super) session: SessionId,
    pub(super) language: Language,
    pub(super) desk: DeskId,
    pub(super) since: Instant,
    pub(super) away: bool,
}

/// An invitation of another node, its time on this node's clock.
#[derive(Clone, Debug)]
pub(super) struct RemoteInvitation {
    pub(super) session: SessionId,
    pub(super) language: Language,
    pub(super) desk: DeskId,
    pub(super) at: Instant,
}

struct Applied {
    epoch: u64,
    version: u64,
    at: Instant,
    waiting: Vec<RemoteWaiting>,
    invitations: Vec<RemoteInvitation>,
    staff: StaffSummary,
    /// Its average wait per desk and the weight of each.
    waits: Vec<(DeskId, f64, u32)>,
    /// What it reports of this node's staff sub-connections, by their number here.
    visitors: HashMap<u64, Visitor>,
    /// What a view shows of this node (not the seconds): a snapshot that changes nothing
    /// of it does not make the views go out again.
    digest: u64,
}

/// The desks and languages this node serves: what it takes from other nodes' snapshots.
pub(super) struct Serves<'a> {
    /// Whether this node has the desk.
    pub(super) desk: &'a dyn Fn(&DeskId) -> bool,
    /// Whether this node serves the language.
    pub(super) language: &'a dyn Fn(&Language) -> bool,
}

/// What [`RemoteLobbies::apply`] made of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Taken, and the views change.
    Changed,
    /// Taken; the views show the same.
    Same,
    /// Older than, or the same as, what was applied: ignored.
    Stale,
    /// From one node too many: ignored.
    Full,
}

/// The other nodes' lobbies. See the module documentation.
#[derive(Default)]
pub(super) struct RemoteLobbies {
    nodes: HashMap<String, Applied>,
}

impl RemoteLobbies {
    /// Take in `node`'s snapshot received at `now`; `serves` says which desks and
    /// languages this node serves (entries naming others are dropped: every node has the
    /// same configuration, so those are bad input); `me` is this node's name (visitor
    /// entries for other nodes are dropped).
    pub(super) fn apply(
        &mut self,
        node: &str,
        snapshot: LobbySnapshot,
        now: Instant,
        me: &str,
        serves: &Serves<'_>,
    ) -> Taken {
        let keep = |d: &DeskId, l: &Language| (serves.desk)(d) && (serves.language)(l);
        if let Some(old) = self.nodes.get(node) {
            let newer = snapshot.epoch != old.epoch || snapshot.version > old.version;
            if !newer {
                return Taken::Stale;
            }
        } else if self.nodes.len() >= MAX_REMOTE_NODES {
            return Taken::Full;
        }
        let ago = |ms: u64| now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
        let waiting: Vec<RemoteWaiting> = snapshot
            .waiting
            .into_iter()
            .filter(|w| keep(&w.desk, &w.language))
            .take(MAX_REMOTE_ENTRIES)
            .map(|w| RemoteWaiting {
                since: ago(w.waiting_ms),
                session: w.session,
                language: w.language,
                desk: w.desk,
                away: w.away,
            })
            .collect();
        let invitations: Vec<RemoteInvitation> = snapshot
            .invitations
            .into_iter()
            .filter(|i| keep(&i.desk, &i.language))
            .take(MAX_REMOTE_ENTRIES)
            .map(|i| RemoteInvitation {
                at: ago(i.waiting_ms),
                session: i.session,
                language: i.language,
                desk: i.desk,
            })
            .collect();
        let mut staff = snapshot.staff;
        staff.operators_at.truncate(MAX_REMOTE_TAGS);
        staff.speakers.truncate(MAX_REMOTE_TAGS);
        staff.operator_speakers.truncate(MAX_REMOTE_TAGS);
        let mut waits: Vec<(DeskId, f64, u32)> = Vec::new();
        for w in snapshot.waits {
            if (serves.desk)(&w.desk) && w.weight > 0 && !waits.iter().any(|(d, _, _)| *d == w.desk)
            {
                waits.push((w.desk, f64::from(w.avg_secs), w.weight.min(MAX_WAIT_WEIGHT)));
            }
            if waits.len() >= MAX_REMOTE_TAGS {
                break;
            }
        }
        let mut visitors: HashMap<u64, Visitor> = HashMap::new();
        for v in snapshot.visitors.into_iter().filter(|v| v.edge == me) {
            if visitors.len() >= MAX_REMOTE_VISITORS {
                break;
            }
            let mut held = v.held;
            held.truncate(MAX_VISITOR_SESSIONS);
            let mut answered = v.answered;
            answered.truncate(MAX_VISITOR_SESSIONS);
            visitors.insert(v.conn, Visitor { held, answered });
        }
        let digest = digest(&waiting, &invitations, &staff, &waits);
        let changed = self.nodes.get(node).is_none_or(|old| old.digest != digest);
        self.nodes.insert(
            node.to_owned(),
            Applied {
                epoch: snapshot.epoch,
                version: snapshot.version,
                at: now,
                waiting,
                invitations,
                staff,
                waits,
                visitors,
                digest,
            },
        );
        if changed { Taken::Changed } else { Taken::Same }
    }

    /// Forget `node` (lost). True if anything of it was shown.
    pub(super) fn forget(&mut self, node: &str) -> bool {
        self.nodes.remove(node).is_some()
    }

    /// Forget the nodes whose last snapshot is older than [`SNAPSHOT_STALE`]. True if any.
    pub(super) fn expire(&mut self, now: Instant) -> bool {
        let before = self.nodes.len();
        self.nodes
            .retain(|_, a| now.saturating_duration_since(a.at) <= SNAPSHOT_STALE);
        self.nodes.len() != before
    }

    /// Every other node's waiting sessions.
    pub(super) fn waiting(&self) -> impl Iterator<Item = &RemoteWaiting> {
        self.nodes.values().flat_map(|a| a.waiting.iter())
    }

    /// Every other node's open invitations.
    pub(super) fn invitations(&self) -> impl Iterator<Item = &RemoteInvitation> {
        self.nodes.values().flat_map(|a| a.invitations.iter())
    }

    /// The node where `session` waits, by the latest snapshots.
    pub(super) fn home_of_waiting(&self, session: &SessionId) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(_, a)| a.waiting.iter().any(|w| w.session == *session))
            .map(|(n, _)| n.as_str())
    }

    /// The node of `session` with an open invitation in one of `languages`.
    pub(super) fn home_of_invitation(
        &self,
        session: &SessionId,
        languages: &[Language],
    ) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(_, a)| {
                a.invitations
                    .iter()
                    .any(|i| i.session == *session && languages.contains(&i.language))
            })
            .map(|(n, _)| n.as_str())
    }

    /// Operators online at `desk` on the other nodes.
    pub(super) fn operators_at(&self, desk: &DeskId) -> usize {
        self.nodes
            .values()
            .flat_map(|a| a.staff.operators_at.iter())
            .filter(|(d, _)| d == desk)
            .map(|(_, n)| *n as usize)
            .sum()
    }

    /// Whether an operator or interpreter online on another node speaks `language`.
    pub(super) fn speaks(&self, language: &Language) -> bool {
        self.nodes
            .values()
            .any(|a| a.staff.speakers.contains(language))
    }

    /// Every other node's average wait at `desk`, with its weight.
    pub(super) fn waits_at<'a>(
        &'a self,
        desk: &'a DeskId,
    ) -> impl Iterator<Item = (f64, u32)> + 'a {
        self.nodes.values().flat_map(move |a| {
            a.waits
                .iter()
                .filter(move |(d, _, _)| d == desk)
                .map(|(_, avg, w)| (*avg, *w))
        })
    }

    /// What `node` last reported of this node's sub-connection `conn`.
    pub(super) fn visitor(&self, node: &str, conn: u64) -> Option<&Visitor> {
        self.nodes.get(node)?.visitors.get(&conn)
    }

    /// Whether an operator online on another node speaks `language`.
    pub(super) fn operator_speaks(&self, language: &Language) -> bool {
        self.nodes
            .values()
            .any(|a| a.staff.operator_speakers.contains(language))
    }
}

fn digest(
    waiting: &[RemoteWaiting],
    invitations: &[RemoteInvitation],
    staff: &StaffSummary,
    waits: &[(DeskId, f64, u32)],
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for w in waiting {
        (&w.session, &w.language, &w.desk, w.away).hash(&mut h);
    }
    for i in invitations {
        (&i.session, &i.language, &i.desk).hash(&mut h);
    }
    staff.operators_at.hash(&mut h);
    let sorted = |v: &[Language]| v.iter().cloned().collect::<BTreeSet<_>>();
    sorted(&staff.speakers).hash(&mut h);
    sorted(&staff.operator_speakers).hash(&mut h);
    // The estimates shown to people change with the waits.
    for (desk, avg, weight) in waits {
        (desk, avg.to_bits(), weight).hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approdo_core::ids::Tag;

    fn tag(s: &str) -> Tag {
        Tag::new(s).expect("tag")
    }

    fn snap(epoch: u64, version: u64, sessions: &[u8]) -> LobbySnapshot {
        LobbySnapshot {
            epoch,
            version,
            waiting: sessions
                .iter()
                .map(|b| SnapWaiting {
                    session: SessionId([*b; 16]),
                    language: tag("en"),
                    desk: tag("national"),
                    waiting_ms: 5_000,
                    away: false,
                })
                .collect(),
            invitations: Vec::new(),
            staff: StaffSummary {
                operators_at: vec![(tag("national"), 2)],
                speakers: vec![tag("en")],
                operator_speakers: vec![tag("en")],
            },
            waits: Vec::new(),
            visitors: Vec::new(),
        }
    }

    const ALL: Serves<'static> = Serves {
        desk: &|_| true,
        language: &|_| true,
    };

    #[test]
    fn an_older_or_repeated_version_is_ignored_and_a_newer_one_replaces_the_whole() {
        let mut r = RemoteLobbies::default();
        let now = Instant::now();
        assert_eq!(
            r.apply("a", snap(1, 5, &[1, 2]), now, "me", &ALL),
            Taken::Changed
        );
        assert_eq!(
            r.apply("a", snap(1, 4, &[3]), now, "me", &ALL),
            Taken::Stale
        );
        assert_eq!(
            r.apply("a", snap(1, 5, &[3]), now, "me", &ALL),
            Taken::Stale
        );
        assert_eq!(r.waiting().count(), 2);
        // Version 6 was lost on the bus; 7 heals it whole.
        assert_eq!(
            r.apply("a", snap(1, 7, &[2]), now, "me", &ALL),
            Taken::Changed
        );
        let left: Vec<_> = r.waiting().map(|w| w.session).collect();
        assert_eq!(left, vec![SessionId([2; 16])]);
        // The same content again changes no view.
        assert_eq!(r.apply("a", snap(1, 8, &[2]), now, "me", &ALL), Taken::Same);
    }

    #[test]
    fn a_restarted_node_is_believed_whatever_its_version() {
        let mut r = RemoteLobbies::default();
        let now = Instant::now();
        r.apply("a", snap(1, 50, &[1]), now, "me", &ALL);
        assert_eq!(
            r.apply("a", snap(2, 1, &[]), now, "me", &ALL),
            Taken::Changed
        );
        assert_eq!(r.waiting().count(), 0);
    }

    #[test]
    fn a_lost_or_silent_node_takes_its_entries_and_staff_with_it() {
        let mut r = RemoteLobbies::default();
        let now = Instant::now();
        r.apply("a", snap(1, 1, &[1]), now, "me", &ALL);
        r.apply("b", snap(9, 1, &[2]), now, "me", &ALL);
        assert_eq!(r.operators_at(&tag("national")), 4);
        assert!(r.speaks(&tag("en")) && r.operator_speaks(&tag("en")));
        assert!(r.forget("a"));
        assert_eq!(r.operators_at(&tag("national")), 2);
        assert!(!r.expire(now + SNAPSHOT_STALE));
        assert!(r.expire(now + SNAPSHOT_STALE + Duration::from_secs(1)));
        assert_eq!(r.waiting().count(), 0);
        assert!(!r.speaks(&tag("en")));
    }

    #[test]
    fn entries_for_desks_or_languages_not_served_are_dropped() {
        let mut r = RemoteLobbies::default();
        let now = Instant::now();
        let no_en = Serves {
            desk: &|_| true,
            language: &|l| l.as_str() != "en",
        };
        r.apply("a", snap(1, 1, &[1, 2]), now, "me", &no_en);
        assert_eq!(r.waiting().count(), 0);
    }

    #[test]
    fn the_waited_time_is_carried_onto_this_clock() {
        let mut r = RemoteLobbies::default();
        let now = Instant::now() + Duration::from_secs(60);
        r.apply("a", snap(1, 1, &[1]), now, "me", &ALL);
        let w = r.waiting().next().expect("one");
        assert_eq!(now.duration_since(w.since), Duration::from_secs(5));
    }

    #[test]
    fn only_this_nodes_visitors_are_kept_and_within_bounds() {
        let mut r = RemoteLobbies::default();
        let now = Instant::now();
        let mut s = snap(1, 1, &[]);
        let many: Vec<SessionId> = (0..=255u8).map(|b| SessionId([b; 16])).collect();
        s.visitors = vec![
            SnapVisitor {
                edge: "me".into(),
                conn: 7,
                held: many.clone(),
                answered: many.clone(),
            },
            SnapVisitor {
                edge: "someone-else".into(),
                conn: 8,
                held: many.clone(),
                answered: Vec::new(),
            },
        ];
        r.apply("a", s, now, "me", &ALL);
        let v = r.visitor("a", 7).expect("ours");
        assert_eq!(v.held.len(), MAX_VISITOR_SESSIONS);
        assert_eq!(v.answered.len(), MAX_VISITOR_SESSIONS);
        assert!(r.visitor("a", 8).is_none());
        // The next snapshot replaces the report whole; a lost node takes it with it.
        r.apply("a", snap(1, 2, &[]), now, "me", &ALL);
        assert!(r.visitor("a", 7).is_none());
    }

    #[test]
    fn waits_are_taken_once_per_served_desk_with_a_bounded_weight() {
        let mut r = RemoteLobbies::default();
        let now = Instant::now();
        let mut s = snap(1, 1, &[]);
        let wait = |desk: &str, avg_secs, weight| SnapWait {
            desk: tag(desk),
            avg_secs,
            weight,
        };
        s.waits = vec![
            wait("national", 40, u32::MAX),
            wait("national", 1, 1),
            wait("elsewhere", 99, 3),
            wait("tuscany", 5, 0),
        ];
        let served = Serves {
            desk: &|d| d.as_str() != "elsewhere",
            language: &|_| true,
        };
        assert_eq!(r.apply("a", s, now, "me", &served), Taken::Changed);
        let national: Vec<_> = r.waits_at(&tag("national")).collect();
        assert_eq!(national, vec![(40.0, MAX_WAIT_WEIGHT)]);
        assert_eq!(r.waits_at(&tag("elsewhere")).count(), 0);
        assert_eq!(r.waits_at(&tag("tuscany")).count(), 0, "no weight, no wait");
    }

    #[test]
    fn five_thousand_waiting_sessions_fit_one_bus_message() {
        let mut big = snap(1, 1, &[]);
        big.waiting = (0..5_000u32)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_le_bytes());
                SnapWaiting {
                    session: SessionId(id),
                    language: tag("pcm"),
                    desk: tag("national"),
                    waiting_ms: 3_600_000,
                    away: false,
                }
            })
            .collect();
        let bytes = postcard::to_allocvec(&big).expect("encode").len();
        // 16 + 4 + 9 + 4 + 1 = 34 bytes an entry: about 166 KiB, well under NATS's 1 MiB.
        assert!(bytes < 200 * 1024, "{bytes}");
        let back: LobbySnapshot =
            postcard::from_bytes(&postcard::to_allocvec(&big).expect("encode")).expect("decode");
        assert_eq!(back, big);
    }
}
