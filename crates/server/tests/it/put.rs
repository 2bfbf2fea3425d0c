use bytes::Bytes;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::support::{PROPFIND_ALL, TestServer, remembering_server};

async fn put_creates_then_replaces(s: TestServer) {
    let r = s.req("PUT", "/f").body("one").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = r.headers()["etag"].clone();
    let r = s.req("PUT", "/f").body("two").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_ne!(r.headers()["etag"], first, "new content, new entity tag");
    assert_eq!(s.get_text("/f").await.1, "two");
}

async fn put_needs_an_existing_parent(s: TestServer) {
    assert_eq!(
        s.put("/no/such/parent.txt", "x").await,
        StatusCode::CONFLICT
    );
    s.put("/file", "x").await;
    assert_eq!(s.put("/file/child", "x").await, StatusCode::CONFLICT);
}

async fn put_on_a_collection_is_405(s: TestServer) {
    s.mkcol("/c").await;
    assert_eq!(s.put("/c", "x").await, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.put("/", "x").await, StatusCode::METHOD_NOT_ALLOWED);
    // Conditions do not turn the refusal into a 412 (RFC 9110 §13.2.1), nor a 409.
    let conditional = |path: &'static str, name: &'static str, value: &'static str| {
        s.req("PUT", path).header(name, value).body("x").send()
    };
    for (name, value) in [("If-Match", "\"nope\""), ("If-None-Match", "*")] {
        let r = conditional("/c", name, value).await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{name}");
    }
    let r = conditional("/no/parent", "If-Match", "*").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

async fn put_with_chunked_body(s: TestServer) {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"chunk one, ")),
        Ok(Bytes::from_static(b"chunk two")),
    ];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = s.req("PUT", "/chunked").body(body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.get_text("/chunked").await.1, "chunk one, chunk two");
}

async fn x_oc_mtime_becomes_the_files_date(s: TestServer) {
    let r = s
        .req("PUT", "/dated")
        .header("X-OC-Mtime", "1577872800")
        .body("content")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["x-oc-mtime"], "accepted");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let ms = s
        .propfind("/dated", "0", crate::support::PROPFIND_ALL)
        .await;
    let f = ms.get("/dated");
    assert_eq!(
        f.text("DAV:", "getlastmodified").as_deref(),
        Some("Wed, 01 Jan 2020 10:00:00 GMT")
    );
    assert_eq!(
        f.text("DAV:", "getetag"),
        Some(etag),
        "the answer's tag is the dated file's"
    );
    // Not a date an HTTP date can state: ignored, the upload stored.
    for odd in ["soon", "NaN", "1e400", "", "-1", "1e18"] {
        let r = s
            .req("PUT", "/dated")
            .header("X-OC-Mtime", odd)
            .body("again")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{odd:?}");
        assert!(!r.headers().contains_key("x-oc-mtime"), "{odd:?}");
    }
    let r = s.req("GET", "/dated").send().await.unwrap();
    let modified = r.headers()["last-modified"].to_str().unwrap();
    assert_ne!(
        modified, "Wed, 01 Jan 2020 10:00:00 GMT",
        "a new upload, a new date"
    );
}

