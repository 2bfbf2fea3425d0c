//! Writing an answer in HTTP/1.1: the head in one buffer, then the body, delimited by
//! Content-Length when its length is known and by the chunked coding when not.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{Response, StatusCode, Version};
use http_body::Body as _;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::Stream;
use crate::body::{DavBody, FileBody};
use crate::conn::Conn;

/// Bodies up to this size are copied behind the head and sent with it in one write.
const COPY_BELOW: usize = 16 * 1024;

/// What the request asked of the answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    pub(super) version: Version,
    pub(super) head_request: bool,
    /// Close the connection after this answer.
    pub(super) close: bool,
}

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimit {
    Nothing,
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0 clients, length unknown).
    Close,
}

/// Writes `resp` to `io`, using `out` for the head. `Ok(true)` when the connection can
/// carry another request.
pub(super) async fn answer(
    io: &mut Conn<Stream>,
    out: &mut Vec<u8>,
    resp: Response<DavBody>,
    asked: Asked,
) -> io::Result<bool> {
    let (parts, body) = resp.into_parts();
    let status = parts.status;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let delimit = if bodiless || asked.head_request {
        Delimit::Nothing
    } else if let Some(n) = declared.or_else(|| body.size_hint().exact()) {
        Delimit::Length(n)
    } else if asked.version == Version::HTTP_11 {
        Delimit::Chunked
    } else {
        Delimit::Close
    };
    let close = asked.close || delimit == Delimit::Close;

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if bodiless && (name == CONTENT_LENGTH || name == TRANSFER_ENCODING) {
            continue;
        }
        if name == CONNECTION {
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !parts.headers.contains_key(DATE) {
        with_date(|date| field(out, b"date", date));
    }
    match delimit {
        Delimit::Length(n) if declared.is_none() => {
            field(out, b"content-length", n.to_string().as_bytes());
        }
        Delimit::Nothing if asked.head_request && declared.is_none() && !bodiless => {
            if let Some(n) = body.size_hint().exact().filter(|&n| n > 0) {
                field(out, b"content-length", n.to_string().as_bytes());
            }
        }
        Delimit::Chunked => field(out, b"transfer-encoding", b"chunked"),
        _ => {}
    }
    if close {
        field(out, b"connection", b"close");
    } else if asked.version == Version::HTTP_10 {
        field(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");

    let body = match body {
        DavBody::File(file) if matches!(delimit, Delimit::Length(_)) => {
            match send_file(io, out, file).await? {
                Ok(sent) => {
                    io.flush().await?;
                    return Ok(!close && delimit == Delimit::Length(sent));
                }
                Err(file) => DavBody::File(file),
            }
        }
        other => other,
    };
    let complete = match (delimit, body) {
        (Delimit::Nothing, _) | (_, DavBody::Empty) | (_, DavBody::Full(None)) => {
            io.write_all(out).await?;
            matches!(delimit, Delimit::Nothing | Delimit::Length(0))
        }
        (_, DavBody::Full(Some(bytes))) => {
            // A full body always has a length (its own, or the declared one): never chunked.
            let bytes = match delimit {
                Delimit::Length(n) => {
                    bytes.slice(..usize::try_from(n).map_or(bytes.len(), |n| n.min(bytes.len())))
                }
                _ => bytes,
            };
            if bytes.len() < COPY_BELOW {
                out.extend_from_slice(&bytes);
                io.write_all(out).await?;
            } else {
                write_all(io, &mut [IoSlice::new(out), IoSlice::new(&bytes)]).await?;
            }
            match delimit {
                Delimit::Length(n) => n == bytes.len() as u64,
                _ => true,
            }
        }
        (_, body) => {
            let mut stream = body.into_stream();
            let mut head = Some(std::mem::take(out));
            let mut sent = 0u64;
            let mut ok = true;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "response body failed; closing the connection");
                        ok = false;
                        break;
                    }
                };
                if chunk.is_empty() {
                    continue;
                }
                let chunk = match delimit {
                    Delimit::Length(n) if sent + chunk.len() as u64 > n => {
                        tracing::warn!("response body longer than its Content-Length; cut");
                        ok = false;
                        chunk.slice(..usize::try_from(n - sent).unwrap_or(0))
                    }
                    _ => chunk,
                };
                sent += chunk.len() as u64;
                send(io, head.as_deref(), &chunk, delimit == Delimit::Chunked).await?;
                if let Some(h) = head.take() {
                    *out = h;
                }
                if !ok {
                    break;
                }
            }
            if let Some(h) = head.take() {
                io.write_all(&h).await?;
                *out = h;
            }
            if ok && delimit == Delimit::Chunked {
                io.write_all(b"0\r\n\r\n").await?;
            }
            ok && match delimit {
                Delimit::Length(n) => n == sent,
                _ => true,
            }
        }
    };
    io.flush().await?;
    Ok(complete && !close)
}

