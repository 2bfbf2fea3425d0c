use reqwest::StatusCode;

use crate::both_backends;
use crate::support::{PROPFIND_ALL, TestServer};

async fn get_and_head_carry_validators(s: TestServer) {
    assert_eq!(s.put("/a.txt", "hello world").await, StatusCode::CREATED);
    let r = s.req("GET", "/a.txt").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["content-length"], "11");
    assert_eq!(r.text().await.unwrap(), "hello world");

    let r = s.req("HEAD", "/a.txt").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.headers()["content-length"], "11");
    assert_eq!(r.bytes().await.unwrap().len(), 0);

    let r = s.req("GET", "/missing").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn conditional_get(s: TestServer) {
    s.put("/c.txt", "content").await;
    let r = s.req("GET", "/c.txt").send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_owned();

    let status = |h: &'static str, v: String| {
        let req = s.req("GET", "/c.txt").header(h, v);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(
        status("If-None-Match", etag.clone()).await,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        status("If-None-Match", "\"other\"".into()).await,
        StatusCode::OK
    );
    assert_eq!(
        status("If-None-Match", "*".into()).await,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(status("If-Match", etag.clone()).await, StatusCode::OK);
    assert_eq!(
        status("If-Match", "\"other\"".into()).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        status("If-Modified-Since", modified.clone()).await,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        status("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT".into()).await,
        StatusCode::OK
    );
    assert_eq!(
        status(
            "If-Unmodified-Since",
            "Mon, 01 Jan 2001 00:00:00 GMT".into()
        )
        .await,
        StatusCode::PRECONDITION_FAILED
    );
}

async fn ranges(s: TestServer) {
    s.put("/r.bin", "0123456789").await;
    let get = |range: &'static str| s.req("GET", "/r.bin").header("Range", range).send();
    let r = get("bytes=2-4").await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 2-4/10");
    assert_eq!(r.text().await.unwrap(), "234");
    let r = get("bytes=-3").await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.text().await.unwrap(), "789");
    let r = get("bytes=8-").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "89");
    let r = get("bytes=20-30").await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */10");
    let r = get("bytes=0-1,4-5").await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "several ranges get the whole body"
    );
    let r = get("lines=1-2").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "an unknown unit is ignored");

    let etag = s.req("HEAD", "/r.bin").send().await.unwrap().headers()["etag"].clone();
    let r = s
        .req("GET", "/r.bin")
        .header("Range", "bytes=0-0")
        .header("If-Range", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let r = s
        .req("GET", "/r.bin")
        .header("Range", "bytes=0-0")
        .header("If-Range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a stale If-Range gets the whole body"
    );
    assert_eq!(r.text().await.unwrap(), "0123456789");

    // A suffix of an empty file is satisfiable (RFC 9110 §14.1.1): the whole, empty, body.
    s.put("/empty", "").await;
    let r = s
        .req("GET", "/empty")
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "");
}

async fn collection_get_is_an_html_listing(s: TestServer) {
    s.mkcol("/dir").await;
    s.put("/dir/a%20%26%20b.txt", "x").await;
    let r = s
        .req("GET", "/dir/")
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("href=\"/dir/a%20%26%20b.txt\""), "{html}");
    assert!(html.contains(">a &amp; b.txt<"), "{html}");
    // The folder's conditions hold for its listing too.
    let cond =
        |name: &'static str, value: &'static str| s.req("GET", "/dir/").header(name, value).send();
    assert_eq!(
        cond("If-Match", "\"nope\"").await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        cond("If-None-Match", "*").await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        cond("If-Match", "*").await.unwrap().status(),
        StatusCode::OK
    );
    // The folder's own date does not stand for the page: a member written in place
    // changes the page, not the folder.
    let ms = s.propfind("/dir/", "0", PROPFIND_ALL).await;
    let modified = ms.get("/dir/").text("DAV:", "getlastmodified").unwrap();
    let r = s
        .req("GET", "/dir/")
        .header("If-Modified-Since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "If-Modified-Since: {modified}");
}

