//! The web pages and the headers every response carries.
//!
//! The pages are embedded at build time (see `build.rs`). Every response — pages, the
//! WebSocket upgrade, errors — gets a strict Content-Security-Policy and the privacy
//! headers of `docs/protocol.md` and `security.md`; nothing is cacheable. `/exit`, where the
//! person's quick exit lands, also asks the browser to clear everything of this site.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::Config;

/// One file of `web-client/dist`, embedded at build time.
struct EmbeddedFile {
    /// URL path, e.g. `/pkg/approdo_wasm_bg.wasm`.
    path: &'static str,
    /// The file.
    raw: &'static [u8],
    /// Its gzip form, when the build made one.
    gzip: Option<&'static [u8]>,
    /// Its Brotli form, when the build made one: about a fifth smaller than gzip for the
    /// wasm core, which is most of what a phone downloads first.
    brotli: Option<&'static [u8]>,
}

mod embedded {
    use super::EmbeddedFile;
    include!(concat!(env!("OUT_DIR"), "/pages.rs"));
}

/// The Content-Security-Policy of every response: our own scripts (and WebAssembly), our
/// own styles, connections only back to us, no framing, nothing from another origin. The
/// only inline scripts allowed are the pages' import maps, by their build-time hashes
/// (they carry the integrity of every module). Workers only from `blob:`: the page fetches
/// the media worker with its integrity checked and starts it from that blob, since a
/// `Worker(url)` fetch could not be checked.
pub static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    for h in embedded::SCRIPT_HASHES {
        script_src.push(' ');
        script_src.push_str(h);
    }
    format!(
        "default-src 'none'; script-src {script_src}; style-src 'self'; img-src 'self'; \
         connect-src 'self'; font-src 'none'; media-src 'self'; worker-src blob:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

/// [`CSP`] that also lets the page open WebTransport to this relay's QUIC endpoint:
/// `https://HOST:PORT`, HOST being the host the page itself was loaded from (its `Host`
/// header, port removed). A CSP `'self'` would not cover it (another scheme and port).
/// `None` when the host is not a plain DNS name or IP address.
pub fn csp_with_webtransport(host_header: &str, port: u16) -> Option<String> {
    let host = if let Some(rest) = host_header.strip_prefix('[') {
        let (v6, _) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        format!("[{v6}]")
    } else {
        let name = host_header.split(':').next()?;
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !plain {
            return None;
        }
        name.to_ascii_lowercase()
    };
    Some(CSP.replacen(
        "connect-src 'self';",
        &format!("connect-src 'self' https://{host}:{port};"),
        1,
    ))
}

/// Only camera and microphone, and only for this origin.
pub const PERMISSIONS: &str = "camera=(self), microphone=(self), geolocation=(), payment=(), usb=(), \
serial=(), display-capture=(), screen-wake-lock=(), publickey-credentials-get=()";

/// What `/exit` asks the browser to erase.
pub const CLEAR_SITE_DATA: &str = "\"cache\", \"cookies\", \"storage\", \"executionContexts\"";

/// Add the security and privacy headers to a response.
pub async fn security_headers(mut response: Response) -> Response {
    apply_security_headers(response.headers_mut());
    response
}

/// The headers of [`security_headers`], for responses written outside axum (the refusals
/// of malformed or oversized request heads in `accept`).
pub fn apply_security_headers(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        h.insert("content-security-policy", csp);
    }
    set(h, "cache-control", "no-store");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-content-type-options", "nosniff");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "permissions-policy", PERMISSIONS);
    set(h, "x-frame-options", "DENY");
}

/// What the pages need to open a WebTransport session, listed in `/config.json` as
/// `"webtransport": {"port": N, "hashes": ["hex", ...]}` (absent when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebTransport {
    /// The QUIC endpoint's UDP port, when one serves WebTransport (set by whoever starts
    /// it, see [`Served::set_web_transport_port`]).
    pub port: Option<u16>,
    /// SHA-256 of the certificates the page may pin (`serverCertificateHashes`): the
    /// self-signed current and next ones; none for a publicly trusted certificate. From
    /// [`crate::tls::Certificates::web_transport_hashes`].
    pub hashes: Vec<[u8; 32]>,
}

impl WebTransport {
    fn to_json(&self) -> Option<serde_json::Value> {
        if self.port.is_none() && self.hashes.is_empty() {
            return None;
        }
        let mut object = serde_json::Map::new();
        if let Some(port) = self.port {
            object.insert("port".into(), port.into());
            object.insert("path".into(), crate::quic::WT_PATH.into());
        }
        let hashes: Vec<serde_json::Value> =
            self.hashes.iter().map(|h| hex::encode(h).into()).collect();
        object.insert("hashes".into(), hashes.into());
        Some(serde_json::Value::Object(object))
    }
}

