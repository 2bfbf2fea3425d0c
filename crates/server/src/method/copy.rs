//! COPY (RFC 4918 §9.8): duplicate a resource, or a collection to Depth 0 or infinity, with
//! its dead properties. Locks are never copied, and a locked source may be copied.

use davit_proto::{Depth, PropOp};
use davit_store::StorageError;
use http::Response;

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::request::DavRequest;
use crate::tree::{copy_members, copy_props, forget_stale, proceed};

use super::transfer::{Probe, destination_error, finish, prepare};

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    let depth = req.depth(Depth::Infinity)?;
    if depth == Depth::One {
        return Err(DavError::bad_request("COPY takes Depth 0 or infinity"));
    }
    let _gate = server.locks.write_gate().await;
    let t = match prepare(server, req, Probe::Lookup, None).await? {
        Ok(t) => t,
        Err(resp) => return Ok(resp),
    };
    let (storage, props) = (server.storage(), server.props());
    if !t.src_meta.kind.is_collection() {
        storage
            .copy_file(&t.src, &t.dst)
            .await
            .map_err(destination_error)?;
        props
            .copy_tree(&t.src, &t.dst)
            .await
            .map_err(DavError::from_storage)?;
        return Ok(finish(server, &t, &[]));
    }
    if depth == Depth::Infinity {
        match storage.copy_tree(&t.src, &t.dst).await {
            Ok(()) => {
                props
                    .copy_tree(&t.src, &t.dst)
                    .await
                    .map_err(DavError::from_storage)?;
                return Ok(finish(server, &t, &[]));
            }
            // Not supported, or something failed (and nothing was left): go member by
            // member, which says which members fail.
            Err(StorageError::Unsupported) => {}
            Err(e) => tracing::debug!(src = ?t.src, error = %e, "tree copy fell back to members"),
        }
    }
    storage
        .create_collection(&t.dst)
        .await
        .map_err(destination_error)?;
    let failures = copy_members(server, &t.src, &t.dst, depth, &proceed).await;
    if depth == Depth::Infinity {
        let not_copied: Vec<_> = failures.iter().map(|f| f.path.clone()).collect();
        copy_props(server, &t.src, &t.dst, &not_copied).await?;
    } else {
        if !t.replaced {
            forget_stale(server, &t.dst).await?;
        }
        let own: Vec<PropOp> = props
            .get_all(&t.src)
            .await
            .map_err(DavError::from_storage)?
            .into_iter()
            .map(|(n, v)| PropOp::Set(n, v))
            .collect();
        if !own.is_empty() {
            props
                .apply(&t.dst, &own)
                .await
                .map_err(DavError::from_storage)?;
        }
    }
    Ok(finish(server, &t, &failures))
}
