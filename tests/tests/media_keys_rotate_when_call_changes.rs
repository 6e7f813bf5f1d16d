//! Frame keys travel end to end over the Noise channels and are drawn afresh whenever the
//! call's membership changes: someone who joins never holds a key used before they joined,
//! someone who left never gets a key used after, and every receiver holds exactly the key
//! its sender encrypts with.

use approdo_core::client::Event;
use approdo_core::identity::Role;
use approdo_core::ids::ParticipantId;
use approdo_tests::media::join_call;
use approdo_tests::*;

/// The newest key `a` holds for `whose` with an epoch above `above`, waiting for it.
async fn key_of(a: &mut Actor, whose: ParticipantId, above: u32) -> (u32, [u8; 16]) {
    let Event::MediaKey { epoch, key, .. } = a
        .seen_or_wait_for("media key", move |e| {
            matches!(e, Event::MediaKey { participant, epoch, .. } if *participant == whose && *epoch > above)
        })
        .await
    else {
        unreachable!()
    };
    (epoch, *key)
}

fn keys_seen(a: &Actor, whose: ParticipantId) -> Vec<(u32, [u8; 16])> {
    let v = std::cell::RefCell::new(Vec::new());
    a.saw(|e| {
        if let Event::MediaKey {
            participant,
            epoch,
            key,
            ..
        } = e
            && *participant == whose
        {
            v.borrow_mut().push((*epoch, **key));
        }
        false
    });
    v.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_keys_rotate_when_call_changes() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut operator = staff(
        &relay,
        &org,
        org.credential(Role::Operator, &["national"], &["ro"]),
    )
    .await;
    let mut interpreter = staff(
        &relay,
        &org,
        org.credential(Role::Interpreter, &["national"], &["ro"]),
    )
    .await;
    let (mut person, session) = person(&relay, &org, "ro").await;
    accept(&mut operator, session).await;
    let person_id = verified(&mut operator, None).await;
    let op_id = verified(&mut person, Some(Role::Operator)).await;
    invite_and_join(&operator, &mut interpreter, session, "ro").await;
    let int_id = verified(&mut operator, Some(Role::Interpreter)).await;
    verified(&mut interpreter, None).await;
    verified(&mut interpreter, Some(Role::Operator)).await;

    // Person and operator in the call: each holds the key the other encrypts with.
    let p_call = join_call(&mut person, session).await;
    let o_call = join_call(&mut operator, session).await;
    let (op_epoch, op_key) = key_of(&mut person, op_id, 0).await;
    assert_eq!(
        key_of(&mut operator, op_id, op_epoch - 1).await,
        (op_epoch, op_key),
        "the person holds the operator's own send key"
    );
    let (p_epoch, p_key) = key_of(&mut operator, person_id, 0).await;
    assert_eq!(
        key_of(&mut person, person_id, p_epoch - 1).await,
        (p_epoch, p_key)
    );

    // The interpreter joins: both draw new keys, and the interpreter gets only those.
    let i_call = join_call(&mut interpreter, session).await;
    let (op_epoch2, op_key2) = key_of(&mut interpreter, op_id, 0).await;
    assert!(
        op_epoch2 > op_epoch,
        "a new operator key for the new member"
    );
    assert_ne!(op_key2, op_key);
    assert_eq!(key_of(&mut person, op_id, op_epoch).await.0, op_epoch2);
    let (p_epoch2, p_key2) = key_of(&mut interpreter, person_id, 0).await;
    assert!(p_epoch2 > p_epoch);
    assert_ne!(p_key2, p_key);
    assert!(
        keys_seen(&interpreter, op_id)
            .iter()
            .all(|(e, k)| *e > op_epoch && *k != op_key),
        "the interpreter never holds a key used before it joined"
    );
    key_of(&mut person, int_id, 0).await;
    key_of(&mut operator, int_id, 0).await;

    // The interpreter leaves the call: new keys for those who stay, none for it.
    interpreter.act(move |c| c.leave_call(session).expect("leave call"));
    let (op_epoch3, op_key3) = key_of(&mut person, op_id, op_epoch2).await;
    assert_ne!(op_key3, op_key2);
    // Anything the operator sent the interpreter after that key would reach it before
    // this message, on the same ordered stream.
    say(&operator, session, "after the interpreter left the call");
    assert_eq!(
        message(&mut interpreter).await.1,
        "after the interpreter left the call"
    );
    assert!(
        keys_seen(&interpreter, op_id)
            .iter()
            .all(|(e, _)| *e < op_epoch3),
        "no key drawn after it left reaches the interpreter"
    );
    for c in [p_call, o_call, i_call] {
        c.close().await;
    }
    relay.stop().await;
}
