//! Embeds the built web pages (`web-client/dist/`, made by `scripts/build-web`) into the
//! relay binary, so one binary serves everything. Without a build, the relay serves a
//! one-line page saying how to make one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../web-client/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    walk(&dist, &mut files);
    let mut code = String::from("pub static FILES: &[EmbeddedFile] = &[\n");
    for f in &files {
        if f.extension().is_some_and(|e| e == "gz" || e == "br") {
            continue;
        }
        let rel = f
            .strip_prefix(&dist)
            .expect("under dist")
            .to_string_lossy()
            .replace('\\', "/");
        // The precompressed forms the build made, if any: `Some(include_bytes!(..))`.
        let compressed = |ext: &str| {
            let mut p = f.clone().into_os_string();
            p.push(ext);
            let p = PathBuf::from(p);
            if p.exists() {
                format!(
                    "Some(include_bytes!({:?}))",
                    p.canonicalize().expect("path")
                )
            } else {
                "None".to_owned()
            }
        };
        let gz_expr = compressed(".gz");
        let br_expr = compressed(".br");
        writeln!(
            code,
            "    EmbeddedFile {{ path: {:?}, raw: include_bytes!({:?}), gzip: {gz_expr}, brotli: {br_expr} }},",
            format!("/{rel}"),
            f.canonicalize().expect("path")
        )
        .expect("string write");
    }
    code.push_str("];\n");
    let bundle = std::fs::read_to_string(dist.join("bundle.sha256"))
        .ok()
        .map(|s| s.trim().to_owned());
    writeln!(code, "pub static BUNDLE_HASH: Option<&str> = {bundle:?};").expect("string write");
    let hashes: Vec<String> = std::fs::read_to_string(dist.join("csp-script-hashes.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("'sha256-") && l.ends_with('\''))
        .map(str::to_owned)
        .collect();
    writeln!(code, "pub static SCRIPT_HASHES: &[&str] = &{hashes:?};").expect("string write");
    // `PATH AS` lines (web-client/build.mjs): what the person's page loads first, for the
    // `Link` header on `/` (relay::preload).
    let preloads: Vec<(String, String)> = std::fs::read_to_string(dist.join("preload-links.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .map(|(path, kind)| (path.to_owned(), kind.trim().to_owned()))
        .collect();
    writeln!(
        code,
        "pub static PERSON_PRELOADS: &[(&str, &str)] = &{preloads:?};"
    )
    .expect("string write");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("pages.rs");
    std::fs::write(out, code).expect("write pages.rs");
}