/// What the page routes serve now. `/config.json` changes when the self-signed certificate
/// is renewed (its hashes are listed there), and with it the integrity manifest's entry for
/// it and the bundle hash: [`Served::set_certificate_hashes`] recomputes all three at once,
/// so a page never gets a `/config.json` its manifest does not match.
#[derive(Debug)]
pub struct Served {
    config: std::sync::Arc<Config>,
    web_transport: std::sync::Mutex<WebTransport>,
    current: std::sync::RwLock<std::sync::Arc<Files>>,
}

/// One consistent set of deployment files.
#[derive(Debug)]
struct Files {
    config_json: axum::body::Bytes,
    integrity_json: Option<axum::body::Bytes>,
    bundle_hash: Option<String>,
    /// The `Link` header of the person's page (what it loads first, with the integrity of
    /// this manifest); `None` when the pages are not built in.
    person_links: Option<crate::preload::PersonLinks>,
}

impl Files {
    fn of(d: Deployment) -> Files {
        let person_links = d
            .integrity_json
            .as_deref()
            .and_then(|json| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).ok()
            })
            .map(|manifest| crate::preload::PersonLinks::new(embedded::PERSON_PRELOADS, &manifest));
        Files {
            person_links,
            config_json: d.config_json.into(),
            integrity_json: d.integrity_json.map(Into::into),
            bundle_hash: d.bundle_hash,
        }
    }
}

impl Served {
    /// Work out what `config` serves, with no WebTransport entry yet.
    pub fn new(config: std::sync::Arc<Config>) -> std::sync::Arc<Served> {
        let files = Files::of(deployment_with(&config, &WebTransport::default()));
        std::sync::Arc::new(Served {
            config,
            web_transport: Default::default(),
            current: std::sync::RwLock::new(std::sync::Arc::new(files)),
        })
    }

    fn files(&self) -> std::sync::Arc<Files> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut WebTransport)) -> Option<String> {
        let mut wt = self.web_transport.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut wt);
        let files = Files::of(deployment_with(&self.config, &wt));
        let hash = files.bundle_hash.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(files);
        hash
    }

    /// List these certificate hashes in `/config.json` (after a renewal); recomputes the
    /// manifest and the bundle hash, and returns the new bundle hash.
    pub fn set_certificate_hashes(&self, hashes: Vec<[u8; 32]>) -> Option<String> {
        self.update(|wt| wt.hashes = hashes)
    }

    /// List the QUIC endpoint's WebTransport port in `/config.json`; returns the new
    /// bundle hash.
    pub fn set_web_transport_port(&self, port: Option<u16>) -> Option<String> {
        self.update(|wt| wt.port = port)
    }

    /// The bundle hash of what is served now (`None` when the pages are not built in).
    pub fn bundle_hash(&self) -> Option<String> {
        self.files().bundle_hash.clone()
    }

    /// `/config.json` as served now.
    pub fn config_json(&self) -> axum::body::Bytes {
        self.files().config_json.clone()
    }
}

#[derive(Clone)]
struct PageState {
    served: std::sync::Arc<Served>,
}

/// The pages paths served under another URL, which the bundle hash names by their file.
const PAGES: &[&str] = &["/index.html", "/desk.html", "/exit.html"];

/// What this deployment serves beyond the built files, and the hash that covers it all.
///
/// The page trusts `/config.json` (the organisation key it pins, the desks, the current
/// revocation list) and `/integrity.json` (the Subresource Integrity of every file it
/// loads). Both are covered by the bundle hash: the relay adds `/config.json`'s SRI to the
/// built manifest, and hashes the served manifest and config with the built files, so the
/// hash the organisation publishes pins its key too. The page fetches `/config.json`
/// through that manifest and refuses any file the manifest does not list.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `/config.json`: `{"org": hex, "desks": [{id, name, names?}], "revocations": hex,
    /// "notSafeWord": string|null, "quickExitUrl": string|null}`.
    pub config_json: String,
    /// `/integrity.json` as served: the built manifest plus `/config.json`; `None` when
    /// the pages are not built into this relay.
    pub integrity_json: Option<String>,
    /// The bundle hash (see [`bundle_hash`]); `None` when the pages are not built.
    pub bundle_hash: Option<String>,
}

