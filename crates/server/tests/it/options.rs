use reqwest::StatusCode;

use crate::both_backends;
use crate::support::TestServer;

async fn options_advertises_dav_and_methods(s: TestServer) {
    let r = s.req("OPTIONS", "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let dav = r.headers()["dav"].to_str().unwrap();
    assert!(dav.split(',').any(|c| c.trim() == "1"), "{dav}");
    // Office opens documents for editing only where this says DAV.
    assert_eq!(r.headers()["ms-author-via"], "DAV");
    let allow = r.headers()["allow"].to_str().unwrap();
    for m in ["PROPFIND", "PROPPATCH", "COPY", "MOVE", "DELETE", "GET"] {
        assert!(allow.contains(m), "{allow}");
    }
    let r = s.req("OPTIONS", "/missing").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["allow"].to_str().unwrap().contains("MKCOL"));
}

async fn unknown_method_is_501_and_post_is_405(s: TestServer) {
    let r = s.req("BREW", "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_IMPLEMENTED);
    s.put("/f", "x").await;
    let r = s.req("POST", "/f").send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "POST uploads into collections only"
    );
    assert!(r.headers().contains_key("allow"));
    let r = s.req("POST", "/").body("a=b").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = s.req("PATCH", "/f").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

both_backends!(
    options_advertises_dav_and_methods,
    unknown_method_is_501_and_post_is_405
);
