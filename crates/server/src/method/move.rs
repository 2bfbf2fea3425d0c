//! MOVE (RFC 4918 §9.9): rename a resource or a collection with everything below it, with
//! its dead properties. Locks stay behind: those of the moved resources are removed.
//!
//! - Depth must be infinity (absent means infinity).
//! - Storage renames atomically where it can; otherwise, or when a member is locked and its
//!   token was not submitted, members are copied and removed one by one, and members that
//!   could not be moved stay at the source, reported in a 207.

use std::collections::HashSet;

use davit_proto::{Depth, ResourceKind, ResourcePath};
use davit_store::StorageError;
use http::Response;

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::precondition::{Change, existing_for, locked_members};
use crate::request::DavRequest;
use crate::tree::{Guard, copy_members, copy_props, forget, lock_guard, remove_tree};

use super::transfer::{Probe, Transfer, destination_error, finish, prepare, probe_late};

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
) -> Result<Response<DavBody>, DavError> {
    if req.depth(Depth::Infinity)? != Depth::Infinity {
        return Err(DavError::bad_request("MOVE takes Depth infinity only"));
    }
    // Alone: a write beside it (a PROPPATCH below the source, another MOVE into it)
    // could commit at the old path after the rename and the property move, and be lost.
    let _gate = server.locks.sole_gate().await;
    let meta = existing_for(server, req, Change::Remove).await?;
    let locked = if meta.kind.is_collection() {
        locked_members(server, req, &req.path).await?
    } else {
        HashSet::new()
    };
    let t = match prepare(server, req, Probe::Rename, Some(meta)).await? {
        Ok(t) => t,
        Err(resp) => return Ok(resp),
    };
    // Boxed where called: the usual MOVE renames, and would otherwise carry this future's
    // size through every poll and copy of its own.
    if !locked.is_empty() {
        return Box::pin(move_by_copy(server, &t, &locked)).await;
    }
    // Properties to carry make the move a two-store change: recorded first, so a crash
    // between the rename and the property move is finished at the next start.
    let props = server.props();
    // Stale properties at the destination (content deleted behind Davit's back) count
    // too: the property move clears them.
    let carry = props
        .has_any_tree(&[&t.src, &t.dst])
        .await
        .map_err(DavError::from_storage)?;
    if carry {
        props
            .begin_move(&t.src, &t.dst)
            .await
            .map_err(DavError::from_storage)?;
    }
    let renamed = server.storage().rename(&t.src, &t.dst).await;
    let landed = match &renamed {
        Ok(()) => true,
        Err(StorageError::Unsupported) => false,
        // A rename reported failed may still have happened (the folders' sync after it
        // failed): the properties and locks follow where the content is.
        Err(_) => moved_anyway(server, &t).await,
    };
    if landed {
        // Locks first: left behind, they would guard whatever is created at the old path.
        server.locks.remove_tree(&t.src).await?;
        if carry {
            props
                .move_tree(&t.src, &t.dst)
                .await
                .map_err(DavError::from_storage)?;
        }
        return renamed
            .map(|()| finish(server, &t, &[]))
            .map_err(destination_error);
    }
    if carry {
        props
            .abandon_move(&t.src, &t.dst)
            .await
            .map_err(DavError::from_storage)?;
    }
    match renamed {
        Err(StorageError::Unsupported) => Box::pin(move_by_copy(server, &t, &locked)).await,
        Err(e) => Err(destination_error(e)),
        // Every rename that went through has landed, and was answered above.
        Ok(()) => Ok(finish(server, &t, &[])),
    }
}

/// Whether the content left the source for the destination.
async fn moved_anyway(server: &DavServer, t: &Transfer) -> bool {
    let storage = server.storage();
    matches!(
        storage.metadata(&t.src).await,
        Err(StorageError::NotFound | StorageError::NotACollection)
    ) && storage.metadata(&t.dst).await.is_ok()
}

/// Copy, then remove what was copied: for storage that cannot rename, and for trees with
/// locked members, which must stay where they are.
async fn move_by_copy(
    server: &DavServer,
    t: &Transfer,
    locked: &HashSet<ResourcePath>,
) -> Result<Response<DavBody>, DavError> {
    probe_late(server, t).await?;
    let storage = server.storage();
    if !t.src_meta.kind.is_collection() {
        storage
            .copy_file(&t.src, &t.dst)
            .await
            .map_err(destination_error)?;
        // The properties reach the copy before the source goes: a crash between the two
        // steps leaves them on both, never on neither.
        copy_props(server, &t.src, &t.dst, &[]).await?;
        storage
            .remove(&t.src)
            .await
            .map_err(DavError::from_storage)?;
        forget(server, std::slice::from_ref(&t.src)).await?;
        return Ok(finish(server, t, &[]));
    }
    storage
        .create_collection(&t.dst)
        .await
        .map_err(destination_error)?;
    // Locked members are not copied; the removal below reports them.
    let skip_locked = |p: &ResourcePath, _: ResourceKind| {
        if locked.contains(p) {
            Guard::Keep
        } else {
            Guard::Proceed
        }
    };
    let mut failures = copy_members(server, &t.src, &t.dst, Depth::Infinity, &skip_locked).await;
    // Locked members stayed; neither they nor what failed may carry properties over.
    let not_copied: Vec<_> = failures
        .iter()
        .map(|f| f.path.clone())
        .chain(locked.iter().filter_map(|p| p.rebase(&t.src, &t.dst)))
        .collect();
    copy_props(server, &t.src, &t.dst, &not_copied).await?;
    // What could not be copied stays at the source, with its ancestors.
    let stay: HashSet<ResourcePath> = failures
        .iter()
        .filter_map(|f| f.path.rebase(&t.dst, &t.src))
        .collect();
    let is_locked = lock_guard(&server.config.base_path, locked);
    let guard = |p: &ResourcePath, kind: ResourceKind| {
        if stay.contains(p) {
            Guard::Keep
        } else {
            is_locked(p, kind)
        }
    };
    let removal = remove_tree(server, &t.src, &guard).await;
    forget(server, &removal.removed).await?;
    failures.extend(removal.failures);
    Ok(finish(server, t, &failures))
}