/// Hex of a signed revocation list as the page's core takes it (`addRevocations`): the
/// list's encoded body followed by its 64-byte signature.
pub fn revocations_hex(list: &approdo_core::identity::SignedRevocationList) -> String {
    let mut bytes = list.body.clone();
    bytes.extend_from_slice(&list.signature);
    hex::encode(bytes)
}

/// Subresource Integrity value (`sha384-` base64) of `bytes`.
fn sri(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
}

fn embedded_raw(path: &str) -> Option<&'static [u8]> {
    embedded::FILES
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.raw)
}

/// Work out what this deployment serves and its bundle hash (no WebTransport entry).
pub fn deployment(config: &Config) -> Deployment {
    deployment_with(config, &WebTransport::default())
}

/// Work out what this deployment serves and its bundle hash, `/config.json` listing what
/// WebTransport needs.
pub fn deployment_with(config: &Config, web_transport: &WebTransport) -> Deployment {
    let desks: Vec<serde_json::Value> = config
        .desks
        .iter()
        .map(|d| {
            let mut desk = serde_json::json!({ "id": d.id.as_str(), "name": d.name });
            if !d.names.is_empty() {
                desk["names"] = serde_json::json!(d.names);
            }
            desk
        })
        .collect();
    let mut config_json = serde_json::json!({
        "org": hex::encode(config.org.0),
        "desks": desks,
        "revocations": revocations_hex(&config.revocations),
        "notSafeWord": config.not_safe_word,
        "quickExitUrl": config.quick_exit_url,
    });
    if let (Some(wt), Some(object)) = (web_transport.to_json(), config_json.as_object_mut()) {
        object.insert("webtransport".into(), wt);
    }
    let config_json = config_json.to_string();
    let manifest = embedded_raw("/integrity.json").and_then(|raw| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(raw).ok()
    });
    let Some(mut manifest) = manifest else {
        return Deployment {
            config_json,
            integrity_json: None,
            bundle_hash: None,
        };
    };
    manifest.insert(
        "/config.json".into(),
        serde_json::Value::String(sri(config_json.as_bytes())),
    );
    let integrity_json = serde_json::Value::Object(manifest.clone()).to_string();
    // One SHA-256 over `path NUL sha256-hex LF` lines, sorted by path, of every file the
    // manifest lists, the three pages and the manifest itself: exactly what
    // scripts/bundle-hash recomputes from a live relay.
    let mut lines = std::collections::BTreeMap::new();
    let digest = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    for path in manifest.keys() {
        let bytes = if path == "/config.json" {
            Some(config_json.as_bytes())
        } else {
            embedded_raw(path)
        };
        if let Some(bytes) = bytes {
            lines.insert(path.clone(), digest(bytes));
        }
    }
    for page in PAGES {
        if let Some(bytes) = embedded_raw(page) {
            lines.insert((*page).to_owned(), digest(bytes));
        }
    }
    lines.insert("/integrity.json".into(), digest(integrity_json.as_bytes()));
    let mut all = Vec::new();
    for (path, hash) in &lines {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(hash.as_bytes());
        all.push(b'\n');
    }
    let bundle_hash = Some(digest(&all));
    Deployment {
        config_json,
        integrity_json: Some(integrity_json),
        bundle_hash,
    }
}

