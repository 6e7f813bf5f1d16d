//! A client can pin a revocation list it got by other means (the terminal client's
//! `--revocations FILE`, written by `approdo-relay admin revoke`; the page's `/config.json`):
//! a relay serving an older list cannot bring a revoked certificate back. The person's
//! client then refuses the revoked operator, and a list signed by anyone else is refused.

use approdo_client::Driver;
use approdo_core::client::{Client, Event};
use approdo_core::identity::{OrgSigningKey, RevocationList, Role};
use approdo_tests::*;

#[tokio::test]
async fn a_pinned_list_outranks_the_relays_older_one() {
    let org = TestOrg::default();
    // The relay runs with an old, empty list, as a relay not yet updated (or a hostile one)
    // would.
    let old = org.key.sign_revocations(&RevocationList {
        issued_at: 1,
        serials: vec![],
    });
    let relay = TestRelay::start(&org, |c| c.revocations = old).await;
    let credential = org.credential(Role::Operator, &["national"], &["en"]);
    let serial = credential.info.serial;

    // The organisation revokes the operator; the list file is what the terminal client reads.
    let dir = tempfile::tempdir().expect("tempdir");
    let list_path = dir.path().join("revocations.json");
    approdo_relay::admin::revoke(&org.key, &list_path, &[serial]).expect("revoke");
    let text = std::fs::read_to_string(&list_path).expect("read");
    let pinned = approdo_client::parse_revocation_file(&text).expect("a revocation file");
    assert!(approdo_client::parse_revocation_file("{\"body\": \"zz\"}").is_none());

    // A list signed by another key is refused.
    let stranger = OrgSigningKey::generate();
    let foreign = approdo_relay::admin::revoke(&stranger, &dir.path().join("other.json"), &[1])
        .expect("revoke");
    assert!(
        Client::person(org.key.public())
            .add_revocations(&foreign)
            .is_err()
    );

    let mut operator = staff(&relay, &org, credential).await;
    let mut client = Client::person(org.key.public());
    client.add_revocations(&pinned).expect("pinned");
    client.open_session(tag("en"), None).expect("open");
    let mut person = Actor::spawn(
        Driver::connect(&relay.url(), client)
            .await
            .expect("connect"),
    );
    let Event::SessionOpened { session } = person
        .wait_for("session opened", |e| {
            matches!(e, Event::SessionOpened { .. })
        })
        .await
    else {
        unreachable!()
    };
    accept(&mut operator, session).await;
    person
        .wait_for("the revoked operator refused", |e| {
            matches!(e, Event::PeerRejected { .. })
        })
        .await;
    assert!(
        !person.saw(|e| matches!(e, Event::PeerVerified { .. })),
        "never verified"
    );
    relay.stop().await;
}
