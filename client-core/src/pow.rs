//! The proof of work a relay may ask of a new anonymous session under a flood: a small
//! cost for one honest person, a large one for whoever opens thousands. No third party,
//! no CAPTCHA, nothing that identifies the person.
//!
//! `BLAKE2s-256("approdo/v1/pow" || seed || nonce as u64 big-endian)` must begin with
//! `difficulty` zero bits.

use blake2::{Blake2s256, Digest};

use crate::limits::MAX_POW_DIFFICULTY;

const POW_DOMAIN: &[u8] = b"approdo/v1/pow";

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Whether `nonce` solves the puzzle `(seed, difficulty)`.
pub fn verify(seed: &[u8; 32], difficulty: u8, nonce: u64) -> bool {
    let mut h = Blake2s256::new();
    h.update(POW_DOMAIN);
    h.update(seed);
    h.update(nonce.to_be_bytes());
    leading_zero_bits(&h.finalize()) >= u32::from(difficulty)
}

/// The smallest nonce that solves the puzzle, or `None` when the difficulty is above
/// [`MAX_POW_DIFFICULTY`] (a relay asking that much is refused rather than obeyed).
/// Takes 2^difficulty hashes on average.
pub fn solve(seed: &[u8; 32], difficulty: u8) -> Option<u64> {
    if difficulty > MAX_POW_DIFFICULTY {
        return None;
    }
    (0..=u64::MAX).find(|n| verify(seed, difficulty, *n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solution_verifies_and_a_wrong_one_does_not() {
        let seed = [7u8; 32];
        let nonce = solve(&seed, 8).expect("within the maximum");
        assert!(verify(&seed, 8, nonce));
        assert!((0..nonce).all(|n| !verify(&seed, 8, n)), "the smallest");
        assert!(verify(&seed, 0, 12345), "difficulty 0 asks nothing");
        assert!(solve(&seed, MAX_POW_DIFFICULTY + 1).is_none());
    }
}
