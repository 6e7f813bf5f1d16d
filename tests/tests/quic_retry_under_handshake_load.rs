//! Under a burst of QUIC handshakes (more than `RETRY_ABOVE_HANDSHAKES` at once) the relay
//! answers the excess with a Retry, so an unproven source address costs it no handshake
//! state, and every honest client still connects: it proves its address with the Retry
//! token and is served.

use approdo_core::wire::{ClientFrame, RelayFrame};
use approdo_relay::quic::RETRY_ABOVE_HANDSHAKES;
use approdo_tests::*;

/// Open a QUIC connection and get a `Pong` for a `Ping`: the client is really served.
async fn served(target: approdo_client::QuicTarget) -> Result<approdo_client::QuicLink, String> {
    let mut link = approdo_client::QuicLink::open(&target)
        .await
        .map_err(|e| e.to_string())?;
    let ping = approdo_core::wire::encode(&ClientFrame::Ping).map_err(|e| e.to_string())?;
    link.write_frames(&[ping])
        .await
        .map_err(|e| e.to_string())?;
    let pong = link.read_frame().await.map_err(|e| e.to_string())?;
    match approdo_core::wire::decode(&pong) {
        Ok(RelayFrame::Pong) => Ok(link),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_burst_gets_retries_and_everyone_connects() {
    let clients = RETRY_ABOVE_HANDSHAKES * 4;
    let org = TestOrg::default();
    // Every client is on 127.0.0.1: give the address room for all of them, so only the
    // handshake load (not the address's share) can cause a Retry.
    let relay = TestRelay::start(&org, |c| {
        c.limits.connections_per_addr = 4 * clients as u32;
        c.limits.connections_per_min_per_addr = 1e9;
        c.limits.max_connections = 4 * clients;
    })
    .await;
    assert_eq!(
        relay.inspector.quic_retries(),
        0,
        "no Retry before the burst"
    );
    let target = approdo_client::QuicTarget::parse(&relay.quic_url())
        .await
        .expect("quic url");

    // Every client starts its handshake at once.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let target = target.clone();
        burst.spawn(async move { tokio::time::timeout(WAIT, served(target)).await });
    }
    let mut links = Vec::new();
    while let Some(done) = burst.join_next().await {
        let link = done
            .expect("client task")
            .expect("connected in time")
            .expect("an honest client is served");
        links.push(link);
    }

    assert_eq!(links.len(), clients, "every honest client connected");
    assert_eq!(
        relay.inspector.transport_counts().quic,
        clients as u64,
        "the relay served each of them once"
    );
    let retries = relay.inspector.quic_retries();
    println!("{clients} handshakes at once: {retries} Retries, all served");
    assert!(
        retries > 0,
        "{clients} handshakes at once (above {RETRY_ABOVE_HANDSHAKES}) get Retries"
    );
    assert!(
        retries < clients as u64,
        "handshakes under the threshold need no Retry (got {retries} for {clients})"
    );
    drop(links);
    relay.stop().await;
}
