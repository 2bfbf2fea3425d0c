//! Which HTTP a connection speaks, from its first bytes.
//!
//! HTTP/2 without TLS starts with a fixed preface (RFC 9113 §3.4); anything else is
//! HTTP/1. Davit reads the first bytes itself, as far as they agree with the preface: its
//! own HTTP/1 loop parses them where they are, hyper's HTTP/2 gets them back through the
//! connection ([`Conn::give_back`]). hyper-util's automatic builder does the same with a read of exactly the preface's
//! length, then a second read for the rest of the request, and wraps every later read. On
//! a connection that carries one request (a MOVE from a command-line client) this saves
//! that system call and about 3 µs of the 71 µs of CPU the connection took (GET, eight
//! runs side by side).

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::conn::Conn;

/// The client preface of HTTP/2 over cleartext TCP.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Room for a typical WebDAV request head (a few hundred bytes), read in one call, and
/// small enough to come from the allocator's per-thread cache; a larger head grows it.
const FIRST_READ: usize = 1024;

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// Reads until the first bytes decide the protocol; the protocol and the bytes read. `None`
/// when the client closed the connection without sending a byte.
pub(crate) async fn detect<S: AsyncRead + Unpin>(
    conn: &mut Conn<S>,
) -> io::Result<Option<(Protocol, BytesMut)>> {
    let mut first = BytesMut::with_capacity(FIRST_READ);
    loop {
        if first.len() == first.capacity() {
            first.reserve(FIRST_READ);
        }
        if conn.read_buf(&mut first).await? == 0 {
            if first.is_empty() {
                return Ok(None);
            }
            // A client that stops half-way through a possible preface: HTTP/1 answers it.
            break;
        }
        // The header timeout covers a preface, or a request head, sent slowly.
        conn.head_begins();
        let seen = first.len().min(PREFACE.len());
        if first[..seen] != PREFACE[..seen] || seen == PREFACE.len() {
            break;
        }
    }
    let protocol = if first.starts_with(PREFACE) {
        Protocol::Http2
    } else {
        Protocol::Http1
    };
    Ok(Some((protocol, first)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Watchdog;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    fn watched<S>(stream: S) -> Conn<S> {
        let watchdog = Watchdog::new(Duration::from_secs(30), Duration::from_secs(30));
        let activity = watchdog.watch();
        Conn::new(stream, &watchdog, activity)
    }

    /// Sends `pieces` one write at a time (each a separate read for the server, as the
    /// writer waits for the reader), then closes; the protocol chosen and every byte read.
    async fn run(pieces: &[&[u8]]) -> Option<(Protocol, Vec<u8>)> {
        let (mut client, server) = tokio::io::duplex(64);
        let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for p in pieces {
                client.write_all(&p).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut conn = watched(server);
        let out = match detect(&mut conn).await.unwrap() {
            None => None,
            Some((protocol, first)) => {
                let mut all = first.to_vec();
                conn.read_to_end(&mut all).await.unwrap();
                Some((protocol, all))
            }
        };
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn decides_by_the_preface_however_it_is_split() {
        let h1 = b"PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice();
        let h2 = [PREFACE, b"\x00\x00\x00\x04\x00\x00\x00\x00\x00".as_slice()].concat();
        let cases: Vec<(Vec<&[u8]>, Option<Protocol>)> = vec![
            (vec![h1], Some(Protocol::Http1)),
            (vec![b"G", b"ET / HTTP/1.1\r\n\r\n"], Some(Protocol::Http1)),
            // Shares "P" and then "PR" with the preface before it parts.
            (
                vec![b"P", b"R", b"OPFIND / HTTP/1.1\r\n\r\n"],
                Some(Protocol::Http1),
            ),
            (vec![b"PUT /x HTTP/1.1\r\n\r\n"], Some(Protocol::Http1)),
            (vec![&h2], Some(Protocol::Http2)),
            (vec![&h2[..3], &h2[3..20], &h2[20..]], Some(Protocol::Http2)),
            (vec![&h2[..24]], Some(Protocol::Http2)),
            // A preface cut short by the client's close is not HTTP/2.
            (vec![&h2[..10]], Some(Protocol::Http1)),
            (vec![], None),
        ];
        for (pieces, want) in cases {
            let sent: Vec<u8> = pieces.concat();
            let got = run(&pieces).await;
            assert_eq!(got.as_ref().map(|g| g.0), want, "{pieces:?}");
            if let Some((_, bytes)) = got {
                assert_eq!(
                    bytes, sent,
                    "every byte is read again, in order: {pieces:?}"
                );
            }
        }
    }

    proptest::proptest! {
        /// However the bytes are cut, every one is read again in order, and only a stream
        /// that begins with the whole preface is HTTP/2.
        #[test]
        fn replays_every_byte_and_decides_by_the_whole_preface(
            preface_part in 0..=PREFACE.len(),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            cuts in proptest::collection::vec(0usize..100, 0..6),
        ) {
            let mut sent = PREFACE[..preface_part].to_vec();
            sent.extend_from_slice(&tail);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (sent.len() + 1)).collect();
            points.push(sent.len());
            points.sort_unstable();
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for p in points {
                if p > at {
                    pieces.push(&sent[at..p]);
                    at = p;
                }
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = runtime.block_on(run(&pieces));
            match got {
                None => proptest::prop_assert!(sent.is_empty()),
                Some((protocol, bytes)) => {
                    proptest::prop_assert_eq!(&bytes, &sent);
                    let h2 = sent.starts_with(PREFACE);
                    proptest::prop_assert_eq!(protocol == Protocol::Http2, h2);
                }
            }
        }
    }

    #[tokio::test]
    async fn bytes_given_back_are_replayed_whole_into_small_buffers() {
        let head = vec![b'a'; FIRST_READ * 2];
        let (mut client, server) = tokio::io::duplex(FIRST_READ * 4);
        client.write_all(&head).await.unwrap();
        drop(client);
        let mut conn = watched(server);
        let (protocol, first) = detect(&mut conn).await.unwrap().unwrap();
        assert_eq!(protocol, Protocol::Http1);
        conn.give_back(first);
        let mut all = Vec::new();
        let mut small = [0u8; 7];
        loop {
            let n = conn.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&small[..n]);
        }
        assert_eq!(all, head);
    }
}
