//! `--hide`: matching members are left out of PROPFIND listings at every depth and of the
//! HTML page, stay reachable by name, and go with their folder.

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
    assert_eq!(one, ["/", "/a.txt", "/sub/"]);
    let all = s.propfind("/", "infinity", PROPFIND_ALL).await;
    let mut all = all.hrefs();
    all.sort_unstable();
    assert_eq!(all, ["/", "/a.txt", "/sub/", "/sub/b.txt"]);

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
        "a hidden folder lists its own members"
    );

    let (status, page) = s.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("a.txt") && page.contains("sub/"), "{page}");
    assert!(!page.contains("._") && !page.contains("DS_Store"), "{page}");

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
