//! The body of an HTTP/1 request, read from the connection as the handler asks for it.
//!
//! While a request with a body is handled, the connection's socket and read buffer move
//! into a shared slot the body reads from (the handler may run in a task of its own); the
//! connection takes them back once the answer is ready. Bytes past the body's end stay in
//! the buffer for the next request.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use davit_proto::h1::{ChunkedDecoder, Decoded, Framing};
use http_body::{Frame, SizeHint};
use tokio::io::AsyncWrite;

use super::Wire;

/// Bytes asked of the socket per read of a body: large enough that a big upload costs few
/// system calls, and handed on as they are, without a copy (1 GiB PUT written as it
/// arrives: 4.0-4.8 GB/s against 2.8-3.6 GB/s with 256 KiB reads).
const READ_SIZE: usize = 1024 * 1024;
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What is left of a body.
#[derive(Debug)]
pub(super) enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    Done,
    /// Broken off (bad chunking, connection closed): the connection cannot be reused.
    Failed,
}

/// The connection while a request's body is being read.
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) wire: Option<Wire>,
    pub(super) remaining: Remaining,
    /// How much of `100 Continue` is written (all of it: written, to be flushed); `None`
    /// when not asked for, or sent.
    continue_at: Option<usize>,
}

pub(super) type Slot = Arc<Mutex<Inbound>>;

pub(super) fn slot(wire: Wire, framing: Framing, expect_continue: bool) -> Slot {
    let remaining = match framing {
        Framing::None => Remaining::Done,
        Framing::Length(n) => Remaining::Length(n),
        Framing::Chunked => Remaining::Chunked(ChunkedDecoder::default()),
    };
    Arc::new(Mutex::new(Inbound {
        wire: Some(wire),
        remaining,
        continue_at: expect_continue.then_some(0),
    }))
}

pub(super) fn lock(slot: &Slot) -> MutexGuard<'_, Inbound> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inbound {
    /// Decodes what is already buffered, without reading: the body's rest when the client
    /// sent it along with the head and the handler did not need it. Whether it ended.
    pub(super) fn finish_buffered(&mut self) -> bool {
        loop {
            match self.next_buffered() {
                Some(Ok(_)) => {}
                Some(Err(_)) => return false,
                None => return matches!(self.remaining, Remaining::Done),
            }
        }
    }

    /// The next piece of the body from the buffer: `None` at its end or when the buffer
    /// holds no more of it.
    fn next_buffered(&mut self) -> Option<io::Result<Bytes>> {
        let wire = self.wire.as_mut()?;
        match &mut self.remaining {
            Remaining::Done | Remaining::Failed => None,
            Remaining::Length(left) => {
                if wire.buf.is_empty() {
                    return None;
                }
                let n = usize::try_from(*left).map_or(wire.buf.len(), |l| l.min(wire.buf.len()));
                *left -= n as u64;
                if *left == 0 {
                    self.remaining = Remaining::Done;
                }
                Some(Ok(wire.buf.split_to(n).freeze()))
            }
            Remaining::Chunked(decoder) => match decoder.decode(&mut wire.buf) {
                Ok(Decoded::Data(d)) => Some(Ok(d)),
                Ok(Decoded::More) => None,
                Ok(Decoded::End) => {
                    self.remaining = Remaining::Done;
                    None
                }
                Err(e) => {
                    self.remaining = Remaining::Failed;
                    Some(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
                }
            },
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let Some(wire) = self.wire.as_mut() else {
            return Poll::Ready(Some(Err(io::Error::other(
                "the body was read after its request was answered",
            ))));
        };
        while let Some(at) = self.continue_at {
            if at == CONTINUE.len() {
                // Flushed too: over TLS a write may sit in the record buffer.
                ready!(Pin::new(&mut wire.io).poll_flush(cx))?;
                self.continue_at = None;
                break;
            }
            let n = ready!(Pin::new(&mut wire.io).poll_write(cx, &CONTINUE[at..]))?;
            if n == 0 {
                return Poll::Ready(Some(Err(io::ErrorKind::WriteZero.into())));
            }
            self.continue_at = Some(at + n);
        }
        loop {
            if let Some(piece) = self.next_buffered() {
                return Poll::Ready(Some(piece));
            }
            if matches!(self.remaining, Remaining::Done | Remaining::Failed) {
                return Poll::Ready(None);
            }
            let Some(wire) = self.wire.as_mut() else {
                return Poll::Ready(None);
            };
            // Room for what is left of the body, up to READ_SIZE: a small body does not
            // leave its connection holding a large buffer.
            let want = match &self.remaining {
                Remaining::Length(left) => {
                    usize::try_from(*left).map_or(READ_SIZE, |l| l.min(READ_SIZE))
                }
                _ => READ_SIZE,
            };
            if wire.buf.capacity() - wire.buf.len() < want.min(READ_SIZE / 16) {
                wire.buf.reserve(want);
            }
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut wire.io), cx, &mut wire.buf);
            // While the client keeps the body back, the idle timeout runs.
            wire.io.body_waits(read.is_pending());
            let read = ready!(read);
            match read {
                Ok(0) => {
                    self.remaining = Remaining::Failed;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection before the body ended",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.remaining = Remaining::Failed;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

/// The request body a handler reads.
#[derive(Debug)]
pub(crate) struct Body {
    slot: Slot,
    /// Bytes left when the length is known: the size hint.
    length: Option<u64>,
    ended: bool,
}

impl Body {
    pub(super) fn new(slot: Slot, framing: Framing) -> Self {
        let length = match framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        };
        Body {
            slot,
            length,
            ended: false,
        }
    }
}

impl Inbound {
    /// What is left to send of a `100 Continue` begun but cut off by the answer: it goes
    /// out first, so the answer is not written into the middle of it.
    pub(super) fn unfinished_continue(&self) -> &'static [u8] {
        match self.continue_at {
            Some(at) if at > 0 => &CONTINUE[at..],
            _ => b"",
        }
    }
}

impl Body {
    /// Whether `100 Continue` is still to be sent: nothing has asked for the body yet.
    pub(crate) fn awaits_continue(&self) -> bool {
        lock(&self.slot).continue_at == Some(0)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let next = ready!(lock(&this.slot).poll_frame(cx));
        match &next {
            Some(Ok(data)) => {
                if let Some(l) = &mut this.length {
                    *l = l.saturating_sub(data.len() as u64);
                }
            }
            None | Some(Err(_)) => this.ended = true,
        }
        Poll::Ready(next.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.length == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
