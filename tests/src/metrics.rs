//! Scraping a test relay's metrics listener and reading samples out of the text.

use crate::{TestRelay, WAIT};

/// `GET /metrics` on the relay's metrics listener; asserts a 200 in the 0.0.4 text format
/// and returns the text.
pub async fn scrape(relay: &TestRelay) -> String {
    let answer = crate::tls::http_get(relay.metrics, "/metrics").await;
    assert!(
        answer.status.starts_with("HTTP/1.1 200"),
        "scrape: {}",
        answer.status
    );
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    String::from_utf8(answer.body).expect("the exposition is UTF-8")
}

/// The labels of a sample line (`name{a="x",b="y"} 3`), in order.
fn labels_of(series: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series, Vec::new()));
    };
    let inner = rest.strip_suffix('}')?;
    let labels = inner
        .split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k, v.strip_prefix('"')?.strip_suffix('"')?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((name, labels))
}

/// The value of the sample `name` with exactly `labels` (in any order), if present.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    let mut wanted: Vec<(&str, &str)> = labels.to_vec();
    wanted.sort_unstable();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find_map(|(series, value)| {
            let (n, mut found) = labels_of(series)?;
            found.sort_unstable();
            if n == name && found == wanted {
                value.parse().ok()
            } else {
                None
            }
        })
}

/// The sum of every sample of `name`, whatever its labels.
pub fn total(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| labels_of(series).is_some_and(|(n, _)| n == name))
        .filter_map(|(_, value)| value.parse::<u64>().ok())
        .sum()
}

/// Scrape until the sample `name{labels}` reads `value` (for counts that follow a
/// disconnect a moment later); panics with the last scrape after [`WAIT`].
pub async fn until_sample(
    relay: &TestRelay,
    name: &str,
    labels: &[(&str, &str)],
    value: u64,
) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = scrape(relay).await;
        if sample(&text, name, labels) == Some(value) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{labels:?} never read {value}:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
