//! Renewing the self-signed certificate changes `/config.json` (it lists the certificates'
//! hashes), and the relay recomputes what covers it: the integrity manifest's entry for
//! `/config.json` matches the new file, and `/bundle.sha256` matches the bundle as served
//! (recomputed here the way `scripts/bundle-hash` does). The certificate served next is the
//! one pages loaded before the renewal already pin.

use approdo_tests::tls::{http_get, listed_hashes, served_certificate, sha256};
use approdo_tests::*;
use base64::Engine;
use sha2::Digest;

/// The bundle hash of what the relay serves, as `scripts/bundle-hash` computes it.
async fn recompute_bundle_hash(relay: &TestRelay) -> String {
    let manifest = http_get(relay.addr, "/integrity.json").await;
    let manifest: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&manifest.body).expect("manifest");
    let mut paths: Vec<String> = manifest.keys().cloned().collect();
    for extra in ["/index.html", "/desk.html", "/exit.html", "/integrity.json"] {
        paths.push(extra.into());
    }
    paths.sort();
    paths.dedup();
    let mut all = Vec::new();
    for path in paths {
        let url = match path.as_str() {
            "/index.html" => "/",
            "/desk.html" => "/desk",
            "/exit.html" => "/exit",
            p => p,
        };
        let body = http_get(relay.addr, url).await.body;
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(hex::encode(sha2::Sha256::digest(&body)).as_bytes());
        all.push(b'\n');
    }
    hex::encode(sha2::Sha256::digest(&all))
}

/// The manifest's entry for `/config.json` and the SRI of `/config.json` as served.
async fn config_integrity(relay: &TestRelay) -> (String, String, Vec<u8>) {
    let manifest = http_get(relay.addr, "/integrity.json").await;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.body).expect("manifest");
    let listed = manifest["/config.json"]
        .as_str()
        .expect("the manifest lists /config.json")
        .to_owned();
    let config = http_get(relay.addr, "/config.json").await.body;
    let actual = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&config))
    );
    (listed, actual, config)
}

async fn published(relay: &TestRelay) -> String {
    let body = http_get(relay.addr, "/bundle.sha256").await.body;
    String::from_utf8(body).expect("text").trim().to_owned()
}

#[tokio::test]
async fn a_renewal_updates_config_integrity_and_bundle_hash() {
    assert!(
        approdo_relay::pages::built(),
        "this test needs the pages built in: run scripts/build-web, then rebuild"
    );
    let org = TestOrg::default();
    let relay = TestRelay::start_https(&org, |_| {}).await;
    let https = relay.https.expect("https");

    let (listed, actual, before_config) = config_integrity(&relay).await;
    assert_eq!(listed, actual, "before: the manifest matches /config.json");
    let before_hashes = listed_hashes(&before_config);
    let before_bundle = published(&relay).await;
    assert_eq!(before_bundle, recompute_bundle_hash(&relay).await);

    let renewed = relay
        .inspector
        .renew_certificate()
        .expect("renewed")
        .expect("a new bundle hash");

    let (listed, actual, after_config) = config_integrity(&relay).await;
    assert_eq!(
        listed, actual,
        "after: the manifest matches the new /config.json"
    );
    let after_hashes = listed_hashes(&after_config);
    assert_eq!(after_hashes.len(), 2);
    assert_eq!(
        after_hashes[0], before_hashes[1],
        "the next certificate became the current one"
    );
    assert_ne!(after_hashes[1], before_hashes[1], "a new next one was made");
    assert_eq!(
        sha256(&served_certificate(https).await),
        after_hashes[0],
        "new connections get the renewed certificate"
    );

    let after_bundle = published(&relay).await;
    assert_ne!(after_bundle, before_bundle, "the bundle hash changed");
    assert_eq!(
        after_bundle, renewed,
        "the relay reported the hash it serves"
    );
    assert_eq!(after_bundle, recompute_bundle_hash(&relay).await);
    relay.stop().await;
}
