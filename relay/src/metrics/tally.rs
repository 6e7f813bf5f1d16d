//! Relay connections by transport: how many were opened since start, and how many are open
//! now. Kept by the hub as connections attach and detach; counts only.

use std::collections::HashMap;

use crate::server::{Transport, TransportCounts};
use crate::switchboard::ConnId;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ConnectionTally {
    opened: TransportCounts,
    /// The transport of each open connection, so a detach knows which count to lower.
    open: HashMap<ConnId, Transport>,
}

fn count_of(counts: &mut TransportCounts, transport: Transport) -> &mut u64 {
    match transport {
        Transport::WebSocket => &mut counts.websocket,
        Transport::Quic => &mut counts.quic,
        Transport::WebTransport => &mut counts.webtransport,
        Transport::Forwarded => &mut counts.forwarded,
    }
}

impl ConnectionTally {
    /// `conn` is open on `transport`.
    pub fn attached(&mut self, conn: ConnId, transport: Transport) {
        let opened = count_of(&mut self.opened, transport);
        *opened = opened.saturating_add(1);
        self.open.insert(conn, transport);
    }

    /// `conn` has ended (a second call for the same connection changes nothing).
    pub fn detached(&mut self, conn: ConnId) {
        self.open.remove(&conn);
    }

    /// Connections opened since start.
    pub fn opened(&self) -> TransportCounts {
        self.opened
    }

    /// Connections open now.
    pub fn open_now(&self) -> TransportCounts {
        let mut counts = TransportCounts::default();
        for transport in self.open.values() {
            *count_of(&mut counts, *transport) += 1;
        }
        counts
    }
}
