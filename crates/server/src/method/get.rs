//! GET and HEAD (RFC 9110 §9.3.1-2, RFC 4918 §9.4): content with validators and ranges;
//! an HTML listing for collections.

use davit_proto::{ByteRange, RangeRequest, parse_range, resolve_range};
use davit_store::{FileReader, StorageError};
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    HeaderValue, IF_NONE_MATCH, LAST_MODIFIED, RANGE, X_CONTENT_TYPE_OPTIONS,
};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::{DavBody, FileBody};
use crate::error::DavError;
use crate::live_prop::content_type;
use crate::precondition::{ReadCondition, check_read, if_range_holds};
use crate::request::DavRequest;

use super::status;

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    let reader = match server.storage().open(&req.path).await {
        Ok(r) => r,
        Err(StorageError::IsCollection) => {
            if let Some(resp) = folder_conditions(server, req).await? {
                return Ok(resp);
            }
            // Boxed: the listing's future is large, and GET's is held unboxed by every
            // request's.
            return Box::pin(crate::html::listing(server, req)).await;
        }
        Err(e) => return Err(DavError::from_storage(e)),
    };
    serve_file(req, reader)
}

/// A folder's listing has no validators of its own, but the request's conditions on the
/// folder still hold (RFC 9110 §13.1): 412 for a failed `If-Match`, 304 for
/// `If-None-Match: *`. Not 304 for the folder's own entity tag or date: those stay put
/// while a member is written in place, and the page shows the members' sizes and dates.
/// `None`: answer with the listing.
async fn folder_conditions(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Option<Response<DavBody>>, DavError> {
    if !req.is_conditional() {
        return Ok(None);
    }
    let meta = server
        .storage()
        .metadata(&req.path)
        .await
        .map_err(DavError::from_storage)?;
    let unchanged = check_read(req, &meta)? == ReadCondition::NotModified;
    let any = req
        .condition(IF_NONE_MATCH)?
        .is_some_and(|v| v.trim() == "*");
    Ok((unchanged && any).then(|| status(StatusCode::NOT_MODIFIED)))
}

fn serve_file(
    req: &DavRequest,
    reader: Box<dyn FileReader>,
) -> Result<Response<DavBody>, DavError> {
    let meta = reader.metadata();
    let not_modified = check_read(req, meta)? == ReadCondition::NotModified;

    let mut resp = status(StatusCode::OK);
    {
        let h = resp.headers_mut();
        // Written by hand, not through `Display`: formatting was a tenth of a small GET.
        let mut etag = String::with_capacity(64);
        meta.etag.write_into(&mut etag);
        h.insert(ETAG, owned_header_value(etag));
        let mut modified = String::with_capacity(29);
        // RFC 9110 §8.8.2.1: never later than the answer's own Date, whatever the file says.
        let stated = meta.modified.min(std::time::SystemTime::now());
        davit_proto::write_http_date(stated, &mut modified);
        h.insert(LAST_MODIFIED, owned_header_value(modified));
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(resp);
    }
    let kind = content_type(&req.path);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    if renders_active(kind) {
        // A page one user stored must not run as the server's own for another who opens
        // it: its scripts would act with that user's saved login.
        let h = resp.headers_mut();
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }

    let mut range = None;
    if let Some(value) = req.condition(RANGE)? {
        // A Range that does not parse is ignored (RFC 9110 §14.2).
        if let Ok(specs) = parse_range(&value)
            && if_range_holds(req, meta)?
        {
            match resolve_range(&specs, meta.len) {
                RangeRequest::Full => {}
                RangeRequest::Partial(r) => range = Some(r),
                RangeRequest::Unsatisfiable => {
                    let mut resp = status(StatusCode::RANGE_NOT_SATISFIABLE);
                    resp.headers_mut().insert(
                        CONTENT_RANGE,
                        header_value(&format!("bytes */{}", meta.len)),
                    );
                    return Ok(resp);
                }
            }
        }
    }
    let len = match range {
        Some(r) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            resp.headers_mut().insert(
                CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{}", r.start, r.end - 1, meta.len)),
            );
            r.len()
        }
        None => meta.len,
    };
    if req.is_head() {
        // A GET's length comes from its body; a HEAD has none to tell it.
        resp.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
    } else {
        *resp.body_mut() = match reader.in_memory() {
            // One buffer, written with the head in one go.
            Some(data) => {
                let r = range.unwrap_or(ByteRange {
                    start: 0,
                    end: meta.len,
                });
                let end = (r.end as usize).min(data.len());
                DavBody::full(data.slice((r.start as usize).min(end)..end))
            }
            None => DavBody::File(FileBody::new(reader, range)),
        };
    }
    Ok(resp)
}

/// A header value from a string Davit generated (ASCII by construction), without copying.
fn owned_header_value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).expect("generated header values are visible ASCII")
}

/// A header value from text Davit generated (ASCII by construction).
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("generated header values are visible ASCII")
}

/// Content types a browser shows as a document that may run scripts.
fn renders_active(content_type: &str) -> bool {
    matches!(
        content_type,
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "application/xml"
            | "text/xml"
            | "application/xslt+xml"
    )
}
