use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{Multistatus, TestServer};

async fn patch(s: &TestServer, path: &str, body: &str) -> Multistatus {
    let r = s.proppatch(path, body).await;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    Multistatus::parse(&r.text().await.unwrap())
}

async fn set_and_remove_in_document_order(s: TestServer) {
    s.put("/f", "x").await;
    let ms = patch(
        &s,
        "/f",
        r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
        <D:remove><D:prop><Z:a/></D:prop></D:remove>
        <D:set><D:prop><Z:a>x</Z:a><Z:b>keep</Z:b></D:prop></D:set>
        <D:set><D:prop><Z:a>y</Z:a></D:prop></D:set>
        <D:remove><D:prop><Z:never-set/></D:prop></D:remove>
    </D:propertyupdate>"#,
    )
    .await;
    let r = ms.get("/f");
    for local in ["a", "b", "never-set"] {
        assert_eq!(r.status_of("urn:z", local), Some(200), "{local}");
    }
    assert_eq!(r.props.len(), 3, "each property reported once");
    let got = s.propfind("/f", "0", crate::support::PROPFIND_ALL).await;
    let f = got.get("/f");
    assert_eq!(f.text("urn:z", "a").as_deref(), Some("y"));
    assert_eq!(f.text("urn:z", "b").as_deref(), Some("keep"));
    patch(&s, "/f", r#"<propertyupdate xmlns="DAV:"><set><prop><a xmlns="urn:z">1</a></prop></set><remove><prop><a xmlns="urn:z"/></prop></remove></propertyupdate>"#).await;
    let got = s
        .propfind(
            "/f",
            "0",
            r#"<propfind xmlns="DAV:"><prop><a xmlns="urn:z"/></prop></propfind>"#,
        )
        .await;
    assert_eq!(got.get("/f").status_of("urn:z", "a"), Some(404));
}

async fn values_round_trip_with_namespaces_and_language(s: TestServer) {
    s.put("/f", "x").await;
    patch(&s, "/f", r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop xml:lang="fr">
        <t:xmlval xmlns:t="urn:t"><foo xmlns="http://bar" a="1">text &amp; <b>bold</b></foo><bare xmlns="">n</bare></t:xmlval>
        <t:hi xmlns:t="urn:t">&#65536; é</t:hi>
        <nons xmlns="">plain</nons>
    </D:prop></D:set></D:propertyupdate>"#).await;
    let got = s.propfind("/f", "0", crate::support::PROPFIND_ALL).await;
    let f = got.get("/f");
    let (_, v) = f.prop("urn:t", "xmlval").unwrap();
    assert_eq!(v.lang.as_deref(), Some("fr"));
    let first = v.elements().next().unwrap();
    assert!(first.is("http://bar", "foo"));
    assert_eq!(first.attributes[0].value, "1");
    assert_eq!(first.text(), "text & ");
    assert!(first.elements().next().unwrap().is("http://bar", "b"));
    assert!(v.elements().nth(1).unwrap().is("", "bare"));
    assert_eq!(f.text("urn:t", "hi").as_deref(), Some("\u{10000} é"));
    assert_eq!(f.text("", "nons").as_deref(), Some("plain"));
}

async fn protected_property_fails_all_with_403_and_424(s: TestServer) {
    s.put("/f", "x").await;
    let ms = patch(
        &s,
        "/f",
        r#"<propertyupdate xmlns="DAV:"><set><prop>
        <a xmlns="urn:z">1</a><getetag>"forged"</getetag><b xmlns="urn:z">2</b>
    </prop></set></propertyupdate>"#,
    )
    .await;
    let r = ms.get("/f");
    assert_eq!(r.status_of("DAV:", "getetag"), Some(403));
    assert!(
        r.conditions
            .iter()
            .any(|c| c == "cannot-modify-protected-property")
    );
    assert_eq!(r.status_of("urn:z", "a"), Some(424));
    assert_eq!(r.status_of("urn:z", "b"), Some(424));
    let got = s.propfind("/f", "0", crate::support::PROPFIND_ALL).await;
    assert_eq!(
        got.get("/f").prop("urn:z", "a"),
        None,
        "nothing was applied"
    );
}

async fn displayname_is_settable(s: TestServer) {
    s.mkcol("/c").await;
    patch(&s, "/c", r#"<propertyupdate xmlns="DAV:"><set><prop><displayname>My Folder</displayname></prop></set></propertyupdate>"#).await;
    let got = s.propfind("/c", "0", crate::support::PROPFIND_ALL).await;
    let c = got.get("/c/");
    assert_eq!(c.text("DAV:", "displayname").as_deref(), Some("My Folder"));
    assert_eq!(c.props.iter().filter(|p| p.1 == "displayname").count(), 1);
}

async fn proppatch_errors(s: TestServer) {
    let body = r#"<propertyupdate xmlns="DAV:"><set><prop><a xmlns="urn:z">1</a></prop></set></propertyupdate>"#;
    assert_eq!(
        s.proppatch("/missing", body).await.status(),
        StatusCode::NOT_FOUND
    );
    s.put("/f", "x").await;
    assert_eq!(
        s.proppatch("/f", "<not-xml").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.proppatch("/f", r#"<propertyupdate xmlns="DAV:"/>"#)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}

const WIN32_SET: &str = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>
    <Z:Win32CreationTime>Tue, 31 Dec 2019 08:00:00 GMT</Z:Win32CreationTime>
    <Z:Win32LastModifiedTime>Wed, 01 Jan 2020 10:00:00 GMT</Z:Win32LastModifiedTime>
    <Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>
</D:prop></D:set></D:propertyupdate>"#;
const MS: &str = "urn:schemas-microsoft-com:";
const SET_DATE: &str = "Wed, 01 Jan 2020 10:00:00 GMT";

async fn win32_last_modified_time_becomes_the_resources_date(s: TestServer) {
    s.put("/f", "x").await;
    s.mkcol("/c").await;
    for (path, href) in [("/f", "/f"), ("/c", "/c/")] {
        let ms = patch(&s, path, WIN32_SET).await;
        let r = ms.get(href);
        for local in [
            "Win32CreationTime",
            "Win32LastModifiedTime",
            "Win32FileAttributes",
        ] {
            assert_eq!(r.status_of(MS, local), Some(200), "{path} {local}");
        }
        let got = s.propfind(path, "0", crate::support::PROPFIND_ALL).await;
        let r = got.get(href);
        assert_eq!(
            r.text("DAV:", "getlastmodified").as_deref(),
            Some(SET_DATE),
            "{path}"
        );
        assert_eq!(
            r.text(MS, "Win32LastModifiedTime").as_deref(),
            Some(SET_DATE),
            "{path}"
        );
    }
    if let Some(root) = &s.root {
        let on_disk = std::fs::metadata(root.path().join("f"))
            .unwrap()
            .modified()
            .unwrap();
        let set = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_872_800);
        assert_eq!(on_disk, set);
    }

    // Not a date: kept as the property it is, and the date stays.
    let ms = patch(&s, "/f", r#"<propertyupdate xmlns="DAV:"><set><prop><Win32LastModifiedTime xmlns="urn:schemas-microsoft-com:">yesterday</Win32LastModifiedTime></prop></set></propertyupdate>"#).await;
    assert_eq!(
        ms.get("/f").status_of(MS, "Win32LastModifiedTime"),
        Some(200)
    );
    // A PROPPATCH that fails applies nothing, the date included.
    let ms = patch(&s, "/f", r#"<propertyupdate xmlns="DAV:"><set><prop><Win32LastModifiedTime xmlns="urn:schemas-microsoft-com:">Fri, 01 Jan 2021 10:00:00 GMT</Win32LastModifiedTime><getetag>"forged"</getetag></prop></set></propertyupdate>"#).await;
    assert_eq!(
        ms.get("/f").status_of(MS, "Win32LastModifiedTime"),
        Some(424)
    );
    let got = s.propfind("/f", "0", crate::support::PROPFIND_ALL).await;
    let r = got.get("/f");
    assert_eq!(r.text("DAV:", "getlastmodified").as_deref(), Some(SET_DATE));
    assert_eq!(
        r.text(MS, "Win32LastModifiedTime").as_deref(),
        Some("yesterday")
    );
}

/// More dead properties than are looked up by scanning, each named in one PROPPATCH twice
/// (reported once), then some found and some missing by name.
async fn many_properties_named_in_one_request(s: TestServer) {
    s.put("/f", "x").await;
    let sets: String = (0..100).map(|i| format!("<Z:p{i}>v{i}</Z:p{i}>")).collect();
    let body = format!(
        r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>{sets}</D:prop></D:set><D:set><D:prop>{sets}</D:prop></D:set></D:propertyupdate>"#
    );
    let ms = patch(&s, "/f", &body).await;
    let r = ms.get("/f");
    assert_eq!(r.props.len(), 100, "each property reported once");
    assert!((0..100).all(|i| r.status_of("urn:z", &format!("p{i}")) == Some(200)));
    let got = s
        .propfind(
            "/f",
            "0",
            r#"<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:p7/><Z:p99/><Z:p100/><D:getetag/></D:prop></D:propfind>"#,
        )
        .await;
    let f = got.get("/f");
    assert_eq!(f.text("urn:z", "p7").as_deref(), Some("v7"));
    assert_eq!(f.text("urn:z", "p99").as_deref(), Some("v99"));
    assert_eq!(f.status_of("urn:z", "p100"), Some(404));
    assert_eq!(f.status_of("DAV:", "getetag"), Some(200));
}

/// One attribute twice once namespaces are resolved: refused, nothing stored.
async fn a_value_with_one_attribute_twice_is_refused(s: TestServer) {
    s.put("/f", "x").await;
    let r = s
        .proppatch(
            "/f",
            r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:p><Z:v xmlns:a="urn:n" xmlns:b="urn:n" a:y="1" b:y="2"/></Z:p></D:prop></D:set></D:propertyupdate>"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let got = s.propfind("/f", "0", crate::support::PROPFIND_ALL).await;
    assert!(got.get("/f").prop("urn:z", "p").is_none());
}

both_backends!(
    many_properties_named_in_one_request,
    a_value_with_one_attribute_twice_is_refused,
    win32_last_modified_time_becomes_the_resources_date,
    set_and_remove_in_document_order,
    values_round_trip_with_namespaces_and_language,
    protected_property_fails_all_with_403_and_424,
    displayname_is_settable,
    proppatch_errors,
);

#[tokio::test]
async fn dead_properties_survive_a_restart() {
    let s = TestServer::start(crate::support::Kind::Fs).await;
    s.put("/f", "x").await;
    patch(&s, "/f", r#"<propertyupdate xmlns="DAV:"><set><prop><a xmlns="urn:z">kept</a></prop></set></propertyupdate>"#).await;
    let dir = s.stop().await.unwrap();
    let backends = crate::support::fs_backends(dir.path());
    let s =
        TestServer::with_backends(backends, davit_server::ServerConfig::default(), Some(dir)).await;
    let got = s.propfind("/f", "0", crate::support::PROPFIND_ALL).await;
    assert_eq!(got.get("/f").text("urn:z", "a").as_deref(), Some("kept"));
}
