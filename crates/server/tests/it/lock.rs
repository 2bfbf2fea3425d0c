use std::sync::Arc;
use std::time::{Duration, SystemTime};

use davit_server::{ManualClock, ServerConfig};
use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{
    Kind, Multistatus, PROPFIND_ALL, TestServer, fs_backends, fs_server_remembering,
};

const EXCLUSIVE: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:ann@example.com</D:href> Ann &amp; co</D:owner></D:lockinfo>"#;
const SHARED: &str = r#"<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype><owner>shared one</owner></lockinfo>"#;
const SET_P: &str = r#"<propertyupdate xmlns="DAV:"><set><prop><p xmlns="urn:t">1</p></prop></set></propertyupdate>"#;

struct Granted {
    status: StatusCode,
    token: String,
    body: String,
}

async fn lock(s: &TestServer, path: &str, body: &str, headers: &[(&str, &str)]) -> Granted {
    let mut req = s
        .req("LOCK", path)
        .header("Content-Type", "application/xml")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let token = r
        .headers()
        .get("lock-token")
        .map(|v| v.to_str().unwrap().trim_matches(['<', '>']).to_owned())
        .unwrap_or_default();
    Granted {
        status,
        token,
        body: r.text().await.unwrap(),
    }
}

fn tagged(s: &TestServer, path: &str, token: &str) -> String {
    format!("<{}> (<{token}>)", s.url(path))
}

async fn status_of(req: reqwest::RequestBuilder) -> StatusCode {
    req.send().await.unwrap().status()
}

/// The text of the `lock-token-submitted` hrefs in a 423 body.
async fn locked_hrefs(r: reqwest::Response) -> Vec<String> {
    assert_eq!(r.status(), StatusCode::LOCKED);
    let body = r.text().await.unwrap();
    let doc = davit_proto::xml::parse_document(body.as_bytes(), Default::default()).unwrap();
    let cond = doc.elements().next().unwrap();
    assert!(cond.is("DAV:", "lock-token-submitted"), "{body}");
    cond.elements().map(|h| h.text()).collect()
}

