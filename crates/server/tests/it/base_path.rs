//! A tree served under a base path (`/web dav`), as behind a reverse proxy that forwards
//! `/web%20dav/…` unchanged: requests outside it find nothing, and every href, header and
//! condition the server writes names the base.

use davit_proto::{BasePath, ResourcePath};
use davit_server::ServerConfig;
use reqwest::StatusCode;

use crate::support::{Kind, PROPFIND_ALL, TestServer};

const BASE: &str = "/web%20dav";
const EXCLUSIVE: &str = r#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype><owner>o</owner></lockinfo>"#;

macro_rules! under_a_base {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test]
                async fn memory() {
                    super::$name(based(Kind::Memory).await).await;
                }
                #[tokio::test]
                async fn fs() {
                    super::$name(based(Kind::Fs).await).await;
                }
            }
        )*
    };
}

async fn based(kind: Kind) -> TestServer {
    let base = BasePath::new(ResourcePath::parse(BASE).unwrap());
    TestServer::start_with(kind, ServerConfig::builder().base_path(base).build()).await
}

fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

async fn status(req: reqwest::RequestBuilder) -> StatusCode {
    req.send().await.unwrap().status()
}

async fn lock(s: &TestServer, path: &str) -> (String, String) {
    let r = s.req("LOCK", path).body(EXCLUSIVE).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "LOCK {path}");
    let token = r.headers()["lock-token"]
        .to_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    (token, r.text().await.unwrap())
}

/// The hrefs inside the one condition of a `D:error` body.
async fn condition_hrefs(r: reqwest::Response, condition: &str) -> Vec<String> {
    let body = r.text().await.unwrap();
    let doc = davit_proto::xml::parse_document(body.as_bytes(), Default::default()).unwrap();
    let cond = doc.elements().next().unwrap();
    assert!(cond.is("DAV:", condition), "{body}");
    cond.elements().map(|h| h.text()).collect()
}

async fn paths_are_served_only_under_the_base(s: TestServer) {
    assert_eq!(s.put(&at("/f"), "x").await, StatusCode::CREATED);
    assert_eq!(s.get_text(&at("/f")).await, (StatusCode::OK, "x".into()));
    if let Some(root) = &s.root {
        assert!(
            root.path().join("f").is_file(),
            "stored at the folder's top"
        );
    }
    for outside in ["/f", "/", "/web%20dav2/f", "/web/f"] {
        assert_eq!(
            status(s.req("GET", outside)).await,
            StatusCode::NOT_FOUND,
            "GET {outside}"
        );
    }
    assert_eq!(s.put("/g", "x").await, StatusCode::NOT_FOUND);
    assert_eq!(
        status(s.req("GET", &at("/g"))).await,
        StatusCode::NOT_FOUND,
        "nothing was written for a PUT outside the base"
    );
    // The base itself, with or without its slash, is the root collection.
    for root in [BASE.to_owned(), at("/")] {
        let ms = s.propfind(&root, "1", PROPFIND_ALL).await;
        assert_eq!(ms.hrefs(), [at("/"), at("/f")], "PROPFIND {root}");
    }
}

async fn copy_and_move_take_destinations_under_the_base(s: TestServer) {
    s.put(&at("/f"), "x").await;
    let copy = s
        .req("COPY", &at("/f"))
        .header("Destination", s.url(&at("/g")));
    assert_eq!(status(copy).await, StatusCode::CREATED);
    let moved = s.req("MOVE", &at("/g")).header("Destination", at("/h"));
    assert_eq!(status(moved).await, StatusCode::CREATED);
    assert_eq!(s.get_text(&at("/h")).await, (StatusCode::OK, "x".into()));
    // A Destination outside the base is not this server's to write.
    for dest in [s.url("/h2"), "/h2".to_owned(), s.url("/web/h2")] {
        let r = s.req("MOVE", &at("/h")).header("Destination", &dest);
        assert_eq!(status(r).await, StatusCode::BAD_GATEWAY, "{dest}");
    }
    assert_eq!(s.get_text(&at("/h")).await, (StatusCode::OK, "x".into()));
}

