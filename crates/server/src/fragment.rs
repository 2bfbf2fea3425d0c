//! Refuses HTTP/1 request-targets that carry a `#fragment`.
//!
//! RFC 9112 §3.2 has no fragment in a request-target, and a server that ignores one acts on
//! a different resource than the client named: `DELETE /dir/#x` would delete `/dir/`
//! (litmus `delete_fragment` flags exactly that). hyper's URI parser drops the fragment
//! silently, so the server never sees it. This stream wrapper does: it follows HTTP/1
//! message framing on the bytes read from the socket and, in a request line's target only,
//! turns `#` into a byte that no URI may hold, so hyper refuses the request with 400.
//!
//! [`crate::conn`] runs every byte read through a [`Scanner`]. It tracks framing the way hyper does (Content-Length, chunked Transfer-Encoding) and
//! steps aside for good (passing bytes unchanged) at anything it does not fully understand:
//! HTTP/2, upgrades, unusual framing. Bytes are only ever changed inside a request-target.

/// What a `#` in a request-target becomes: DEL, which httparse refuses in a URI.
const REFUSED: u8 = 0x7f;
/// Longest header line examined; a longer Content-Length or Transfer-Encoding line makes
/// the guard step aside.
const MAX_LINE: usize = 256;

/// Where the scanner is in the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Before a request line (empty lines may precede it).
    Start,
    /// In the method token.
    Method,
    /// In the request-target.
    Target,
    /// After the target, up to the end of the request line.
    LineRest,
    /// At the start of a header line, or of the empty line ending the head.
    HeaderStart,
    /// Inside a header line that may be about framing (its bytes are kept).
    Header,
    /// Inside a header line that cannot be about framing (skipped to its end).
    OtherHeader,
    /// After the CR of the empty line ending the head.
    HeadEnd,
    /// In a body of known length.
    Body(u64),
    /// In a chunk-size line; the size so far, and whether an extension started.
    ChunkSize(u64, bool),
    /// After the CR ending a chunk-size line; the size.
    ChunkSizeLf(u64),
    /// In chunk data; bytes left, then CRLF.
    ChunkData(u64),
    /// Expecting the CR after chunk data.
    ChunkCr,
    /// Expecting the LF after chunk data.
    ChunkLf,
    /// In the trailer section after the last chunk (header lines up to an empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// After a CR inside a trailer line.
    TrailerLf,
    /// After the CR of the empty line ending the trailers.
    TrailerEnd,
    /// Not tracking any more: everything passes unchanged.
    Transparent,
}

/// The framing scanner, separate from I/O so it can be tested on any chunking.
#[derive(Debug)]
pub(crate) struct Scanner {
    state: State,
    method: Vec<u8>,
    line: Vec<u8>,
    /// Body framing declared by the head being read.
    length: Option<u64>,
    chunked: bool,
    /// The head being read asks to leave HTTP/1 (Upgrade, CONNECT).
    leaves_http1: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Start,
            method: Vec::new(),
            line: Vec::new(),
            length: None,
            chunked: false,
            leaves_http1: false,
        }
    }
}

