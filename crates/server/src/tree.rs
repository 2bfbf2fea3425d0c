//! Walks over collections for DELETE, COPY and MOVE, member by member, collecting the
//! members that failed so the method can answer 207 with exactly those (RFC 4918 §9.6.1,
//! §9.8.8, §9.9.4). Ancestors that could not be removed because a member stayed are not
//! reported: their failure follows from the member's (no 424 in the 207).

use std::collections::HashSet;

use davit_proto::{BasePath, Depth, MultistatusWriter, ResourceKind, ResourcePath};
use davit_store::{Entry, StorageError};
use http::{Response, StatusCode};

use crate::DavServer;
use crate::body::DavBody;
use crate::error::DavError;

/// A member that could not be deleted, copied or moved.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) path: ResourcePath,
    pub(crate) kind: ResourceKind,
    pub(crate) error: DavError,
}

impl Failure {
    fn storage(path: ResourcePath, kind: ResourceKind, err: StorageError) -> Self {
        Failure {
            path,
            kind,
            error: DavError::from_storage(err),
        }
    }
}

/// Drops the dead properties and locks of removed resources (and everything below them).
pub(crate) async fn forget(server: &DavServer, removed: &[ResourcePath]) -> Result<(), DavError> {
    for path in removed {
        server
            .props()
            .remove_tree(path)
            .await
            .map_err(DavError::from_storage)?;
        server.locks.remove_tree(path).await?;
    }
    Ok(())
}

/// Drops the dead properties left at `path` by a resource removed straight from the folder,
/// behind Davit's back: a resource created there starts with none. Those of a MOVE cut
/// short after its rename follow the moved content first. Called under the write gate.
pub(crate) async fn forget_stale(server: &DavServer, path: &ResourcePath) -> Result<(), DavError> {
    let props = server.props();
    let left = || async {
        props
            .has_any_tree(&[path])
            .await
            .map_err(DavError::from_storage)
    };
    // The usual case, a free name: one look-up.
    if !left().await? {
        return Ok(());
    }
    let (done, moved) = server
        .finish_moves(Some(path))
        .await
        .map_err(DavError::from_storage)?;
    for src in &moved {
        server.locks.remove_tree(src).await?;
    }
    if !moved.is_empty() || done.moves_abandoned > 0 {
        tracing::warn!(
            moves_finished = done.moves_finished,
            moves_abandoned = done.moves_abandoned,
            "finished moves whose properties had not followed their content"
        );
    }
    // Asked again: the moves finished may have taken them away.
    if left().await? {
        props
            .remove_tree(path)
            .await
            .map_err(DavError::from_storage)?;
    }
    Ok(())
}

/// A 207 listing each failed member with its status, condition and reason.
pub(crate) fn failures_response(base: &BasePath, failures: &[Failure]) -> Response<DavBody> {
    let mut w = MultistatusWriter::new(base);
    for f in failures {
        w.status_response(
            &f.path,
            f.kind,
            f.error.status().as_u16(),
            f.error.condition(),
            Some(f.error.reason()),
        );
    }
    w.finish();
    multistatus(DavBody::full(w.take()))
}

/// A 207 response with the given body.
pub(crate) fn multistatus(body: DavBody) -> Response<DavBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::MULTI_STATUS;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    resp
}

/// What a walk does with one member before touching it.
#[derive(Debug)]
pub(crate) enum Guard {
    /// Go ahead.
    Proceed,
    /// Leave it (and so its ancestors) in place, without reporting it.
    Keep,
    /// Leave it in place and report this error for it.
    Fail(DavError),
}

/// Decides per member (path and kind) what a walk does.
pub(crate) type GuardFn<'a> = &'a (dyn Fn(&ResourcePath, ResourceKind) -> Guard + Sync);

/// A guard that lets everything through.
pub(crate) fn proceed(_: &ResourcePath, _: ResourceKind) -> Guard {
    Guard::Proceed
}

/// A guard that fails the members in `locked` with 423 and lets the rest through.
pub(crate) fn lock_guard<'a>(
    base: &'a BasePath,
    locked: &'a HashSet<ResourcePath>,
) -> impl Fn(&ResourcePath, ResourceKind) -> Guard + Sync + 'a {
    move |path, kind| {
        if locked.contains(path) {
            Guard::Fail(crate::precondition::locked(vec![
                base.href(path, kind).to_string(),
            ]))
        } else {
            Guard::Proceed
        }
    }
}

fn kind_of(entry: &Entry) -> ResourceKind {
    entry
        .metadata
        .as_ref()
        .map_or(ResourceKind::File, |m| m.kind)
}

/// The result of removing a tree.
#[derive(Debug, Default)]
pub(crate) struct Removal {
    /// Members that could not be removed.
    pub(crate) failures: Vec<Failure>,
    /// The topmost paths removed with everything below them: when the whole tree went,
    /// just the root.
    pub(crate) removed: Vec<ResourcePath>,
}

struct Frame {
    path: ResourcePath,
    members: std::vec::IntoIter<Entry>,
    complete: bool,
    /// Length of `removed` when this collection was entered: on success, the paths removed
    /// below it since then collapse into the collection itself.
    mark: usize,
}

