//! A panic while holding the switchboard's lock leaves its state unknown: the relay stops
//! with an error (its service manager restarts it) instead of serving on half-dead, and it
//! still wipes its session store on the way out.

use approdo_relay::{Listeners, RelayError};
use approdo_tests::*;

#[tokio::test]
async fn a_poisoned_switchboard_stops_the_relay() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = org.config(dir.path().join("sessions"), &[]);
    let store_dir = config.store_dir.clone();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let relay = approdo_relay::Relay::new(config).expect("relay starts");
    let inspector = relay.inspector();
    let running = tokio::spawn(relay.run(Listeners::http(http), std::future::pending()));

    tokio::task::spawn_blocking(move || inspector.test_hook_panic_holding_the_lock())
        .await
        .expect("hook ran");

    let ended = tokio::time::timeout(WAIT, running)
        .await
        .expect("the relay stops by itself")
        .expect("run returned");
    assert!(
        matches!(ended, Err(RelayError::TaskDied("ticker"))),
        "stopped with the ticker's error: {ended:?}"
    );
    assert!(!store_dir.exists(), "the store is wiped on the way out");
}

/// `main` hands the relay its SIGHUP revocation reloader to supervise: a reloader that
/// stops (here at once) stops the relay, which must not run on without revocations.
#[tokio::test]
async fn a_supervised_task_that_ends_stops_the_relay() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = org.config(dir.path().join("sessions"), &[]);
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut relay = approdo_relay::Relay::new(config).expect("relay starts");
    relay.supervise("revocation reloader", tokio::spawn(async {}));
    let ended = tokio::time::timeout(
        WAIT,
        relay.run(Listeners::http(http), std::future::pending()),
    )
    .await
    .expect("the relay stops by itself");
    assert!(
        matches!(ended, Err(RelayError::TaskDied("revocation reloader"))),
        "{ended:?}"
    );
}
