//! The access log: one `info` event per request on target `davit::access`, written when the
//! response body has been sent (or dropped), so bytes and duration cover the whole exchange.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;
use http::{Method, Request, Response, StatusCode};

use crate::body::DavBody;

#[derive(Debug)]
pub(crate) struct Entry {
    started: Instant,
    client: SocketAddr,
    method: Method,
    path: String,
    pub(crate) user: Option<Arc<str>>,
    status: StatusCode,
    bytes: u64,
}

impl Entry {
    pub(crate) fn new<B>(client: SocketAddr, req: &Request<B>) -> Self {
        Entry {
            started: Instant::now(),
            client,
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            user: None,
            status: StatusCode::OK,
            bytes: 0,
        }
    }

    /// Logs now for bodies already in memory; for streamed ones, once the stream ends.
    pub(crate) fn finish(mut self, resp: Response<DavBody>) -> Response<DavBody> {
        self.status = resp.status();
        let (mut parts, body) = resp.into_parts();
        let body = match body {
            DavBody::Stream(inner) => DavBody::Stream(Box::pin(Counted { inner, entry: self })),
            // Counted as it streams; logging trades the kernel's `sendfile` for the count.
            DavBody::File(file) => {
                // A stream does not know its length; the file's range does.
                let range = file.range();
                parts
                    .headers
                    .entry(http::header::CONTENT_LENGTH)
                    .or_insert_with(|| http::HeaderValue::from(range.end - range.start));
                DavBody::Stream(Box::pin(Counted {
                    inner: file.into_stream(),
                    entry: self,
                }))
            }
            other => {
                self.bytes = match &other {
                    DavBody::Full(Some(b)) => b.len() as u64,
                    _ => 0,
                };
                drop(self);
                other
            }
        };
        Response::from_parts(parts, body)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        tracing::info!(
            target: "davit::access",
            client = %self.client.ip(),
            user = self.user.as_deref().unwrap_or("-"),
            method = %self.method,
            path = %self.path,
            status = self.status.as_u16(),
            bytes = self.bytes,
            micros = self.started.elapsed().as_micros() as u64,
        );
    }
}

struct Counted {
    inner: davit_store::ByteStream,
    entry: Entry,
}

impl Stream for Counted {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            this.entry.bytes += chunk.len() as u64;
        }
        next
    }
}