async fn put_conditional_headers(s: TestServer) {
    let r = s
        .req("PUT", "/cond")
        .header("If-None-Match", "*")
        .body("a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .req("PUT", "/cond")
        .header("If-None-Match", "*")
        .body("b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = s
        .req("PUT", "/cond")
        .header("If-Match", "\"nope\"")
        .body("b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let etag = s.req("HEAD", "/cond").send().await.unwrap().headers()["etag"].clone();
    let r = s
        .req("PUT", "/cond")
        .header("If-Match", etag)
        .body("b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.get_text("/cond").await.1, "b");
    let r = s
        .req("PUT", "/cond")
        .header("Content-Range", "bytes 0-0/1")
        .body("c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// A PUT whose connection dies mid-body leaves the old content, and no debris.
async fn put_cut_off_mid_body_leaves_old_content(s: TestServer) {
    s.put("/keep.txt", "old content").await;
    for _ in 0..3 {
        let mut sock = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
            .await
            .unwrap();
        sock.write_all(
            b"PUT /keep.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nnew content that never ends",
        )
        .await
        .unwrap();
        sock.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(sock);
    }
    // The same with a chunked body cut before its last chunk.
    let mut sock = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    sock.write_all(
        b"PUT /keep.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nnew c\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    drop(sock);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    assert_eq!(
        s.get_text("/keep.txt").await,
        (StatusCode::OK, "old content".into())
    );
    let listing = s.propfind("/", "1", crate::support::PROPFIND_ALL).await;
    assert_eq!(
        listing.hrefs(),
        vec!["/", "/keep.txt"],
        "no temporary file is visible"
    );
    if let Some(root) = &s.root {
        let names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != ".davit")
            .collect();
        assert_eq!(names, vec!["keep.txt"], "no temporary file is left on disk");
    }
}

/// `Expect: 100-continue` gets its interim answer, as litmus `expect100` wants.
async fn expect_continue_is_answered(s: TestServer) {
    let mut sock = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    sock.write_all(
        b"PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("an interim response in time")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    sock.write_all(b"hello").await.unwrap();
    let n = sock.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 201"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// PUTs racing on one name with the same condition: one wins, every other gets 412, and
/// the content is the winner's. First create-only (`If-None-Match: *`), then replacing
/// the ETag all of them saw (`If-Match`).
async fn racing_conditional_puts_have_one_winner(s: TestServer) {
    async fn race(s: &TestServer, path: &str, header: (&str, &str)) -> (Vec<StatusCode>, String) {
        let puts = (0..6).map(|i| {
            s.req("PUT", path)
                .header(header.0, header.1)
                .body(format!("body {i}"))
                .send()
        });
        let answers = futures_util::future::join_all(puts).await;
        let mut statuses = Vec::new();
        let mut winner = None;
        for (i, r) in answers.into_iter().enumerate() {
            let status = r.unwrap().status();
            if status.is_success() {
                winner = Some(format!("body {i}"));
            }
            statuses.push(status);
        }
        (statuses, winner.unwrap_or_default())
    }
    for round in 0..8 {
        let path = format!("/race{round}");
        let (statuses, winner) = race(&s, &path, ("If-None-Match", "*")).await;
        let created = statuses
            .iter()
            .filter(|&&c| c == StatusCode::CREATED)
            .count();
        let refused = statuses
            .iter()
            .filter(|&&c| c == StatusCode::PRECONDITION_FAILED)
            .count();
        assert_eq!((created, refused), (1, 5), "round {round}: {statuses:?}");
        assert_eq!(s.get_text(&path).await.1, winner);

        let r = s.req("GET", &path).send().await.unwrap();
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let (statuses, winner) = race(&s, &path, ("If-Match", &etag)).await;
        let replaced = statuses
            .iter()
            .filter(|&&c| c == StatusCode::NO_CONTENT)
            .count();
        assert_eq!(replaced, 1, "round {round}: {statuses:?}");
        assert_eq!(s.get_text(&path).await.1, winner);
    }
}

both_backends!(
    racing_conditional_puts_have_one_winner,
    put_creates_then_replaces,
    x_oc_mtime_becomes_the_files_date,
    put_needs_an_existing_parent,
    put_on_a_collection_is_405,
    put_with_chunked_body,
    put_conditional_headers,
    put_cut_off_mid_body_leaves_old_content,
    expect_continue_is_answered,
);

/// A file removed from the folder directly, while Davit's lookups still remember it: a
/// create-only PUT (`If-None-Match: *`) creates it (201, not 412), without the old file's
/// properties.
#[tokio::test]
async fn a_create_only_put_where_a_file_was_removed_outside_davit_creates_it() {
    let (s, root) = remembering_server().await;
    assert_eq!(s.put("/f", "old").await, StatusCode::CREATED);
    let set = r#"<propertyupdate xmlns="DAV:"><set><prop><old xmlns="urn:t">1</old></prop></set></propertyupdate>"#;
    assert_eq!(
        s.proppatch("/f", set).await.status(),
        StatusCode::MULTI_STATUS
    );
    std::fs::remove_file(root.join("f")).unwrap();
    let r = s
        .req("PUT", "/f")
        .header("If-None-Match", "*")
        .body("new")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.get_text("/f").await.1, "new");
    let ms = s.propfind("/f", "0", PROPFIND_ALL).await;
    assert_eq!(ms.get("/f").text("urn:t", "old"), None);
}

/// A slow upload whose folder is moved before it ends: the upload fails (409), and the
/// file of that name in the folder's new place is left as it was, not replaced.
#[tokio::test]
async fn a_put_whose_folder_moved_meanwhile_fails_and_replaces_nothing() {
    let s = TestServer::start(crate::support::Kind::Fs).await;
    s.mkcol("/a").await;
    assert_eq!(s.put("/a/f", "A").await, StatusCode::CREATED);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let put = tokio::spawn(
        s.req("PUT", "/a/f")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    // More than is gathered before the folder is opened.
    tx.send(Ok(vec![b'x'; 1 << 20])).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let moved = s
        .req("MOVE", "/a")
        .header("Destination", s.url("/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::CREATED);
    tx.send(Ok(b"end".to_vec())).await.unwrap();
    drop(tx);
    let put = put.await.unwrap().unwrap();
    assert_eq!(put.status(), StatusCode::CONFLICT);
    assert_eq!(s.get_text("/b/f").await.1, "A");
}