async fn locks_name_their_roots_under_the_base(s: TestServer) {
    s.mkcol(&at("/c/")).await;
    s.put(&at("/c/f"), "x").await;
    let (token, body) = lock(&s, &at("/c/f")).await;
    assert!(
        body.contains(&format!("<D:lockroot><D:href>{}</D:href>", at("/c/f"))),
        "{body}"
    );
    let ms = s
        .propfind(
            &at("/c/f"),
            "0",
            r#"<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>"#,
        )
        .await;
    let lockroot = ms.get(&at("/c/f")).prop("DAV:", "lockdiscovery").unwrap().1;
    assert!(
        format!("{lockroot:?}").contains(&at("/c/f")),
        "{lockroot:?}"
    );

    let r = s.req("PUT", &at("/c/f")).body("y").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::LOCKED);
    assert_eq!(
        condition_hrefs(r, "lock-token-submitted").await,
        [at("/c/f")]
    );
    // A tag names the resource by its URL, base included.
    let tagged = format!("<{}> (<{token}>)", s.url(&at("/c/f")));
    let put = s.req("PUT", &at("/c/f")).header("If", tagged).body("y");
    assert_eq!(status(put).await, StatusCode::NO_CONTENT);
    // The same path without the base is no resource here: that list cannot hold.
    let outside = format!("<{}> (<{token}>)", s.url("/c/f"));
    let put = s.req("PUT", &at("/c/f")).header("If", outside).body("z");
    assert_eq!(status(put).await, StatusCode::PRECONDITION_FAILED);

    // A depth-infinity lock above the locked member conflicts with it, by name.
    let r = s
        .req("LOCK", &at("/c/"))
        .body(EXCLUSIVE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let body = r.text().await.unwrap();
    let conflict = format!("<D:no-conflicting-lock><D:href>{}</D:href>", at("/c/f"));
    assert!(body.contains(&conflict), "{body}");

    // DELETE reports the locked member it left, under the base.
    let r = s.req("DELETE", &at("/c/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let body = r.text().await.unwrap();
    let member = format!("<D:response><D:href>{}</D:href>", at("/c/f"));
    let condition = format!("<D:lock-token-submitted><D:href>{}</D:href>", at("/c/f"));
    assert!(body.contains(&member), "{body}");
    assert!(body.contains(&condition), "{body}");
}

async fn the_html_listing_links_under_the_base(s: TestServer) {
    s.mkcol(&at("/d/")).await;
    s.put(&at("/d/a b"), "x").await;
    let r = s
        .req("GET", &at("/d/"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("href=\"{}\"", at("/d/a%20b"))),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"{}\"", at("/"))), "{html}");
    assert!(html.contains("<title>/web dav/d</title>"), "{html}");

    // The listing's upload form sends the browser back to the listing.
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.txt\"\r\n\r\nup\r\n--XyZ--\r\n";
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(s.url(&at("/d/")))
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .header("Accept", "text/html")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], at("/d/").as_str());
    assert_eq!(s.get_text(&at("/d/up.txt")).await.1, "up");
}

async fn every_multistatus_names_the_base(s: TestServer) {
    s.mkcol(&at("/d/")).await;
    s.put(&at("/d/f"), "x").await;
    let r = s
        .proppatch(
            &at("/d/f"),
            r#"<propertyupdate xmlns="DAV:"><set><prop><c xmlns="urn:x">1</c></prop></set></propertyupdate>"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = crate::support::Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.hrefs(), [at("/d/f")]);

    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.txt\"\r\n\r\nup\r\n--XyZ--\r\n";
    let r = s
        .req("POST", &at("/d/"))
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .header("Accept", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let ms = crate::support::Multistatus::parse(&r.text().await.unwrap());
    assert_eq!(ms.hrefs(), [at("/d/up.txt")]);

    let ms = s.propfind(&at("/"), "infinity", PROPFIND_ALL).await;
    assert_eq!(
        ms.hrefs(),
        [at("/"), at("/d/"), at("/d/f"), at("/d/up.txt")]
    );
}

under_a_base!(
    every_multistatus_names_the_base,
    paths_are_served_only_under_the_base,
    copy_and_move_take_destinations_under_the_base,
    locks_name_their_roots_under_the_base,
    the_html_listing_links_under_the_base,
);
