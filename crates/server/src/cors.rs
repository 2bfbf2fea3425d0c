//! Cross-origin requests (the Fetch standard's CORS) for browser applications served from
//! another origin. Off unless origins are configured. A preflight is answered before
//! authentication, since browsers send it without credentials; every other answer to an
//! allowed origin is marked readable by it, with the WebDAV headers exposed. Origins named
//! one by one may use the browser's saved login; `*` lets any page call the server, but
//! only with credentials the page itself sends (an `Authorization` header it sets).

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderValue, ORIGIN,
    VARY,
};
use http::{Method, Response, StatusCode};

use crate::body::DavBody;
use crate::method::{IMPLEMENTED, READ_ONLY_ALLOW};

/// What a WebDAV application reads from answers beyond the CORS-safelisted headers.
const EXPOSED: &str = "DAV, ETag, Lock-Token, Location, Content-Range, Accept-Ranges, \
                       Last-Modified, Content-Length, Allow, WWW-Authenticate, Retry-After, \
                       Accept-Post, MS-Author-Via, X-OC-MTime";
/// Headers a preflight may ask for when it names none itself.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Depth, Destination, Overwrite, If, \
                               Lock-Token, Timeout, Range, If-Match, If-None-Match";

/// The origins whose browser applications may use this server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

/// A configured origin that no browser would send.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("CORS origin {0:?}: expected http(s)://host[:port], or * for any")]
pub struct InvalidOrigin(String);

impl CorsOrigins {
    /// These origins (`https://app.example`, as a browser sends them: scheme, host and a port
    /// other than the default, nothing after); `*` allows any.
    ///
    /// # Errors
    /// [`InvalidOrigin`] for anything else, `null` included: sandboxed frames and `data:`
    /// pages send `null`, so allowing it would allow them all.
    pub fn new<S: AsRef<str>>(origins: impl IntoIterator<Item = S>) -> Result<Self, InvalidOrigin> {
        origins
            .into_iter()
            .map(|o| normalize(o.as_ref()))
            .collect::<Result<_, _>>()
            .map(CorsOrigins)
    }

    /// Whether any origin is allowed at all.
    pub(crate) fn is_on(&self) -> bool {
        !self.0.is_empty()
    }

    /// How the request's `Origin` is allowed, if it is.
    pub(crate) fn allowed(&self, headers: &HeaderMap) -> Option<Allowed> {
        if self.0.is_empty() {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        if self.0.contains(&text) {
            return Some(Allowed {
                origin: origin.clone(),
                credentials: true,
            });
        }
        self.0.iter().any(|o| o == "*").then(|| Allowed {
            origin: HeaderValue::from_static("*"),
            credentials: false,
        })
    }
}

/// What an allowed origin is told.
#[derive(Debug, Clone)]
pub(crate) struct Allowed {
    /// `Access-Control-Allow-Origin`: the origin itself, or `*`.
    origin: HeaderValue,
    /// Whether the browser may send its saved login along.
    pub(crate) credentials: bool,
}

/// An origin as browsers serialize it: lowercase, without a default port.
fn normalize(text: &str) -> Result<String, InvalidOrigin> {
    let bad = || InvalidOrigin(text.to_owned());
    let origin = text.trim().trim_end_matches('/').to_ascii_lowercase();
    if origin == "*" {
        return Ok(origin);
    }
    let (scheme, authority) = origin.split_once("://").ok_or_else(bad)?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(bad()),
    };
    if authority.is_empty()
        || authority.starts_with(':')
        || authority.contains(['/', '?', '#', '@', ' '])
    {
        return Err(bad());
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Ok(format!("{scheme}://{authority}"))
}

/// Whether the request is a CORS preflight.
pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from the allowed `origin`.
pub(crate) fn preflight(
    origin: Allowed,
    headers: &HeaderMap,
    read_only: bool,
) -> Response<DavBody> {
    let mut resp = Response::new(DavBody::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(if read_only {
            READ_ONLY_ALLOW
        } else {
            IMPLEMENTED
        }),
    );
    let asked = headers
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(ALLOWED_HEADERS));
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    h.append(
        VARY,
        HeaderValue::from_static("Access-Control-Request-Headers"),
    );
    mark(&mut resp, origin);
    resp
}

/// Makes an answer readable by the allowed `origin`.
pub(crate) fn mark(resp: &mut Response<DavBody>, origin: Allowed) {
    let h = resp.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.origin);
    if origin.credentials {
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    h.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    h.append(VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_whole_and_without_regard_to_case() {
        let with = |origin: &str| {
            let mut h = HeaderMap::new();
            h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
            h
        };
        let some = CorsOrigins::new(["https://App.example:443/", "http://localhost:3000"]).unwrap();
        let cases = [
            ("https://app.example", true),
            ("HTTPS://APP.EXAMPLE", true),
            ("http://localhost:3000", true),
            ("https://app.example.evil", false),
            ("http://localhost:30001", false),
            ("null", false),
        ];
        for (origin, allowed) in cases {
            let got = some.allowed(&with(origin));
            assert_eq!(got.is_some(), allowed, "{origin}");
            assert!(got.is_none_or(|a| a.credentials && a.origin == origin));
        }
        assert!(some.allowed(&HeaderMap::new()).is_none(), "no Origin");
        let any = CorsOrigins::new(["*", "https://app.example"]).unwrap();
        let other = any.allowed(&with("null")).unwrap();
        assert!(other.origin == "*" && !other.credentials);
        assert!(
            any.allowed(&with("https://app.example"))
                .unwrap()
                .credentials
        );
        assert!(
            CorsOrigins::default()
                .allowed(&with("https://app.example"))
                .is_none()
        );
    }

    #[test]
    fn only_origins_a_browser_sends_are_configurable() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://app.example", Some("https://app.example")),
            ("HTTPS://App.Example/", Some("https://app.example")),
            ("https://app.example:443", Some("https://app.example")),
            ("http://app.example:80", Some("http://app.example")),
            ("https://app.example:8443", Some("https://app.example:8443")),
            ("http://[::1]:3000", Some("http://[::1]:3000")),
            ("*", Some("*")),
            ("null", None),
            ("app.example", None),
            ("https://app.example/app", None),
            ("https://user@app.example", None),
            ("ftp://app.example", None),
            ("https://", None),
            ("https://:443", None),
        ];
        for (text, want) in cases {
            assert_eq!(normalize(text).ok().as_deref(), *want, "{text}");
        }
        assert!(CorsOrigins::new(["https://a.example", "null"]).is_err());
    }
}
