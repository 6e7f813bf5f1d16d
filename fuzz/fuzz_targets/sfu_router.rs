//! The SFU shard's router: any datagram from any address routes to a leg or is dropped,
//! never a panic; an address is learnt only from a binding request whose integrity verifies
//! (with random bytes, practically never), and never beyond the cap per leg.
#![no_main]

use std::net::SocketAddr;

use approdo_relay::sfu::router::{MAX_ADDRS_PER_LEG, Router};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Router::default();
    r.insert(1, b"a1b2c3d4e5f60718", b"00112233445566778899aabbccddeeff");
    r.insert(2, b"0000111122223333", b"ffeeddccbbaa99887766554433221100");
    // The first two bytes choose the source port; the rest is the datagram.
    let (port, datagram) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => (0, data),
    };
    let from = SocketAddr::from(([192, 0, 2, 1], port));
    let _ = r.route(from, datagram);
    let _ = r.route(from, datagram);
    assert!(r.addresses() <= 2 * MAX_ADDRS_PER_LEG);
    r.remove(1);
    r.remove(2);
    assert_eq!((r.legs(), r.addresses()), (0, 0));
});
