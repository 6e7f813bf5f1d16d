//! Reading `deploy/k8s/` for the `k8s_*` tests: every YAML document of every manifest, and
//! the small accessors the tests share (pods, containers, mounts, the relay's own config
//! loader applied to a pod's command line). The files are read when a test runs (not
//! compiled in), so editing a manifest and re-running the tests checks the edit.
//!
//! Each test binary uses only some of these, hence the allowance.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use approdo_relay::config::{ConfigFile, NodeOverrides};
use yaml_rust2::{Yaml, YamlLoader};

pub const RELAY_NAMESPACE: &str = "approdo";
pub const NATS_NAMESPACE: &str = "approdo-nats";
pub const RELAY: &str = "approdo-relay";

/// One YAML document and the file it came from (for messages).
pub struct Doc {
    /// The file, for messages.
    pub file: String,
    /// The document.
    pub yaml: Yaml,
}

pub fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

pub fn manifest_files() -> Vec<PathBuf> {
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
pub fn manifests() -> Vec<Doc> {
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

pub fn text(y: &Yaml) -> &str {
    y.as_str().unwrap_or("")
}

pub fn kind(d: &Doc) -> &str {
    text(&d.yaml["kind"])
}

pub fn name(d: &Doc) -> &str {
    text(&d.yaml["metadata"]["name"])
}

pub fn namespace(d: &Doc) -> &str {
    text(&d.yaml["metadata"]["namespace"])
}

pub fn find<'a>(docs: &'a [Doc], kind_: &str, ns: &str, name_: &str) -> &'a Yaml {
    &docs
        .iter()
        .find(|d| kind(d) == kind_ && namespace(d) == ns && name(d) == name_)
        .unwrap_or_else(|| panic!("a {kind_} {ns}/{name_} in deploy/k8s"))
        .yaml
}

pub fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

pub fn strings(y: &Yaml) -> Vec<&str> {
    list(y).iter().map(text).collect()
}

/// The pod spec of a workload, with its kind, namespace and name.
pub fn pod_specs(docs: &[Doc]) -> Vec<(String, &Yaml)> {
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

pub fn containers(pod: &Yaml) -> impl Iterator<Item = &Yaml> {
    list(&pod["containers"])
        .iter()
        .chain(list(&pod["initContainers"]))
}

/// A container's setting, or the pod's when the container leaves it out.
pub fn effective<'a>(pod: &'a Yaml, container: &'a Yaml, key: &str) -> &'a Yaml {
    let own = &container["securityContext"][key];
    if own.is_badvalue() {
        &pod["securityContext"][key]
    } else {
        own
    }
}

/// How a pod departs from Pod Security "restricted" (which includes "baseline"), by the
/// rules of the Pod Security Standards that a manifest can break.
pub fn restricted_departures(pod: &Yaml) -> BTreeSet<String> {
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
pub fn hardening_gaps(pod: &Yaml) -> Vec<String> {
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
pub fn quantity(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

/// Bytes of a binary-suffixed quantity (`512Mi`, `2Gi`).
pub fn bytes(q: &str) -> u64 {
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

pub fn relay_set(docs: &[Doc]) -> &Yaml {
    find(docs, "StatefulSet", RELAY_NAMESPACE, RELAY)
}

pub fn relay_pod(docs: &[Doc]) -> &Yaml {
    &relay_set(docs)["spec"]["template"]["spec"]
}

/// The names the relay's pods get: `<set>-0` to `<set>-(replicas - 1)`.
pub fn relay_pod_names(docs: &[Doc]) -> Vec<String> {
    let replicas = relay_set(docs)["spec"]["replicas"]
        .as_i64()
        .expect("the relay's replicas are set");
    assert!(replicas >= 1, "at least one relay pod");
    (0..replicas).map(|i| format!("{RELAY}-{i}")).collect()
}

/// The value after `flag` in the relay container's arguments.
pub fn flag<'a>(container: &'a Yaml, flag: &str) -> Option<&'a str> {
    let args = strings(&container["args"]);
    let at = args.iter().position(|a| *a == flag)?;
    args.get(at + 1).copied()
}

/// The `fieldPath` of the container's environment variable `var`, from the downward API.
pub fn downward_field<'a>(container: &'a Yaml, var: &str) -> &'a str {
    let entry = list(&container["env"])
        .iter()
        .find(|e| text(&e["name"]) == var)
        .unwrap_or_else(|| panic!("the relay container sets {var}"));
    text(&entry["valueFrom"]["fieldRef"]["fieldPath"])
}

/// One pod's command line applied to the shared configuration, as `serve` does: the pod's
/// `$(POD_NAME)` and `$(HOST_IP)` expanded as the kubelet would.
pub fn overrides_of_pod(container: &Yaml, pod_name: &str, host_ip: &str) -> NodeOverrides {
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
pub fn a_ca_certificate() -> String {
    let key = rcgen::KeyPair::generate().expect("CA key");
    rcgen::CertificateParams::new(vec!["nats-client.approdo-nats.svc".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("CA certificate")
        .pem()
}

pub fn relay_container(docs: &[Doc]) -> &Yaml {
    let pod = relay_pod(docs);
    let all = list(&pod["containers"]);
    assert_eq!(all.len(), 1, "the relay pod has one container");
    &all[0]
}

/// The mount of `container` that holds `path` (the deepest such mount).
pub fn mount_of<'a>(container: &'a Yaml, path: &Path) -> &'a Yaml {
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
pub fn volume_of<'a>(pod: &'a Yaml, container: &Yaml, path: &Path) -> &'a Yaml {
    let volume_name = text(&mount_of(container, path)["name"]);
    list(&pod["volumes"])
        .iter()
        .find(|v| text(&v["name"]) == volume_name)
        .unwrap_or_else(|| panic!("volume {volume_name} is declared"))
}

/// The file `path` inside a ConfigMap or Secret volume: (object name, key).
pub fn object_key(pod: &Yaml, container: &Yaml, path: &Path) -> (String, String) {
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
pub fn secret_file(pod: &Yaml, container: &Yaml, path: &Path) -> (String, String) {
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
pub fn relay_toml(docs: &[Doc]) -> String {
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
pub fn read_config(dir: &Path, toml: &str) -> Result<ConfigFile, approdo_relay::RelayError> {
    let path = dir.join("relay.toml");
    std::fs::write(&path, toml).expect("write relay.toml");
    ConfigFile::read(&path)
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("{s} is a socket address"))
}
