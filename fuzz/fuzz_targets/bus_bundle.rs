//! A bus message between nodes: any bytes unbundle into the messages before the first
//! fault, never a panic, never more than the cap; what was read encodes and reads back the
//! same.
#![no_main]

use approdo_relay::bus::forward::{Bundler, MAX_CARRIED_PER_BUNDLE, unbundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let messages = match unbundle(data) {
        Ok(m) | Err(m) => m,
    };
    assert!(messages.len() <= MAX_CARRIED_PER_BUNDLE);
    let mut bundler = Bundler::default();
    for m in &messages {
        bundler.add("node", m);
    }
    let again: Vec<_> = bundler
        .take()
        .iter()
        .flat_map(|(_, bytes)| unbundle(bytes).unwrap_or_default())
        .collect();
    assert_eq!(again, messages);
});
