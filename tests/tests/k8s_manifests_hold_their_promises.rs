//! The Kubernetes manifests in `deploy/k8s/` keep the promises `deploy/README.md` makes for
//! them. Every YAML document there is parsed, and:
//!
//! * the relay is a StatefulSet on the host network (`ClusterFirstWithHostNet` DNS), its pods
//!   kept one per Kubernetes node by a required anti-affinity on the host name, replaced
//!   only when the operator deletes a pod;
//! * each pod is its own bus node: its command line names it after the pod itself (the
//!   downward API's `metadata.name`), reads the NKey seed of that name from the bus Secret,
//!   which holds one for every pod, announces its own node's address for call media
//!   (`status.hostIP`), and NATS lists one user per pod with that node's permissions; the
//!   shared ConfigMap alone names no node, so a pod started without the flags cannot start;
//! * its ConfigMap's `relay.toml`, with one pod's command line applied, goes through the
//!   relay's own loader (`ConfigFile::read`, `override_node`, `load`, `validate`), so a key
//!   the relay does not know fails here as it would at start; every path it names is a
//!   mount of the right volume: the store on a memory-backed `emptyDir` with a size limit,
//!   the observatory on each pod's own ReadWriteOnce claim (a volume claim template, kept
//!   when the set shrinks), the certificate, the revocation list and the bus's CA from their
//!   Secrets and ConfigMap; health and metrics listen on loopback only, and the probes ask
//!   `/healthz` there;
//! * every pod is hardened (non-root fixed UID, read-only root, no privilege escalation,
//!   every capability dropped and none added, RuntimeDefault seccomp, no service account
//!   token, no `latest` image) and Guaranteed (requests == limits), so LimitedSwap never
//!   swaps it; the relay departs from Pod Security "restricted" in exactly the host network
//!   and the probes' host, its namespace enforces `privileged` and warns and audits at
//!   `restricted`, and NATS's namespace enforces `restricted`;
//! * every namespace denies by default; NATS's client port admits only the relay, its
//!   monitoring port only the `monitoring` namespace, and its Services stay in the cluster;
//! * NATS runs with JetStream off, TLS on clients and routes, and NKey users;
//! * the README names every manifest and the node requirements the manifests rely on.
//!
//! The files are read when the test runs (not compiled in), so editing a manifest and
//! re-running the test checks the edit.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use approdo_relay::config::{ConfigFile, NodeOverrides};
use approdo_relay::tls::TlsSource;
use yaml_rust2::{Yaml, YamlLoader};

const RELAY_NAMESPACE: &str = "approdo";
const NATS_NAMESPACE: &str = "approdo-nats";
const RELAY: &str = "approdo-relay";

/// One YAML document and the file it came from (for messages).
struct Doc {
    file: String,
    yaml: Yaml,
}

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .expect("deploy/k8s exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "deploy/k8s holds manifests");
    files
}

/// Every document of every manifest; empty documents (a trailing `---`) are skipped.
fn manifests() -> Vec<Doc> {
    let mut docs = Vec::new();
    for path in manifest_files() {
        let text = std::fs::read_to_string(&path).expect("readable");
        let file = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let parsed = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
        for yaml in parsed {
            if !yaml.is_null() {
                docs.push(Doc {
                    file: file.clone(),
                    yaml,
                });
            }
        }
    }
    docs
}

fn text(y: &Yaml) -> &str {
    y.as_str().unwrap_or("")
}

fn kind(d: &Doc) -> &str {
    text(&d.yaml["kind"])
}

fn name(d: &Doc) -> &str {
    text(&d.yaml["metadata"]["name"])
}

fn namespace(d: &Doc) -> &str {
    text(&d.yaml["metadata"]["namespace"])
}

fn find<'a>(docs: &'a [Doc], kind_: &str, ns: &str, name_: &str) -> &'a Yaml {
    &docs
        .iter()
        .find(|d| kind(d) == kind_ && namespace(d) == ns && name(d) == name_)
        .unwrap_or_else(|| panic!("a {kind_} {ns}/{name_} in deploy/k8s"))
        .yaml
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

fn strings(y: &Yaml) -> Vec<&str> {
    list(y).iter().map(text).collect()
}

