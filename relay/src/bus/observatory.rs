//! The observatory of the whole hotline: each node keeps the records of the cases it
//! closed, so when a coordinator asks for the figures, the node they are connected to asks
//! every other running node for its counts (`observatory::tally`) and adds them up before
//! suppressing small cells (`switchboard::observatory`).
//!
//! Subject `approdo.node.N.observatory`: request/reply with an empty request; N answers with
//! its tally. Only the nodes the heartbeats show running are asked; if one of them does not
//! answer within [`GATHER_TIMEOUT`] (or answers with something that is not a tally), the
//! coordinator gets `Busy` and may ask again, never figures that silently lack a node's
//! cases. A node that has stopped is not asked, and its cases are missing from the figures
//! until it runs again (its records stay on its own disk).

use std::time::Duration;

use futures_util::future::join_all;

use crate::observatory::tally::{self, Counted};
use crate::server::{SharedHub, lock};

/// How long the asking node waits for every other node's counts.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// Node `node`'s observatory subject.
pub fn observatory_subject(node: &str) -> String {
    format!("approdo.node.{node}.observatory")
}

/// The subject every node may ask on (its NATS permissions).
pub const ALL_OBSERVATORIES: &str = "approdo.node.*.observatory";

/// Ask each of `nodes` for its counts; `None` unless every one answered with a tally.
pub async fn gather(client: &async_nats::Client, nodes: Vec<String>) -> Option<Vec<Counted>> {
    let asks = nodes.into_iter().map(|name| {
        let request = async_nats::Request::new()
            .payload(bytes::Bytes::new())
            .timeout(Some(GATHER_TIMEOUT));
        async move {
            let answer = client
                .send_request(observatory_subject(&name), request)
                .await
                .ok()?;
            match tally::decode(&answer.payload) {
                Ok(counted) => Some(counted),
                Err(e) => {
                    tracing::warn!(node = %name, error = ?e, "bus: an observatory answer was refused");
                    None
                }
            }
        }
    });
    join_all(asks).await.into_iter().collect()
}

/// This node's counts, encoded for the asking node; `None` (no answer, so the coordinator
/// gets `Busy`) when they exceed the bus's message size.
pub fn answer(hub: &SharedHub) -> Option<bytes::Bytes> {
    let counted = lock(hub).switchboard().observatory_tally();
    let encoded = tally::encode(&counted);
    if encoded.is_none() {
        tracing::warn!(
            entries = counted.len(),
            "bus: this node's observatory counts exceed a bus message; not sent"
        );
    }
    encoded.map(Into::into)
}
