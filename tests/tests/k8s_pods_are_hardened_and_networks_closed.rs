//! Every pod in `deploy/k8s/` is hardened and every namespace closed, as `deploy/README.md`
//! says:
//!
//! * every pod is hardened (non-root fixed UID, read-only root, no privilege escalation,
//!   every capability dropped and none added, RuntimeDefault seccomp, no service account
//!   token, no `latest` image) and Guaranteed (requests == limits), so LimitedSwap never
//!   swaps it; the relay departs from Pod Security "restricted" in exactly the host network
//!   and the probes' host, its namespace enforces `privileged` and warns and audits at
//!   `restricted`, and NATS's namespace enforces `restricted`;
//! * every namespace denies by default; NATS's client port admits only the relay, its
//!   monitoring port only the `monitoring` namespace, and its Services stay in the cluster.

mod k8s;

use std::collections::BTreeSet;

use yaml_rust2::Yaml;

use k8s::*;

#[test]
fn every_pod_is_hardened_and_guaranteed() {
    let docs = manifests();
    let pods = pod_specs(&docs);
    assert!(pods.len() >= 2, "the relay and NATS");
    for (what, pod) in &pods {
        let gaps = hardening_gaps(pod);
        assert!(gaps.is_empty(), "{what}: {gaps:?}");
        let departures = restricted_departures(pod);
        let expected: BTreeSet<String> = if what.ends_with(&format!("/{RELAY}")) {
            ["hostNetwork".to_owned(), "probe host".to_owned()].into()
        } else {
            BTreeSet::new()
        };
        assert_eq!(
            departures, expected,
            "{what}: departures from Pod Security restricted"
        );
        if *what != format!("StatefulSet {RELAY_NAMESPACE}/{RELAY}") {
            assert_ne!(pod["hostNetwork"].as_bool(), Some(true), "{what}");
        }
    }

    let labels = |ns: &str| &find(&docs, "Namespace", "", ns)["metadata"]["labels"];
    let level = |ns: &str, mode: &str| {
        text(&labels(ns)[format!("pod-security.kubernetes.io/{mode}").as_str()]).to_owned()
    };
    // The relay needs the host network, which only "privileged" admits; "restricted" still
    // reports everything else.
    assert_eq!(level(RELAY_NAMESPACE, "enforce"), "privileged");
    assert_eq!(level(RELAY_NAMESPACE, "warn"), "restricted");
    assert_eq!(level(RELAY_NAMESPACE, "audit"), "restricted");
    assert_eq!(level(NATS_NAMESPACE, "enforce"), "restricted");
}

#[test]
fn network_policies_deny_by_default_and_open_only_what_they_name() {
    let docs = manifests();
    let policies: Vec<&Doc> = docs.iter().filter(|d| kind(d) == "NetworkPolicy").collect();
    for ns in [RELAY_NAMESPACE, NATS_NAMESPACE] {
        let default_deny = policies.iter().any(|p| {
            let spec = &p.yaml["spec"];
            namespace(p) == ns
                && spec["podSelector"].as_hash().is_some_and(|h| h.is_empty())
                && strings(&spec["policyTypes"]) == ["Ingress", "Egress"]
                && spec["ingress"].is_badvalue()
                && spec["egress"].is_badvalue()
        });
        assert!(default_deny, "{ns} has a default-deny NetworkPolicy");
    }

    // Who may reach each NATS port.
    let relay_peer = |peer: &Yaml| {
        text(&peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
            == RELAY_NAMESPACE
            && text(&peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]) == RELAY
    };
    let node_block = |peer: &Yaml| {
        let cidr = text(&peer["ipBlock"]["cidr"]);
        !cidr.is_empty() && !cidr.ends_with("/0")
    };
    let monitoring = |peer: &Yaml| {
        text(&peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
            == "monitoring"
            && peer["podSelector"].is_badvalue()
            && peer["ipBlock"].is_badvalue()
    };
    let nats_pods = |peer: &Yaml| {
        peer["namespaceSelector"].is_badvalue()
            && text(&peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]) == "nats"
    };
    let mut opened = BTreeSet::new();
    for p in policies.iter().filter(|p| namespace(p) == NATS_NAMESPACE) {
        for rule in list(&p.yaml["spec"]["ingress"]) {
            let from = list(&rule["from"]);
            let ports = list(&rule["ports"]);
            assert!(
                !from.is_empty() && !ports.is_empty(),
                "{}: every NATS ingress rule names its sources and ports",
                name(p)
            );
            for port in ports {
                let port = port["port"].as_i64().expect("a numbered port");
                opened.insert(port);
                let allowed: &dyn Fn(&Yaml) -> bool = match port {
                    4222 => &|peer| relay_peer(peer) || node_block(peer),
                    8222 => &monitoring,
                    6222 => &nats_pods,
                    other => panic!("{}: NATS port {other} is not one of its own", name(p)),
                };
                for peer in from {
                    assert!(allowed(peer), "{}: port {port} admits {peer:?}", name(p));
                }
            }
        }
    }
    assert_eq!(
        opened,
        [4222, 6222, 8222].into(),
        "clients, routes, monitoring"
    );

    // NATS stays inside the cluster.
    for d in docs.iter().filter(|d| namespace(d) == NATS_NAMESPACE) {
        if kind(d) == "Service" {
            assert_eq!(text(&d.yaml["spec"]["type"]), "ClusterIP", "{}", name(d));
            assert!(d.yaml["spec"]["externalIPs"].is_badvalue(), "{}", name(d));
        }
        assert!(
            !matches!(kind(d), "Ingress" | "Gateway" | "HTTPRoute"),
            "nothing exposes NATS outside the cluster"
        );
    }
}
