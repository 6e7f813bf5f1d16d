//! The relay as a separate process, for tests that kill it (SIGKILL) and start it again,
//! and for the multi-node tests (several of these on one NATS server).
//!
//! Environment: `APPRODO_TEST_ORG_SEED` (hex of the organisation key seed) and
//! `APPRODO_TEST_STORE` (store directory); with `APPRODO_LOG` set, logs as the relay binary
//! does. With `APPRODO_TEST_BUS_NODE`, `APPRODO_TEST_BUS_URL`, `APPRODO_TEST_BUS_CA` and
//! `APPRODO_TEST_BUS_SEED` (the `[bus]` keys: node, url, ca_file, nkey_seed_file), it joins
//! that bus and serves metrics on loopback; `APPRODO_TEST_BUS_DROP` (0.0–1.0) makes it drop
//! that share of what it sends for carried connections and of its queue snapshots. Prints `listening ADDR`, then `metrics ADDR`
//! when it serves them, once it accepts.

use approdo_core::identity::OrgSigningKey;
use approdo_relay::bus::{BusConfig, BusConfigFile};
use approdo_relay::{Listeners, admin};

fn bus_from_env() -> Option<BusConfig> {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k}"));
    let node = std::env::var("APPRODO_TEST_BUS_NODE").ok()?;
    let file = BusConfigFile {
        node,
        url: var("APPRODO_TEST_BUS_URL"),
        ca_file: var("APPRODO_TEST_BUS_CA").into(),
        nkey_seed_file: var("APPRODO_TEST_BUS_SEED").into(),
    };
    let bus = BusConfig::load(&file).expect("[bus] as the relay loads it");
    // A lossy bus: this share of the messages for carried connections is dropped.
    let share = std::env::var("APPRODO_TEST_BUS_DROP").map_or(0.0, |s| s.parse().expect("a share"));
    Some(bus.with_dropped_share(share))
}

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
    config.bus = bus_from_env();
    let with_metrics = config.bus.is_some();
    // Build (and so wipe the store) before announcing the address.
    let mut relay = approdo_relay::Relay::new(config).expect("relay starts");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("listening {}", http.local_addr().expect("addr"));
    if with_metrics {
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("metrics {}", metrics.local_addr().expect("addr"));
        relay.serve_metrics(metrics);
    }
    relay
        .run(Listeners::http(http), std::future::pending())
        .await
        .expect("relay");
}
