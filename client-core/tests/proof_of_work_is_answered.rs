//! Under a flood the relay may ask the person's client for a proof of work: the client
//! solves it and asks for the session again, by itself — but a relay that keeps asking, or
//! asks too much, gets a "busy" for the page instead of a phone kept busy.

use approdo_core::client::{Client, Event};
use approdo_core::identity::OrgSigningKey;
use approdo_core::ids::Tag;
use approdo_core::limits::MAX_POW_DIFFICULTY;
use approdo_core::pow;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};

fn person() -> Client {
    let mut c = Client::person(OrgSigningKey::from_seed(&[3; 32]).public());
    c.open_session(Tag::new("en").expect("tag"), None)
        .expect("open");
    assert!(matches!(
        c.poll_frame(),
        Some(ClientFrame::OpenSession { .. })
    ));
    c
}

fn frames(c: &mut Client) -> Vec<ClientFrame> {
    std::iter::from_fn(|| c.poll_frame()).collect()
}

#[test]
fn the_client_solves_and_asks_again() {
    let mut c = person();
    let seed = [5u8; 32];
    c.handle_frame(
        RelayFrame::ProofRequired {
            seed,
            difficulty: 10,
        },
        1,
    )
    .expect("handled");
    let out = frames(&mut c);
    let [
        ClientFrame::ProofOfWork { seed: s, nonce },
        ClientFrame::OpenSession { .. },
    ] = &out[..]
    else {
        panic!("expected a proof then the request again, got {out:?}");
    };
    assert_eq!(*s, seed);
    assert!(pow::verify(&seed, 10, *nonce));
}

#[test]
fn too_hard_or_too_often_is_busy() {
    let mut c = person();
    c.handle_frame(
        RelayFrame::ProofRequired {
            seed: [1; 32],
            difficulty: MAX_POW_DIFFICULTY + 1,
        },
        1,
    )
    .expect("handled");
    assert!(
        frames(&mut c)
            .iter()
            .all(|f| !matches!(f, ClientFrame::ProofOfWork { .. }))
    );
    let busy = |c: &mut Client| {
        std::iter::from_fn(|| c.poll_event()).any(|e| {
            matches!(
                e,
                Event::RelayError {
                    code: ErrorCode::Busy
                }
            )
        })
    };
    assert!(busy(&mut c));

    let mut c = person();
    let mut answered = 0;
    for i in 0..10u8 {
        c.handle_frame(
            RelayFrame::ProofRequired {
                seed: [i; 32],
                difficulty: 1,
            },
            1,
        )
        .expect("handled");
        answered += frames(&mut c)
            .iter()
            .filter(|f| matches!(f, ClientFrame::ProofOfWork { .. }))
            .count();
    }
    assert_eq!(answered, 3, "a few proofs per request, not one per demand");
    assert!(busy(&mut c));
}
