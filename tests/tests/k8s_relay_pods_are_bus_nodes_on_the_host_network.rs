//! The relay in `deploy/k8s/` keeps the promises `deploy/README.md` makes for its pods:
//!
//! * the relay is a StatefulSet on the host network (`ClusterFirstWithHostNet` DNS), its pods
//!   kept one per Kubernetes node by a required anti-affinity on the host name, replaced
//!   only when the operator deletes a pod;
//! * each pod is its own bus node: its command line names it after the pod itself (the
//!   downward API's `metadata.name`), reads the NKey seed of that name from the bus Secret,
//!   which holds one for every pod, announces its own node's address for call media
//!   (`status.hostIP`), and NATS lists one user per pod with that node's permissions; the
//!   shared ConfigMap alone names no node, so a pod started without the flags cannot start.

mod k8s;

use std::path::Path;

use k8s::*;

#[test]
fn the_relay_runs_one_pod_per_node_on_the_host_network() {
    let docs = manifests();
    let set = relay_set(&docs);
    let pod = relay_pod(&docs);
    assert_eq!(pod["hostNetwork"].as_bool(), Some(true), "UDP without NAT");
    assert_eq!(
        text(&pod["dnsPolicy"]),
        "ClusterFirstWithHostNet",
        "cluster DNS on the host network"
    );
    assert_eq!(
        text(&set["spec"]["updateStrategy"]["type"]),
        "OnDelete",
        "a restart ends every session: only the operator decides when"
    );
    assert!(
        relay_pod_names(&docs).len() >= 2,
        "the example runs several relay nodes"
    );

    // One pod per Kubernetes node, always: two would bind the same host ports.
    let own_labels = &set["spec"]["template"]["metadata"]["labels"];
    let terms =
        list(&pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]);
    let spreads = terms.iter().any(|term| {
        text(&term["topologyKey"]) == "kubernetes.io/hostname"
            && term["labelSelector"]["matchExpressions"].is_badvalue()
            && term["labelSelector"]["matchLabels"]
                .as_hash()
                .is_some_and(|wanted| {
                    !wanted.is_empty() && wanted.iter().all(|(k, v)| own_labels[text(k)] == *v)
                })
    });
    assert!(
        spreads,
        "a required podAntiAffinity on kubernetes.io/hostname against the relay's own pods"
    );

    // On the nodes prepared for it (README: label, taint, sysctl, firewall).
    assert_eq!(text(&pod["nodeSelector"]["approdo/relay"]), "true");
    assert!(
        list(&pod["tolerations"])
            .iter()
            .any(|t| text(&t["key"]) == "approdo/relay" && text(&t["effect"]) == "NoSchedule"),
        "tolerates the relay nodes' taint"
    );

    let others = docs
        .iter()
        .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet" | "DaemonSet"))
        .filter(|d| namespace(d) == RELAY_NAMESPACE && name(d) != RELAY)
        .count();
    assert_eq!(others, 0, "the relay's namespace holds the relay alone");
    let relay_workloads = docs
        .iter()
        .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet" | "DaemonSet"))
        .filter(|d| namespace(d) == RELAY_NAMESPACE)
        .count();
    assert_eq!(relay_workloads, 1, "one relay workload");
}

#[test]
fn each_relay_pod_is_its_own_bus_node() {
    let docs = manifests();
    let pod = relay_pod(&docs);
    let container = relay_container(&docs);

    // The pod's name and its node's address, from the downward API, on its command line.
    assert_eq!(downward_field(container, "POD_NAME"), "metadata.name");
    assert_eq!(downward_field(container, "HOST_IP"), "status.hostIP");
    assert_eq!(
        flag(container, "--bus-node"),
        Some("$(POD_NAME)"),
        "each pod's bus name is its own pod name"
    );
    assert_eq!(
        flag(container, "--sfu-bind-ip"),
        Some("$(HOST_IP)"),
        "each pod announces its own node's address for call media"
    );
    let seed_file = flag(container, "--bus-seed-file").expect("each pod names its seed file");
    let (object, seed_key) = secret_file(pod, container, Path::new(seed_file));
    assert_eq!(object, "approdo-bus", "the seed comes from the bus Secret");
    assert_eq!(
        seed_key, "$(POD_NAME).nk",
        "each pod is shown the seed named after it"
    );
    // Only that one: no mount shows the container the whole bus Secret (a compromised pod
    // could then speak for every node).
    let bus_volumes: Vec<&str> = list(&pod["volumes"])
        .iter()
        .filter(|v| text(&v["secret"]["secretName"]) == "approdo-bus")
        .map(|v| text(&v["name"]))
        .collect();
    for mount in list(&container["volumeMounts"]) {
        if bus_volumes.contains(&text(&mount["name"])) {
            assert!(
                !(mount["subPath"].is_badvalue() && mount["subPathExpr"].is_badvalue()),
                "{} shows the whole bus Secret",
                text(&mount["mountPath"])
            );
        }
    }

    // Every pod of the set: a valid node name, its seed in the bus Secret, its user in NATS.
    let auth = text(&find(&docs, "Secret", NATS_NAMESPACE, "nats-auth")["stringData"]["auth.conf"]);
    let names = relay_pod_names(&docs);
    for pod_name in &names {
        assert!(
            approdo_relay::bus::valid_node_name(pod_name),
            "{pod_name} is a valid bus node name"
        );
        let key = seed_key.replace("$(POD_NAME)", pod_name);
        let secret = find(&docs, "Secret", RELAY_NAMESPACE, &object);
        assert!(
            !secret["stringData"][key.as_str()].is_badvalue(),
            "the bus Secret's shape has {key}"
        );
        assert!(
            auth.contains(&approdo_relay::bus::node_permissions(pod_name)),
            "NATS lists {pod_name} with that node's permissions"
        );
    }
    assert_eq!(
        auth.matches("nkey:").count(),
        names.len(),
        "NATS lists one user per relay pod, and nobody else"
    );

    // The shared configuration alone names no node and no seed, and its media address is a
    // wildcard: a pod started without its flags refuses to start (checked with the loader in
    // the_relay_config_map_is_accepted_by_the_relays_own_loader).
    let dir = tempfile::tempdir().expect("tempdir");
    let file = read_config(dir.path(), &relay_toml(&docs)).expect("parses");
    let bus = file
        .bus
        .as_ref()
        .expect("the ConfigMap has a [bus] section");
    assert!(bus.node.is_empty(), "the ConfigMap names no node");
    assert!(
        bus.nkey_seed_file.as_os_str().is_empty(),
        "the ConfigMap names no seed file"
    );
    assert!(file.sfu.bind_ip.is_unspecified() && file.sfu.public_ip.is_none());
    assert_eq!(
        bus.url, "tls://nats-client.approdo-nats.svc:4222",
        "the bus is NATS's client Service, over TLS"
    );
    let (object, key) = secret_file(pod, container, &bus.ca_file);
    assert_eq!((object.as_str(), key.as_str()), ("approdo-bus", "ca.crt"));
}
