//! Languages and territories come from the configuration only: `OpenSession` in an unknown
//! language or region, and `Invite` for an unknown language, get `NotAllowed` (the
//! connection stays open). No region still means the national desk.

mod switchboard_harness;

use approdo_core::PROTOCOL_VERSION;
use approdo_core::wire::{ClientFrame, ErrorCode, RelayFrame};
use switchboard_harness::{Bench, Wired, honest_pair, tag};

fn open(b: &mut Bench, conn: u64, language: &str, region: Option<&str>) -> (Vec<RelayFrame>, bool) {
    b.frame(
        conn,
        &ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: tag(language),
            region: region.map(tag),
        },
    );
    let out = b.outputs();
    (Bench::to(&out, conn), Bench::closes(&out, conn))
}

fn not_allowed(frames: &[RelayFrame]) -> bool {
    frames
        == [RelayFrame::Error {
            code: ErrorCode::NotAllowed,
        }]
}

#[test]
fn unknown_languages_and_regions_are_not_allowed() {
    let mut b = Bench::new(|_| {});
    b.connect(7);
    let long = "a".repeat(32);
    for (language, region) in [
        ("klingon", None),
        (long.as_str(), None),
        ("en", Some("atlantis")),
        ("en", Some(long.as_str())),
    ] {
        let (answer, closed) = open(&mut b, 7, language, region);
        assert!(not_allowed(&answer), "{language} {region:?}: {answer:?}");
        assert!(!closed, "NotAllowed leaves the connection open");
    }
    assert_eq!(b.sb.census().sessions, 0);
    // The same connection then opens a session properly, in a region and without one.
    let (answer, _) = open(&mut b, 7, "pcm", Some("toscana"));
    assert!(
        answer
            .iter()
            .any(|f| matches!(f, RelayFrame::SessionOpened { .. })),
        "{answer:?}"
    );
    b.connect(8);
    let (answer, _) = open(&mut b, 8, "ur", None);
    assert!(
        answer
            .iter()
            .any(|f| matches!(f, RelayFrame::SessionOpened { .. }))
    );
}

#[test]
fn inviting_for_an_unknown_language_is_not_allowed() {
    let mut b = Bench::new(|_| {});
    let mut w = Wired::new();
    let session = honest_pair(&mut b, &mut w);
    b.frame(
        2,
        &ClientFrame::Invite {
            session,
            language: tag("xx-made-up"),
        },
    );
    let out = b.outputs();
    assert!(not_allowed(&Bench::to(&out, 2)));
    assert!(!Bench::closes(&out, 2));
    b.frame(
        2,
        &ClientFrame::Invite {
            session,
            language: tag("ro"),
        },
    );
    let out = b.outputs();
    assert!(
        Bench::to(&out, 2)
            .iter()
            .all(|f| !matches!(f, RelayFrame::Error { .. }))
    );
}
