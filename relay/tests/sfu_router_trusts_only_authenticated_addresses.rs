//! The SFU shard's router: a datagram from an unknown address reaches a leg only as a STUN
//! binding request naming that leg's ICE fragment and carrying a MESSAGE-INTEGRITY made
//! with its password; the address is then trusted (up to a cap per leg) until the leg
//! goes. Requests are made with `rtc`'s own STUN code, as a browser's would be.

use std::net::SocketAddr;

use approdo_relay::sfu::router::{MAX_ADDRS_PER_LEG, Router, Unrouted};
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtc::stun::textattrs::Username;

const UFRAG: &str = "a1b2c3d4e5f60718";
const PWD: &str = "00112233445566778899aabbccddeeff";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

/// A binding request as a browser sends it to the relay: USERNAME "ours:theirs",
/// MESSAGE-INTEGRITY with our password, FINGERPRINT.
fn request(ufrag: &str, pwd: &str) -> Vec<u8> {
    let crypto = rtc::crypto::default_provider().expect("crypto");
    let mut m = Message::new();
    let integrity =
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), crypto.crypto());
    let setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(Username::new(ATTR_USERNAME, format!("{ufrag}:browser1"))),
        Box::new(integrity),
        Box::new(FINGERPRINT),
    ];
    m.build(&setters).expect("build");
    m.raw
}

#[test]
fn a_genuine_request_teaches_the_address_then_everything_from_it_routes() {
    let mut r = Router::default();
    r.insert(7, UFRAG.as_bytes(), PWD.as_bytes());
    assert_eq!(
        r.route(addr(1), b"\x80\x60 some rtp"),
        Err(Unrouted::Unknown)
    );
    assert_eq!(r.route(addr(1), &request(UFRAG, PWD)), Ok(7));
    // Now DTLS and SRTP from that address reach the leg.
    assert_eq!(r.route(addr(1), b"\x16\xfe\xfd dtls"), Ok(7));
    assert_eq!(r.route(addr(1), b"\x80\x60 some rtp"), Ok(7));
    assert_eq!(r.addresses(), 1);
}

#[test]
fn a_flipped_integrity_byte_or_a_wrong_password_is_refused() {
    let mut r = Router::default();
    r.insert(7, UFRAG.as_bytes(), PWD.as_bytes());
    let genuine = request(UFRAG, PWD);
    // The integrity attribute's value sits 20 + 4 bytes before the fingerprint (8 bytes).
    let mut flipped = genuine.clone();
    let at = flipped.len() - 8 - 20;
    flipped[at] ^= 1;
    assert_eq!(r.route(addr(2), &flipped), Err(Unrouted::Integrity));
    assert_eq!(
        r.route(addr(2), &request(UFRAG, "not-the-password-at-all-00")),
        Err(Unrouted::Integrity)
    );
    // A fragment that is not ours, and garbage, are unknown.
    assert_eq!(
        r.route(addr(2), &request("ffffffffffffffff", PWD)),
        Err(Unrouted::Unknown)
    );
    assert_eq!(
        r.route(addr(2), &genuine[..genuine.len() - 30]),
        Err(Unrouted::Unknown)
    );
    assert_eq!(r.addresses(), 0, "nothing learnt");
    assert_eq!(r.drops().integrity, 2);
}

#[test]
fn a_replayed_request_is_capped_per_leg_and_cannot_push_out_the_members_path() {
    let mut r = Router::default();
    r.insert(7, UFRAG.as_bytes(), PWD.as_bytes());
    let genuine = request(UFRAG, PWD);
    // The member's media uses its first address.
    assert_eq!(r.route(addr(100), &genuine), Ok(7));
    r.pin(7, addr(100));
    // The same request replayed from a crowd of addresses: the leg keeps at most its cap,
    // forgetting the oldest, never the member's own.
    for port in 1..(3 * MAX_ADDRS_PER_LEG as u16) {
        assert_eq!(r.route(addr(100 + port), &genuine), Ok(7));
        assert!(r.addresses() <= MAX_ADDRS_PER_LEG);
    }
    assert_eq!(r.addresses(), MAX_ADDRS_PER_LEG);
    assert_eq!(r.drops().forgotten, 2 * MAX_ADDRS_PER_LEG as u64);
    assert_eq!(
        r.route(addr(100), b"\x80\x60 rtp"),
        Ok(7),
        "the path is kept"
    );
    assert_eq!(
        r.route(addr(101), b"\x80\x60 rtp"),
        Err(Unrouted::Unknown),
        "the oldest other address was forgotten"
    );
}

#[test]
fn removing_a_leg_forgets_its_fragment_and_every_address() {
    let mut r = Router::default();
    r.insert(7, UFRAG.as_bytes(), PWD.as_bytes());
    r.insert(8, b"0000111122223333", PWD.as_bytes());
    let genuine = request(UFRAG, PWD);
    assert_eq!(r.route(addr(1), &genuine), Ok(7));
    assert_eq!(r.route(addr(2), &genuine), Ok(7));
    assert_eq!(r.route(addr(3), &request("0000111122223333", PWD)), Ok(8));
    r.remove(7);
    assert_eq!(r.route(addr(1), b"\x80\x60 rtp"), Err(Unrouted::Unknown));
    assert_eq!(r.route(addr(1), &genuine), Err(Unrouted::Unknown));
    assert_eq!(r.route(addr(3), b"\x80\x60 rtp"), Ok(8));
    assert_eq!((r.legs(), r.addresses()), (1, 1));
    r.remove(8);
    assert_eq!((r.legs(), r.addresses()), (0, 0));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut r = Router::default();
    r.insert(7, UFRAG.as_bytes(), PWD.as_bytes());
    let genuine = request(UFRAG, PWD);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20_000usize {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut d = genuine.clone();
        d.truncate(i % (genuine.len() + 1));
        if let Some(b) = d.get_mut((seed as usize) % genuine.len().max(1)) {
            *b = (seed >> 32) as u8;
        }
        let _ = r.route(addr(5000 + (i % 50) as u16), &d);
    }
}
