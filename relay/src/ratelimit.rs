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

/// Most addresses tracked at once. A full table first forgets addresses whose bucket has
/// refilled (forgetting them changes nothing), then the longest-idle ones.
const MAX_TRACKED: usize = 100_000;

/// Share of the table freed at once when it is full, so that eviction (a pass over the
/// table) happens at most once per this many new addresses.
const EVICT_DIVISOR: usize = 10;

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

    /// Whether the bucket would be full at `now`: an address in this state is
    /// indistinguishable from one never seen, so its entry can be forgotten.
    pub fn is_full_at(&self, now: Instant) -> bool {
        self.tokens_at(now) >= self.burst
    }

    /// Tokens the bucket would hold at `now`.
    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.rate_per_sec).min(self.burst)
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

impl AddressTag {
    /// The tag's bytes, to carry a connection to another node (`bus::forward`): the other
    /// node limits the client by the tag its first node gave it, never by its address.
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// A tag another node gave a client whose connection it carries here.
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> AddressTag {
        AddressTag(bytes)
    }
}

/// Per-address token buckets keyed by [`AddressTag`].
pub struct AddressLimiter {
    key: AddressKey,
    key_born: Instant,
    rate_per_min: f64,
    buckets: HashMap<AddressTag, TokenBucket>,
    capacity: usize,
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
            capacity: MAX_TRACKED,
        }
    }

    /// The same limiter tracking at most `capacity` addresses (tests fill a small table).
    pub fn with_capacity(rate_per_min: f64, capacity: usize, now: Instant) -> Self {
        AddressLimiter {
            capacity: capacity.max(1),
            ..AddressLimiter::new(rate_per_min, now)
        }
    }

    /// Make room in a full table without resetting anyone's limit: forget the addresses
    /// whose bucket has refilled (they are as good as new), and if that frees too little,
    /// those holding the most tokens (forgetting them grants the least). An address being
    /// limited right now has an empty bucket, so it is the last to go.
    fn evict(&mut self, now: Instant) {
        self.buckets.retain(|_, b| !b.is_full_at(now));
        let target = self.capacity - self.capacity / EVICT_DIVISOR - 1;
        if self.buckets.len() > target {
            let mut by_tokens: Vec<(f64, AddressTag)> = self
                .buckets
                .iter()
                .map(|(t, b)| (b.tokens_at(now), *t))
                .collect();
            let excess = by_tokens.len() - target;
            // Fullest first.
            by_tokens.select_nth_unstable_by(excess - 1, |a, b| b.0.total_cmp(&a.0));
            for (_, tag) in by_tokens.iter().take(excess) {
                self.buckets.remove(tag);
            }
        }
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// The tag of an address under the current key.
    pub fn tag(&mut self, addr: IpAddr, now: Instant) -> AddressTag {
        if now.saturating_duration_since(self.key_born) >= ADDRESS_KEY_LIFETIME {
            self.key = fresh_key();
            self.key_born = now;
            self.buckets.clear();
        }
        tag_under(&self.key, addr)
    }

    /// Count one event for the address; false when over the limit.
    pub fn allow(&mut self, tag: AddressTag, now: Instant) -> bool {
        if self.buckets.len() >= self.capacity && !self.buckets.contains_key(&tag) {
            self.evict(now);
        }
        let rate = self.rate_per_min / 60.0;
        let burst = (self.rate_per_min * 2.0).max(1.0);
        self.buckets
            .entry(tag)
            .or_insert_with(|| TokenBucket::new(rate, burst, now))
            .try_take(now)
    }
}

/// HMAC of an address under `key`, truncated to a tag. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 clients) is the IPv4
/// address; IPv6 clients usually own a whole /64, so the prefix is what counts.
fn tag_under(key: &AddressKey, addr: IpAddr) -> AddressTag {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("any key length");
    match addr.to_canonical() {
        IpAddr::V4(a) => {
            mac.update(b"4");
            mac.update(&a.octets());
        }
        IpAddr::V6(a) => {
            mac.update(b"6");
            mac.update(&a.octets()[..8]);
        }
    }
    let full = mac.finalize().into_bytes();
    let mut t = [0u8; 16];
    t.copy_from_slice(&full[..16]);
    AddressTag(t)
}

fn fresh_key() -> AddressKey {
    let mut k = AddressKey([0u8; 32]);
    approdo_core::ids::fill_random(&mut k.0);
    k
}

