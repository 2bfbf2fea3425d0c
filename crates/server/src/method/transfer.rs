//! What COPY and MOVE share (RFC 4918 §9.8, §9.9): the Destination, Overwrite, the checks
//! on both ends, and clearing an existing destination.

use davit_proto::{Overwrite, ResourcePath, composed};
use davit_store::{Metadata, StorageError};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;
use crate::precondition::{Change, check_conditions, check_write, locked_members, metadata_now};
use crate::request::DavRequest;
use crate::tree::{Failure, failures_response, forget, lock_guard, remove_tree};

use super::status;

/// A checked COPY or MOVE, ready to run.
#[derive(Debug)]
pub(super) struct Transfer {
    pub(super) src: ResourcePath,
    pub(super) src_meta: Metadata,
    pub(super) dst: ResourcePath,
    /// The destination existed (and has been cleared): the answer is 204, not 201.
    pub(super) replaced: bool,
    /// Whether the destination was looked up; see [`Probe`].
    pub(super) probed: bool,
}

/// How [`prepare`] learns whether the destination exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// Looked up first.
    Lookup,
    /// Under `Overwrite: F`, left to the rename, which refuses an existing destination by
    /// itself: a path walk less for the usual MOVE. The answers stay those of a lookup;
    /// whatever cannot rename in one step looks the destination up after all.
    Rename,
}

/// Parses and checks the request, then clears an existing destination when `Overwrite`
/// allows. `Err(Ok(resp))` is a complete answer (a 207 from clearing the destination).
/// `src_meta` is the source's metadata if the caller has looked it up.
pub(super) async fn prepare(
    server: &DavServer,
    req: &DavRequest,
    probe: Probe,
    src_meta: Option<Metadata>,
) -> Result<Result<Transfer, Response<DavBody>>, DavError> {
    let dest = req.destination(&server.config.base_path)?;
    let overwrite = req.overwrite()?;
    let src = req.path.clone();
    let dst = dest.path;
    let src_meta = match src_meta {
        Some(meta) => meta,
        None => server
            .storage()
            .metadata(&src)
            .await
            .map_err(DavError::from_storage)?,
    };
    check_conditions(req, Some(&src_meta))?;

    if dst == src {
        return Err(DavError::forbidden(
            "source and destination are the same resource",
        ));
    }
    if dst.starts_with(&src) {
        return Err(DavError::forbidden(
            "the destination lies inside the source",
        ));
    }
    let probed = probe == Probe::Lookup || overwrite != Overwrite::Forbid;
    let dst_meta = if probed {
        metadata_now(server, &dst).await?
    } else {
        None
    };
    // An ancestor of the source exists, so unprobed it is refused here as probed below.
    if (dst_meta.is_some() || !probed && src.starts_with(&dst)) && overwrite == Overwrite::Forbid {
        return Err(destination_exists());
    }
    if src.starts_with(&dst) {
        return Err(DavError::forbidden(
            "overwriting the destination would destroy the source",
        ));
    }
    let parent = dst
        .parent()
        .ok_or_else(|| DavError::forbidden("the root cannot be replaced"))?;
    // The source's own folder needs no lookup: the source was just found in it.
    if src.parent().as_ref() != Some(&parent) {
        match server.storage().metadata(&parent).await {
            Ok(m) if m.kind.is_collection() => {}
            Ok(_) | Err(StorageError::NotFound) => {
                return Err(DavError::conflict(
                    "the destination's parent collection does not exist",
                ));
            }
            Err(e) => return Err(DavError::from_storage(e)),
        }
    }
    let change = if dst_meta.is_some() {
        Change::Remove
    } else {
        Change::Create
    };
    // Creating and replacing pass the same lock checks, but a probe would have answered
    // an existing destination with 412 before them.
    if let Err(e) = check_write(server, req, &dst, dst_meta.as_ref(), change).await {
        if !probed && metadata_now(server, &dst).await?.is_some() {
            return Err(destination_exists());
        }
        return Err(e);
    }

    if let Some(meta) = &dst_meta
        && names_the_source(&src, &src_meta, &dst, meta)
    {
        // Clearing the destination would delete the source: its only copy.
        return Err(DavError::forbidden(
            "the destination names the source itself: this storage does not tell the two \
             names apart (it ignores case)",
        ));
    }
    let mut replaced = dst_meta.is_some();
    if let Some(meta) = dst_meta {
        // Boxed: the usual transfer has no destination to clear, nor this future's size.
        match Box::pin(clear(server, req, &dst, &meta)).await? {
            Ok(Cleared::Removed) => {}
            Ok(Cleared::AlreadyGone) => replaced = false,
            Err(resp) => return Ok(Err(resp)),
        }
    }
    Ok(Ok(Transfer {
        src,
        src_meta,
        dst,
        replaced,
        probed,
    }))
}

