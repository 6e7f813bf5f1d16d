//! The example configuration shipped in `deploy/` parses with the relay's strict parser,
//! lists every limit, and a misspelt key is refused rather than ignored.

use approdo_relay::config::{ConfigFile, Limits};

#[test]
fn the_deploy_example_is_a_valid_configuration() {
    let text = include_str!("../../deploy/relay.example.toml");
    let file: ConfigFile = toml::from_str(text).expect("deploy/relay.example.toml parses");
    assert_eq!(
        file.desks[0].id.as_str(),
        "national",
        "the national desk comes first"
    );
    assert_eq!(
        file.client_address_header, None,
        "the relay serves HTTPS itself; the proxy header is only for the optional proxy"
    );
    let defaults = toml::to_string(&Limits::default()).expect("serialise");
    for line in defaults.lines() {
        let key = line.split('=').next().expect("key").trim();
        assert!(
            text.contains(&format!("{key} =")),
            "the example documents limit {key}"
        );
    }
    let typo = text.replace("idle_timeout_secs", "idle_timout_secs");
    assert!(
        toml::from_str::<ConfigFile>(&typo).is_err(),
        "a misspelt key is an error"
    );
}

/// The commented-out `[turn]` block of the example, uncommented, parses and holds URLs the
/// relay accepts.
#[test]
fn the_deploy_example_turn_block_is_valid() {
    let text = include_str!("../../deploy/relay.example.toml");
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "# [turn]")
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim_start())
        .collect();
    assert!(!block.is_empty(), "the example documents [turn]");
    let with_turn = format!("{text}\n{}\n", block.join("\n"));
    let file: ConfigFile = toml::from_str(&with_turn).expect("the [turn] block parses");
    let turn = file.turn.expect("[turn]");
    assert_eq!(turn.secret_file.to_str(), Some("/etc/approdo/turn-secret"));
    assert!(
        approdo_relay::turn::Turn::new(turn.urls, b"0123456789abcdef", turn.lifetime_secs).is_ok(),
        "URLs and lifetime pass the relay's checks"
    );
}

/// The commented-out `[bus]` block of the example, uncommented, parses, names a valid node
/// and an encrypted bus, and points at the files `admin bus-node` and the README describe.
#[test]
fn the_deploy_example_bus_block_is_valid() {
    let text = include_str!("../../deploy/relay.example.toml");
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "# [bus]")
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim_start())
        .collect();
    assert!(!block.is_empty(), "the example documents [bus]");
    let with_bus = format!("{text}\n{}\n", block.join("\n"));
    let file: ConfigFile = toml::from_str(&with_bus).expect("the [bus] block parses");
    let bus = file.bus.expect("[bus]");
    assert!(approdo_relay::bus::valid_node_name(&bus.node));
    assert!(bus.url.starts_with("tls://"));
    assert_eq!(
        bus.nkey_seed_file.to_str(),
        Some("/etc/approdo/nats-node.nk")
    );
    let readme = include_str!("../../deploy/README.md");
    assert!(readme.contains("--out /etc/approdo/nats-node.nk"));
}
