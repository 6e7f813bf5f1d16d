//! Which call leg a datagram on a shard's one UDP socket belongs to: plain logic, no
//! socket and no WebRTC type, so it is tested and fuzzed on its own.
//!
//! Every leg is ICE-lite with a username fragment and password the relay drew. A datagram
//! from an address the router already knows goes to that address's leg. From an unknown
//! address only a STUN binding request is considered: its USERNAME must start with a
//! fragment of ours, and its MESSAGE-INTEGRITY must verify with that leg's password, before
//! the address is trusted. Everything else is dropped and counted. A genuine request
//! replayed from elsewhere still passes (integrity does not stop a replay), so a leg keeps
//! at most [`MAX_ADDRS_PER_LEG`] addresses; the connection itself still refuses that
//! address's DTLS and SRTP.
//!
//! A phone that moves during a call (between networks, or behind a NAT that rebinds) checks
//! in from new addresses for as long as the call lasts, so a full leg forgets its oldest
//! address to make room, never the one the member's media currently uses ([`Router::pin`]):
//! a replaying attacker can only push out addresses the member no longer uses.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A leg, as the shard numbers them.
pub type LegId = u64;

/// A map keyed by [`LegId`]. Leg numbers are handed out by the SFU one after the other,
/// never chosen by anyone outside, so they need no keyed (SipHash) hashing against
/// collision floods; the shard looks legs up several times per forwarded packet, where
/// SipHash showed at about 2 % of its CPU (perf). Addresses from the network keep the
/// standard hasher.
pub type LegMap<V> = HashMap<LegId, V, BuildHasherDefault<LegIdHasher>>;

/// The hasher of [`LegMap`]: one multiplication by an odd constant (a bijection, so
/// distinct leg numbers never collide before the table's reduction).
#[derive(Clone, Copy, Debug, Default)]
pub struct LegIdHasher(u64);

impl Hasher for LegIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Addresses one leg may be reached from (a browser checks from each of its interfaces).
pub const MAX_ADDRS_PER_LEG: usize = 8;

const STUN_HEADER: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const INTEGRITY_LEN: usize = 20;

/// Why a datagram was not routed (counted, never logged with its address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unrouted {
    /// From an unknown address and not a STUN binding request naming a leg of ours.
    Unknown,
    /// A binding request naming a leg of ours whose integrity did not verify.
    Integrity,
}

/// Counts of dropped datagrams, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// [`Unrouted::Unknown`].
    pub unknown: u64,
    /// [`Unrouted::Integrity`].
    pub integrity: u64,
    /// Addresses forgotten to make room for a leg's newest (not a drop of a datagram).
    pub forgotten: u64,
}

struct Credentials {
    leg: LegId,
    pwd: Vec<u8>,
}

/// What the router knows of one leg: its fragment, the addresses it was reached from
/// (oldest first), and the one its media uses now.
struct Known {
    ufrag: Vec<u8>,
    addrs: Vec<SocketAddr>,
    pinned: Option<SocketAddr>,
}

/// The routing tables of one shard. See the module documentation.
#[derive(Default)]
pub struct Router {
    by_ufrag: HashMap<Vec<u8>, Credentials>,
    by_addr: HashMap<SocketAddr, LegId>,
    addrs_of: HashMap<LegId, Known>,
    drops: Drops,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses and passwords never go to a log: counts only.
        f.debug_struct("Router")
            .field("legs", &self.by_ufrag.len())
            .field("addresses", &self.by_addr.len())
            .field("drops", &self.drops)
            .finish()
    }
}

impl Router {
    /// Expect `leg` under `ufrag`/`pwd` (the ICE credentials in its answer). A leg already
    /// known under another fragment is removed first.
    pub fn insert(&mut self, leg: LegId, ufrag: &[u8], pwd: &[u8]) {
        self.remove(leg);
        self.by_ufrag.insert(
            ufrag.to_vec(),
            Credentials {
                leg,
                pwd: pwd.to_vec(),
            },
        );
        self.addrs_of.insert(
            leg,
            Known {
                ufrag: ufrag.to_vec(),
                addrs: Vec::new(),
                pinned: None,
            },
        );
    }

    /// `addr` is where `leg`'s member is now: it is never forgotten to make room.
    pub fn pin(&mut self, leg: LegId, addr: SocketAddr) {
        if let Some(known) = self.addrs_of.get_mut(&leg) {
            known.pinned = Some(addr);
        }
    }

    /// Forget `leg`: its fragment and every address it was reached from.
    pub fn remove(&mut self, leg: LegId) {
        if let Some(known) = self.addrs_of.remove(&leg) {
            self.by_ufrag.remove(&known.ufrag);
            for a in known.addrs {
                self.by_addr.remove(&a);
            }
        }
    }