async fn exclusive_lock_blocks_everyone_without_the_token(s: TestServer) {
    s.put("/f", "x").await;
    s.put("/other", "y").await;
    let g = lock(&s, "/f", EXCLUSIVE, &[("Timeout", "Second-600")]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert!(g.token.starts_with("urn:uuid:"), "{}", g.token);
    assert!(g.body.contains(&format!("<D:href>{}</D:href>", g.token)));
    assert!(
        g.body.contains(
            "<D:owner><href xmlns=\"DAV:\">mailto:ann@example.com</href> Ann &amp; co</D:owner>"
        ),
        "{}",
        g.body
    );
    assert!(g.body.contains("<D:timeout>Second-600</D:timeout>"));
    assert!(g.body.contains("<D:exclusive/>") && g.body.contains("<D:depth>0</D:depth>"));

    // Everyone without the token is refused, with the locked resource named.
    let hrefs = locked_hrefs(s.req("PUT", "/f").body("z").send().await.unwrap()).await;
    assert_eq!(hrefs, vec!["/f"]);
    assert_eq!(
        status_of(s.req("PROPPATCH", "/f").body(SET_P)).await,
        StatusCode::LOCKED
    );
    assert_eq!(status_of(s.req("DELETE", "/f")).await, StatusCode::LOCKED);
    assert_eq!(
        status_of(s.req("MOVE", "/f").header("Destination", "/g")).await,
        StatusCode::LOCKED
    );
    assert_eq!(
        status_of(s.req("COPY", "/other").header("Destination", "/f")).await,
        StatusCode::LOCKED
    );
    assert_eq!(
        lock(&s, "/f", EXCLUSIVE, &[]).await.status,
        StatusCode::LOCKED
    );
    let r = s.req("LOCK", "/f").body(SHARED).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::LOCKED);
    assert!(r.text().await.unwrap().contains("no-conflicting-lock"));
    // Reading and copying from it is fine.
    assert_eq!(s.get_text("/f").await, (StatusCode::OK, "x".into()));
    assert_eq!(
        status_of(s.req("COPY", "/f").header("Destination", "/copy")).await,
        StatusCode::CREATED
    );
    let copy = s.propfind("/copy", "0", PROPFIND_ALL).await;
    let (_, ld) = copy.get("/copy").prop("DAV:", "lockdiscovery").unwrap();
    assert_eq!(ld.elements().count(), 0, "COPY never copies locks");

    // With the token, tagged or not, it works.
    let if_tagged = tagged(&s, "/f", &g.token);
    assert_eq!(
        status_of(s.req("PUT", "/f").header("If", &if_tagged).body("z")).await,
        StatusCode::NO_CONTENT
    );
    let if_plain = format!("(<{}>)", g.token);
    assert_eq!(
        status_of(s.req("PROPPATCH", "/f").header("If", &if_plain).body(SET_P)).await,
        StatusCode::MULTI_STATUS
    );

    // lockdiscovery shows the lock as granted.
    let ms = s
        .propfind(
            "/f",
            "0",
            r#"<propfind xmlns="DAV:"><prop><lockdiscovery/><supportedlock/></prop></propfind>"#,
        )
        .await;
    let f = ms.get("/f");
    let (_, ld) = f.prop("DAV:", "lockdiscovery").unwrap();
    let active = ld.elements().next().expect("an activelock");
    let token = active
        .elements()
        .find(|e| e.local == "locktoken")
        .unwrap()
        .elements()
        .next()
        .unwrap()
        .text();
    assert_eq!(token, g.token);
    let owner = active.elements().find(|e| e.local == "owner").unwrap();
    assert_eq!(owner.text(), " Ann & co");
    let (_, sl) = f.prop("DAV:", "supportedlock").unwrap();
    assert_eq!(sl.elements().count(), 2, "exclusive and shared write locks");

    // UNLOCK needs the right token on the right resource.
    let r = s
        .req("UNLOCK", "/f")
        .header("Lock-Token", "<urn:uuid:wrong>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("lock-token-matches-request-uri")
    );
    let r = s
        .req("UNLOCK", "/other")
        .header("Lock-Token", format!("<{}>", g.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        status_of(s.req("UNLOCK", "/f")).await,
        StatusCode::BAD_REQUEST,
        "no token (RFC 4918 §9.11.1)"
    );
    assert_eq!(
        status_of(s.req("UNLOCK", "/f").header("Lock-Token", "no-brackets")).await,
        StatusCode::BAD_REQUEST
    );
    let r = s
        .req("UNLOCK", "/f")
        .header("Lock-Token", format!("<{}>", g.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.put("/f", "free").await, StatusCode::NO_CONTENT);
}

async fn shared_locks_coexist_and_exclude_exclusive(s: TestServer) {
    s.put("/f", "x").await;
    let a = lock(&s, "/f", SHARED, &[]).await;
    let b = lock(&s, "/f", SHARED, &[]).await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_ne!(a.token, b.token);
    assert!(a.body.contains("<D:shared/>"));
    assert_eq!(
        lock(&s, "/f", EXCLUSIVE, &[]).await.status,
        StatusCode::LOCKED
    );
    assert_eq!(s.put("/f", "y").await, StatusCode::LOCKED);
    // Each holder may write with its own token (RFC 4918 §6.2).
    for token in [&a.token, &b.token] {
        let own = format!("(<{token}>)");
        assert_eq!(
            status_of(s.req("PUT", "/f").header("If", &own).body("y")).await,
            StatusCode::NO_CONTENT
        );
    }
    let ms = s
        .propfind(
            "/f",
            "0",
            r#"<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>"#,
        )
        .await;
    let (_, ld) = ms.get("/f").prop("DAV:", "lockdiscovery").unwrap();
    assert_eq!(ld.elements().count(), 2);
}

async fn depth_infinity_lock_covers_new_members(s: TestServer) {
    s.mkcol("/c").await;
    let g = lock(&s, "/c/", EXCLUSIVE, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert!(g.body.contains("<D:depth>infinity</D:depth>"));
    assert!(
        g.body
            .contains("<D:lockroot><D:href>/c/</D:href></D:lockroot>"),
        "{}",
        g.body
    );
    let hrefs = locked_hrefs(s.req("PUT", "/c/new").body("x").send().await.unwrap()).await;
    assert_eq!(hrefs, vec!["/c/"]);
    assert_eq!(s.mkcol("/c/sub").await, StatusCode::LOCKED);
    let if_coll = tagged(&s, "/c/", &g.token);
    assert_eq!(
        status_of(s.req("PUT", "/c/new").header("If", &if_coll).body("x")).await,
        StatusCode::CREATED
    );
    let untagged = format!("(<{}>)", g.token);
    assert_eq!(
        status_of(s.req("MKCOL", "/c/sub").header("If", &untagged)).await,
        StatusCode::CREATED
    );
    assert_eq!(
        status_of(
            s.req("PUT", "/c/sub/deep")
                .header("If", &untagged)
                .body("x")
        )
        .await,
        StatusCode::CREATED
    );
    assert_eq!(
        s.put("/c/sub/deep", "x").await,
        StatusCode::LOCKED,
        "new members are covered too"
    );
    let ms = s
        .propfind(
            "/c/sub/deep",
            "0",
            r#"<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>"#,
        )
        .await;
    let (_, ld) = ms.get("/c/sub/deep").prop("DAV:", "lockdiscovery").unwrap();
    let root = ld
        .elements()
        .next()
        .unwrap()
        .elements()
        .find(|e| e.local == "lockroot")
        .unwrap();
    assert_eq!(root.elements().next().unwrap().text(), "/c/");
    // An indirect refresh, on a member, refreshes the collection's lock.
    let r = lock(
        &s,
        "/c/sub/deep",
        "",
        &[("If", &untagged), ("Timeout", "Second-120")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains(&g.token) && r.body.contains("Second-120"),
        "{}",
        r.body
    );
}

async fn depth_zero_collection_lock_guards_membership_only(s: TestServer) {
    s.mkcol("/d").await;
    s.put("/d/existing", "x").await;
    let g = lock(&s, "/d", EXCLUSIVE, &[("Depth", "0")]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(
        s.put("/d/new", "x").await,
        StatusCode::LOCKED,
        "adding a member"
    );
    assert_eq!(
        status_of(s.req("DELETE", "/d/existing")).await,
        StatusCode::LOCKED,
        "removing a member"
    );
    assert_eq!(
        s.put("/d/existing", "changed").await,
        StatusCode::NO_CONTENT,
        "a member's content is not the collection's"
    );
    let t = format!("(<{}>)", g.token);
    assert_eq!(
        status_of(s.req("PUT", "/d/new").header("If", &t).body("x")).await,
        StatusCode::CREATED
    );
}

async fn refresh_and_timeouts(s: TestServer) {
    s.put("/f", "x").await;
    let g = lock(&s, "/f", EXCLUSIVE, &[("Timeout", "Second-100")]).await;
    assert!(g.body.contains("Second-100"));
    let if_tok = format!("(<{}>)", g.token);
    let r = lock(&s, "/f", "", &[("If", &if_tok), ("Timeout", "Second-200")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("<D:timeout>Second-200</D:timeout>"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&g.token));
    assert_eq!(
        lock(&s, "/f", "", &[]).await.status,
        StatusCode::BAD_REQUEST,
        "a refresh needs the token"
    );
    // RFC 4918 §9.10.6: a refresh whose tokens name no lock here.
    let unknown = lock(&s, "/f", "", &[("If", "(<urn:uuid:nope>)")]).await;
    assert_eq!(unknown.status, StatusCode::PRECONDITION_FAILED);
    assert!(
        unknown.body.contains("<D:lock-token-matches-request-uri/>"),
        "{}",
        unknown.body
    );
    s.put("/other-file", "x").await;
    // The tagged list holds (the token is /f's), but no lock of it covers this resource.
    let tag = tagged(&s, "/f", &g.token);
    let elsewhere = lock(&s, "/other-file", "", &[("If", tag.as_str())]).await;
    assert_eq!(elsewhere.status, StatusCode::PRECONDITION_FAILED);
    assert!(
        elsewhere
            .body
            .contains("<D:lock-token-matches-request-uri/>"),
        "{}",
        elsewhere.body
    );
    // The configured maximum caps Infinite (3600 s by default).
    s.put("/g", "x").await;
    let inf = lock(&s, "/g", EXCLUSIVE, &[("Timeout", "Infinite")]).await;
    assert!(
        inf.body.contains("<D:timeout>Second-3600</D:timeout>"),
        "{}",
        inf.body
    );
    assert_eq!(
        lock(&s, "/g", EXCLUSIVE, &[("Timeout", "soon")])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        lock(&s, "/h", EXCLUSIVE, &[("Depth", "1")]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        lock(&s, "/h", "<lockinfo xmlns=\"DAV:\"/>", &[])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

async fn lock_on_an_unmapped_url_creates_an_empty_resource(s: TestServer) {
    let g = lock(&s, "/new.txt", EXCLUSIVE, &[]).await;
    assert_eq!(g.status, StatusCode::CREATED);
    assert!(!g.token.is_empty());
    assert_eq!(
        s.get_text("/new.txt").await,
        (StatusCode::OK, String::new())
    );
    assert_eq!(s.put("/new.txt", "x").await, StatusCode::LOCKED);
    assert_eq!(
        lock(&s, "/no/parent", EXCLUSIVE, &[]).await.status,
        StatusCode::CONFLICT
    );
}

async fn if_header_with_not_and_etags(s: TestServer) {
    s.put("/f", "x").await;
    s.put("/other", "o").await;
    let etag = |p: &'static str| {
        let req = s.req("HEAD", p);
        async move {
            req.send().await.unwrap().headers()["etag"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let (e, other) = (etag("/f").await, etag("/other").await);
    let put = |if_value: String| {
        let req = s.req("PUT", "/f").header("If", if_value).body("new");
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(put(format!("([{e}])")).await, StatusCode::NO_CONTENT);
    let e = etag("/f").await;
    assert_eq!(
        put("([\"stale\"])".into()).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        put("(Not [\"stale\"])".into()).await,
        StatusCode::NO_CONTENT
    );
    let e2 = etag("/f").await;
    assert_ne!(e, e2);
    assert_eq!(
        put(format!("(Not [{e2}])")).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        put("(<DAV:no-lock>)".into()).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        put("(Not <DAV:no-lock>)".into()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put("([\"stale\"]) (Not <DAV:no-lock>)".into()).await,
        StatusCode::NO_CONTENT,
        "lists are ORed"
    );
    assert_eq!(
        put("(Not <DAV:no-lock> [\"stale\"])".into()).await,
        StatusCode::PRECONDITION_FAILED,
        "conditions are ANDed"
    );
    // A tagged list is evaluated against the tagged resource.
    assert_eq!(
        put(format!("<{}> ([{other}])", s.url("/other"))).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put(format!("</other> ([{}])", etag("/f").await)).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(put("(<urn:x".into()).await, StatusCode::BAD_REQUEST);
    assert_eq!(
        put(format!(
            "<http://elsewhere.example/f> ([{}])",
            etag("/f").await
        ))
        .await,
        StatusCode::PRECONDITION_FAILED,
        "a list about another server's resource does not hold"
    );
    assert_eq!(
        status_of(s.req("GET", "/f").header("If", "([\"stale\"])")).await,
        StatusCode::PRECONDITION_FAILED
    );
    // A true If with a token that is not the lock's still leaves the lock unsatisfied.
    let g = lock(&s, "/f", EXCLUSIVE, &[]).await;
    let corrupt = format!("(<{}x>) (Not <DAV:no-lock>)", g.token);
    assert_eq!(put(corrupt).await, StatusCode::LOCKED);
    let wrong_etag = format!(
        "(<{}> [\"stale\"]) (Not <DAV:no-lock> [\"stale\"])",
        g.token
    );
    assert_eq!(
        put(wrong_etag).await,
        StatusCode::PRECONDITION_FAILED,
        "the If header is judged before locks"
    );
}

async fn delete_answers_207_with_423_for_a_locked_member(s: TestServer) {
    s.mkcol("/t").await;
    s.mkcol("/t/sub").await;
    for p in ["/t/a", "/t/locked", "/t/sub/b"] {
        s.put(p, "x").await;
    }
    let g = lock(&s, "/t/locked", EXCLUSIVE, &[]).await;
    let r = s.req("DELETE", "/t").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.hrefs(), vec!["/t/locked"]);
    assert_eq!(ms.responses[0].status, Some(423));
    assert!(
        ms.responses[0]
            .conditions
            .iter()
            .any(|c| c == "lock-token-submitted")
    );
    assert_eq!(
        s.propfind("/t", "infinity", PROPFIND_ALL).await.hrefs(),
        vec!["/t/", "/t/locked"]
    );
    // With the token, everything goes, the lock too.
    let t = format!("(<{}>)", g.token);
    assert_eq!(
        status_of(s.req("DELETE", "/t").header("If", &t)).await,
        StatusCode::NO_CONTENT
    );
    s.mkcol("/t").await;
    s.put("/t/locked", "again").await;
    assert_eq!(
        status_of(s.req("DELETE", "/t/locked")).await,
        StatusCode::NO_CONTENT,
        "the lock went with the resource"
    );
}

async fn move_keeps_a_locked_member_at_the_source(s: TestServer) {
    s.mkcol("/t").await;
    for p in ["/t/a", "/t/locked"] {
        s.put(p, "x").await;
    }
    s.proppatch("/t/locked", SET_P).await;
    lock(&s, "/t/locked", EXCLUSIVE, &[]).await;
    let r = s
        .req("MOVE", "/t/")
        .header("Destination", "/u/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.hrefs(), vec!["/t/locked"]);
    assert_eq!(ms.responses[0].status, Some(423));
    assert_eq!(
        s.propfind("/u", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/u/", "/u/a"]
    );
    // The locked member stayed, and so did its properties: none reached the destination.
    assert_eq!(s.put("/u/locked", "new").await, StatusCode::CREATED);
    let fresh = s.propfind("/u/locked", "0", PROPFIND_ALL).await;
    assert_eq!(fresh.get("/u/locked").text("urn:t", "p"), None);
    let left = s.propfind("/t", "1", PROPFIND_ALL).await;
    assert_eq!(left.hrefs(), vec!["/t/", "/t/locked"]);
    assert_eq!(
        left.get("/t/locked").text("urn:t", "p").as_deref(),
        Some("1")
    );
}

async fn move_drops_the_locks_of_what_moved(s: TestServer) {
    s.put("/m", "x").await;
    let g = lock(&s, "/m", EXCLUSIVE, &[]).await;
    let t = format!("(<{}>)", g.token);
    assert_eq!(
        status_of(
            s.req("MOVE", "/m")
                .header("Destination", "/m2")
                .header("If", &t)
        )
        .await,
        StatusCode::CREATED
    );
    assert_eq!(
        s.put("/m2", "y").await,
        StatusCode::NO_CONTENT,
        "the lock did not move"
    );
    let r = s
        .req("UNLOCK", "/m2")
        .header("Lock-Token", format!("<{}>", g.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "and is gone");
}

async fn depth_infinity_lock_conflicting_below_answers_207(s: TestServer) {
    s.mkcol("/p").await;
    s.put("/p/child", "x").await;
    lock(&s, "/p/child", EXCLUSIVE, &[]).await;
    let r = s.req("LOCK", "/p/").body(EXCLUSIVE).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.get("/p/child").status, Some(423));
    assert_eq!(ms.get("/p/").status, Some(424));
    // Depth 0 on the collection does not conflict with the member's lock.
    assert_eq!(
        lock(&s, "/p/", EXCLUSIVE, &[("Depth", "0")]).await.status,
        StatusCode::OK
    );
    // A locked folder below is named as a folder, with its slash.
    s.mkcol("/q").await;
    s.mkcol("/q/sub").await;
    lock(&s, "/q/sub", EXCLUSIVE, &[]).await;
    let r = s.req("LOCK", "/q/").body(EXCLUSIVE).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let body = r.text().await.unwrap();
    let ms = Multistatus::parse(&body);
    assert_eq!(ms.get("/q/sub/").status, Some(423));
    assert!(!body.contains("/q/sub<"), "{body}");
}

/// MOVE under `Overwrite: F` leaves finding an existing destination to the rename; the
/// answers must stay those of looking it up first: 412 before any lock check on it, and
/// nothing moved when the move has to go member by member.
async fn move_without_overwrite_onto_an_existing_destination_is_412(s: TestServer) {
    s.mkcol("/src").await;
    for p in ["/src/a", "/src/locked", "/dst"] {
        s.put(p, "x").await;
    }
    let move_to = |to: &str| {
        s.req("MOVE", "/src/")
            .header("Destination", s.url(to))
            .header("Overwrite", "F")
    };
    // The destination's own lock: without a probe its check would answer 423.
    lock(&s, "/dst", EXCLUSIVE, &[]).await;
    assert_eq!(
        status_of(move_to("/dst")).await,
        StatusCode::PRECONDITION_FAILED
    );
    // A locked member sends the move member by member, which must not replace anything.
    lock(&s, "/src/locked", EXCLUSIVE, &[]).await;
    s.mkcol("/other").await;
    assert_eq!(
        status_of(move_to("/other")).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        s.propfind("/src", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/src/", "/src/a", "/src/locked"],
        "nothing moved"
    );
    assert_eq!(
        s.propfind("/other", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/other/"]
    );
    // An ancestor of the source exists by definition.
    assert_eq!(
        status_of(
            s.req("MOVE", "/src/a")
                .header("Destination", s.url("/src/"))
                .header("Overwrite", "F")
        )
        .await,
        StatusCode::PRECONDITION_FAILED
    );
}

both_backends!(
    move_without_overwrite_onto_an_existing_destination_is_412,
    exclusive_lock_blocks_everyone_without_the_token,
    shared_locks_coexist_and_exclude_exclusive,
    depth_infinity_lock_covers_new_members,
    depth_zero_collection_lock_guards_membership_only,
    refresh_and_timeouts,
    lock_on_an_unmapped_url_creates_an_empty_resource,
    if_header_with_not_and_etags,
    delete_answers_207_with_423_for_a_locked_member,
    move_keeps_a_locked_member_at_the_source,
    move_drops_the_locks_of_what_moved,
    depth_infinity_lock_conflicting_below_answers_207,
);

#[tokio::test]
async fn locks_expire_by_the_clock() {
    for kind in [Kind::Memory, Kind::Fs] {
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        let config = ServerConfig::builder().clock(clock.clone()).build();
        let s = TestServer::start_with(kind, config).await;
        s.put("/f", "x").await;
        let g = lock(&s, "/f", EXCLUSIVE, &[("Timeout", "Second-60")]).await;
        clock.advance(Duration::from_secs(59));
        assert_eq!(
            s.put("/f", "y").await,
            StatusCode::LOCKED,
            "{kind:?}: still held"
        );
        let ms = s
            .propfind(
                "/f",
                "0",
                r#"<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>"#,
            )
            .await;
        let (_, ld) = ms.get("/f").prop("DAV:", "lockdiscovery").unwrap();
        let timeout = ld
            .elements()
            .next()
            .unwrap()
            .elements()
            .find(|e| e.local == "timeout")
            .unwrap()
            .text();
        assert_eq!(timeout, "Second-1");
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            s.put("/f", "y").await,
            StatusCode::NO_CONTENT,
            "{kind:?}: lapsed"
        );
        let r = s
            .req("UNLOCK", "/f")
            .header("Lock-Token", format!("<{}>", g.token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        // A lapsed lock does not conflict with a new one.
        assert_eq!(lock(&s, "/f", EXCLUSIVE, &[]).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn locks_survive_a_restart() {
    let s = TestServer::start(Kind::Fs).await;
    s.put("/f", "x").await;
    let g = lock(&s, "/f", EXCLUSIVE, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    let dir = s.stop().await.unwrap();
    let s = TestServer::with_backends(fs_backends(dir.path()), ServerConfig::default(), Some(dir))
        .await;
    assert_eq!(
        s.put("/f", "y").await,
        StatusCode::LOCKED,
        "still locked after the restart"
    );
    let r = s
        .req("UNLOCK", "/f")
        .header("Lock-Token", format!("<{}>", g.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.put("/f", "y").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn options_claims_class_2() {
    let s = TestServer::start(Kind::Memory).await;
    let r = s.req("OPTIONS", "/").send().await.unwrap();
    let dav = r.headers()["dav"].to_str().unwrap();
    for class in ["1", "2", "3"] {
        assert!(dav.split(',').any(|c| c.trim() == class), "{dav}");
    }
    assert!(r.headers()["allow"].to_str().unwrap().contains("LOCK"));
}

/// Random If headers never get a 5xx, and the ones that do not parse get 400.
#[tokio::test]
async fn random_if_headers_are_parsed_or_refused_with_400() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let s = TestServer::start(Kind::Memory).await;
    s.put("/f", "x").await;
    let mut runner = TestRunner::deterministic();
    let strategy = "[<>()\\[\\]\" NnOoTt:/a-c0-9W#%-]{0,40}";
    for _ in 0..300 {
        let value = strategy.new_tree(&mut runner).unwrap().current();
        let Ok(header) = reqwest::header::HeaderValue::from_str(&value) else {
            continue;
        };
        let status = s
            .req("PUT", "/f")
            .header("If", header)
            .body("y")
            .send()
            .await
            .unwrap()
            .status();
        let parses = davit_proto::IfHeader::parse(&value).is_ok();
        assert!(!status.is_server_error(), "{value:?} gave {status}");
        if !parses {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{value:?}");
        } else {
            assert!(
                matches!(status.as_u16(), 204 | 412),
                "{value:?} gave {status}"
            );
        }
    }
}

/// A PUT whose body was still arriving when a LOCK was granted must not land over the
/// lock holder's work.
#[tokio::test]
async fn a_slow_put_started_before_a_lock_does_not_overwrite_the_locked_resource() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::start(kind).await;
        s.put("/f", "original").await;
        let mut slow = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
            .await
            .unwrap();
        slow.write_all(b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nslowl")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let g = lock(&s, "/f", EXCLUSIVE, &[]).await;
        assert_eq!(g.status, StatusCode::OK);
        let mine = format!("(<{}>)", g.token);
        assert_eq!(
            status_of(s.req("PUT", "/f").header("If", &mine).body("locked edit")).await,
            StatusCode::NO_CONTENT
        );
        slow.write_all(b"y old").await.unwrap();
        let mut answer = vec![0u8; 64];
        let n = slow.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 423"), "{kind:?}: {answer}");
        assert_eq!(s.get_text("/f").await.1, "locked edit", "{kind:?}");
    }
}

/// A LOCK that creates an empty resource where a file was removed from the folder directly
/// leaves behind none of the old file's dead properties.
#[tokio::test]
async fn a_lock_that_creates_a_resource_starts_it_without_old_properties() {
    let (s, root) = fs_server_remembering(Duration::ZERO).await;
    assert_eq!(s.put("/f", "old").await, StatusCode::CREATED);
    assert_eq!(
        s.proppatch("/f", SET_P).await.status(),
        StatusCode::MULTI_STATUS
    );
    std::fs::remove_file(root.join("f")).unwrap();
    assert_eq!(
        lock(&s, "/f", EXCLUSIVE, &[]).await.status,
        StatusCode::CREATED
    );
    assert!(root.join("f").is_file());
    let ms = s.propfind("/f", "0", PROPFIND_ALL).await;
    assert_eq!(ms.get("/f").text("urn:t", "p"), None);
}
