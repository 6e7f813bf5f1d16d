//! The Prometheus text exposition format, version 0.0.4: for each metric a `# HELP` line, a
//! `# TYPE` line, then its samples. Written here rather than with a client library, whose
//! encoder writes OpenMetrics instead (counters typed without their `_total`, a closing
//! `# EOF`).

use std::fmt::Write;

use approdo_core::identity::Role;

use super::Snapshot;
use crate::server::TransportCounts;

/// The `Content-Type` of what [`render`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric's type, as the `# TYPE` line names it.
#[derive(Clone, Copy)]
enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up (from 0 at the relay's start); its name ends in `_total`.
    Counter,
}

/// One sample: its labels (name, value) and its value.
type Sample<'a> = (Vec<(&'static str, &'a str)>, u64);

/// The text being written.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    /// One metric: its help, its type and its samples.
    fn metric<'a>(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: impl IntoIterator<Item = Sample<'a>>,
    ) {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.out.push_str(name);
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (label, text)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{label}=\"{}\"", escape(text));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {value}");
        }
    }

    /// A metric with one sample and no labels.
    fn single(&mut self, name: &str, kind: Kind, help: &str, value: u64) {
        self.metric(name, kind, help, [(Vec::new(), value)]);
    }
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
/// (Desk ids and languages are tags of lowercase letters, digits and `-`: this is a guard.)
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One sample per transport.
fn by_transport(counts: TransportCounts) -> [Sample<'static>; 4] {
    [
        (vec![("transport", "websocket")], counts.websocket),
        (vec![("transport", "quic")], counts.quic),
        (vec![("transport", "webtransport")], counts.webtransport),
        (vec![("transport", "forwarded")], counts.forwarded),
    ]
}

/// The whole scrape. Every metric is written, zeros included, so none vanishes from a
/// dashboard while idle.
pub fn render(s: &Snapshot) -> String {
    let mut e = Exposition::default();
    let g = &s.switchboard;
    e.metric(
        "approdo_connections_open",
        Kind::Gauge,
        "Relay connections open now, by transport.",
        by_transport(s.open_connections),
    );
    e.metric(
        "approdo_connections_opened_total",
        Kind::Counter,
        "Relay connections opened since start, by transport.",
        by_transport(s.opened_connections),
    );
    e.metric(
        "approdo_sessions_waiting",
        Kind::Gauge,
        "Sessions waiting for an operator, by configured desk and language.",
        g.waiting.iter().map(|(desk, language, n)| {
            (
                vec![("desk", desk.as_str()), ("language", language.as_str())],
                *n,
            )
        }),
    );
    e.single(
        "approdo_sessions_running",
        Kind::Gauge,
        "Sessions an operator has accepted.",
        g.running_sessions,
    );
    e.single(
        "approdo_participants_away",
        Kind::Gauge,
        "Participants whose connection dropped and who may still resume.",
        g.away_participants,
    );
    e.metric(
        "approdo_staff_online",
        Kind::Gauge,
        "Staff logged in now, by role.",
        [Role::Operator, Role::Interpreter, Role::Coordinator]
            .map(|role| (vec![("role", role.as_str())], g.staff_online.of(role))),
    );
    e.single(
        "approdo_calls",
        Kind::Gauge,
        "Sessions with a call in progress in the SFU.",
        count(s.sfu.calls),
    );
    e.single(
        "approdo_call_participants",
        Kind::Gauge,
        "Participants in a call.",
        g.call_participants,
    );
    e.single(
        "approdo_sfu_peer_connections",
        Kind::Gauge,
        "SFU peer connections (call legs) held on the shards.",
        count(s.sfu.live_peer_connections),
    );
    e.single(
        "approdo_sfu_routes",
        Kind::Gauge,
        "SFU routing entries: an ICE fragment per leg and each address a leg was reached \
         from (0 once every call has ended).",
        count(s.sfu.routes),
    );
    e.single(
        "approdo_sfu_forwarded_packets_total",
        Kind::Counter,
        "RTP packets the SFU forwarded to receivers since start.",
        s.forwarded_packets,
    );
    e.single(
        "approdo_sfu_path_moves_total",
        Kind::Counter,
        "Times a call member's media moved to a new address mid-call (a NAT rebinding, a \
         phone changing networks) and the call followed, since start.",
        s.sfu_path_moves,
    );
    e.metric(
        "approdo_rate_limited_total",
        Kind::Counter,
        "Refusals by a limit since start. places = connections closed at accept \
         (connections_per_addr or max_connections), connection_rate = connections refused \
         at admission (connections_per_min_per_addr or max_connections), budget = frames \
         answered RateLimited (frame, byte, ack or session budgets, wrong proof of work).",
        [
            (vec![("limit", "places")], s.refused_places),
            (
                vec![("limit", "connection_rate")],
                g.refusals.connection_rate,
            ),
            (vec![("limit", "budget")], g.refusals.budget),
        ],
    );
    let t = &g.turn_answers;
    e.metric(
        "approdo_turn_answers_total",
        Kind::Counter,
        "Answers to TURN credential requests since start. credentials = minted (a call \
         could not connect directly), unavailable = no TURN configured, not_in_call and \
         too_many = refused.",
        [
            (vec![("answer", "credentials")], t.credentials),
            (vec![("answer", "unavailable")], t.unavailable),
            (vec![("answer", "not_in_call")], t.not_in_call),
            (vec![("answer", "too_many")], t.too_many),
        ],
    );
    e.single(
        "approdo_quic_retries_total",
        Kind::Counter,
        "QUIC Retry packets sent since start (address validation under load).",
        s.quic_retries,
    );
    e.single(
        "approdo_store_bytes",
        Kind::Gauge,
        "Bytes of events kept sealed in the store for away participants.",
        g.stored_bytes,
    );
    e.single(
        "approdo_store_events",
        Kind::Gauge,
        "Events kept sealed in the store for away participants.",
        g.stored_events,
    );
    e.single(
        "approdo_store_bytes_limit",
        Kind::Gauge,
        "The relay-wide cap on approdo_store_bytes (max_stored_bytes).",
        g.stored_bytes_limit,
    );
    if let Some(bus) = &s.bus {
        render_bus(&mut e, bus);
    }
    e.out
}

/// The bus's metrics, written only by a node that has one.
fn render_bus(e: &mut Exposition, bus: &crate::bus::BusGauges) {
    e.single(
        "approdo_bus_connected",
        Kind::Gauge,
        "1 while this node is connected to the bus (NATS), 0 otherwise.",
        u64::from(bus.connected),
    );
    e.single(
        "approdo_bus_nodes_alive",
        Kind::Gauge,
        "Other relay nodes whose heartbeat arrived lately.",
        bus.peers_alive,
    );
    e.single(
        "approdo_bus_nodes_lost_total",
        Kind::Counter,
        "Times another node fell silent since start.",
        bus.peers_lost_total,
    );
    // Written once a ping has been answered (a metric is never written without samples).
    if let (Some(p50), Some(p99)) = (bus.round_trip_p50_us, bus.round_trip_p99_us) {
        e.metric(
            "approdo_bus_round_trip_microseconds",
            Kind::Gauge,
            "Request/reply round trip to the other nodes over the bus, over the recent pings.",
            [
                (vec![("quantile", "0.5")], p50),
                (vec![("quantile", "0.99")], p99),
            ],
        );
    }
    e.single(
        "approdo_bus_malformed_total",
        Kind::Counter,
        "Bus messages ignored because they could not be read.",
        bus.malformed_total,
    );
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
