//! Budgets the switchboard keeps on what comes from outside: bytes per connection and per
//! address, the rate of new sessions that decides the proof of work, and the keyed hash
//! under which ended sessions are remembered. The budgets shared by every connection (per
//! address and relay-wide) are one [`Gate`], owned by the switchboard; those of one
//! connection stay with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use approdo_core::ids::{SessionId, fill_random};
use approdo_core::limits::MAX_POW_DIFFICULTY;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::config::{Config, Limits};
use crate::ratelimit::{AddressLimiter, AddressTag};

/// Admission (global): connections and new sessions per address, bytes per address, and
/// the relay-wide rate of new sessions that sets the proof of work. It holds address tags
/// only, never an address, and nothing about sessions.
pub(super) struct Gate {
    /// The limits.
    config: Arc<Config>,
    /// New connections per address (and the key that turns addresses into tags).
    connections: AddressLimiter,
    /// New sessions per address tag.
    sessions: AddressLimiter,
    /// Bytes per address tag.
    bytes: AddressBytes,
    /// New-session attempts over the last seconds, for the proof-of-work difficulty.
    open_load: OpenLoad,
}

impl Gate {
    /// Nothing admitted yet.
    pub(super) fn new(config: Arc<Config>, now: Instant) -> Self {
        Gate {
            connections: AddressLimiter::new(config.limits.connections_per_min_per_addr, now),
            sessions: AddressLimiter::new(config.limits.sessions_per_min_per_addr, now),
            bytes: AddressBytes::default(),
            open_load: OpenLoad::new(now),
            config,
        }
    }

    /// May a new connection from `addr` be opened, with `open` connections open now? The
    /// address is reduced to an HMAC tag at once and never kept.
    pub(super) fn admit(&mut self, addr: IpAddr, open: usize, now: Instant) -> Option<AddressTag> {
        if open >= self.config.limits.max_connections {
            return None;
        }
        let tag = self.connections.tag(addr, now);
        self.connections.allow(tag, now).then_some(tag)
    }

    /// A connection from `addr` opened: it shares the address's byte budget.
    pub(super) fn attach(&mut self, addr: AddressTag, now: Instant) {
        self.bytes.attach(addr, &self.config.limits, now);
    }

    /// A connection from `addr` closed.
    pub(super) fn release(&mut self, addr: AddressTag) {
        self.bytes.release(addr);
    }

    /// Charge `amount` bytes to `addr`; false when over budget.
    pub(super) fn take_bytes(&mut self, addr: AddressTag, amount: f64, now: Instant) -> bool {
        self.bytes.try_take(addr, amount, now)
    }

    /// Count one attempt to open a session, and say which proof-of-work difficulty the
    /// load now asks for (0: none).
    pub(super) fn open_attempt(&mut self, now: Instant) -> u8 {
        self.open_load.record(now);
        let threshold = self.config.limits.open_sessions_per_sec_before_proof;
        self.open_load.difficulty(threshold, now)
    }

    /// May `addr` open another session now?
    pub(super) fn allow_session(&mut self, addr: AddressTag, now: Instant) -> bool {
        self.sessions.allow(addr, now)
    }

    /// Forget address budgets that hold no information any more.
    pub(super) fn prune(&mut self, now: Instant) {
        self.bytes.prune(&self.config.limits, now);
    }
}

