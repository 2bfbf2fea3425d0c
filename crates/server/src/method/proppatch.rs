//! PROPPATCH (RFC 4918 §9.2): set and remove dead properties, all or nothing.
//!
//! - Instructions apply in document order, in one store transaction.
//! - A protected live property fails with 403 `cannot-modify-protected-property`; then
//!   nothing is applied and every other property reports 424.
//! - Removing a property that does not exist succeeds.
//! - Windows' `Win32LastModifiedTime`, set with a valid date, also becomes the resource's
//!   own last-modified time, once the properties are applied.

use std::time::SystemTime;

use davit_proto::{Condition, MultistatusWriter, PropName, PropOp, PropertyUpdate};
use davit_store::StorageError;
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::live_prop::is_protected;
use crate::precondition::{Change, existing_for};
use crate::request::{Body, DavRequest, read_body};
use crate::tree::multistatus;

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
    body: &mut Body,
) -> Result<Response<DavBody>, DavError> {
    // The body first (it is small and bounded), so the checks and the change happen
    // together under the gate.
    let bytes = read_body(&req.parts, body.take(), server.config.max_xml_body).await?;
    let _gate = server.locks.write_gate().await;
    let meta = existing_for(server, req, Change::Modify).await?;
    let update = PropertyUpdate::from_xml(&bytes, server.config.xml_limits)?;

    // Each property once, in the order first named. A set, not a scan of the list: a
    // bounded body still names 100,000 properties, and scanning was quadratic in them.
    let mut seen = std::collections::HashSet::with_capacity(update.ops.len());
    let names: Vec<&PropName> = update
        .ops
        .iter()
        .map(PropOp::name)
        .filter(|n| seen.insert(*n))
        .collect();
    let protected: Vec<&PropName> = names.iter().copied().filter(|n| is_protected(n)).collect();

    let mut w = MultistatusWriter::new(&server.config.base_path);
    w.begin_response(&req.path, meta.kind);
    if protected.is_empty() {
        let status = match server.props().apply(&req.path, &update.ops).await {
            Ok(()) => {
                if let Some(modified) = win32_modified(&update.ops) {
                    set_modified(server, req, modified).await;
                }
                StatusCode::OK
            }
            Err(e) => DavError::from_storage(e).status(),
        };
        group(&mut w, &names, status, None);
    } else {
        group(
            &mut w,
            &protected,
            StatusCode::FORBIDDEN,
            Some(&Condition::CannotModifyProtectedProperty),
        );
        let rest: Vec<&PropName> = names.iter().copied().filter(|n| !is_protected(n)).collect();
        group(&mut w, &rest, StatusCode::FAILED_DEPENDENCY, None);
    }
    w.end_response(None);
    w.finish();
    Ok(multistatus(DavBody::full(w.take())))
}

/// The namespace of the properties Windows Explorer sets on the files it copies.
const MS_NS: &str = "urn:schemas-microsoft-com:";

/// The date the update leaves in `Win32LastModifiedTime`, if it sets a valid one there.
/// Explorer sends it after a copy, so that the file keeps the date it had on the
/// client; as a property only, listings would show the time of the upload instead.
fn win32_modified(ops: &[PropOp]) -> Option<SystemTime> {
    let last = ops.iter().rev().find(|op| {
        let name = op.name();
        name.namespace == MS_NS && name.local == "Win32LastModifiedTime"
    })?;
    match last {
        PropOp::Set(_, value) => httpdate::parse_http_date(value.xml.trim()).ok(),
        PropOp::Remove(_) => None,
    }
}

/// Best effort: the property is stored whatever happens here, and Explorer reports an
/// error for any PROPPATCH that fails.
async fn set_modified(server: &DavServer, req: &DavRequest, modified: SystemTime) {
    match server.storage().set_modified(&req.path, modified).await {
        Ok(()) => {}
        Err(StorageError::Unsupported) => {
            tracing::debug!(path = ?req.path, "this storage keeps no dates set by clients");
        }
        Err(e) => tracing::warn!(
            path = ?req.path,
            error = %e,
            "Win32LastModifiedTime kept as a property only: the date could not be set"
        ),
    }
}

fn group(
    w: &mut MultistatusWriter,
    names: &[&PropName],
    status: StatusCode,
    condition: Option<&Condition>,
) {
    if names.is_empty() {
        return;
    }
    w.begin_propstat();
    for name in names {
        w.prop_empty(name);
    }
    w.end_propstat(status.as_u16(), condition);
}
