//! A coordinator's observatory query: counts only, small ones suppressed
//! (`crate::observatory`). On a relay of several nodes each node keeps the records of the
//! cases it closed, so the figures of the whole hotline are gathered first: the node the
//! coordinator is connected to asks every other running node for its counts over the bus
//! (`bus::observatory`), adds them to its own, and only then suppresses small cells.

use std::collections::HashSet;

use approdo_core::identity::Role;
use approdo_core::wire::{ErrorCode, RelayFrame};

use super::{ConnId, Switchboard};
use crate::observatory::tally::{Counted, merge, tally};

/// Whether queries are gathered from other nodes, and the connections waiting for theirs.
#[derive(Default)]
pub(super) struct Queries {
    /// Set when the relay joins a bus.
    from_other_nodes: bool,
    /// Coordinators whose query is being gathered: at most one each, so repeating the
    /// query cannot multiply the requests sent to every node.
    gathering: HashSet<ConnId>,
}

impl Queries {
    /// `conn` is gone: nothing is waiting for its answer.
    pub(super) fn forget(&mut self, conn: ConnId) {
        self.gathering.remove(&conn);
    }
}

impl Switchboard {
    /// From now on a coordinator's query counts the other nodes' records too.
    pub fn gather_observatory_from_other_nodes(&mut self) {
        self.observatory_queries.from_other_nodes = true;
    }

    pub(super) fn observatory_query(&mut self, conn: ConnId) -> Result<(), ErrorCode> {
        if self.staff_cert(conn).map(|c| c.role) != Some(Role::Coordinator) {
            return Err(ErrorCode::NotAllowed);
        }
        if !self.observatory_queries.from_other_nodes {
            self.answer_observatory(conn, Vec::new());
        } else if self.observatory_queries.gathering.insert(conn) {
            self.outbox.gather_observatory(conn);
        }
        // else: the query already being gathered answers this one too.
        Ok(())
    }

    /// This node's records as counts, for another node gathering a coordinator's figures.
    pub fn observatory_tally(&self) -> Counted {
        tally(
            &self
                .observatory
                .recent_records(crate::observatory::MAX_MONTHS),
        )
    }

    /// The other nodes' counts for `conn`'s query: every running node's, or `None` when one
    /// did not answer in time, and the coordinator is told to try again (`Busy`, the
    /// connection stays open) rather than shown figures that silently miss a node's cases.
    pub fn observatory_gathered(&mut self, conn: ConnId, others: Option<Vec<Counted>>) {
        if !self.observatory_queries.gathering.remove(&conn)
            || self.staff_cert(conn).map(|c| c.role) != Some(Role::Coordinator)
        {
            return; // gone meanwhile
        }
        match others {
            Some(others) => self.answer_observatory(conn, others),
            None => self.outbox.frame(
                conn,
                &RelayFrame::Error {
                    code: ErrorCode::Busy,
                },
            ),
        }
    }

    /// Count this node's records and `others` into the coordinator's tables.
    fn answer_observatory(&mut self, conn: ConnId, others: Vec<Counted>) {
        let counted = merge(std::iter::once(self.observatory_tally()).chain(others));
        let territories: Vec<String> = self
            .config
            .desks
            .iter()
            .map(|d| d.id.as_str().to_owned())
            .collect();
        let tables = crate::observatory::aggregate_counted(&counted, &territories);
        self.outbox
            .frame(conn, &RelayFrame::ObservatoryTables { tables });
    }
}