/// A token bucket counted in bytes (or any amount per event), not in events.
#[derive(Clone, Debug)]
pub(super) struct ByteBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl ByteBucket {
    /// A full bucket.
    pub(super) fn new(rate_per_sec: f64, burst: f64, now: Instant) -> Self {
        ByteBucket {
            rate_per_sec,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
    }

    /// Take `amount` if the bucket holds that much.
    pub(super) fn try_take(&mut self, amount: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled completely (it then holds no information).
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

struct AddressBudget {
    bucket: ByteBucket,
    conns: usize,
}

/// Byte budgets per address tag. An entry lives while the address has a connection and
/// until its bucket has refilled after that, so the table is bounded by the connections
/// (and their rate per address), and reconnecting does not refill a budget early.
#[derive(Default)]
pub(super) struct AddressBytes {
    budgets: HashMap<AddressTag, AddressBudget>,
}

impl AddressBytes {
    /// A connection from `addr` opened.
    pub(super) fn attach(&mut self, addr: AddressTag, limits: &Limits, now: Instant) {
        let b = self.budgets.entry(addr).or_insert_with(|| AddressBudget {
            bucket: ByteBucket::new(
                limits.bytes_per_sec_per_addr,
                limits.byte_burst_per_addr,
                now,
            ),
            conns: 0,
        });
        b.conns = b.conns.saturating_add(1);
    }

    /// A connection from `addr` closed.
    pub(super) fn release(&mut self, addr: AddressTag) {
        if let Some(b) = self.budgets.get_mut(&addr) {
            b.conns = b.conns.saturating_sub(1);
        }
    }

    /// Charge `amount` bytes to `addr`; false when over budget. An address with no entry
    /// (a connection the shell did not announce) is not limited here.
    pub(super) fn try_take(&mut self, addr: AddressTag, amount: f64, now: Instant) -> bool {
        self.budgets
            .get_mut(&addr)
            .is_none_or(|b| b.bucket.try_take(amount, now))
    }

    /// Forget addresses with no connection whose budget is whole again.
    pub(super) fn prune(&mut self, _limits: &Limits, now: Instant) {
        self.budgets
            .retain(|_, b| b.conns > 0 || !b.bucket.is_full(now));
    }
}

/// Seconds over which the rate of new sessions is measured.
const LOAD_WINDOW_SECS: usize = 10;

/// Proof-of-work difficulty (leading zero bits) asked as soon as there is a flood.
pub(super) const POW_BASE_DIFFICULTY: u8 = 10;
/// Extra bits per doubling of the rate above the threshold.
pub(super) const POW_BITS_PER_DOUBLING: u8 = 2;

/// New-session attempts in each of the last [`LOAD_WINDOW_SECS`] seconds.
pub(super) struct OpenLoad {
    start: Instant,
    /// (second since start, attempts in it), one slot per second of the window.
    slots: [(u64, u32); LOAD_WINDOW_SECS],
}

impl OpenLoad {
    /// No load yet.
    pub(super) fn new(now: Instant) -> Self {
        OpenLoad {
            start: now,
            slots: [(u64::MAX, 0); LOAD_WINDOW_SECS],
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs()
    }

    /// Count one attempt.
    pub(super) fn record(&mut self, now: Instant) {
        let sec = self.second(now);
        let i = (sec % LOAD_WINDOW_SECS as u64) as usize;
        if let Some(slot) = self.slots.get_mut(i) {
            if slot.0 != sec {
                *slot = (sec, 0);
            }
            slot.1 = slot.1.saturating_add(1);
        }
    }

    /// Attempts per second over the window.
    pub(super) fn rate(&self, now: Instant) -> f64 {
        let sec = self.second(now);
        let recent: u64 = self
            .slots
            .iter()
            .filter(|(s, _)| *s != u64::MAX && sec.saturating_sub(*s) < LOAD_WINDOW_SECS as u64)
            .map(|(_, n)| u64::from(*n))
            .sum();
        recent as f64 / LOAD_WINDOW_SECS as f64
    }

    /// The difficulty for the current load: 0 up to `threshold` attempts per second, then
    /// [`POW_BASE_DIFFICULTY`] plus [`POW_BITS_PER_DOUBLING`] per doubling above it, at
    /// most [`MAX_POW_DIFFICULTY`].
    pub(super) fn difficulty(&self, threshold: f64, now: Instant) -> u8 {
        difficulty_for(self.rate(now), threshold)
    }
}

/// See [`OpenLoad::difficulty`].
pub(super) fn difficulty_for(rate: f64, threshold: f64) -> u8 {
    if rate.is_nan() || rate <= threshold {
        return 0;
    }
    let doublings = if threshold > 0.0 {
        (rate / threshold).log2().floor().clamp(0.0, 16.0) as u8
    } else {
        16
    };
    POW_BASE_DIFFICULTY
        .saturating_add(doublings.saturating_mul(POW_BITS_PER_DOUBLING))
        .min(MAX_POW_DIFFICULTY)
}

/// A connection's proof of work.
#[derive(Default)]
pub(super) struct PowState {
    /// The puzzle asked (seed, difficulty), until solved.
    pub(super) asked: Option<([u8; 32], u8)>,
    /// A solved puzzle: allows exactly one `OpenSession`.
    pub(super) solved: bool,
}

impl PowState {
    /// A fresh puzzle for this connection, replacing any earlier one.
    pub(super) fn ask(&mut self, difficulty: u8) -> [u8; 32] {
        let mut seed = [0u8; 32];
        fill_random(&mut seed);
        self.asked = Some((seed, difficulty));
        seed
    }
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct KeyBytes([u8; 32]);

/// A process-random key under which ended session ids are remembered: the table of
/// sessions that may still file a record holds HMAC(key, id), never an id.
pub(super) struct EndedKey(KeyBytes);

impl EndedKey {
    /// A fresh key, never written anywhere.
    pub(super) fn random() -> Self {
        let mut k = KeyBytes([0u8; 32]);
        fill_random(&mut k.0);
        EndedKey(k)
    }

    /// The keyed hash of a session id.
    pub(super) fn of(&self, session: &SessionId) -> [u8; 32] {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.0.0) else {
            // HMAC takes keys of any length; this is unreachable.
            return [0u8; 32];
        };
        mac.update(&session.0);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One simulated second.
    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn byte_bucket_counts_bytes() {
        let t0 = Instant::now();
        let mut b = ByteBucket::new(100.0, 1000.0, t0);
        assert!(b.try_take(900.0, t0));
        assert!(!b.try_take(200.0, t0));
        assert!(b.try_take(200.0, t0 + SECOND));
    }

    #[test]
    fn difficulty_is_zero_without_a_flood_and_rises_with_it() {
        assert_eq!(difficulty_for(0.0, 5.0), 0);
        assert_eq!(difficulty_for(5.0, 5.0), 0);
        assert_eq!(difficulty_for(6.0, 5.0), POW_BASE_DIFFICULTY);
        assert_eq!(difficulty_for(10.0, 5.0), POW_BASE_DIFFICULTY + 2);
        assert_eq!(difficulty_for(20.0, 5.0), POW_BASE_DIFFICULTY + 4);
        assert_eq!(difficulty_for(1e12, 5.0), MAX_POW_DIFFICULTY);
        assert_eq!(difficulty_for(f64::NAN, 5.0), 0);
    }

    #[test]
    fn the_load_window_forgets_old_attempts() {
        let t0 = Instant::now();
        let mut l = OpenLoad::new(t0);
        for _ in 0..100 {
            l.record(t0);
        }
        assert!((l.rate(t0) - 10.0).abs() < 1e-9);
        assert_eq!(l.rate(t0 + SECOND * 10), 0.0);
    }
}
