//! The ephemeral store's record keys and values carry no session id, participant number or
//! sequence number in clear, and a clean shutdown leaves the store directory empty.

use approdo_tests::*;

/// Messages kept for the absent participant.
const KEPT: u64 = 5;

#[tokio::test]
async fn store_records_hide_their_session_and_shutdown_wipes_them() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let Conversation {
        mut person,
        operator,
        session,
    } = Conversation::open(&relay, &org, "en").await;

    drop_until_away(&relay, &person, 1).await;
    let before = relay.inspector.census().stored_records;
    for i in 0..KEPT {
        say(&operator, session, &format!("kept {i}"));
    }
    until_census(&relay, "messages stored", |c| {
        c.stored_records >= before + KEPT as usize
    })
    .await;

    relay.inspector.flush_store().expect("flush");
    let store_dir = relay.inspector.store_dir();
    let mut haystacks = vec![read_tree(&store_dir)];
    haystacks.extend(relay.inspector.raw_store_values());
    for bytes in &haystacks {
        assert!(!contains(bytes, &session.0), "session id in the store");
        // (participant, sequence) big-endian, as a clear record key would hold them.
        for participant in 0u32..8 {
            for seq in 1..=KEPT + 8 {
                let mut pattern = participant.to_be_bytes().to_vec();
                pattern.extend_from_slice(&seq.to_be_bytes());
                assert!(
                    !contains(bytes, &pattern),
                    "participant {participant} and sequence {seq} in clear"
                );
            }
        }
    }

    // The records still serve their purpose: the person comes back and gets every one, in
    // order.
    person.reconnect();
    for i in 0..KEPT {
        assert_eq!(message(&mut person).await.1, format!("kept {i}"));
    }

    // A clean shutdown while records are held leaves nothing in the directory.
    person.drop_connection();
    until_census(&relay, "person away again", |c| c.away_participants == 1).await;
    say(&operator, session, "held at shutdown");
    until_census(&relay, "held", |c| c.stored_records > 0).await;
    relay.inspector.flush_store().expect("flush");
    let _dir = relay.stop().await;
    let left: Vec<_> = std::fs::read_dir(&store_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the store directory still holds {left:?}");
}
