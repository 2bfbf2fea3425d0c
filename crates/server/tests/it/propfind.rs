use davit_server::ServerConfig;
use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{Kind, Multistatus, PROPFIND_ALL, TestServer};

const DAV: &str = "DAV:";

async fn allprop_depth_0_on_a_file(s: TestServer) {
    s.put("/doc.html", "<p>hi</p>").await;
    let etag = s.req("HEAD", "/doc.html").send().await.unwrap().headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let ms = s.propfind("/doc.html", "0", PROPFIND_ALL).await;
    assert_eq!(ms.hrefs(), vec!["/doc.html"]);
    let r = ms.get("/doc.html");
    assert_eq!(r.text(DAV, "getcontentlength").as_deref(), Some("9"));
    assert_eq!(r.text(DAV, "getcontenttype").as_deref(), Some("text/html"));
    assert_eq!(r.text(DAV, "getetag").as_deref(), Some(etag.as_str()));
    assert_eq!(r.text(DAV, "displayname").as_deref(), Some("doc.html"));
    let (status, rt) = r.prop(DAV, "resourcetype").unwrap();
    assert_eq!((status, rt.elements().count()), (200, 0));
    let modified = r.text(DAV, "getlastmodified").unwrap();
    assert!(httpdate::parse_http_date(&modified).is_ok(), "{modified}");
    let created = r.text(DAV, "creationdate").unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert!(r.prop(DAV, "supportedlock").is_some());
    assert!(r.prop(DAV, "lockdiscovery").is_some());
}

