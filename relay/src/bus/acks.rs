//! Acknowledgements between nodes, held back a moment so they ride along.
//!
//! Every bus message of a carried connection is acknowledged (`bus::carrier`). Sent at
//! once, an acknowledgement is a bus message of its own: a burst of a person's frames
//! crossing to the home node and its answers crossing back cost four bus messages (frames,
//! their acknowledgement, answers, theirs), each a publish, a pass through NATS and a
//! wake-up on both nodes. Held back for at most [`ACK_DELAY`], an acknowledgement usually
//! leaves inside the bundle the bus task sends that node anyway (the answers one way, the
//! person's next burst the other): two bus messages instead of four. The delay is far
//! below the carrier's [`RESEND_AFTER`](super::carrier::RESEND_AFTER), so nothing is sent
//! twice because of it; only the senders' buffers hold their messages that much longer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::forward::{Bundler, Carried};

/// Longest an acknowledgement waits for a bundle to ride in before it leaves alone.
pub const ACK_DELAY: Duration = Duration::from_millis(5);

/// The acknowledgements the bus task owes other nodes, highest per connection and
/// direction, and since when the oldest has waited.
#[derive(Default)]
pub struct OwedAcks {
    /// (node, connection, acknowledges `Frames` rather than `Out`) → highest message taken.
    owed: HashMap<(String, u64, bool), u64>,
    /// When the oldest of them was owed.
    since: Option<Instant>,
}

impl OwedAcks {
    /// Keep `message` for node `to` if it is an acknowledgement (a later one for the same
    /// connection and direction replaces it); give it back otherwise, to be sent now.
    pub fn hold(&mut self, to: &str, message: Carried, now: Instant) -> Option<Carried> {
        let (conn, frames, up_to) = match message {
            Carried::AckFrames { conn, up_to } => (conn, true, up_to),
            Carried::AckOut { conn, up_to } => (conn, false, up_to),
            other => return Some(other),
        };
        let highest = self.owed.entry((to.to_owned(), conn, frames)).or_default();
        *highest = (*highest).max(up_to);
        self.since.get_or_insert(now);
        None
    }

    /// Put what is owed to a node `bundler` already has a bundle for into that bundle.
    pub fn ride_along(&mut self, bundler: &mut Bundler) {
        let riding: Vec<_> = self
            .owed
            .keys()
            .filter(|(node, _, _)| bundler.has_bundle_for(node))
            .cloned()
            .collect();
        for key in riding {
            if let Some(up_to) = self.owed.remove(&key) {
                add(bundler, key, up_to);
            }
        }
        if self.owed.is_empty() {
            self.since = None;
        }
    }

    /// Put everything owed into `bundler` (its time is up).
    pub fn all(&mut self, bundler: &mut Bundler) {
        for (key, up_to) in self.owed.drain() {
            add(bundler, key, up_to);
        }
        self.since = None;
    }

    /// When what is owed must leave, riding or not; `None` when nothing is owed.
    pub fn due(&self) -> Option<Instant> {
        self.since.map(|since| since + ACK_DELAY)
    }
}

fn add(bundler: &mut Bundler, (node, conn, frames): (String, u64, bool), up_to: u64) {
    let ack = if frames {
        Carried::AckFrames { conn, up_to }
    } else {
        Carried::AckOut { conn, up_to }
    };
    bundler.add(&node, &ack);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::forward::unbundle;

    fn out(conn: u64, seq: u64) -> Carried {
        Carried::Out {
            conn,
            seq,
            frames: vec![vec![7; 10]],
        }
    }

    fn sent(bundler: &mut Bundler) -> Vec<(String, Vec<Carried>)> {
        bundler
            .take()
            .into_iter()
            .map(|(node, bytes)| (node, unbundle(&bytes).expect("well formed")))
            .collect()
    }

    #[test]
    fn an_acknowledgement_rides_in_the_next_bundle_to_its_node() {
        let now = Instant::now();
        let mut owed = OwedAcks::default();
        assert!(
            owed.hold("rome-1", Carried::AckFrames { conn: 4, up_to: 2 }, now)
                .is_none()
        );
        assert!(
            owed.hold("rome-1", Carried::AckFrames { conn: 4, up_to: 3 }, now)
                .is_none()
        );
        assert!(
            owed.hold("milan-1", Carried::AckOut { conn: 9, up_to: 1 }, now)
                .is_none()
        );
        let mut bundler = Bundler::default();
        let data = owed.hold("rome-1", out(5, 1), now).expect("not held");
        bundler.add("rome-1", &data);
        owed.ride_along(&mut bundler);
        // One bus message to rome-1 holds the answer and the latest acknowledgement; the
        // one owed to milan-1 has no bundle to ride in and waits.
        assert_eq!(
            sent(&mut bundler),
            vec![(
                "rome-1".to_owned(),
                vec![out(5, 1), Carried::AckFrames { conn: 4, up_to: 3 }]
            )]
        );
        assert_eq!(owed.due(), Some(now + ACK_DELAY));
        owed.all(&mut bundler);
        assert_eq!(
            sent(&mut bundler),
            vec![(
                "milan-1".to_owned(),
                vec![Carried::AckOut { conn: 9, up_to: 1 }]
            )]
        );
        assert_eq!(owed.due(), None);
    }

    #[test]
    fn the_delay_counts_from_the_oldest_acknowledgement_owed() {
        let start = Instant::now();
        let mut owed = OwedAcks::default();
        assert_eq!(owed.due(), None);
        owed.hold("rome-1", Carried::AckOut { conn: 1, up_to: 1 }, start);
        owed.hold(
            "rome-1",
            Carried::AckOut { conn: 2, up_to: 1 },
            start + Duration::from_millis(3),
        );
        assert_eq!(owed.due(), Some(start + ACK_DELAY));
        // Once everything owed has ridden along, a new debt starts a new delay.
        let mut bundler = Bundler::default();
        bundler.add("rome-1", &out(1, 2));
        owed.ride_along(&mut bundler);
        assert_eq!(owed.due(), None);
        let later = start + Duration::from_millis(20);
        owed.hold("rome-1", Carried::AckOut { conn: 1, up_to: 2 }, later);
        assert_eq!(owed.due(), Some(later + ACK_DELAY));
    }
}