/// Removes the collection `root` and everything below it, depth first.
pub(crate) async fn remove_tree(
    server: &DavServer,
    root: &ResourcePath,
    guard: GuardFn<'_>,
) -> Removal {
    let storage = server.storage();
    let mut out = Removal::default();
    match guard(root, ResourceKind::Collection) {
        Guard::Proceed => {}
        Guard::Keep => return out,
        Guard::Fail(error) => {
            out.failures.push(Failure {
                path: root.clone(),
                kind: ResourceKind::Collection,
                error,
            });
            return out;
        }
    }
    let members = match storage.list(root).await {
        Ok(m) => m,
        Err(e) => {
            out.failures
                .push(Failure::storage(root.clone(), ResourceKind::Collection, e));
            return out;
        }
    };
    let mut stack = vec![Frame {
        path: root.clone(),
        members: members.into_iter(),
        complete: true,
        mark: 0,
    }];
    while let Some(top) = stack.last_mut() {
        let Some(entry) = top.members.next() else {
            let frame = stack.pop().expect("the loop holds a frame");
            let mut gone = frame.complete;
            if gone {
                match storage.remove(&frame.path).await {
                    Ok(()) | Err(StorageError::NotFound) => {}
                    Err(e) => {
                        gone = false;
                        out.failures.push(Failure::storage(
                            frame.path.clone(),
                            ResourceKind::Collection,
                            e,
                        ));
                    }
                }
            }
            if gone {
                out.removed.truncate(frame.mark);
                out.removed.push(frame.path);
            } else if let Some(parent) = stack.last_mut() {
                parent.complete = false;
            }
            continue;
        };
        let kind = kind_of(&entry);
        let Ok(child) = top.path.join(&entry.name) else {
            top.complete = false;
            continue;
        };
        match guard(&child, kind) {
            Guard::Proceed => {}
            Guard::Keep => {
                top.complete = false;
                continue;
            }
            Guard::Fail(error) => {
                top.complete = false;
                out.failures.push(Failure {
                    path: child,
                    kind,
                    error,
                });
                continue;
            }
        }
        if kind.is_collection() {
            match storage.list(&child).await {
                Ok(members) => {
                    let mark = out.removed.len();
                    stack.push(Frame {
                        path: child,
                        members: members.into_iter(),
                        complete: true,
                        mark,
                    });
                }
                Err(StorageError::NotFound) => {}
                Err(e) => {
                    top.complete = false;
                    out.failures.push(Failure::storage(child, kind, e));
                }
            }
        } else {
            match storage.remove(&child).await {
                Ok(()) => out.removed.push(child),
                Err(StorageError::NotFound) => {}
                Err(e) => {
                    top.complete = false;
                    out.failures.push(Failure::storage(child, kind, e));
                }
            }
        }
    }
    out
}

/// Copies the dead properties of `src` and below to `dst`, then drops those of `not_copied`
/// (destination paths whose content was not copied): properties must not outlive content.
pub(crate) async fn copy_props(
    server: &DavServer,
    src: &ResourcePath,
    dst: &ResourcePath,
    not_copied: &[ResourcePath],
) -> Result<(), DavError> {
    let props = server.props();
    props
        .copy_tree(src, dst)
        .await
        .map_err(DavError::from_storage)?;
    for path in not_copied {
        props
            .remove_tree(path)
            .await
            .map_err(DavError::from_storage)?;
    }
    Ok(())
}

/// Copies the members of collection `src` into the existing collection `dst` (all the way
/// down for `Depth::Infinity`, none for `Depth::Zero`). Failures name destination paths;
/// `guard` is asked about each source member first (a failing guard names the source).
pub(crate) async fn copy_members(
    server: &DavServer,
    src: &ResourcePath,
    dst: &ResourcePath,
    depth: Depth,
    guard: GuardFn<'_>,
) -> Vec<Failure> {
    let storage = server.storage();
    let mut failures = Vec::new();
    if depth == Depth::Zero {
        return failures;
    }
    let mut work = vec![(src.clone(), dst.clone())];
    while let Some((from_dir, to_dir)) = work.pop() {
        let members = match storage.list(&from_dir).await {
            Ok(m) => m,
            Err(e) => {
                failures.push(Failure::storage(to_dir, ResourceKind::Collection, e));
                continue;
            }
        };
        for entry in members {
            let kind = kind_of(&entry);
            let (Ok(from), Ok(to)) = (from_dir.join(&entry.name), to_dir.join(&entry.name)) else {
                continue;
            };
            match guard(&from, kind) {
                Guard::Proceed => {}
                Guard::Keep => continue,
                Guard::Fail(error) => {
                    failures.push(Failure {
                        path: from,
                        kind,
                        error,
                    });
                    continue;
                }
            }
            if kind.is_collection() {
                match storage.create_collection(&to).await {
                    Ok(()) => work.push((from, to)),
                    Err(e) => failures.push(Failure::storage(to, kind, e)),
                }
            } else if let Err(e) = storage.copy_file(&from, &to).await {
                failures.push(Failure::storage(to, kind, e));
            }
        }
    }
    failures
}
