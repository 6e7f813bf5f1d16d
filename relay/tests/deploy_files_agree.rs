//! deploy/ cannot drift: the example configuration goes through the relay's own loader
//! (`ConfigFile::tls_source`, the addresses `load` parses), and every path it names is one
//! the systemd unit's sandbox lets the relay use: the store in `RuntimeDirectory=`, the
//! observatory in `StateDirectory=` (both writable under `ProtectSystem=strict`), the
//! certificate files under `/etc` (read-only, not hidden); port 443 comes with
//! `CAP_NET_BIND_SERVICE`; `systemctl reload` sends the SIGHUP that reloads the certificate.
//! The README's commands and claims name the same paths and lines.

use std::path::Path;

use approdo_relay::config::ConfigFile;
use approdo_relay::tls::TlsSource;

const CONFIG: &str = include_str!("../../deploy/relay.example.toml");
const UNIT: &str = include_str!("../../deploy/approdo-relay.service");
const README: &str = include_str!("../../deploy/README.md");

/// The values of `key=` lines in the unit (the last one wins in systemd, so all are kept).
fn unit_values(key: &str) -> Vec<String> {
    UNIT.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

fn unit_value(key: &str) -> String {
    let values = unit_values(key);
    assert_eq!(values.len(), 1, "one {key}= line in the unit: {values:?}");
    values[0].clone()
}

#[test]
fn the_unit_lets_the_relay_use_what_the_example_configures() {
    let file: ConfigFile = toml::from_str(CONFIG).expect("the example parses");
    let source = file.tls_source().expect("the TLS keys agree");
    let Some(TlsSource::Files { cert, key }) = source else {
        panic!("the example serves a certificate from files: {source:?}");
    };
    let https: std::net::SocketAddr = file
        .https_listen
        .as_deref()
        .expect("https_listen")
        .parse()
        .expect("an address");
    assert_eq!(https.port(), 443);
    let listen: std::net::SocketAddr = file.listen.parse().expect("an address");
    assert!(listen.ip().is_loopback(), "plain HTTP stays on loopback");
    let quic: std::net::SocketAddr = file
        .quic_listen
        .as_deref()
        .expect("the example serves QUIC")
        .parse()
        .expect("an address");
    assert_eq!(
        quic.port(),
        443,
        "QUIC on UDP 443, as the firewall section says"
    );

    // Writable places: the store in the runtime dir, the observatory in the state dir.
    let runtime = Path::new("/run").join(unit_value("RuntimeDirectory"));
    let state = Path::new("/var/lib").join(unit_value("StateDirectory"));
    assert!(file.store_dir.starts_with(&runtime), "{:?}", file.store_dir);
    assert!(
        file.observatory_dir.starts_with(&state),
        "{:?} must be under the StateDirectory {state:?}",
        file.observatory_dir
    );
    assert_eq!(unit_value("ProtectSystem"), "strict");
    for dir in unit_values("ReadWritePaths") {
        assert!(!dir.is_empty());
    }

    // Readable places: /etc is read-only under ProtectSystem=strict, unless hidden.
    let hidden = unit_values("InaccessiblePaths");
    for path in [&cert, &key, &file.revocations] {
        assert!(
            path.starts_with("/etc/approdo"),
            "{path:?} lies under /etc/approdo"
        );
        assert!(
            hidden.iter().all(|h| !path.starts_with(h)),
            "{path:?} is not hidden by InaccessiblePaths"
        );
    }
    assert_ne!(
        unit_value("ProtectHome"),
        "no",
        "nothing configured lives in /home"
    );

    // The certificate is readable by the relay's user and group, not by everyone.
    let user = unit_value("User");
    assert_eq!(unit_value("Group"), user);
    assert!(
        unit_values("DynamicUser").is_empty(),
        "a static user the key's group names"
    );
    assert!(
        README.contains(&format!("-o root -g {user} /etc/approdo/tls")),
        "the README creates the certificate directory for group {user}"
    );
    assert!(README.contains("useradd --system"));

    // Port 443 needs the capability, kept and granted.
    assert!(https.port() < 1024);
    assert_eq!(unit_value("AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
    assert_eq!(unit_value("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");

    // Reload is SIGHUP, which re-reads the certificate files.
    assert_eq!(unit_value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(README.contains("systemctl reload approdo-relay"));

    // The README names the paths the example uses, and the firewall ports.
    for path in [&cert, &key] {
        let path = path.to_str().expect("utf-8");
        assert!(README.contains(path), "the README installs {path}");
    }
    for claim in [
        "TCP 443",
        "UDP 443",
        "StateDirectory=",
        "RuntimeDirectory=",
        "CAP_NET_BIND_SERVICE",
        "Strict-Transport-Security: max-age=63072000; includeSubDomains",
    ] {
        assert!(README.contains(claim), "the README says {claim}");
    }
    assert_eq!(
        approdo_relay::tls::HSTS,
        "max-age=63072000; includeSubDomains"
    );
}
