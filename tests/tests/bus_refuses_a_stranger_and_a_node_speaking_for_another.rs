//! The bus admits only the nodes the NATS server lists, and a node speaks only for itself:
//! a relay holding an NKey the server does not know never joins (and no node counts it),
//! and a client holding a real node's key cannot publish a heartbeat, or carry a
//! connection, under another name: the server refuses it, so no node counts a phantom
//! node or takes a frame as coming from a node that did not send it.

use std::time::Duration;

use approdo_tests::TestOrg;
use approdo_tests::nodes::{Nats, Node};

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

/// What a client holding rome-1's key tries: a heartbeat of a node that does not exist,
/// one of milan-1, and a frame "from" another node into milan-1's carried connections.
const FORGED: [&str; 3] = [
    "approdo.node.ghost-1.beat",
    "approdo.node.milan-1.beat",
    "approdo.node.milan-1.conn.ghost-1",
];

#[tokio::test]
async fn a_stranger_key_never_joins_and_a_node_cannot_beat_for_another() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(dir.path(), &["rome-1", "milan-1"]);
    let start = |name: &str, seed: &std::path::Path| {
        Node::start(BINARY, &org, dir.path(), &nats, name, seed, 0.0)
    };
    let mut rome = start("rome-1", &nats.key("rome-1").seed_file);
    let mut milan = start("milan-1", &nats.key("milan-1").seed_file);
    rome.until("approdo_bus_nodes_alive", 1).await;
    milan.until("approdo_bus_nodes_alive", 1).await;

    // A relay with a well-formed key the server was never given.
    let stranger = nkeys::KeyPair::new_user();
    let stranger_seed = dir.path().join("stranger.nk");
    std::fs::write(&stranger_seed, stranger.seed().expect("seed")).expect("write");
    let turin = start("turin-1", &stranger_seed);

    // A client with rome-1's own key, trying to speak as a node that does not exist.
    let violations = {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::with_nkey(nats.key("rome-1").seed.clone())
            .tls_client_config(nats.client_tls())
            .require_tls(true)
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(nats.url.as_str())
            .await
            .expect("rome-1's key is admitted");
        let beat = approdo_relay::bus::peers::Beat {
            epoch: 1,
            version: 1,
        };
        let payload = postcard::to_allocvec(&beat).expect("encode");
        for subject in FORGED {
            for _ in 0..5 {
                client
                    .publish(subject, payload.clone().into())
                    .await
                    .expect("queued");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        client.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.push(e);
        }
        seen
    };
    for subject in FORGED {
        assert!(
            violations.iter().any(|e| {
                e.to_lowercase().contains("permissions violation") && e.contains(subject)
            }),
            "the server refused {subject}: {violations:?}"
        );
    }

    // Several beat intervals later: still exactly one other node each, no phantom, and the
    // stranger never connected.
    tokio::time::sleep(approdo_relay::bus::BEAT_INTERVAL * 3).await;
    assert_eq!(rome.gauge("approdo_bus_nodes_alive"), Some(1));
    assert_eq!(milan.gauge("approdo_bus_nodes_alive"), Some(1));
    assert_eq!(turin.gauge("approdo_bus_connected"), Some(0));
    assert_eq!(turin.gauge("approdo_bus_nodes_alive"), Some(0));
}
