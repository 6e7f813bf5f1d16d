//! The Kubernetes manifests in `deploy/k8s/` are what `deploy/README.md` says they are:
//! every YAML document there parses and says what and where it is, and the README names
//! every manifest and the node requirements the manifests rely on.

mod k8s;

use std::collections::BTreeSet;

use k8s::*;

#[test]
fn every_document_parses_and_says_what_and_where_it_is() {
    let docs = manifests();
    let namespaces: BTreeSet<&str> = docs
        .iter()
        .filter(|d| kind(d) == "Namespace")
        .map(name)
        .collect();
    for d in &docs {
        assert!(
            !text(&d.yaml["apiVersion"]).is_empty() && !kind(d).is_empty() && !name(d).is_empty(),
            "{}: every document has apiVersion, kind and metadata.name",
            d.file
        );
        if kind(d) != "Namespace" {
            assert!(
                namespaces.contains(namespace(d)),
                "{}: {} {} sits in a namespace these manifests create",
                d.file,
                kind(d),
                name(d)
            );
        }
    }
    assert!(namespaces.contains(RELAY_NAMESPACE) && namespaces.contains(NATS_NAMESPACE));
}

#[test]
fn the_readme_names_every_manifest_and_what_the_nodes_need() {
    let readme = std::fs::read_to_string(k8s_dir().join("../README.md")).expect("README");
    for file in manifest_files() {
        let file = file
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(readme.contains(&file), "deploy/README.md names {file}");
    }
    for claim in [
        "LimitedSwap",
        "swapoff",
        "net.ipv4.ip_unprivileged_port_start=443",
        "approdo/relay=true",
        "NATS",
        "hostNetwork",
        "approdo-relay admin bus-node --node approdo-relay-",
        "kubectl -n approdo scale statefulset approdo-relay",
        "observatory-approdo-relay-",
    ] {
        assert!(readme.contains(claim), "deploy/README.md says {claim}");
    }
}
