//! The response body type: nothing, one buffer, a stream, or (part of) a file.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use davit_proto::ByteRange;
use davit_store::{ByteStream, FileReader};
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
    /// A file's content, or a range of it. Davit's HTTP/1 connections over plain TCP have
    /// the kernel send it from the page cache (`sendfile`); others stream it.
    File(FileBody),
}

/// A file opened for reading and the range of it to send.
pub struct FileBody {
    reader: Option<Box<dyn FileReader>>,
    range: ByteRange,
    stream: Option<ByteStream>,
}

impl std::fmt::Debug for FileBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBody({:?})", self.range)
    }
}

impl FileBody {
    /// `range` of what `reader` opened (all of it when `None`).
    pub fn new(reader: Box<dyn FileReader>, range: Option<ByteRange>) -> Self {
        let range = range.unwrap_or(ByteRange {
            start: 0,
            end: reader.metadata().len,
        });
        FileBody {
            reader: Some(reader),
            range,
            stream: None,
        }
    }

    /// The bytes to send.
    pub fn range(&self) -> ByteRange {
        self.range
    }

    /// The open file, unless streaming has begun.
    pub fn file(&self) -> Option<&std::fs::File> {
        self.reader.as_ref()?.file()
    }

    /// The content as a stream.
    pub fn into_stream(mut self) -> ByteStream {
        self.take_stream()
    }

    fn take_stream(&mut self) -> ByteStream {
        if let Some(stream) = self.stream.take() {
            return stream;
        }
        match self.reader.take() {
            Some(reader) => reader.stream(Some(self.range)),
            None => Box::pin(futures_util::stream::empty()),
        }
    }
}

impl std::fmt::Debug for DavBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DavBody::Empty => f.write_str("Empty"),
            DavBody::Full(b) => write!(f, "Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            DavBody::Stream(_) => f.write_str("Stream"),
            DavBody::File(b) => write!(f, "File({:?})", b.range),
        }
    }
}

impl DavBody {
    /// One buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        DavBody::Full(Some(bytes.into()))
    }

    /// The body as a stream of chunks.
    pub fn into_stream(self) -> ByteStream {
        match self {
            DavBody::Empty | DavBody::Full(None) => Box::pin(futures_util::stream::empty()),
            DavBody::Full(Some(b)) => Box::pin(futures_util::stream::iter([Ok(b)])),
            DavBody::Stream(s) => s,
            DavBody::File(f) => f.into_stream(),
        }
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
            DavBody::File(b) => {
                let mut stream = b.take_stream();
                let next = stream.as_mut().poll_next(cx);
                b.stream = Some(stream);
                next.map(|o| o.map(|r| r.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            DavBody::Empty => true,
            DavBody::Full(b) => b.is_none(),
            DavBody::Stream(_) | DavBody::File(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            DavBody::Empty => SizeHint::with_exact(0),
            DavBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            DavBody::Stream(_) => SizeHint::default(),
            DavBody::File(b) => SizeHint::with_exact(b.range.end - b.range.start),
        }
    }
}