impl Scanner {
    /// Processes bytes just read, in place.
    pub(crate) fn scan(&mut self, buf: &mut [u8]) {
        let mut i = 0;
        while i < buf.len() {
            // Skip body bytes in bulk: they are never looked at.
            match self.state {
                State::Transparent => return,
                // Runs of bytes that only end at a line feed.
                State::LineRest | State::OtherHeader => match memchr::memchr(b'\n', &buf[i..]) {
                    Some(n) => i += n,
                    None => return,
                },
                // A header line that may be about framing: its first MAX_LINE bytes are kept;
                // beyond them it is no framing header Davit follows (or none at all).
                State::Header => {
                    let rest = &buf[i..];
                    let end = memchr::memchr(b'\n', rest);
                    let run = end.unwrap_or(rest.len());
                    let keep = run.min(MAX_LINE.saturating_sub(self.line.len()));
                    self.line.extend_from_slice(&rest[..keep]);
                    i += keep;
                    if run > keep {
                        if self.line_is_framing() {
                            return self.give_up();
                        }
                        i += run - keep;
                    }
                    if end.is_none() {
                        return;
                    }
                }
                State::Target => {
                    match buf[i..]
                        .iter()
                        .position(|&b| matches!(b, b' ' | b'#' | b'\r' | b'\n'))
                    {
                        Some(n) => i += n,
                        None => return,
                    }
                }
                State::Body(n) | State::ChunkData(n) => {
                    let take = n.min((buf.len() - i) as u64);
                    i += take as usize;
                    let left = n - take;
                    self.state = match (&self.state, left) {
                        (State::Body(_), 0) => State::Start,
                        (State::Body(_), _) => State::Body(left),
                        (_, 0) => State::ChunkCr,
                        (_, _) => State::ChunkData(left),
                    };
                    continue;
                }
                _ => {}
            }
            self.byte(&mut buf[i]);
            i += 1;
        }
    }

    /// Whether a request head is being read (`Some(false)` between requests and while a
    /// body is read; `None` once the scanner stepped aside).
    pub(crate) fn in_head(&self) -> Option<bool> {
        match self.state {
            State::Transparent => None,
            State::Method
            | State::Target
            | State::LineRest
            | State::HeaderStart
            | State::Header
            | State::OtherHeader
            | State::HeadEnd => Some(true),
            _ => Some(false),
        }
    }

    fn give_up(&mut self) {
        self.state = State::Transparent;
        self.line = Vec::new();
        self.method = Vec::new();
    }

    fn byte(&mut self, b: &mut u8) {
        let c = *b;
        match self.state {
            State::Start => match c {
                b'\r' | b'\n' => {}
                _ => {
                    self.method.clear();
                    self.method.push(c);
                    self.length = None;
                    self.chunked = false;
                    self.leaves_http1 = false;
                    self.state = State::Method;
                }
            },
            State::Method => match c {
                b' ' => {
                    // HTTP/2 prior knowledge starts with `PRI * HTTP/2.0`.
                    if self.method == b"PRI" {
                        return self.give_up();
                    }
                    self.leaves_http1 = self.method == b"CONNECT";
                    self.state = State::Target;
                }
                b'\r' | b'\n' => self.give_up(),
                _ if self.method.len() < 32 => self.method.push(c),
                _ => self.give_up(),
            },
            State::Target => match c {
                b' ' => self.state = State::LineRest,
                b'\r' | b'\n' => self.give_up(),
                b'#' => *b = REFUSED,
                _ => {}
            },
            State::LineRest => {
                if c == b'\n' {
                    self.state = State::HeaderStart;
                }
            }
            State::HeaderStart => match c {
                b'\r' => self.state = State::HeadEnd,
                b'\n' => self.end_of_head(),
                // Obsolete line folding: hyper refuses it; nothing to track.
                b' ' | b'\t' => self.give_up(),
                // Only Content-Length, Transfer-Encoding and Upgrade matter: other lines are
                // skipped without being copied.
                b'c' | b'C' | b't' | b'T' | b'u' | b'U' => {
                    self.line.clear();
                    self.line.push(c);
                    self.state = State::Header;
                }
                _ => self.state = State::OtherHeader,
            },
            State::OtherHeader => {
                if c == b'\n' {
                    self.state = State::HeaderStart;
                }
            }
            // `scan` keeps or skips the rest of the line in bulk; only its end comes here.
            State::Header => {
                if c == b'\n' {
                    self.header_line();
                    if self.state != State::Transparent {
                        self.state = State::HeaderStart;
                    }
                }
            }
            State::HeadEnd => {
                if c == b'\n' {
                    self.end_of_head();
                } else {
                    self.give_up();
                }
            }
            State::ChunkSize(size, ext) => match c {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if !ext => {
                    let digit = u64::from((c as char).to_digit(16).unwrap_or(0));
                    match size.checked_mul(16).and_then(|s| s.checked_add(digit)) {
                        Some(s) => self.state = State::ChunkSize(s, false),
                        None => self.give_up(),
                    }
                }
                b';' => self.state = State::ChunkSize(size, true),
                b'\r' => self.state = State::ChunkSizeLf(size),
                // hyper ends these lines at CRLF only; a bare LF means we no longer agree.
                b'\n' => self.give_up(),
                _ if ext => {}
                b' ' | b'\t' => {}
                _ => self.give_up(),
            },
            State::ChunkSizeLf(size) => {
                if c == b'\n' {
                    self.state = if size == 0 {
                        State::TrailerStart
                    } else {
                        State::ChunkData(size)
                    };
                } else {
                    self.give_up();
                }
            }
            State::ChunkCr => match c {
                b'\r' => self.state = State::ChunkLf,
                _ => self.give_up(),
            },
            State::ChunkLf => {
                if c == b'\n' {
                    self.state = State::ChunkSize(0, false);
                } else {
                    self.give_up();
                }
            }
            State::TrailerStart => match c {
                b'\r' => self.state = State::TrailerEnd,
                b'\n' => self.give_up(),
                _ => self.state = State::Trailer,
            },
            State::Trailer => match c {
                b'\r' => self.state = State::TrailerLf,
                b'\n' => self.give_up(),
                _ => {}
            },
            State::TrailerLf => {
                if c == b'\n' {
                    self.state = State::TrailerStart;
                } else {
                    self.give_up();
                }
            }
            State::TrailerEnd => {
                if c == b'\n' {
                    self.state = State::Start;
                } else {
                    self.give_up();
                }
            }
            State::Body(_) | State::ChunkData(_) | State::Transparent => {
                unreachable!("handled in scan")
            }
        }
    }

