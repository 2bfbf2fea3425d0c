//! Redirects, as other servers send them (Apache answers a collection's URL without its
//! slash with 301, whatever the method): the method and body go on unchanged, a streamed
//! upload included, but after a 303; a Digest login signs each hop's own URL; credentials
//! never leave the origin first asked; and a loop ends with the redirect as the answer.

use std::io::Write as _;

use davit_client::{Client, Depth};
use futures_util::StreamExt;
use support::{Answer, Seen};

mod support;

const LISTING: &str = r#"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/dir/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response><D:response><D:href>/dir/a.txt</D:href><D:propstat><D:prop><D:resourcetype/><D:getcontentlength>1</D:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#;

/// `/dir` moved to `/dir/`, which lists one file to a PROPFIND with a body.
fn slash_redirect(req: &Seen) -> Answer {
    match req.target.as_str() {
        "/dir" => Answer::new("301 Moved Permanently", "").header("Location: /dir/"),
        "/dir/" if req.method == "PROPFIND" && !req.body.is_empty() => {
            Answer::new("207 Multi-Status", LISTING).header("Content-Type: application/xml")
        }
        _ => Answer::new("400 Bad Request", ""),
    }
}

async fn fetch(c: &Client, path: &str) -> Vec<u8> {
    let mut download = c.get(path).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = download.body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

fn paths(entries: &[davit_client::Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

#[tokio::test]
async fn a_propfind_moved_with_301_stays_a_propfind() {
    let (addr, log) = support::scripted(slash_redirect).await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let entries = c.list("/dir", Depth::One).await.unwrap().entries;
    assert_eq!(paths(&entries), ["/dir/", "/dir/a.txt"]);
    let log = log.lock().unwrap();
    let hops: Vec<(&str, &str)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(hops, [("PROPFIND", "/dir"), ("PROPFIND", "/dir/")]);
    assert_eq!(log[0].body, log[1].body, "the body goes on unchanged");
}

/// The `uri` a Digest `Authorization` header signs.
fn signed_uri(req: &Seen) -> Option<String> {
    let value = req.headers.get("authorization")?.strip_prefix("Digest ")?;
    let start = value.find("uri=\"")? + 5;
    let len = value[start..].find('"')?;
    Some(value[start..start + len].to_owned())
}

#[tokio::test]
async fn a_digest_login_signs_the_url_each_hop_goes_to() {
    let (addr, log) = support::scripted(|req| match signed_uri(req) {
        None => Answer::new("401 Unauthorized", "").header(
            r#"WWW-Authenticate: Digest realm="files", nonce="bm9uY2U", qop="auth", algorithm=MD5"#,
        ),
        Some(uri) if uri != req.target => Answer::new("401 Unauthorized", "").header(
            r#"WWW-Authenticate: Digest realm="files", nonce="bm9uY2U", qop="auth", algorithm=MD5"#,
        ),
        Some(_) => slash_redirect(req),
    })
    .await;
    let c = Client::builder(&format!("http://{addr}"))
        .credentials("alice", "secret")
        .build()
        .unwrap();
    let entries = c.list("/dir", Depth::One).await.unwrap().entries;
    assert_eq!(paths(&entries), ["/dir/", "/dir/a.txt"]);
    let log = log.lock().unwrap();
    let signed: Vec<Option<String>> = log.iter().map(signed_uri).collect();
    assert_eq!(
        signed,
        [None, Some("/dir".to_owned()), Some("/dir/".to_owned())],
        "no password before the first 401, then each hop signed for itself"
    );
}

#[tokio::test]
async fn credentials_stay_with_the_origin_first_asked() {
    let (elsewhere, elsewhere_log) = support::scripted(|_| Answer::new("201 Created", "")).await;
    let (addr, log) = support::scripted(move |req| {
        if req.headers.contains_key("authorization") {
            Answer::new("307 Temporary Redirect", "")
                .header(format!("Location: http://{elsewhere}/f.txt"))
        } else {
            Answer::new("401 Unauthorized", "").header(r#"WWW-Authenticate: Basic realm="files""#)
        }
    })
    .await;
    let c = Client::builder(&format!("http://{addr}"))
        .credentials("alice", "secret")
        .build()
        .unwrap();
    let put = c.put_bytes("/f.txt", "hello".into()).await.unwrap();
    assert!(put.created);
    assert_eq!(log.lock().unwrap().len(), 2, "the 401, then the redirect");
    let there = elsewhere_log.lock().unwrap();
    assert_eq!(there.len(), 1);
    assert_eq!(
        (there[0].method.as_str(), &there[0].body[..]),
        ("PUT", &b"hello"[..])
    );
    assert!(
        !there[0].headers.contains_key("authorization"),
        "the password went to another origin: {:?}",
        there[0].headers
    );
}

#[tokio::test]
async fn a_streamed_upload_is_sent_again_after_a_307() {
    let (addr, log) = support::scripted(|req| match req.target.as_str() {
        "/up/f.bin" => Answer::new("307 Temporary Redirect", "").header("Location: /store/f.bin"),
        "/store/f.bin" if req.body == b"streamed" => Answer::new("201 Created", ""),
        _ => Answer::new("400 Bad Request", ""),
    })
    .await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let mut local = tempfile::NamedTempFile::new().unwrap();
    local.write_all(b"streamed").unwrap();
    let put = c.put_file("/up/f.bin", local.path(), None).await.unwrap();
    assert!(put.created);
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_bulk_upload_moved_with_301_stays_a_post() {
    let (addr, log) = support::scripted(|req| match (req.method.as_str(), req.target.as_str()) {
        ("POST", "/in") => Answer::new("301 Moved Permanently", "").header("Location: /in/"),
        ("POST", "/in/")
            if req
                .headers
                .get("content-type")
                .is_some_and(|t| t.starts_with("multipart/form-data"))
                && req.body.windows(6).any(|w| w == b"stored") =>
        {
            Answer::new(
                "207 Multi-Status",
                r#"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/in/f.txt</D:href><D:status>HTTP/1.1 201 Created</D:status></D:response></D:multistatus>"#,
            )
            .header("Content-Type: application/xml")
        }
        _ => Answer::new("400 Bad Request", ""),
    })
    .await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let mut local = tempfile::NamedTempFile::new().unwrap();
    local.write_all(b"stored").unwrap();
    let files = [("f.txt".to_owned(), local.path().to_owned())];
    let ms = c.upload_many("/in", &files, None).await.unwrap();
    assert_eq!(ms.responses[0].status, Some(201));
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn after_a_303_the_client_fetches_with_get_and_no_body() {
    let (addr, log) = support::scripted(|req| match (req.method.as_str(), req.target.as_str()) {
        ("PUT", "/f.txt") => Answer::new("303 See Other", "").header("Location: /done"),
        ("GET", "/done") if req.body.is_empty() => Answer::new("200 OK", "stored"),
        _ => Answer::new("400 Bad Request", ""),
    })
    .await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let put = c.put_bytes("/f.txt", "hello".into()).await.unwrap();
    assert!(!put.created);
    let log = log.lock().unwrap();
    assert_eq!(log[1].method, "GET");
    assert!(!log[1].headers.contains_key("content-length"));
}

#[tokio::test]
async fn a_redirect_loop_ends_with_the_redirect_as_the_error() {
    let (addr, log) =
        support::scripted(|_| Answer::new("302 Found", "").header("Location: /again")).await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let e = c.mkcol("/again").await.unwrap_err();
    assert_eq!(e.status_code(), Some(302));
    assert_eq!(
        log.lock().unwrap().len(),
        6,
        "the request, then five redirects followed"
    );
}

#[tokio::test]
async fn credentials_in_the_url_wait_for_a_401_and_stay_home() {
    let (elsewhere, elsewhere_log) = support::scripted(|_| Answer::new("200 OK", "x")).await;
    let (addr, log) = support::scripted(move |req| {
        if req.headers.contains_key("authorization") {
            Answer::new("302 Found", "").header(format!("Location: http://{elsewhere}/f.txt"))
        } else {
            Answer::new("401 Unauthorized", "").header(r#"WWW-Authenticate: Basic realm="files""#)
        }
    })
    .await;
    let c = Client::new(&format!("http://alice:s%40cret@{addr}/")).unwrap();
    assert_eq!(fetch(&c, "/f.txt").await, b"x");
    let log = log.lock().unwrap();
    assert!(
        !log[0].headers.contains_key("authorization"),
        "before the 401"
    );
    // "alice:s@cret", decoded from the URL.
    assert_eq!(log[1].headers["authorization"], "Basic YWxpY2U6c0BjcmV0");
    let there = elsewhere_log.lock().unwrap();
    assert!(
        !there[0].headers.contains_key("authorization"),
        "{:?}",
        there[0].headers
    );
}

#[tokio::test]
async fn a_move_is_not_sent_to_another_origin() {
    let (elsewhere, elsewhere_log) = support::scripted(|_| Answer::new("201 Created", "")).await;
    let (addr, _) = support::scripted(move |_| {
        Answer::new("307 Temporary Redirect", "")
            .header(format!("Location: http://{elsewhere}/a.txt"))
    })
    .await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let e = c
        .move_to("/a.txt", "/b.txt", davit_client::Overwrite::Allow)
        .await
        .unwrap_err();
    assert_eq!(e.status_code(), Some(307));
    assert!(
        elsewhere_log.lock().unwrap().is_empty(),
        "its Destination names the first server"
    );
}

#[tokio::test]
async fn a_location_in_raw_utf8_is_followed() {
    let (addr, log) = support::scripted(|req| match req.target.as_str() {
        "/old" => Answer::new("301 Moved Permanently", "").header("Location: /caf\u{e9}.txt"),
        "/caf%C3%A9.txt" => Answer::new("200 OK", "found"),
        _ => Answer::new("404 Not Found", ""),
    })
    .await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    assert_eq!(fetch(&c, "/old").await, b"found");
    assert_eq!(log.lock().unwrap().len(), 2);
}
