//! Authentication and per-user access: 401 for every method without a valid login, 403 for
//! every write of a read-only user, nothing reachable outside a user's root, and 429 once an
//! address has failed too often.

use std::sync::Arc;
use std::time::Duration;

use davit_server::ServerConfig;
use davit_server::auth::{Access, AccessPolicy, Auth, Htpasswd, UserRules};
use reqwest::StatusCode;

use crate::support::{Kind, TestServer};

// Made with Apache's `htpasswd -B -C 4` and `-m`, and `openssl passwd -5`: every password
// is "secret".
pub(crate) const USERS: &str = "\
alice:$2y$04$tl.O8ExrwquSXFrHl4BKUOar43nYcuU3FejG1I3R4hzSOSRl/niq2
bob:$apr1$9PeRwwz.$3hQuqRMiINyjg9PspLZlu/
carol:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA
dave:$apr1$d4v3salt$3FjX//O76zSuV7YtlESux1
";

/// Every method Davit answers.
pub(crate) const METHODS: [&str; 13] = [
    "OPTIONS",
    "GET",
    "HEAD",
    "PUT",
    "DELETE",
    "MKCOL",
    "COPY",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "POST",
];

fn auth(anonymous: Access, max_failures: u32) -> Arc<Auth> {
    let policy = AccessPolicy::new(anonymous)
        .with_user("bob", UserRules::new("/", Access::Read).unwrap())
        .with_user(
            "carol",
            UserRules::new("/carol", Access::Write)
                .unwrap()
                .with_rule("/carol/archive", Access::Read)
                .unwrap()
                .with_rule("/carol/archive/inbox", Access::Write)
                .unwrap()
                .with_rule("/carol/contract.pdf", Access::Read)
                .unwrap(),
        );
    let auth = Auth::new(Htpasswd::parse(USERS).unwrap(), policy)
        .unwrap()
        .failure_limit(max_failures, Duration::from_secs(60))
        .failure_delay(Duration::ZERO);
    Arc::new(auth)
}

async fn start(kind: Kind, anonymous: Access, max_failures: u32) -> TestServer {
    let config = ServerConfig::builder()
        .auth(Some(auth(anonymous, max_failures)))
        .build();
    TestServer::start_with(kind, config).await
}

/// A request as `user` (password "secret" unless `password` says otherwise).
fn as_user(
    s: &TestServer,
    method: &str,
    path: &str,
    user: &str,
    password: &str,
) -> reqwest::RequestBuilder {
    s.req(method, path).basic_auth(user, Some(password))
}

/// The headers COPY, MOVE and UNLOCK need, so they fail for want of access, not of a header.
fn any_method(r: reqwest::RequestBuilder, s: &TestServer) -> reqwest::RequestBuilder {
    r.header("Destination", s.url("/elsewhere")).header(
        "Lock-Token",
        "<urn:uuid:00000000-0000-0000-0000-000000000000>",
    )
}