    /// The leg a datagram from `from` belongs to, learning `from` when it is an
    /// authenticated binding request for one of ours.
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Result<LegId, Unrouted> {
        let result = self.route_inner(from, datagram);
        match result {
            Err(Unrouted::Unknown) => self.drops.unknown += 1,
            Err(Unrouted::Integrity) => self.drops.integrity += 1,
            Ok(_) => {}
        }
        result
    }

    fn route_inner(&mut self, from: SocketAddr, datagram: &[u8]) -> Result<LegId, Unrouted> {
        if let Some(leg) = self.by_addr.get(&from) {
            return Ok(*leg);
        }
        let request = BindingRequest::parse(datagram).ok_or(Unrouted::Unknown)?;
        let ours = local_ufrag(request.username);
        let creds = self.by_ufrag.get(ours).ok_or(Unrouted::Unknown)?;
        if !request.verifies(&creds.pwd) {
            return Err(Unrouted::Integrity);
        }
        let leg = creds.leg;
        let Some(known) = self.addrs_of.get_mut(&leg) else {
            return Err(Unrouted::Unknown);
        };
        if known.addrs.len() >= MAX_ADDRS_PER_LEG {
            let oldest = known
                .addrs
                .iter()
                .position(|a| Some(*a) != known.pinned)
                .unwrap_or(0);
            let forgotten = known.addrs.remove(oldest);
            self.by_addr.remove(&forgotten);
            self.drops.forgotten += 1;
        }
        known.addrs.push(from);
        self.by_addr.insert(from, leg);
        Ok(leg)
    }

    /// Legs expected (one fragment each).
    pub fn legs(&self) -> usize {
        self.by_ufrag.len()
    }

    /// Addresses trusted, all legs together.
    pub fn addresses(&self) -> usize {
        self.by_addr.len()
    }

    /// Everything dropped so far.
    pub fn drops(&self) -> Drops {
        self.drops
    }
}

/// The part of USERNAME before the colon: in a request to us, our fragment.
fn local_ufrag(username: &[u8]) -> &[u8] {
    match username.iter().position(|b| *b == b':') {
        Some(i) => &username[..i],
        None => username,
    }
}

/// A STUN binding request, parsed in place (RFC 8489): only what the router needs.
struct BindingRequest<'a> {
    raw: &'a [u8],
    username: &'a [u8],
    /// Offset of the MESSAGE-INTEGRITY attribute's header.
    integrity_at: usize,
}

impl<'a> BindingRequest<'a> {
    fn parse(raw: &'a [u8]) -> Option<Self> {
        if raw.len() < STUN_HEADER || raw[0] & 0xC0 != 0 || raw[4..8] != MAGIC_COOKIE[..] {
            return None;
        }
        let typ = u16::from_be_bytes([raw[0], raw[1]]);
        let length = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
        if typ != BINDING_REQUEST || length % 4 != 0 || STUN_HEADER + length > raw.len() {
            return None;
        }
        let end = STUN_HEADER + length;
        let mut at = STUN_HEADER;
        let mut username = None;
        while at + 4 <= end {
            let attr = u16::from_be_bytes([raw[at], raw[at + 1]]);
            let len = usize::from(u16::from_be_bytes([raw[at + 2], raw[at + 3]]));
            let value_end = at + 4 + len;
            if value_end > end {
                return None;
            }
            match attr {
                ATTR_USERNAME => username = Some(&raw[at + 4..value_end]),
                ATTR_MESSAGE_INTEGRITY => {
                    // Attributes after the integrity (FINGERPRINT) are not covered by it.
                    if len != INTEGRITY_LEN {
                        return None;
                    }
                    return Some(BindingRequest {
                        raw,
                        username: username?,
                        integrity_at: at,
                    });
                }
                _ => {}
            }
            at = value_end.next_multiple_of(4);
        }
        None
    }

    /// HMAC-SHA1 with the short-term password over the message up to the integrity
    /// attribute, with the header's length as if the message ended after it.
    fn verifies(&self, pwd: &[u8]) -> bool {
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(pwd) else {
            return false;
        };
        let covered_len = self.integrity_at + 4 + INTEGRITY_LEN - STUN_HEADER;
        let Ok(covered_len) = u16::try_from(covered_len) else {
            return false;
        };
        mac.update(&self.raw[..2]);
        mac.update(&covered_len.to_be_bytes());
        mac.update(&self.raw[4..self.integrity_at]);
        let tag_at = self.integrity_at + 4;
        mac.verify_slice(&self.raw[tag_at..tag_at + INTEGRITY_LEN])
            .is_ok()
    }
}
