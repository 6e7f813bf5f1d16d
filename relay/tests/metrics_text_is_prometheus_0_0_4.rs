//! The metrics text follows the Prometheus exposition format 0.0.4: every metric has one
//! `# HELP` and one `# TYPE` line before its samples, counters (and only counters) end in
//! `_total`, every name starts with `approdo_`, values are plain integers, label values are
//! quoted, and the figures read from the relay land on the right lines.

use std::collections::BTreeSet;

use approdo_core::ids::Tag;
use approdo_relay::metrics::{CONTENT_TYPE, Snapshot};
use approdo_relay::server::TransportCounts;

fn tag(s: &str) -> Tag {
    Tag::new(s).expect("a valid tag")
}

#[test]
fn every_metric_is_described_then_sampled() {
    let mut snapshot = Snapshot::default();
    snapshot.switchboard.waiting = vec![(tag("national"), tag("en"), 3)];
    snapshot.switchboard.staff_online.interpreters = 2;
    snapshot.open_connections = TransportCounts {
        websocket: 5,
        quic: 6,
        webtransport: 7,
        forwarded: 8,
    };
    snapshot.quic_retries = 11;
    snapshot.bus = Some(approdo_relay::bus::BusGauges {
        connected: true,
        peers_alive: 2,
        peers_lost_total: 1,
        round_trip_p50_us: Some(250),
        round_trip_p99_us: Some(900),
        malformed_total: 0,
    });
    let text = snapshot.render();
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    assert!(text.ends_with('\n'));

    let mut described = BTreeSet::new();
    let mut current: Option<(String, String)> = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, words) = help.split_once(' ').expect("HELP name text");
            assert!(!words.is_empty() && !words.contains('\\'), "{line}");
            assert!(name.starts_with("approdo_"), "{name}");
            assert!(described.insert(name.to_owned()), "{name} described twice");
            let kind = lines
                .next()
                .and_then(|l| l.strip_prefix(&format!("# TYPE {name} ")))
                .unwrap_or_else(|| panic!("TYPE right after HELP for {name}"));
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} is a {kind}"
            );
            assert!(kind == "counter" || kind == "gauge", "{kind}");
            current = Some((name.to_owned(), kind.to_owned()));
            assert!(
                lines.peek().is_some_and(|l| !l.starts_with('#')),
                "{name} has samples"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line}");
        let (name, _) = current.as_ref().expect("a sample after its TYPE");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        value.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
        let sample_name = series.split('{').next().unwrap_or_default();
        assert_eq!(sample_name, name, "{line}");
        if let Some(labels) = series.strip_prefix(&format!("{name}{{")) {
            let labels = labels.strip_suffix('}').expect("closed labels");
            for pair in labels.split(',') {
                let (key, quoted) = pair.split_once('=').expect("key=value");
                assert!(key.chars().all(|c| c.is_ascii_lowercase()), "{key}");
                assert!(quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'));
            }
        }
    }
    assert!(described.len() >= 10, "{described:?}");

    for line in [
        "approdo_sessions_waiting{desk=\"national\",language=\"en\"} 3",
        "approdo_staff_online{role=\"interpreter\"} 2",
        "approdo_staff_online{role=\"operator\"} 0",
        "approdo_connections_open{transport=\"websocket\"} 5",
        "approdo_connections_open{transport=\"quic\"} 6",
        "approdo_connections_open{transport=\"webtransport\"} 7",
        "approdo_connections_open{transport=\"forwarded\"} 8",
        "approdo_bus_connected 1",
        "approdo_bus_nodes_alive 2",
        "approdo_bus_round_trip_microseconds{quantile=\"0.99\"} 900",
        "approdo_quic_retries_total 11",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}