/// Routes for the pages: `/`, `/desk`, `/exit`, `/config.json`, `/integrity.json`,
/// `/bundle.sha256` and the built files.
/// What they serve comes from `served`, read at each request.
pub fn router(served: std::sync::Arc<Served>) -> Router {
    let state = PageState { served };
    Router::new()
        .route(
            "/",
            get(|State(s): State<PageState>, h: HeaderMap| async move {
                let mut r = file("/index.html", &h);
                if r.status().is_success() {
                    let accept_language = h
                        .get(header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let links = s
                        .served
                        .files()
                        .person_links
                        .as_ref()
                        .and_then(|l| l.header(accept_language));
                    if let Some(value) = links.and_then(|v| HeaderValue::from_str(&v).ok()) {
                        r.headers_mut().insert(header::LINK, value);
                        // The translation named depends on it (nothing is cached anyway).
                        r.headers_mut()
                            .append(header::VARY, HeaderValue::from_static("accept-language"));
                    }
                }
                r
            }),
        )
        .route(
            "/desk",
            get(|h: HeaderMap| async move { file("/desk.html", &h) }),
        )
        .route(
            "/exit",
            get(|h: HeaderMap| async move {
                let mut r = file("/exit.html", &h);
                r.headers_mut()
                    .insert("clear-site-data", HeaderValue::from_static(CLEAR_SITE_DATA));
                r
            }),
        )
        .route(
            "/config.json",
            get(|State(s): State<PageState>| async move {
                let json = s.served.files().config_json.clone();
                ([(header::CONTENT_TYPE, "application/json")], json).into_response()
            }),
        )
        .route(
            "/integrity.json",
            get(|State(s): State<PageState>, h: HeaderMap| async move {
                match s.served.files().integrity_json.clone() {
                    Some(json) => {
                        ([(header::CONTENT_TYPE, "application/json")], json).into_response()
                    }
                    None => file("/integrity.json", &h),
                }
            }),
        )
        .route(
            "/bundle.sha256",
            get(|State(s): State<PageState>| async move {
                match s.served.bundle_hash() {
                    Some(hash) => (
                        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        format!("{hash}\n"),
                    )
                        .into_response(),
                    None => (StatusCode::NOT_FOUND, "not found").into_response(),
                }
            }),
        )
        .fallback(|uri: Uri, h: HeaderMap| async move { file(uri.path(), &h) })
        .with_state(state)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn file(path: &str, headers: &HeaderMap) -> Response {
    let Some(EmbeddedFile {
        raw,
        gzip: gz,
        brotli: br,
        ..
    }) = embedded::FILES.iter().find(|f| f.path == path)
    else {
        if path == "/index.html" || path == "/desk.html" {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The web pages are not built into this relay: run scripts/build-web, then rebuild.",
            )
                .into_response();
        }
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type(path))
        .header(header::VARY, "accept-encoding");
    let body = match (br, gz) {
        (Some(br), _) if accepts_encoding(accepted, "br") => {
            builder = builder.header(header::CONTENT_ENCODING, "br");
            Body::from(*br)
        }
        (_, Some(gz)) if accepts_encoding(accepted, "gzip") => {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
            Body::from(*gz)
        }
        _ => Body::from(*raw),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whether an `Accept-Encoding` value accepts `coding` (named, not refused with `q=0`).
/// A `*` is not taken as consent: the plain file is always acceptable.
fn accepts_encoding(accept: &str, coding: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        name.eq_ignore_ascii_case(coding) && !refused
    })
}

/// The bundle hash of what this relay serves with `config`: the embedded pages and files,
/// the integrity manifest as served and the deployment's `/config.json` (organisation key,
/// desks, revocation list). For the organisation to publish, and for anyone to check against
/// a live relay (`scripts/bundle-hash URL`). `None` when the pages are not built in.
pub fn bundle_hash(config: &Config) -> Option<String> {
    deployment(config).bundle_hash
}

/// The hash `web-client/build.mjs` computed over the built files alone (before any
/// deployment's configuration), for checking a build.
pub fn build_hash() -> Option<&'static str> {
    embedded::BUNDLE_HASH
}

/// Whether the pages were built into this binary.
pub fn built() -> bool {
    embedded::FILES.iter().any(|f| f.path == "/index.html")
}

#[cfg(test)]
mod tests {
    use super::{accepts_encoding, csp_with_webtransport};

    #[test]
    fn accept_encoding_names_and_refusals() {
        assert!(accepts_encoding("gzip, deflate, br, zstd", "br"));
        assert!(accepts_encoding("gzip, deflate, br, zstd", "gzip"));
        assert!(!accepts_encoding("gzip, deflate", "br"));
        assert!(!accepts_encoding("br;q=0, gzip", "br"));
        assert!(accepts_encoding("br;q=0.5, gzip", "br"));
        assert!(!accepts_encoding("brotli", "br"));
        assert!(!accepts_encoding("*", "br"));
        assert!(!accepts_encoding("", "gzip"));
    }

    #[test]
    fn webtransport_csp_names_the_pages_own_host() {
        let csp = csp_with_webtransport("127.0.0.1:8080", 4433).unwrap_or_default();
        assert!(
            csp.contains("connect-src 'self' https://127.0.0.1:4433;"),
            "{csp}"
        );
        let csp = csp_with_webtransport("Relay.Example.org", 443).unwrap_or_default();
        assert!(
            csp.contains("connect-src 'self' https://relay.example.org:443;"),
            "{csp}"
        );
        let csp = csp_with_webtransport("[::1]:8080", 4433).unwrap_or_default();
        assert!(csp.contains("https://[::1]:4433;"), "{csp}");
    }

    #[test]
    fn a_host_header_cannot_inject_into_the_csp() {
        for host in [
            "a; script-src *",
            "evil.org https://x",
            "",
            "[::1",
            "[not-v6]:1",
            "a/b",
        ] {
            assert_eq!(csp_with_webtransport(host, 443), None, "{host:?}");
        }
    }
}
