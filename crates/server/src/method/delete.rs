//! DELETE (RFC 4918 §9.6): a resource, or a collection with everything below it.
//!
//! - `Depth` on a collection must be infinity (absent means infinity).
//! - When members fail, the answer is 207 listing only those members; what could be
//!   removed is removed (§9.6.1). A failure of the target alone is a plain status.
//! - Dead properties and locks go with the resources they belong to.
//! - A locked member whose token was not submitted stays, reported with 423.

use davit_proto::Depth;
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::precondition::{Change, existing_for, locked_members};
use crate::request::DavRequest;
use crate::tree::{failures_response, forget, lock_guard, remove_tree};

use super::status;

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    if req.path.is_root() {
        return Err(DavError::forbidden("the root collection cannot be deleted"));
    }
    let _gate = server.locks.write_gate().await;
    let meta = existing_for(server, req, Change::Remove).await?;
    if meta.kind.is_collection() && req.depth(Depth::Infinity)? != Depth::Infinity {
        return Err(DavError::bad_request(
            "DELETE of a collection needs Depth: infinity",
        ));
    }
    // Properties make the removal a two-store change: recorded first, so a crash between
    // removing content and its properties is finished at the next start.
    let props = server.props();
    let record = props
        .has_any_tree(&[&req.path])
        .await
        .map_err(DavError::from_storage)?;
    if record {
        props
            .begin_remove(&req.path)
            .await
            .map_err(DavError::from_storage)?;
    }
    let result = if meta.kind.is_collection() {
        delete_collection(server, req).await
    } else {
        match server.storage().remove(&req.path).await {
            Ok(()) => forget(server, std::slice::from_ref(&req.path))
                .await
                .map(|()| status(StatusCode::NO_CONTENT)),
            Err(e) => Err(DavError::from_storage(e)),
        }
    };
    if record {
        props
            .end_remove(&req.path)
            .await
            .map_err(DavError::from_storage)?;
    }
    result
}

async fn delete_collection(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    let locked = locked_members(server, req, &req.path).await?;
    let mut removal = remove_tree(
        server,
        &req.path,
        &lock_guard(&server.config.base_path, &locked),
    )
    .await;
    forget(server, &removal.removed).await?;
    match removal.failures.len() {
        0 => Ok(status(StatusCode::NO_CONTENT)),
        1 if removal.failures[0].path == req.path => Err(removal.failures.remove(0).error),
        _ => Ok(failures_response(
            &server.config.base_path,
            &removal.failures,
        )),
    }
}
