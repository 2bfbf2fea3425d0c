//! Downloading a collection with everything below it into a local folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Client, ClientError, Progress, plain_relative};

/// What [`Client::download_tree`] did, per resource.
#[derive(Debug, Default)]
pub struct TreeDownload {
    /// Files written: remote path, local path, bytes.
    pub files: Vec<(String, PathBuf, u64)>,
    /// Folders created or found in place (the top one included).
    pub folders: usize,
    /// Resources not downloaded, with why; the others were.
    pub failed: Vec<(String, ClientError)>,
}

impl TreeDownload {
    /// Bytes written in all.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, _, n)| n).sum()
    }
}

impl Client {
    /// Downloads the collection at `path` with everything below it into the folder `local`
    /// (created if missing): each file streamed to a temporary file and renamed into place,
    /// one at a time. A member that fails is reported and the rest go on. Names the server
    /// lists that could leave `local` (`..`, or a path outside `path`) are refused.
    /// `progress` counts bytes over all files.
    ///
    /// # Errors
    /// [`ClientError`] when `path` cannot be listed, is not a collection, or `local` cannot
    /// be created.
    pub async fn download_tree(
        &self,
        path: &str,
        local: &Path,
        progress: Option<Progress>,
    ) -> Result<TreeDownload, ClientError> {
        let listing = self.list_recursive(path).await?;
        let entries = listing.entries;
        let root = match entries.first() {
            Some(e) if e.is_collection => e.path.clone(),
            _ => {
                return Err(ClientError::usage(format!("{path} is not a collection")));
            }
        };
        let mkdir = |dir: &Path| {
            std::fs::create_dir_all(dir)
                .map_err(|e| ClientError::io(format!("creating {}", dir.display()), e))
        };
        mkdir(local)?;
        let mut report = TreeDownload {
            folders: 1,
            ..TreeDownload::default()
        };
        // Listed as failing (not readable by this login, say): not downloaded.
        for f in listing.failures {
            let message = f
                .description
                .unwrap_or_else(|| "listed as failing".to_owned());
            let error = ClientError::status(f.status, f.condition, message);
            report.failed.push((f.path, error));
        }
        let mut done = 0u64;
        for entry in entries.iter().skip(1) {
            let Some(rel) = local_relative(&root, &entry.path) else {
                report.failed.push((
                    entry.path.clone(),
                    ClientError::protocol(format!(
                        "the listing of {root} names {}, which is not a plain member path",
                        entry.path
                    )),
                ));
                continue;
            };
            let target = local.join(rel);
            if entry.is_collection {
                match mkdir(&target) {
                    Ok(()) => report.folders += 1,
                    Err(e) => report.failed.push((entry.path.clone(), e)),
                }
                continue;
            }
            let offset = done;
            let file_progress = progress
                .clone()
                .map(|p| Arc::new(move |n: u64| p(offset + n)) as Progress);
            match self.get_to_file(&entry.path, &target, file_progress).await {
                Ok(n) => {
                    done += n;
                    report.files.push((entry.path.clone(), target, n));
                }
                Err(e) => report.failed.push((entry.path.clone(), e)),
            }
        }
        Ok(report)
    }
}

/// The local path, relative, of the member `member` of the collection `root` (both decoded
/// paths, collections ending in `/`): `None` unless it lies below `root` and every segment is
/// a plain name.
fn local_relative(root: &str, member: &str) -> Option<PathBuf> {
    let rel = member.strip_prefix(root)?.trim_end_matches('/');
    plain_relative(rel).then(|| PathBuf::from(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_map_to_plain_relative_paths_or_nothing() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/d/a.txt", Some("a.txt")),
            ("/d/sub/", Some("sub")),
            ("/d/sub/b c", Some("sub/b c")),
            ("/d/über/ü", Some("über/ü")),
            ("/d/", None),
            ("/d/../etc/passwd", None),
            ("/d/sub/../../x", None),
            ("/d/./x", None),
            ("/d//x", None),
            ("/other/x", None),
            ("/dx/y", None),
            ("/d/a\0b", None),
        ];
        for (member, want) in cases {
            assert_eq!(
                local_relative("/d/", member),
                want.map(PathBuf::from),
                "{member}"
            );
        }
    }
}
