//! A small HTTP/1.1 server on loopback that answers each request from a script, one
//! request per connection: the client tests' stand-in for other servers' behaviour (odd
//! listings, redirects) that Davit's own server never shows.

// Each test binary that includes this uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request as the script sees it; header names are lower case.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Vec<u8>,
}

/// What the script answers: status line text, extra header lines, body.
pub(crate) struct Answer {
    pub(crate) status: &'static str,
    pub(crate) headers: Vec<String>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn new(status: &'static str, body: impl Into<String>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(crate) fn header(mut self, line: impl Into<String>) -> Answer {
        self.headers.push(line.into());
        self
    }
}

/// Serves `script` on a free loopback port; every request it saw is in the log.
pub(crate) async fn scripted<F>(script: F) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>)
where
    F: Fn(&Seen) -> Answer + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (script, seen_log) = (Arc::new(script), Arc::clone(&log));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (script, log) = (Arc::clone(&script), Arc::clone(&seen_log));
            tokio::spawn(async move {
                let seen = read_request(&mut sock).await;
                let answer = script(&seen);
                log.lock().unwrap().push(seen);
                let mut head = format!("HTTP/1.1 {}\r\n", answer.status);
                for line in &answer.headers {
                    head.push_str(line);
                    head.push_str("\r\n");
                }
                head.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.body.len()
                ));
                sock.write_all(head.as_bytes()).await.unwrap();
                sock.write_all(answer.body.as_bytes()).await.unwrap();
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, log)
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Seen {
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
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap().split_whitespace();
    let (method, target) = (words.next().unwrap(), words.next().unwrap());
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed before its body ended");
        buf.extend_from_slice(&chunk[..n]);
    }
    Seen {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: buf[head_end..head_end + length].to_vec(),
    }
}
