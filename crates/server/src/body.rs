//! The response body type: nothing, one buffer, or a stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use davit_store::ByteStream;
use http_body::{Frame, SizeHint};

/// A response body. `Full` knows its length (so hyper sends `Content-Length`); `Stream`
/// is sent chunked unless the handler sets the length.
pub enum DavBody {
    /// No body.
    Empty,
    /// One buffer, taken on the first poll.
    Full(Option<Bytes>),
    /// Chunks as they come.
    Stream(ByteStream),
}

impl std::fmt::Debug for DavBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DavBody::Empty => f.write_str("Empty"),
            DavBody::Full(b) => write!(f, "Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            DavBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl DavBody {
    /// One buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        DavBody::Full(Some(bytes.into()))
    }
}

impl http_body::Body for DavBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            DavBody::Empty => Poll::Ready(None),
            DavBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            DavBody::Stream(s) => s
                .as_mut()
                .poll_next(cx)
                .map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            DavBody::Empty => true,
            DavBody::Full(b) => b.is_none(),
            DavBody::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            DavBody::Empty => SizeHint::with_exact(0),
            DavBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            DavBody::Stream(_) => SizeHint::default(),
        }
    }
}
