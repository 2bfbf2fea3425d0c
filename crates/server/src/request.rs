//! What every method needs from a request: the decoded path, typed headers, bounded bodies.

use bytes::{Bytes, BytesMut};
use davit_proto::{BasePath, Depth, Destination, IfHeader, Overwrite, ResourcePath};
use davit_store::{ByteStream, Lock};
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use http::header::{HOST, HeaderName};
use http::{Method, StatusCode, request::Parts};
use http_body_util::{BodyDataStream, BodyExt};
use hyper::body::Incoming;

use crate::auth::{Access, Principal};
use crate::error::DavError;

/// A request with its target decoded.
#[derive(Debug)]
pub(crate) struct DavRequest {
    pub(crate) parts: Parts,
    /// The decoded Request-URI path.
    pub(crate) path: ResourcePath,
    /// The `If` header, parsed.
    pub(crate) if_header: Option<IfHeader>,
    /// Who sent the request and what they may do.
    pub(crate) principal: Principal,
    /// Whether any `If…` or `Range` header came: most requests carry none, and one pass
    /// over the names spares a hashed look-up for each of them.
    conditional: bool,
    /// The Destination's path as it exists (see `spelling`), once looked up.
    destination_found: Option<ResourcePath>,
    /// The path as the client spelled it, when `path` is how it exists instead.
    pub(crate) path_as_sent: Option<ResourcePath>,
}

