//! The admin subcommands create an organisation key (and refuse to overwrite one), issue a
//! passphrase-sealed staff credential whose certificate says what was asked, and revoke
//! it in a list signed by the organisation.

use std::process::Command;

use approdo_core::credential::StaffCredential;
use approdo_core::identity::Role;

fn relay(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_approdo-relay"))
        .args(args)
        .env("TEST_PASSPHRASE", "correct horse battery staple")
        .output()
        .expect("run approdo-relay");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn org_key_issue_and_revoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("org.key");
    let key_s = key.to_str().expect("utf-8");
    let (ok, out) = relay(&["admin", "org-key", "--out", key_s]);
    assert!(ok, "{out}");
    let public = approdo_relay::admin::parse_public_key(out.trim()).expect("prints the public key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, 0o600,
            "the organisation key is readable by its owner only"
        );
    }
    let (ok, _) = relay(&["admin", "org-key", "--out", key_s]);
    assert!(!ok, "an existing organisation key is never overwritten");

    let cred = dir.path().join("anna.credential");
    let (ok, out) = relay(&[
        "admin",
        "issue",
        "--org-key",
        key_s,
        "--role",
        "interpreter",
        "--label",
        "int-anna",
        "--desk",
        "national",
        "--lang",
        "ro",
        "--lang",
        "uk",
        "--days",
        "30",
        "--out",
        cred.to_str().expect("utf-8"),
        "--passphrase-env",
        "TEST_PASSPHRASE",
    ]);
    assert!(ok, "{out}");
    assert!(
        !out.contains("passphrase"),
        "a passphrase given by the caller is not echoed"
    );
    let serial: u64 = out
        .trim()
        .strip_prefix("serial ")
        .expect("serial line")
        .parse()
        .expect("number");
    let text = std::fs::read_to_string(&cred).expect("credential file");
    assert!(
        !text.contains("int-anna"),
        "the certificate is sealed with the keys"
    );
    let c =
        StaffCredential::from_file(&text, "correct horse battery staple", &public).expect("opens");
    assert_eq!(
        (c.info.serial, c.info.role, c.info.label.as_str()),
        (serial, Role::Interpreter, "int-anna")
    );
    assert_eq!(
        c.info
            .languages
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>(),
        ["ro", "uk"]
    );
    assert!(StaffCredential::from_file(&text, "wrong", &public).is_err());

    let list = dir.path().join("revocations.json");
    let (ok, out) = relay(&[
        "admin",
        "revoke",
        "--org-key",
        key_s,
        "--list",
        list.to_str().expect("utf-8"),
        &serial.to_string(),
    ]);
    assert!(ok, "{out}");
    let signed = approdo_relay::admin::load_revocations(&list).expect("list file");
    let revoked = public
        .open_revocations(&signed)
        .expect("signed by the organisation");
    assert_eq!(revoked.serials, vec![serial]);
    assert!(
        public
            .check_certificate(&c.certificate, &revoked, 0)
            .is_err(),
        "the revoked credential is refused"
    );
}
