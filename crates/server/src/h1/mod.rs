//! Davit's own HTTP/1.1 connections; HTTP/2 stays with hyper.
//!
//! Why not hyper here as well: on loopback, hyper's HTTP/1 connection and dispatcher cost
//! more CPU per request and per connection than the rest of a small GET or a MOVE together
//! (docs/benchmarks.md, "After run 9"). This loop does the little a WebDAV server needs:
//! read a head, hand the request to [`DavServer::handle`], let the handler read the body
//! from the socket as it goes (`body`), write the answer (`write`), and go again.
//!
//! Framing is decided by [`davit_proto::h1`], which refuses what a proxy in front could
//! frame differently. A request whose body is not read to its end closes the connection
//! after the answer, so a body is never taken for the next request.

pub(crate) mod body;
mod write;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use davit_proto::h1::{Framing, Head, HeadError, parse_head};
use http::{Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::body::DavBody;
use crate::conn::{Activity, Conn};
use crate::error::DavError;
use crate::request::RequestBody;
use crate::spin::IdleSpin;
use crate::{DavServer, Stream};

/// First read buffer of a connection; it grows to the head limit when a head needs it.
const HEAD_BUF: usize = 8 * 1024;
/// After a refused request or an unread body: how long, and how much, to keep reading
/// (and dropping) what the client still sends, so it reads the answer instead of a reset.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// A connection's socket and the bytes read from it but not yet used.
#[derive(Debug)]
pub(crate) struct Wire {
    io: Conn<Stream>,
    buf: BytesMut,
}

/// What every request on a connection shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) server: Arc<DavServer>,
    pub(crate) peer: SocketAddr,
    pub(crate) activity: Arc<Activity>,
    pub(crate) spin: Arc<IdleSpin>,
    pub(crate) max_head: usize,
}

/// Serves requests on `io`, whose first bytes are `first`, until the client closes it, an
/// answer ends it, or the server stops while no request is under way. `_running` is held
/// until then: the server's shutdown waits for every connection's to be dropped.
pub(crate) async fn serve(
    io: Conn<Stream>,
    first: BytesMut,
    cx: Context,
    _running: watch::Receiver<()>,
) {
    let mut wire = Wire { io, buf: first };
    let mut out = Vec::with_capacity(512);
    loop {
        let head = match read_head(&mut wire, cx.max_head).await {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err((status, reason)) => {
                tracing::debug!(peer = %cx.peer, %status, %reason, "request refused");
                if let Some(metrics) = &cx.server.config.metrics {
                    metrics.refused_head(status);
                }
                let asked = write::Asked {
                    version: Version::HTTP_11,
                    head_request: false,
                    close: true,
                };
                let resp = DavError::new(status, reason).into_response();
                if write::answer(&mut wire.io, &mut out, resp, asked)
                    .await
                    .is_ok()
                {
                    linger(&mut wire).await;
                }
                return;
            }
        };
        let asked = write::Asked {
            version: head.version,
            head_request: head.method == Method::HEAD,
            close: !head.keep_alive,
        };
        let Some((w, resp, body_ended, unfinished)) = exchange(wire, head, &cx).await else {
            return;
        };
        wire = w;
        if !unfinished.is_empty() && wire.io.write_all(unfinished).await.is_err() {
            return;
        }
        // At shutdown the answer under way is the connection's last.
        let stopping = wire.io.stopping();
        let asked = write::Asked {
            close: asked.close || !body_ended || stopping,
            ..asked
        };
        match write::answer(&mut wire.io, &mut out, resp, asked).await {
            Ok(true) => {
                // An upload's read buffer is not kept for the heads that follow.
                if wire.buf.is_empty() && wire.buf.capacity() > 8 * HEAD_BUF {
                    wire.buf = BytesMut::with_capacity(HEAD_BUF);
                }
            }
            Ok(false) => {
                // Whatever the client sent past this answer (a body not read, requests it
                // pipelined before learning of the close) is read and dropped first, so
                // that closing does not reset the connection under the answer.
                if body_ended && wire.buf.is_empty() && !stopping {
                    let _ = tokio::time::timeout(LINGER, wire.io.shutdown()).await;
                } else {
                    linger(&mut wire).await;
                }
                return;
            }
            Err(e) => {
                tracing::debug!(peer = %cx.peer, error = %e, "answer not sent");
                return;
            }
        }
    }
    // A client that closed (or failed) needs no shutdown: closing the socket sends the FIN.
    if wire.io.stopping() {
        let _ = tokio::time::timeout(LINGER, wire.io.shutdown()).await;
    }
}

