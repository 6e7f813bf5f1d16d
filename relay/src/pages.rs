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

#[derive(Clone)]
struct PageState {
    config_json: &'static str,
}

/// Routes for the pages: `/`, `/desk`, `/exit`, `/config.json` and the built files.
pub fn router(config: &Config) -> Router {
    let desks: Vec<serde_json::Value> = config
        .desks
        .iter()
        .map(|d| serde_json::json!({ "id": d.id.as_str(), "name": d.name }))
        .collect();
    let json = serde_json::json!({ "org": hex::encode(config.org.0), "desks": desks }).to_string();
    let state = PageState {
        config_json: Box::leak(json.into_boxed_str()),
    };
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { file("/index.html", &h) }),
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
                ([(header::CONTENT_TYPE, "application/json")], s.config_json).into_response()
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
    let Some(EmbeddedFile { raw, gzip: gz, .. }) = embedded::FILES.iter().find(|f| f.path == path)
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
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type(path))
        .header(header::VARY, "accept-encoding");
    let body = match gz {
        Some(gz) if accepts_gzip => {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
            Body::from(*gz)
        }
        _ => Body::from(*raw),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The hash of the embedded pages (see `web-client/build.mjs`), for the organisation to
/// publish and for anyone to check against what a relay serves (`scripts/bundle-hash`).
pub fn bundle_hash() -> Option<&'static str> {
    embedded::BUNDLE_HASH
}

/// Whether the pages were built into this binary.
pub fn built() -> bool {
    embedded::FILES.iter().any(|f| f.path == "/index.html")
}
