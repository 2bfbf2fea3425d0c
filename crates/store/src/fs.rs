//! Content in a local folder.
//!
//! Every path is resolved by the kernel beneath one directory descriptor opened at start-up:
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` fails on any `..` escape and on any
//! symlink, wherever it sits in the path, without a check-then-use race. Symlinks are
//! therefore never served or listed, and nothing outside the root is ever opened. Changes
//! happen through `*at` calls on the parent's descriptor for the same reason. (Linux ≥ 5.6.)
//!
//! Writes go to a temporary file in the target's own folder, are flushed with `fdatasync`,
//! then renamed over the target: a reader sees the old content or the new one, and a write
//! cut short leaves the old content untouched.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, RenameFlags, ResolveFlags, Statx, StatxFlags,
    StatxTimestamp,
};
use rustix::io::Errno;

use crate::{
    ByteRange, ByteStream, ETag, Entry, FileReader, Metadata, PendingWrite, ResourceKind,
    ResourcePath, Storage, StorageError, WriteOutcome,
};

/// Names starting with this are temporary files of writes in progress; they are never served.
const TEMP_PREFIX: &str = ".~davit-";
/// Files up to this size are read whole when opened, in the same blocking call as the open.
const SMALL_FILE: u64 = 64 * 1024;
/// Read size for streaming larger files.
const READ_CHUNK: usize = 256 * 1024;
/// A request body is gathered in memory up to this size before it goes to disk, so a small
/// PUT costs one blocking call in all.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Content in a local folder.
#[derive(Debug, Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The root, opened `O_PATH`: every access resolves beneath it.
    root: OwnedFd,
    /// Kept for messages only; no access goes through it.
    root_path: PathBuf,
    /// Names directly under the root that are not served (the metadata folder).
    hidden: Vec<String>,
}

impl FsStorage {
    /// Serves the folder `root`, which must exist.
    ///
    /// # Errors
    /// The error of opening `root` as a directory.
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let root_path = root.as_ref().to_path_buf();
        let root = rustix::fs::open(
            &root_path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(FsStorage {
            inner: Arc::new(Inner {
                root,
                root_path,
                hidden: Vec::new(),
            }),
        })
    }

    /// Stops serving `name` directly under the root: it is not listed, read, written,
    /// replaced or removed through this storage (the metadata folder lives there).
    pub fn hide(mut self, name: &str) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("hide() is called before the storage is shared")
            .hidden
            .push(name.to_owned());
        self
    }

    /// The folder served.
    pub fn root_path(&self) -> &Path {
        &self.inner.root_path
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StorageError::Io(io::Error::other(e)))?
    }
}

fn errno(e: Errno) -> StorageError {
    StorageError::from_io(io::Error::from(e))
}

fn rel(path: &ResourcePath) -> &str {
    if path.is_root() {
        "."
    } else {
        &path.as_str()[1..]
    }
}

fn is_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

impl Inner {
    fn is_hidden(&self, path: &ResourcePath) -> bool {
        let mut segments = path.segments();
        if let Some(first) = segments.next()
            && self.hidden.iter().any(|h| h == first)
        {
            return true;
        }
        path.segments().any(is_temp)
    }

    fn check_served(&self, path: &ResourcePath) -> Result<(), StorageError> {
        if self.is_hidden(path) {
            Err(StorageError::NotFound)
        } else {
            Ok(())
        }
    }

    fn check_writable(&self, path: &ResourcePath) -> Result<(), StorageError> {
        if self.is_hidden(path) || path.is_root() {
            Err(StorageError::PermissionDenied)
        } else {
            Ok(())
        }
    }

    /// Opens `rel` beneath the root; any symlink or escape on the way fails.
    fn resolve(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        // openat2 refuses O_PATH combined with flags other than these few.
        let flags = if flags.contains(OFlags::PATH) {
            flags | OFlags::CLOEXEC
        } else {
            flags | OFlags::CLOEXEC | OFlags::NOCTTY
        };
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.root,
                rel,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                // The kernel asks for a retry when a concurrent rename raced the lookup.
                Err(Errno::AGAIN) if tries < 8 => tries += 1,
                other => return other,
            }
        }
    }

    /// The parent collection of `path`, opened for `*at` calls.
    fn parent(&self, path: &ResourcePath) -> Result<OwnedFd, StorageError> {
        let parent = path.parent().ok_or(StorageError::PermissionDenied)?;
        self.resolve(rel(&parent), OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| match e {
                Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV => {
                    StorageError::ParentMissing
                }
                e => errno(e),
            })
    }

    /// Metadata of a served entry; symlinks and special files are not served.
    fn metadata_at(&self, dir: impl AsFd, name: &str) -> Result<Metadata, StorageError> {
        let st =
            rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, STATX_MASK).map_err(errno)?;
        to_metadata(&st)
    }
}

const STATX_MASK: StatxFlags = StatxFlags::BASIC_STATS.union(StatxFlags::BTIME);

fn to_time(t: StatxTimestamp) -> SystemTime {
    if t.tv_sec >= 0 {
        UNIX_EPOCH + Duration::new(t.tv_sec as u64, t.tv_nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.tv_sec.unsigned_abs())
    }
}

fn to_metadata(st: &Statx) -> Result<Metadata, StorageError> {
    let kind = match FileType::from_raw_mode(st.stx_mode.into()) {
        FileType::Directory => ResourceKind::Collection,
        FileType::RegularFile => ResourceKind::File,
        _ => return Err(StorageError::NotFound),
    };
    let len = if kind.is_collection() { 0 } else { st.stx_size };
    let mtime = st.stx_mtime;
    let etag = ETag::strong(format!(
        "{:x}-{:x}-{:x}.{:x}",
        st.stx_ino, len, mtime.tv_sec, mtime.tv_nsec
    ));
    let created = (st.stx_mask & StatxFlags::BTIME.bits() != 0).then(|| to_time(st.stx_btime));
    Ok(Metadata {
        kind,
        len,
        modified: to_time(mtime),
        created,
        etag,
    })
}

fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{TEMP_PREFIX}{}-{n:x}-{nanos:x}", std::process::id())
}

/// A temporary file in the target's folder that becomes the target on [`Temp::commit`] and
/// disappears if dropped before.
#[derive(Debug)]
struct Temp {
    parent: OwnedFd,
    name: String,
    file: Option<File>,
}

impl Temp {
    fn create(parent: OwnedFd) -> Result<Temp, StorageError> {
        let name = temp_name();
        let fd = rustix::fs::openat(
            &parent,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(errno)?;
        Ok(Temp {
            parent,
            name,
            file: Some(File::from(fd)),
        })
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }

    /// Flushes the data to disk.
    fn flush(&mut self) -> Result<(), StorageError> {
        self.file().sync_data().map_err(StorageError::from_io)
    }

    /// Renames the flushed file over `target` (a plain resource or nothing). A replaced
    /// file's permission bits carry over, and the parent is synced so the rename survives a
    /// power loss.
    fn commit(mut self, target: &str) -> Result<(WriteOutcome, Metadata), StorageError> {
        let file = self.file.take().expect("commit happens once");
        let outcome = match rustix::fs::statx(
            &self.parent,
            target,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::TYPE | StatxFlags::MODE,
        ) {
            Ok(st) if FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory => {
                return Err(StorageError::IsCollection);
            }
            Ok(st) if FileType::from_raw_mode(st.stx_mode.into()) == FileType::RegularFile => {
                let mode = Mode::from_raw_mode(u32::from(st.stx_mode) & 0o7777);
                rustix::fs::fchmod(&file, mode).map_err(errno)?;
                WriteOutcome::Replaced
            }
            Ok(_) => WriteOutcome::Replaced,
            Err(_) => WriteOutcome::Created,
        };
        rustix::fs::renameat(&self.parent, self.name.as_str(), &self.parent, target).map_err(
            |e| match e {
                Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST => StorageError::IsCollection,
                Errno::NOENT => StorageError::ParentMissing,
                e => errno(e),
            },
        )?;
        self.name.clear();
        sync_dir(&self.parent)?;
        let st = rustix::fs::statx(&file, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(errno)?;
        Ok((outcome, to_metadata(&st)?))
    }
}

/// Makes the entries of a folder (opened `O_PATH`) durable.
fn sync_dir(dir: &OwnedFd) -> Result<(), StorageError> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    rustix::fs::fsync(&fd).map_err(errno)
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = rustix::fs::unlinkat(&self.parent, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Opens the parent of `path` for a write, refusing when `path` is a collection.
fn prepare_write(inner: &Inner, path: &ResourcePath) -> Result<Temp, StorageError> {
    inner.check_writable(path)?;
    let parent = inner.parent(path)?;
    if let Ok(st) = rustix::fs::statx(
        &parent,
        path.name(),
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE,
    ) && FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory
    {
        return Err(StorageError::IsCollection);
    }
    Temp::create(parent)
}

/// A body flushed to a temporary file, renamed into place on commit.
#[derive(Debug)]
struct FsPendingWrite {
    storage: FsStorage,
    /// Taken by commit; dropping it unlinks the file.
    temp: Option<Temp>,
    name: String,
}

#[async_trait]
impl PendingWrite for FsPendingWrite {
    async fn commit(mut self: Box<Self>) -> Result<(WriteOutcome, Metadata), StorageError> {
        let temp = self.temp.take().expect("commit happens once");
        let name = std::mem::take(&mut self.name);
        self.storage.blocking(move |_| temp.commit(&name)).await
    }
}

#[derive(Debug)]
struct FsReader {
    metadata: Metadata,
    file: Arc<File>,
    /// The whole content of a small file, read at open.
    prefetched: Option<Bytes>,
}

impl FileReader for FsReader {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn stream(self: Box<Self>, range: Option<ByteRange>) -> ByteStream {
        let range = range.unwrap_or(ByteRange {
            start: 0,
            end: self.metadata.len,
        });
        if let Some(data) = self.prefetched {
            let end = (range.end as usize).min(data.len());
            let start = (range.start as usize).min(end);
            return Box::pin(futures_util::stream::iter([Ok(data.slice(start..end))]));
        }
        let state = (self.file, range.start, range.end);
        Box::pin(futures_util::stream::try_unfold(
            state,
            |(file, offset, end)| async move {
                if offset >= end {
                    return Ok(None);
                }
                let want = READ_CHUNK.min((end - offset) as usize);
                let reader = Arc::clone(&file);
                let chunk = tokio::task::spawn_blocking(move || -> io::Result<Bytes> {
                    let mut buf = BytesMut::zeroed(want);
                    let n = reader.read_at(&mut buf, offset)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shrank while it was being sent",
                        ));
                    }
                    buf.truncate(n);
                    Ok(buf.freeze())
                })
                .await
                .map_err(io::Error::other)??;
                let next = offset + chunk.len() as u64;
                Ok(Some((chunk, (file, next, end))))
            },
        ))
    }
}

#[async_trait]
impl Storage for FsStorage {
    async fn metadata(&self, path: &ResourcePath) -> Result<Metadata, StorageError> {
        let path = path.clone();
        self.blocking(move |inner| {
            inner.check_served(&path)?;
            let fd = inner.resolve(rel(&path), OFlags::PATH).map_err(errno)?;
            let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(errno)?;
            to_metadata(&st)
        })
        .await
    }

    async fn list(&self, dir: &ResourcePath) -> Result<Vec<Entry>, StorageError> {
        let dir = dir.clone();
        self.blocking(move |inner| {
            inner.check_served(&dir)?;
            let fd = inner
                .resolve(rel(&dir), OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(errno)?;
            let mut entries = Vec::new();
            let mut reader = Dir::read_from(&fd).map_err(errno)?;
            while let Some(ent) = reader.read() {
                let ent = ent.map_err(errno)?;
                let Ok(name) = ent.file_name().to_str() else {
                    tracing::debug!(dir = %dir, "skipping a member whose name is not UTF-8");
                    continue;
                };
                if name == "." || name == ".." || is_temp(name) {
                    continue;
                }
                if dir.is_root() && inner.hidden.iter().any(|h| h == name) {
                    continue;
                }
                if !matches!(
                    ent.file_type(),
                    FileType::RegularFile | FileType::Directory | FileType::Unknown
                ) {
                    continue;
                }
                match inner.metadata_at(&fd, name) {
                    // Gone since the directory was read, or not something we serve.
                    Err(StorageError::NotFound) => {}
                    metadata => entries.push(Entry {
                        name: name.to_owned(),
                        metadata,
                    }),
                }
            }
            Ok(entries)
        })
        .await
    }

    async fn open(&self, path: &ResourcePath) -> Result<Box<dyn FileReader>, StorageError> {
        let path = path.clone();
        self.blocking(move |inner| {
            inner.check_served(&path)?;
            let fd = inner
                .resolve(rel(&path), OFlags::RDONLY | OFlags::NONBLOCK)
                .map_err(errno)?;
            let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(errno)?;
            let metadata = to_metadata(&st)?;
            if metadata.kind.is_collection() {
                return Err(StorageError::IsCollection);
            }
            let file = File::from(fd);
            let prefetched = if metadata.len <= SMALL_FILE {
                let mut buf = Vec::with_capacity(metadata.len as usize);
                (&file)
                    .take(metadata.len)
                    .read_to_end(&mut buf)
                    .map_err(StorageError::from_io)?;
                Some(Bytes::from(buf))
            } else {
                None
            };
            Ok(Box::new(FsReader {
                metadata,
                file: Arc::new(file),
                prefetched,
            }) as Box<dyn FileReader>)
        })
        .await
    }

    async fn prepare_write(
        &self,
        path: &ResourcePath,
        mut body: ByteStream,
    ) -> Result<Box<dyn PendingWrite>, StorageError> {
        let mut buf = BytesMut::new();
        let mut temp: Option<Temp> = None;
        loop {
            let done = match body.next().await {
                Some(Ok(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    false
                }
                Some(Err(e)) => return Err(StorageError::BodyAborted(e)),
                None => true,
            };
            if !done && buf.len() < WRITE_BUFFER {
                continue;
            }
            let data = buf.split().freeze();
            let target = path.clone();
            let current = temp.take();
            let t = self
                .blocking(move |inner| {
                    let mut t = match current {
                        Some(t) => t,
                        None => prepare_write(inner, &target)?,
                    };
                    t.file().write_all(&data).map_err(StorageError::from_io)?;
                    if done {
                        t.flush()?;
                    }
                    Ok(t)
                })
                .await?;
            if done {
                return Ok(Box::new(FsPendingWrite {
                    storage: self.clone(),
                    temp: Some(t),
                    name: path.name().to_owned(),
                }));
            }
            temp = Some(t);
        }
    }

    async fn create_collection(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let path = path.clone();
        self.blocking(move |inner| {
            if path.is_root() {
                return Err(StorageError::AlreadyExists);
            }
            inner.check_writable(&path)?;
            let parent = inner.parent(&path)?;
            rustix::fs::mkdirat(&parent, path.name(), Mode::from_raw_mode(0o755)).map_err(errno)
        })
        .await
    }

    async fn remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let path = path.clone();
        self.blocking(move |inner| {
            inner.check_served(&path)?;
            inner.check_writable(&path)?;
            let parent = inner.parent(&path).map_err(|e| match e {
                StorageError::ParentMissing => StorageError::NotFound,
                e => e,
            })?;
            let kind = inner.metadata_at(&parent, path.name())?.kind;
            if !kind.is_collection() {
                return rustix::fs::unlinkat(&parent, path.name(), AtFlags::empty()).map_err(errno);
            }
            match rustix::fs::unlinkat(&parent, path.name(), AtFlags::REMOVEDIR) {
                Err(Errno::NOTEMPTY) => {
                    remove_unserved_members(&parent, path.name())?;
                    rustix::fs::unlinkat(&parent, path.name(), AtFlags::REMOVEDIR).map_err(errno)
                }
                other => other.map_err(errno),
            }
        })
        .await
    }

    async fn copy_file(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let (from, to) = (from.clone(), to.clone());
        self.blocking(move |inner| {
            inner.check_served(&from)?;
            let src = inner
                .resolve(rel(&from), OFlags::RDONLY | OFlags::NONBLOCK)
                .map_err(errno)?;
            let st = rustix::fs::statx(&src, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(errno)?;
            if to_metadata(&st)?.kind.is_collection() {
                return Err(StorageError::IsCollection);
            }
            let mut src = File::from(src);
            let mut temp = prepare_write(inner, &to)?;
            // std's copy uses copy_file_range (and so reflinks where the filesystem can).
            io::copy(&mut src, temp.file()).map_err(StorageError::from_io)?;
            temp.flush()?;
            temp.commit(to.name()).map(|_| ())
        })
        .await
    }

    async fn rename(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let (from, to) = (from.clone(), to.clone());
        self.blocking(move |inner| {
            inner.check_served(&from)?;
            inner.check_writable(&from)?;
            inner.check_writable(&to)?;
            let src_parent = inner.parent(&from).map_err(|e| match e {
                StorageError::ParentMissing => StorageError::NotFound,
                e => e,
            })?;
            // Refuse to move what is not served (a symlink) before renaming anything.
            inner.metadata_at(&src_parent, from.name())?;
            let dst_parent = inner.parent(&to)?;
            rustix::fs::renameat_with(
                &src_parent,
                from.name(),
                &dst_parent,
                to.name(),
                RenameFlags::NOREPLACE,
            )
            .map_err(|e| match e {
                Errno::XDEV => StorageError::Unsupported,
                Errno::INVAL => StorageError::PermissionDenied,
                e => errno(e),
            })
        })
        .await
    }
}

/// Removes what a listing never shows but a collection's removal may take along: leftover
/// temporary files and symlinks (the links, never their targets). Files whose names are not
/// UTF-8 are data no client could see, so they keep the collection (and are never deleted
/// unseen); so do special files and unserved folders.
fn remove_unserved_members(parent: &OwnedFd, name: &str) -> Result<(), StorageError> {
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let mut reader = Dir::read_from(&dir).map_err(errno)?;
    while let Some(ent) = reader.read() {
        let ent = ent.map_err(errno)?;
        let raw = ent.file_name();
        if raw.to_bytes() == b"." || raw.to_bytes() == b".." {
            continue;
        }
        let st = rustix::fs::statx(&dir, raw, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
            .map_err(errno)?;
        let temp = raw.to_str().is_ok_and(is_temp);
        match FileType::from_raw_mode(st.stx_mode.into()) {
            FileType::Symlink => {}
            FileType::RegularFile if temp => {}
            _ => return Err(StorageError::NotEmpty),
        }
        rustix::fs::unlinkat(&dir, raw, AtFlags::empty()).map_err(errno)?;
    }
    Ok(())
}
