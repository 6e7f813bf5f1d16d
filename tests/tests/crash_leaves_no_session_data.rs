//! Killing the relay (SIGKILL) mid-session and starting it again leaves no session data
//! in the store: the crash left sealed records behind, and start-up wipes them. The
//! observatory, filed before the crash, survives intact.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use approdo_client::Driver;
use approdo_core::client::Client;
use approdo_core::identity::Role;
use approdo_core::observatory::{
    Activator, AgeBand, Exploitation, Gender, ObservatoryRecord, Outcome,
};
use approdo_relay::store::{count_records_offline, raw_values_offline};
use approdo_tests::*;

fn start(org_seed: &str, store: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay-under-test"))
        .env("APPRODO_TEST_ORG_SEED", org_seed)
        .env("APPRODO_TEST_STORE", store)
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the relay process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .expect("listening line")
        .to_owned();
    (child, format!("ws://{addr}/ws"))
}

fn sigkill(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill");
    child.wait().expect("reaped");
}

#[tokio::test]
async fn sigkill_then_restart_leaves_no_session_data() {
    let org = TestOrg::default();
    let seed = hex::encode(*org.key.seed());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("sessions");
    let (mut relay, url) = start(&seed, &store);

    let mut op_client = Client::staff(
        org.key.public(),
        org.credential(Role::Operator, &["national"], &["en"]),
    );
    op_client.login().expect("login");
    let mut operator = Actor::spawn(Driver::connect(&url, op_client).await.expect("connect"));
    operator
        .wait_for("login", |e| {
            matches!(e, approdo_core::client::Event::LoggedIn)
        })
        .await;
    let mut pc = Client::person(org.key.public());
    pc.open_session(tag("en"), None).expect("open");
    let mut person = Actor::spawn(Driver::connect(&url, pc).await.expect("connect"));
    let approdo_core::client::Event::SessionOpened { session } = person
        .wait_for("opened", |e| {
            matches!(e, approdo_core::client::Event::SessionOpened { .. })
        })
        .await
    else {
        unreachable!()
    };
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;
    verified(&mut operator, None).await;

    // An earlier case, closed with its observatory record before the crash.
    let mut pc = Client::person(org.key.public());
    pc.open_session(tag("en"), None).expect("open");
    let mut earlier = Actor::spawn(Driver::connect(&url, pc).await.expect("connect"));
    let approdo_core::client::Event::SessionOpened { session: closed } = earlier
        .wait_for("opened", |e| {
            matches!(e, approdo_core::client::Event::SessionOpened { .. })
        })
        .await
    else {
        unreachable!()
    };
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
    sigkill(&mut relay);

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

    let (mut relay, _url) = start(&seed, &store);
    sigkill(&mut relay);
    assert_eq!(
        count_records_offline(&store).expect("read"),
        0,
        "start-up wiped every record"
    );
    assert!(
        !contains(&read_tree(&store), &sealed_event),
        "the old segment files are gone"
    );
}
