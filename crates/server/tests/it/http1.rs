//! HTTP/1.1 message framing as clients put it on the wire: pipelining, chunked uploads,
//! `Expect: 100-continue`, HTTP/1.0, HEAD, and the framings Davit refuses.

use std::sync::Arc;
use std::time::Duration;

use davit_server::ServerConfig;
use davit_server::auth::{Access, AccessPolicy, Auth, Htpasswd};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Kind, TestServer};

async fn connect(s: &TestServer) -> TcpStream {
    let sock = TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    sock.set_nodelay(true).unwrap();
    sock
}

/// Sends `bytes` and reads until the server closes the connection.
async fn exchange(s: &TestServer, bytes: &[u8]) -> String {
    let mut sock = connect(s).await;
    sock.write_all(bytes).await.unwrap();
    read_to_close(&mut sock).await
}

async fn read_to_close(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until `want` bytes of the answer have come, or the connection closes.
async fn read_some(sock: &mut TcpStream, want: usize) -> String {
    let mut out = vec![0u8; want];
    let mut got = 0;
    while got < want {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut out[got..]))
            .await
            .expect("an answer")
            .unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    String::from_utf8_lossy(&out[..got]).into_owned()
}

fn statuses(answers: &str) -> Vec<&str> {
    answers
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answers[i + 9..i + 12])
        .collect()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let s = TestServer::start(Kind::Memory).await;
    let out = exchange(
        &s,
        b"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
          GET /a HTTP/1.1\r\nHost: h\r\n\r\n\
          GET /missing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&out), ["201", "200", "404"], "{out}");
    let get = &out[out.find("HTTP/1.1 200").unwrap()..out.find("HTTP/1.1 404").unwrap()];
    assert!(get.ends_with("\r\n\r\nabc"), "{get}");
}

