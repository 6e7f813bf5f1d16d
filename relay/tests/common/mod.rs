//! What the relay's tests that run the `approdo-relay` binary share.

use std::net::TcpListener;
use std::process::Child;

/// Stops the relay when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port free on loopback now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A fresh organisation key and a signed revocation list in `dir`, as `serve` needs them:
/// the public key in hex and the list's path.
pub fn org_files(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let org = approdo_relay::admin::create_org_key(&dir.join("org.key")).expect("org key");
    let key = approdo_relay::admin::load_org_key(&dir.join("org.key")).expect("read");
    let revocations = dir.join("revocations.json");
    approdo_relay::admin::revoke(&key, &revocations, &[0]).expect("a revocation list");
    (hex::encode(org.0), revocations)
}
