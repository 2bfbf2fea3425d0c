//! Start-up repair after a crash: content and properties live in two stores, and a process
//! killed between changing one and the other leaves them apart. MOVE and DELETE record what
//! they are about to do (when the tree has properties); this finishes or forgets each
//! record by looking at where the content is. Content is the truth; properties follow it.
//! Nothing else is swept: properties of a path that merely looks absent (a folder not
//! mounted yet, a link that dangles for now) are never touched.

use davit_proto::ResourcePath;
use davit_store::StorageError;

use crate::DavServer;

/// What [`DavServer::recover`] repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Moves whose rename happened and whose properties now followed.
    pub moves_finished: usize,
    /// Moves whose rename never happened, forgotten.
    pub moves_abandoned: usize,
    /// Paths whose content a cut-short DELETE removed, their properties now removed too.
    pub removals_finished: usize,
    /// Records left for the next start because the content could not be looked at.
    pub deferred: usize,
}

impl DavServer {
    /// Finishes what a crash interrupted. Run before serving.
    ///
    /// # Errors
    /// When the property store cannot be read or changed. Content that cannot be looked
    /// at (permissions, I/O errors) defers its record to the next start instead.
    pub async fn recover(&self) -> Result<Recovery, StorageError> {
        let (mut done, moved) = self.finish_moves(None).await?;
        // Not through the lock manager: nothing is served yet, nothing mirrored.
        for src in &moved {
            self.backends.locks.remove_tree(src).await?;
        }
        let props = self.props();
        let removals = props.unfinished_removes().await?;
        if !removals.is_empty() {
            let with_props = props.paths().await?;
            for root in removals {
                let mut complete = true;
                for path in with_props.iter().filter(|p| p.starts_with(&root)) {
                    match self.exists(path).await {
                        Some(false) => {
                            props.remove_tree(path).await?;
                            self.backends.locks.remove_tree(path).await?;
                            done.removals_finished += 1;
                        }
                        Some(true) => {}
                        None => complete = false,
                    }
                }
                if complete {
                    props.end_remove(&root).await?;
                } else {
                    done.deferred += 1;
                }
            }
        }
        if done != Recovery::default() {
            tracing::warn!(
                moves_finished = done.moves_finished,
                moves_abandoned = done.moves_abandoned,
                removals_finished = done.removals_finished,
                deferred = done.deferred,
                "repaired properties left apart from their content by an interrupted run"
            );
        }
        Ok(done)
    }

    /// Finishes or forgets the moves on record; the sources of those finished, whose locks
    /// the caller removes (MOVE leaves locks behind; left, they would refuse what is created
    /// at the old path). Besides at start, when a request has created `fresh` where
    /// properties remain: a MOVE whose property move failed after its rename left them
    /// there, and they belong to the content it moved. Called with no MOVE in progress
    /// (under the write gate), so every record is a leftover.
    pub(crate) async fn finish_moves(
        &self,
        fresh: Option<&ResourcePath>,
    ) -> Result<(Recovery, Vec<ResourcePath>), StorageError> {
        let props = self.props();
        let mut done = Recovery::default();
        let mut moved = Vec::new();
        let moves = props.unfinished_moves().await?;
        for (i, (src, dst)) in moves.iter().enumerate() {
            // A later move may have carried the destination on (MOVE /a to /b/x, then /b
            // to /c): look for the content where those moves put it.
            let landed = moves[i + 1..].iter().fold(dst.clone(), |at, (from, to)| {
                at.rebase(from, to).unwrap_or(at)
            });
            // What the caller just created is new: whatever a move took from there is not.
            let at_src = if fresh.is_some_and(|f| src.starts_with(f)) {
                Some(false)
            } else {
                self.exists(src).await
            };
            match (at_src, self.exists(&landed).await) {
                (Some(false), Some(true)) => {
                    // Applied in order, so the later move carries these properties on.
                    props.move_tree(src, dst).await?;
                    moved.push(src.clone());
                    done.moves_finished += 1;
                }
                (Some(_), Some(_)) => {
                    props.abandon_move(src, dst).await?;
                    done.moves_abandoned += 1;
                }
                _ => done.deferred += 1,
            }
        }
        Ok((done, moved))
    }

    /// Whether content exists at `path`; `None` when that cannot be told.
    async fn exists(&self, path: &ResourcePath) -> Option<bool> {
        match self.storage().metadata(path).await {
            Ok(_) => Some(true),
            Err(StorageError::NotFound | StorageError::NotACollection) => Some(false),
            Err(e) => {
                tracing::warn!(path = ?path, error = %e, "cannot look at content to repair its properties");
                None
            }
        }
    }
}
