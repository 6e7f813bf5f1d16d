//! A core dump of the live relay (`gcore`), taken after a session in which canaries went
//! both ways (one of them kept in the store for a participant who was away), holds neither
//! canary: the relay only ever handled Noise ciphertext. The dump does hold the relay's
//! configuration, which shows it is a real, searchable image of the process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use approdo_client::Driver;
use approdo_core::client::{Client, Event};
use approdo_core::identity::Role;
use approdo_tests::*;

const TO_OPERATOR: &str = "CANARY-to-operator-3f9a1c77";
const TO_PERSON: &str = "CANARY-to-person-8b2e40d1";

#[tokio::test]
async fn a_core_dump_after_the_session_holds_no_canary() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut relay = Command::new(env!("CARGO_BIN_EXE_relay-under-test"))
        .env("APPRODO_TEST_ORG_SEED", hex::encode(*org.key.seed()))
        .env("APPRODO_TEST_STORE", dir.path().join("sessions"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the relay process");
    let mut line = String::new();
    BufReader::new(relay.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let url = format!(
        "ws://{}/ws",
        line.trim()
            .strip_prefix("listening ")
            .expect("listening line")
    );

    let mut oc = Client::staff(
        org.key.public(),
        org.credential(Role::Operator, &["national"], &["en"]),
    );
    oc.login().expect("login");
    let mut operator = Actor::spawn(Driver::connect(&url, oc).await.expect("connect"));
    operator
        .wait_for("login", |e| matches!(e, Event::LoggedIn))
        .await;
    let mut pc = Client::person(org.key.public());
    pc.open_session(tag("en"), None).expect("open");
    let mut person = Actor::spawn(Driver::connect(&url, pc).await.expect("connect"));
    let Event::SessionOpened { session } = person
        .wait_for("opened", |e| matches!(e, Event::SessionOpened { .. }))
        .await
    else {
        unreachable!()
    };
    accept(&mut operator, session).await;
    verified(&mut person, Some(Role::Operator)).await;

    say(&person, session, TO_OPERATOR);
    assert_eq!(message(&mut operator).await.1, TO_OPERATOR);
    // Kept for the person in the relay's store while they are away, then delivered.
    person.drop_connection();
    say(&operator, session, TO_PERSON);
    person.reconnect();
    assert_eq!(message(&mut person).await.1, TO_PERSON);
    operator.act(move |c| c.end(session).expect("end"));
    person
        .wait_for("ended", |e| matches!(e, Event::SessionEnded { .. }))
        .await;

    let core = dir.path().join("core");
    // gcore is gdb; skipping the debug symbols (not needed for a dump) saves minutes.
    let status = Command::new("gdb")
        .args([
            "--readnever",
            "--batch",
            "--nx",
            "-p",
            &relay.id().to_string(),
            "-ex",
        ])
        .arg(format!("gcore {}.{}", core.display(), relay.id()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run gcore (gdb)");
    let _ = relay.kill();
    let _ = relay.wait();
    assert!(status.success(), "gcore failed");
    let dump = std::fs::read(format!("{}.{}", core.display(), relay.id())).expect("the core file");
    assert!(
        contains(&dump, b"Numero Verde Antitratta"),
        "the dump is a real image of the relay"
    );
    assert!(
        !contains(&dump, TO_OPERATOR.as_bytes()),
        "the person's words are in the relay's memory"
    );
    assert!(
        !contains(&dump, TO_PERSON.as_bytes()),
        "the operator's words are in the relay's memory"
    );
}
