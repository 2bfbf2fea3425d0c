//! Digest logins (RFC 7616) against an htdigest file: challenged beside Basic, a right
//! response lets the user in with their rules, a wrong one counts as a failed login, an
//! old or foreign nonce is answered with `stale=true`, and the signed target must be the
//! request's.

use std::sync::Arc;
use std::time::Duration;

use davit_server::ServerConfig;
use davit_server::auth::{Access, AccessPolicy, Auth, Htdigest, Htpasswd, UserRules};
use md5::{Digest, Md5};
use reqwest::StatusCode;

use crate::support::{Kind, TestServer};

/// alice ("secret"), bob ("hunter2", read-only) and jörg ("secret") for Digest; carol only
/// in htpasswd (bcrypt of "secret").
fn auth(max_failures: u32, nonce_lifetime: Duration) -> Arc<Auth> {
    let digest = davit_server::auth::upsert_digest_line("", "alice", "Davit", "secret");
    let digest = davit_server::auth::upsert_digest_line(&digest, "bob", "Davit", "hunter2");
    let digest = davit_server::auth::upsert_digest_line(&digest, "jörg", "Davit", "secret");
    let htpasswd = "carol:$2y$04$tl.O8ExrwquSXFrHl4BKUOar43nYcuU3FejG1I3R4hzSOSRl/niq2\n";
    let policy = AccessPolicy::new(Access::None)
        .with_user("bob", UserRules::new("/", Access::Read).unwrap());
    let auth = Auth::new(Htpasswd::parse(htpasswd).unwrap(), policy)
        .unwrap()
        .digest_users(Htdigest::parse(&digest, "Davit").unwrap())
        .nonce_lifetime(nonce_lifetime)
        .failure_limit(max_failures, Duration::from_secs(60))
        .failure_delay(Duration::ZERO);
    Arc::new(auth)
}

async fn start(max_failures: u32, nonce_lifetime: Duration) -> TestServer {
    let config = ServerConfig::builder()
        .auth(Some(auth(max_failures, nonce_lifetime)))
        .build();
    TestServer::start_with(Kind::Memory, config).await
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn md5(s: &str) -> String {
    hex(Md5::digest(s.as_bytes()))
}

/// The Digest challenge of a 401: its nonce, and whether it says `stale=true`.
fn digest_challenge(r: &reqwest::Response) -> (String, bool) {
    let challenges: Vec<&str> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[1].starts_with("Basic "), "{challenges:?}");
    let digest = challenges[0];
    assert!(digest.starts_with("Digest realm=\"Davit\""), "{digest}");
    assert!(digest.contains("qop=\"auth\"") && digest.contains("algorithm=MD5"));
    assert!(digest.contains("charset=UTF-8"), "{digest}");
    let nonce = digest
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    (nonce.to_owned(), digest.ends_with(", stale=true"))
}

