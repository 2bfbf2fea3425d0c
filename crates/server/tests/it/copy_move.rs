use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{Kind, Multistatus, PROPFIND_ALL, TestServer, remembering_server};

fn set(name: &str, value: &str) -> String {
    format!(
        r#"<propertyupdate xmlns="DAV:"><set><prop><{name} xmlns="urn:t">{value}</{name}></prop></set></propertyupdate>"#
    )
}

async fn send(
    s: &TestServer,
    method: &str,
    from: &str,
    to: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = s.req(method, from).header("Destination", s.url(to));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn copy_file_statuses_and_props(s: TestServer) {
    s.put("/src", "data").await;
    s.proppatch("/src", &set("p", "v")).await;
    let r = send(&s, "COPY", "/src", "/dst", &[]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.get_text("/dst").await.1, "data");
    let ms = s.propfind("/dst", "0", PROPFIND_ALL).await;
    assert_eq!(
        ms.get("/dst").text("urn:t", "p").as_deref(),
        Some("v"),
        "dead properties travel"
    );
    assert_eq!(
        send(&s, "COPY", "/src", "/dst", &[("Overwrite", "F")])
            .await
            .status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        send(&s, "COPY", "/src", "/dst", &[("Overwrite", "T")])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&s, "COPY", "/src", "/none/dst", &[]).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        send(&s, "COPY", "/src", "/src", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&s, "COPY", "/missing", "/x", &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    // Destination as a path, and a file over an existing collection.
    s.mkcol("/coll").await;
    s.put("/coll/inside", "x").await;
    let r = s
        .req("COPY", "/src")
        .header("Destination", "/coll/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.get_text("/coll").await.1, "data");
}

async fn copy_collection_depths(s: TestServer) {
    s.mkcol("/c").await;
    s.mkcol("/c/sub").await;
    s.put("/c/a", "a").await;
    s.put("/c/sub/b", "b").await;
    s.proppatch("/c", &set("top", "1")).await;
    s.proppatch("/c/sub/b", &set("deep", "2")).await;

    assert_eq!(
        send(&s, "COPY", "/c/", "/all/", &[]).await.status(),
        StatusCode::CREATED
    );
    let ms = s.propfind("/all", "infinity", PROPFIND_ALL).await;
    assert_eq!(
        ms.hrefs(),
        vec!["/all/", "/all/a", "/all/sub/", "/all/sub/b"]
    );
    assert_eq!(
        ms.get("/all/sub/b").text("urn:t", "deep").as_deref(),
        Some("2")
    );
    assert_eq!(ms.get("/all/").text("urn:t", "top").as_deref(), Some("1"));

    assert_eq!(
        send(&s, "COPY", "/c/", "/shallow/", &[("Depth", "0")])
            .await
            .status(),
        StatusCode::CREATED
    );
    let ms = s.propfind("/shallow", "infinity", PROPFIND_ALL).await;
    assert_eq!(
        ms.hrefs(),
        vec!["/shallow/"],
        "Depth 0 copies the collection alone"
    );
    assert_eq!(
        ms.get("/shallow/").text("urn:t", "top").as_deref(),
        Some("1")
    );

    assert_eq!(
        send(&s, "COPY", "/c/", "/one/", &[("Depth", "1")])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&s, "COPY", "/c/", "/c/sub/x", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    // A collection over an existing collection.
    assert_eq!(
        send(&s, "COPY", "/shallow/", "/all/", &[("Overwrite", "F")])
            .await
            .status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        send(&s, "COPY", "/shallow/", "/all/", &[]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.propfind("/all", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/all/"]
    );
}

async fn move_file_and_collection(s: TestServer) {
    s.put("/m", "moving").await;
    s.proppatch("/m", &set("p", "v")).await;
    assert_eq!(
        send(&s, "MOVE", "/m", "/m2", &[]).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        s.req("GET", "/m").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let ms = s.propfind("/m2", "0", PROPFIND_ALL).await;
    assert_eq!(ms.get("/m2").text("urn:t", "p").as_deref(), Some("v"));
    // The old path keeps no properties.
    s.put("/m", "new").await;
    assert_eq!(
        s.propfind("/m", "0", PROPFIND_ALL)
            .await
            .get("/m")
            .prop("urn:t", "p"),
        None
    );

    s.mkcol("/dir").await;
    s.put("/dir/x", "x").await;
    s.proppatch("/dir/x", &set("q", "w")).await;
    assert_eq!(
        send(&s, "MOVE", "/dir/", "/m2", &[("Overwrite", "F")])
            .await
            .status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        send(&s, "MOVE", "/dir/", "/m2", &[]).await.status(),
        StatusCode::NO_CONTENT,
        "a collection over a file"
    );
    let ms = s.propfind("/m2", "1", PROPFIND_ALL).await;
    assert_eq!(ms.hrefs(), vec!["/m2/", "/m2/x"]);
    assert_eq!(ms.get("/m2/x").text("urn:t", "q").as_deref(), Some("w"));
    assert_eq!(
        send(&s, "MOVE", "/m2/", "/m3", &[("Depth", "0")])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&s, "MOVE", "/m2/", "/m2/x/y", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&s, "MOVE", "/m2/x", "/m2", &[]).await.status(),
        StatusCode::FORBIDDEN,
        "would destroy the source"
    );
}

async fn destination_checks(s: TestServer) {
    s.put("/f", "x").await;
    let r = s.req("COPY", "/f").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no Destination");
    let r = s
        .req("COPY", "/f")
        .header("Destination", "http://elsewhere.example/f2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let r = s
        .req("MOVE", "/f")
        .header("Destination", "ftp://x/y")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .req("MOVE", "/f")
        .header("Destination", "/a/../../etc/passwd")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .req("MOVE", "/f")
        .header("Destination", "/a%2f..%2fb")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .req("MOVE", "/f")
        .header("Destination", "/f2")
        .header("Overwrite", "maybe")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A proxy that says which host the client used is believed.
    let r = s
        .req("COPY", "/f")
        .header("Destination", "https://public.example/f3")
        .header("X-Forwarded-Host", "public.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

both_backends!(
    copy_file_statuses_and_props,
    copy_collection_depths,
    move_file_and_collection,
    destination_checks,
    a_property_set_during_a_move_follows_it,
);

async fn tree(s: &TestServer) {
    s.mkcol("/t").await;
    s.mkcol("/t/sub").await;
    for p in ["/t/a", "/t/stuck.txt", "/t/sub/b"] {
        assert_eq!(s.put(p, "x").await, StatusCode::CREATED);
    }
    s.proppatch("/t/a", &set("p", "a")).await;
    s.proppatch("/t/stuck.txt", &set("p", "stuck")).await;
}

/// RFC 4918 §9.8.8: a COPY whose members partly fail answers 207 with those members.
#[tokio::test]
async fn copy_with_a_failing_member_answers_207() {
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::faulty(kind, "stuck", "never").await;
        tree(&s).await;
        let r = send(&s, "COPY", "/t/", "/u/", &[]).await;
        assert_eq!(r.status(), StatusCode::MULTI_STATUS, "{kind:?}");
        let ms = Multistatus::parse(&r.text().await.unwrap());
        assert_eq!(ms.hrefs(), vec!["/u/stuck.txt"]);
        assert_eq!(ms.responses[0].status, Some(403));
        let copied = s.propfind("/u", "infinity", PROPFIND_ALL).await;
        assert_eq!(copied.hrefs(), vec!["/u/", "/u/a", "/u/sub/", "/u/sub/b"]);
        assert_eq!(copied.get("/u/a").text("urn:t", "p").as_deref(), Some("a"));
        // The member that was not copied left no properties at the destination.
        assert_eq!(s.put("/u/stuck.txt", "new").await, StatusCode::CREATED);
        let fresh = s.propfind("/u/stuck.txt", "0", PROPFIND_ALL).await;
        assert_eq!(
            fresh.get("/u/stuck.txt").text("urn:t", "p"),
            None,
            "{kind:?}"
        );
    }
}

/// RFC 4918 §9.9.4: a MOVE whose members partly fail answers 207; what failed stays.
#[tokio::test]
async fn move_with_a_failing_member_answers_207_and_keeps_it_at_the_source() {
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::faulty(kind, "stuck", "never").await;
        tree(&s).await;
        let r = send(&s, "MOVE", "/t/", "/v/", &[]).await;
        assert_eq!(r.status(), StatusCode::MULTI_STATUS, "{kind:?}");
        let ms = Multistatus::parse(&r.text().await.unwrap());
        assert_eq!(ms.hrefs(), vec!["/v/stuck.txt"]);
        let moved = s.propfind("/v", "infinity", PROPFIND_ALL).await;
        assert_eq!(moved.hrefs(), vec!["/v/", "/v/a", "/v/sub/", "/v/sub/b"]);
        assert_eq!(moved.get("/v/a").text("urn:t", "p").as_deref(), Some("a"));
        let left = s.propfind("/t", "infinity", PROPFIND_ALL).await;
        assert_eq!(left.hrefs(), vec!["/t/", "/t/stuck.txt"]);
        assert_eq!(
            left.get("/t/stuck.txt").text("urn:t", "p").as_deref(),
            Some("stuck")
        );
    }
}

/// A rename that happened but was reported failed (the folders' sync after it failed):
/// the MOVE fails, and the properties are where the content went, not left behind.
#[tokio::test]
async fn a_rename_reported_failed_after_it_happened_keeps_the_properties_with_the_content() {
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::with_faults(kind, |f| f.renamed_then_failing("landed")).await;
        s.put("/a", "a").await;
        let set = r#"<propertyupdate xmlns="DAV:"><set><prop><p xmlns="urn:t">kept</p></prop></set></propertyupdate>"#;
        assert_eq!(
            s.proppatch("/a", set).await.status(),
            StatusCode::MULTI_STATUS
        );
        let r = send(&s, "MOVE", "/a", "/landed", &[]).await;
        assert!(r.status().is_server_error(), "{kind:?}: {}", r.status());
        assert_eq!(s.get_text("/landed").await.1, "a");
        let ms = s.propfind("/landed", "0", PROPFIND_ALL).await;
        assert_eq!(
            ms.get("/landed").text("urn:t", "p").as_deref(),
            Some("kept"),
            "{kind:?}"
        );
    }
}

/// A destination removed from the folder directly, while Davit's lookups still remember it,
/// is created anew (201) rather than failing to be cleared (404) or refused as existing
/// (412), and keeps none of the old one's properties.
#[tokio::test]
async fn a_destination_removed_outside_davit_is_created_anew() {
    let (s, root) = remembering_server().await;
    s.mkcol("/c").await;
    s.put("/c/a", "a").await;
    s.put("/f", "f").await;
    // Each case finds its destination made by an earlier one, or by a first COPY.
    for (first, method, from, to, overwrite, depth) in [
        (true, "COPY", "/c/", "/d/", "T", "infinity"),
        (true, "COPY", "/f", "/g", "T", "infinity"),
        (false, "COPY", "/c/", "/d/", "F", "infinity"),
        (false, "COPY", "/c/", "/d/", "T", "0"),
        (false, "MOVE", "/c/", "/d/", "T", "infinity"),
        (false, "MOVE", "/f", "/g", "F", "infinity"),
    ] {
        if first {
            let made = send(&s, "COPY", from, to, &[]).await.status();
            assert_eq!(made, StatusCode::CREATED);
        }
        let mut stale = vec![to];
        if root.join("d/a").exists() && to == "/d/" {
            stale.push("/d/a");
        }
        for path in stale {
            let set = s.proppatch(path, &set("old", "1")).await.status();
            assert_eq!(set, StatusCode::MULTI_STATUS);
        }
        let on_disk = root.join(to.trim_matches('/'));
        if on_disk.is_dir() {
            std::fs::remove_dir_all(&on_disk).unwrap();
        } else {
            std::fs::remove_file(&on_disk).unwrap();
        }
        let headers = [("Overwrite", overwrite), ("Depth", depth)];
        let r = send(&s, method, from, to, &headers).await;
        let case = format!("{method} {from} {to} Overwrite {overwrite} Depth {depth}");
        assert_eq!(r.status(), StatusCode::CREATED, "{case}");
        assert!(on_disk.exists(), "{case}");
        let ms = s.propfind(to, "infinity", PROPFIND_ALL).await;
        for href in ms.hrefs() {
            assert_eq!(ms.get(href).text("urn:t", "old"), None, "{case}: {href}");
        }
    }
}

/// A hard link is another resource that shares the source's object: replacing it is a
/// plain overwrite, not the refusal given to a name that is the source itself (storage
/// that ignores case).
#[tokio::test]
async fn a_hard_link_of_the_source_is_replaced() {
    let (s, root) = remembering_server().await;
    for method in ["COPY", "MOVE"] {
        s.put("/a", "content").await;
        std::fs::hard_link(root.join("a"), root.join("b")).unwrap();
        let r = send(&s, method, "/a", "/b", &[("Overwrite", "T")]).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{method}");
        assert_eq!(s.get_text("/b").await.1, "content", "{method}");
        assert_eq!(root.join("a").exists(), method == "COPY", "{method}");
        s.req("DELETE", "/b").send().await.unwrap();
        s.req("DELETE", "/a").send().await.unwrap();
    }
}

/// A destination that something else removes just as COPY or MOVE clears it is created:
/// 201, not 204 and not 404.
#[tokio::test]
async fn a_destination_gone_while_it_is_cleared_is_created() {
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::with_faults(kind, |f| f.vanishing("gone")).await;
        s.put("/src", "data").await;
        // The MOVE finds the COPY's destination.
        assert_eq!(s.put("/gone", "old").await, StatusCode::CREATED);
        for method in ["COPY", "MOVE"] {
            let r = send(&s, method, "/src", "/gone", &[("Overwrite", "T")]).await;
            assert_eq!(r.status(), StatusCode::CREATED, "{kind:?} {method}");
            assert_eq!(s.get_text("/gone").await.1, "data", "{kind:?} {method}");
        }
    }
}

/// A PROPPATCH on a member while its folder is moved: a property set (200) is found at
/// the member's new place. Run side by side, the PROPPATCH could commit at the old path
/// after the rename and the property move, and the property was lost.
async fn a_property_set_during_a_move_follows_it(s: TestServer) {
    const SET: &str = r#"<propertyupdate xmlns="DAV:"><set><prop><tag xmlns="urn:t">x</tag></prop></set></propertyupdate>"#;
    const ASK: &str = r#"<propfind xmlns="DAV:"><prop><tag xmlns="urn:t"/></prop></propfind>"#;
    for round in 0..12 {
        let (from, to) = (format!("/r{round}"), format!("/m{round}"));
        s.mkcol(&from).await;
        let member = format!("{from}/f");
        s.put(&member, "f").await;
        let patch = s.proppatch(&member, SET);
        let moved = s
            .req("MOVE", &from)
            .header("Destination", s.url(&to))
            .send();
        let (patch, moved) = tokio::join!(patch, moved);
        assert_eq!(moved.unwrap().status(), StatusCode::CREATED);
        let set = patch.status() == StatusCode::MULTI_STATUS
            && Multistatus::parse(&patch.text().await.unwrap())
                .responses
                .iter()
                .all(|r| r.status_of("urn:t", "tag") == Some(200));
        if set {
            let ms = s.propfind(&format!("{to}/f"), "0", ASK).await;
            let tag = ms.responses[0].text("urn:t", "tag");
            assert_eq!(tag.as_deref(), Some("x"), "round {round}");
        }
    }
}