/// Bytes checked to be in the page cache at a time.
const SENDFILE_CHUNK: usize = 1024 * 1024;
/// Most bytes per `sendfile` call. Larger calls hand the loopback bursts that cost the
/// server's core twice the CPU per byte: a 1 GiB GET took 294-356 ms of CPU at 3.0-3.7
/// GB/s with 1 MiB calls, 171-177 ms at 5.4-6.2 GB/s with 64 KiB calls.
const SENDFILE_CALL: usize = 64 * 1024;
/// Most bytes of a file queued in the socket but not yet sent. Without a bound the kernel
/// queues up to the whole send buffer (4 MiB), and a 1 GiB GET over loopback ran at 3 GB/s
/// instead of 6: the long queue is cleaned and scheduled at every acknowledgement, on the
/// server's core. The kernel wakes the sender once half of this has gone out.
const UNSENT_MAX: u32 = 64 * 1024;

/// Sends the head in `out`, then the file's range by `sendfile`: the kernel moves the
/// pages from its cache to the socket with no copy through Davit. Pages not cached are
/// read in by a blocking thread first, so the runtime never waits on the disk. The body
/// back, nothing sent, when the connection runs TLS or the content is not a file; the
/// bytes sent otherwise.
async fn send_file(
    io: &mut Conn<Stream>,
    out: &[u8],
    file: FileBody,
) -> io::Result<Result<u64, FileBody>> {
    let Some(tcp) = io.plain_tcp() else {
        return Ok(Err(file));
    };
    if file.file().is_none() {
        return Ok(Err(file));
    }
    // Only the pace of this response suffers if it cannot be set.
    let _ = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(UNSENT_MAX);
    io.write_all(out).await?;
    let range = file.range();
    let mut offset = range.start;
    // Bytes before this offset were found in the page cache, or read into it.
    let mut cached_to = range.start;
    while offset < range.end {
        let src = file
            .file()
            .ok_or_else(|| io::Error::other("the file went away"))?;
        if offset == cached_to {
            let window = usize::try_from(range.end - offset)
                .map_or(SENDFILE_CHUNK, |n| n.min(SENDFILE_CHUNK));
            if !cached(src, offset + window as u64 - 1) {
                let src = src.try_clone()?;
                tokio::task::spawn_blocking(move || read_in(&src, offset, window))
                    .await
                    .map_err(io::Error::other)??;
            }
            cached_to = offset + window as u64;
        }
        let want =
            usize::try_from(cached_to - offset).map_or(SENDFILE_CALL, |n| n.min(SENDFILE_CALL));
        let sent = loop {
            // Through the connection, not the socket alone: a client that stops reading
            // is let go once idle, instead of holding its connection forever.
            std::future::poll_fn(|cx| io.poll_plain_writable(cx)).await?;
            let tcp = io
                .plain_tcp()
                .ok_or_else(|| io::Error::other("the socket changed"))?;
            match tcp.try_io(tokio::io::Interest::WRITABLE, || {
                rustix::fs::sendfile(tcp, src, Some(&mut offset), want).map_err(io::Error::from)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => break other?,
            }
        };
        if sent == 0 {
            // The file is shorter than it was at open: the client gets less than announced
            // and the connection closes.
            tracing::warn!("file shrank while it was being sent");
            break;
        }
        io.sent_directly()?;
    }
    Ok(Ok(offset - range.start))
}

/// Whether the page holding byte `at` is in the page cache (a read that may not wait).
fn cached(file: &std::fs::File, at: u64) -> bool {
    let mut byte = [0u8; 1];
    rustix::io::preadv2(
        file,
        &mut [io::IoSliceMut::new(&mut byte)],
        at,
        rustix::io::ReadWriteFlags::NOWAIT,
    )
    .is_ok()
}

/// Reads `len` bytes at `offset` into the page cache (and drops them).
fn read_in(file: &std::fs::File, offset: u64, len: usize) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = file.read_at(&mut buf[..len - done], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(())
}

/// One body chunk, behind the head if that is still unsent.
async fn send<W: AsyncWrite + Unpin>(
    io: &mut W,
    head: Option<&[u8]>,
    chunk: &Bytes,
    chunked: bool,
) -> io::Result<()> {
    let size = if chunked {
        format!("{:x}\r\n", chunk.len())
    } else {
        String::new()
    };
    let tail: &[u8] = if chunked { b"\r\n" } else { b"" };
    write_all(
        io,
        &mut [
            IoSlice::new(head.unwrap_or_default()),
            IoSlice::new(size.as_bytes()),
            IoSlice::new(chunk),
            IoSlice::new(tail),
        ],
    )
    .await
}

async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let n = io.write_vectored(bufs).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The Date value, formatted once per second per thread.
fn with_date(f: impl FnOnce(&[u8])) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            text.clear();
            davit_proto::write_http_date(now, text);
        }
        f(text.as_bytes());
    });
}
