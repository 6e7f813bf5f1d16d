//! The relay checks the DTLS certificate of a call member against the fingerprint in its
//! offer: someone who alters the offer on the way (or answers DTLS in another's place)
//! gets no media connection.

use std::time::Instant;

use approdo_core::client::Event;
use approdo_tests::media::NativeCaller;
use approdo_tests::{Conversation, TestOrg, TestRelay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_refuses_a_wrong_dtls_fingerprint() {
    let org = TestOrg::default();
    let relay = TestRelay::start(&org, |_| {}).await;
    let mut conv = Conversation::open(&relay, &org, "en").await;
    let session = conv.session;
    let (caller, offer) = NativeCaller::offer(Instant::now(), false)
        .await
        .expect("offer");
    // Replace the certificate fingerprint with another of the same shape.
    let forged: String = offer
        .lines()
        .map(|l| match l.strip_prefix("a=fingerprint:sha-256 ") {
            Some(fp) => {
                let flipped: String = fp
                    .chars()
                    .map(|c| match c {
                        '0' => '1',
                        '1' => '0',
                        'A' => 'B',
                        'B' => 'A',
                        other => other,
                    })
                    .collect();
                assert_ne!(flipped, fp, "the fingerprint changed");
                format!("a=fingerprint:sha-256 {flipped}\r\n")
            }
            None => format!("{l}\r\n"),
        })
        .collect();
    assert_ne!(forged, offer);
    conv.person
        .act(move |c| c.join_call(session, &forged).expect("join call"));
    let Event::CallAnswer { sdp, .. } = conv
        .person
        .wait_for("call answer", |e| matches!(e, Event::CallAnswer { .. }))
        .await
    else {
        unreachable!()
    };
    let result = caller.answer(sdp).await;
    assert!(
        result.is_err(),
        "a media connection came up with a certificate the offer did not name"
    );
    // The chat is unaffected.
    conv.still_talking("after the refused call").await;
    caller.close().await;
    relay.stop().await;
}