async fn large_file_streams_intact(s: TestServer) {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = s
        .req("PUT", "/big.bin")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.req("GET", "/big.bin").send().await.unwrap();
    assert_eq!(r.headers()["content-length"], "3000000");
    let got = r.bytes().await.unwrap();
    assert!(got == data, "content differs");
    let r = s
        .req("GET", "/big.bin")
        .header("Range", "bytes=1000000-1000009")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), data[1_000_000..1_000_010]);
    // Across many read chunks, ending inside one: reused read buffers carry nothing over.
    let r = s
        .req("GET", "/big.bin")
        .header("Range", "bytes=99999-2900000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(r.bytes().await.unwrap() == data[99_999..=2_900_000]);
    // Out of the page cache, the pages are read in before the kernel sends them.
    if let Some(root) = &s.root {
        let file = std::fs::File::open(root.path().join("big.bin")).unwrap();
        file.sync_all().unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    }
    let r = s
        .req("GET", "/big.bin")
        .header("Range", "bytes=5-2999998")
        .send()
        .await
        .unwrap();
    assert!(r.bytes().await.unwrap() == data[5..=2_999_998]);
}

/// A stored page or drawing opens sandboxed: its scripts cannot act as the server's own
/// pages with the reader's login. Other files are served as they are.
async fn stored_pages_are_served_sandboxed(s: TestServer) {
    for (name, active) in [
        ("/p.html", true),
        ("/d.svg", true),
        ("/x.xhtml", true),
        ("/t.txt", false),
        ("/b.bin", false),
    ] {
        s.put(name, "<script>alert(1)</script>").await;
        let r = s.req("GET", name).send().await.unwrap();
        let csp = r.headers().get("content-security-policy");
        assert_eq!(csp.is_some_and(|v| v == "sandbox"), active, "{name}");
        let nosniff = r.headers().get("x-content-type-options");
        assert_eq!(nosniff.is_some_and(|v| v == "nosniff"), active, "{name}");
    }
}

both_backends!(
    stored_pages_are_served_sandboxed,
    get_and_head_carry_validators,
    conditional_get,
    ranges,
    collection_get_is_an_html_listing,
    large_file_streams_intact,
);

/// Dates set outside Davit (`touch -d 1960`, a clock far ahead) are still answered: the
/// listing shows them clamped, and `Last-Modified` is never later than the answer.
#[tokio::test]
async fn files_dated_before_1970_or_in_the_future_are_listed_and_served() {
    let s = TestServer::start(crate::support::Kind::Fs).await;
    s.put("/old", "o").await;
    s.put("/ahead", "a").await;
    let root = s.root.as_ref().unwrap().path();
    let date = |name: &str, t| {
        let f = std::fs::File::options()
            .write(true)
            .open(root.join(name))
            .unwrap();
        f.set_modified(t).unwrap();
    };
    let year = std::time::Duration::from_secs(365 * 86_400);
    date("old", std::time::UNIX_EPOCH - 10 * year);
    date("ahead", std::time::SystemTime::now() + 10 * year);
    // Past the 1 s a look-up is remembered for.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, html) = s.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Thu, 01 Jan 1970 00:00:00 GMT"), "{html}");
    let r = s.req("GET", "/ahead").send().await.unwrap();
    let stated = httpdate::parse_http_date(r.headers()["last-modified"].to_str().unwrap()).unwrap();
    let sent = httpdate::parse_http_date(r.headers()["date"].to_str().unwrap()).unwrap();
    assert!(
        stated <= sent,
        "Last-Modified {stated:?} after Date {sent:?}"
    );
    // PROPFIND says no later a date (RFC 4918 §15.7: getlastmodified is GET's).
    let ms = s
        .propfind("/ahead", "0", crate::support::PROPFIND_ALL)
        .await;
    let listed = ms.get("/ahead").text("DAV:", "getlastmodified").unwrap();
    let listed = httpdate::parse_http_date(&listed).unwrap();
    assert!(listed <= std::time::SystemTime::now(), "{listed:?}");
}
