//! Three relay nodes on one NATS server (TLS, one NKey each) find each other by their
//! heartbeats, measure the bus's round trip, and notice within seconds when one of them is
//! killed — the first thing a node must know before it can end that node's sessions
//! cleanly. The killed node's absence counts once, and the other two keep seeing each
//! other.

mod bus_harness;

use bus_harness::{Nats, Node};

#[test]
fn three_nodes_see_each_other_and_the_survivors_notice_a_killed_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(dir.path(), &["rome-1", "milan-1", "naples-1"]);
    let mut nodes: Vec<Node> = ["rome-1", "milan-1", "naples-1"]
        .iter()
        .map(|n| Node::start(dir.path(), n, &nats, &nats.key(n).seed_file))
        .collect();

    for node in &mut nodes {
        node.until("approdo_bus_connected", 1);
        node.until("approdo_bus_nodes_alive", 2);
    }
    // Pings go out every two seconds to every node alive: a round trip is on record soon.
    let deadline = std::time::Instant::now() + bus_harness::WAIT;
    let round_trip = loop {
        let text = nodes[0].scrape().unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("approdo_bus_round_trip_microseconds{quantile=\"0.99\"}"))
        {
            break line
                .rsplit_once(' ')
                .map(|(_, v)| v.parse::<u64>().expect("a count"));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no round trip:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let round_trip = round_trip.expect("a value");
    assert!(round_trip > 0 && round_trip < 1_000_000, "{round_trip} µs");

    let naples = nodes.pop().expect("three");
    drop(naples); // SIGKILL: no goodbye on the bus
    for node in &mut nodes {
        node.until("approdo_bus_nodes_alive", 1);
        node.until("approdo_bus_nodes_lost_total", 1);
    }
    // The two left still hear each other, beat after beat.
    std::thread::sleep(peers_lost_after() * 2);
    for node in &nodes {
        assert_eq!(node.gauge("approdo_bus_nodes_alive"), Some(1));
        assert_eq!(node.gauge("approdo_bus_nodes_lost_total"), Some(1));
        assert_eq!(node.gauge("approdo_bus_malformed_total"), Some(0));
    }
}

fn peers_lost_after() -> std::time::Duration {
    approdo_relay::bus::peers::LOST_AFTER
}
