//! Hostile and malformed input: always a clear 4xx, never a 5xx, never a path outside the root.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::support::{Kind, PROPFIND_ALL, TestServer};

/// Sends raw bytes (so no client normalizes the path) and returns the status code.
async fn raw_status(s: &TestServer, request: &str) -> u16 {
    let mut sock = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = sock.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn traversal_in_every_encoding_is_refused(s: TestServer) {
    s.mkcol("/a").await;
    for target in [
        "/../etc/passwd",
        "/a/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/a/%2E%2E/%2e%2e/etc/passwd",
        "/a%2f..%2f..%2fetc%2fpasswd",
        "/a%2F",
        "/a%00b",
        "/%ff%fe",
    ] {
        for method in ["GET", "PUT", "DELETE", "PROPFIND", "MKCOL"] {
            let status = raw_status(&s, &format!("{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")).await;
            assert!(
                (400..500).contains(&status),
                "{method} {target} gave {status}"
            );
        }
    }
    assert_eq!(
        s.propfind("/", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/", "/a/"],
        "nothing was created"
    );
}

async fn hostile_xml_is_refused_quickly(s: TestServer) {
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><propfind xmlns="DAV:"><prop><x>&lol3;</x></prop></propfind>"#;
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><propfind xmlns="DAV:"><prop><a>&x;</a></prop></propfind>"#;
    for body in [laughs, xxe] {
        let started = Instant::now();
        let r = s
            .req("PROPFIND", "/")
            .header("Depth", "0")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains("no-external-entities"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let deep = format!(
        r#"<propfind xmlns="DAV:">{}{}</propfind>"#,
        "<a>".repeat(1000),
        "</a>".repeat(1000)
    );
    let r = s
        .req("PROPFIND", "/")
        .header("Depth", "0")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let big = format!(
        r#"<propfind xmlns="DAV:"><prop>{}</prop></propfind>"#,
        "<x/>".repeat(600_000)
    );
    let r = s
        .req("PROPFIND", "/")
        .header("Depth", "0")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = s
        .req("PROPPATCH", "/")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..400).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 4096]))),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "a chunked body is bounded too"
    );
}