/// Reads until a whole head is buffered. `Ok(None)` when the connection ends first, or
/// the server stops before a request begins; `Err` with the answer for a refused head.
async fn read_head(
    wire: &mut Wire,
    max_head: usize,
) -> Result<Option<Head>, (StatusCode, Cow<'static, str>)> {
    // Where to look for the end of the head: a head sent a byte at a time is scanned once,
    // not parsed again from its start at every byte.
    let mut unseen = 0usize;
    loop {
        // RFC 9112 §2.2: empty lines before a request line are ignored. Dropped as they
        // come: kept, every later byte would have the whole head parsed again (a line end
        // then an empty line looks like its end). They count as a head under way, for
        // the header timeout.
        let blank = leading_blank_lines(&wire.buf);
        if blank > 0 {
            wire.buf.advance(blank);
            unseen = unseen.saturating_sub(blank);
            wire.io.head_begins();
        }
        let ends = head_may_end(&wire.buf, unseen);
        unseen = wire.buf.len();
        if !wire.buf.is_empty() && !ends {
            if wire.buf.len() >= max_head {
                return Err(too_large(max_head));
            }
            wire.io.head_begins();
        } else if ends {
            let buffered = wire.buf.len();
            match parse_head(&mut wire.buf) {
                // A head that came whole in one read is held to the bound too.
                Ok(Some(_)) if buffered - wire.buf.len() > max_head => {
                    return Err(too_large(max_head));
                }
                Ok(Some(head)) => {
                    wire.io.head_ends();
                    return Ok(Some(head));
                }
                Ok(None) if wire.buf.len() >= max_head => return Err(too_large(max_head)),
                Ok(None) => wire.io.head_begins(),
                Err(e) => return Err((refusal_status(e), e.to_string().into())),
            }
        }
        if wire.buf.capacity() == wire.buf.len() {
            wire.buf.reserve(HEAD_BUF);
        }
        // Between requests a stop reads as the end of the stream (see `Watchdog::stop_all`).
        wire.io.between_requests(wire.buf.is_empty());
        let read = wire.io.read_buf(&mut wire.buf).await;
        wire.io.between_requests(false);
        match read {
            Ok(0) => {
                if !wire.buf.is_empty() {
                    tracing::debug!("connection closed in the middle of a request head");
                }
                return Ok(None);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "connection ended while reading a request head");
                return Ok(None);
            }
        }
    }
}

/// Bytes of empty lines (CRLF or LF) at the start of `buf`; a CR that may begin one is
/// left until its LF comes.
fn leading_blank_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match &buf[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            _ => return at,
        }
    }
}

/// Whether `buf` past `from` may hold the end of a head: a line feed followed by an empty
/// line (CRLF or LF). The three bytes before `from` are looked at again, for an end split
/// across reads.
fn head_may_end(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(3).min(buf.len());
    memchr::memchr_iter(b'\n', &buf[start..]).any(|i| {
        let rest = &buf[start + i + 1..];
        rest.starts_with(b"\r\n") || rest.starts_with(b"\n")
    })
}

fn too_large(max_head: usize) -> (StatusCode, Cow<'static, str>) {
    (
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        format!("the request head is larger than {max_head} bytes").into(),
    )
}

fn refusal_status(e: HeadError) -> StatusCode {
    match e {
        HeadError::TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        HeadError::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Hands the request to the server, lending it the connection while it reads the body.
/// The connection back, the answer, and whether the body was read to its end; `None` if
/// the connection cannot be had back. Last, what is left to send of a `100 Continue`.
async fn exchange(
    wire: Wire,
    head: Head,
    cx: &Context,
) -> Option<(Wire, Response<DavBody>, bool, &'static [u8])> {
    let framing = head.framing;
    let mut req = Request::new(RequestBody::empty());
    *req.method_mut() = head.method;
    *req.uri_mut() = head.uri;
    *req.version_mut() = head.version;
    *req.headers_mut() = head.headers;
    if framing == Framing::None {
        let resp = handle(req, cx).await;
        return Some((wire, resp, true, b""));
    }
    let slot = body::slot(wire, framing, head.expect_continue);
    *req.body_mut() = RequestBody::http1(body::Body::new(Arc::clone(&slot), framing));
    let resp = handle(req, cx).await;
    let mut inbound = body::lock(&slot);
    let ended = inbound.finish_buffered();
    let unfinished = inbound.unfinished_continue();
    let mut wire = inbound.wire.take()?;
    wire.io.body_waits(false);
    Some((wire, resp, ended, unfinished))
}

async fn handle(req: Request<RequestBody>, cx: &Context) -> Response<DavBody> {
    crate::answer(&cx.server, req, cx.peer, cx.activity.request(), &cx.spin).await
}

/// Closes the sending side, then reads and drops what the client still sends for a
/// while, so the answer is read before the connection is reset.
async fn linger(wire: &mut Wire) {
    let drain = async {
        let _ = wire.io.shutdown().await;
        let mut seen = 0;
        loop {
            wire.buf.clear();
            if wire.buf.capacity() < HEAD_BUF {
                wire.buf.reserve(HEAD_BUF);
            }
            match wire.io.read_buf(&mut wire.buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen += n,
            }
            if seen > LINGER_BYTES {
                return;
            }
        }
    };
    let _: Result<(), _> = tokio::time::timeout(LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use super::{head_may_end, leading_blank_lines};

    #[test]
    fn leading_empty_lines_are_counted() {
        for (buf, n) in [
            (&b""[..], 0),
            (b"GET", 0),
            (b"\r\nGET", 2),
            (b"\n\r\n\nGET", 4),
            (b"\r", 0),
            (b"\r\n\r", 2),
            (b"\r\r\n", 0),
        ] {
            assert_eq!(leading_blank_lines(buf), n, "{buf:?}");
        }
    }

    #[test]
    fn finds_the_end_of_a_head_however_the_reads_split_it() {
        for head in [
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".as_slice(),
            b"GET / HTTP/1.0\n\n",
        ] {
            for cut in 0..=head.len() {
                let first = head_may_end(&head[..cut], 0);
                let then = head_may_end(head, cut);
                assert_eq!(first, cut == head.len(), "{head:?} cut at {cut}");
                assert!(first || then, "{head:?} cut at {cut}");
            }
        }
        assert!(!head_may_end(b"GET / HTTP/1.1\r\nHost: h\r\n", 0));
        assert!(!head_may_end(b"", 0));
    }
}
