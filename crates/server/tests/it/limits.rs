//! Configurable limits: upload size, locks per resource and in all, connections at once,
//! and request bodies far beyond the XML bound.

use std::time::{Duration, Instant};

use davit_server::ServerConfig;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Kind, TestServer};

#[tokio::test]
async fn uploads_over_the_limit_get_413_and_store_nothing() {
    for kind in [Kind::Memory, Kind::Fs] {
        let config = ServerConfig::builder().max_upload_bytes(Some(1000)).build();
        let s = TestServer::start_with(kind, config).await;
        assert_eq!(s.put("/small", "fits").await, StatusCode::CREATED);
        let r = s
            .req("PUT", "/big")
            .body(vec![b'x'; 1001])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{kind:?} declared length"
        );
        let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 200])));
        let r = s
            .req("PUT", "/small")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{kind:?} chunked"
        );
        assert_eq!(s.get_text("/big").await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            s.get_text("/small").await.1,
            "fits",
            "{kind:?} old content kept"
        );
    }
}

#[tokio::test]
async fn a_chunked_upload_announced_too_large_is_refused_before_its_body() {
    let config = ServerConfig::builder().max_upload_bytes(Some(1000)).build();
    let s = TestServer::start_with(Kind::Fs, config).await;
    // A body that never ends: only an answer before it can end the request.
    let endless = || {
        let first =
            futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(vec![
                b'x';
                100
            ]))]);
        reqwest::Body::wrap_stream(futures_util::stream::StreamExt::chain(
            first,
            futures_util::stream::pending(),
        ))
    };
    let put = s
        .req("PUT", "/big")
        .header("X-Expected-Entity-Length", "5000")
        .body(endless())
        .send();
    let r = tokio::time::timeout(Duration::from_secs(5), put)
        .await
        .expect("answered before the body ends")
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Announced to fit: the body is read, and still counted.
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 200])));
    let r = s
        .req("PUT", "/big")
        .header("X-Expected-Entity-Length", "500")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.get_text("/big").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn locks_per_resource_and_in_all_are_bounded() {
    let config = ServerConfig::builder().max_locks(3, 2).build();
    let s = TestServer::start_with(Kind::Fs, config).await;
    let shared = r#"<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype></lockinfo>"#;
    let lock = |path: &'static str| s.req("LOCK", path).header("Depth", "0").body(shared).send();
    assert_eq!(s.put("/a", "a").await, StatusCode::CREATED);
    assert_eq!(lock("/a").await.unwrap().status(), StatusCode::OK);
    assert_eq!(lock("/a").await.unwrap().status(), StatusCode::OK);
    let third = lock("/a").await.unwrap();
    assert_eq!(third.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(lock("/b").await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(
        lock("/c").await.unwrap().status(),
        StatusCode::INSUFFICIENT_STORAGE,
        "three locks in all"
    );
    assert_eq!(
        s.get_text("/c").await.0,
        StatusCode::NOT_FOUND,
        "a refused LOCK creates nothing"
    );
}

#[tokio::test]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let config = ServerConfig::builder().max_connections(1).build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let request = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut buf = [0u8; 512];
    assert!(first.read(&mut buf).await.unwrap() > 0);
    let mut second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(
        waited.is_err(),
        "the second connection is not served while the first is open"
    );
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("served once the first closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_100_mb_xml_body_is_refused_before_it_is_read() {
    let s = TestServer::start(Kind::Memory).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(
        b"PROPFIND / HTTP/1.1\r\nHost: x\r\nDepth: 0\r\nContent-Type: application/xml\r\n\
          Content-Length: 104857600\r\n\r\n<propfind xmlns=\"DAV:\"><allprop/>",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 512];
    let n = sock.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_refused_and_others_are_served() {
    let config = ServerConfig::builder().max_header_bytes(16 * 1024).build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    // Sends a head with a filler header of `filler` bytes; returns the first answer bytes.
    let answer = |filler: usize| {
        let addr = addr.clone();
        async move {
            let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Filler: {}\r\n\r\n",
                "a".repeat(filler)
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let mut buf = vec![0u8; 64];
            // The server may reset the connection after answering, with bytes unread.
            let n = sock.read(&mut buf).await.unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
    };
    assert!(
        answer(12 * 1024).await.starts_with("HTTP/1.1 200"),
        "under the limit"
    );
    let refused = answer(40 * 1024).await;
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused:?}");
    assert_eq!(s.get_text("/").await.0, StatusCode::OK);
}

#[tokio::test]
async fn one_client_cannot_take_every_connection() {
    // 127.0.0.3 is a trusted proxy: many clients, so not held to one client's share.
    let config = ServerConfig::builder()
        .max_connections_per_client(1)
        .trusted_proxies(davit_server::TrustedProxies::new(&["127.0.0.3"]).unwrap())
        .build();
    let s = TestServer::start_with(Kind::Memory, config).await;
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let request = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n";
    let from = |ip: [u8; 4]| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind((std::net::Ipv4Addr::from(ip), 0).into()).unwrap();
        let mut conn = sock.connect(addr).await.unwrap();
        conn.write_all(request).await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap_or(0);
        (conn, String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let (_held, first) = from([127, 0, 0, 1]).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let (_, second) = from([127, 0, 0, 1]).await;
    assert!(second.starts_with("HTTP/1.1 503"), "{second}");
    let (_, other) = from([127, 0, 0, 2]).await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another client is served: {other}"
    );
    let (_held_by_proxy, first) = from([127, 0, 0, 3]).await;
    let (_, second) = from([127, 0, 0, 3]).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "a proxy's second client: {second}"
    );
}
