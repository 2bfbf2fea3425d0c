//! PROPFIND (RFC 4918 §9.1): properties of a resource and, by Depth, of its members.
//!
//! - Depth absent means infinity. Infinity is served up to a configured number of entries,
//!   else refused with 403 `propfind-finite-depth` before anything is sent.
//! - A missing target is a plain 404; below it, a member whose metadata cannot be read gets
//!   its own `response` with its status while the others are answered.
//! - The multistatus is written as the tree is walked and streamed in chunks through a
//!   bounded channel, so memory stays bounded whatever the tree's size.
//! - Dead properties of all members of a collection come from one store query.
//! - Files whose names are hidden (`--hide`) are left out.

use std::collections::HashMap;
use std::io;
use std::time::SystemTime;

use bytes::Bytes;
use davit_proto::{
    BasePath, Condition, Depth, MultistatusWriter, PropFind, PropName, PropValue, ResourceKind,
    ResourcePath,
};
use davit_store::{Entry, Lock, Metadata, Space, StorageError};
use http::{Response, StatusCode};
use tokio::sync::mpsc;

use crate::body::DavBody;
use crate::error::DavError;
use crate::live_prop::{self, LIVE_PROPS, Resource};
use crate::lock::covers;
use crate::request::{Body, DavRequest, read_body};
use crate::tree::multistatus;
use crate::{Backends, DavServer, HiddenNames};

/// Bytes gathered before a chunk goes to the socket.
const CHUNK: usize = 32 * 1024;
/// Chunks in flight between the walk and the socket.
const CHANNEL: usize = 4;

pub(super) async fn handle(
    server: &DavServer,
    req: &DavRequest,
    body: &mut Body,
) -> Result<Response<DavBody>, DavError> {
    let depth = req.depth(Depth::Infinity)?;
    let bytes = read_body(&req.parts, body.take(), server.config.max_xml_body).await?;
    let spec = if bytes.iter().all(u8::is_ascii_whitespace) {
        PropFind::AllProp {
            include: Vec::new(),
        }
    } else {
        PropFind::from_xml(&bytes, server.config.xml_limits)?
    };
    let meta = server
        .storage()
        .metadata(&req.path)
        .await
        .map_err(DavError::from_storage)?;
    let depth = if meta.kind.is_collection() {
        depth
    } else {
        Depth::Zero
    };
    if depth == Depth::Infinity {
        let limit = server.config.propfind_infinity_limit;
        if limit == 0 || count_entries(server, &req.path, limit).await? > limit {
            return Err(DavError::forbidden(format!(
                "Depth: infinity is limited to {limit} entries here; use Depth: 1"
            ))
            .with_condition(Condition::PropfindFiniteDepth));
        }
    }
    // Every lock that can apply anywhere in the answer, fetched once.
    let mut locks = server.locks.on_path(&req.path).await?;
    if depth != Depth::Zero {
        locks.extend(server.locks.below(&req.path).await?);
    }
    let now = server.locks.clock.now();
    let space = if wants_space(&spec) {
        match server.storage().space().await {
            Ok(space) => Some(space),
            Err(StorageError::Unsupported) => None,
            Err(e) => {
                tracing::warn!(error = %e, "no quota properties: the storage's room is unknown");
                None
            }
        }
    } else {
        None
    };
    let dead = server
        .props()
        .get_all(&req.path)
        .await
        .map_err(DavError::from_storage)?;
    // Listed before the 207 goes: a collection that cannot be listed is an error, not an
    // empty folder (a client would take its members for deleted).
    let members = if depth == Depth::Zero {
        Vec::new()
    } else {
        server
            .storage()
            .list(&req.path)
            .await
            .map_err(DavError::from_storage)?
    };
    let shared = Shared {
        now,
        space,
        base: server.config.base_path.clone(),
        read_only: server.config.read_only,
    };
    let mut w = MultistatusWriter::new(&shared.base);
    // Hrefs as the client spelled what it asked for: clients find the entry of the
    // collection itself by comparing it with the URL they sent.
    if let Some(sent) = &req.path_as_sent {
        w.respell(req.path.clone(), sent.clone());
    }
    let mut scratch = Vec::new();
    let res = resource(&req.path, &meta, &locks, &shared, &mut scratch);
    write_resource(&mut w, &spec, res, &dead);
    if depth == Depth::Zero {
        w.finish();
        return Ok(multistatus(DavBody::full(w.take())));
    }
    let (tx, rx) = mpsc::channel(CHANNEL);
    let walk = Walk {
        backends: server.backends.clone(),
        hidden: server.config.hidden.clone(),
        spec,
        depth,
        locks,
        shared,
        tx,
    };
    tokio::spawn(walk.run(req.path.clone(), members, w));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok(multistatus(DavBody::Stream(Box::pin(stream))))
}

