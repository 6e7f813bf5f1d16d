//! What one node knows of the others: their last heartbeat, whether they still count as
//! alive, and how long the bus takes to answer. Pure (time comes in), so the rules are
//! tested without a NATS server.
//!
//! NATS core delivers at most once and may drop or (across reconnects) reorder, so a beat
//! carries the sender's *epoch* (random, new at each start) and a *version* that rises with
//! each beat. A beat older than the one already seen from that epoch is ignored; a beat
//! from a new epoch is a restart of that node. Loss heals by itself: the next beat repeats
//! everything.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A node that has sent no beat for this long counts as lost: three missed beats and a
/// margin for a busy bus. Its sessions end (once sessions span nodes) and it leaves the
/// `alive` count.
pub const LOST_AFTER: Duration = Duration::from_millis(3_500);

/// Most other nodes one node keeps track of. A deployment has a handful; a misconfigured or
/// hostile publisher inventing node names cannot grow the table past this.
pub const MAX_PEERS: usize = 64;

/// How many round trips the quantiles are taken over.
const ROUND_TRIPS_KEPT: usize = 128;

/// A node's heartbeat, published on its own beat subject (postcard: two varints). The
/// subject names the node, so the payload does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// Random at each start of the node: tells a restart from a late beat.
    pub epoch: u64,
    /// One more at each beat within an epoch.
    pub version: u64,
}

/// What [`Peers::observe`] made of a beat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A node not alive before (first beat, or back after being lost, or restarted).
    Joined,
    /// A newer beat of a node already alive.
    Fresh,
    /// Older than, or the same as, what was seen: ignored.
    Stale,
    /// The table is full ([`MAX_PEERS`]): ignored.
    Full,
}

#[derive(Debug)]
struct Peer {
    last: Beat,
    seen_at: Instant,
    alive: bool,
}

/// The other nodes, as this node sees them.
#[derive(Debug, Default)]
pub struct Peers {
    peers: HashMap<String, Peer>,
    lost_total: u64,
    round_trips: VecDeque<Duration>,
}

impl Peers {
    /// Take in a beat from `node` received at `now`.
    pub fn observe(&mut self, node: &str, beat: Beat, now: Instant) -> Observed {
        if let Some(peer) = self.peers.get_mut(node) {
            let newer = beat.epoch != peer.last.epoch || beat.version > peer.last.version;
            if !newer {
                return Observed::Stale;
            }
            let restarted = beat.epoch != peer.last.epoch;
            let was_alive = peer.alive;
            peer.last = beat;
            peer.seen_at = now;
            peer.alive = true;
            return if was_alive && !restarted {
                Observed::Fresh
            } else {
                Observed::Joined
            };
        }
        if self.peers.len() >= MAX_PEERS {
            // Make room only by forgetting nodes already lost.
            self.peers.retain(|_, p| p.alive);
            if self.peers.len() >= MAX_PEERS {
                return Observed::Full;
            }
        }
        self.peers.insert(
            node.to_owned(),
            Peer {
                last: beat,
                seen_at: now,
                alive: true,
            },
        );
        Observed::Joined
    }

    /// Mark as lost every node silent for [`LOST_AFTER`] at `now`; returns their names.
    pub fn sweep(&mut self, now: Instant) -> Vec<String> {
        let mut lost = Vec::new();
        for (name, peer) in &mut self.peers {
            if peer.alive && now.saturating_duration_since(peer.seen_at) >= LOST_AFTER {
                peer.alive = false;
                lost.push(name.clone());
            }
        }
        self.lost_total += lost.len() as u64;
        lost
    }

    /// The names of the nodes alive now (sorted), to ping.
    pub fn alive_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.alive)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// How many other nodes are alive.
    pub fn alive(&self) -> usize {
        self.peers.values().filter(|p| p.alive).count()
    }

    /// How many times a node was found lost since start.
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// Record one request/reply round trip over the bus.
    pub fn record_round_trip(&mut self, took: Duration) {
        if self.round_trips.len() == ROUND_TRIPS_KEPT {
            self.round_trips.pop_front();
        }
        self.round_trips.push_back(took);
    }

    /// The `q` quantile (0.0–1.0, nearest rank) of the recent round trips, if any.
    pub fn round_trip_quantile(&self, q: f64) -> Option<Duration> {
        if self.round_trips.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = self.round_trips.iter().copied().collect();
        sorted.sort_unstable();
        let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.saturating_sub(1)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Beat = Beat {
        epoch: 7,
        version: 1,
    };

    #[test]
    fn a_first_beat_joins_a_newer_one_refreshes_an_older_one_is_ignored() {
        let t = Instant::now();
        let mut peers = Peers::default();
        assert_eq!(peers.observe("b", A, t), Observed::Joined);
        let next = Beat { version: 2, ..A };
        assert_eq!(peers.observe("b", next, t), Observed::Fresh);
        assert_eq!(peers.observe("b", A, t), Observed::Stale, "late beat");
        assert_eq!(peers.observe("b", next, t), Observed::Stale, "duplicate");
        assert_eq!(peers.alive(), 1);
    }

    #[test]
    fn silence_loses_a_node_once_and_a_beat_brings_it_back() {
        let t = Instant::now();
        let mut peers = Peers::default();
        peers.observe("b", A, t);
        assert!(peers.sweep(t + LOST_AFTER / 2).is_empty());
        assert_eq!(peers.sweep(t + LOST_AFTER), vec!["b".to_owned()]);
        assert!(peers.sweep(t + LOST_AFTER * 2).is_empty(), "lost once");
        assert_eq!((peers.alive(), peers.lost_total()), (0, 1));
        let back = Beat { version: 9, ..A };
        assert_eq!(
            peers.observe("b", back, t + LOST_AFTER * 2),
            Observed::Joined
        );
        assert_eq!(peers.alive(), 1);
    }

    #[test]
    fn a_restart_is_a_new_epoch_even_with_a_lower_version() {
        let t = Instant::now();
        let mut peers = Peers::default();
        peers.observe("b", Beat { version: 50, ..A }, t);
        let restarted = Beat {
            epoch: 8,
            version: 1,
        };
        assert_eq!(peers.observe("b", restarted, t), Observed::Joined);
    }

    #[test]
    fn the_table_is_bounded_and_makes_room_only_from_lost_nodes() {
        let t = Instant::now();
        let mut peers = Peers::default();
        for i in 0..MAX_PEERS {
            assert_eq!(peers.observe(&format!("n{i}"), A, t), Observed::Joined);
        }
        assert_eq!(peers.observe("extra", A, t), Observed::Full);
        peers.sweep(t + LOST_AFTER);
        assert_eq!(peers.observe("extra", A, t + LOST_AFTER), Observed::Joined);
    }

    #[test]
    fn round_trip_quantiles_by_nearest_rank() {
        let mut peers = Peers::default();
        assert_eq!(peers.round_trip_quantile(0.5), None);
        for ms in 1..=100 {
            peers.record_round_trip(Duration::from_millis(ms));
        }
        assert_eq!(
            peers.round_trip_quantile(0.5),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            peers.round_trip_quantile(0.99),
            Some(Duration::from_millis(99))
        );
    }
}
