//! LOCK (RFC 4918 §9.10): create or refresh a write lock.
//!
//! - A body is a new lock: exclusive or shared, Depth 0 or infinity (absent is infinity),
//!   the owner kept verbatim, the Timeout capped by configuration.
//! - No body is a refresh of the locks whose tokens the `If` header submits.
//! - A lock that conflicts at the resource or above is 423 `no-conflicting-lock`; a
//!   depth-infinity lock that conflicts with a lock below answers 207, naming it.
//! - LOCK on an unmapped URL creates an empty resource and answers 201 (§7.3).

use std::cell::RefCell;

use bytes::Bytes;
use davit_proto::{
    Condition, Depth, LockInfo, MultistatusWriter, ParseError, ResourceKind, Timeout, XmlLimits,
    lock_response_body,
};
use davit_store::{Lock, StorageError};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::lock::{active, conflicts, covers};
use crate::precondition::{Change, check_conditions, check_write, metadata_if_any};
use crate::request::{Body, DavRequest, LOCK_TOKEN, TIMEOUT, read_body};
use crate::tree::{forget_stale, multistatus};

use super::get::header_value;

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
    body: &mut Body,
) -> Result<Response<DavBody>, DavError> {
    let bytes = read_body(&req.parts, body.take(), server.config.max_xml_body).await?;
    let timeout = req
        .header(TIMEOUT)?
        .map(|v| Timeout::parse(&v))
        .transpose()?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return refresh(server, req, timeout).await;
    }
    let info = parse_lockinfo(&bytes, server.config.xml_limits)?;
    let depth = match req.depth(Depth::Infinity)? {
        Depth::One => return Err(DavError::bad_request("LOCK takes Depth 0 or infinity")),
        d => d,
    };

    let _gate = server.locks.sole_gate().await;
    server.locks.purge().await;
    let meta = metadata_if_any(server, &req.path).await?;
    check_conditions(req, meta.as_ref())?;
    let kind = meta.as_ref().map_or(ResourceKind::File, |m| m.kind);
    let depth = if kind.is_collection() {
        depth
    } else {
        Depth::Zero
    };

    // Locks on this resource and its ancestors: for conflicts, and for the per-resource cap.
    let on_path = server.locks.on_path(&req.path).await?;
    let above: Vec<&Lock> = on_path
        .iter()
        .filter(|l| covers(l, &req.path) && conflicts(l, info.scope))
        .collect();
    if !above.is_empty() {
        let hrefs = above
            .iter()
            .map(|l| {
                let root_kind = if l.root == req.path {
                    kind
                } else {
                    ResourceKind::Collection
                };
                server.config.base_path.href(&l.root, root_kind).to_string()
            })
            .collect();
        return Err(
            DavError::new(StatusCode::LOCKED, "a conflicting lock is held")
                .with_condition(Condition::NoConflictingLock(hrefs)),
        );
    }
    if depth == Depth::Infinity {
        let below: Vec<Lock> = server
            .locks
            .below(&req.path)
            .await?
            .into_iter()
            .filter(|l| conflicts(l, info.scope))
            .collect();
        if !below.is_empty() {
            return Ok(conflict_below(server, req, kind, &below).await);
        }
    }

    let here = on_path.iter().filter(|l| l.root == req.path).count();
    check_lock_limits(server, here).await?;
    let created = meta.is_none();
    if created {
        check_write(server, req, &req.path, None, Change::Create).await?;
        let empty: davit_store::ByteStream = Box::pin(futures_util::stream::empty());
        server
            .storage()
            .write(&req.path, empty)
            .await
            .map_err(|e| match e {
                StorageError::ParentMissing | StorageError::NotACollection => {
                    DavError::conflict("the parent collection does not exist")
                }
                e => DavError::from_storage(e),
            })?;
        forget_stale(server, &req.path).await?;
    }
    let secs = server.locks.grant(timeout);
    let lock = Lock {
        token: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        root: req.path.clone(),
        scope: info.scope,
        depth,
        owner: info.owner,
        timeout: Some(secs),
        expires: Some(server.locks.expiry(secs)),
        creator: req.principal.user.as_deref().map(str::to_owned),
    };
    server.locks.insert(&lock).await?;
    tracing::debug!(path = ?req.path, token = %lock.token, "lock granted");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = lock_response(server, req, std::slice::from_ref(&lock), kind, status);
    resp.headers_mut()
        .insert(LOCK_TOKEN, header_value(&format!("<{}>", lock.token)));
    Ok(resp)
}

/// 507 when the resource, or the server, holds as many locks as it may.
async fn check_lock_limits(server: &DavServer, here: usize) -> Result<(), DavError> {
    let config = &server.config;
    if here >= config.max_locks_per_resource {
        return Err(DavError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("this resource already has {here} locks, the most allowed"),
        ));
    }
    if !server.locks.holds_fewer_than(config.max_locks).await? {
        tracing::warn!(
            max = config.max_locks,
            "lock refused: the server holds its most locks"
        );
        return Err(DavError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server holds as many locks as it may",
        ));
    }
    Ok(())
}

