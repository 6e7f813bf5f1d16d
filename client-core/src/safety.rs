//! The session safety code: a short number every participant can read aloud. It is
//! derived from the handshake hashes of all pairwise channels of the session, so a relay
//! that sat in the middle of any channel would make the codes differ.

use std::collections::BTreeMap;

use blake2::{Blake2s256, Digest};

use crate::ids::{ParticipantId, SessionId};

const SAFETY_DOMAIN: &[u8] = b"approdo/v1/safety-code";

/// Digits in the code (four groups of four).
pub const SAFETY_CODE_DIGITS: usize = 16;

/// What one client knows of a session's channel hashes.
#[derive(Debug, Default)]
pub struct SafetyBook {
    hashes: BTreeMap<(ParticipantId, ParticipantId), [u8; 32]>,
    conflicts: BTreeMap<(ParticipantId, ParticipantId), ()>,
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
    /// Record one report (our own or a peer's). A report that disagrees with an earlier
    /// one for the same pair marks the pair as conflicting for good.
    pub fn record(&mut self, a: ParticipantId, b: ParticipantId, hash: [u8; 32]) {
        let key = pair(a, b);
        match self.hashes.get(&key) {
            Some(known) if *known != hash => {
                self.conflicts.insert(key, ());
            }
            _ => {
                self.hashes.insert(key, hash);
            }
        }
    }

    /// Forget every pair involving a participant who left.
    pub fn forget(&mut self, who: ParticipantId) {
        self.hashes.retain(|(a, b), _| *a != who && *b != who);
        self.conflicts.retain(|(a, b), _| *a != who && *b != who);
    }

    /// Every report we hold, for telling a peer who just arrived.
    pub fn reports(&self) -> impl Iterator<Item = (ParticipantId, ParticipantId, [u8; 32])> + '_ {
        self.hashes.iter().map(|((a, b), h)| (*a, *b, *h))
    }

    /// The code over every pair of `members`.
    pub fn code(&self, session: &SessionId, members: &[ParticipantId]) -> SafetyCode {
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        if members.len() < 2 {
            return SafetyCode::Pending;
        }
        let mut h = Blake2s256::new();
        h.update(SAFETY_DOMAIN);
        h.update(session.0);
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                let key = (*a, *b);
                if self.conflicts.contains_key(&key) {
                    return SafetyCode::Mismatch;
                }
                let Some(hash) = self.hashes.get(&key) else {
                    return SafetyCode::Pending;
                };
                h.update(a.0.to_be_bytes());
                h.update(b.0.to_be_bytes());
                h.update(hash);
            }
        }
        let digest = h.finalize();
        let mut n = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
        let mut digits = [b'0'; SAFETY_CODE_DIGITS];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let text: Vec<String> = digits
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        SafetyCode::Ready(text.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_reports_give_same_code_and_conflicts_show() {
        let s = SessionId([3; 16]);
        let (p, o, i) = (ParticipantId(1), ParticipantId(2), ParticipantId(3));
        let mut a = SafetyBook::default();
        let mut b = SafetyBook::default();
        for book in [&mut a, &mut b] {
            book.record(p, o, [1; 32]);
            book.record(i, p, [2; 32]);
            book.record(o, i, [3; 32]);
        }
        let code = a.code(&s, &[p, o, i]);
        assert!(matches!(code, SafetyCode::Ready(ref c) if c.len() == 19));
        assert_eq!(code, b.code(&s, &[i, o, p]));
        assert_eq!(a.code(&s, &[p, o, ParticipantId(9)]), SafetyCode::Pending);
        b.record(p, o, [9; 32]);
        assert_eq!(b.code(&s, &[p, o, i]), SafetyCode::Mismatch);
        let mut c = SafetyBook::default();
        c.record(p, o, [7; 32]);
        assert_ne!(c.code(&s, &[p, o]), a.code(&s, &[p, o]));
    }
}
