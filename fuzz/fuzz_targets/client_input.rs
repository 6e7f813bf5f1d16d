//! The client state machine fed arbitrary relay bytes never panics.
#![no_main]

use approdo_core::client::Client;
use approdo_core::identity::OrgSigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Client::person(OrgSigningKey::from_seed(&[9; 32]).public());
    for chunk in data.split(|b| *b == 0xff) {
        let _ = c.handle_bytes(chunk, 1);
        while c.poll_frame().is_some() {}
        while c.poll_event().is_some() {}
    }
});