async fn bad_headers_are_400(s: TestServer) {
    s.put("/f", "x").await;
    let r = s
        .req("PROPFIND", "/")
        .header("Depth", "one")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .req("COPY", "/f")
        .header("Destination", "not a uri")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .req("GET", "/f")
        .header("Range", "bytes=oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "an unparsable Range is ignored");
}

both_backends!(
    traversal_in_every_encoding_is_refused,
    hostile_xml_is_refused_quickly,
    bad_headers_are_400
);

#[tokio::test]
async fn symlinks_are_not_followed_out_of_or_inside_the_root() {
    let s = TestServer::start(Kind::Fs).await;
    let root = s.root.as_ref().unwrap().path().to_owned();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
    std::fs::write(root.join("inside.txt"), "inside").unwrap();
    std::os::unix::fs::symlink(root.join("inside.txt"), root.join("alias")).unwrap();

    for path in ["/out/secret", "/out", "/alias"] {
        assert_eq!(
            s.req("GET", path).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
        let r = s
            .req("PROPFIND", path)
            .header("Depth", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(s.put("/out/new", "x").await, StatusCode::CONFLICT);
    assert_eq!(
        s.req("DELETE", "/out/secret")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = s
        .req("COPY", "/inside.txt")
        .header("Destination", "/out/copied")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        s.propfind("/", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/", "/inside.txt"]
    );
    let names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["secret"],
        "nothing was written outside the root"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret")).unwrap(),
        "secret"
    );
}

/// With symlinks followed: links to files inside the root are served as those files and
/// deleted as links; links that leave the root or lead to folders stay unserved.
#[tokio::test]
async fn followed_symlinks_stay_inside_the_root_and_never_lead_to_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "secret").unwrap();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/inside.txt"), "inside").unwrap();
    let link = |target: &std::path::Path, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    };
    link(std::path::Path::new("docs/inside.txt"), "alias");
    link(&outside.path().join("secret"), "escape");
    link(outside.path(), "out");
    link(std::path::Path::new("docs"), "docs-link");
    link(std::path::Path::new("../../etc/passwd"), "dots");
    link(std::path::Path::new(".davit/davit.sqlite"), "db");
    let mut backends = crate::support::fs_backends(&root);
    backends.storage = std::sync::Arc::new(
        davit_store::fs::FsStorage::open(&root)
            .unwrap()
            .hide(".davit")
            .follow_symlinks(true),
    );
    let s = TestServer::with_backends(backends, davit_server::ServerConfig::default(), None).await;

    assert_eq!(
        s.get_text("/alias").await,
        (StatusCode::OK, "inside".to_owned())
    );
    for path in [
        "/escape",
        "/out/secret",
        "/docs-link/inside.txt",
        "/docs-link/",
        "/dots",
    ] {
        assert_eq!(
            s.req("GET", path).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        s.propfind("/", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/", "/alias", "/docs/"],
        "only the link to a file inside is listed"
    );
    std::os::unix::fs::symlink("inside.txt", root.join("docs/again")).unwrap();
    let r = s
        .req("COPY", "/docs/")
        .header("Destination", "/docs-copy/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        std::fs::read_to_string(root.join("docs-copy/again")).unwrap(),
        "inside",
        "a served link is copied as its file"
    );
    assert!(
        !std::fs::symlink_metadata(root.join("docs-copy/again"))
            .unwrap()
            .is_symlink()
    );
    let r = s.req("DELETE", "/alias").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        std::fs::symlink_metadata(root.join("alias")).is_err(),
        "the link is gone"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("docs/inside.txt")).unwrap(),
        "inside",
        "its target is not"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret")).unwrap(),
        "secret"
    );
}

#[tokio::test]
async fn the_metadata_folder_is_never_served() {
    let s = TestServer::start(Kind::Fs).await;
    s.put("/f", "x").await;
    for (method, path) in [
        ("GET", "/.davit/davit.sqlite"),
        ("GET", "/.davit/"),
        ("DELETE", "/.davit"),
        ("PROPFIND", "/.davit"),
    ] {
        assert_eq!(
            s.req(method, path).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{method} {path}"
        );
    }
    assert_eq!(s.mkcol("/.davit").await, StatusCode::FORBIDDEN);
    assert_eq!(
        s.put("/.davit/davit.sqlite", "x").await,
        StatusCode::FORBIDDEN
    );
    let r = s
        .req("COPY", "/f")
        .header("Destination", "/.davit/davit.sqlite")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = s
        .req("MOVE", "/f")
        .header("Destination", "/.davit")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(
        s.propfind("/", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/", "/f"]
    );
    let db = s.root.as_ref().unwrap().path().join(".davit/davit.sqlite");
    assert!(
        std::fs::metadata(db).unwrap().len() > 0,
        "the database is intact"
    );
}

/// A name longer than the file system holds (255 bytes on ext4) cannot exist: looking it
/// up finds nothing (404), creating it is the client's error (400), never a 500.
#[tokio::test]
async fn names_too_long_for_the_file_system_are_client_errors() {
    let s = TestServer::start(Kind::Fs).await;
    s.put("/f", "x").await;
    let long = format!("/{}", "n".repeat(300));
    let lock = r#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>"#;
    for (method, path, dest, body, want) in [
        ("GET", long.as_str(), None, "", 404),
        ("HEAD", &long, None, "", 404),
        ("DELETE", &long, None, "", 404),
        ("PROPFIND", &long, None, "", 404),
        ("PROPPATCH", &long, None, "", 404),
        ("MOVE", &long, Some("/g"), "", 404),
        ("COPY", &long, Some("/g"), "", 404),
        ("PUT", &long, None, "x", 400),
        ("MKCOL", &long, None, "", 400),
        ("LOCK", &long, None, lock, 400),
        ("COPY", "/f", Some(long.as_str()), "", 400),
        ("MOVE", "/f", Some(long.as_str()), "", 400),
    ] {
        let mut r = s.req(method, path).body(body);
        if let Some(dest) = dest {
            r = r.header("Destination", dest);
        }
        let status = r.send().await.unwrap().status();
        assert_eq!(status.as_u16(), want, "{method} {path:.20} -> {dest:?}");
    }
    // Below an overlong name: its parent cannot exist.
    let below = format!("{long}/g");
    assert_eq!(s.put(&below, "x").await, StatusCode::CONFLICT);
    assert_eq!(
        s.propfind("/", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/", "/f"],
        "nothing was created, nothing moved"
    );
}

/// RFC 9112 §3.2: a request-target has no fragment. One with a fragment is refused, so
/// `DELETE /dir/#x` cannot delete `/dir/` (litmus `delete_fragment`).
async fn request_target_with_a_fragment_is_refused(s: TestServer) {
    s.mkcol("/frag").await;
    let status = raw_status(
        &s,
        "DELETE /frag/#ment HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        s.propfind("/", "1", PROPFIND_ALL).await.hrefs(),
        vec!["/", "/frag/"]
    );
    // A `#` in a body, and one encoded in a path, are data like any other byte.
    let body = "GET /#x HTTP/1.1\r\n\r\n# not a header";
    assert_eq!(s.put("/frag/a%23b", body).await, StatusCode::CREATED);
    assert_eq!(
        s.get_text("/frag/a%23b").await,
        (StatusCode::OK, body.to_owned())
    );
}

async fn http2_prior_knowledge_is_served(s: TestServer) {
    s.put("/h2", "over h2c").await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client.get(s.url("/h2")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "over h2c");
    let r = client
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            s.url("/"),
        )
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    // A file too large to be held in memory streams from its descriptor.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let r = client
        .put(s.url("/big"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client.get(s.url("/big")).send().await.unwrap();
    assert!(
        r.bytes().await.unwrap() == data,
        "content differs over HTTP/2"
    );
    // An early error answers at once: the stream ends alone, nothing waits for the rest
    // of its body (which never comes here).
    let part = [Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"part"))];
    let endless = futures_util::StreamExt::chain(
        futures_util::stream::iter(part),
        futures_util::stream::pending(),
    );
    let started = Instant::now();
    let r = client
        .put(s.url("/"))
        .body(reqwest::Body::wrap_stream(endless))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // HEAD answers carry no DATA, error answers included: a client refuses the stream
    // otherwise (RFC 9110 §9.3.2).
    for (path, status, length) in [
        ("/big", StatusCode::OK, "300000"),
        ("/h2", StatusCode::OK, "8"),
        ("/missing", StatusCode::NOT_FOUND, ""),
    ] {
        let r = client.head(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "HEAD {path}");
        if !length.is_empty() {
            assert_eq!(r.headers()["content-length"], length, "HEAD {path}");
        }
        assert!(r.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
}

/// The first bytes decide HTTP/1 or HTTP/2: requests whose method shares a prefix with the
/// HTTP/2 preface, sent a few bytes at a time, are HTTP/1 and answered in full.
async fn requests_in_pieces_that_begin_like_the_http2_preface_are_http1(s: TestServer) {
    s.put("/p", "piecemeal").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "P",
                "R",
                "OPFIND /p HTTP/1.1\r\nHost: x\r\nDepth: 0\r\n",
                "Connection: close\r\n\r\n",
            ],
            "HTTP/1.1 207",
        ),
        (
            &[
                "PRI",
                " /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ],
            "HTTP/1.1 ",
        ),
        (
            &[
                "G",
                "ET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ],
            "HTTP/1.1 200",
        ),
    ];
    for (pieces, answer) in cases {
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        sock.set_nodelay(true).unwrap();
        for p in pieces {
            sock.write_all(p.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut out))
            .await
            .expect("answered and closed")
            .unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with(answer), "{pieces:?}: {out}");
    }
}

both_backends!(
    request_target_with_a_fragment_is_refused,
    http2_prior_knowledge_is_served,
    requests_in_pieces_that_begin_like_the_http2_preface_are_http1
);

/// Stops `s`, which must take less than 5 s (the drain limit is 30 s).
async fn stops_promptly(s: TestServer) {
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .expect("stopped");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A kept-alive connection waiting for its next request is closed at a stop, not waited
/// for.
#[tokio::test]
async fn stop_closes_connections_between_requests() {
    let s = TestServer::start(Kind::Memory).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    kept.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    stops_promptly(s).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), kept.read_to_end(&mut rest))
        .await
        .expect("closed")
        .unwrap();
}

/// Dropping `serve`'s future stops the server and closes its listener, as it did when the
/// accept loop ran inside that future rather than in a task of its own.
#[tokio::test]
async fn dropping_serve_closes_the_listener() {
    let mut s = TestServer::start(Kind::Memory).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let r = s.req("OPTIONS", "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.abort();
    let started = Instant::now();
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still accepting after its serve future was dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A connection that never sends a byte does not hold up a stop.
#[tokio::test]
async fn stop_does_not_wait_for_a_silent_connection() {
    let s = TestServer::start(Kind::Memory).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let _silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // The server has accepted it (and is waiting for its first bytes) once a second
    // connection is served.
    assert_eq!(
        raw_status(
            &s,
            "OPTIONS / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await,
        200
    );
    stops_promptly(s).await;
}

#[tokio::test]
async fn files_no_client_can_see_are_never_deleted_unseen() {
    use std::os::unix::ffi::OsStrExt;
    let s = TestServer::start(Kind::Fs).await;
    s.mkcol("/d").await;
    s.put("/d/seen", "x").await;
    let root = s.root.as_ref().unwrap().path().to_owned();
    let hidden = root
        .join("d")
        .join(std::ffi::OsStr::from_bytes(b"\xff\xfe.doc"));
    std::fs::write(&hidden, "unseen data").unwrap();
    let r = s.req("DELETE", "/d").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        hidden.exists(),
        "the file no client could list is still there"
    );
    assert_eq!(
        s.req("GET", "/d/seen").send().await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "the rest went"
    );
}

/// A client that sends its request head slowly is cut off after the header timeout, while
/// other clients are served; an idle connection is closed after the idle timeout.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_others_are_served() {
    let config = davit_server::ServerConfig::builder()
        .header_timeout(Duration::from_secs(2))
        .idle_timeout(Duration::from_secs(3))
        .build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A body that stops coming is idle too, though its request is being handled.
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"PUT /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let started = Instant::now();
    let slowloris = async {
        // One header byte at a time, forever.
        for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if slow.write_all(&[*b]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!()
    };
    let served = async {
        for _ in 0..10 {
            assert_eq!(
                s.req("OPTIONS", "/").send().await.unwrap().status(),
                StatusCode::OK
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (cut_after, ()) = tokio::join!(slowloris, served);
    assert!(
        cut_after >= Duration::from_secs(2) && cut_after < Duration::from_secs(6),
        "{cut_after:?}"
    );
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(6), idle.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the idle connection was closed"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(6), stalled.read_to_end(&mut rest))
        .await
        .expect("the stalled upload's connection was closed in time")
        .ok();
    assert_eq!(s.get_text("/stalled").await.0, StatusCode::NOT_FOUND);
}

/// One HTTP/2 connection has few requests in flight at once (each may hold an open file
/// and a buffered body), as its SETTINGS tell the client.
#[tokio::test]
async fn an_http2_connection_has_few_requests_in_flight() {
    let s = TestServer::start(Kind::Memory).await;
    let tcp = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let options = http::Request::builder()
        .method("OPTIONS")
        .uri(s.url("/"))
        .body(())
        .unwrap();
    let (answer, _) = client.send_request(options, true).unwrap();
    assert_eq!(answer.await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        client.current_max_send_streams(),
        davit_server::HTTP2_STREAMS as usize
    );
}

/// HTTP/2 requests in flight over all connections are no more than `max_connections`, each
/// until its answer is sent: a client that asks for many large files and reads none holds
/// no more open files than as many HTTP/1 connections could.
#[tokio::test]
async fn http2_requests_in_flight_are_bounded_by_the_connection_limit() {
    let config = davit_server::ServerConfig::builder()
        .max_connections(2)
        .build();
    let s = TestServer::start_with(Kind::Fs, config).await;
    let root = s.root.as_ref().unwrap().path();
    std::fs::write(root.join("big"), vec![b'x'; 32 << 20]).unwrap();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let get = || client.get(s.url("/big")).send();
    // Unread, each answer keeps its request's slot.
    let first = get().await.unwrap();
    let _second = get().await.unwrap();
    let third = tokio::spawn(get());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third request was answered with both slots held"
    );
    drop(first);
    let third = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("answered once a slot was free")
        .unwrap()
        .unwrap();
    assert_eq!(third.status(), StatusCode::OK);
}

/// An HTTP/2 upload whose body stops coming is idle too: its connection is closed after
/// the idle timeout, not held open for as long as the client likes.
#[tokio::test]
async fn a_stalled_http2_upload_is_let_go() {
    let config = davit_server::ServerConfig::builder()
        .idle_timeout(Duration::from_secs(1))
        .build();
    let s = TestServer::start_with(Kind::Fs, config).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let part = [Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"part"))];
    let endless = futures_util::StreamExt::chain(
        futures_util::stream::iter(part),
        futures_util::stream::pending(),
    );
    let upload = client
        .put(s.url("/stalled"))
        .body(reqwest::Body::wrap_stream(endless))
        .send();
    let ended = tokio::time::timeout(Duration::from_secs(8), upload)
        .await
        .expect("the stalled upload's connection was closed in time");
    assert!(ended.is_err(), "{ended:?}");
    assert_eq!(s.get_text("/stalled").await.0, StatusCode::NOT_FOUND);
}

/// A client that stops reading in the middle of a large file (sent by `sendfile`) is let
/// go once its connection has been idle for the idle timeout, as one that stops sending
/// is: its connection no longer holds a slot forever.
#[tokio::test]
async fn a_client_that_stops_reading_a_large_file_is_let_go() {
    let config = davit_server::ServerConfig::builder()
        .idle_timeout(Duration::from_secs(1))
        .max_connections(1)
        .build();
    let s = TestServer::start_with(Kind::Fs, config).await;
    let size = 8 << 20;
    let root = s.root.as_ref().unwrap().path();
    std::fs::write(root.join("big"), vec![b'x'; size]).unwrap();
    let addr = s.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The only connection slot is free again: another client is served.
    let other = tokio::time::timeout(Duration::from_secs(5), s.req("OPTIONS", "/").send())
        .await
        .expect("served while the stalled client still holds its socket");
    assert_eq!(other.unwrap().status(), StatusCode::OK);
    drop(stalled);
}