/// Counts the entries below `root` (itself included), stopping once past `limit`.
async fn count_entries(
    server: &DavServer,
    root: &ResourcePath,
    limit: usize,
) -> Result<usize, DavError> {
    let mut count = 1;
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = match server.storage().list(&dir).await {
            Ok(e) => e,
            Err(StorageError::NotFound) => continue,
            Err(e) => return Err(DavError::from_storage(e)),
        };
        // Hidden files count too: listing them is work the bound is there to limit.
        count += entries.len();
        if count > limit {
            return Ok(count);
        }
        for e in entries {
            if e.is_collection()
                && let Ok(child) = dir.join(&e.name)
            {
                dirs.push(child);
            }
        }
    }
    Ok(count)
}

/// The members part of a Depth 1 or infinity PROPFIND, run as its own task.
struct Walk {
    backends: Backends,
    hidden: HiddenNames,
    spec: PropFind,
    depth: Depth,
    /// The active locks that may apply to resources of the walk.
    locks: Vec<Lock>,
    shared: Shared,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

/// What the live properties of every resource of one PROPFIND share.
struct Shared {
    now: SystemTime,
    /// Room on the storage, the same for every member.
    space: Option<Space>,
    base: BasePath,
    read_only: bool,
}

impl Walk {
    /// `members`: the root's, listed before the answer began.
    async fn run(self, root: ResourcePath, members: Vec<Entry>, mut w: MultistatusWriter) {
        // Collections still to answer for, with their members when already listed.
        let mut dirs = vec![(root, Some(members))];
        let mut scratch = Vec::new();
        while let Some((dir, listed)) = dirs.pop() {
            let entries = match listed {
                Some(entries) => entries,
                None => match self.backends.storage.list(&dir).await {
                    Ok(entries) => entries,
                    Err(e) => {
                        // Counted before the answer began, so gone or refused since:
                        // the collection itself is already answered.
                        tracing::warn!(dir = ?dir, error = %e, "PROPFIND could not list a collection");
                        continue;
                    }
                },
            };
            let dead = match self.backends.props.get_members(&dir).await {
                Ok(d) => d,
                Err(e) => {
                    // Answered as failing, not as resources without dead properties.
                    tracing::error!(dir = ?dir, error = %e, "PROPFIND could not read dead properties");
                    for entry in entries.iter().filter(|e| !self.hidden.hides_member(e)) {
                        if let Ok(child) = dir.join(&entry.name) {
                            let kind = entry
                                .metadata
                                .as_ref()
                                .map_or(ResourceKind::File, |m| m.kind);
                            let reason = "its dead properties could not be read";
                            w.status_response(&child, kind, 500, None, Some(reason));
                        }
                    }
                    continue;
                }
            };
            for entry in entries {
                if self.hidden.hides_member(&entry) {
                    continue;
                }
                let Ok(child) = dir.join(&entry.name) else {
                    continue;
                };
                match entry.metadata {
                    Ok(meta) => {
                        let props = dead.get(&entry.name).map_or(&[][..], Vec::as_slice);
                        let res = resource(&child, &meta, &self.locks, &self.shared, &mut scratch);
                        write_resource(&mut w, &self.spec, res, props);
                        if meta.kind.is_collection() && self.depth == Depth::Infinity {
                            dirs.push((child, None));
                        }
                    }
                    Err(e) => {
                        let e = DavError::from_storage(e);
                        w.status_response(
                            &child,
                            ResourceKind::File,
                            e.status().as_u16(),
                            None,
                            Some(e.reason()),
                        );
                    }
                }
                if w.len() >= CHUNK && self.tx.send(Ok(w.take())).await.is_err() {
                    return; // The client went away.
                }
            }
        }
        w.finish();
        let _ = self.tx.send(Ok(w.take())).await;
    }
}

/// The live-property view of one resource, with the locks from `locks` that apply to it
/// (gathered in `scratch`, reused across resources).
fn resource<'a>(
    path: &'a ResourcePath,
    meta: &'a Metadata,
    locks: &[Lock],
    shared: &'a Shared,
    scratch: &'a mut Vec<Lock>,
) -> Resource<'a> {
    scratch.clear();
    scratch.extend(locks.iter().filter(|l| covers(l, path)).cloned());
    Resource {
        path,
        meta,
        locks: scratch,
        now: shared.now,
        space: shared.space,
        base: &shared.base,
        read_only: shared.read_only,
    }
}

