//! PUT (RFC 9110 §9.3.4, RFC 4918 §9.7): store the body atomically; 201 or 204.
//!
//! - A missing parent collection is 409 (RFC 4918 §9.7.1).
//! - PUT on a collection is 405.
//! - `Content-Range` is refused with 400, as RFC 9110 §14.5 requires of a server that does
//!   not implement partial PUT.
//! - The body streams to storage, which writes a temporary file and renames it into place,
//!   so a cut upload leaves the old content.
//! - `X-OC-Mtime` (Unix seconds), which ownCloud-style sync clients and rclone send, becomes
//!   the file's date; the answer says `X-OC-MTime: accepted`, as those clients expect.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use davit_proto::ResourceKind;
use davit_store::{Metadata, StorageError, WriteOutcome};
use http::header::{CONTENT_RANGE, ETAG, IF_MATCH, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::precondition::{Change, check_if, check_write, metadata_now};
use crate::request::{
    Body, DavRequest, body_stream, content_length, limit_stream, upload_too_large,
};
use crate::tree::forget_stale;

use super::get::header_value;
use super::{allow_for, status};

/// The size the client says it sends: `Content-Length`, or for a chunked body macOS
/// Finder's `X-Expected-Entity-Length`. Only to refuse early; what arrives is counted.
fn announced_length(parts: &http::request::Parts) -> Option<u64> {
    content_length(parts).or_else(|| {
        parts
            .headers
            .get("x-expected-entity-length")?
            .to_str()
            .ok()?
            .parse()
            .ok()
    })
}

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
            allow_for(Some(ResourceKind::Collection), false),
        ));
    }
    // Fail fast, before the body is read.
    let current = current_state(server, req).await?;
    check_write(server, req, &req.path, current.as_ref(), Change::Write).await?;
    let max = server.config.max_upload_bytes;
    if let Some(max) = max
        && announced_length(&req.parts).is_some_and(|len| len > max)
    {
        return Err(upload_too_large(max));
    }
    let (stream, over) = limit_stream(body_stream(body.take()), max);
    let mut pending = server
        .storage()
        .prepare_write(&req.path, stream)
        .await
        .map_err(|e| match max {
            Some(max) if over.load(Ordering::Relaxed) => upload_too_large(max),
            _ => put_error(e),
        })?;
    let dated = client_mtime(&req.parts).is_some_and(|modified| {
        pending
            .set_modified(modified)
            .inspect_err(
                |e| tracing::debug!(path = ?req.path, error = %e, "X-OC-Mtime not applied"),
            )
            .is_ok()
    });
    // The body may have taken long to arrive: what held then is checked again, under the
    // gate that orders writes against LOCK, right before the new content becomes visible.
    let _gate = server.locks.write_gate().await;
    let _checked = if conditional(req) {
        Some(server.conditional_puts.lock().await)
    } else {
        None
    };
    check_if(server, req).await?;
    let current = current_state(server, req).await?;
    check_write(server, req, &req.path, current.as_ref(), Change::Write).await?;
    let (outcome, meta) = if create_only(req) {
        // Atomic in the storage too: a PUT without conditions may create the file between
        // the check above and this commit.
        let meta = pending.commit_new().await.map_err(|e| match e {
            StorageError::AlreadyExists => {
                DavError::precondition_failed("the resource exists and If-None-Match is *")
            }
            e => put_error(e),
        })?;
        (WriteOutcome::Created, meta)
    } else {
        pending.commit().await.map_err(put_error)?
    };
    if outcome == WriteOutcome::Created {
        forget_stale(server, &req.path).await?;
    }
    let mut resp = status(match outcome {
        WriteOutcome::Created => StatusCode::CREATED,
        WriteOutcome::Replaced => StatusCode::NO_CONTENT,
    });
    resp.headers_mut()
        .insert(ETAG, header_value(&meta.etag.to_string()));
    if dated {
        resp.headers_mut()
            .insert(X_OC_MTIME, http::HeaderValue::from_static("accepted"));
    }
    Ok(resp)
}

const X_OC_MTIME: http::HeaderName = http::HeaderName::from_static("x-oc-mtime");

/// The date the client wants the file to keep: `X-OC-Mtime`, in Unix seconds, whole or
/// with a fraction, from 1970 to 9999 (the dates an HTTP date can state).
fn client_mtime(parts: &http::request::Parts) -> Option<SystemTime> {
    const LAST: f64 = 253_402_300_799.0;
    let value = parts.headers.get(X_OC_MTIME)?.to_str().ok()?.trim();
    let secs: f64 = value.parse().ok()?;
    if !(0.0..=LAST).contains(&secs) {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)
}

/// Whether the PUT has conditions on the resource's current state.
fn conditional(req: &DavRequest) -> bool {
    [IF_MATCH, IF_NONE_MATCH, IF_UNMODIFIED_SINCE]
        .iter()
        .any(|h| req.parts.headers.contains_key(h))
}

/// `If-None-Match: *`: create, never replace.
fn create_only(req: &DavRequest) -> bool {
    let mut values = req.parts.headers.get_all(IF_NONE_MATCH).iter();
    values
        .next()
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"*")
        && values.next().is_none()
}

/// The resource's state, needed only to evaluate conditional headers. What the PUT would
/// answer without them comes first when it is a refusal: conditions never turn a 405 or a
/// 409 into a 412 (RFC 9110 §13.2.1).
async fn current_state(server: &DavServer, req: &DavRequest) -> Result<Option<Metadata>, DavError> {
    if !conditional(req) {
        return Ok(None);
    }
    let current = metadata_now(server, &req.path).await?;
    match &current {
        Some(meta) if meta.kind.is_collection() => {
            return Err(put_error(StorageError::IsCollection));
        }
        Some(_) => {}
        None => {
            if let Some(parent) = req.path.parent() {
                match server.storage().metadata(&parent).await {
                    Ok(meta) if meta.kind.is_collection() => {}
                    Ok(_) => return Err(put_error(StorageError::NotACollection)),
                    Err(e) => return Err(put_error(e)),
                }
            }
        }
    }
    Ok(current)
}

fn put_error(e: StorageError) -> DavError {
    match e {
        StorageError::IsCollection => DavError::method_not_allowed(
            "PUT cannot replace a collection",
            allow_for(Some(ResourceKind::Collection), false),
        ),
        StorageError::NotFound | StorageError::NotACollection => {
            DavError::conflict("the parent collection does not exist")
        }
        e => DavError::from_storage(e),
    }
}
