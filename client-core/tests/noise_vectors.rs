//! The two Noise patterns Approdo uses pass the standard (cacophony) test vectors,
//! message by message and including the handshake hash.

use serde_json::Value;
use snow::Builder;

use approdo_core::noise::{PATTERN_PERSON, PATTERN_STAFF};

fn h(v: &Value, k: &str) -> Option<Vec<u8>> {
    v.get(k)
        .and_then(Value::as_str)
        .map(|s| hex::decode(s).expect("hex"))
}

/// One side's handshake state from a vector (`prefix` is `init` or `resp`): its prologue,
/// its fixed ephemeral key and its static key if the pattern has one.
fn side(v: &Value, name: &str, prefix: &str) -> snow::HandshakeState {
    let prologue = h(v, &format!("{prefix}_prologue")).expect("prologue");
    let ephemeral = h(v, &format!("{prefix}_ephemeral")).expect("ephemeral");
    let static_key = h(v, &format!("{prefix}_static"));
    let mut b = Builder::new(name.parse().expect("params"))
        .prologue(&prologue)
        .expect("prologue")
        .fixed_ephemeral_key_for_testing_only(&ephemeral);
    if let Some(s) = &static_key {
        b = b.local_private_key(s).expect("static");
    }
    if prefix == "init" {
        b.build_initiator()
    } else {
        b.build_responder()
    }
    .expect("handshake state")
}

#[test]
fn nx_and_xx_pass_the_cacophony_vectors() {
    let text = include_str!("vectors/cacophony-approdo.json");
    let doc: Value = serde_json::from_str(text).expect("json");
    let vectors = doc["vectors"].as_array().expect("vectors");
    let mut seen = Vec::new();
    for v in vectors {
        let name = v["protocol_name"].as_str().expect("name");
        assert!(
            name == PATTERN_PERSON || name == PATTERN_STAFF,
            "only our patterns are kept"
        );
        seen.push(name.to_owned());
        let mut init = side(v, name, "init");
        let mut resp = side(v, name, "resp");

        let messages = v["messages"].as_array().expect("messages");
        let mut buf = vec![0u8; 65_535];
        let mut out = vec![0u8; 65_535];
        let mut i = 0;
        // Handshake phase: alternate initiator, responder, …
        while !(init.is_handshake_finished() && resp.is_handshake_finished()) {
            let m = &messages[i];
            let payload = h(m, "payload").expect("payload");
            let expected = h(m, "ciphertext").expect("ciphertext");
            let (w, r) = if i % 2 == 0 {
                (&mut init, &mut resp)
            } else {
                (&mut resp, &mut init)
            };
            let n = w.write_message(&payload, &mut buf).expect("write");
            assert_eq!(&buf[..n], &expected[..], "{name} message {i}");
            let p = r.read_message(&buf[..n], &mut out).expect("read");
            assert_eq!(&out[..p], &payload[..]);
            i += 1;
        }
        assert_eq!(
            init.get_handshake_hash(),
            &h(v, "handshake_hash").expect("hash")[..],
            "{name} handshake hash"
        );
        assert_eq!(resp.get_handshake_hash(), init.get_handshake_hash());
        // Transport phase, with the same alternation.
        let mut it = init.into_transport_mode().expect("transport");
        let mut rt = resp.into_transport_mode().expect("transport");
        for (j, m) in messages.iter().enumerate().skip(i) {
            let payload = h(m, "payload").expect("payload");
            let expected = h(m, "ciphertext").expect("ciphertext");
            let (w, r) = if j % 2 == 0 {
                (&mut it, &mut rt)
            } else {
                (&mut rt, &mut it)
            };
            let n = w.write_message(&payload, &mut buf).expect("write");
            assert_eq!(&buf[..n], &expected[..], "{name} transport message {j}");
            let p = r.read_message(&buf[..n], &mut out).expect("read");
            assert_eq!(&out[..p], &payload[..]);
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![PATTERN_PERSON.to_owned(), PATTERN_STAFF.to_owned()]
    );
}
