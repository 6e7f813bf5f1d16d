//! The bus admits only the nodes the NATS server lists, and a node speaks only for itself:
//! a relay holding an NKey the server does not know never joins (and no node counts it),
//! and a client holding a real node's key cannot publish a heartbeat under another name —
//! the server refuses it, so no node counts a phantom node.

mod bus_harness;

use std::time::Duration;

use rustls_pki_types::pem::PemObject;

use bus_harness::{Nats, Node};

#[test]
fn a_stranger_key_never_joins_and_a_node_cannot_beat_for_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(dir.path(), &["rome-1", "milan-1"]);
    let mut rome = Node::start(dir.path(), "rome-1", &nats, &nats.key("rome-1").seed_file);
    let mut milan = Node::start(dir.path(), "milan-1", &nats, &nats.key("milan-1").seed_file);
    rome.until("approdo_bus_nodes_alive", 1);
    milan.until("approdo_bus_nodes_alive", 1);

    // A relay with a well-formed key the server was never given.
    let stranger = nkeys::KeyPair::new_user();
    let stranger_seed = dir.path().join("stranger.nk");
    std::fs::write(&stranger_seed, stranger.seed().expect("seed")).expect("write");
    let mut turin = Node::start(dir.path(), "turin-1", &nats, &stranger_seed);
    turin.until("approdo_bus_connected", 0);

    // A client with rome-1's own key, trying to speak as a node that does not exist.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let violations = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let ca = std::fs::read(&nats.ca_file).expect("CA");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert.expect("PEM")).expect("root");
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = async_nats::ConnectOptions::with_nkey(nats.key("rome-1").seed.clone())
            .tls_client_config(tls)
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
        for subject in ["approdo.node.ghost-1.beat", "approdo.node.milan-1.beat"] {
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
    });
    assert!(
        violations
            .iter()
            .any(|e| e.to_lowercase().contains("permissions violation")),
        "the server refused the publication: {violations:?}"
    );

    // Several beat intervals later: still exactly one other node each, no phantom, and the
    // stranger never connected.
    std::thread::sleep(approdo_relay::bus::BEAT_INTERVAL * 3);
    assert_eq!(rome.gauge("approdo_bus_nodes_alive"), Some(1));
    assert_eq!(milan.gauge("approdo_bus_nodes_alive"), Some(1));
    assert_eq!(turin.gauge("approdo_bus_connected"), Some(0));
    assert_eq!(turin.gauge("approdo_bus_nodes_alive"), Some(0));
}
