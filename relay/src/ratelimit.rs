//! Rate limits that never hold a raw network address.
//!
//! Per-address limits key on HMAC-SHA256(in-memory key, address). The key is random, never
//! written anywhere, and replaced (with every counter) at least once a day, so even the
//! relay's own memory cannot link today's visitors to yesterday's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// How often the address key is replaced.
pub const ADDRESS_KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Most addresses tracked at once; beyond this the oldest counters are dropped.
const MAX_TRACKED: usize = 100_000;

/// A classic token bucket.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate_per_sec,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Take one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct AddressKey([u8; 32]);

/// An opaque per-address tag: HMAC of the address under the current key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressTag([u8; 16]);

/// Per-address token buckets keyed by [`AddressTag`].
pub struct AddressLimiter {
    key: AddressKey,
    key_born: Instant,
    rate_per_min: f64,
    buckets: HashMap<AddressTag, TokenBucket>,
}

impl std::fmt::Debug for AddressLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressLimiter")
            .field("tracked", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

impl AddressLimiter {
    /// A limiter allowing `rate_per_min` events per minute (burst: twice that) per address.
    pub fn new(rate_per_min: f64, now: Instant) -> Self {
        AddressLimiter {
            key: fresh_key(),
            key_born: now,
            rate_per_min,
            buckets: HashMap::new(),
        }
    }

    /// The tag of an address under the current key.
    pub fn tag(&mut self, addr: IpAddr, now: Instant) -> AddressTag {
        if now.saturating_duration_since(self.key_born) >= ADDRESS_KEY_LIFETIME {
            self.key = fresh_key();
            self.key_born = now;
            self.buckets.clear();
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0).expect("any key length");
        // IPv6 clients usually own a whole /64: limit the prefix, not each address.
        match addr {
            IpAddr::V4(a) => mac.update(&a.octets()),
            IpAddr::V6(a) => mac.update(&a.octets()[..8]),
        }
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; 16];
        t.copy_from_slice(&full[..16]);
        AddressTag(t)
    }

    /// Count one event for the address; false when over the limit.
    pub fn allow(&mut self, tag: AddressTag, now: Instant) -> bool {
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&tag) {
            self.buckets.clear();
        }
        let rate = self.rate_per_min / 60.0;
        let burst = (self.rate_per_min * 2.0).max(1.0);
        self.buckets
            .entry(tag)
            .or_insert_with(|| TokenBucket::new(rate, burst, now))
            .try_take(now)
    }
}

fn fresh_key() -> AddressKey {
    let mut k = AddressKey([0u8; 32]);
    approdo_core::ids::fill_random(&mut k.0);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_limits_and_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1.0, 2.0, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(1100)));
    }

    #[test]
    fn address_tags_hide_the_address_and_rotate() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::new(1.0, t0);
        let a: IpAddr = "192.0.2.7".parse().expect("ip");
        let tag = l.tag(a, t0);
        assert!(l.allow(tag, t0) && l.allow(tag, t0));
        assert!(!l.allow(tag, t0), "over the per-address limit");
        let other = l.tag("192.0.2.8".parse().expect("ip"), t0);
        assert!(l.allow(other, t0), "another address has its own budget");
        let later = t0 + ADDRESS_KEY_LIFETIME;
        assert!(l.tag(a, later) != tag, "the key rotates daily");
    }
}
