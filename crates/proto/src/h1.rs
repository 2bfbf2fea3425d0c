//! HTTP/1.1 request framing (RFC 9112) without I/O: the request head, how long its body is,
//! and the chunked transfer coding.
//!
//! The server's connection loop feeds the bytes it reads in here. Everything is bounded,
//! and what two parsers could read differently is refused rather than guessed at, since a
//! proxy in front that frames a request otherwise than Davit is how requests get smuggled:
//! Content-Length together with Transfer-Encoding, Content-Lengths that disagree, codings
//! other than chunked, Transfer-Encoding in HTTP/1.0, chunk lines that end in a bare LF.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

/// Most header fields a request head may carry.
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (with extensions) and longest trailer section.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes (never 0: that is [`Framing::None`]).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    /// The request method.
    pub method: Method,
    /// The request-target.
    pub uri: Uri,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields, in the order sent.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the client lets the connection stay open after the answer.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
}

/// Why a request head was refused. The connection closes after the answer, since where the
/// next request would begin is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// Not a well-formed HTTP/1.x request head (answered with 400).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_HEADERS`] header fields (431).
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// A transfer coding other than chunked (501).
    #[error("transfer codings other than chunked are not implemented")]
    UnsupportedCoding,
}

/// Parses the request head at the start of `buf`. `Ok(None)` until the head is complete;
/// then the head's bytes are split off `buf`, leaving what follows it (body, next request).
///
/// # Errors
/// [`HeadError`] when the bytes cannot begin a request Davit would frame unambiguously.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    // Parsed once, where it lies. The fields are noted as places in the head, so that once
    // the head is split off they become slices of one shared buffer instead of copies.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Malformed(describe(e))),
    };
    let base = buf.as_ptr() as usize;
    let place = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        (start, start + part.len())
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method"))?;
    let target = req.path.unwrap_or_default();
    if target.contains('#') {
        // RFC 9112 §3.2: a fragment is never sent; ignoring one would act on another resource.
        return Err(HeadError::Malformed("the request-target has a fragment"));
    }
    let target = place(target.as_bytes());
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let fields: Vec<_> = req
        .headers
        .iter()
        .map(|h| (place(h.name.as_bytes()), place(h.value)))
        .collect();
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1))
        .map_err(|_| HeadError::Malformed("invalid request-target"))?;
    let mut headers = HeaderMap::with_capacity(fields.len());
    for ((name_at, name_end), (value_at, value_end)) in fields {
        let name = HeaderName::from_bytes(&head[name_at..name_end])
            .map_err(|_| HeadError::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_end))
            .map_err(|_| HeadError::Malformed("invalid header value"))?;
        headers.append(name, value);
    }
    let hosts = headers.get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
        return Err(HeadError::Malformed(
            "a request needs exactly one Host header",
        ));
    }
    let framing = framing(&headers, version)?;
    let (mut close, mut keep_alive) = (false, false);
    for token in list(&headers, &CONNECTION) {
        close |= token.eq_ignore_ascii_case(b"close");
        keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
    }
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive);
    let expect_continue = version == Version::HTTP_11
        && framing != Framing::None
        && headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    Ok(Some(Head {
        method,
        uri,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    }))
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line end",
        httparse::Error::Version => "invalid HTTP version",
        _ => "invalid request line",
    }
}

