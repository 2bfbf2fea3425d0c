//! The multistatus parser on bodies written the way Apache mod_dav, nginx dav-ext,
//! sabre/dav (Nextcloud), IIS and others write them.

use davit_client::Multistatus;

fn load(name: &str) -> Multistatus {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap();
    Multistatus::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn apache_depth_1_listing() {
    let ms = load("apache-propfind-depth1.xml");
    let paths: Vec<&str> = ms.responses.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/dav/projects/",
            "/dav/projects/budget 2027.ods",
            "/dav/projects/archive/"
        ]
    );
    let file = ms.get("/dav/projects/budget 2027.ods").unwrap();
    assert!(!file.is_collection());
    assert_eq!(file.content_length(), Some(48213));
    assert_eq!(file.etag().as_deref(), Some("\"bc55-60a7e1f3c2b80\""));
    assert!(file.last_modified().is_some());
    assert!(ms.get("/dav/projects/archive").unwrap().is_collection());
    assert!(ms.is_complete_success());
}

#[test]
fn apache_named_props_with_200_and_404() {
    let ms = load("apache-named-mixed-200-404.xml");
    let dir = ms.get("/dav/projects/").unwrap();
    assert_eq!(dir.prop_status("DAV:", "resourcetype"), Some(200));
    assert_eq!(dir.prop_status("DAV:", "getcontentlength"), Some(404));
    assert_eq!(
        dir.prop_status("http://example.com/ns/", "color"),
        Some(404)
    );
    let notes = ms.get("/dav/projects/notes.txt").unwrap();
    assert_eq!(
        notes
            .prop("http://example.com/ns/", "color")
            .unwrap()
            .text(),
        "blue"
    );
    assert!(
        ms.is_complete_success(),
        "404 for a requested property is not a failure"
    );
}

#[test]
fn nginx_lowercase_percent_encoding_of_non_ascii() {
    let ms = load("nginx-dav-ext-propfind.xml");
    let f = ms.get("/files/日本語.txt").unwrap();
    assert_eq!(f.content_length(), Some(9));
    assert!(!f.is_collection());
    assert!(ms.get("/files/").unwrap().is_collection());
}

#[test]
fn sabre_lowercase_prefix_and_404_propstats() {
    let ms = load("sabre-propfind.xml");
    assert_eq!(ms.responses.len(), 2);
    let photo = ms
        .get("/remote.php/dav/files/ann/Photos/Beach & Sun.jpg")
        .unwrap();
    assert_eq!(photo.etag().as_deref(), Some("\"b7e0c1d9f2a34\""));
    assert_eq!(
        photo.prop_status("http://owncloud.org/ns", "size"),
        Some(404)
    );
    assert_eq!(photo.content_type().as_deref(), Some("image/jpeg"));
    let dir = ms.get("/remote.php/dav/files/ann/Photos/").unwrap();
    assert_eq!(
        dir.prop("http://owncloud.org/ns", "size").unwrap().text(),
        "1875302"
    );
}

#[test]
fn iis_absolute_hrefs_and_status_before_prop() {
    let ms = load("iis-propfind-absolute-hrefs.xml");
    let doc = ms.get("/Shared Docs/report final.docx").unwrap();
    assert_eq!(
        doc.href,
        "http://iis.example.test/Shared%20Docs/report%20final.docx"
    );
    assert_eq!(doc.content_length(), Some(20481));
    assert_eq!(doc.prop_status("DAV:", "getetag"), Some(200));
    assert!(ms.get("/Shared Docs/").unwrap().is_collection());
}

#[test]
fn default_namespace_delete_with_a_locked_member() {
    let ms = load("default-ns-delete-locked-member.xml");
    let failures = ms.failures();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].path, "/team/drafts/locked.txt");
    assert_eq!(failures[0].status, 423);
    assert_eq!(
        failures[0].condition.as_deref(),
        Some("lock-token-submitted")
    );
    assert_eq!(
        failures[0].description.as_deref(),
        Some("the resource is locked")
    );
    assert_eq!(
        (failures[1].path.as_str(), failures[1].status),
        ("/team/drafts/readonly/", 403)
    );
    assert!(ms.all_failed(), "a DELETE 207 lists only failures");
}

#[test]
fn proppatch_with_a_protected_property() {
    let ms = load("proppatch-protected-403-424.xml");
    let failures = ms.failures();
    assert_eq!(failures.len(), 2);
    let etag = failures.iter().find(|f| f.status == 403).unwrap();
    assert_eq!(etag.property.as_ref().unwrap().local, "getetag");
    assert_eq!(
        etag.condition.as_deref(),
        Some("cannot-modify-protected-property")
    );
    assert_eq!(etag.path, "/bar.html");
    let authors = failures.iter().find(|f| f.status == 424).unwrap();
    assert_eq!(
        authors.property.as_ref().unwrap().namespace,
        "http://ns.example.com/z/"
    );
    assert!(ms.all_failed());
}

#[test]
fn several_hrefs_in_one_response_and_a_description() {
    let ms = load("multi-href-and-description.xml");
    let paths: Vec<&str> = ms.responses.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/a/one", "/a/two?", "/a/three"]);
    assert_eq!(ms.description.as_deref(), Some("the disk filled up"));
    assert_eq!(ms.failures().len(), 2);
    assert!(!ms.all_failed(), "one entry succeeded");
}

#[test]
fn dead_properties_in_foreign_and_empty_namespaces() {
    let ms = load("dead-props-foreign-namespaces.xml");
    let f = ms.get("/f.txt").unwrap();
    assert_eq!(f.prop("urn:x", "color").unwrap().text(), "blue");
    assert!(
        f.prop("urn:schemas-microsoft-com:", "Win32LastModifiedTime")
            .is_some()
    );
    assert_eq!(f.prop("", "nons").unwrap().text(), "plain");
    let tree = f.prop("urn:x", "tree").unwrap();
    assert!(
        tree.element
            .elements()
            .next()
            .unwrap()
            .is("http://bar", "leaf")
    );
}

#[test]
fn what_is_not_a_multistatus_is_an_error() {
    for body in [
        "",
        "<x/>",
        "<D:multistatus xmlns:D=\"DAV:\"><D:response/></D:multistatus>",
        "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/</D:href><D:status>bogus</D:status></D:response></D:multistatus>",
    ] {
        assert!(Multistatus::parse(body.as_bytes()).is_err(), "{body}");
    }
}
