//! The `Link: <…>; rel=preload` header of the person's page (`/`).
//!
//! On a slow mobile network every round trip costs about half a second. Without help, the
//! page's first files arrive one round trip after the page, and `/config.json` and the
//! translation one more round trip later: the scripts can only ask for them once the
//! integrity manifest is in, since they fetch them with its Subresource Integrity. The
//! header names all of them, so the browser requests them while it is still setting up the
//! document: everything the page needs arrives in one round trip after the page itself.
//!
//! Nothing is trusted because of it: a preload only warms the browser's cache, and the page
//! still fetches every file with the integrity the manifest lists (a response that does not
//! match is refused, preloaded or not). The list of files is the build's
//! (`web-client/build.mjs` writes `preload-links.txt`); the integrity values are those of the
//! manifest as served (with this deployment's `/config.json`); the translation is the one the
//! page itself will pick from the browser's languages (its `Accept-Language`), English when
//! none is ours. Nothing about the request is logged or kept.

use serde_json::{Map, Value};

/// The `Link` header value of the person's page, per translation.
#[derive(Debug, Clone, Default)]
pub struct PersonLinks {
    /// The build's files, with integrity, joined; the translation is added per request.
    files: String,
    /// Language code → the link for its translation, for the languages the page has.
    translations: Vec<(String, String)>,
}

/// One link-value: `</path>; rel=…` with the integrity the manifest lists for it.
/// `None` for a path that could break out of the header's syntax (the build's own paths
/// never do).
fn link(path: &str, kind: &str, manifest: &Map<String, Value>) -> Option<String> {
    let safe = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if !safe {
        return None;
    }
    let mut value = match kind {
        "fetch" => format!("<{path}>; rel=preload; as=fetch; crossorigin"),
        "style" => format!("<{path}>; rel=preload; as=style"),
        "module" => format!("<{path}>; rel=modulepreload"),
        _ => return None,
    };
    let integrity = manifest.get(path).and_then(Value::as_str);
    if let Some(sri) = integrity.filter(|s| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-".contains(&b))
    }) {
        value.push_str("; integrity=\"");
        value.push_str(sri);
        value.push('"');
    }
    Some(value)
}

impl PersonLinks {
    /// The links for `preloads` (`(path, "fetch" | "style" | "module")`, in the build's
    /// order) and every translation the served `manifest` lists (`/i18n/<code>.json`).
    pub fn new(preloads: &[(&str, &str)], manifest: &Map<String, Value>) -> PersonLinks {
        let files: Vec<String> = preloads
            .iter()
            .filter_map(|(path, kind)| link(path, kind, manifest))
            .collect();
        let translations = manifest
            .keys()
            .filter_map(|path| {
                let code = path.strip_prefix("/i18n/")?.strip_suffix(".json")?;
                let ours = !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase());
                if !ours {
                    return None;
                }
                Some((code.to_owned(), link(path, "fetch", manifest)?))
            })
            .collect();
        PersonLinks {
            files: files.join(", "),
            translations,
        }
    }

    /// The header value for a browser whose `Accept-Language` is `accept_language`; `None`
    /// when there is nothing to preload.
    pub fn header(&self, accept_language: &str) -> Option<String> {
        let translation = self.translation(accept_language);
        match (self.files.is_empty(), translation) {
            (true, None) => None,
            (false, None) => Some(self.files.clone()),
            (true, Some(t)) => Some(t.to_owned()),
            (false, Some(t)) => Some(format!("{}, {t}", self.files)),
        }
    }

    /// The translation the page will load first: the first of the browser's languages that
    /// is one of ours, by primary subtag ("ru-UA" is `ru`), as the page's own
    /// `browserLanguage()` chooses; English otherwise.
    fn translation(&self, accept_language: &str) -> Option<&str> {
        let find = |code: &str| {
            self.translations
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(code))
                .map(|(_, link)| link.as_str())
        };
        accept_language
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                if refused {
                    return None;
                }
                tag.split(['-', '_']).next()
            })
            .find_map(find)
            .or_else(|| find("en"))
    }
}

#[cfg(test)]
mod tests {
    use super::PersonLinks;
    use serde_json::{Map, Value, json};

    fn manifest() -> Map<String, Value> {
        let Value::Object(m) = json!({
            "/pkg/core.wasm": "sha384-AAAA",
            "/person.js": "sha384-BBBB",
            "/config.json": "sha384-CCCC",
            "/i18n/en.json": "sha384-EN",
            "/i18n/ru.json": "sha384-RU",
            "/i18n/desk/it.json": "sha384-DESK",
        }) else {
            return Map::new();
        };
        m
    }

    const PRELOADS: &[(&str, &str)] = &[
        ("/pkg/core.wasm", "fetch"),
        ("/integrity.json", "fetch"),
        ("/config.json", "fetch"),
        ("/person.js", "module"),
    ];

    #[test]
    fn lists_the_build_files_with_their_integrity_then_the_translation() {
        let links = PersonLinks::new(PRELOADS, &manifest());
        assert_eq!(
            links.header("ru-UA,ru;q=0.9,en;q=0.8").as_deref(),
            Some(
                "</pkg/core.wasm>; rel=preload; as=fetch; crossorigin; integrity=\"sha384-AAAA\", \
                 </integrity.json>; rel=preload; as=fetch; crossorigin, \
                 </config.json>; rel=preload; as=fetch; crossorigin; integrity=\"sha384-CCCC\", \
                 </person.js>; rel=modulepreload; integrity=\"sha384-BBBB\", \
                 </i18n/ru.json>; rel=preload; as=fetch; crossorigin; integrity=\"sha384-RU\""
            )
        );
    }

    #[test]
    fn the_translation_follows_the_page_choice() {
        let links = PersonLinks::new(&[], &manifest());
        let pick = |al: &str| links.header(al).unwrap_or_default();
        assert!(pick("RU").contains("/i18n/ru.json"));
        // Not one of ours, refused, or nothing at all: English, as the page does.
        assert!(pick("de-DE,de;q=0.9").contains("/i18n/en.json"));
        assert!(pick("ru;q=0, de").contains("/i18n/en.json"));
        assert!(pick("").contains("/i18n/en.json"));
        // The desk's translations are not the person's.
        assert!(!pick("it").contains("desk"));
    }

    #[test]
    fn paths_that_could_break_the_header_are_left_out() {
        let links = PersonLinks::new(
            &[("/a>, <//evil", "fetch"), ("/ok.js", "nope")],
            &Map::new(),
        );
        assert_eq!(links.header("en"), None);
    }
}
