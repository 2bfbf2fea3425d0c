//! Names spelled in the other Unicode normalization form (a Mac's decomposed "e" + accent
//! for a composed "é" another client made, or the reverse) reach what exists: no twin is
//! made beside it, nothing listed is "not found", a listing names what was asked for as
//! asked, and access rules judge what is reached.

use std::sync::Arc;
use std::time::Duration;

use davit_server::ServerConfig;
use davit_server::auth::{Access, AccessPolicy, Auth, Htpasswd, UserRules};
use reqwest::StatusCode;

use crate::auth::USERS;
use crate::both_backends;
use crate::support::{Kind, TestServer};

/// "Café", composed (NFC) and decomposed (NFD), as clients send them and as hrefs.
const COMPOSED: &str = "Caf\u{e9}";
const DECOMPOSED: &str = "Cafe\u{301}";
const COMPOSED_HREF: &str = "Caf%C3%A9";
const DECOMPOSED_HREF: &str = "Cafe%CC%81";

async fn status(s: &TestServer, method: &str, path: &str) -> StatusCode {
    s.req(method, path).send().await.unwrap().status()
}

async fn a_file_is_one_file_in_both_spellings(s: TestServer) {
    let (made, asked) = (format!("/{COMPOSED}.txt"), format!("/{DECOMPOSED}.txt"));
    assert_eq!(s.put(&made, "v1").await, StatusCode::CREATED);
    assert_eq!(s.get_text(&asked).await, (StatusCode::OK, "v1".to_owned()));
    assert_eq!(s.put(&asked, "v2").await, StatusCode::NO_CONTENT, "no twin");
    assert_eq!(s.get_text(&made).await, (StatusCode::OK, "v2".to_owned()));
    let listing = s.propfind("/", "1", "").await;
    assert_eq!(listing.hrefs(), ["/", &format!("/{COMPOSED_HREF}.txt")]);
    assert_eq!(status(&s, "DELETE", &asked).await, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, "GET", &made).await, StatusCode::NOT_FOUND);
}

async fn folders_are_matched_name_by_name(s: TestServer) {
    assert_eq!(
        s.mkcol(&format!("/{DECOMPOSED}/")).await,
        StatusCode::CREATED
    );
    assert_eq!(
        s.mkcol(&format!("/{COMPOSED}/")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "it exists, spelled the other way"
    );
    // A new file keeps its sender's spelling, inside the folder that exists.
    let new = format!("/{COMPOSED}/{COMPOSED}.txt");
    assert_eq!(s.put(&new, "x").await, StatusCode::CREATED);
    let listing = s.propfind(&format!("/{DECOMPOSED}/"), "1", "").await;
    assert_eq!(
        listing.hrefs(),
        [
            format!("/{DECOMPOSED_HREF}/"),
            format!("/{DECOMPOSED_HREF}/{COMPOSED_HREF}.txt")
        ]
    );
    // Asked for in the other spelling, the listing names what was asked for as asked, so
    // that a client finds the folder's own entry.
    let listing = s.propfind(&format!("/{COMPOSED}/"), "1", "").await;
    assert_eq!(
        listing.hrefs(),
        [
            format!("/{COMPOSED_HREF}/"),
            format!("/{COMPOSED_HREF}/{COMPOSED_HREF}.txt")
        ]
    );
    // Destinations too: a copy lands in the folder, over the file that is there.
    s.put("/src.txt", "copied").await;
    let r = s
        .req("COPY", "/src.txt")
        .header(
            "Destination",
            s.url(&format!("/{DECOMPOSED}/{DECOMPOSED}.txt")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "overwritten, not made");
    assert_eq!(s.get_text(&new).await.1, "copied");
}

both_backends!(
    a_file_is_one_file_in_both_spellings,
    folders_are_matched_name_by_name,
    a_move_can_change_only_the_spelling
);

#[tokio::test]
async fn access_rules_judge_what_the_request_reaches() {
    let policy = AccessPolicy::new(Access::None)
        .with_user("alice", UserRules::new("/", Access::Write).unwrap())
        .with_user(
            "bob",
            UserRules::new("/", Access::Write)
                .unwrap()
                .with_rule(&format!("/{COMPOSED}"), Access::Read)
                .unwrap(),
        )
        .with_user("carol", UserRules::new("/carol", Access::Write).unwrap());
    let auth = Auth::new(Htpasswd::parse(USERS).unwrap(), policy)
        .unwrap()
        .failure_delay(Duration::ZERO);
    let s = TestServer::start_with(
        Kind::Fs,
        ServerConfig::builder().auth(Some(Arc::new(auth))).build(),
    )
    .await;
    let as_user =
        |user: &str, method: &str, path: &str| s.req(method, path).basic_auth(user, Some("secret"));
    let made = as_user("alice", "MKCOL", &format!("/{COMPOSED}/"));
    assert_eq!(made.send().await.unwrap().status(), StatusCode::CREATED);
    let put = as_user("bob", "PUT", &format!("/{DECOMPOSED}/x.txt")).body("x");
    assert_eq!(put.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let own = as_user("bob", "PUT", "/mine.txt").body("m");
    assert_eq!(own.send().await.unwrap().status(), StatusCode::CREATED);
    let moved = as_user("bob", "MOVE", "/mine.txt")
        .header("Destination", s.url(&format!("/{DECOMPOSED}/mine.txt")));
    assert_eq!(moved.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // Where carol may not look, what exists is not matched: her refusal names her
    // spelling, as for a name that does not exist.
    let made = as_user("alice", "MKCOL", "/private/");
    assert_eq!(made.send().await.unwrap().status(), StatusCode::CREATED);
    let put = as_user("alice", "PUT", &format!("/private/{COMPOSED}.txt")).body("p");
    assert_eq!(put.send().await.unwrap().status(), StatusCode::CREATED);
    for name in [DECOMPOSED, "nothing-e\u{301}"] {
        let r = as_user("carol", "GET", &format!("/private/{name}.txt"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let text = r.text().await.unwrap();
        assert!(text.contains(&format!("/private/{name}.txt")), "{text}");
    }
}

async fn a_move_can_change_only_the_spelling(s: TestServer) {
    s.put(&format!("/{COMPOSED}.txt"), "x").await;
    let r = s
        .req("MOVE", &format!("/{COMPOSED}.txt"))
        .header("Destination", s.url(&format!("/{DECOMPOSED}.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let listing = s.propfind("/", "1", "").await;
    assert_eq!(listing.hrefs(), ["/", &format!("/{DECOMPOSED_HREF}.txt")]);
}
