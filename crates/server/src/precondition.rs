//! Conditional requests (RFC 9110 §13, RFC 4918 §10.4) and the one gate every write goes
//! through.
//!
//! Order, as RFC 4918 wants it and litmus checks it:
//! 1. [`check_if`] evaluates the `If` header for every method: false is 412.
//! 2. Every method that changes a resource calls [`check_write`] before changing anything:
//!    the HTTP preconditions of the Request-URI (412), then the locks (423 with
//!    `lock-token-submitted` when a lock applies and its token was not submitted).

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use davit_proto::{
    Condition, Depth, ETag, ETagList, IfTest, LockScope, ResourceKind, ResourcePath,
};
use davit_store::{Lock, Metadata, StorageError};
use http::StatusCode;
use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};

use crate::DavServer;
use crate::error::DavError;
use crate::lock;
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
        .condition(name)?
        .and_then(|v| httpdate::parse_http_date(&v).ok()))
}

/// Evaluates the conditions that make any method fail with 412 (RFC 9110 §13.2.2 steps 1-2,
/// and step 3 for methods other than GET and HEAD).
fn check_412(req: &DavRequest, meta: Option<&Metadata>) -> Result<(), DavError> {
    let etag = meta.map(|m| &m.etag);
    if let Some(v) = req.condition(IF_MATCH)? {
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
    if let Some(v) = req.condition(IF_NONE_MATCH)? {
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
    if let Some(v) = req.condition(IF_NONE_MATCH)?
        && ETagList::parse(&v).matches_weak(meta.map(|m| &m.etag))
    {
        return Err(DavError::precondition_failed(
            "If-None-Match matches the current entity tag",
        ));
    }
    Ok(())
}

/// How a write changes a resource, which decides the locks that apply (RFC 4918 §7.4):
/// changing membership of a collection needs the token of a lock on that collection, even
/// a depth-0 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The resource's content or properties change.
    Modify,
    /// The resource is created in its parent.
    Create,
    /// The resource is removed from its parent.
    Remove,
    /// Created if missing, else modified (PUT).
    Write,
}

/// The gate of every write: `path` is about to be changed. `meta` is its current state, if
/// it exists. HTTP preconditions apply to the Request-URI only (a COPY's destination is not
/// what If-Match talks about); locks apply to every resource changed.
pub(crate) async fn check_write(
    server: &DavServer,
    req: &DavRequest,
    path: &ResourcePath,
    meta: Option<&Metadata>,
    change: Change,
) -> Result<(), DavError> {
    if *path == req.path {
        check_conditions(req, meta)?;
    }
    check_locks(server, req, path, change).await
}

/// `path`'s metadata, `None` where nothing is.
pub(crate) async fn metadata_if_any(
    server: &DavServer,
    path: &ResourcePath,
) -> Result<Option<Metadata>, DavError> {
    if_any(server.storage().metadata(path).await)
}

/// Like [`metadata_if_any`], but never a remembered answer: for what decides a change
/// (405, 412, a conditional write), which must not rest on a look-up older than a change
/// made to the folder directly.
pub(crate) async fn metadata_now(
    server: &DavServer,
    path: &ResourcePath,
) -> Result<Option<Metadata>, DavError> {
    if_any(server.storage().metadata_fresh(path).await)
}

fn if_any(found: Result<Metadata, StorageError>) -> Result<Option<Metadata>, DavError> {
    match found {
        Ok(m) => Ok(Some(m)),
        Err(StorageError::NotFound) => Ok(None),
        Err(e) => Err(DavError::from_storage(e)),
    }
}

/// The Request-URI's current state, once it passed the gate of `change`: for methods that
/// act on a resource that must exist (DELETE, MOVE, PROPPATCH).
pub(crate) async fn existing_for(
    server: &DavServer,
    req: &DavRequest,
    change: Change,
) -> Result<Metadata, DavError> {
    let meta = server
        .storage()
        .metadata(&req.path)
        .await
        .map_err(DavError::from_storage)?;
    check_write(server, req, &req.path, Some(&meta), change).await?;
    Ok(meta)
}

/// 423 unless the token of every lock that applies to this change was submitted.
async fn check_locks(
    server: &DavServer,
    req: &DavRequest,
    path: &ResourcePath,
    change: Change,
) -> Result<(), DavError> {
    let locks = server.locks.on_path(path).await?;
    if locks.is_empty() {
        return Ok(());
    }
    let parent = path.parent();
    let on_parent = |l: &Lock| parent.as_ref() == Some(&l.root);
    let membership = match change {
        Change::Create | Change::Remove => true,
        Change::Modify => false,
        // Only a creating PUT changes the parent's membership; ask only when it matters.
        Change::Write if locks.iter().any(on_parent) => matches!(
            server.storage().metadata(path).await,
            Err(StorageError::NotFound)
        ),
        Change::Write => false,
    };
    let applying: Vec<&Lock> = locks
        .iter()
        .filter(|l| lock::covers(l, path) || (membership && on_parent(l)))
        .collect();
    // RFC 4918 §6.2: holding any one of the shared locks on a resource is enough to use
    // it; an exclusive lock needs its own token.
    let holds_shared = |root: &ResourcePath| {
        applying
            .iter()
            .any(|l| l.root == *root && l.scope == LockScope::Shared && req.holds(l))
    };
    let missing: Vec<&Lock> = applying
        .iter()
        .copied()
        .filter(|l| !req.holds(l))
        .filter(|l| !(l.scope == LockScope::Shared && holds_shared(&l.root)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut hrefs = Vec::new();
    for l in missing {
        let kind = match server.storage().metadata(&l.root).await {
            Ok(m) => m.kind,
            Err(_) if l.depth == Depth::Infinity => ResourceKind::Collection,
            Err(_) => ResourceKind::File,
        };
        hrefs.push(server.config.base_path.href(&l.root, kind).to_string());
    }
    Err(locked(hrefs))
}

/// 423 Locked with `lock-token-submitted` naming the locked resources.
pub(crate) fn locked(hrefs: Vec<String>) -> DavError {
    DavError::new(
        StatusCode::LOCKED,
        "the resource is locked and the lock token was not submitted in an If header",
    )
    .with_condition(Condition::LockTokenSubmitted(hrefs))
}

/// Roots of the locks strictly below `root` whose tokens were not submitted: a DELETE or
/// MOVE of `root` must leave those members in place and report them (RFC 4918 §9.6.1).
pub(crate) async fn locked_members(
    server: &DavServer,
    req: &DavRequest,
    root: &ResourcePath,
) -> Result<HashSet<ResourcePath>, DavError> {
    let below = server.locks.below(root).await?;
    let satisfied: HashSet<&ResourcePath> = below
        .iter()
        .filter(|l| req.holds(l) && l.scope == LockScope::Shared)
        .map(|l| &l.root)
        .collect();
    Ok(below
        .iter()
        .filter(|l| !req.holds(l))
        .filter(|l| !(l.scope == LockScope::Shared && satisfied.contains(&l.root)))
        .map(|l| l.root.clone())
        .collect())
}

/// Evaluates the `If` header (RFC 4918 §10.4): true when any list holds, a list holding
/// when all its conditions do. An entity tag holds when it is the resource's current one. A
/// state token holds when it names an active lock that bears on the resource: one that
/// applies to it, one on its parent (whose membership a write changes), or one below it (in
/// the tree a DELETE or MOVE takes). The last two let clients submit, untagged, the tokens a
/// request needs, as they commonly do.
///
/// # Errors
/// 412 when the header is present and false.
pub(crate) async fn check_if(server: &DavServer, req: &DavRequest) -> Result<(), DavError> {
    let Some(header) = &req.if_header else {
        return Ok(());
    };
    // Look up, once each, what the conditions ask about; the evaluation itself is pure.
    let mut own = Vec::with_capacity(header.lists.len());
    let mut etags: Vec<(&ResourcePath, Option<ETag>)> = Vec::new();
    let mut locks: Vec<(&str, Option<Lock>)> = Vec::new();
    for list in &header.lists {
        let applies = match &list.authority {
            _ if list.unserved => false,
            Some(authority) => req.is_own_authority(authority)?,
            None => true,
        };
        own.push(applies);
        if !applies {
            continue;
        }
        let resource = list.resource.as_ref().unwrap_or(&req.path);
        for c in &list.conditions {
            match &c.test {
                IfTest::ETag(_) if !etags.iter().any(|(p, _)| *p == resource) => {
                    let etag = metadata_if_any(server, resource).await?.map(|m| m.etag);
                    etags.push((resource, etag));
                }
                IfTest::Token(t) if !locks.iter().any(|(k, _)| k == t) => {
                    locks.push((t, server.locks.get(t).await?));
                }
                _ => {}
            }
        }
    }
    let applies = |list: &davit_proto::IfList| {
        let i = header.lists.iter().position(|l| std::ptr::eq(l, list));
        i.is_some_and(|i| own[i])
    };
    let test = |resource: &ResourcePath, test: &IfTest| match test {
        IfTest::ETag(e) => etags
            .iter()
            .find(|(p, _)| *p == resource)
            .and_then(|(_, cur)| cur.as_ref())
            .is_some_and(|cur| e.strong_eq(cur)),
        IfTest::Token(t) => locks
            .iter()
            .find(|(k, _)| k == t)
            .and_then(|(_, l)| l.as_ref())
            .is_some_and(|l| {
                lock::covers(l, resource)
                    || resource.parent().as_ref() == Some(&l.root)
                    || l.root.starts_with(resource)
            }),
    };
    if header.evaluate(&req.path, applies, test) {
        return Ok(());
    }
    let failed =
        DavError::precondition_failed("no list of the If header holds for the current state");
    // RFC 4918 §9.10.6: a LOCK submitting tokens asks to refresh a lock, and the tokens
    // name none that covers the Request-URI.
    Err(if req.method().as_str() == "LOCK" {
        failed.with_condition(Condition::LockTokenMatchesRequestUri)
    } else {
        failed
    })
}

/// Whether the `If-Range` condition holds, so that a Range may be honoured.
pub(crate) fn if_range_holds(req: &DavRequest, meta: &Metadata) -> Result<bool, DavError> {
    let Some(v) = req.condition(http::header::IF_RANGE)? else {
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