async fn depth_1_lists_members_with_collection_slashes(s: TestServer) {
    s.mkcol("/c").await;
    s.mkcol("/c/sub").await;
    s.put("/c/f", "x").await;
    s.put("/c/sub/deep", "x").await;
    for path in ["/c", "/c/"] {
        let ms = s.propfind(path, "1", PROPFIND_ALL).await;
        assert_eq!(ms.hrefs(), vec!["/c/", "/c/f", "/c/sub/"], "{path}");
        let sub = ms.get("/c/sub/");
        let (_, rt) = sub.prop(DAV, "resourcetype").unwrap();
        assert!(rt.elements().any(|e| e.is(DAV, "collection")));
        assert_eq!(
            sub.prop(DAV, "getcontentlength"),
            None,
            "not listed for collections"
        );
    }
    let ms = s.propfind("/c/f", "1", PROPFIND_ALL).await;
    assert_eq!(ms.hrefs(), vec!["/c/f"], "Depth 1 on a file is the file");
    assert_eq!(
        s.req("PROPFIND", "/nothing")
            .header("Depth", "0")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn named_props_split_found_and_missing(s: TestServer) {
    s.mkcol("/c").await;
    let body = r#"<propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/><x:nope xmlns:x="urn:x"/></prop></propfind>"#;
    let ms = s.propfind("/c", "0", body).await;
    let r = ms.get("/c/");
    assert_eq!(r.status_of(DAV, "resourcetype"), Some(200));
    assert_eq!(r.status_of(DAV, "getcontentlength"), Some(404));
    assert_eq!(r.status_of("urn:x", "nope"), Some(404));
    assert_eq!(r.props.len(), 3, "nothing else is returned");
    let body = r#"<propfind xmlns="DAV:"><prop><x:nope xmlns:x="urn:x"/></prop></propfind>"#;
    let raw = s
        .req("PROPFIND", "/c")
        .header("Depth", "0")
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        raw.matches("<D:propstat>").count(),
        1,
        "no empty 200 propstat: {raw}"
    );
}

async fn propname_and_include(s: TestServer) {
    s.put("/f", "x").await;
    s.proppatch("/f", r#"<propertyupdate xmlns="DAV:"><set><prop><d xmlns="urn:d">v</d></prop></set></propertyupdate>"#).await;
    let ms = s
        .propfind(
            "/f",
            "0",
            r#"<propfind xmlns="DAV:"><propname/></propfind>"#,
        )
        .await;
    let r = ms.get("/f");
    for (ns, local) in [(DAV, "getetag"), (DAV, "getcontentlength"), ("urn:d", "d")] {
        let (status, e) = r.prop(ns, local).unwrap_or_else(|| panic!("{local}"));
        assert_eq!(status, 200);
        assert!(e.children.is_empty(), "propname gives names only");
    }
    let body =
        r#"<propfind xmlns="DAV:"><allprop/><include><z xmlns="urn:z"/></include></propfind>"#;
    let ms = s.propfind("/f", "0", body).await;
    let r = ms.get("/f");
    assert_eq!(
        r.text("urn:d", "d").as_deref(),
        Some("v"),
        "allprop has dead properties"
    );
    assert_eq!(r.status_of("urn:z", "z"), Some(404));
    // An empty body is allprop.
    let r = s
        .req("PROPFIND", "/f")
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = Multistatus::parse(&r.text().await.unwrap());
    assert!(ms.get("/f").text(DAV, "getetag").is_some());
}

async fn hrefs_are_percent_encoded_for_any_name(s: TestServer) {
    let names = [
        "a b",
        "100%",
        "hash#tag",
        "what?",
        "x&y",
        "€uro",
        "日本語",
        "quote'\"",
        "<angle>",
        "plus+",
    ];
    for n in names {
        let enc: String = n.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(
            s.put(&format!("/{enc}"), "x").await,
            StatusCode::CREATED,
            "{n}"
        );
    }
    s.mkcol("/dir%20x").await;
    let ms = s.propfind("/", "1", PROPFIND_ALL).await;
    let mut got: Vec<String> = ms
        .responses
        .iter()
        .map(|r| {
            assert!(r.href.is_ascii() && !r.href.contains(' '), "{}", r.href);
            percent_encoding::percent_decode_str(&r.href)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|n| format!("/{n}")).collect();
    want.push("/".into());
    want.push("/dir x/".into());
    want.sort();
    assert_eq!(got, want);
    // Each href, sent back, names the resource.
    for r in &ms.responses {
        assert_eq!(
            s.req("PROPFIND", &r.href)
                .header("Depth", "0")
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::MULTI_STATUS,
            "{}",
            r.href
        );
    }
}

async fn bad_bodies_and_depths_are_400(s: TestServer) {
    for body in [
        "<foo>",
        r#"<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>"#,
        r#"<propfind xmlns="DAV:"/>"#,
        r#"<other xmlns="DAV:"><allprop/></other>"#,
    ] {
        let r = s
            .req("PROPFIND", "/")
            .header("Depth", "0")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let r = s
        .req("PROPFIND", "/")
        .header("Depth", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn large_listing_streams(s: TestServer) {
    s.mkcol("/many").await;
    for i in 0..1500 {
        let r = s
            .req("PUT", &format!("/many/file-{i:04}"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let r = s
        .req("PROPFIND", "/many")
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let ms = Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.responses.len(), 1501);
}

async fn quota_properties_give_the_room_on_the_storage_to_collections(s: TestServer) {
    s.mkcol("/c").await;
    s.put("/c/f", "x").await;
    let body = r#"<propfind xmlns="DAV:"><prop><quota-available-bytes/><quota-used-bytes/><getetag/></prop></propfind>"#;
    let ms = s.propfind("/c", "1", body).await;
    let (c, f) = (ms.get("/c/"), ms.get("/c/f"));
    let quota = |local| c.text(DAV, local).map(|v| v.parse::<u64>().unwrap());
    match &s.root {
        Some(root) => {
            let (available, used) = (quota("quota-available-bytes"), quota("quota-used-bytes"));
            let st = rustix::fs::statvfs(root.path()).unwrap();
            let size = st.f_blocks * st.f_frsize;
            assert!(
                available.is_some_and(|a| a > 0 && a < size),
                "{available:?} of {size}"
            );
            assert!(
                used.is_some_and(|u| u > 0 && u < size),
                "{used:?} of {size}"
            );
        }
        // Memory has no room to speak of: the properties are not there.
        None => assert_eq!(c.status_of(DAV, "quota-used-bytes"), Some(404)),
    }
    // Collections only, as RFC 4331 requires them.
    assert_eq!(f.status_of(DAV, "quota-available-bytes"), Some(404));
    assert_eq!(f.status_of(DAV, "getetag"), Some(200));

    // Not in allprop, but there when included.
    let ms = s.propfind("/c", "0", crate::support::PROPFIND_ALL).await;
    assert_eq!(ms.get("/c/").prop(DAV, "quota-used-bytes"), None);
    let body =
        r#"<propfind xmlns="DAV:"><allprop/><include><quota-used-bytes/></include></propfind>"#;
    let ms = s.propfind("/c", "0", body).await;
    let want = if s.root.is_some() { 200 } else { 404 };
    assert_eq!(ms.get("/c/").status_of(DAV, "quota-used-bytes"), Some(want));

    let ms = s
        .propfind(
            "/c",
            "0",
            r#"<propfind xmlns="DAV:"><propname/></propfind>"#,
        )
        .await;
    let named = ms.get("/c/").prop(DAV, "quota-available-bytes").is_some();
    assert_eq!(
        named,
        s.root.is_some(),
        "propname names what a collection has"
    );

    let set = r#"<propertyupdate xmlns="DAV:"><set><prop><quota-used-bytes>1</quota-used-bytes></prop></set></propertyupdate>"#;
    let ms = Multistatus::parse(&s.proppatch("/c", set).await.text().await.unwrap());
    assert_eq!(ms.get("/c/").status_of(DAV, "quota-used-bytes"), Some(403));
}

/// Clients probe with doubled slashes, and name collections without their final slash
/// (gvfs, Orgzly, `PROPFIND //` from some scripts); each gets the resource, under its
/// one canonical href, and no redirect.
async fn doubled_and_missing_slashes_find_the_resource(s: TestServer) {
    s.mkcol("/c").await;
    s.put("/c/f", "x").await;
    for (asked, href) in [
        ("//", "/"),
        ("/c", "/c/"),
        ("//c//", "/c/"),
        ("/c//f", "/c/f"),
        ("/c/f/", "/c/f"),
    ] {
        let r = s
            .req("PROPFIND", asked)
            .header("Depth", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::MULTI_STATUS, "{asked}");
        let ms = Multistatus::parse(&r.text().await.unwrap());
        assert_eq!(ms.hrefs(), [href], "{asked}");
    }
}

/// A name holding characters XML 1.0 does not allow (a control character) still gives a
/// well-formed listing: one such name made the whole folder unreadable to every client.
async fn a_name_xml_cannot_hold_keeps_the_listing_well_formed(s: TestServer) {
    s.mkcol("/n").await;
    s.put("/n/a%01b", "x").await;
    s.put("/n/ok", "y").await;
    let ms = s.propfind("/n/", "1", PROPFIND_ALL).await;
    assert_eq!(ms.hrefs(), vec!["/n/", "/n/a%01b", "/n/ok"]);
    let shown = ms.get("/n/a%01b").text(DAV, "displayname").unwrap();
    assert_eq!(shown, "a\u{fffd}b");
}

/// A dead property in the `xml:` namespace reads back: its name is written with the `xml`
/// prefix, which may not be declared to another (Namespaces in XML §3).
async fn a_property_in_the_xml_namespace_reads_back(s: TestServer) {
    s.put("/f", "x").await;
    let set = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><xml:foo>1<xml:bar/></xml:foo></D:prop></D:set></D:propertyupdate>"#;
    assert_eq!(
        s.proppatch("/f", set).await.status(),
        StatusCode::MULTI_STATUS
    );
    let ms = s.propfind("/f", "0", PROPFIND_ALL).await;
    let xml = "http://www.w3.org/XML/1998/namespace";
    assert_eq!(ms.get("/f").text(xml, "foo").as_deref(), Some("1"));
}

both_backends!(
    a_name_xml_cannot_hold_keeps_the_listing_well_formed,
    a_property_in_the_xml_namespace_reads_back,
    doubled_and_missing_slashes_find_the_resource,
    quota_properties_give_the_room_on_the_storage_to_collections,
    allprop_depth_0_on_a_file,
    depth_1_lists_members_with_collection_slashes,
    named_props_split_found_and_missing,
    propname_and_include,
    hrefs_are_percent_encoded_for_any_name,
    bad_bodies_and_depths_are_400,
    large_listing_streams,
);

#[tokio::test]
async fn depth_infinity_is_bounded_by_the_configured_entries() {
    for kind in [Kind::Memory, Kind::Fs] {
        let config = ServerConfig::builder().propfind_infinity_limit(6).build();
        let s = TestServer::start_with(kind, config).await;
        s.mkcol("/a").await;
        s.mkcol("/a/b").await;
        for p in ["/a/1", "/a/b/2", "/a/b/3"] {
            s.put(p, "x").await;
        }
        // 6 entries with the root: allowed.
        let ms = s.propfind("/", "infinity", PROPFIND_ALL).await;
        assert_eq!(
            ms.hrefs(),
            vec!["/", "/a/", "/a/1", "/a/b/", "/a/b/2", "/a/b/3"]
        );
        let r = s.req("PROPFIND", "/").send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::MULTI_STATUS,
            "no Depth means infinity"
        );
        s.put("/a/b/4", "x").await;
        let r = s
            .req("PROPFIND", "/")
            .header("Depth", "infinity")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body = r.text().await.unwrap();
        assert!(body.contains("propfind-finite-depth"), "{body}");
        assert_eq!(
            s.propfind("/a/b", "infinity", PROPFIND_ALL)
                .await
                .responses
                .len(),
            4,
            "a smaller subtree is fine"
        );

        let s = TestServer::start_with(
            kind,
            ServerConfig::builder().propfind_infinity_limit(0).build(),
        )
        .await;
        let r = s
            .req("PROPFIND", "/")
            .header("Depth", "infinity")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn depth_1_answers_for_readable_members_when_one_is_unreadable() {
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::faulty(kind, "never", "unreadable").await;
        s.mkcol("/d").await;
        for p in ["/d/ok1", "/d/unreadable", "/d/ok2"] {
            s.put(p, "x").await;
        }
        let ms = s.propfind("/d", "1", PROPFIND_ALL).await;
        assert_eq!(ms.hrefs(), vec!["/d/", "/d/ok1", "/d/ok2", "/d/unreadable"]);
        assert_eq!(ms.get("/d/unreadable").status, Some(403));
        assert!(ms.get("/d/ok1").text(DAV, "getetag").is_some());
    }
}

/// A collection that can be looked at but not listed is an error, not an empty folder: a
/// client would take its members for deleted.
#[tokio::test]
async fn a_collection_that_cannot_be_listed_is_an_error_not_empty() {
    for kind in [Kind::Memory, Kind::Fs] {
        let s = TestServer::with_faults(kind, |f| f.unlistable("sealed")).await;
        s.mkcol("/sealed").await;
        s.put("/sealed/f", "x").await;
        let r = s
            .req("PROPFIND", "/sealed/")
            .header("Depth", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{kind:?}");
    }
}
