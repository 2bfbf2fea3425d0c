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

/// `Allow` of an answer, as a list.
fn allow(r: &reqwest::Response) -> Vec<String> {
    let v = r.headers().get("allow").map(|v| v.to_str().unwrap());
    v.unwrap_or_else(|| panic!("no Allow in the {} answer", r.status()))
        .split(", ")
        .map(str::to_owned)
        .collect()
}

/// A 405 names what the resource takes (RFC 9110 §15.5.6): what OPTIONS lists for it,
/// without the method refused.
async fn every_405_allows_what_options_lists(s: TestServer) {
    s.mkcol("/c/").await;
    s.put("/f", "x").await;
    for (method, path, body) in [
        ("MKCOL", "/c/", ""),
        ("MKCOL", "/f", ""),
        ("PUT", "/c/", "x"),
        ("PUT", "/", "x"),
        ("POST", "/f", ""),
        ("PATCH", "/f", ""),
        ("PATCH", "/c/", ""),
        ("TRACE", "/missing", ""),
    ] {
        let options = s.req("OPTIONS", path).send().await.unwrap();
        let r = s.req(method, path).body(body).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let (listed, refused) = (allow(&options), allow(&r));
        assert_eq!(refused, listed, "{method} {path}");
        assert!(
            !refused.iter().any(|m| m == method),
            "{method} {path}: {refused:?}"
        );
    }
    let locking = allow(&s.req("OPTIONS", "/c/").send().await.unwrap());
    for m in ["LOCK", "UNLOCK", "PROPFIND", "POST"] {
        assert!(locking.iter().any(|l| l == m), "{m}: {locking:?}");
    }
}

both_backends!(
    options_advertises_dav_and_methods,
    unknown_method_is_501_and_post_is_405,
    every_405_allows_what_options_lists
);
