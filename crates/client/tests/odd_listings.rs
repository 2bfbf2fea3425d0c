//! The recursive listing and download against a server whose listings are odd or hostile:
//! the collection itself listed last, members outside the collection, a `..` path, and
//! collections that name their ancestors (a loop). A small HTTP/1.1 server on loopback
//! answers with fixed bodies.

use std::collections::HashMap;

use davit_client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn response(href: &str, collection: bool) -> String {
    let (kind, len) = if collection {
        ("<D:collection/>", String::new())
    } else {
        ("", "<D:getcontentlength>1</D:getcontentlength>".to_owned())
    };
    format!(
        "<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:resourcetype>{kind}</D:resourcetype>{len}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )
}

fn multistatus(entries: &[(&str, bool)]) -> String {
    let body: String = entries.iter().map(|(h, c)| response(h, *c)).collect();
    format!("<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\">{body}</D:multistatus>")
}

/// Answers PROPFIND with `listings[path]` and GET with `files[path]`, one request per
/// connection.
async fn odd_server(listings: HashMap<String, String>, files: HashMap<String, String>) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (listings, files) = (listings.clone(), files.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let head_end = loop {
                    let mut chunk = [0u8; 4096];
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "the client closed before its request ended");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let mut chunk = [0u8; 4096];
                    let n = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap(), words.next().unwrap());
                let (status, body) = match method {
                    "PROPFIND" => listings
                        .get(path)
                        .map_or(("404 Not Found", String::new()), |b| {
                            ("207 Multi-Status", b.clone())
                        }),
                    "GET" => files
                        .get(path)
                        .map_or(("404 Not Found", String::new()), |b| ("200 OK", b.clone())),
                    _ => ("405 Method Not Allowed", String::new()),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(answer.as_bytes()).await.unwrap();
                let _ = sock.shutdown().await;
            });
        }
    });
    Client::new(&format!("http://{addr}")).unwrap()
}

async fn odd_tree() -> Client {
    let listings = HashMap::from([
        (
            "/t/".to_owned(),
            multistatus(&[
                ("/t/a.txt", false),
                ("/t/sub/", true),
                ("/etc/", true),
                ("/t/../escape.txt", false),
                ("/t/", true),
            ]),
        ),
        (
            "/t/sub/".to_owned(),
            multistatus(&[("/t/sub/", true), ("/t/", true), ("/t/sub/loop/", true)]),
        ),
        (
            "/t/sub/loop/".to_owned(),
            multistatus(&[("/t/sub/loop/", true), ("/t/sub/", true)]),
        ),
        ("/etc/".to_owned(), multistatus(&[("/etc/passwd", false)])),
    ]);
    let files = HashMap::from([
        ("/t/a.txt".to_owned(), "a".to_owned()),
        ("/escape.txt".to_owned(), "!".to_owned()),
        ("/etc/passwd".to_owned(), "!".to_owned()),
    ]);
    odd_server(listings, files).await
}

#[tokio::test]
async fn the_walk_stays_below_the_collection_and_ends() {
    let c = odd_tree().await;
    let paths: Vec<String> = c
        .list_recursive("/t/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths[0], "/t/", "the collection first: {paths:?}");
    let mut members = paths[1..].to_vec();
    members.sort();
    assert_eq!(members, ["/t/a.txt", "/t/sub/", "/t/sub/loop/"]);
}

#[tokio::test]
async fn the_download_writes_only_inside_its_folder() {
    let c = odd_tree().await;
    let out = tempfile::tempdir().unwrap();
    let local = out.path().join("t");
    let done = c.download_tree("/t/", &local, None).await.unwrap();
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    assert_eq!(done.files.len(), 1);
    assert_eq!(done.folders, 3);
    assert_eq!(std::fs::read_to_string(local.join("a.txt")).unwrap(), "a");
    assert!(local.join("sub/loop").is_dir());
    assert!(!out.path().join("escape.txt").exists());
    assert!(!local.join("etc").exists());
}
