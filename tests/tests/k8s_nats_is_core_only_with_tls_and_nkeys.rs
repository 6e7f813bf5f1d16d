//! NATS in `deploy/k8s/` is what `deploy/README.md` promises: JetStream off (nothing
//! stored), TLS on clients and routes, and NKey users.

mod k8s;

use std::path::Path;

use k8s::*;

#[test]
fn nats_is_core_only_with_tls_and_nkeys() {
    let docs = manifests();
    let sts = find(&docs, "StatefulSet", NATS_NAMESPACE, "nats");
    let pod = &sts["spec"]["template"]["spec"];
    let container = &list(&pod["containers"])[0];
    let image = text(&container["image"]);
    assert!(image.starts_with("nats:"), "the official image: {image}");

    let command = strings(&container["command"]);
    let at = command
        .iter()
        .position(|a| *a == "--config")
        .expect("nats-server --config <file>");
    let conf_path = Path::new(command[at + 1]);
    let conf_dir = conf_path.parent().expect("a directory");
    let conf_volume = volume_of(pod, container, conf_path);
    let sources = list(&conf_volume["projected"]["sources"]);
    let source_named = |key: &str, field: &str| {
        sources
            .iter()
            .map(|s| text(&s[key]["name"]))
            .find(|n| !n.is_empty())
            .unwrap_or_else(|| panic!("the config volume projects a {key} ({field})"))
            .to_owned()
    };
    let config_map = source_named("configMap", "nats.conf");
    let auth_secret = source_named("secret", "auth.conf");
    let file_name = conf_path
        .file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned();
    let conf =
        text(&find(&docs, "ConfigMap", NATS_NAMESPACE, &config_map)["data"][file_name.as_str()])
            .to_owned();

    // Lines without comments, `key: value` or `key = value` alike.
    let lines: Vec<String> = conf
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .replace(" = ", ": ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    let jetstream: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("jetstream"))
        .collect();
    assert_eq!(
        jetstream,
        ["jetstream: disabled"],
        "JetStream is switched off explicitly, and nowhere on"
    );

    // TLS on clients and on routes, from the nats-tls Secret's mount.
    let tls_blocks = lines.iter().filter(|l| l.starts_with("tls {")).count();
    assert_eq!(tls_blocks, 2, "a tls block for clients and one for routes");
    assert!(
        lines.iter().any(|l| l == "verify: true"),
        "routes verify each other"
    );
    for line in lines.iter().filter(|l| l.contains("_file: \"")) {
        let path = line.split('"').nth(1).expect("a quoted path");
        let (object, _) = object_key(pod, container, Path::new(path));
        assert_eq!(object, "nats-tls", "{line}");
    }
    find(&docs, "Secret", NATS_NAMESPACE, "nats-tls");

    // NKey users, from the projected Secret, included next to nats.conf.
    assert!(
        lines.iter().any(|l| l == "include \"auth.conf\""),
        "nats.conf includes auth.conf"
    );
    assert_eq!(
        text(&volume_of(pod, container, &conf_dir.join("auth.conf"))["name"]),
        text(&conf_volume["name"]),
        "auth.conf sits beside nats.conf"
    );
    let auth =
        text(&find(&docs, "Secret", NATS_NAMESPACE, &auth_secret)["stringData"]["auth.conf"]);
    assert!(auth.contains("nkey:"), "clients authenticate with NKeys");
    let users: Vec<&str> = auth.lines().filter(|l| l.contains("nkey:")).collect();
    assert!(!users.is_empty(), "NATS lists its users");
    for user in users {
        let node = user
            .rsplit_once("# node ")
            .map(|(_, n)| n.trim())
            .unwrap_or_else(|| panic!("each user says its node, as bus-node prints: {user}"));
        assert!(
            user.contains(&approdo_relay::bus::node_permissions(node)),
            "{node} has the permissions `approdo-relay admin bus-node` prints"
        );
    }
    assert!(
        !auth.contains("password") && !auth.contains("token"),
        "and with nothing weaker"
    );
}
