//! Mirroring a local folder into a collection: upload what is new or changed (by size and
//! modification time), create missing collections, and with `delete`, remove what is gone
//! locally. Planned first, so a caller can show totals, then applied.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Client, ClientError, Entry, Failure, Progress, spelling_key as key};

/// Files per bulk-upload request.
const BATCH_FILES: usize = 64;
/// Bytes per bulk-upload request (a single larger file still goes alone).
const BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// A file to upload into a collection: its name there, local path and size.
type Upload = (String, PathBuf, u64);
/// A local entry left out of a sync, and why.
type Skipped = (PathBuf, &'static str);

/// What a sync will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Collections to create, parents first.
    pub mkcols: Vec<String>,
    /// Files to upload: local path, remote path, size.
    pub uploads: Vec<(PathBuf, String, u64)>,
    /// Remote resources to delete (only with `delete`).
    pub deletes: Vec<String>,
    /// Files already up to date.
    pub unchanged: usize,
    /// Remote resources listed as failing: neither compared nor deleted, and reported.
    pub failures: Vec<Failure>,
    /// Local entries left out, with why: symbolic links, special files (pipes, sockets,
    /// devices) and names that are not UTF-8. Their remote namesakes are not deleted.
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// Bytes to upload.
    pub fn upload_bytes(&self) -> u64 {
        self.uploads.iter().map(|u| u.2).sum()
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Remote paths uploaded.
    pub uploaded: Vec<String>,
    /// Remote collections created.
    pub created: Vec<String>,
    /// Remote paths deleted.
    pub deleted: Vec<String>,
    /// Files already up to date.
    pub unchanged: usize,
    /// Whether uploads went through bulk upload.
    pub bulk: bool,
    /// Everything that failed, per resource, as the server answered.
    pub failures: Vec<Failure>,
    /// Paths that failed without an answer of the server's for them (a local file that
    /// could not be read, an answer that could not be read), with the error.
    pub errors: Vec<(String, String)>,
}

impl Report {
    /// Records `e`, the error of an operation on `at` for `paths`: as the server's failures
    /// (of `at`) when it answered with a status, else as an error of each path.
    fn failed(&mut self, at: &str, paths: &[&str], e: &ClientError) {
        let failures = e.failures(at);
        if failures.is_empty() {
            let message = e.to_string();
            self.errors
                .extend(paths.iter().map(|p| ((*p).to_owned(), message.clone())));
        } else {
            self.failures.extend(failures);
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

struct LocalEntry {
    rel: String,
    path: PathBuf,
    is_dir: bool,
    size: u64,
    modified: SystemTime,
}

/// Every entry below `root`, parents before children, and the entries left out.
fn walk_local(root: &Path) -> Result<(Vec<LocalEntry>, Vec<Skipped>), ClientError> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = dirs.pop() {
        let read = std::fs::read_dir(&dir)
            .map_err(|e| ClientError::io(format!("reading {}", dir.display()), e))?;
        let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(name) = e.file_name().into_string() else {
                skipped.push((e.path(), "the name is not UTF-8"));
                continue;
            };
            let meta = std::fs::symlink_metadata(e.path())
                .map_err(|err| ClientError::io(format!("reading {}", e.path().display()), err))?;
            if meta.file_type().is_symlink() {
                skipped.push((e.path(), "a symbolic link"));
                continue;
            }
            // Opening a pipe would wait for a writer; sockets and devices hold no file.
            if !meta.is_dir() && !meta.is_file() {
                skipped.push((e.path(), "not a regular file"));
                continue;
            }
            let rel_path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            out.push(LocalEntry {
                rel: rel_path.clone(),
                path: e.path(),
                is_dir: meta.is_dir(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(UNIX_EPOCH),
            });
            if meta.is_dir() {
                dirs.push((e.path(), rel_path));
            }
        }
    }
    Ok((out, skipped))
}

/// Whether the key `k` is `at` or below it.
fn at_or_below(k: &str, at: &str) -> bool {
    k.strip_prefix(at)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Compares `local` with the collection `remote`.
///
/// # Errors
/// [`ClientError`] if the local folder cannot be read or the remote one cannot be listed.
pub async fn plan(
    client: &Client,
    local: &Path,
    remote: &str,
    delete: bool,
) -> Result<Plan, ClientError> {
    let remote_root = format!("{}/", remote.trim_end_matches('/'));
    let local_root = local.to_path_buf();
    let (locals, skipped) = tokio::task::spawn_blocking(move || walk_local(&local_root))
        .await
        .map_err(|e| {
            ClientError::io(
                "walking the local folder".to_owned(),
                std::io::Error::other(e),
            )
        })??;
    let mut plan = Plan {
        skipped,
        ..Plan::default()
    };
    // Keyed composed, so that a Mac's local names and the names another client gave the
    // remote files match: the sync neither uploads a twin nor deletes what a name stands for.
    let remotes: HashMap<String, Entry> = match client.list_recursive(&remote_root).await {
        Ok(list) => {
            plan.failures = list.failures;
            list.entries
                .into_iter()
                .map(|e| (key(&e.path), e))
                .collect()
        }
        Err(e) if e.is_not_found() => {
            plan.mkcols.push(remote_root.clone());
            HashMap::new()
        }
        Err(e) => return Err(e),
    };
    let mut seen = HashSet::new();
    // Each local folder's remote path, spelled as the remote spells it.
    let mut folders: HashMap<&str, String> = HashMap::new();
    let unlisted: Vec<String> = plan.failures.iter().map(|f| key(&f.path)).collect();
    for l in &locals {
        let (parent, name) = l.rel.rsplit_once('/').unwrap_or(("", &l.rel));
        let parent = folders.get(parent).unwrap_or(&remote_root);
        let wanted = join(parent, name);
        let k = key(&wanted);
        // What the server could not report on is left as it is, with what is below it.
        let unseen = unlisted.iter().any(|f| at_or_below(&k, f));
        if unseen {
            if l.is_dir {
                // Its members are found under it, and left too.
                folders.insert(&l.rel, wanted);
            }
            continue;
        }
        let existing = remotes.get(&k);
        seen.insert(k);
        let rpath = existing.map_or(wanted, |r| r.path.trim_end_matches('/').to_owned());
        if l.is_dir {
            folders.insert(&l.rel, rpath.clone());
            match existing {
                Some(r) if r.is_collection => {}
                // A file where a folder belongs is replaced by the folder.
                Some(_) => {
                    plan.deletes.push(rpath.clone());
                    plan.mkcols.push(format!("{rpath}/"));
                }
                None => plan.mkcols.push(format!("{rpath}/")),
            }
            continue;
        }
        let up_to_date = existing.is_some_and(|r| {
            !r.is_collection
                && r.size == Some(l.size)
                && r.modified.is_some_and(|m| secs(m) >= secs(l.modified))
        });
        if up_to_date {
            plan.unchanged += 1;
        } else {
            if existing.is_some_and(|r| r.is_collection) {
                plan.deletes.push(rpath.clone());
            }
            plan.uploads.push((l.path.clone(), rpath, l.size));
        }
    }
    if delete {
        let root_key = key(&remote_root);
        // Left out locally is not gone: a skipped name keeps its remote namesake, and
        // what is below that.
        let kept: Vec<String> = plan
            .skipped
            .iter()
            .filter_map(|(p, _)| {
                let rel = p.strip_prefix(local).ok()?.to_str()?;
                Some(key(&join(&remote_root, rel)))
            })
            .collect();
        let mut gone: Vec<&str> = remotes
            .iter()
            .filter(|(k, _)| {
                **k != root_key
                    && !seen.contains(*k)
                    && !kept.iter().chain(&unlisted).any(|f| at_or_below(k, f))
            })
            .map(|(_, e)| e.path.trim_end_matches('/'))
            .collect();
        gone.sort_unstable();
        for p in gone {
            // Deleting a collection deletes what is below it.
            if !plan.deletes.iter().any(|d| p.starts_with(&format!("{d}/"))) {
                plan.deletes.push(p.to_owned());
            }
        }
    }
    Ok(plan)
}

/// Carries out a plan. Uploads use bulk upload where the server offers it.
///
/// # Errors
/// [`ClientError`] only for failures that stop the whole sync (the server unreachable);
/// per-resource failures are in [`Report::failures`].
pub async fn apply(
    client: &Client,
    plan: &Plan,
    progress: Option<Progress>,
) -> Result<Report, ClientError> {
    let mut report = Report {
        unchanged: plan.unchanged,
        failures: plan.failures.clone(),
        ..Report::default()
    };
    // Replaced resources go first, so their names are free.
    for path in &plan.deletes {
        match client.delete(path).await {
            Ok(ms) => {
                report.failures.extend(ms.failures());
                report.deleted.push(path.clone());
            }
            Err(e) if e.is_transport() => return Err(e),
            Err(e) => report.failed(path, &[path], &e),
        }
    }
    for dir in &plan.mkcols {
        match client.mkcol(dir).await {
            Ok(()) => report.created.push(dir.clone()),
            Err(e) if e.is_transport() => return Err(e),
            Err(e) => report.failed(dir, &[dir], &e),
        }
    }
    let bulk = match plan.uploads.first() {
        Some((_, first, _)) => {
            let dir = first.rsplit_once('/').map_or("/", |(d, _)| d);
            client
                .options(&format!("{dir}/"))
                .await
                .is_ok_and(|c| c.bulk_upload)
        }
        None => false,
    };
    report.bulk = bulk;
    let mut done_before = 0u64;
    let offset = |base: u64| -> Option<Progress> {
        progress
            .clone()
            .map(|p| Arc::new(move |n: u64| p(base + n)) as Progress)
    };
    let mut singles: Vec<&(PathBuf, String, u64)> = Vec::new();
    if bulk {
        let mut by_dir: Vec<(String, Vec<Upload>)> = Vec::new();
        for upload in &plan.uploads {
            let (local, remote, size) = upload;
            let (dir, name) = remote.rsplit_once('/').unwrap_or(("", remote));
            if !form_safe(name) {
                singles.push(upload);
                continue;
            }
            let dir = format!("{dir}/");
            match by_dir.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, files)) => files.push((name.to_owned(), local.clone(), *size)),
                None => by_dir.push((dir, vec![(name.to_owned(), local.clone(), *size)])),
            }
        }
        for (dir, files) in by_dir {
            let mut batch: Vec<(String, PathBuf)> = Vec::new();
            let mut batch_bytes = 0u64;
            let mut rest = files.into_iter().peekable();
            while let Some((name, local, size)) = rest.next() {
                // A file that cannot be opened would end the form half sent, and with it
                // the sync: it fails alone.
                if let Err(e) = tokio::fs::File::open(&local).await {
                    let what = format!("reading {}: {e}", local.display());
                    report.errors.push((join(&dir, &name), what));
                    done_before += size;
                } else {
                    batch.push((name, local));
                    batch_bytes += size;
                }
                let full = batch.len() >= BATCH_FILES || batch_bytes >= BATCH_BYTES;
                if batch.is_empty() || (!full && rest.peek().is_some()) {
                    continue;
                }
                let names: Vec<String> = batch.iter().map(|(n, _)| join(&dir, n)).collect();
                match client.upload_many(&dir, &batch, offset(done_before)).await {
                    Ok(ms) => {
                        // Matched however the server spells the names it reports.
                        let failed: HashSet<String> =
                            ms.failures().iter().map(|f| key(&f.path)).collect();
                        report.failures.extend(ms.failures());
                        report
                            .uploaded
                            .extend(names.into_iter().filter(|n| !failed.contains(&key(n))));
                    }
                    Err(e) if e.is_transport() => return Err(e),
                    // Without an answer (a file that could not be read), every file of
                    // the batch is left to do.
                    Err(e) => {
                        let names: Vec<&str> = names.iter().map(String::as_str).collect();
                        report.failed(&dir, &names, &e);
                    }
                }
                done_before += batch_bytes;
                batch.clear();
                batch_bytes = 0;
            }
        }
    } else {
        singles.extend(&plan.uploads);
    }
    for (local, remote, size) in singles {
        match client.put_file(remote, local, offset(done_before)).await {
            Ok(_) => report.uploaded.push(remote.clone()),
            Err(e) if e.is_transport() => return Err(e),
            Err(e) => report.failed(remote, &[remote], &e),
        }
        done_before += size;
    }
    Ok(report)
}

/// Whether a form part's file name reaches the server unchanged. Servers keep what follows
/// the last `/` or `\` (browsers once sent whole client paths), and may decode `%22`,
/// `%0D` and `%0A` (the HTML form escapes): such a name would land on another file.
fn form_safe(name: &str) -> bool {
    !name.contains(['\\', '%'])
}