impl DavRequest {
    /// A request for the tree served under `base`.
    pub(crate) fn new(parts: Parts, base: &BasePath) -> Result<Self, DavError> {
        let path = base
            .strip(ResourcePath::parse(parts.uri.path())?)
            .ok_or_else(|| outside(base))?;
        let conditional = parts
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("if") || name == http::header::RANGE);
        let mut req = DavRequest {
            path,
            parts,
            if_header: None,
            principal: Principal::unrestricted(),
            conditional,
            destination_found: None,
            path_as_sent: None,
        };
        if let Some(v) = req.condition(IF)? {
            req.if_header = Some(IfHeader::parse(&v)?.served_under(base));
        }
        Ok(req)
    }

    /// Whether the client submitted `token` (anywhere in its `If` header, RFC 4918 §10.4.1).
    pub(crate) fn submitted(&self, token: &str) -> bool {
        self.if_header
            .as_ref()
            .is_some_and(|h| h.tokens().any(|t| t == token))
    }

    /// Whether the request may use `lock`: its token was submitted, by the user who took
    /// the lock (RFC 4918 §6.4; locks taken without authentication are anyone's).
    pub(crate) fn holds(&self, lock: &Lock) -> bool {
        self.submitted(&lock.token) && self.may_use(lock)
    }

    /// Whether the sender is the lock's creator, or the lock has none.
    pub(crate) fn may_use(&self, lock: &Lock) -> bool {
        lock.creator
            .as_deref()
            .is_none_or(|creator| self.principal.user.as_deref() == Some(creator))
    }

    pub(crate) fn method(&self) -> &Method {
        &self.parts.method
    }

    pub(crate) fn is_head(&self) -> bool {
        self.parts.method == Method::HEAD
    }

    /// A header as text; several lines of a list header are joined with `, `.
    pub(crate) fn header(
        &self,
        name: impl http::header::AsHeaderName + Clone,
    ) -> Result<Option<Cow<'_, str>>, DavError> {
        let mut values = self.parts.headers.get_all(name.clone()).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        let bad = |_| DavError::bad_request("a header value is not visible ASCII or UTF-8");
        let first = std::str::from_utf8(first.as_bytes()).map_err(bad)?;
        // Nearly every header comes once: then the value is lent, not copied.
        let Some(second) = values.next() else {
            return Ok(Some(Cow::Borrowed(first)));
        };
        let mut s = first.to_owned();
        for v in std::iter::once(second).chain(values) {
            s.push_str(", ");
            s.push_str(std::str::from_utf8(v.as_bytes()).map_err(bad)?);
        }
        Ok(Some(Cow::Owned(s)))
    }

    /// Whether the request has a conditional header (`If…`, `Range`).
    pub(crate) fn is_conditional(&self) -> bool {
        self.conditional
    }

    /// [`DavRequest::header`] for a conditional header (`If…`, `Range`).
    pub(crate) fn condition(
        &self,
        name: impl http::header::AsHeaderName + Clone,
    ) -> Result<Option<Cow<'_, str>>, DavError> {
        if self.conditional {
            self.header(name)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn depth(&self, default: Depth) -> Result<Depth, DavError> {
        Ok(Depth::parse(self.header(DEPTH)?.as_deref(), default)?)
    }

    pub(crate) fn overwrite(&self) -> Result<Overwrite, DavError> {
        Ok(Overwrite::parse(self.header(OVERWRITE)?.as_deref())?)
    }

    /// The `Destination` of COPY and MOVE, which must name this server (RFC 4918 §10.3)
    /// and lie under `base`; its path is the served one.
    pub(crate) fn destination(&self, base: &BasePath) -> Result<Destination, DavError> {
        let value = self
            .header(DESTINATION)?
            .ok_or_else(|| DavError::bad_request("COPY and MOVE need a Destination header"))?;
        let mut dest = Destination::parse(&value)?;
        if let Some(authority) = &dest.authority
            && !self.is_own_authority(authority)?
        {
            // RFC 4918 §9.8.5 / §9.9.4: the destination is on another server.
            return Err(DavError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "Destination names another server ({authority}); copy through GET and PUT instead"
                ),
            ));
        }
        // Outside the base is not this server's namespace: as if on another server.
        dest.path = base.strip(dest.path).ok_or_else(|| {
            DavError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "Destination lies outside {}/, the only tree served here",
                    base.prefix()
                ),
            )
        })?;
        if let Some(found) = &self.destination_found {
            dest.path = found.clone();
        }
        Ok(dest)
    }

    /// Takes the paths the request names (its own, its `If` header's resources, its
    /// Destination) as they exist on `storage`, where the client spelled a name in the
    /// other Unicode normalization form (see `spelling`), looking only where the sender may
    /// read. A Destination that differs from the source in spelling only keeps the
    /// sender's: that MOVE renames a name into the other form.
    pub(crate) async fn match_spelling(
        &mut self,
        storage: &dyn davit_store::Storage,
        base: &BasePath,
    ) {
        let rules = self.principal.rules().cloned();
        let may_read =
            move |p: &ResourcePath| rules.as_ref().is_none_or(|r| r.access(p) >= Access::Read);
        if let Some(found) = crate::spelling::existing(storage, &self.path, &may_read).await {
            self.path_as_sent = Some(std::mem::replace(&mut self.path, found));
        }
        if let Some(mut header) = self.if_header.take() {
            // Tags that cannot hold here are not looked up, nor more than a few.
            let here = |l: &davit_proto::IfList| {
                !l.unserved
                    && l.authority
                        .as_ref()
                        .is_none_or(|a| self.is_own_authority(a).unwrap_or(false))
            };
            let own: Vec<bool> = header.lists.iter().map(here).collect();
            let tagged = header
                .lists
                .iter_mut()
                .zip(own)
                .filter(|(_, own)| *own)
                .filter_map(|(l, _)| l.resource.as_mut());
            for resource in tagged.take(MAX_SPELLED_TAGS) {
                if let Some(found) = crate::spelling::existing(storage, resource, &may_read).await {
                    *resource = found;
                }
            }
            self.if_header = Some(header);
        }
        // Beyond ASCII, a URI is percent-encoded: without a `%`, one spelling only.
        let spellable = |v: &str| v.contains('%') || !v.is_ascii();
        if matches!(self.method().as_str(), "COPY" | "MOVE")
            && self
                .header(DESTINATION)
                .is_ok_and(|v| v.as_deref().is_some_and(spellable))
            && let Ok(dest) = self.destination(base)
            && let Some(found) = crate::spelling::existing(storage, &dest.path, &may_read).await
            && found != self.path
        {
            self.destination_found = Some(found);
        }
    }

    /// Whether `authority` names this server, compared without regard to case: the request's
    /// own host, or the one a reverse proxy says the client used.
    pub(crate) fn is_own_authority(&self, authority: &str) -> Result<bool, DavError> {
        let authority = strip_default_port(authority);
        let names =
            |candidate: &str| strip_default_port(candidate.trim()).eq_ignore_ascii_case(authority);
        if self
            .parts
            .uri
            .authority()
            .is_some_and(|a| names(a.as_str()))
        {
            return Ok(true);
        }
        for name in [HOST, HeaderName::from_static("x-forwarded-host")] {
            if self.header(name)?.is_some_and(|h| h.split(',').any(names)) {
                return Ok(true);
            }
        }
        let forwarded = self.header(HeaderName::from_static("forwarded"))?;
        Ok(forwarded.is_some_and(|f| forwarded_hosts(&f).any(names)))
    }
}