/// Live TCP connections per address, counted at accept, before any HTTP parsing: one
/// address holding thousands of idle connections gets only its share, and everyone else
/// still gets in. Keyed by HMAC tag like [`AddressLimiter`]; an entry exists only while its
/// address has a connection open, so the table is bounded by the connections themselves.
pub struct ConnectionCounter {
    key: AddressKey,
    key_born: Instant,
    per_addr: u32,
    open: HashMap<AddressTag, u32>,
}

impl std::fmt::Debug for ConnectionCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCounter")
            .field("addresses", &self.open.len())
            .finish_non_exhaustive()
    }
}

impl ConnectionCounter {
    /// At most `per_addr` live connections per address (at least one).
    pub fn new(per_addr: u32, now: Instant) -> Self {
        ConnectionCounter {
            key: fresh_key(),
            key_born: now,
            per_addr: per_addr.max(1),
            open: HashMap::new(),
        }
    }

    /// Count a new connection from `addr`; `None` when that address already holds its
    /// share. The key rotates daily; connections counted under the old key are still
    /// released by their own tag.
    pub fn open(&mut self, addr: IpAddr, now: Instant) -> Option<AddressTag> {
        if now.saturating_duration_since(self.key_born) >= ADDRESS_KEY_LIFETIME {
            self.key = fresh_key();
            self.key_born = now;
        }
        let tag = tag_under(&self.key, addr);
        let count = self.open.entry(tag).or_insert(0);
        if *count >= self.per_addr {
            return None;
        }
        *count += 1;
        Some(tag)
    }

    /// A connection counted by [`ConnectionCounter::open`] has closed.
    pub fn close(&mut self, tag: AddressTag) {
        if let Some(count) = self.open.get_mut(&tag) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.open.remove(&tag);
            }
        }
    }

    /// Addresses with at least one connection open.
    pub fn addresses(&self) -> usize {
        self.open.len()
    }
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

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_address() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::new(1.0, t0);
        let v4 = l.tag("192.0.2.7".parse().expect("ip"), t0);
        let mapped = l.tag("::ffff:192.0.2.7".parse().expect("ip"), t0);
        assert!(
            v4 == mapped,
            "one client, one budget, whatever the socket family"
        );
        assert!(l.allow(v4, t0) && l.allow(mapped, t0));
        assert!(!l.allow(v4, t0), "the mapped form spent the same budget");
        let mut c = ConnectionCounter::new(1, t0);
        assert!(c.open("192.0.2.7".parse().expect("ip"), t0).is_some());
        assert!(
            c.open("::ffff:192.0.2.7".parse().expect("ip"), t0)
                .is_none()
        );
    }

    #[test]
    fn a_full_table_keeps_the_limits_of_busy_addresses() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::with_capacity(1.0, 100, t0);
        let busy = l.tag("192.0.2.1".parse().expect("ip"), t0);
        assert!(l.allow(busy, t0) && l.allow(busy, t0));
        assert!(!l.allow(busy, t0));
        // Many other addresses arrive, each spending a token, until the table overflows
        // several times.
        for i in 0..1_000u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let tag = l.tag(addr, t0);
            assert!(l.allow(tag, t0), "a new address has its budget");
            assert!(l.tracked() <= 100, "the table stays bounded");
        }
        assert!(!l.allow(busy, t0), "the busy address is still limited");
    }

    #[test]
    fn a_full_table_forgets_refilled_addresses_first() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::with_capacity(60.0, 10, t0);
        for i in 0..10u32 {
            let tag = l.tag(IpAddr::from(std::net::Ipv4Addr::from(i + 1)), t0);
            assert!(l.allow(tag, t0));
        }
        // Later: all those buckets refilled; one address now exhausts its budget.
        let later = t0 + Duration::from_secs(10);
        let busy = l.tag("192.0.2.1".parse().expect("ip"), later);
        while l.allow(busy, later) {}
        let newcomer = l.tag("192.0.2.2".parse().expect("ip"), later);
        assert!(l.allow(newcomer, later));
        assert!(
            !l.allow(busy, later),
            "the limited address was not forgotten"
        );
        assert!(l.tracked() <= 10);
    }

    #[test]
    fn connections_per_address_are_capped_and_released() {
        let t0 = Instant::now();
        let mut c = ConnectionCounter::new(2, t0);
        let a: IpAddr = "192.0.2.7".parse().expect("ip");
        let first = c.open(a, t0).expect("first");
        assert!(c.open(a, t0).is_some());
        assert!(c.open(a, t0).is_none(), "third connection from one address");
        assert!(c.open("192.0.2.8".parse().expect("ip"), t0).is_some());
        c.close(first);
        assert!(
            c.open(a, t0).is_some(),
            "a closed connection frees its place"
        );
        assert_eq!(c.addresses(), 2);
    }
}
