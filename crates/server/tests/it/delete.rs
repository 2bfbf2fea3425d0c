use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{Kind, PROPFIND_ALL, TestServer};

const SET_X: &str = r#"<propertyupdate xmlns="DAV:"><set><prop><x xmlns="urn:t">1</x></prop></set></propertyupdate>"#;

async fn delete_file_and_collection(s: TestServer) {
    s.put("/f", "x").await;
    assert_eq!(
        s.req("DELETE", "/f").send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.req("DELETE", "/f").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    s.mkcol("/d").await;
    s.mkcol("/d/sub").await;
    s.put("/d/sub/a", "a").await;
    s.put("/d/b", "b").await;
    assert_eq!(
        s.proppatch("/d/sub/a", SET_X).await.status(),
        StatusCode::MULTI_STATUS
    );
    let r = s.req("DELETE", "/d").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.req("GET", "/d/b").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.propfind("/", "1", PROPFIND_ALL).await.hrefs(), vec!["/"]);

    // Properties went with the resource: a new one at the same path starts bare.
    s.mkcol("/d").await;
    s.mkcol("/d/sub").await;
    s.put("/d/sub/a", "a").await;
    let ms = s.propfind("/d/sub/a", "0", PROPFIND_ALL).await;
    assert_eq!(ms.get("/d/sub/a").prop("urn:t", "x"), None);
}

async fn delete_checks(s: TestServer) {
    assert_eq!(
        s.req("DELETE", "/").send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    s.mkcol("/d").await;
    let r = s
        .req("DELETE", "/d")
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .req("DELETE", "/d")
        .header("If-Match", "\"nope\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        s.req("DELETE", "/d/").send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

both_backends!(delete_file_and_collection, delete_checks);

/// RFC 4918 §9.6.1: members that cannot be deleted are listed in a 207, the others go.
#[tokio::test]
async fn delete_with_undeletable_members_answers_207_with_only_those() {
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::faulty(kind, "stuck", "never").await;
        s.mkcol("/t").await;
        s.mkcol("/t/sub").await;
        s.mkcol("/t/gone").await;
        for p in [
            "/t/a",
            "/t/stuck.txt",
            "/t/sub/b",
            "/t/sub/stuck2",
            "/t/gone/c",
        ] {
            assert_eq!(s.put(p, "x").await, StatusCode::CREATED, "{p}");
        }
        assert_eq!(
            s.proppatch("/t/stuck.txt", SET_X).await.status(),
            StatusCode::MULTI_STATUS
        );
        assert_eq!(
            s.proppatch("/t/a", SET_X).await.status(),
            StatusCode::MULTI_STATUS
        );

        let r = s.req("DELETE", "/t/").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::MULTI_STATUS, "{kind:?}");
        let ms = crate::support::Multistatus::parse(&r.text().await.unwrap());
        assert_eq!(
            ms.hrefs(),
            vec!["/t/stuck.txt", "/t/sub/stuck2"],
            "{kind:?}: only the failed members"
        );
        for r in &ms.responses {
            assert_eq!(r.status, Some(403));
            assert!(r.description.is_some());
        }
        let left = s.propfind("/t", "infinity", PROPFIND_ALL).await;
        assert_eq!(
            left.hrefs(),
            vec!["/t/", "/t/stuck.txt", "/t/sub/", "/t/sub/stuck2"],
            "{kind:?}"
        );
        assert_eq!(
            left.get("/t/stuck.txt").text("urn:t", "x").as_deref(),
            Some("1"),
            "kept props stay"
        );

        // The member that was deleted lost its properties.
        s.put("/t/a", "again").await;
        let ms = s.propfind("/t/a", "0", PROPFIND_ALL).await;
        assert_eq!(ms.get("/t/a").prop("urn:t", "x"), None);
    }
}

#[tokio::test]
async fn delete_of_a_single_undeletable_resource_is_a_plain_error() {
    let s = TestServer::faulty(Kind::Memory, "stuck", "never").await;
    s.put("/stuck", "x").await;
    assert_eq!(
        s.req("DELETE", "/stuck").send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    s.mkcol("/stuckdir").await;
    assert_eq!(
        s.req("DELETE", "/stuckdir").send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}
