//! A core dump of the live relay (`gcore`), taken after a session in which canaries went
//! both ways (one of them kept in the store for a participant who was away), holds neither
//! canary: the relay only ever handled Noise ciphertext. The dump does hold the relay's
//! configuration, which shows it is a real, searchable image of the process.

use std::process::{Command, Stdio};

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_tests::*;

const TO_OPERATOR: &str = "CANARY-to-operator-3f9a1c77";
const TO_PERSON: &str = "CANARY-to-person-8b2e40d1";

#[tokio::test]
async fn a_core_dump_after_the_session_holds_no_canary() {
    let org = TestOrg::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = RelayProcess::start(
        env!("CARGO_BIN_EXE_relay-under-test"),
        &org,
        &dir.path().join("sessions"),
    );
    let mut operator = staff_at(
        &relay.url,
        &org,
        org.credential(Role::Operator, &["national"], &["en"]),
    )
    .await;
    let (mut person, session) = person_at(&relay.url, &org, "en").await;
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
            &relay.pid().to_string(),
            "-ex",
        ])
        .arg(format!("gcore {}.{}", core.display(), relay.pid()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run gcore (gdb)");
    let dump_path = format!("{}.{}", core.display(), relay.pid());
    relay.sigkill();
    assert!(status.success(), "gcore failed");
    let dump = std::fs::read(dump_path).expect("the core file");
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