/// The pod spec of a workload, with its kind, namespace and name.
fn pod_specs(docs: &[Doc]) -> Vec<(String, &Yaml)> {
    docs.iter()
        .filter_map(|d| {
            let spec = match kind(d) {
                "Pod" => &d.yaml["spec"],
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                    &d.yaml["spec"]["template"]["spec"]
                }
                "CronJob" => &d.yaml["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                _ => return None,
            };
            Some((format!("{} {}/{}", kind(d), namespace(d), name(d)), spec))
        })
        .collect()
}

fn containers(pod: &Yaml) -> impl Iterator<Item = &Yaml> {
    list(&pod["containers"])
        .iter()
        .chain(list(&pod["initContainers"]))
}

/// A container's setting, or the pod's when the container leaves it out.
fn effective<'a>(pod: &'a Yaml, container: &'a Yaml, key: &str) -> &'a Yaml {
    let own = &container["securityContext"][key];
    if own.is_badvalue() {
        &pod["securityContext"][key]
    } else {
        own
    }
}

/// How a pod departs from Pod Security "restricted" (which includes "baseline"), by the
/// rules of the Pod Security Standards that a manifest can break.
fn restricted_departures(pod: &Yaml) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host].as_bool() == Some(true) {
            out.insert(host.to_owned());
        }
    }
    // The pod-level settings are checked in their own right, whatever the containers say.
    let pod_sc = &pod["securityContext"];
    if pod_sc["runAsUser"].as_i64() == Some(0) {
        out.insert("runAsUser 0".into());
    }
    if !pod_sc["runAsNonRoot"].is_badvalue() && pod_sc["runAsNonRoot"].as_bool() != Some(true) {
        out.insert("runAsNonRoot".into());
    }
    let pod_seccomp = &pod_sc["seccompProfile"]["type"];
    if !pod_seccomp.is_badvalue() && !matches!(text(pod_seccomp), "RuntimeDefault" | "Localhost") {
        out.insert("seccompProfile".into());
    }
    const VOLUMES: [&str; 8] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for volume in list(&pod["volumes"]) {
        if !VOLUMES.iter().any(|v| !volume[*v].is_badvalue()) {
            out.insert(format!("volume type of {}", text(&volume["name"])));
        }
    }
    for c in containers(pod) {
        let sc = &c["securityContext"];
        if sc["privileged"].as_bool() == Some(true) {
            out.insert("privileged".into());
        }
        if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            out.insert("allowPrivilegeEscalation".into());
        }
        if effective(pod, c, "runAsNonRoot").as_bool() != Some(true) {
            out.insert("runAsNonRoot".into());
        }
        if effective(pod, c, "runAsUser").as_i64() == Some(0) {
            out.insert("runAsUser 0".into());
        }
        let seccomp = text(&effective(pod, c, "seccompProfile")["type"]);
        if seccomp != "RuntimeDefault" && seccomp != "Localhost" {
            out.insert("seccompProfile".into());
        }
        if !strings(&sc["capabilities"]["drop"]).contains(&"ALL") {
            out.insert("capabilities.drop ALL".into());
        }
        if strings(&sc["capabilities"]["add"])
            .iter()
            .any(|c| *c != "NET_BIND_SERVICE")
        {
            out.insert("capabilities.add".into());
        }
        for port in list(&c["ports"]) {
            if port["hostPort"].as_i64().is_some_and(|p| p != 0) {
                out.insert("hostPort".into());
            }
        }
        let handlers = ["livenessProbe", "readinessProbe", "startupProbe"]
            .into_iter()
            .map(|p| &c[p])
            .chain(["postStart", "preStop"].map(|h| &c["lifecycle"][h]));
        for handler in handlers {
            for action in ["httpGet", "tcpSocket"] {
                if !text(&handler[action]["host"]).is_empty() {
                    out.insert("probe host".into());
                }
            }
        }
    }
    out
}

