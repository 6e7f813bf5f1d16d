//! The metrics listener is off unless configured: the example configuration leaves
//! `metrics_listen` commented out, and its commented line, once uncommented, is a loopback
//! address the relay accepts.

use approdo_relay::config::ConfigFile;

const EXAMPLE: &str = include_str!("../../deploy/relay.example.toml");

#[test]
fn metrics_are_off_by_default_and_the_example_line_is_loopback() {
    let file: ConfigFile = toml::from_str(EXAMPLE).expect("the example parses");
    assert_eq!(file.metrics_listen, None, "off unless configured");

    let commented = "# metrics_listen = \"127.0.0.1:9464\"";
    assert!(EXAMPLE.contains(commented), "the example shows the key");
    let enabled = EXAMPLE.replace(commented, &commented[2..]);
    let file: ConfigFile = toml::from_str(&enabled).expect("the uncommented example parses");
    let addr: std::net::SocketAddr = file
        .metrics_listen
        .as_deref()
        .expect("metrics_listen set")
        .parse()
        .expect("an address");
    assert!(addr.ip().is_loopback(), "the example keeps metrics private");
    assert_eq!(addr.port(), 9464);
}