/// The `host` parameters of a `Forwarded` header (RFC 7239 §4), one per proxy, with the
/// quotes of a quoted value taken off.
/// 404 for a URL outside the served tree.
fn outside(base: &BasePath) -> DavError {
    DavError::new(
        StatusCode::NOT_FOUND,
        format!("only {}/ is served here", base.prefix()),
    )
}

fn forwarded_hosts(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim().eq_ignore_ascii_case("host").then(|| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

fn strip_default_port(authority: &str) -> &str {
    authority
        .strip_suffix(":80")
        .or_else(|| authority.strip_suffix(":443"))
        .unwrap_or(authority)
}

/// `If` resource tags matched to their spelling on disk per request (see `spelling`).
const MAX_SPELLED_TAGS: usize = 8;

pub(crate) const DEPTH: HeaderName = HeaderName::from_static("depth");
pub(crate) const OVERWRITE: HeaderName = HeaderName::from_static("overwrite");
pub(crate) const DESTINATION: HeaderName = HeaderName::from_static("destination");
pub(crate) const IF: HeaderName = HeaderName::from_static("if");
pub(crate) const LOCK_TOKEN: HeaderName = HeaderName::from_static("lock-token");
pub(crate) const TIMEOUT: HeaderName = HeaderName::from_static("timeout");

/// A request's body, as the connection it came on delivers it.
#[derive(Debug)]
pub struct RequestBody(Source);

#[derive(Debug)]
enum Source {
    Empty,
    Http1(crate::h1::body::Body),
    Http2(Incoming, Option<crate::conn::BodyWait>),
}

impl RequestBody {
    pub(crate) fn empty() -> Self {
        RequestBody(Source::Empty)
    }

    pub(crate) fn http1(body: crate::h1::body::Body) -> Self {
        RequestBody(Source::Http1(body))
    }

    /// An HTTP/2 body whose waits count toward its connection's idle time.
    pub(crate) fn http2(body: Incoming, wait: crate::conn::BodyWait) -> Self {
        RequestBody(Source::Http2(body, Some(wait)))
    }

    /// Whether the client holds the body back until asked (`Expect: 100-continue`) and
    /// has not been asked yet.
    fn awaits_continue(&self) -> bool {
        match &self.0 {
            Source::Http1(b) => b.awaits_continue(),
            Source::Empty | Source::Http2(..) => false,
        }
    }
}

impl From<Incoming> for RequestBody {
    fn from(body: Incoming) -> Self {
        RequestBody(Source::Http2(body, None))
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        match &mut self.get_mut().0 {
            Source::Empty => std::task::Poll::Ready(None),
            Source::Http1(b) => std::pin::Pin::new(b).poll_frame(cx),
            Source::Http2(b, wait) => {
                let frame = std::pin::Pin::new(b).poll_frame(cx);
                // While the client keeps the body back, the idle timeout runs.
                if let Some(wait) = wait {
                    wait.set(frame.is_pending());
                }
                frame.map_err(std::io::Error::other)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Source::Empty => true,
            Source::Http1(b) => b.is_end_stream(),
            Source::Http2(b, _) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.0 {
            Source::Empty => http_body::SizeHint::with_exact(0),
            Source::Http1(b) => b.size_hint(),
            Source::Http2(b, _) => b.size_hint(),
        }
    }
}

/// Reads a whole body of at most `limit` bytes; a larger one gets 413 without being read.
pub(crate) async fn read_body(
    parts: &Parts,
    body: RequestBody,
    limit: usize,
) -> Result<Bytes, DavError> {
    let too_large = || {
        DavError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = davit_proto::h1::declared_length(&parts.headers)
        .map_err(|_| DavError::bad_request("invalid Content-Length"))?;
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            DavError::bad_request("the request body could not be read").with_source(e)
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The body as a stream of chunks, for PUT.
pub(crate) fn body_stream(body: RequestBody) -> ByteStream {
    Box::pin(BodyDataStream::new(body))
}

/// `stream` cut off with an error once it passes `max` bytes; the flag tells the handler
/// that this, not the client, ended the body, so it answers 413.
pub(crate) fn limit_stream(stream: ByteStream, max: Option<u64>) -> (ByteStream, Arc<AtomicBool>) {
    let over = Arc::new(AtomicBool::new(false));
    let Some(max) = max else {
        return (stream, over);
    };
    let flag = Arc::clone(&over);
    let mut seen = 0u64;
    let limited = stream.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > max {
            flag.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other(format!(
                "the upload is larger than {max} bytes"
            )));
        }
        Ok(chunk)
    });
    (Box::pin(limited), over)
}

/// 413 for an upload over `max` bytes.
pub(crate) fn upload_too_large(max: u64) -> DavError {
    DavError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("uploads are limited to {max} bytes"),
    )
}

/// The declared length of the body, when there is a valid one.
pub(crate) fn content_length(parts: &Parts) -> Option<u64> {
    davit_proto::h1::declared_length(&parts.headers).ok()?
}

/// The request body, for a handler to take if it reads it. What a handler leaves unread
/// when it fails early is read and dropped (up to a bound) so the client, still sending,
/// gets the error answer instead of a reset connection.
#[derive(Debug)]
pub(crate) struct Body(Option<RequestBody>);

/// Most body bytes read and dropped after an early error; beyond it the connection closes.
const DISCARD_LIMIT: usize = 16 * 1024 * 1024;

impl Body {
    pub(crate) fn new(body: RequestBody) -> Self {
        Body(Some(body))
    }

    /// The body; a handler takes it at most once.
    pub(crate) fn take(&mut self) -> RequestBody {
        self.0.take().expect("a handler takes the body once")
    }

    /// Reads and drops what is left, up to [`DISCARD_LIMIT`] bytes and 10 seconds.
    pub(crate) async fn discard(mut self) {
        let Some(mut body) = self.0.take() else {
            return;
        };
        if body.awaits_continue() {
            // Not asked for, so not sent: the connection closes after the answer instead.
            return;
        }
        if matches!(body.0, Source::Http2(..)) {
            // The stream alone ends (hyper resets it once the answer is out); the
            // connection's other streams never waited behind this body.
            return;
        }
        let drain = async {
            let mut seen = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > DISCARD_LIMIT {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> DavRequest {
        let mut builder = http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (parts, ()) = builder.body(()).expect("a valid test request").into_parts();
        DavRequest::new(parts, &BasePath::default()).expect("a valid test request")
    }

    /// A request target, its headers, a Destination authority, and whether it is ours.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, bool);

    #[test]
    fn own_authority() {
        let cases: [Case<'_>; 13] = [
            (
                "/f",
                &[("host", "dav.example:8080")],
                "dav.example:8080",
                true,
            ),
            ("/f", &[("host", "dav.example:8080")], "dav.example", false),
            ("/f", &[("host", "Dav.Example:80")], "dav.example", true),
            ("/f", &[("host", "dav.example")], "DAV.example:80", true),
            ("/f", &[("host", "dav.example")], "dav.example:443", true),
            ("/f", &[("host", "dav.example")], "dav.example.evil", false),
            (
                "/f",
                &[
                    ("host", "internal:9000"),
                    ("x-forwarded-host", "a.example, b.example"),
                ],
                "b.example",
                true,
            ),
            (
                "/f",
                &[("host", "internal:9000"), ("x-forwarded-host", "a.example")],
                "c.example",
                false,
            ),
            ("http://abs.example/f", &[], "abs.example", true),
            ("/f", &[], "dav.example", false),
            (
                "/f",
                &[
                    ("host", "internal:9000"),
                    ("forwarded", "for=192.0.2.1;proto=https;host=dav.example"),
                ],
                "dav.example:443",
                true,
            ),
            (
                "/f",
                &[
                    ("host", "internal:9000"),
                    (
                        "forwarded",
                        r#"for="[2001:db8::1]";Host="Dav.Example:8443", for=10.0.0.1"#,
                    ),
                ],
                "dav.example:8443",
                true,
            ),
            (
                "/f",
                &[
                    ("host", "internal:9000"),
                    ("forwarded", "for=192.0.2.1;by=dav.example"),
                ],
                "dav.example",
                false,
            ),
        ];
        for (uri, headers, authority, own) in cases {
            let req = request(uri, headers);
            assert_eq!(
                req.is_own_authority(authority).expect("readable headers"),
                own,
                "{authority} against {uri} {headers:?}"
            );
        }
    }

    #[test]
    fn repeated_headers_are_joined_and_single_ones_lent() {
        let req = request("/f", &[("overwrite", "T"), ("x-a", "1"), ("x-a", "2")]);
        assert!(matches!(
            req.header(OVERWRITE),
            Ok(Some(Cow::Borrowed("T")))
        ));
        assert_eq!(
            req.header("x-a").expect("readable").as_deref(),
            Some("1, 2")
        );
        assert!(matches!(req.header("x-none"), Ok(None)));
    }
}
