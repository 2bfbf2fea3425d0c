//! OPTIONS (RFC 9110 §9.3.7, RFC 4918 §10.1): which methods and DAV classes apply.

use http::header::{ALLOW, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::request::DavRequest;

use super::{IMPLEMENTED, READ_ONLY_ALLOW, allow_for, status};

/// The DAV compliance classes Davit implements: 3 is RFC 4918 itself (no lock-null
/// resources, `If` evaluated as §10.4 says, PROPPATCH atomic).
const DAV_CLASSES: &str = "1, 2, 3";
/// Without class 2 (locking), Finder and davfs2 mount read-only.
const READ_ONLY_CLASSES: &str = "1, 3";

fn with_headers(
    mut resp: Response<DavBody>,
    allow: &'static str,
    read_only: bool,
) -> Response<DavBody> {
    let classes = if read_only {
        READ_ONLY_CLASSES
    } else {
        DAV_CLASSES
    };
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("dav"),
        HeaderValue::from_static(classes),
    );
    h.insert(ALLOW, HeaderValue::from_static(allow));
    if !read_only {
        // Microsoft clients look for this before they offer to write.
        h.insert(
            HeaderName::from_static("ms-author-via"),
            HeaderValue::from_static("DAV"),
        );
    }
    h.insert(
        http::header::ACCEPT_RANGES,
        HeaderValue::from_static("bytes"),
    );
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

/// `OPTIONS *`.
pub(super) fn server_wide(read_only: bool) -> Response<DavBody> {
    let allow = if read_only {
        READ_ONLY_ALLOW
    } else {
        IMPLEMENTED
    };
    with_headers(status(StatusCode::OK), allow, read_only)
}

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    let read_only = server.config.read_only;
    let kind = server
        .storage()
        .metadata(&req.path)
        .await
        .ok()
        .map(|m| m.kind);
    let collection = kind.is_some_and(|k| k.is_collection());
    let mut resp = with_headers(
        status(StatusCode::OK),
        allow_for(kind, read_only),
        read_only,
    );
    if collection && !read_only {
        // RFC 5995: what a POST here accepts, which is how clients find bulk upload.
        resp.headers_mut().insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static("multipart/form-data"),
        );
    }
    Ok(resp)
}
