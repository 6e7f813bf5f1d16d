//! A configuration whose `max_unacked` is below one person's whole burst (frame_burst
//! six-message frames, plus the send window) is refused at start with a clear error: with
//! it, a person could get the operator disconnected.

#[test]
fn max_unacked_below_a_burst_is_refused() {
    let org = approdo_core::identity::OrgSigningKey::generate();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = approdo_relay::admin::demo_config(&org, dir.path().join("s"));
    config.validate().expect("the defaults hold");

    config.limits.max_unacked = 4096;
    let refused = config.validate().expect_err("4096 is below 1000 × 6 + 256");
    assert!(refused.to_string().contains("max_unacked"), "{refused}");

    // A deployment that lowers the burst may lower the cap with it.
    config.limits.frame_burst = 100.0;
    config.validate().expect("100 × 6 + 256 fits in 4096");
}
