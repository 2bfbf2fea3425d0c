//! Start-up repair after a crash: content and properties live in two stores, and a process
//! killed between changing one and the other leaves them apart. Content is the truth;
//! properties follow it.

use davit_store::StorageError;

use crate::DavServer;

/// What [`DavServer::recover`] repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Moves whose rename happened and whose properties now followed.
    pub moves_finished: usize,
    /// Moves whose rename never happened, forgotten.
    pub moves_abandoned: usize,
    /// Paths whose resource is gone (a DELETE cut short), their properties removed.
    pub orphans_removed: usize,
}

impl DavServer {
    /// Finishes what a crash interrupted: properties of a MOVE whose rename happened follow
    /// the content, and properties of resources that no longer exist are removed (so a new
    /// resource at that path does not inherit them). Run before serving.
    ///
    /// # Errors
    /// When the stores cannot be read or changed.
    pub async fn recover(&self) -> Result<Recovery, StorageError> {
        let (storage, props) = (self.storage(), self.props());
        let mut done = Recovery::default();
        for (src, dst) in props.unfinished_moves().await? {
            let src_there = exists(storage.metadata(&src).await)?;
            let dst_there = exists(storage.metadata(&dst).await)?;
            if !src_there && dst_there {
                props.move_tree(&src, &dst).await?;
                done.moves_finished += 1;
            } else {
                props.abandon_move(&src, &dst).await?;
                done.moves_abandoned += 1;
            }
        }
        for path in props.paths().await? {
            if !exists(storage.metadata(&path).await)? {
                props.remove_tree(&path).await?;
                done.orphans_removed += 1;
            }
        }
        if done != Recovery::default() {
            tracing::warn!(
                moves_finished = done.moves_finished,
                moves_abandoned = done.moves_abandoned,
                orphans_removed = done.orphans_removed,
                "repaired properties left apart from their content by an interrupted run"
            );
        }
        Ok(done)
    }
}

fn exists<T>(r: Result<T, StorageError>) -> Result<bool, StorageError> {
    match r {
        Ok(_) => Ok(true),
        Err(StorageError::NotFound | StorageError::NotACollection) => Ok(false),
        Err(e) => Err(e),
    }
}
