//! The session's roster digest and its safety code: a short number every participant can
//! read aloud.
//!
//! The roster digest covers who is in the session (participant numbers, certified roles,
//! certificate serials) and the handshake hash of every pairwise channel. Members confirm it
//! to each other before content reaches a newcomer, and the safety code is derived from it,
//! so comparing codes aloud checks both that nobody sits in the middle of a channel and that
//! everyone sees the same participants.

use std::collections::BTreeMap;

use blake2::{Blake2s256, Digest};

use crate::identity::Role;
use crate::ids::{ParticipantId, SessionId};

const ROSTER_DOMAIN: &[u8] = b"approdo/v1/roster";
const SAFETY_DOMAIN: &[u8] = b"approdo/v1/safety-code";

/// Digits in the code (four groups of four).
pub const SAFETY_CODE_DIGITS: usize = 16;

/// The role byte of the anonymous person in the roster digest.
const PERSON_ROLE_BYTE: u8 = 0xff;

/// One member as the roster digest sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RosterMember {
    /// Their participant number.
    pub id: ParticipantId,
    /// Their certified role; `None` for the person.
    pub role: Option<Role>,
    /// Their certificate serial; `None` for the person.
    pub serial: Option<u64>,
}

/// The two ends' reports for one channel.
#[derive(Clone, Copy, Debug, Default)]
struct PairReports {
    /// What the lower-numbered end reported.
    by_low: Option<[u8; 32]>,
    /// What the higher-numbered end reported.
    by_high: Option<[u8; 32]>,
    /// When either report last changed (Unix seconds).
    changed_at: u64,
}

/// Why a roster digest cannot be computed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RosterGap {
    /// Some pair of members has no report yet.
    Incomplete,
    /// The two ends of a channel report different hashes, since this time (Unix seconds).
    /// Right after a channel is re-established one end may report before the other, so a
    /// conflict only counts once it has lasted a while.
    Conflict {
        /// When the conflicting report arrived.
        since: u64,
    },
}

/// What one client knows of a session's channel hashes: each end's latest report for
/// every pair.
#[derive(Debug, Default)]
pub struct SafetyBook {
    pairs: BTreeMap<(ParticipantId, ParticipantId), PairReports>,
}

/// The state of the code for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SafetyCode {
    /// Not every pair has reported yet.
    Pending,
    /// Two reports for one channel disagree: someone is in the middle.
    Mismatch,
    /// The code to compare aloud, formatted `1234 5678 9012 3456`.
    Ready(String),
}

fn pair(a: ParticipantId, b: ParticipantId) -> (ParticipantId, ParticipantId) {
    if a <= b { (a, b) } else { (b, a) }
}

impl SafetyBook {
    /// Record `reporter`'s view of the channel between `a` and `b`. Only an end of the pair
    /// may report it; anything else is ignored. A later report from the same end replaces
    /// its earlier one (the channel was re-established).
    pub fn record(
        &mut self,
        reporter: ParticipantId,
        a: ParticipantId,
        b: ParticipantId,
        hash: [u8; 32],
        now_unix: u64,
    ) {
        let (low, high) = pair(a, b);
        if low == high || (reporter != low && reporter != high) {
            return;
        }
        let entry = self.pairs.entry((low, high)).or_default();
        let slot = if reporter == low {
            &mut entry.by_low
        } else {
            &mut entry.by_high
        };
        if *slot != Some(hash) {
            *slot = Some(hash);
            entry.changed_at = now_unix;
        }
    }

    /// Forget every pair involving a participant who left.
    pub fn forget(&mut self, who: ParticipantId) {
        self.pairs.retain(|(a, b), _| *a != who && *b != who);
    }

