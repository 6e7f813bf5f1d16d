//! The relay as a separate process, for tests that kill it (SIGKILL) and start it again.
//!
//! Environment: `APPRODO_TEST_ORG_SEED` (hex of the organisation key seed) and
//! `APPRODO_TEST_STORE` (store directory); with `APPRODO_LOG` set, logs as the relay binary
//! does. Prints `listening ADDR` once it accepts.

use approdo_core::identity::OrgSigningKey;
use approdo_relay::{Listeners, admin};

#[tokio::main]
async fn main() {
    let seed_hex = std::env::var("APPRODO_TEST_ORG_SEED").expect("APPRODO_TEST_ORG_SEED");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(seed_hex, &mut seed).expect("64 hex digits");
    let org = OrgSigningKey::from_seed(&seed);
    let store = std::env::var("APPRODO_TEST_STORE").expect("APPRODO_TEST_STORE");
    if std::env::var_os("APPRODO_LOG").is_some() {
        approdo_relay::init_logs();
    }
    let mut config = admin::demo_config(&org, store.into());
    // Free ports for the SFU's shards: other relays may run beside this one.
    config.sfu.udp_port = 0;
    // Build (and so wipe the store) before announcing the address.
    let relay = approdo_relay::Relay::new(config).expect("relay starts");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("listening {}", http.local_addr().expect("addr"));
    relay
        .run(Listeners::http(http), std::future::pending())
        .await
        .expect("relay");
}
