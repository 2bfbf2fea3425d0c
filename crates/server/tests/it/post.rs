use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{Kind, Multistatus, PROPFIND_ALL, TestServer, remembering_server};

fn form(parts: &[(&str, &str)]) -> (String, String) {
    let mut body = String::new();
    for (name, content) in parts {
        body.push_str(&format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n"
        ));
    }
    body.push_str(
        "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot a file\r\n--XyZ--\r\n",
    );
    ("multipart/form-data; boundary=XyZ".to_owned(), body)
}

/// POSTs a form of `parts` to `dir`, asking for the 207.
async fn post_form(s: &TestServer, dir: &str, parts: &[(&str, &str)]) -> reqwest::Response {
    let (ct, body) = form(parts);
    s.req("POST", dir)
        .header("Content-Type", ct)
        .header("Accept", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn bulk_upload_answers_one_status_per_part(s: TestServer) {
    s.mkcol("/in").await;
    s.mkcol("/in/taken").await;
    s.put("/in/old.txt", "old").await;
    let lock = s
        .req("LOCK", "/in/locked.txt")
        .body(r#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(lock.status(), StatusCode::CREATED);
    let r = post_form(
        &s,
        "/in/",
        &[
            ("new.txt", "new"),
            ("old.txt", "replaced"),
            ("taken", "x"),
            ("locked.txt", "x"),
            ("..", "x"),
            ("C:\\Users\\ann\\win.txt", "from windows"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = Multistatus::parse(&r.text().await.unwrap());
    let status = |href: &str| ms.get(href).status;
    assert_eq!(ms.responses.len(), 6, "{:?}", ms.hrefs());
    assert_eq!(status("/in/new.txt"), Some(201));
    assert_eq!(status("/in/old.txt"), Some(204));
    assert_eq!(status("/in/taken"), Some(409));
    assert_eq!(status("/in/locked.txt"), Some(423));
    assert_eq!(
        status("/in/"),
        Some(400),
        "a bad name is reported against the collection"
    );
    assert_eq!(status("/in/win.txt"), Some(201));
    assert_eq!(s.get_text("/in/old.txt").await.1, "replaced");
    assert_eq!(s.get_text("/in/win.txt").await.1, "from windows");
    assert_eq!(s.get_text("/in/locked.txt").await.1, "", "the lock kept it");
}

async fn a_browser_form_is_sent_back_to_the_listing(s: TestServer) {
    s.mkcol("/web").await;
    let (ct, body) = form(&[("page.html", "<p>hi</p>")]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(s.url("/web/"))
        .header("Content-Type", ct)
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/web/");
    let listing = s
        .req("GET", "/web/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains("page.html") && listing.contains("multipart/form-data"),
        "{listing}"
    );
}

async fn options_advertise_bulk_upload_on_collections(s: TestServer) {
    s.put("/f", "x").await;
    let r = s.req("OPTIONS", "/").send().await.unwrap();
    assert_eq!(r.headers()["accept-post"], "multipart/form-data");
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    let r = s.req("OPTIONS", "/f").send().await.unwrap();
    assert!(r.headers().get("accept-post").is_none());
}

both_backends!(
    bulk_upload_answers_one_status_per_part,
    a_browser_form_is_sent_back_to_the_listing,
    options_advertise_bulk_upload_on_collections,
);

/// A file removed from the folder directly leaves its dead properties behind: a part that
/// creates a file of that name starts it without them, as a PUT does.
#[tokio::test]
async fn a_part_where_a_file_was_removed_outside_davit_starts_without_its_properties() {
    let (s, root) = remembering_server().await;
    s.mkcol("/d").await;
    assert_eq!(s.put("/d/f", "old").await, StatusCode::CREATED);
    let set = r#"<propertyupdate xmlns="DAV:"><set><prop><old xmlns="urn:t">1</old></prop></set></propertyupdate>"#;
    assert_eq!(
        s.proppatch("/d/f", set).await.status(),
        StatusCode::MULTI_STATUS
    );
    std::fs::remove_file(root.join("d").join("f")).unwrap();
    let r = post_form(&s, "/d/", &[("f", "new")]).await;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.get("/d/f").status, Some(201));
    let ms = s.propfind("/d/f", "0", PROPFIND_ALL).await;
    assert_eq!(ms.get("/d/f").text("urn:t", "old"), None);
}

/// A form another site's page submits carries the browser's saved login: refused (403),
/// while this server's own pages, origins allowed by name for CORS, and programs that
/// send neither `Origin` nor `Sec-Fetch-Site` upload as before.
#[tokio::test]
async fn a_form_from_another_site_is_refused() {
    let config = davit_server::ServerConfig::builder()
        .cors_origins(davit_server::CorsOrigins::new(["https://app.example"]).unwrap())
        .build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    s.mkcol("/in").await;
    let own = s.base.clone();
    let post = |headers: &[(&str, &str)], name: &str| {
        let (ct, body) = form(&[(name, "x")]);
        let mut r = s
            .req("POST", "/in/")
            .header("Content-Type", ct)
            .header("Accept", "application/xml")
            .body(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    for (headers, name) in [
        (&[("Origin", "https://evil.example")][..], "a"),
        (&[("Sec-Fetch-Site", "cross-site")][..], "b"),
        (&[("Sec-Fetch-Site", "same-site")][..], "c"),
        (&[("Origin", "null")][..], "d"),
        (
            &[("Origin", own.as_str()), ("Sec-Fetch-Site", "cross-site")][..],
            "e",
        ),
    ] {
        let r = post(headers, name).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(s.get_text(&format!("/in/{name}")).await.0, 404);
    }
    for (headers, name) in [
        (&[][..], "f"),
        (&[("Origin", own.as_str())][..], "g"),
        (
            &[
                ("Sec-Fetch-Site", "same-origin"),
                ("Origin", "https://proxy.example"),
            ][..],
            "h",
        ),
        (
            &[
                ("Origin", "https://app.example"),
                ("Sec-Fetch-Site", "cross-site"),
            ][..],
            "i",
        ),
    ] {
        let r = post(headers, name).await.unwrap();
        assert_eq!(r.status(), StatusCode::MULTI_STATUS, "{headers:?}");
        assert_eq!(s.get_text(&format!("/in/{name}")).await.1, "x");
    }
}
