//! The relay's store never holds a canary in plaintext, nor even the Noise ciphertext it
//! routed: what it keeps for an absent participant is sealed under a per-session key. When
//! the session ends the records are removed and the key is gone.

use approdo_tests::*;

const CANARY: &str = "CANARY-b7e1d3f0-approdo-store-test";

#[tokio::test]
async fn store_keeps_sealed_records_only_and_forgets_them_at_the_end() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let Conversation {
        mut person,
        operator,
        session,
    } = Conversation::open(&relay, &org, "en").await;

    // The person's phone loses the network; what the operator says now waits in the store.
    drop_until_away(&relay, &person, 1).await;
    let before = relay.inspector.census().stored_records;
    let ciphertexts = say_and_capture(&operator, session, CANARY).await;
    assert_eq!(ciphertexts.len(), 1);
    until_census(&relay, "canary stored", |c| c.stored_records > before).await;

    relay.inspector.flush_store().expect("flush");
    let files = read_tree(&relay.inspector.store_dir());
    let values = relay.inspector.raw_store_values();
    assert!(!values.is_empty());
    for v in &values {
        assert!(
            !contains(v, CANARY.as_bytes()),
            "plaintext canary in the store"
        );
        assert!(
            !contains(v, &ciphertexts[0]),
            "unsealed Noise ciphertext in the store"
        );
    }
    assert!(
        !contains(&files, CANARY.as_bytes()),
        "plaintext canary in the store files"
    );
    assert!(
        !contains(&files, &ciphertexts[0]),
        "unsealed Noise ciphertext in the store files"
    );

    // The person comes back and still gets the message (the sealing is reversible while
    // the session lives).
    person.reconnect();
    assert_eq!(message(&mut person).await.1, CANARY);

    // The operator hangs up: every record is removed and the session key wiped.
    operator.act(move |c| c.end(session).expect("end"));
    until_census(&relay, "session gone", |c| c.sessions == 0).await;
    let c = relay.inspector.census();
    assert_eq!(c.stored_records, 0, "records removed");
    assert_eq!(c.session_keys, 0, "session key wiped");
    relay.inspector.flush_store().expect("flush");
    assert!(!contains(
        &read_tree(&relay.inspector.store_dir()),
        CANARY.as_bytes()
    ));
    relay.stop().await;
}
