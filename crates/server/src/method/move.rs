//! MOVE (RFC 4918 §9.9): rename a resource or a collection with everything below it, with
//! its dead properties.
//!
//! - Depth must be infinity (absent means infinity).
//! - Storage renames atomically where it can; otherwise members are copied and removed one
//!   by one, and members that could not be moved stay at the source, reported in a 207.

use std::collections::HashSet;

use davit_proto::{Depth, ResourcePath};
use davit_store::StorageError;
use http::Response;

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::request::DavRequest;
use crate::tree::{Guard, copy_members, remove_tree};

use super::transfer::{Transfer, destination_error, finish, prepare};

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    if req.depth(Depth::Infinity)? != Depth::Infinity {
        return Err(DavError::bad_request("MOVE takes Depth infinity only"));
    }
    let meta = server
        .storage()
        .metadata(&req.path)
        .await
        .map_err(DavError::from_storage)?;
    crate::precondition::check_write(server, req, &req.path, Some(&meta)).await?;
    let t = match prepare(server, req).await? {
        Ok(t) => t,
        Err(resp) => return Ok(resp),
    };
    match server.storage().rename(&t.src, &t.dst).await {
        Ok(()) => {
            server
                .props()
                .move_tree(&t.src, &t.dst)
                .await
                .map_err(DavError::from_storage)?;
            Ok(finish(&t, &[]))
        }
        Err(StorageError::Unsupported) => move_by_copy(server, &t).await,
        Err(e) => Err(destination_error(e)),
    }
}

/// The fallback for storage that cannot rename: copy, then remove what was copied.
async fn move_by_copy(server: &DavServer, t: &Transfer) -> Result<Response<DavBody>, DavError> {
    let (storage, props) = (server.storage(), server.props());
    if !t.src_meta.kind.is_collection() {
        storage
            .copy_file(&t.src, &t.dst)
            .await
            .map_err(destination_error)?;
        storage
            .remove(&t.src)
            .await
            .map_err(DavError::from_storage)?;
        props
            .move_tree(&t.src, &t.dst)
            .await
            .map_err(DavError::from_storage)?;
        return Ok(finish(t, &[]));
    }
    storage
        .create_collection(&t.dst)
        .await
        .map_err(destination_error)?;
    let mut failures = copy_members(server, &t.src, &t.dst, Depth::Infinity).await;
    props
        .copy_tree(&t.src, &t.dst)
        .await
        .map_err(DavError::from_storage)?;
    for f in &failures {
        props
            .remove_tree(&f.path)
            .await
            .map_err(DavError::from_storage)?;
    }
    // What could not be copied stays at the source, with its ancestors.
    let stay: HashSet<ResourcePath> = failures
        .iter()
        .filter_map(|f| f.path.rebase(&t.dst, &t.src))
        .collect();
    let guard = |p: &ResourcePath| {
        if stay.contains(p) {
            Guard::Keep
        } else {
            Guard::Proceed
        }
    };
    let removal = remove_tree(server, &t.src, &guard).await;
    for root in &removal.removed {
        props
            .remove_tree(root)
            .await
            .map_err(DavError::from_storage)?;
    }
    failures.extend(removal.failures);
    Ok(finish(t, &failures))
}