/// What a client that knows `password` sends for `method` on `uri`, counting its requests
/// as a client does (a response is taken once).
fn credentials(user: &str, password: &str, method: &str, uri: &str, nonce: &str) -> String {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let nc = format!(
        "{:08x}",
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    credentials_at(user, password, method, uri, nonce, &nc)
}

fn credentials_at(
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
) -> String {
    let cnonce = "c0ffee";
    let ha1 = md5(&format!("{user}:Davit:{password}"));
    let ha2 = md5(&format!("{method}:{uri}"));
    let response = md5(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"Davit\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
    )
}

/// A fresh nonce, from a request without credentials.
async fn nonce(s: &TestServer) -> String {
    let r = s.req("GET", "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (nonce, stale) = digest_challenge(&r);
    assert!(!stale);
    nonce
}

async fn send(
    s: &TestServer,
    method: &str,
    uri: &str,
    authorization: &str,
    body: &'static str,
) -> reqwest::Response {
    s.req(method, uri)
        .header("Authorization", authorization)
        .header("Depth", "0")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_right_response_logs_the_user_in_with_their_rules() {
    let s = start(10_000, Duration::from_secs(300)).await;
    let n = nonce(&s).await;
    let alice = |m, uri| credentials("alice", "secret", m, uri, &n);
    let r = send(&s, "PUT", "/a.txt", &alice("PUT", "/a.txt"), "hello").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The query is part of the signed target.
    let r = send(&s, "GET", "/a.txt?v=1", &alice("GET", "/a.txt?v=1"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "hello");
    let r = send(&s, "PROPFIND", "/", &alice("PROPFIND", "/"), "").await;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    // bob reads but may not write.
    let bob = |m, uri| credentials("bob", "hunter2", m, uri, &n);
    let r = send(&s, "GET", "/a.txt", &bob("GET", "/a.txt"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(&s, "DELETE", "/a.txt", &bob("DELETE", "/a.txt"), "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn wrong_responses_are_failed_logins() {
    let s = start(3, Duration::from_secs(300)).await;
    let n = nonce(&s).await;
    let get = |user, password| credentials(user, password, "GET", "/", &n);
    // bob logs in before the guessing starts.
    assert_eq!(
        send(&s, "GET", "/", &get("bob", "hunter2"), "")
            .await
            .status(),
        200
    );
    for (user, password) in [
        ("alice", "guess"),
        ("mallory", "secret"),
        ("carol", "secret"),
    ] {
        let r = send(&s, "GET", "/", &get(user, password), "").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{user}");
        assert!(!digest_challenge(&r).1, "{user}");
    }
    // Three failures: the address is blocked. Every login gets 429, right or wrong, bob's
    // too though it verified before: letting it in would tell a right guess from a wrong.
    for (user, password) in [
        ("alice", "secret"),
        ("alice", "guess"),
        ("bob", "secret"),
        ("bob", "hunter2"),
    ] {
        let r = send(&s, "GET", "/", &get(user, password), "").await;
        assert_eq!(
            r.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{user}:{password}"
        );
    }
}

#[tokio::test]
async fn an_old_nonce_is_stale_for_the_right_password_only() {
    let s = start(10_000, Duration::ZERO).await;
    let n = nonce(&s).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", "/", &n),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (fresh, stale) = digest_challenge(&r);
    assert!(stale);
    assert_ne!(fresh, n);
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "guess", "GET", "/", &n),
        "",
    )
    .await;
    assert!(
        !digest_challenge(&r).1,
        "a wrong password is no stale nonce"
    );
}

#[tokio::test]
async fn a_nonce_this_server_did_not_issue_never_lets_in() {
    let s = start(10_000, Duration::from_secs(300)).await;
    let n = nonce(&s).await;
    // The current time with another MAC: a nonce from before a restart, or a forgery.
    let foreign = format!("{}{}", &n[..16], "0".repeat(32));
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", "/", &foreign),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(digest_challenge(&r).1, "asked again, without a prompt");
    let upper = n.to_ascii_uppercase();
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", "/", &upper),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn names_beyond_ascii_use_username_star_and_a_tab_may_follow_the_scheme() {
    let s = start(10_000, Duration::from_secs(300)).await;
    let n = nonce(&s).await;
    let plain = credentials("jörg", "secret", "GET", "/", &n);
    let star = plain.replace("username=\"jörg\"", "username*=UTF-8''j%C3%B6rg");
    assert_ne!(plain, star);
    assert_eq!(
        send(&s, "GET", "/", &star, "").await.status(),
        StatusCode::OK
    );
    // Raw UTF-8 in the quoted string, as curl sends it (the next request: a new count).
    let plain = credentials("jörg", "secret", "GET", "/", &n);
    let raw = reqwest::header::HeaderValue::from_bytes(plain.as_bytes()).unwrap();
    let r = s
        .req("GET", "/")
        .header("Authorization", raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tab = credentials("alice", "secret", "GET", "/", &n).replacen(' ', "\t", 1);
    assert_eq!(
        send(&s, "GET", "/", &tab, "").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_signed_target_must_be_the_requests() {
    let s = start(10_000, Duration::from_secs(300)).await;
    let n = nonce(&s).await;
    let signed_for_other = credentials("alice", "secret", "GET", "/other", &n);
    let r = send(&s, "GET", "/", &signed_for_other, "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The same target written otherwise: absolute, or with other percent-encoding.
    let absolute = s.url("/");
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", &absolute, &n),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{absolute}");
    let signed = credentials("alice", "secret", "PUT", "/d%c3%a9.txt", &n);
    let r = send(&s, "PUT", "/d%C3%A9.txt", &signed, "x").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Signed for another method: a wrong response.
    let r = send(
        &s,
        "DELETE",
        "/",
        &credentials("alice", "secret", "GET", "/", &n),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn what_the_server_did_not_offer_is_challenged_and_malformed_is_400() {
    let s = start(10_000, Duration::from_secs(300)).await;
    let n = nonce(&s).await;
    let right = credentials("alice", "secret", "GET", "/", &n);
    for other in [
        right.replace("algorithm=MD5", "algorithm=SHA-256"),
        right.replace("realm=\"Davit\"", "realm=\"Elsewhere\""),
        right.replace("qop=auth, ", ""),
        format!("{right}, userhash=true"),
    ] {
        let r = send(&s, "GET", "/", &other, "").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{other}");
        assert!(!digest_challenge(&r).1);
    }
    for malformed in [
        "Digest realm=\"Davit\"",
        "Digest username=alice",
        "Digest username=\"alice",
    ] {
        let r = send(&s, "GET", "/", malformed, "").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{malformed}");
    }
}

#[tokio::test]
async fn digest_users_and_htpasswd_users_also_log_in_with_basic() {
    let s = start(10_000, Duration::from_secs(300)).await;
    for (user, password, status) in [
        ("alice", "secret", StatusCode::OK),
        ("carol", "secret", StatusCode::OK),
        ("alice", "guess", StatusCode::UNAUTHORIZED),
        ("bob", "secret", StatusCode::UNAUTHORIZED),
    ] {
        let r = s
            .req("GET", "/")
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{user}:{password}");
    }
}

#[tokio::test]
async fn digest_only_neither_offers_nor_takes_basic() {
    let auth = Auth::new(Htpasswd::default(), AccessPolicy::new(Access::None))
        .unwrap()
        .digest_users(
            Htdigest::parse(
                &davit_server::auth::upsert_digest_line("", "alice", "Davit", "secret"),
                "Davit",
            )
            .unwrap(),
        )
        .digest_only();
    let config = ServerConfig::builder().auth(Some(Arc::new(auth))).build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    let r = s
        .req("GET", "/")
        .basic_auth("alice", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(challenges.len(), 1);
    assert!(challenges[0].to_str().unwrap().starts_with("Digest "));
    let nonce = davit_proto::DigestChallenge::parse(challenges[0].to_str().unwrap())
        .unwrap()
        .nonce;
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", "/", &nonce),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A nonce past half its life gets the next one in `Authentication-Info`, which then
/// works as any nonce issued here; a young nonce gets none.
#[tokio::test]
async fn a_nonce_past_half_its_life_comes_with_the_next() {
    let s = start(10_000, Duration::from_secs(4)).await;
    let n = nonce(&s).await;
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", "/", &n),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("authentication-info").is_none(), "young");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", "/", &n),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let info = r.headers()["authentication-info"]
        .to_str()
        .unwrap()
        .to_owned();
    let next = davit_proto::digest::next_nonce(&info).unwrap();
    assert_ne!(next, n);
    let r = send(
        &s,
        "GET",
        "/",
        &credentials("alice", "secret", "GET", "/", &next),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("authentication-info").is_none());
}

/// A request sent again as it was (a captured one) is asked to log in afresh, which needs
/// the password; the same nonce with the next count is let in.
#[tokio::test]
async fn a_response_sent_again_is_refused() {
    let s = start(10_000, Duration::from_secs(300)).await;
    let n = nonce(&s).await;
    let captured = credentials_at("alice", "secret", "PUT", "/f", &n, "00000001");
    assert_eq!(
        send(&s, "PUT", "/f", &captured, "mine").await.status(),
        StatusCode::CREATED
    );
    let r = send(&s, "PUT", "/f", &captured, "not mine").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        digest_challenge(&r).1,
        "stale: the owner's client logs in again unprompted"
    );
    assert_eq!(s.get_text("/f").await.0, StatusCode::UNAUTHORIZED);
    let next = credentials_at("alice", "secret", "GET", "/f", &n, "00000002");
    let r = send(&s, "GET", "/f", &next, "").await;
    assert_eq!(r.text().await.unwrap(), "mine");
}