/// What this project asks beyond "restricted": a fixed non-root UID, a read-only root file
/// system, no capability at all, no service account token, Guaranteed QoS, pinned images.
fn hardening_gaps(pod: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    if pod["automountServiceAccountToken"].as_bool() != Some(false) {
        out.push("automountServiceAccountToken is not false".into());
    }
    // Set for the whole pod too, so a container added later starts hardened.
    let pod_sc = &pod["securityContext"];
    if pod_sc["runAsNonRoot"].as_bool() != Some(true)
        || pod_sc["runAsUser"].as_i64().is_none_or(|u| u <= 0)
        || text(&pod_sc["seccompProfile"]["type"]) != "RuntimeDefault"
    {
        out.push("pod securityContext: runAsNonRoot, a non-root runAsUser, RuntimeDefault".into());
    }
    for c in containers(pod) {
        let who = text(&c["name"]);
        let sc = &c["securityContext"];
        if effective(pod, c, "runAsUser")
            .as_i64()
            .is_none_or(|u| u <= 0)
        {
            out.push(format!("{who}: no fixed non-root runAsUser"));
        }
        if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
            out.push(format!("{who}: root file system not read-only"));
        }
        if !list(&sc["capabilities"]["add"]).is_empty() {
            out.push(format!("{who}: adds capabilities"));
        }
        for resource in ["cpu", "memory"] {
            let request = quantity(&c["resources"]["requests"][resource]);
            let limit = quantity(&c["resources"]["limits"][resource]);
            if request.is_empty() || request != limit {
                out.push(format!(
                    "{who}: {resource} request {request:?} is not its limit {limit:?} (Guaranteed QoS)"
                ));
            }
        }
        let image = text(&c["image"]);
        let tag = image
            .rsplit('/')
            .next()
            .and_then(|last| last.split_once(':'))
            .map(|(_, tag)| tag);
        if !image.contains("@sha256:") && matches!(tag, None | Some("") | Some("latest")) {
            out.push(format!(
                "{who}: image {image:?} is not pinned to a tag or digest"
            ));
        }
    }
    out
}

/// A resource quantity as written (`2`, `"2"`, `2Gi`, `500m`).
fn quantity(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

/// Bytes of a binary-suffixed quantity (`512Mi`, `2Gi`).
fn bytes(q: &str) -> u64 {
    let (number, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = number.parse().unwrap_or_else(|_| panic!("a quantity: {q}"));
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => panic!("unit {other} of {q}"),
    }
}

fn relay_set(docs: &[Doc]) -> &Yaml {
    find(docs, "StatefulSet", RELAY_NAMESPACE, RELAY)
}

fn relay_pod(docs: &[Doc]) -> &Yaml {
    &relay_set(docs)["spec"]["template"]["spec"]
}

/// The names the relay's pods get: `<set>-0` to `<set>-(replicas - 1)`.
fn relay_pod_names(docs: &[Doc]) -> Vec<String> {
    let replicas = relay_set(docs)["spec"]["replicas"]
        .as_i64()
        .expect("the relay's replicas are set");
    assert!(replicas >= 1, "at least one relay pod");
    (0..replicas).map(|i| format!("{RELAY}-{i}")).collect()
}

/// The value after `flag` in the relay container's arguments.
fn flag<'a>(container: &'a Yaml, flag: &str) -> Option<&'a str> {
    let args = strings(&container["args"]);
    let at = args.iter().position(|a| *a == flag)?;
    args.get(at + 1).copied()
}

/// The `fieldPath` of the container's environment variable `var`, from the downward API.
fn downward_field<'a>(container: &'a Yaml, var: &str) -> &'a str {
    let entry = list(&container["env"])
        .iter()
        .find(|e| text(&e["name"]) == var)
        .unwrap_or_else(|| panic!("the relay container sets {var}"));
    text(&entry["valueFrom"]["fieldRef"]["fieldPath"])
}

/// One pod's command line applied to the shared configuration, as `serve` does: the pod's
/// `$(POD_NAME)` and `$(HOST_IP)` expanded as the kubelet would.
fn overrides_of_pod(container: &Yaml, pod_name: &str, host_ip: &str) -> NodeOverrides {
    let expand = |s: &str| {
        s.replace("$(POD_NAME)", pod_name)
            .replace("$(HOST_IP)", host_ip)
    };
    let ip = |s: &str| expand(s).parse().expect("an address");
    NodeOverrides {
        bus_node: flag(container, "--bus-node").map(expand),
        bus_seed_file: flag(container, "--bus-seed-file").map(|p| expand(p).into()),
        sfu_bind_ip: flag(container, "--sfu-bind-ip").map(ip),
        sfu_public_ip: flag(container, "--sfu-public-ip").map(ip),
    }
}