/// Whether the answer may hold a quota property, which needs a look at the storage.
fn wants_space(spec: &PropFind) -> bool {
    match spec {
        PropFind::Prop(names) => names.iter().any(live_prop::needs_space),
        PropFind::AllProp { include } => include.iter().any(live_prop::needs_space),
        PropFind::PropName => true,
    }
}

/// Dead properties on one resource from which they are looked up by hashing.
const INDEX_DEAD_FROM: usize = 32;

/// Writes one `response`: found properties in a 200 propstat, missing ones in a 404.
fn write_resource(
    w: &mut MultistatusWriter,
    spec: &PropFind,
    res: Resource<'_>,
    dead: &[(PropName, PropValue)],
) {
    let (path, meta) = (res.path, res.meta);
    // Indexed when there are many: a `prop` list of thousands of names against thousands
    // of dead properties was scanned in quadratic time.
    let index: Option<HashMap<&PropName, &PropValue>> =
        (dead.len() > INDEX_DEAD_FROM).then(|| dead.iter().map(|(n, v)| (n, v)).collect());
    let find_dead = |n: &PropName| match &index {
        Some(index) => index.get(n).copied(),
        None => dead.iter().find(|(d, _)| d == n).map(|(_, v)| v),
    };
    w.begin_response(path, meta.kind);
    match spec {
        PropFind::Prop(names) => {
            let mark = w.mark();
            w.begin_propstat();
            let mut found = 0;
            let mut missing = Vec::new();
            for name in names {
                let live = live_prop::find(name);
                let dead_value = match live {
                    Some(p) if !p.settable => None,
                    _ => find_dead(name),
                };
                if let Some(v) = dead_value {
                    w.prop_xml(name, &v.xml, v.lang.as_deref());
                    found += 1;
                } else if live.is_some_and(|p| p.write(res, w)) {
                    found += 1;
                } else {
                    missing.push(name);
                }
            }
            if found > 0 || missing.is_empty() {
                w.end_propstat(StatusCode::OK.as_u16(), None);
            } else {
                w.rollback(mark);
            }
            if !missing.is_empty() {
                w.begin_propstat();
                for name in missing {
                    w.prop_empty(name);
                }
                w.end_propstat(StatusCode::NOT_FOUND.as_u16(), None);
            }
        }
        PropFind::AllProp { include } => {
            w.begin_propstat();
            for p in LIVE_PROPS {
                let listed = p.in_allprop || include.contains(p.name());
                if listed && !(p.settable && find_dead(p.name()).is_some()) {
                    p.write(res, w);
                }
            }
            for (name, v) in dead {
                w.prop_xml(name, &v.xml, v.lang.as_deref());
            }
            w.end_propstat(StatusCode::OK.as_u16(), None);
            let missing: Vec<&PropName> = include
                .iter()
                .filter(|n| match live_prop::find(n) {
                    Some(p) => !(p.applies)(res),
                    None => find_dead(n).is_none(),
                })
                .collect();
            if !missing.is_empty() {
                w.begin_propstat();
                for name in missing {
                    w.prop_empty(name);
                }
                w.end_propstat(StatusCode::NOT_FOUND.as_u16(), None);
            }
        }
        PropFind::PropName => {
            w.begin_propstat();
            for p in LIVE_PROPS {
                let shadowed = p.settable && find_dead(p.name()).is_some();
                if !shadowed && (p.applies)(res) {
                    w.prop_empty(p.name());
                }
            }
            for (name, _) in dead {
                w.prop_empty(name);
            }
            w.end_propstat(StatusCode::OK.as_u16(), None);
        }
    }
    w.end_response(None);
}
