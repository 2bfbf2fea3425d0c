//! PUT (RFC 9110 §9.3.4, RFC 4918 §9.7): store the body atomically; 201 or 204.
//!
//! - A missing parent collection is 409 (RFC 4918 §9.7.1).
//! - PUT on a collection is 405.
//! - `Content-Range` is refused with 400, as RFC 9110 §14.5 requires of a server that does
//!   not implement partial PUT.
//! - The body streams to storage, which writes a temporary file and renames it into place,
//!   so a cut upload leaves the old content.

use davit_store::{StorageError, WriteOutcome};
use http::header::{CONTENT_RANGE, ETAG, IF_MATCH, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::precondition::{Change, check_write};
use crate::request::{Body, DavRequest, body_stream};

use super::get::header_value;
use super::status;

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
    body: &mut Body,
) -> Result<Response<DavBody>, DavError> {
    if req.parts.headers.contains_key(CONTENT_RANGE) {
        return Err(DavError::bad_request(
            "partial PUT with Content-Range is not supported",
        ));
    }
    if req.path.is_root() {
        return Err(DavError::method_not_allowed(
            "the root is a collection",
            "OPTIONS, GET, HEAD, DELETE, PROPFIND, PROPPATCH",
        ));
    }
    // The current state is needed only to evaluate conditional headers.
    let conditional = [IF_MATCH, IF_NONE_MATCH, IF_UNMODIFIED_SINCE]
        .iter()
        .any(|h| req.parts.headers.contains_key(h));
    let current = if conditional {
        match server.storage().metadata(&req.path).await {
            Ok(m) => Some(m),
            Err(StorageError::NotFound) => None,
            Err(e) => return Err(DavError::from_storage(e)),
        }
    } else {
        None
    };
    check_write(server, req, &req.path, current.as_ref(), Change::Write).await?;

    let (outcome, meta) = server
        .storage()
        .write(&req.path, body_stream(body.take()))
        .await
        .map_err(|e| match e {
            StorageError::IsCollection => DavError::method_not_allowed(
                "PUT cannot replace a collection",
                "OPTIONS, GET, HEAD, DELETE, COPY, MOVE, PROPFIND, PROPPATCH",
            ),
            StorageError::NotFound | StorageError::NotACollection => {
                DavError::conflict("the parent collection does not exist")
            }
            e => DavError::from_storage(e),
        })?;
    let mut resp = status(match outcome {
        WriteOutcome::Created => StatusCode::CREATED,
        WriteOutcome::Replaced => StatusCode::NO_CONTENT,
    });
    resp.headers_mut()
        .insert(ETAG, header_value(&meta.etag.to_string()));
    Ok(resp)
}
