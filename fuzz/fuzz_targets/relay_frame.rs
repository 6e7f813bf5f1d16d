//! The relay's switchboard fed arbitrary frames from several connections never panics.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use approdo_core::identity::OrgSigningKey;
use approdo_relay::store::EphemeralStore;
use approdo_relay::switchboard::Switchboard;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
}

fuzz_target!(|data: &[u8]| {
    let org = OrgSigningKey::from_seed(&[7; 32]);
    let config = Arc::new(approdo_relay::admin::demo_config(&org, dir().path().join("s")));
    let store = EphemeralStore::open_wiped(&config.store_dir).expect("store");
    let observatory = approdo_relay::observatory::Observatory::open(&config.observatory_dir).expect("observatory");
    let now = Instant::now();
    let mut sb = Switchboard::new(config.clone(), store, observatory, now).expect("switchboard");
    for conn in 1..=3u64 {
        let tag = sb.admit("192.0.2.1".parse().expect("ip"), now).expect("admitted");
        sb.connected(conn, tag, now);
    }
    for (i, frame) in data.split(|b| *b == 0xff).enumerate() {
        sb.handle((i % 3) as u64 + 1, frame, now);
        let _ = sb.take_outputs();
    }
    sb.tick(now);
    let _ = sb.take_outputs();
});
