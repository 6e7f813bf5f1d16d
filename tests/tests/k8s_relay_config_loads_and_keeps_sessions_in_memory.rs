//! The relay's configuration in `deploy/k8s/` is one the relay accepts, and it keeps
//! sessions in memory only: its ConfigMap's `relay.toml`, with one pod's command line
//! applied, goes through the relay's own loader (`ConfigFile::read`, `override_node`,
//! `load`, `validate`), so a key the relay does not know fails here as it would at start;
//! every path it names is a mount of the right volume: the store on a memory-backed
//! `emptyDir` with a size limit, the observatory on each pod's own ReadWriteOnce claim (a
//! volume claim template, kept when the set shrinks), the certificate, the revocation list
//! and the bus's CA from their Secrets and ConfigMap; health and metrics listen on loopback
//! only, and the probes ask `/healthz` there.

mod k8s;

use approdo_relay::tls::TlsSource;

use k8s::*;

#[test]
fn the_relay_config_map_is_accepted_by_the_relays_own_loader() {
    let docs = manifests();
    let toml = relay_toml(&docs);
    let dir = tempfile::tempdir().expect("tempdir");

    // The real parser: strict, so a misspelt key in the ConfigMap fails here.
    let file = read_config(dir.path(), &toml).expect("the ConfigMap's relay.toml parses");
    let misspelt = toml.replacen("\nstore_dir =", "\nstore_directory =", 1);
    assert_ne!(misspelt, toml, "the ConfigMap sets store_dir");
    assert!(
        read_config(dir.path(), &misspelt).is_err(),
        "the parser refuses unknown keys"
    );

    // Loaded and validated like `serve` does, once the operator's values are there: a real
    // organisation key and a revocation list signed by it, and for one pod its own name,
    // NKey seed and node address from its command line.
    let org_public = approdo_relay::admin::create_org_key(&dir.path().join("org.key"))
        .expect("an organisation key");
    let org = approdo_relay::admin::load_org_key(&dir.path().join("org.key")).expect("read");
    let signed_list = dir.path().join("revocations.json");
    approdo_relay::admin::revoke(&org, &signed_list, &[0]).expect("a revocation list");
    let revocations = file.revocations.to_str().expect("utf-8").to_owned();
    let filled = toml
        .replace(&file.org_public_key, &hex::encode(org_public.0))
        .replace(&revocations, signed_list.to_str().expect("utf-8"));
    let alone = read_config(dir.path(), &filled)
        .expect("parses")
        .load()
        .expect_err("without a pod's flags the shared configuration names no node");
    assert!(alone.to_string().contains("--bus-node"), "{alone}");

    let container = relay_container(&docs);
    let pod_name = relay_pod_names(&docs).pop().expect("a pod");
    let host_ip = "192.0.2.11";
    let mut one_pod = read_config(dir.path(), &filled).expect("parses");
    one_pod
        .override_node(overrides_of_pod(container, &pod_name, host_ip))
        .expect("the pod's command line applies");
    let bus = one_pod.bus.as_mut().expect("a [bus] section");
    assert_eq!(bus.node, pod_name);
    // The files the pod reads from its Secret's mount, made here.
    let seed = dir.path().join(format!("{pod_name}.nk"));
    approdo_relay::bus::create_node_key(&pod_name, &seed).expect("a node key");
    bus.nkey_seed_file = seed;
    bus.ca_file = dir.path().join("ca.crt");
    std::fs::write(&bus.ca_file, a_ca_certificate()).expect("write the CA");
    let loaded = one_pod
        .load()
        .expect("the relay loads the ConfigMap's configuration with a pod's flags");
    loaded.config.validate().expect("and accepts it");
    assert_eq!(
        loaded.config.bus.as_ref().map(|b| b.node()),
        Some(pod_name.as_str()),
        "the pod joins the bus under its own name"
    );
    assert_eq!(loaded.config.sfu.bind_ip.to_string(), host_ip);

    // Plain HTTP (health) and metrics stay on the node's loopback.
    assert!(loaded.listen.ip().is_loopback(), "listen on loopback");
    let metrics = loaded.metrics_listen.expect("metrics are configured");
    assert!(metrics.ip().is_loopback(), "metrics on loopback only");

    // Public HTTPS and QUIC on 443, with the certificate from files.
    assert_eq!(loaded.https_listen.map(|a| a.port()), Some(443));
    assert_eq!(
        file.quic_listen.as_deref().map(|a| addr(a).port()),
        Some(443)
    );
    let Some(TlsSource::Files { cert, key }) = file.tls_source().expect("TLS keys agree") else {
        panic!("the certificate comes from files");
    };

    // Every path the configuration names is where the pod mounts it.
    let pod = relay_pod(&docs);
    for (path, key_name) in [(&cert, "tls.crt"), (&key, "tls.key")] {
        let (object, k) = object_key(pod, container, path);
        assert_eq!((object.as_str(), k.as_str()), ("approdo-tls", key_name));
        let secret = find(&docs, "Secret", RELAY_NAMESPACE, "approdo-tls");
        assert_eq!(text(&secret["type"]), "kubernetes.io/tls");
    }
    let (object, k) = object_key(pod, container, &file.revocations);
    assert_eq!(
        (object.as_str(), k.as_str()),
        ("approdo-revocations", "revocations.json")
    );
    find(&docs, "ConfigMap", RELAY_NAMESPACE, "approdo-revocations");

    // The probes ask /healthz on the plain listener, where it is: the node's loopback.
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(text(&get["path"]), "/healthz", "{probe}");
        assert_eq!(
            get["port"].as_i64(),
            Some(i64::from(loaded.listen.port())),
            "{probe} on the listen port"
        );
        let host: std::net::IpAddr = text(&get["host"]).parse().expect("an address");
        assert_eq!(host, loaded.listen.ip(), "{probe} on the listen address");
    }

    // Port 443 with no capability: the node's ip_unprivileged_port_start must allow it.
    assert!(list(&container["securityContext"]["capabilities"]["add"]).is_empty());
    let readme = std::fs::read_to_string(k8s_dir().join("../README.md")).expect("README");
    assert!(
        readme.contains("net.ipv4.ip_unprivileged_port_start=443"),
        "the README gives the node setting binding 443 needs"
    );
}

