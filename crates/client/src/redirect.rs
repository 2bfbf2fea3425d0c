//! Following redirects: where a redirected request goes next, and as which method.

use reqwest::header::{
    CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, TRANSFER_ENCODING,
};
use reqwest::{Method, StatusCode, Url};

/// How many redirects one request follows.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Where a redirect sends the requests that follow it.
#[derive(Debug, Clone)]
pub(crate) struct Redirect {
    to: Url,
    /// A 303 on the way: what follows is a GET without a body.
    see_other: bool,
}

impl Redirect {
    /// The redirect `resp` asks for: a 301, 302, 303, 307 or 308 whose `Location` resolves
    /// to an http(s) URL. `earlier` is the redirect the request had already followed.
    pub(crate) fn of(resp: &reqwest::Response, earlier: Option<&Redirect>) -> Option<Redirect> {
        let status = resp.status();
        if !matches!(
            status,
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        ) {
            return None;
        }
        // Raw UTF-8 too: some servers send accented names so.
        let location = std::str::from_utf8(resp.headers().get(LOCATION)?.as_bytes()).ok()?;
        let to = resp.url().join(location).ok()?;
        matches!(to.scheme(), "http" | "https").then(|| Redirect {
            to,
            see_other: status == StatusCode::SEE_OTHER || earlier.is_some_and(|e| e.see_other),
        })
    }

    /// Where the redirect points.
    pub(crate) fn url(&self) -> &Url {
        &self.to
    }

    /// Sends `req` where the redirect points; after a 303, as a GET without its body.
    pub(crate) fn apply(&self, req: &mut reqwest::Request) {
        self.to.clone_into(req.url_mut());
        if self.see_other && req.method() != Method::HEAD {
            *req.method_mut() = Method::GET;
            *req.body_mut() = None;
            for name in [
                CONTENT_TYPE,
                CONTENT_LENGTH,
                CONTENT_ENCODING,
                TRANSFER_ENCODING,
            ] {
                req.headers_mut().remove(name);
            }
        }
    }
}