/// A refresh: the locks named by submitted tokens that apply here get a new timeout.
async fn refresh(
    server: &DavServer,
    req: &DavRequest,
    timeout: Option<Timeout>,
) -> Result<Response<DavBody>, DavError> {
    if req.if_header.is_none() {
        return Err(DavError::bad_request(
            "a LOCK without a body refreshes a lock and needs its token in an If header",
        ));
    }
    let kind = server
        .storage()
        .metadata(&req.path)
        .await
        .map_err(DavError::from_storage)?
        .kind;
    let secs = server.locks.grant(timeout);
    // Beside writes, not beside a LOCK's purge of lapsed locks: a refresh just before its
    // lock lapsed could reach the store after the purge removed it, and be lost at restart.
    let _gate = server.locks.write_gate().await;
    let mut refreshed = Vec::new();
    for mut lock in server.locks.covering(&req.path).await? {
        if !req.holds(&lock) {
            continue;
        }
        lock.timeout = Some(secs);
        lock.expires = Some(server.locks.expiry(secs));
        server.locks.refresh(&lock).await?;
        refreshed.push(lock);
    }
    if refreshed.is_empty() {
        return Err(DavError::precondition_failed(
            "no submitted lock token applies to this resource",
        )
        .with_condition(Condition::LockTokenMatchesRequestUri));
    }
    Ok(lock_response(server, req, &refreshed, kind, StatusCode::OK))
}

/// The LOCK answer: `lockdiscovery` with `locks`; `kind` is the Request-URI's kind (a lock
/// rooted above it is rooted at a collection).
/// Longest `lockinfo` body whose meaning is kept for the next LOCK.
const REMEMBERED_BODY: usize = 1024;

thread_local! {
    /// The last `lockinfo` parsed on this thread, with the limits it was parsed under.
    static LAST_LOCKINFO: RefCell<Option<(XmlLimits, Bytes, LockInfo)>> =
        const { RefCell::new(None) };
}

/// Parses a `lockinfo` body, reusing the last result for a body equal byte for byte.
///
/// A client sends the same body with every lock it takes (it names only the scope, the
/// type and the client's owner string), and parsing it into a tree was a third of the
/// work of a LOCK. Parsing is a function of the bytes and the limits alone, so the
/// remembered answer is the answer.
fn parse_lockinfo(bytes: &[u8], limits: XmlLimits) -> Result<LockInfo, ParseError> {
    if bytes.len() > REMEMBERED_BODY {
        return LockInfo::from_xml(bytes, limits);
    }
    LAST_LOCKINFO.with_borrow_mut(|last| {
        if let Some((l, body, info)) = last.as_ref()
            && *l == limits
            && body.as_ref() == bytes
        {
            return Ok(info.clone());
        }
        let info = LockInfo::from_xml(bytes, limits)?;
        *last = Some((limits, Bytes::copy_from_slice(bytes), info.clone()));
        Ok(info)
    })
}

fn lock_response(
    server: &DavServer,
    req: &DavRequest,
    locks: &[Lock],
    kind: ResourceKind,
    status: StatusCode,
) -> Response<DavBody> {
    let now = server.locks.clock.now();
    let body = lock_response_body(locks.iter().map(|l| {
        let root_kind = if l.root == req.path {
            kind
        } else {
            ResourceKind::Collection
        };
        active(l, now, root_kind, &server.config.base_path)
    }));
    let mut resp = Response::new(DavBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    resp
}

/// RFC 4918 §9.10.9: a 207 naming each conflicting lock below, and 424 for the request.
async fn conflict_below(
    server: &DavServer,
    req: &DavRequest,
    kind: ResourceKind,
    below: &[Lock],
) -> Response<DavBody> {
    let base = &server.config.base_path;
    let mut w = MultistatusWriter::new(base);
    for l in below {
        // A locked folder's href ends in a slash, as in every other answer naming it.
        let root_kind = server
            .storage()
            .metadata(&l.root)
            .await
            .map_or(ResourceKind::File, |m| m.kind);
        let cond = Condition::NoConflictingLock(vec![base.href(&l.root, root_kind).to_string()]);
        w.status_response(
            &l.root,
            root_kind,
            423,
            Some(&cond),
            Some("a conflicting lock is held here"),
        );
    }
    w.status_response(
        &req.path,
        kind,
        424,
        None,
        Some("the lock could not be granted below"),
    );
    w.finish();
    multistatus(DavBody::full(w.take()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use davit_proto::LockScope;

    fn body(scope: &str, owner: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>"#
        )
        .into_bytes()
    }

    #[test]
    fn a_remembered_lockinfo_means_what_parsing_it_means() {
        let limits = XmlLimits::default();
        let cases = [
            body("exclusive", "alice"),
            body("exclusive", "alice"),
            body("shared", "alice"),
            body("exclusive", "bob"),
            body("exclusive", "bob"),
            b"<D:lockinfo xmlns:D='DAV:'/>".to_vec(),
            b"<D:lockinfo xmlns:D='DAV:'/>".to_vec(),
            body("exclusive", "alice"),
        ];
        for case in &cases {
            assert_eq!(
                parse_lockinfo(case, limits),
                LockInfo::from_xml(case, limits),
                "{}",
                String::from_utf8_lossy(case)
            );
        }
        let last = parse_lockinfo(&body("shared", "carol"), limits).unwrap();
        assert_eq!(last.scope, LockScope::Shared);
        assert_eq!(last.owner.as_deref(), Some("carol"));
    }

    #[test]
    fn a_remembered_lockinfo_is_checked_against_the_limits_again() {
        let b = body("exclusive", "<D:href>x</D:href>");
        assert!(parse_lockinfo(&b, XmlLimits::default()).is_ok());
        let shallow = XmlLimits {
            max_depth: 2,
            ..XmlLimits::default()
        };
        assert!(parse_lockinfo(&b, shallow).is_err());
        assert!(parse_lockinfo(&b, XmlLimits::default()).is_ok());
    }
}