/// A CA certificate in PEM, standing for NATS's.
fn a_ca_certificate() -> String {
    let key = rcgen::KeyPair::generate().expect("CA key");
    rcgen::CertificateParams::new(vec!["nats-client.approdo-nats.svc".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("CA certificate")
        .pem()
}

fn relay_container(docs: &[Doc]) -> &Yaml {
    let pod = relay_pod(docs);
    let all = list(&pod["containers"]);
    assert_eq!(all.len(), 1, "the relay pod has one container");
    &all[0]
}

/// The mount of `container` that holds `path` (the deepest such mount).
fn mount_of<'a>(container: &'a Yaml, path: &Path) -> &'a Yaml {
    let mount = list(&container["volumeMounts"])
        .iter()
        .filter(|m| path.starts_with(text(&m["mountPath"])))
        .max_by_key(|m| text(&m["mountPath"]).len())
        .unwrap_or_else(|| panic!("{path:?} lies on a mounted volume"));
    assert!(
        mount["subPath"].is_badvalue() && mount["subPathExpr"].is_badvalue(),
        "{path:?}: no subPath (a subPath mount never sees updates)"
    );
    mount
}

/// The volume whose mount holds `path` in `container` (the deepest such mount).
fn volume_of<'a>(pod: &'a Yaml, container: &Yaml, path: &Path) -> &'a Yaml {
    let volume_name = text(&mount_of(container, path)["name"]);
    list(&pod["volumes"])
        .iter()
        .find(|v| text(&v["name"]) == volume_name)
        .unwrap_or_else(|| panic!("volume {volume_name} is declared"))
}

/// The file `path` inside a ConfigMap or Secret volume: (object name, key).
fn object_key(pod: &Yaml, container: &Yaml, path: &Path) -> (String, String) {
    let volume = volume_of(pod, container, path);
    let mount = list(&container["volumeMounts"])
        .iter()
        .find(|m| text(&m["name"]) == text(&volume["name"]))
        .expect("the mount");
    let key = path
        .strip_prefix(text(&mount["mountPath"]))
        .expect("under the mount")
        .to_string_lossy()
        .into_owned();
    let object = if !volume["configMap"].is_badvalue() {
        text(&volume["configMap"]["name"])
    } else {
        text(&volume["secret"]["secretName"])
    };
    (object.to_owned(), key)
}

/// The file `path`, mounted on its own from a Secret (`subPath` or, per pod,
/// `subPathExpr`): (Secret name, the key as written, `$(POD_NAME)` unexpanded). For files
/// read once at start, which need no updates.
fn secret_file(pod: &Yaml, container: &Yaml, path: &Path) -> (String, String) {
    let mount = list(&container["volumeMounts"])
        .iter()
        .find(|m| Path::new(text(&m["mountPath"])) == path)
        .unwrap_or_else(|| panic!("{path:?} is a file mounted on its own"));
    let key = if mount["subPathExpr"].is_badvalue() {
        text(&mount["subPath"])
    } else {
        text(&mount["subPathExpr"])
    };
    let volume = list(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("its volume is declared");
    (
        text(&volume["secret"]["secretName"]).to_owned(),
        key.to_owned(),
    )
}

/// The relay's configuration file as the ConfigMap holds it.
fn relay_toml(docs: &[Doc]) -> String {
    let container = relay_container(docs);
    let args = strings(&container["args"]);
    let at = args
        .iter()
        .position(|a| *a == "--config")
        .expect("serve --config <file>");
    assert_eq!(args.first(), Some(&"serve"), "the relay runs `serve`");
    let path = Path::new(args[at + 1]);
    let (object, key) = object_key(relay_pod(docs), container, path);
    text(&find(docs, "ConfigMap", RELAY_NAMESPACE, &object)["data"][key.as_str()]).to_owned()
}

/// Parse `toml` as `serve` does: written to a file, read by `ConfigFile::read`.
fn read_config(dir: &Path, toml: &str) -> Result<ConfigFile, approdo_relay::RelayError> {
    let path = dir.join("relay.toml");
    std::fs::write(&path, toml).expect("write relay.toml");
    ConfigFile::read(&path)
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("{s} is a socket address"))
}

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
