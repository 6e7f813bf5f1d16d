//! Three relay nodes on one NATS server (TLS, one NKey each) find each other by their
//! heartbeats, measure the bus's round trip, and notice within seconds when one of them is
//! killed: the first thing a node must know before it can end what depended on that node.
//! The killed node's absence counts once, and the other two keep seeing each other.

use approdo_tests::TestOrg;
use approdo_tests::nodes::{NODE_WAIT, Nats, Node};

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

#[tokio::test]
async fn three_nodes_see_each_other_and_the_survivors_notice_a_killed_one() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let names = ["rome-1", "milan-1", "naples-1"];
    let nats = Nats::start(dir.path(), &names);
    let mut nodes: Vec<Node> = names
        .iter()
        .map(|n| {
            Node::start(
                BINARY,
                &org,
                dir.path(),
                &nats,
                n,
                &nats.key(n).seed_file,
                0.0,
            )
        })
        .collect();

    for node in &mut nodes {
        node.until("approdo_bus_connected", 1).await;
        node.until("approdo_bus_nodes_alive", 2).await;
    }
    // Pings go out every two seconds to every node alive: a round trip is on record soon.
    let deadline = std::time::Instant::now() + NODE_WAIT;
    let round_trip = loop {
        let p99 = nodes[0].sample(
            "approdo_bus_round_trip_microseconds",
            &[("quantile", "0.99")],
        );
        if let Some(p99) = p99 {
            break p99;
        }
        assert!(std::time::Instant::now() < deadline, "no round trip");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(round_trip > 0 && round_trip < 1_000_000, "{round_trip} µs");

    nodes.pop().expect("three").kill(); // SIGKILL: no goodbye on the bus
    for node in &mut nodes {
        node.until("approdo_bus_nodes_alive", 1).await;
        node.until("approdo_bus_nodes_lost_total", 1).await;
    }
    // The two left still hear each other, beat after beat.
    tokio::time::sleep(approdo_relay::bus::peers::LOST_AFTER * 2).await;
    for node in &nodes {
        assert_eq!(node.gauge("approdo_bus_nodes_alive"), Some(1));
        assert_eq!(node.gauge("approdo_bus_nodes_lost_total"), Some(1));
        assert_eq!(node.gauge("approdo_bus_malformed_total"), Some(0));
    }
}
