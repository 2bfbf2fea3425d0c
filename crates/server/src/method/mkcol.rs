//! MKCOL (RFC 4918 §9.3): create a collection.
//!
//! - A body is refused with 415: Davit implements no MKCOL body format.
//! - An existing resource at the URL is 405; a missing parent is 409.

use davit_proto::ResourceKind;
use davit_store::StorageError;
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::precondition::{Change, check_write, metadata_now};
use crate::request::{Body, DavRequest, read_body};
use crate::tree::forget_stale;

use super::{allow_for, status};

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
    body: &mut Body,
) -> Result<Response<DavBody>, DavError> {
    // A few bytes are enough to tell whether there is a body; a longer one is refused too.
    let has_body = match read_body(&req.parts, body.take(), 64).await {
        Ok(bytes) => !bytes.is_empty(),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => true,
        Err(e) => return Err(e),
    };
    if has_body {
        return Err(DavError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "MKCOL with a request body is not supported",
        ));
    }
    let _gate = server.locks.write_gate().await;
    if let Some(meta) = metadata_now(server, &req.path).await? {
        return Err(exists(meta.kind));
    }
    check_write(server, req, &req.path, None, Change::Create).await?;
    match server.storage().create_collection(&req.path).await {
        Ok(()) => {}
        // Made directly in the folder since the look-up above.
        Err(StorageError::AlreadyExists) => {
            let kind = metadata_now(server, &req.path).await?.map(|m| m.kind);
            return Err(exists(kind.unwrap_or(ResourceKind::File)));
        }
        Err(
            StorageError::ParentMissing | StorageError::NotACollection | StorageError::NotFound,
        ) => return Err(DavError::conflict("the parent collection does not exist")),
        Err(e) => return Err(DavError::from_storage(e)),
    }
    forget_stale(server, &req.path).await?;
    Ok(status(StatusCode::CREATED))
}

/// 405 for a MKCOL where a resource of `kind` exists.
fn exists(kind: ResourceKind) -> DavError {
    DavError::method_not_allowed(
        "a resource already exists at this URL",
        allow_for(Some(kind), false),
    )
}