#[tokio::test]
async fn options_asterisk_lists_every_method() {
    let s = TestServer::start(Kind::Memory).await;
    let out = exchange(
        &s,
        b"OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&out), ["200"], "{out}");
    let allow = out
        .lines()
        .find_map(|l| l.strip_prefix("allow: "))
        .unwrap_or_else(|| panic!("no Allow: {out}"));
    let methods: Vec<&str> = allow.split(", ").collect();
    for m in crate::auth::METHODS {
        assert!(methods.contains(&m), "{m} missing: {allow}");
    }
}

#[tokio::test]
async fn framings_two_parsers_could_read_differently_are_refused_and_end_the_connection() {
    let s = TestServer::start(Kind::Memory).await;
    // Each carries a second request that must never be answered: a proxy in front could
    // have framed the first one differently and passed it on as the client's.
    let cases: &[(&str, &str)] = &[
        ("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "400"),
        ("Transfer-Encoding: gzip, chunked\r\n", "501"),
        ("Transfer-Encoding: chunked, identity\r\n", "400"),
        ("Content-Length: 3\r\nContent-Length: 4\r\n", "400"),
        ("Content-Length: -3\r\n", "400"),
    ];
    for (fields, status) in cases {
        let request = format!(
            "PUT /f HTTP/1.1\r\nHost: h\r\n{fields}\r\n0\r\n\r\nDELETE / HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        let out = exchange(&s, request.as_bytes()).await;
        assert_eq!(statuses(&out), [*status], "{fields:?}: {out}");
        assert!(out.contains("connection: close"), "{out}");
    }
    let out = exchange(
        &s,
        b"PUT /f HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(
        statuses(&out),
        ["400"],
        "HTTP/1.0 has no chunked coding: {out}"
    );
}

#[tokio::test]
async fn chunked_uploads_are_decoded_with_extensions_and_trailers() {
    let s = TestServer::start(Kind::Memory).await;
    let out = exchange(
        &s,
        b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Checksum: 1\r\n\r\n\
          GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&out), ["201", "200"], "{out}");
    assert!(out.ends_with("\r\n\r\nWikipedia"), "{out}");
    let out = exchange(
        &s,
        b"PUT /bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWikiXX\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&out), ["400"], "{out}");
    let (status, _) = s.get_text("/bad").await;
    assert_eq!(status, 404, "nothing is stored from a broken body");
}

#[tokio::test]
async fn the_body_is_asked_for_only_when_the_request_can_succeed() {
    let s = TestServer::start(Kind::Memory).await;
    let mut sock = connect(&s).await;
    sock.write_all(
        b"PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = read_some(&mut sock, 25).await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    sock.write_all(b"hello").await.unwrap();
    let answer = read_some(&mut sock, 12).await;
    assert_eq!(answer, "HTTP/1.1 201");
    drop(sock);
    assert_eq!(s.get_text("/e").await.1, "hello");

    // The folder is missing: the answer comes without asking for the body, and the
    // connection ends, since the body's bytes would otherwise be read as a request.
    let mut sock = connect(&s).await;
    sock.write_all(
        b"PUT /no/such/f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let out = read_to_close(&mut sock).await;
    assert_eq!(statuses(&out), ["409"], "{out}");
    assert!(out.contains("connection: close"), "{out}");

    // Refused before any handler takes the body: no login.
    let auth = Auth::new(
        Htpasswd::parse("").unwrap(),
        AccessPolicy::new(Access::None),
    )
    .unwrap()
    .failure_delay(Duration::ZERO);
    let config = ServerConfig::builder().auth(Some(Arc::new(auth))).build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    let mut sock = connect(&s).await;
    sock.write_all(
        b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let out = read_to_close(&mut sock).await;
    assert_eq!(statuses(&out), ["401"], "{out}");
}

#[tokio::test]
async fn an_unread_body_closes_the_connection_after_the_answer() {
    let s = TestServer::start(Kind::Memory).await;
    let mut sock = connect(&s).await;
    // A body larger than the server reads before answering 409, half of it sent.
    sock.write_all(b"PUT /no/such/f HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\npartial")
        .await
        .unwrap();
    let out = read_to_close(&mut sock).await;
    assert_eq!(statuses(&out), ["409"], "{out}");
}

#[tokio::test]
async fn http_1_0_and_head_get_what_they_can_read() {
    let s = TestServer::start(Kind::Memory).await;
    s.put("/f", "abc").await;
    let out = exchange(&s, b"GET /f HTTP/1.0\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("content-length: 3\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\nabc"),
        "HTTP/1.0 closes after one answer: {out}"
    );

    let out = exchange(
        &s,
        b"GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /f HTTP/1.0\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&out), ["200", "200"], "{out}");
    assert!(out.contains("connection: keep-alive\r\n"), "{out}");

    let out = exchange(
        &s,
        b"HEAD /f HTTP/1.1\r\nHost: h\r\n\r\nGET /f HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&out), ["200", "200"], "{out}");
    let head = &out[..out.rfind("HTTP/1.1 200").unwrap()];
    assert!(head.contains("content-length: 3\r\n"), "{head}");
    assert!(
        head.ends_with("\r\n\r\n"),
        "HEAD answers carry no body: {head}"
    );
}

/// RFC 9110 §8.6: a Content-Length list of one value repeated is that length, for the
/// methods that read their whole body as for the framing.
#[tokio::test]
async fn a_repeated_content_length_is_one_length() {
    let s = TestServer::start(Kind::Memory).await;
    let out = exchange(
        &s,
        b"PROPFIND / HTTP/1.1\r\nHost: h\r\nDepth: 0\r\nContent-Length: 4, 4\r\nConnection: close\r\n\r\n    ",
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 207"),
        "{}",
        &out[..out.len().min(300)]
    );
}

#[tokio::test]
async fn heads_past_the_limits_are_refused() {
    let s = TestServer::start(Kind::Memory).await;
    let long = "x".repeat(100 * 1024);
    let out = exchange(
        &s,
        format!("GET / HTTP/1.1\r\nHost: h\r\nX-Long: {long}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(statuses(&out), ["431"], "{}", &out[..out.len().min(200)]);
    let many: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
    let out = exchange(
        &s,
        format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(statuses(&out), ["431"], "{out}");
    let out = exchange(&s, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(statuses(&out), ["400"], "HTTP/1.1 needs a Host: {out}");
    // A long head read in with a body before it, whole, is held to the limit too.
    let out = exchange(
        &s,
        format!(
            "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n\
             GET / HTTP/1.1\r\nHost: h\r\nX-Long: {long}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(
        statuses(&out),
        ["201", "431"],
        "{}",
        &out[..out.len().min(300)]
    );
    // Empty lines before a request are skipped (RFC 9112 §2.2), and are not its head.
    let blank = "\r\n".repeat(50 * 1024);
    let out = exchange(
        &s,
        format!("{blank}\nGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(statuses(&out), ["200"], "{}", &out[..out.len().min(300)]);
}