async fn every_method_needs_a_valid_login(kind: Kind) {
    let s = start(kind, Access::None, 10_000).await;
    assert_eq!(
        as_user(&s, "PUT", "/doc.txt", "alice", "secret")
            .body("content")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    for method in METHODS {
        for path in ["/", "/doc.txt", "/missing"] {
            let anonymous = s
                .req(method, path)
                .header("Destination", s.url("/elsewhere"))
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(
                anonymous.status(),
                StatusCode::UNAUTHORIZED,
                "anonymous {method} {path}"
            );
            let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Basic realm="), "{challenge}");
            if path != "/doc.txt" {
                continue;
            }
            for (user, password) in [("alice", "wrong"), ("alice", ""), ("nobody", "secret")] {
                let r = any_method(as_user(&s, method, path, user, password), &s)
                    .body("x")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    StatusCode::UNAUTHORIZED,
                    "{user}:{password} {method} {path}"
                );
            }
        }
    }
    let r = as_user(&s, "GET", "/doc.txt", "alice", "secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "content", "nothing was changed");
    let r = as_user(&s, "GET", "/elsewhere", "alice", "secret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "nothing was copied or moved"
    );
}

#[tokio::test]
async fn every_method_needs_a_valid_login_memory() {
    every_method_needs_a_valid_login(Kind::Memory).await;
}

#[tokio::test]
async fn every_method_needs_a_valid_login_fs() {
    every_method_needs_a_valid_login(Kind::Fs).await;
}

#[tokio::test]
async fn a_read_only_user_reads_and_gets_403_on_every_write() {
    let s = start(Kind::Fs, Access::None, 10_000).await;
    let alice = |m, p| as_user(&s, m, p, "alice", "secret");
    assert_eq!(
        alice("PUT", "/doc.txt")
            .body("v1")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(alice("MKCOL", "/dir").send().await.unwrap().status(), 201);
    let bob = |m, p| as_user(&s, m, p, "bob", "secret");
    assert_eq!(bob("GET", "/doc.txt").send().await.unwrap().status(), 200);
    assert_eq!(bob("HEAD", "/doc.txt").send().await.unwrap().status(), 200);
    assert_eq!(bob("OPTIONS", "/").send().await.unwrap().status(), 200);
    let r = bob("PROPFIND", "/")
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    for method in [
        "PUT",
        "DELETE",
        "MKCOL",
        "COPY",
        "MOVE",
        "PROPPATCH",
        "LOCK",
        "UNLOCK",
        "POST",
    ] {
        for path in ["/doc.txt", "/dir/", "/new"] {
            let r = any_method(bob(method, path), &s)
                .header("Content-Type", "application/xml")
                .body(
                    r#"<propertyupdate xmlns="DAV:"><set><prop><x xmlns="urn:t">1</x></prop></set></propertyupdate>"#,
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "bob {method} {path}");
        }
    }
    let r = alice("GET", "/doc.txt").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "v1");
    let r = alice("PROPFIND", "/")
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    let listing = r.text().await.unwrap();
    assert!(
        !listing.contains("/new") && !listing.contains("/elsewhere"),
        "{listing}"
    );
}

#[tokio::test]
async fn a_user_stays_inside_their_root_and_rules() {
    let s = start(Kind::Fs, Access::None, 10_000).await;
    let alice = |m, p| as_user(&s, m, p, "alice", "secret");
    for dir in ["/carol", "/carol/archive", "/carol/archive/inbox"] {
        assert_eq!(alice("MKCOL", dir).send().await.unwrap().status(), 201);
    }
    assert_eq!(
        alice("PUT", "/top.txt")
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let carol = |m, p| as_user(&s, m, p, "carol", "secret");
    assert_eq!(
        carol("PUT", "/carol/a.txt")
            .body("a")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        carol("GET", "/carol/archive/")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for (method, path, dest) in [
        ("GET", "/top.txt", None),
        ("PROPFIND", "/", None),
        ("PUT", "/x.txt", None),
        ("PUT", "/carol/archive/x.txt", None),
        ("DELETE", "/carol/archive", None),
        // Deleting or moving the root would take the read-only archive with it.
        ("DELETE", "/carol", None),
        ("COPY", "/carol/a.txt", Some("/stolen.txt")),
        ("MOVE", "/carol/a.txt", Some("/carol/archive/a.txt")),
        ("COPY", "/top.txt", Some("/carol/top.txt")),
        ("OPTIONS", "/top.txt", None),
        // A lock over the whole tree would cover the read-only archive.
        ("LOCK", "/carol", None),
        // Write access inside a read-only folder does not extend to the folder's members.
        ("DELETE", "/carol/archive/inbox", None),
        ("MOVE", "/carol/archive/inbox", Some("/carol/inbox")),
        ("MKCOL", "/carol/archive/new", None),
        ("POST", "/carol/archive/", None),
        ("PUT", "/carol/contract.pdf", None),
    ] {
        let mut r = carol(method, path);
        if let Some(d) = dest {
            r = r.header("Destination", s.url(d));
        }
        assert_eq!(
            r.send().await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "carol {method} {path} {dest:?}"
        );
    }
    assert_eq!(carol("OPTIONS", "/").send().await.unwrap().status(), 200);
    // Nor does an If header learn the state of what lies outside.
    let probe =
        carol("GET", "/carol/a.txt").header("If", format!("<{}> ([\"x\"])", s.url("/top.txt")));
    assert_eq!(probe.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // A bulk upload is checked part by part: the read-only file is refused in the 207,
    // the other part is stored.
    let form = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"contract.pdf\"\r\n\r\nforged\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"notes.txt\"\r\n\r\nnotes\r\n--XyZ--\r\n";
    let r = carol("POST", "/carol/")
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .header("Accept", "application/xml")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = crate::support::Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.get("/carol/contract.pdf").status, Some(403));
    assert_eq!(ms.get("/carol/notes.txt").status, Some(201));
    assert_eq!(
        alice("GET", "/carol/contract.pdf")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let put = carol("PUT", "/carol/archive/inbox/x").body("x");
    assert_eq!(put.send().await.unwrap().status(), 201);
    let r = carol("COPY", "/carol/a.txt")
        .header("Destination", s.url("/carol/b.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        alice("GET", "/stolen.txt").send().await.unwrap().status(),
        404
    );
}

/// Write access to a name inside a folder the user may only read covers what is there, not
/// creating it: PUT and LOCK would add a member to the folder, as MKCOL would.
#[tokio::test]
async fn a_write_rule_in_a_read_only_folder_creates_nothing_there() {
    let s = start(Kind::Fs, Access::None, 10_000).await;
    let alice = |m, p| as_user(&s, m, p, "alice", "secret");
    for dir in ["/carol", "/carol/archive"] {
        assert_eq!(alice("MKCOL", dir).send().await.unwrap().status(), 201);
    }
    let carol = |m, p| as_user(&s, m, p, "carol", "secret");
    let lock = r#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>"#;
    let put = carol("PUT", "/carol/archive/inbox").body("x");
    assert_eq!(put.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let locked = carol("LOCK", "/carol/archive/inbox")
        .header("Depth", "0")
        .body(lock);
    assert_eq!(locked.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        alice("GET", "/carol/archive/inbox")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Once it is there, carol may replace and lock it.
    let made = alice("PUT", "/carol/archive/inbox").body("a");
    assert_eq!(made.send().await.unwrap().status(), 201);
    let put = carol("PUT", "/carol/archive/inbox").body("x");
    assert_eq!(put.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let locked = carol("LOCK", "/carol/archive/inbox")
        .header("Depth", "0")
        .body(lock);
    assert_eq!(locked.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn anonymous_readers_are_asked_to_log_in_to_write() {
    let s = start(Kind::Memory, Access::Read, 10_000).await;
    assert_eq!(
        as_user(&s, "PUT", "/f", "alice", "secret")
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(s.get_text("/f").await, (StatusCode::OK, "x".to_owned()));
    let r = s.req("PUT", "/f").body("y").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(s.get_text("/f").await.1, "x");
}

#[tokio::test]
async fn an_address_that_fails_too_often_gets_429_even_with_the_right_password() {
    let s = start(Kind::Memory, Access::None, 3).await;
    let dave = as_user(&s, "GET", "/", "dave", "secret");
    assert_eq!(dave.send().await.unwrap().status(), 200);
    for _ in 0..3 {
        let r = as_user(&s, "GET", "/", "alice", "guess")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    for password in ["guess", "secret"] {
        let r = as_user(&s, "GET", "/", "alice", password)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{password}");
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    // Nor does a user who logged in before get through: the answer would tell a guess of
    // that user's password from the others.
    let dave = as_user(&s, "GET", "/", "dave", "secret");
    assert_eq!(dave.send().await.unwrap().status(), 429);
    let guess = as_user(&s, "GET", "/", "dave", "guess");
    assert_eq!(guess.send().await.unwrap().status(), 429);
    // Requests without credentials are not failures, and are still challenged.
    assert_eq!(s.req("GET", "/").send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn malformed_basic_credentials_are_400_and_other_schemes_are_challenged() {
    let s = start(Kind::Memory, Access::None, 10_000).await;
    for (value, status) in [
        ("Basic !!!", StatusCode::BAD_REQUEST),
        ("Basic bm9jb2xvbg==", StatusCode::BAD_REQUEST),
        ("Bearer abc", StatusCode::UNAUTHORIZED),
        ("Basic", StatusCode::UNAUTHORIZED),
    ] {
        let r = s
            .req("GET", "/")
            .header("Authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{value}");
    }
}

/// RFC 4918 §6.4: a lock token works only for the user who took the lock, even though
/// anyone who can read the resource sees the token in `lockdiscovery`.
#[tokio::test]
async fn a_lock_token_works_only_for_the_user_who_took_the_lock() {
    let s = start(Kind::Fs, Access::None, 10_000).await;
    let alice = |m, p| as_user(&s, m, p, "alice", "secret");
    let dave = |m, p| as_user(&s, m, p, "dave", "secret");
    assert_eq!(
        alice("PUT", "/doc.txt")
            .body("v1")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let r = alice("LOCK", "/doc.txt")
        .body(r#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.headers()["lock-token"].to_str().unwrap().to_owned();
    let with_token = format!("({token})");
    let r = dave("PUT", "/doc.txt")
        .header("If", &with_token)
        .body("dave");
    assert_eq!(r.send().await.unwrap().status(), StatusCode::LOCKED);
    let r = dave("UNLOCK", "/doc.txt").header("Lock-Token", &token);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let r = dave("LOCK", "/doc.txt").header("If", &with_token);
    assert_ne!(
        r.send().await.unwrap().status(),
        StatusCode::OK,
        "no refresh either"
    );
    let r = alice("PUT", "/doc.txt")
        .header("If", &with_token)
        .body("v2");
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let r = alice("UNLOCK", "/doc.txt").header("Lock-Token", &token);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(
        dave("PUT", "/doc.txt")
            .body("v3")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}

/// Behind a trusted proxy, the login-failure limit counts each client the proxy names in
/// `X-Forwarded-For`, not the proxy; from anywhere else the header is not believed.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_failure_count() {
    let guess = |s: &TestServer, client: &str| {
        as_user(s, "GET", "/", "alice", "guess").header("X-Forwarded-For", client.to_owned())
    };
    let proxies = davit_server::TrustedProxies::new(&["127.0.0.1"]).unwrap();
    let config = ServerConfig::builder()
        .auth(Some(auth(Access::None, 2)))
        .trusted_proxies(proxies)
        .build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    for _ in 0..2 {
        let r = guess(&s, "192.0.2.1").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = guess(&s, "192.0.2.1").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = guess(&s, "192.0.2.2").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "another client");

    // Not trusted: the header is the client's own text, and the address counts.
    let s = start(Kind::Memory, Access::None, 2).await;
    for client in ["192.0.2.1", "192.0.2.2"] {
        let r = guess(&s, client).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = guess(&s, "192.0.2.3").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}
