//! Metrics: every answer counted by method and status, with its duration, and served in
//! Prometheus' text format on its own listener.

use std::sync::Arc;

use davit_server::ServerConfig;
use davit_server::metrics::Metrics;

use crate::support::{Kind, TestServer};

/// The value of the sample named `series` (the whole name with labels).
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn answers_are_counted_and_served() {
    let metrics = Metrics::new();
    let config = ServerConfig::builder()
        .metrics(Some(Arc::clone(&metrics)))
        .build();
    let s = TestServer::start_with(Kind::Fs, config).await;
    assert_eq!(s.put("/a.txt", "hello").await, 201);
    assert_eq!(s.get_text("/a.txt").await.0, 200);
    assert_eq!(s.get_text("/missing").await.0, 404);
    let r = s.req("BREW", "/a.txt").send().await.unwrap();
    assert_eq!(r.status(), 501);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let served = tokio::spawn(davit_server::metrics::serve(listener, Arc::clone(&metrics)));
    let client = reqwest::Client::new();
    let r = client
        .get(format!("http://{at}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for (series, n) in [
        (r#"davit_requests_total{method="PUT",code="201"}"#, 1),
        (r#"davit_requests_total{method="GET",code="200"}"#, 1),
        (r#"davit_requests_total{method="GET",code="404"}"#, 1),
        (r#"davit_requests_total{method="other",code="501"}"#, 1),
        (r#"davit_request_duration_seconds_count{method="GET"}"#, 2),
        (
            r#"davit_request_duration_seconds_bucket{method="PUT",le="+Inf"}"#,
            1,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(n), "{series} in\n{text}");
    }
    assert!(
        sample(&text, "davit_connections_total").unwrap() >= 1,
        "{text}"
    );
    // The test's client keeps its connection open between requests.
    assert!(
        sample(&text, "davit_connections_open").unwrap() >= 1,
        "{text}"
    );
    let r = client
        .get(format!("http://{at}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    for (method, path, status) in [("GET", "/", 404), ("POST", "/metrics", 405)] {
        let r = client
            .request(method.parse().unwrap(), format!("http://{at}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
    }
    served.abort();
}