#[test]
fn the_session_store_is_on_tmpfs_and_only_the_observatory_persists() {
    let docs = manifests();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = read_config(dir.path(), &relay_toml(&docs)).expect("parses");
    let pod = relay_pod(&docs);
    let container = relay_container(&docs);

    let store = volume_of(pod, container, &file.store_dir);
    assert_eq!(
        text(&store["emptyDir"]["medium"]),
        "Memory",
        "store_dir {:?} is on a memory-backed emptyDir (tmpfs)",
        file.store_dir
    );
    let size = bytes(text(&store["emptyDir"]["sizeLimit"]));
    let memory = bytes(&quantity(&container["resources"]["limits"]["memory"]));
    assert!(
        size > 0 && size < memory,
        "the store has a size limit, inside the memory limit it is charged to"
    );

    // The observatory: each pod's own ReadWriteOnce claim, from a volume claim template
    // (not a volume of the pod template, which every pod would share).
    let observatory = text(&mount_of(container, &file.observatory_dir)["name"]).to_owned();
    assert!(
        !list(&pod["volumes"])
            .iter()
            .any(|v| text(&v["name"]) == observatory),
        "observatory_dir {:?} is not on a volume every pod shares",
        file.observatory_dir
    );
    let set = relay_set(&docs);
    let templates = list(&set["spec"]["volumeClaimTemplates"]);
    let claim = templates
        .iter()
        .find(|t| text(&t["metadata"]["name"]) == observatory)
        .unwrap_or_else(|| {
            panic!(
                "observatory_dir {:?} is on a per-pod claim (volumeClaimTemplates)",
                file.observatory_dir
            )
        });
    assert_eq!(
        strings(&claim["spec"]["accessModes"]),
        ["ReadWriteOnce"],
        "one node's volume"
    );
    assert!(!quantity(&claim["spec"]["resources"]["requests"]["storage"]).is_empty());
    let retention = &set["spec"]["persistentVolumeClaimRetentionPolicy"];
    for when in ["whenDeleted", "whenScaled"] {
        assert_eq!(
            text(&retention[when]),
            "Retain",
            "a node's records outlive its pod ({when})"
        );
    }
    let shared_claims = docs
        .iter()
        .filter(|d| kind(d) == "PersistentVolumeClaim" && namespace(d) == RELAY_NAMESPACE)
        .count();
    assert_eq!(shared_claims, 0, "no claim shared by the relay pods");

    let persistent: Vec<&str> = list(&pod["volumes"])
        .iter()
        .filter(|v| {
            v["configMap"].is_badvalue()
                && v["secret"].is_badvalue()
                && text(&v["emptyDir"]["medium"]) != "Memory"
        })
        .map(|v| text(&v["name"]))
        .chain(templates.iter().map(|t| text(&t["metadata"]["name"])))
        .collect();
    assert_eq!(
        persistent,
        [observatory.as_str()],
        "the observatory is the only volume that can outlive the pod or reach a disk"
    );
}
