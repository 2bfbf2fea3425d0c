//! PROPPATCH (RFC 4918 §9.2): set and remove dead properties, all or nothing.
//!
//! - Instructions apply in document order, in one store transaction.
//! - A protected live property fails with 403 `cannot-modify-protected-property`; then
//!   nothing is applied and every other property reports 424.
//! - Removing a property that does not exist succeeds.

use davit_proto::{Condition, MultistatusWriter, PropName, PropertyUpdate};
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

    // Each property once, in the order first named.
    let mut names: Vec<&PropName> = Vec::new();
    for op in &update.ops {
        if !names.contains(&op.name()) {
            names.push(op.name());
        }
    }
    let protected: Vec<&PropName> = names.iter().copied().filter(|n| is_protected(n)).collect();

    let mut w = MultistatusWriter::new();
    w.begin_response(&req.path, meta.kind);
    if protected.is_empty() {
        let status = match server.props().apply(&req.path, &update.ops).await {
            Ok(()) => StatusCode::OK,
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
