//! A coordinator's observatory figures cover the whole hotline, not only the node they are
//! connected to: each node keeps the records of the cases it closed, and the coordinator's
//! node adds up every running node's counts (`bus::observatory`) before suppressing small
//! cells. So a count below 5 on each node alone is disclosed once the nodes' counts add up
//! to 5 or more. A node that has stopped is no longer asked, and the others still answer.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::observatory::{
    Activator, AgeBand, Cell, Exploitation, Gender, ObservatoryRecord, ObservatoryTables, Outcome,
};
use approdo_relay::observatory::Observatory;
use approdo_tests::nodes::nodes;
use approdo_tests::*;

const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");

/// File `n` cases in node `name`'s observatory before it starts (where the test relay keeps
/// it: beside its store).
fn file_cases(dir: &std::path::Path, name: &str, n: usize) {
    let observatory =
        Observatory::open(&dir.join(format!("{name}-store-observatory"))).expect("observatory");
    let record = ObservatoryRecord {
        gender: Gender::Female,
        age: AgeBand::From18To25,
        territory_emerged: None,
        territory_exploitation: None,
        exploitation: vec![Exploitation::LabourAgriculture],
        activator: Activator::Person,
        outcome: Outcome::Counselling,
    };
    for _ in 0..n {
        observatory
            .file(&record, approdo_client::unix_now())
            .expect("file");
    }
}

async fn figures(coordinator: &mut Actor) -> ObservatoryTables {
    coordinator.act(|c| c.query_observatory().expect("query"));
    let Event::ObservatoryTables { tables } = coordinator
        .wait_for("the tables", |e| {
            matches!(e, Event::ObservatoryTables { .. })
        })
        .await
    else {
        unreachable!()
    };
    tables
}

#[tokio::test]
async fn a_coordinator_counts_the_cases_of_every_running_node() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    // rome-1 closed 5 cases, naples-1 closed 3; milan-1, where the coordinator logs in, none.
    file_cases(dir.path(), "rome-1", 5);
    file_cases(dir.path(), "naples-1", 3);
    let (_nats, mut started) = nodes(
        BINARY,
        &org,
        dir.path(),
        0.0,
        &["rome-1", "milan-1", "naples-1"],
    )
    .await;
    let naples = started.pop().expect("naples-1");
    let mut milan = started.pop().expect("milan-1");

    let mut coordinator = staff_at(
        &milan.url,
        &org,
        org.credential(Role::Coordinator, &["national"], &[]),
    )
    .await;
    let all = figures(&mut coordinator).await;
    // 8 cases: naples-1's 3 alone would be suppressed, and are counted.
    assert_eq!(all.cases, Cell::Count(8));
    assert_eq!(all.cases_by_month, vec![Cell::Count(8)]);
    assert_eq!(all.months.len(), 1);

    // naples-1 stops: once milan-1 has noticed, its cases are no longer counted, and the
    // others' figures still come (no node left waiting for).
    naples.kill();
    milan.until("approdo_bus_nodes_alive", 1).await;
    let without_naples = figures(&mut coordinator).await;
    assert_eq!(without_naples.cases, Cell::Count(5));
}
