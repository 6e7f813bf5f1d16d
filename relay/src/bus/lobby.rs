//! The global queue and staff presence over the bus: each node publishes its
//! [`LobbySnapshot`] (its waiting sessions, open invitations and staff counts; the rules
//! are in `switchboard::remote`) on `approdo.node.<node>.lobby`, and applies the other
//! nodes' to its own views. A snapshot goes out when something it shows changed (checked
//! every [`CHECK_EVERY`], so a burst of changes gives one) and at least every
//! [`SNAPSHOT_EVERY`], so a lost one is healed within that.

use std::time::{Duration, Instant};

use crate::server::{SharedHub, lock};
use crate::switchboard::{LobbySnapshot, SNAPSHOT_EVERY, Taken};

/// How often the bus task asks whether this node's snapshot changed: the debounce.
pub const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Largest snapshot published (NATS refuses messages over its `max_payload`, 1 MiB by
/// default): about 25,000 waiting sessions. A larger one is not sent and the other nodes
/// drop this node's entries when its last snapshot goes stale.
pub const MAX_SNAPSHOT_BYTES: usize = 900 * 1024;

/// The subject node `node` publishes its snapshots on.
pub fn lobby_subject(node: &str) -> String {
    format!("approdo.node.{node}.lobby")
}

/// Every node's snapshots.
pub const ALL_LOBBIES: &str = "approdo.node.*.lobby";

/// The node named by a subject `approdo.node.<name>.lobby`, if it is one.
pub fn node_of_lobby(subject: &str) -> Option<&str> {
    let name = subject
        .strip_prefix("approdo.node.")?
        .strip_suffix(".lobby")?;
    super::valid_node_name(name).then_some(name)
}

/// This node's side of publishing: the epoch, the last version, when it last went out.
pub struct Publisher {
    epoch: u64,
    version: u64,
    last: Option<Instant>,
}

impl Publisher {
    /// A publisher for this run of the node (`epoch` random, new at each start).
    pub fn new(epoch: u64) -> Self {
        Publisher {
            epoch,
            version: 0,
            last: None,
        }
    }

    /// The snapshot to publish now, encoded, if one is due: something changed, or
    /// [`SNAPSHOT_EVERY`] passed since the last.
    pub fn due(&mut self, hub: &SharedHub, now: Instant) -> Option<Vec<u8>> {
        let force = self
            .last
            .is_none_or(|at| now.saturating_duration_since(at) >= SNAPSHOT_EVERY);
        let mut snapshot = lock(hub).switchboard_mut().lobby_snapshot(force)?;
        self.version += 1;
        self.last = Some(now);
        snapshot.epoch = self.epoch;
        snapshot.version = self.version;
        let bytes = postcard::to_allocvec(&snapshot).ok()?;
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            tracing::warn!(
                bytes = bytes.len(),
                "bus: queue snapshot too large to publish"
            );
            return None;
        }
        Some(bytes)
    }
}

/// A snapshot as nodes of the previous version publish it (no waits, no visitors): read
/// during a rolling upgrade, so a new node still shows an old node's queue and staff.
/// (An old node reads a new snapshot as this, ignoring what follows.)
#[derive(serde::Deserialize)]
struct SnapshotBeforeWaits {
    epoch: u64,
    version: u64,
    waiting: Vec<crate::switchboard::SnapWaiting>,
    invitations: Vec<crate::switchboard::SnapInvitation>,
    staff: crate::switchboard::StaffSummary,
}

/// A snapshot's bytes, in this version's shape or the previous one's.
pub fn decode_snapshot(payload: &[u8]) -> Option<LobbySnapshot> {
    if let Ok(snapshot) = postcard::from_bytes::<LobbySnapshot>(payload) {
        return Some(snapshot);
    }
    let old = postcard::from_bytes::<SnapshotBeforeWaits>(payload).ok()?;
    Some(LobbySnapshot {
        epoch: old.epoch,
        version: old.version,
        waiting: old.waiting,
        invitations: old.invitations,
        staff: old.staff,
        waits: Vec::new(),
        visitors: Vec::new(),
    })
}

/// Another node's snapshot arrived: apply it and send the views it changes. False when
/// it could not be read.
pub fn received(hub: &SharedHub, node: &str, payload: &[u8]) -> bool {
    let Some(snapshot) = decode_snapshot(payload) else {
        return false;
    };
    let mut hub = lock(hub);
    let taken = hub
        .switchboard_mut()
        .apply_remote_lobby(node, snapshot, Instant::now());
    if taken == Taken::Changed {
        hub.flush();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_of_the_previous_version_still_reads_and_the_new_one_reads_as_it_was() {
        #[derive(serde::Serialize)]
        struct Old {
            epoch: u64,
            version: u64,
            waiting: Vec<crate::switchboard::SnapWaiting>,
            invitations: Vec<crate::switchboard::SnapInvitation>,
            staff: crate::switchboard::StaffSummary,
        }
        let old = Old {
            epoch: 3,
            version: 9,
            waiting: Vec::new(),
            invitations: Vec::new(),
            staff: Default::default(),
        };
        let bytes = postcard::to_allocvec(&old).expect("encode");
        let read = decode_snapshot(&bytes).expect("an old snapshot reads");
        assert_eq!((read.epoch, read.version), (3, 9));
        assert!(read.waits.is_empty() && read.visitors.is_empty());
        let new = LobbySnapshot {
            epoch: 4,
            version: 1,
            waits: vec![crate::switchboard::SnapWait {
                desk: approdo_core::ids::Tag::new("national").expect("tag"),
                avg_secs: 30,
                weight: 1,
            }],
            ..Default::default()
        };
        let bytes = postcard::to_allocvec(&new).expect("encode");
        assert!(postcard::from_bytes::<SnapshotBeforeWaits>(&bytes).is_ok());
        assert_eq!(decode_snapshot(&bytes), Some(new));
        assert!(decode_snapshot(&[0xff; 3]).is_none());
    }

    #[test]
    fn a_lobby_subject_names_its_node_and_nothing_else_parses() {
        assert_eq!(node_of_lobby(&lobby_subject("rome-1")), Some("rome-1"));
        assert_eq!(node_of_lobby("approdo.node.a.b.lobby"), None);
        assert_eq!(node_of_lobby("approdo.node.a.beat"), None);
    }
}
