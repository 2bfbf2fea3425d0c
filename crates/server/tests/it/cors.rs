//! CORS for browser applications on another origin: preflights answered before the login,
//! answers readable by allowed origins only, with the WebDAV headers exposed.

use std::sync::Arc;

use davit_server::auth::{Access, AccessPolicy, Auth, Htpasswd};
use davit_server::{CorsOrigins, ServerConfig};
use reqwest::StatusCode;

use crate::support::{Kind, TestServer};

const APP: &str = "https://app.example";

async fn start(origins: &[&str]) -> TestServer {
    // "secret", hashed by `openssl passwd -5`.
    let users = "carol:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA\n";
    let auth = Auth::new(
        Htpasswd::parse(users).unwrap(),
        AccessPolicy::new(Access::None),
    )
    .unwrap()
    .failure_delay(std::time::Duration::ZERO);
    let config = ServerConfig::builder()
        .auth(Some(Arc::new(auth)))
        .cors_origins(CorsOrigins::new(origins).unwrap())
        .build();
    TestServer::start_with(Kind::Memory, config).await
}

fn preflight(s: &TestServer, origin: &str) -> reqwest::RequestBuilder {
    s.req("OPTIONS", "/d/")
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "PROPFIND")
        .header("Access-Control-Request-Headers", "authorization, depth")
}

#[tokio::test]
async fn a_preflight_is_answered_before_the_login() {
    let s = start(&[APP]).await;
    let r = preflight(&s, APP).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PROPFIND")
    );
    assert_eq!(h["access-control-allow-headers"], "authorization, depth");
    // Another origin's preflight is an ordinary unauthenticated request.
    let r = preflight(&s, "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn answers_are_readable_by_allowed_origins_only() {
    let s = start(&[APP]).await;
    let put = s
        .req("PUT", "/f")
        .basic_auth("carol", Some("secret"))
        .header("Origin", APP)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let h = put.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    let exposed = h["access-control-expose-headers"].to_str().unwrap();
    for name in ["DAV", "ETag", "Lock-Token"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    assert!(
        h.get_all("vary").iter().any(|v| v == "Origin"),
        "caches keep answers per origin"
    );
    // Errors too: a browser application must be able to read a 401.
    let r = s
        .req("GET", "/f")
        .header("Origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["access-control-allow-origin"], APP);
    let r = s
        .req("GET", "/f")
        .basic_auth("carol", Some("secret"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(
        r.headers().get_all("vary").iter().any(|v| v == "Origin"),
        "a cache keeps this answer apart from the allowed origin's"
    );
}

#[tokio::test]
async fn any_origin_may_call_without_the_saved_login_and_none_means_off() {
    let any = start(&["*"]).await;
    let r = preflight(&any, "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // `*` with no credentials: a page may send a login it holds, never the browser's own.
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let off = start(&[]).await;
    let r = preflight(&off, APP).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
