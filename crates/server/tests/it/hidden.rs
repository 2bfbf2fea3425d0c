//! `--hide`: matching files are left out of PROPFIND listings at every depth and of the
//! HTML page, stay reachable by name, and go with their folder; folders are never hidden.

use davit_server::{HiddenNames, ServerConfig};
use reqwest::StatusCode;

use crate::support::{Kind, PROPFIND_ALL, TestServer};

async fn start(kind: Kind) -> TestServer {
    let config = ServerConfig::builder()
        .hidden(HiddenNames::new(&["._*", ".DS_Store"]).unwrap())
        .build();
    TestServer::start_with(kind, config).await
}

async fn hidden_members_are_left_out_of_listings(kind: Kind) {
    let s = start(kind).await;
    for path in [
        "/a.txt",
        "/._a.txt",
        "/.DS_Store",
        "/sub/b.txt",
        "/sub/._b.txt",
    ] {
        if path.starts_with("/sub/") && s.get_text("/sub/").await.0 == StatusCode::NOT_FOUND {
            assert_eq!(s.mkcol("/sub/").await, StatusCode::CREATED);
        }
        assert_eq!(s.put(path, "x").await, StatusCode::CREATED, "{path}");
    }
    assert_eq!(s.mkcol("/._dir/").await, StatusCode::CREATED);
    assert_eq!(s.put("/._dir/inner.txt", "x").await, StatusCode::CREATED);

    let one = s.propfind("/", "1", PROPFIND_ALL).await;
    let mut one = one.hrefs();
    one.sort_unstable();
    assert_eq!(one, ["/", "/._dir/", "/a.txt", "/sub/"]);
    let all = s.propfind("/", "infinity", PROPFIND_ALL).await;
    let mut all = all.hrefs();
    all.sort_unstable();
    assert_eq!(
        all,
        [
            "/",
            "/._dir/",
            "/._dir/inner.txt",
            "/a.txt",
            "/sub/",
            "/sub/b.txt"
        ]
    );

    // Named, a hidden member is there as any other.
    assert_eq!(
        s.propfind("/._a.txt", "0", PROPFIND_ALL).await.hrefs(),
        ["/._a.txt"]
    );
    assert_eq!(
        s.get_text("/sub/._b.txt").await,
        (StatusCode::OK, "x".into())
    );
    assert_eq!(
        s.propfind("/._dir/", "1", PROPFIND_ALL).await.hrefs().len(),
        2,
        "a folder lists its own members"
    );

    let (status, page) = s.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("a.txt") && page.contains("sub/"), "{page}");
    assert!(page.contains("._dir/"), "{page}");
    assert!(
        !page.contains("._a.txt") && !page.contains("DS_Store"),
        "{page}"
    );

    // They go with their folder.
    let r = s.req("DELETE", "/sub/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.get_text("/sub/._b.txt").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hidden_members_are_left_out_of_listings_memory() {
    hidden_members_are_left_out_of_listings(Kind::Memory).await;
}

#[tokio::test]
async fn hidden_members_are_left_out_of_listings_fs() {
    hidden_members_are_left_out_of_listings(Kind::Fs).await;
}

/// Hidden files still count toward the `Depth: infinity` bound: listing them is the work
/// the bound limits.
#[tokio::test]
async fn hidden_files_count_toward_the_infinity_bound() {
    let config = ServerConfig::builder()
        .hidden(HiddenNames::new(&["._*"]).unwrap())
        .propfind_infinity_limit(4)
        .build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    for path in ["/a", "/._a", "/._b"] {
        assert_eq!(s.put(path, "x").await, StatusCode::CREATED);
    }
    let r = s
        .req("PROPFIND", "/")
        .header("Depth", "infinity")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS, "4 entries: within");
    assert_eq!(s.put("/._c", "x").await, StatusCode::CREATED);
    let r = s
        .req("PROPFIND", "/")
        .header("Depth", "infinity")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "5 entries, 2 of them shown"
    );
}