    fn line_is_framing(&self) -> bool {
        let name = self.line.split(|&b| b == b':').next().unwrap_or(&[]);
        let name = name.trim_ascii();
        name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
    }

    /// Notes what a complete header line says about framing.
    fn header_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return self.give_up();
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            // As hyper: digits only, and repeated values must agree.
            for part in value.split(|&b| b == b',') {
                let part = part.trim_ascii();
                let parsed = std::str::from_utf8(part)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok());
                match (parsed, self.length) {
                    (Some(n), None) => self.length = Some(n),
                    (Some(n), Some(m)) if n == m => {}
                    _ => return self.give_up(),
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or(&[])
                .trim_ascii();
            if last.eq_ignore_ascii_case(b"chunked") {
                self.chunked = true;
            } else {
                return self.give_up();
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.leaves_http1 = true;
        }
        self.line = line;
        self.line.clear();
    }

    fn end_of_head(&mut self) {
        if self.leaves_http1 {
            return self.give_up();
        }
        self.state = if self.chunked {
            State::ChunkSize(0, false)
        } else {
            match self.length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Start,
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Scans `input` cut at `cuts` and returns the output.
    fn scan(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = input.to_vec();
        let mut s = Scanner::default();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        for c in cuts.into_iter().chain([input.len()]) {
            s.scan(&mut out[start..c]);
            start = c;
        }
        out
    }

    fn refused(s: &str) -> Vec<u8> {
        s.bytes()
            .map(|b| if b == b'#' { REFUSED } else { b })
            .collect()
    }

    #[test]
    fn fragment_in_target_is_refused_and_nothing_else_changes() {
        let input = b"DELETE /frag/#ment HTTP/1.1\r\nHost: h#x\r\n\r\n";
        let want = [
            refused("DELETE /frag/#ment"),
            b" HTTP/1.1\r\nHost: h#x\r\n\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(scan(input, &[]), want);
        for cut in 0..input.len() {
            assert_eq!(scan(input, &[cut]), want, "cut at {cut}");
        }
    }

    #[test]
    fn bodies_are_never_touched() {
        let input = b"PUT /a HTTP/1.1\r\nContent-Length: 20\r\n\r\nGET /#x HTTP/1.1\r\n\r\nGET /#y HTTP/1.1\r\n\r\n";
        let mut want = input.to_vec();
        let second = input.len() - b"GET /#y HTTP/1.1\r\n\r\n".len() + 5;
        want[second] = REFUSED;
        for cut in 0..input.len() {
            assert_eq!(scan(input, &[cut, cut + 7]), want, "cut at {cut}");
        }
    }

    #[test]
    fn chunked_bodies_are_followed() {
        let input = b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=#\r\n#####\r\n0\r\nX-T: #\r\n\r\nGET /#z HTTP/1.1\r\n\r\n";
        let mut want = input.to_vec();
        let last = input.len() - b"#z HTTP/1.1\r\n\r\n".len();
        want[last] = REFUSED;
        for cut in 0..input.len() {
            assert_eq!(scan(input, &[cut]), want, "cut at {cut}");
        }
    }

    #[test]
    fn steps_aside_for_what_it_does_not_track() {
        for input in [
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET /#x HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET /#x HTTP/1.1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nxGET /#x HTTP/1.1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET /#x HTTP/1.1\r\n\r\n",
            // Bare LFs in chunk framing, where hyper would read on differently.
            b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: a\n\nGET /#x HTTP/1.1\r\n\r\n",
            b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\nGET /#x HTTP/1.1\r\n\r\n",
            b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\nGET /#x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                scan(input, &[]),
                input,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_framing_line_too_long_to_follow_makes_it_step_aside() {
        let mut input = b"PUT / HTTP/1.1\r\nContent-Length:".to_vec();
        input.extend(std::iter::repeat_n(b' ', MAX_LINE));
        input.extend_from_slice(b"0\r\n\r\nGET /#x HTTP/1.1\r\n\r\n");
        for cuts in [&[][..], &[20, 200, 300]] {
            assert_eq!(scan(&input, cuts), input);
        }
        // Other long lines are skipped, and a later fragment is still caught.
        let mut input = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 2 * MAX_LINE));
        input.extend_from_slice(b"\r\n\r\nGET /#x HTTP/1.1\r\n\r\n");
        let out = scan(&input, &[100]);
        assert!(out.ends_with(b"GET /\x7fx HTTP/1.1\r\n\r\n"));
    }

    proptest! {
        /// Whatever the requests and however the stream is cut, only the `#`s of request
        /// targets change.
        #[test]
        fn only_request_targets_change(
            requests in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["GET", "PUT", "DELETE", "PROPFIND", "MOVE", "LOCK"]),
                    "/[a-z#%]{0,8}",
                    proptest::collection::vec(any::<u8>(), 0..40),
                    any::<bool>(),
                ),
                1..5,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut input = Vec::new();
            let mut want = Vec::new();
            for (method, target, body, chunked) in &requests {
                let line = format!("{method} {target} HTTP/1.1\r\n");
                input.extend_from_slice(line.as_bytes());
                want.extend(format!("{method} ").bytes());
                want.extend(refused(target));
                want.extend_from_slice(b" HTTP/1.1\r\n");
                let mut rest = Vec::new();
                if *chunked {
                    rest.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    for piece in body.chunks(7) {
                        rest.extend(format!("{:x}\r\n", piece.len()).bytes());
                        rest.extend_from_slice(piece);
                        rest.extend_from_slice(b"\r\n");
                    }
                    rest.extend_from_slice(b"0\r\n\r\n");
                } else {
                    rest.extend(format!("Content-Length: {}\r\n\r\n", body.len()).bytes());
                    rest.extend_from_slice(body);
                }
                input.extend_from_slice(&rest);
                want.extend_from_slice(&rest);
            }
            prop_assert_eq!(scan(&input, &cuts), want);
        }
    }
}
