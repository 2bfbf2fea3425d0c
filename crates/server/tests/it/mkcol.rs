use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{PROPFIND_ALL, TestServer, remembering_server};

async fn mkcol_statuses(s: TestServer) {
    assert_eq!(s.mkcol("/c/").await, StatusCode::CREATED);
    assert_eq!(s.mkcol("/c/").await, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.mkcol("/c").await, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.mkcol("/x/y/").await, StatusCode::CONFLICT);
    s.put("/f", "x").await;
    assert_eq!(
        s.mkcol("/f/").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "a file is there"
    );
    assert_eq!(s.mkcol("/f/sub/").await, StatusCode::CONFLICT);
}

async fn mkcol_with_a_body_is_415_and_creates_nothing(s: TestServer) {
    let r = s
        .req("MKCOL", "/withbody")
        .header("Content-Type", "xzy-foo/bar-512")
        .body("afafafaf")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        s.req("GET", "/withbody").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

both_backends!(mkcol_statuses, mkcol_with_a_body_is_415_and_creates_nothing);

/// MKCOL where a collection was removed from the folder directly, while Davit's lookups
/// still remember it, creates it (201, not 405), without the old one's properties.
#[tokio::test]
async fn mkcol_where_a_collection_was_removed_outside_davit_creates_it() {
    let (s, root) = remembering_server().await;
    assert_eq!(s.mkcol("/c").await, StatusCode::CREATED);
    let set = r#"<propertyupdate xmlns="DAV:"><set><prop><old xmlns="urn:t">1</old></prop></set></propertyupdate>"#;
    assert_eq!(
        s.proppatch("/c", set).await.status(),
        StatusCode::MULTI_STATUS
    );
    std::fs::remove_dir(root.join("c")).unwrap();
    assert_eq!(s.mkcol("/c").await, StatusCode::CREATED);
    assert!(root.join("c").is_dir());
    let ms = s.propfind("/c", "0", PROPFIND_ALL).await;
    assert_eq!(ms.get("/c/").text("urn:t", "old"), None);
    assert_eq!(s.mkcol("/c").await, StatusCode::METHOD_NOT_ALLOWED);
}
