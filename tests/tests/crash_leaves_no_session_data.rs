//! Killing the relay (SIGKILL) mid-session and starting it again leaves no session data
//! in the store: the crash left sealed records behind, and start-up wipes them. The
//! observatory, filed before the crash, survives intact.

use approdo_core::identity::Role;
use approdo_core::observatory::{
    Activator, AgeBand, Exploitation, Gender, ObservatoryRecord, Outcome,
};
use approdo_relay::store::{count_records_offline, raw_values_offline};
use approdo_tests::*;

#[tokio::test]
async fn sigkill_then_restart_leaves_no_session_data() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("sessions");
    const BINARY: &str = env!("CARGO_BIN_EXE_relay-under-test");
    let relay = RelayProcess::start(BINARY, &org, &store);
    let url = relay.url.clone();

    let mut operator = staff_at(
        &url,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let (mut person, session) = person_at(&url, &org, "en").await;
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    verified(&mut operator, None).await;

    // An earlier case, closed with its observatory record before the crash.
    let (mut earlier, closed) = person_at(&url, &org, "en").await;
    accept(&mut operator, closed).await;
    verified(&mut earlier, Some(Role::Operator)).await;
    let record = ObservatoryRecord {
        gender: Gender::Male,
        age: AgeBand::From26To35,
        territory_emerged: Some(tag("toscana")),
        territory_exploitation: Some(tag("toscana")),
        exploitation: vec![Exploitation::LabourAgriculture],
        activator: Activator::LabourInspectorUnion,
        outcome: Outcome::MultiAgencyAction,
    };
    let filed = record.clone();
    operator.act(move |c| c.close_case(closed, filed).expect("close"));
    earlier
        .wait_for("ended", |e| {
            matches!(e, approdo_core::client::Event::SessionEnded { .. })
        })
        .await;

    // The person drops; the operator's words are sealed into the store for them.
    person.drop_connection();
    say(&operator, session, "message kept for the person");
    say(&operator, session, "another one");
    // sled writes its log to disk every second; give it two before the crash so there is
    // something on disk for the restart to wipe (checked below, so this cannot pass idly).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    relay.sigkill();

    let left = raw_values_offline(&store).expect("read the crashed store");
    assert!(
        !left.is_empty(),
        "the crash left session records on disk (the test needs some)"
    );
    let sealed_event = left
        .iter()
        .max_by_key(|v| v.len())
        .expect("a value")
        .clone();

    RelayProcess::start(BINARY, &org, &store).sigkill();
    assert_eq!(
        count_records_offline(&store).expect("read"),
        0,
        "start-up wiped every record"
    );
    assert!(
        !contains(&read_tree(&store), &sealed_event),
        "the old segment files are gone"
    );

    // The observatory (beside the store, never wiped) kept the record filed before the crash.
    let mut observatory = store.clone().into_os_string();
    observatory.push("-observatory");
    let records = approdo_relay::observatory::records_offline(std::path::Path::new(&observatory))
        .expect("read the observatory");
    assert_eq!(
        records.len(),
        1,
        "the observatory survives the crash and the restart"
    );
    assert_eq!(records[0].record, record);
}