    /// The channel hashes `me` itself reported, for telling a peer who just arrived.
    pub fn own_reports(
        &self,
        me: ParticipantId,
    ) -> impl Iterator<Item = (ParticipantId, ParticipantId, [u8; 32])> + '_ {
        self.pairs.iter().filter_map(move |((a, b), r)| {
            let own = if *a == me {
                r.by_low
            } else if *b == me {
                r.by_high
            } else {
                None
            };
            own.map(|h| (*a, *b, h))
        })
    }

    /// The agreed hash of one pair: known when the ends agree or only one has reported.
    fn hash(&self, a: ParticipantId, b: ParticipantId) -> Result<[u8; 32], RosterGap> {
        let r = self.pairs.get(&pair(a, b)).ok_or(RosterGap::Incomplete)?;
        match (r.by_low, r.by_high) {
            (Some(x), Some(y)) if x != y => Err(RosterGap::Conflict {
                since: r.changed_at,
            }),
            (Some(x), _) | (None, Some(x)) => Ok(x),
            (None, None) => Err(RosterGap::Incomplete),
        }
    }

    /// The roster digest over `members`: every member's number, role and serial, and every
    /// pair's channel hash.
    pub fn roster_digest(
        &self,
        session: &SessionId,
        members: &[RosterMember],
    ) -> Result<[u8; 32], RosterGap> {
        let mut members = members.to_vec();
        members.sort_by_key(|m| m.id);
        members.dedup_by_key(|m| m.id);
        if members.len() < 2 {
            return Err(RosterGap::Incomplete);
        }
        let mut h = Blake2s256::new();
        h.update(ROSTER_DOMAIN);
        h.update(session.0);
        for m in &members {
            h.update(m.id.0.to_be_bytes());
            h.update([role_byte(m.role)]);
            h.update(m.serial.unwrap_or(0).to_be_bytes());
        }
        // A conflict anywhere counts before a gap elsewhere, so it is reported.
        let mut gap = None;
        for (i, a) in members.iter().enumerate() {
            for b in members.iter().skip(i + 1) {
                match self.hash(a.id, b.id) {
                    Ok(hash) => {
                        h.update(a.id.0.to_be_bytes());
                        h.update(b.id.0.to_be_bytes());
                        h.update(hash);
                    }
                    Err(c @ RosterGap::Conflict { .. }) => return Err(c),
                    Err(RosterGap::Incomplete) => gap = Some(RosterGap::Incomplete),
                }
            }
        }
        match gap {
            Some(g) => Err(g),
            None => Ok(h.finalize().into()),
        }
    }
}

fn role_byte(role: Option<Role>) -> u8 {
    match role {
        None => PERSON_ROLE_BYTE,
        Some(Role::Operator) => 0,
        Some(Role::Interpreter) => 1,
        Some(Role::Coordinator) => 2,
    }
}

/// The safety code of a roster digest: 16 decimal digits in groups of four.
pub fn code_of(digest: &[u8; 32]) -> String {
    let mut h = Blake2s256::new();
    h.update(SAFETY_DOMAIN);
    h.update(digest);
    let d = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    let mut n = u128::from_be_bytes(first);
    let mut digits = [b'0'; SAFETY_CODE_DIGITS];
    for d in digits.iter_mut().rev() {
        // `n % 10` is below 10, so the cast cannot truncate.
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u32, role: Option<Role>, serial: Option<u64>) -> RosterMember {
        RosterMember {
            id: ParticipantId(id),
            role,
            serial,
        }
    }

    #[test]
    fn same_reports_give_same_digest_and_conflicts_show() {
        let s = SessionId([3; 16]);
        let (p, o, i) = (ParticipantId(1), ParticipantId(2), ParticipantId(3));
        let roster = [
            member(1, None, None),
            member(2, Some(Role::Operator), Some(7)),
            member(3, Some(Role::Interpreter), Some(9)),
        ];
        let mut a = SafetyBook::default();
        let mut b = SafetyBook::default();
        for book in [&mut a, &mut b] {
            book.record(p, p, o, [1; 32], 0);
            book.record(i, i, p, [2; 32], 0);
            book.record(o, o, i, [3; 32], 0);
        }
        let da = a.roster_digest(&s, &roster).expect("complete");
        assert_eq!(
            Ok(da),
            b.roster_digest(&s, &[roster[2], roster[0], roster[1]])
        );
        assert_eq!(code_of(&da).len(), 19);
        let mut other_serial = roster;
        other_serial[1].serial = Some(8);
        assert_ne!(Ok(da), a.roster_digest(&s, &other_serial), "serials count");
        let with_stranger = [roster[0], roster[1], member(9, None, None)];
        assert_eq!(
            a.roster_digest(&s, &with_stranger),
            Err(RosterGap::Incomplete)
        );
        b.record(o, p, o, [9; 32], 5);
        assert_eq!(
            b.roster_digest(&s, &roster),
            Err(RosterGap::Conflict { since: 5 })
        );
        b.record(p, p, o, [9; 32], 6);
        assert!(
            b.roster_digest(&s, &roster).is_ok(),
            "re-established channel"
        );
        b.record(i, p, o, [4; 32], 7);
        assert!(
            b.roster_digest(&s, &roster).is_ok(),
            "a third party cannot report"
        );
    }
}