/// The elements of a comma-separated header list, over every field of that name.
fn list<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h [u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// The Content-Length of `headers`: one value, or a list of one value repeated (RFC 9110
/// §8.6), over every field of the name.
///
/// # Errors
/// [`HeadError::Malformed`] for a value that is not digits, or values that differ.
pub fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, HeadError> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let n = parse_length(element.trim_ascii())
                .ok_or(HeadError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// RFC 9112 §6.3, refusing instead of resolving every case two parsers could disagree on.
fn framing(headers: &HeaderMap, version: Version) -> Result<Framing, HeadError> {
    let length = declared_length(headers)?;
    if !headers.contains_key(TRANSFER_ENCODING) {
        return Ok(match length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        });
    }
    if version == Version::HTTP_10 {
        return Err(HeadError::Malformed(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    if length.is_some() {
        return Err(HeadError::Malformed(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    let mut chunked = false;
    for coding in list(headers, &TRANSFER_ENCODING) {
        if chunked {
            return Err(HeadError::Malformed(
                "chunked is not the last transfer coding",
            ));
        }
        if !coding.eq_ignore_ascii_case(b"chunked") {
            return Err(HeadError::UnsupportedCoding);
        }
        chunked = true;
    }
    if chunked {
        Ok(Framing::Chunked)
    } else {
        Err(HeadError::Malformed("empty Transfer-Encoding"))
    }
}

/// A byte of a token (RFC 9110 §5.6.2), as in a field name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A Content-Length: decimal digits only, no sign, no overflow.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        n.checked_mul(10)?.checked_add(d)
    })
}

/// A step of [`ChunkedDecoder::decode`].
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no more of the body; read more into it.
    More,
    /// The body is complete (trailers skipped); the buffer starts after it.
    End,
}

/// Why a chunked body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct ChunkedError(&'static str);

/// Decodes the chunked transfer coding (RFC 9112 §7.1) incrementally, from whatever pieces
/// the bytes arrive in. Extensions are skipped, trailer fields dropped; both are bounded.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, or what is left of it.
    size: u64,
    /// Bytes of the current chunk-size line, or of the trailer section.
    line: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// Further hex digits.
    Size,
    /// Whitespace after the size, before `;` or the CR.
    SizeWhitespace,
    /// Extensions, after a `;`, up to the CR.
    Extension,
    /// The LF after a chunk-size line.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// The start of a trailer line, or the CR of the empty line that ends the body.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

impl ChunkedDecoder {
    /// Decodes from the front of `buf`: framing bytes are consumed, body bytes split off and
    /// returned, and anything after the body is left in `buf`.
    ///
    /// # Errors
    /// [`ChunkedError`] for anything but the coding's grammar with CRLF line ends, or a
    /// size, extension or trailer section over its bound.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkedError> {
        loop {
            if self.state == State::Done {
                return Ok(Decoded::End);
            }
            if self.state == State::Data {
                if buf.is_empty() {
                    return Ok(Decoded::More);
                }
                let n = usize::try_from(self.size).map_or(buf.len(), |s| s.min(buf.len()));
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                return Ok(Decoded::Data(buf.split_to(n).freeze()));
            }
            let Some(&b) = buf.first() else {
                return Ok(Decoded::More);
            };
            buf.advance(1);
            self.step(b)?;
        }
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        let expect = |want: u8, next: State| {
            if b == want {
                Ok(next)
            } else {
                Err(ChunkedError("expected CRLF"))
            }
        };
        self.state = match self.state {
            State::SizeStart | State::Size | State::SizeWhitespace | State::Extension => {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err(ChunkedError("chunk size line too long"));
                }
                self.size_line(b)?
            }
            State::SizeLf => {
                expect(b'\n', State::Data)?;
                self.line = 0;
                if self.size == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                }
            }
            State::DataCr => expect(b'\r', State::DataLf)?,
            State::DataLf => expect(b'\n', State::SizeStart)?,
            State::TrailerStart if b == b'\r' => State::EndLf,
            State::TrailerStart | State::TrailerName | State::TrailerValue => {
                self.line += 1;
                if self.line > MAX_TRAILERS {
                    return Err(ChunkedError("trailer section too large"));
                }
                match (self.state, b) {
                    (State::TrailerStart | State::TrailerName, b) if is_tchar(b) => {
                        State::TrailerName
                    }
                    (State::TrailerName, b':') => State::TrailerValue,
                    (State::TrailerValue, b'\r') => State::TrailerLf,
                    (State::TrailerValue, b'\t' | b' '..=0x7e | 0x80..=0xff) => State::TrailerValue,
                    _ => return Err(ChunkedError("invalid trailer field")),
                }
            }
            State::TrailerLf => expect(b'\n', State::TrailerStart)?,
            State::EndLf => expect(b'\n', State::Done)?,
            State::Data | State::Done => unreachable!("handled in decode"),
        };
        Ok(())
    }

    /// The next state on the chunk-size line: `size [BWS] [; extensions] CR`.
    fn size_line(&mut self, b: u8) -> Result<State, ChunkedError> {
        Ok(match (self.state, b) {
            (State::SizeStart | State::Size, b) if b.is_ascii_hexdigit() => {
                if self.size >> 60 != 0 {
                    return Err(ChunkedError("chunk size too large"));
                }
                let digit = (b as char).to_digit(16).unwrap_or_default();
                self.size = self.size << 4 | u64::from(digit);
                State::Size
            }
            (State::SizeStart, _) => return Err(ChunkedError("missing chunk size")),
            (State::Size | State::SizeWhitespace, b' ' | b'\t') => State::SizeWhitespace,
            (State::Size | State::SizeWhitespace, b';') => State::Extension,
            (State::Size | State::SizeWhitespace | State::Extension, b'\r') => State::SizeLf,
            (State::Size | State::SizeWhitespace, _) => {
                return Err(ChunkedError("invalid chunk size"));
            }
            (_, b'\t' | b' '..=0x7e | 0x80..=0xff) => State::Extension,
            _ => return Err(ChunkedError("invalid byte in a chunk extension")),
        })
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(text: &str) -> Result<Option<Head>, HeadError> {
        parse_head(&mut BytesMut::from(text))
    }

    #[test]
    fn frames_bodies_only_where_the_head_is_unambiguous() {
        use Framing::*;
        use HeadError::*;
        let cases: &[(&str, Result<Framing, HeadError>)] = &[
            ("", Ok(None)),
            ("Content-Length: 5\r\n", Ok(Length(5))),
            ("Content-Length: 0\r\n", Ok(None)),
            ("Content-Length: 5\r\nContent-Length: 5\r\n", Ok(Length(5))),
            ("Content-Length: 5, 5\r\n", Ok(Length(5))),
            (
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                Err(Malformed("conflicting Content-Length values")),
            ),
            (
                "Content-Length: +5\r\n",
                Err(Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length: 0x5\r\n",
                Err(Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length: \r\n",
                Err(Malformed("invalid Content-Length")),
            ),
            (
                "Content-Length: 99999999999999999999\r\n",
                Err(Malformed("invalid Content-Length")),
            ),
            ("Transfer-Encoding: chunked\r\n", Ok(Chunked)),
            ("Transfer-Encoding: CHUNKED\r\n", Ok(Chunked)),
            (
                "Transfer-Encoding: gzip, chunked\r\n",
                Err(UnsupportedCoding),
            ),
            (
                "Transfer-Encoding: chunked, gzip\r\n",
                Err(Malformed("chunked is not the last transfer coding")),
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                Err(Malformed("chunked is not the last transfer coding")),
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                Err(Malformed("both Content-Length and Transfer-Encoding")),
            ),
            (
                "Transfer-Encoding: ,\r\n",
                Err(Malformed("empty Transfer-Encoding")),
            ),
            ("Transfer-Encoding: xchunked\r\n", Err(UnsupportedCoding)),
        ];
        for (fields, want) in cases {
            let text = format!("PUT /f HTTP/1.1\r\nHost: h\r\n{fields}\r\n");
            let got = head(&text).map(|h| h.expect("a complete head").framing);
            assert_eq!(&got, want, "{fields:?}");
        }
    }

    #[test]
    fn reads_what_http_1_0_and_1_1_leave_implicit() {
        // (head, keep-alive, expect 100-continue)
        let cases: &[(&str, bool, bool)] = &[
            ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true, false),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                false,
                false,
            ),
            (
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: te, Close\r\n\r\n",
                false,
                false,
            ),
            ("GET / HTTP/1.0\r\n\r\n", false, false),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                true,
                false,
            ),
            (
                "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n",
                true,
                true,
            ),
            (
                "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
                true,
                false,
            ),
            (
                "PUT / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n",
                false,
                false,
            ),
        ];
        for (text, keep_alive, expect) in cases {
            let h = head(text).expect("valid").expect("complete");
            assert_eq!(
                (h.keep_alive, h.expect_continue),
                (*keep_alive, *expect),
                "{text:?}"
            );
        }
    }

    #[test]
    fn refuses_heads_that_name_no_single_resource() {
        let cases: &[(&str, HeadError)] = &[
            (
                "DELETE /dir/#x HTTP/1.1\r\nHost: h\r\n\r\n",
                HeadError::Malformed("the request-target has a fragment"),
            ),
            (
                "GET / HTTP/1.1\r\n\r\n",
                HeadError::Malformed("a request needs exactly one Host header"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                HeadError::Malformed("a request needs exactly one Host header"),
            ),
            (
                "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
                HeadError::Malformed("invalid HTTP version"),
            ),
            (
                "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
                HeadError::Malformed("invalid request line"),
            ),
            (
                "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
                HeadError::Malformed("invalid header name"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(head(text).err(), Some(*want), "{text:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n");
        assert_eq!(head(&text).err(), Some(HeadError::TooManyHeaders));
    }

    #[test]
    fn splits_off_the_head_and_keeps_what_follows() {
        let mut buf =
            BytesMut::from("GET /a%20b?q HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\nNEXT");
        let h = parse_head(&mut buf).expect("valid").expect("complete");
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri.path(), "/a%20b");
        assert_eq!(h.uri.query(), Some("q"));
        let values: Vec<_> = h.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(&buf[..], b"NEXT");
        let mut partial = BytesMut::from("GET / HTTP/1.1\r\nHost: h\r\n");
        assert!(parse_head(&mut partial).expect("valid so far").is_none());
        assert_eq!(
            partial.len(),
            25,
            "nothing is consumed until the head is complete"
        );
    }

    /// Feeds `input` to a decoder in pieces cut at `cuts`; the body and what is left after it.
    fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Vec<u8>), ChunkedError> {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        let mut cuts = cuts
            .iter()
            .copied()
            .chain([input.len()])
            .filter(|&c| c <= input.len());
        loop {
            match dec.decode(&mut buf)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::End => return Ok((body, buf.to_vec())),
                Decoded::More => {
                    let Some(next) = cuts.find(|&c| c > fed) else {
                        return Err(ChunkedError("input ended"));
                    };
                    buf.extend_from_slice(&input[fed..next]);
                    fed = next;
                }
            }
        }
    }

    #[test]
    fn refuses_chunked_framing_other_parsers_could_read_differently() {
        let cases: &[(&[u8], &str)] = &[
            (b"5\nhello\r\n0\r\n\r\n", "invalid chunk size"),
            (b"5\r\nhello\n0\r\n\r\n", "expected CRLF"),
            (b"5\r\nhelloX\r\n0\r\n\r\n", "expected CRLF"),
            (b"\r\n", "missing chunk size"),
            (b"-5\r\n", "missing chunk size"),
            (b"5x\r\n", "invalid chunk size"),
            (b"10000000000000000\r\n", "chunk size too large"),
            (b"0\r\nX: y\n\r\n", "invalid trailer field"),
            (b"0\r\nGET / HTTP/1.1\r\n\r\n", "invalid trailer field"),
            (b"0\r\n: y\r\n\r\n", "invalid trailer field"),
            (b"5 garbage\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
            (b"1;a=\x01\r\n", "invalid byte in a chunk extension"),
        ];
        for (input, why) in cases {
            assert_eq!(
                decode_in_pieces(input, &[]),
                Err(ChunkedError(why)),
                "{input:?}"
            );
        }
        let long_ext = [b"1;".as_slice(), &[b'a'; MAX_CHUNK_LINE], b"\r\n"].concat();
        let zeros = [&[b'0'; MAX_CHUNK_LINE][..], b"5\r\nhello\r\n0\r\n\r\n"].concat();
        for long in [long_ext, zeros] {
            assert_eq!(
                decode_in_pieces(&long, &[]),
                Err(ChunkedError("chunk size line too long"))
            );
        }
    }

    #[test]
    fn decodes_extensions_and_trailers_and_stops_at_the_body_end() {
        let input = b"4;name=\"v\"\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nGET";
        let (body, rest) = decode_in_pieces(input, &[]).expect("valid");
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(rest, b"GET");
    }

    proptest! {
        #[test]
        fn decodes_any_chunking_read_in_any_pieces(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..8),
            upper in any::<bool>(),
            ext in prop::option::of("[a-z]{1,5}(=[a-z0-9]{0,5})?"),
            trailer in prop::option::of("[A-Za-z-]{1,8}: [ -~]{0,10}"),
            cuts in prop::collection::vec(0usize..400, 0..10),
        ) {
            let mut input = Vec::new();
            for c in &chunks {
                let size = if upper { format!("{:X}", c.len()) } else { format!("{:x}", c.len()) };
                input.extend_from_slice(size.as_bytes());
                if let Some(e) = &ext {
                    input.extend_from_slice(format!(";{e}").as_bytes());
                }
                input.extend_from_slice(b"\r\n");
                input.extend_from_slice(c);
                input.extend_from_slice(b"\r\n");
            }
            input.extend_from_slice(b"0\r\n");
            if let Some(t) = &trailer {
                input.extend_from_slice(format!("{t}\r\n").as_bytes());
            }
            input.extend_from_slice(b"\r\nNEXT");
            let mut cuts = cuts;
            cuts.sort_unstable();
            let (body, rest) = decode_in_pieces(&input, &cuts).expect("valid chunking");
            prop_assert_eq!(body, chunks.concat());
            // Only what followed the body is left, however the reads fell.
            prop_assert!(b"NEXT".starts_with(&rest), "left over: {:?}", rest);
        }

        #[test]
        fn any_bytes_give_a_head_an_error_or_a_wait(input in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = BytesMut::from(&input[..]);
            if let Ok(Some(_)) = parse_head(&mut buf) {
                prop_assert!(buf.len() < input.len());
            }
        }
    }
}
