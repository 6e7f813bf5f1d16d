//! deploy/'s coturn files keep the promises of deploy/README.md section 11: no log of any
//! kind, no admin console, the shared secret never in the file itself (the drop-in adds it
//! from the same file the relay's `[turn]` names), peers limited to the SFU, and the test
//! harness's coturn starts with the same privacy options.

const CONF: &str = include_str!("../../deploy/turnserver.conf");
const DROP_IN: &str = include_str!("../../deploy/coturn-approdo.conf");
const EXAMPLE: &str = include_str!("../../deploy/relay.example.toml");
const HARNESS: &str = include_str!("../../tests/browser/harness.mjs");

fn options(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn coturn_logs_nothing_and_relays_only_to_the_sfu() {
    let conf = options(CONF);
    for needed in [
        "use-auth-secret",
        "no-cli",
        "log-file=/dev/null",
        "simple-log",
        "no-stdout-log",
        "no-tcp-relay",
        "denied-peer-ip=0.0.0.0-255.255.255.255",
        "denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        assert!(conf.contains(&needed), "turnserver.conf has {needed}");
        let in_harness = format!("\"{needed}\"");
        if !needed.starts_with("denied") && needed != "use-auth-secret" {
            assert!(
                HARNESS.contains(&in_harness) || HARNESS.contains(needed),
                "the test coturn has {needed} too"
            );
        }
    }
    assert_eq!(
        conf.iter()
            .filter(|l| l.starts_with("allowed-peer-ip="))
            .count(),
        1,
        "exactly one allowed peer: the SFU"
    );
    for never in [
        "static-auth-secret",
        "allow-loopback-peers",
        "syslog",
        "verbose",
    ] {
        assert!(
            !conf.iter().any(|l| l.starts_with(never)),
            "turnserver.conf must not have {never}"
        );
    }
}

#[test]
fn the_drop_in_reads_the_relays_secret_file_and_discards_output() {
    let secret = EXAMPLE
        .lines()
        .find_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("secret_file = ")
        })
        .expect("the example names a secret file")
        .trim_matches('"');
    let drop_in = options(DROP_IN);
    assert!(drop_in.contains(&format!("LoadCredential=turn-secret:{secret}").as_str()));
    assert!(drop_in.contains(&"StandardOutput=null"));
    assert!(drop_in.contains(&"StandardError=null"));
    // The real configuration is built in the runtime directory, and coturn started on it.
    assert!(drop_in.contains(&"RuntimeDirectory=approdo-turn"));
    assert!(
        drop_in.contains(&"ExecStart="),
        "Debian's ExecStart is replaced"
    );
    assert!(
        drop_in
            .iter()
            .any(|l| l.starts_with("ExecStart=/usr/bin/turnserver -c /run/approdo-turn/"))
    );
}