/// Whether an existing destination is the source under another name on storage that does
/// not tell names apart by case or Unicode form (vfat, exFAT, SMB shares, ext4 casefold
/// folders). The same object (entity tags are per object) at names that differ only so.
/// A hard link at a name that differs otherwise is another resource, and is replaced.
fn names_the_source(
    src: &ResourcePath,
    src_meta: &Metadata,
    dst: &ResourcePath,
    dst_meta: &Metadata,
) -> bool {
    let fold = |p: &ResourcePath| composed(&p.as_str().to_lowercase()).into_owned();
    dst_meta.etag == src_meta.etag && fold(src) == fold(dst)
}

/// For a transfer prepared without a probe, before anything that does not refuse an
/// existing destination by itself: 412 if there is one.
pub(super) async fn probe_late(server: &DavServer, t: &Transfer) -> Result<(), DavError> {
    if !t.probed && metadata_now(server, &t.dst).await?.is_some() {
        return Err(destination_exists());
    }
    Ok(())
}

fn destination_exists() -> DavError {
    DavError::precondition_failed("the destination exists and Overwrite is F")
}

/// What clearing the destination found.
enum Cleared {
    Removed,
    /// Removed from the folder directly between the look-up and the clearing: nothing to
    /// replace. (Other requests wait at the write gate.)
    AlreadyGone,
}

/// Removes the destination before it is replaced (RFC 4918 §9.8.4: as if by DELETE).
async fn clear(
    server: &DavServer,
    req: &DavRequest,
    dst: &ResourcePath,
    meta: &Metadata,
) -> Result<Result<Cleared, Response<DavBody>>, DavError> {
    if !meta.kind.is_collection() {
        let cleared = match server.storage().remove(dst).await {
            Ok(()) => Cleared::Removed,
            Err(StorageError::NotFound) => Cleared::AlreadyGone,
            Err(e) => return Err(DavError::from_storage(e)),
        };
        forget(server, std::slice::from_ref(dst)).await?;
        return Ok(Ok(cleared));
    }
    let locked = locked_members(server, req, dst).await?;
    let mut removal =
        remove_tree(server, dst, &lock_guard(&server.config.base_path, &locked)).await;
    forget(server, &removal.removed).await?;
    match removal.failures.len() {
        0 => Ok(Ok(Cleared::Removed)),
        1 if removal.failures[0].path == *dst => {
            let failure = removal.failures.remove(0);
            if failure.error.status() == StatusCode::NOT_FOUND {
                forget(server, std::slice::from_ref(dst)).await?;
                return Ok(Ok(Cleared::AlreadyGone));
            }
            Err(failure.error)
        }
        _ => Ok(Err(failures_response(
            &server.config.base_path,
            &removal.failures,
        ))),
    }
}

/// The answer once the transfer ran: 201 or 204, or 207 with the members that failed.
pub(super) fn finish(server: &DavServer, t: &Transfer, failures: &[Failure]) -> Response<DavBody> {
    if !failures.is_empty() {
        return failures_response(&server.config.base_path, failures);
    }
    status(if t.replaced {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

/// Storage errors on the destination side, with the statuses RFC 4918 §9.8.5 gives them.
pub(super) fn destination_error(e: StorageError) -> DavError {
    match e {
        StorageError::ParentMissing | StorageError::NotACollection => {
            DavError::conflict("the destination's parent collection does not exist")
        }
        StorageError::AlreadyExists => DavError::precondition_failed("the destination exists"),
        e => DavError::from_storage(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use davit_proto::{ETag, ResourceKind};

    use super::*;

    fn meta(tag: &str) -> Metadata {
        Metadata {
            kind: ResourceKind::File,
            len: 1,
            modified: SystemTime::UNIX_EPOCH,
            created: None,
            etag: ETag::strong(tag.to_owned()),
        }
    }

    #[test]
    fn only_the_same_object_under_a_folded_name_is_the_source() {
        let path = |s: &str| ResourcePath::parse(s).unwrap();
        for (src, src_tag, dst, dst_tag, same) in [
            ("/a.txt", "1", "/A.TXT", "1", true),
            ("/Docs/a", "1", "/docs/A", "1", true),
            // Composed and decomposed é.
            ("/caf\u{e9}", "1", "/CAFE\u{301}", "1", true),
            // Another object at a name that folds the same: a case-sensitive folder.
            ("/a.txt", "1", "/A.txt", "2", false),
            // A hard link elsewhere is another resource.
            ("/a.txt", "1", "/b.txt", "1", false),
            ("/a/x", "1", "/b/x", "1", false),
        ] {
            assert_eq!(
                names_the_source(&path(src), &meta(src_tag), &path(dst), &meta(dst_tag)),
                same,
                "{src} {dst}"
            );
        }
    }
}
