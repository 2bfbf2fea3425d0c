//! Content in a local folder.
//!
//! Every path is resolved by the kernel beneath one directory descriptor opened at start-up:
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` fails on any `..` escape and on any
//! symlink, wherever it sits in the path, without a check-then-use race. Symlinks are
//! therefore never served or listed, and nothing outside the root is ever opened. Changes
//! happen through `*at` calls on the parent's descriptor for the same reason. (Linux ≥ 5.6.)
//!
//! [`FsStorage::follow_symlinks`] serves symlinks to files that stay inside the root: the
//! kernel resolves them with `RESOLVE_BENEATH` alone, which still refuses any escape.
//! Symlinks to folders are never followed, so no tree walk (DELETE, COPY, MOVE) can reach
//! through one into another part of the tree; DELETE and MOVE act on a link itself.
//!
//! Writes go to a temporary file in the target's own folder, are flushed with `fdatasync`,
//! then renamed over the target: a reader sees the old content or the new one, and a write
//! cut short leaves the old content untouched.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, RenameFlags, ResolveFlags, Statx, StatxFlags,
    StatxTimestamp,
};
use rustix::io::{Errno, ReadWriteFlags};

use crate::read_cache::{ListCache, Lookup, ReadCache, StatCache};
use crate::{
    ByteRange, ByteStream, ETag, Entry, FileReader, Metadata, PendingWrite, ResourceKind,
    ResourcePath, Space, Storage, StorageError, SyncPolicy, WriteOutcome,
};

/// Names starting with this are temporary files of writes in progress; they are never served.
const TEMP_PREFIX: &str = ".~davit-";
/// How long the read and listing caches trust what they hold.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// How long the read cache keeps a file it has not checked, in time-to-lives: a stale
/// entry spares a read once a stat shows the file unchanged.
const READ_CACHE_KEEP: u32 = 30;
/// Small files the read cache holds (each up to SMALL_FILE bytes).
const CACHED_FILES: usize = 4096;
/// Folder members the listing cache holds, over all folders.
const CACHED_MEMBERS: usize = 50_000;
/// Files up to this size are read whole when opened, in the same blocking call as the open.
const SMALL_FILE: u64 = 64 * 1024;
/// Read size for streaming larger files...
const READ_CHUNK: usize = 256 * 1024;
/// ...and how many chunks are read ahead of the socket.
const READ_AHEAD: usize = 4;
/// Files up to this size are copied through a buffer, not with `copy_file_range`...
const SMALL_COPY: usize = 16 * 1024;
/// ...and, when their data is not in memory, this many at a time are read in together.
const READ_AHEAD_FILES: usize = 64;
/// A request body up to this size is gathered in memory and written in one blocking call.
const SMALL_WRITE: usize = 256 * 1024;
/// Larger bodies are written from the runtime thread in pieces of at least this size...
const INLINE_WRITE: usize = 256 * 1024;
/// ...unless one such write takes this long: then the rest goes to a blocking thread...
const SLOW_WRITE: Duration = Duration::from_millis(10);
/// ...which writes in pieces of this size...
const WRITE_BUFFER: usize = 1024 * 1024;
/// ...fed through a channel of this many body chunks (HTTP/1 reads up to 1 MiB per chunk:
/// at most 4 MiB in flight per upload).
const WRITE_QUEUE: usize = 4;
/// At most this many body chunks go into one `writev` (IOV_MAX is 1024).
const MAX_GATHER: usize = 256;

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
    /// Small files recently read.
    cache: ReadCache,
    /// Folders recently listed.
    listings: ListCache,
    /// Paths recently looked up.
    stats: StatCache,
    /// Whether writes are flushed to disk before they are acknowledged.
    sync: SyncPolicy,
    /// How an unnamed (`O_TMPFILE`) file gets its name, when the root's filesystem can.
    link: Option<LinkVia>,
    /// Where the root really is, when symlinks to files inside it are served (the check
    /// that a link does not lead into what is never served compares against it).
    follow_symlinks: Option<PathBuf>,
    /// Where tree copies are built, made on the first one ([`Inner::staging`]).
    staging: OnceLock<Option<Staging>>,
    /// [`SLOW_WRITE`], shorter in tests that take the writer thread's path.
    slow_write: Duration,
    /// Renames and removals made through this storage so far: a write whose folder may
    /// have moved while its body arrived looks the folder up again before it commits.
    moved: AtomicU64,
}

impl Inner {
    /// Drops what the caches know about `path` after a change made through this storage.
    fn changed(&self, path: &ResourcePath) {
        self.cache.invalidate(path.as_str());
        self.listings.invalidate(path.as_str());
        self.stats.invalidate(path.as_str());
    }

    /// `path`'s metadata from the filesystem, kept for later look-ups unless something
    /// changed since `generation`.
    fn look_up(&self, path: &ResourcePath, generation: u64) -> Result<Metadata, StorageError> {
        self.check_served(path)?;
        let fd = self.resolve(rel(path), OFlags::PATH).map_err(errno)?;
        let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(errno)?;
        let metadata = to_metadata(&st)?;
        self.stats.put(path.as_str(), &metadata, generation);
        Ok(metadata)
    }
}

impl FsStorage {
    /// Serves the folder `root`, which must exist.
    ///
    /// # Errors
    /// The error of opening `root` as a directory, or [`io::ErrorKind::Unsupported`] when
    /// the kernel cannot resolve paths beneath it (no `openat2`: Linux before 5.6, or a
    /// sandbox that filters it out).
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let root_path = root.as_ref().to_path_buf();
        let root = rustix::fs::open(
            &root_path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // Found now rather than as a 500 on every request.
        resolves_beneath(&root)?;
        let link = LinkVia::probe(&root);
        Ok(FsStorage {
            inner: Arc::new(Inner {
                root,
                root_path,
                hidden: Vec::new(),
                cache: ReadCache::new(CACHE_TTL, CACHED_FILES),
                listings: ListCache::new(CACHE_TTL, CACHED_MEMBERS),
                stats: StatCache::new(CACHE_TTL, CACHED_FILES),
                sync: SyncPolicy::Always,
                link,
                follow_symlinks: None,
                staging: OnceLock::new(),
                slow_write: SLOW_WRITE,
                moved: AtomicU64::new(0),
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

    /// How long a small file read, or a folder listed, is served without asking the
    /// filesystem again (changes made through this storage show at once; changes made to the
    /// folder directly show after at most this long). Zero turns the caches off. Default: 1 s.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("cache_ttl() is called before the storage is shared");
        inner.cache = ReadCache::new(ttl, CACHED_FILES);
        inner.listings = ListCache::new(ttl, CACHED_MEMBERS);
        inner.stats = StatCache::new(ttl, CACHED_FILES);
        self
    }

    /// Serves symlinks that lead to files inside the root (as those files); symlinks that
    /// lead outside, or to folders, stay unserved. Default: off.
    pub fn follow_symlinks(mut self, on: bool) -> Self {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("follow_symlinks() is called before the storage is shared");
        // Where the kernel says the root is; without /proc no link is followed.
        inner.follow_symlinks = on
            .then(|| std::fs::read_link(proc_fd_path(&inner.root)).ok())
            .flatten();
        self
    }

    /// Whether writes are flushed to disk before they are acknowledged. Default:
    /// [`SyncPolicy::Always`].
    pub fn sync_policy(mut self, sync: SyncPolicy) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("sync_policy() is called before the storage is shared")
            .sync = sync;
        self
    }

    /// The folder served.
    pub fn root_path(&self) -> &Path {
        &self.inner.root_path
    }

    /// [`FsStorage::blocking`] for a change to `paths`: the caches forget them once it is
    /// made (so no concurrent read can cache the old state after the change).
    async fn changing<T, F>(&self, paths: &[&ResourcePath], f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let result = self.blocking(f).await;
        for p in paths {
            self.inner.changed(p);
        }
        result
    }

    /// [`FsStorage::changing`] for a change to one directory entry (mkdir, rename): without
    /// a flush to wait for it runs in place, like [`Storage::metadata`]. The lookups before it
    /// have brought the folders into the cache, so the call rarely waits on the disk, and it
    /// costs less than the two thread switches of the blocking pool would.
    async fn changing_entry<T, F>(&self, paths: &[&ResourcePath], f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        if self.inner.sync == SyncPolicy::Always {
            return self.changing(paths, f).await;
        }
        let result = f(&self.inner);
        for p in paths {
            self.inner.changed(p);
        }
        result
    }

    /// Writes a large body into the page cache from the runtime thread as it arrives, each
    /// piece while it is still in the CPU's cache. A blocking thread fed through a channel
    /// cost about 20 thread switches per MiB on a one-core server and 40% more CPU per GiB
    /// (1 GiB PUT: 2.3-2.8 GB/s against 4 GB/s for a plain read-write loop). Should a write
    /// block for [`SLOW_WRITE`] (the kernel throttling writers, a slow disk), the rest goes
    /// through a blocking thread, so other requests are not held up behind the disk.
    async fn write_streamed(
        &self,
        path: &ResourcePath,
        head: Bytes,
        mut body: ByteStream,
    ) -> Result<Temp, StorageError> {
        let mut temp = prepare_write(&self.inner, path)?;
        let mut size = head.len();
        let mut pending = vec![head];
        loop {
            let next = body.next().await;
            let end = !matches!(next, Some(Ok(_)));
            match next {
                Some(Ok(chunk)) => {
                    size += chunk.len();
                    pending.push(chunk);
                }
                // Dropping the temporary file removes it: nothing changed.
                Some(Err(e)) => return Err(StorageError::BodyAborted(e)),
                None => {}
            }
            if size >= INLINE_WRITE || pending.len() >= MAX_GATHER || end {
                let started = Instant::now();
                write_gathered(temp.file(), &mut pending).map_err(StorageError::from_io)?;
                size = 0;
                if end {
                    break;
                }
                if started.elapsed() >= self.inner.slow_write {
                    return self.write_on_thread(temp, body).await;
                }
            }
        }
        if self.inner.sync == SyncPolicy::Never {
            return Ok(temp);
        }
        self.blocking(move |_| {
            temp.flush()?;
            Ok(temp)
        })
        .await
    }

    /// The rest of a large body, written by a blocking thread while it keeps arriving, fed
    /// through a bounded channel (so memory stays bounded when the disk is slower).
    async fn write_on_thread(
        &self,
        mut temp: Temp,
        mut body: ByteStream,
    ) -> Result<Temp, StorageError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        let aborted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::clone(&aborted);
        let writer = tokio::task::spawn_blocking(move || -> Result<Temp, StorageError> {
            // Chunks are gathered, not copied, so the disk sees large writes.
            let mut pending = Vec::new();
            let mut size = 0;
            while let Some(chunk) = rx.blocking_recv() {
                size += chunk.len();
                pending.push(chunk);
                if size >= WRITE_BUFFER || pending.len() >= MAX_GATHER {
                    write_gathered(temp.file(), &mut pending).map_err(StorageError::from_io)?;
                    size = 0;
                }
            }
            write_gathered(temp.file(), &mut pending).map_err(StorageError::from_io)?;
            if !stop.load(std::sync::atomic::Ordering::Relaxed) {
                temp.flush()?;
            }
            Ok(temp)
        });
        let mut failed = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    if tx.send(chunk).await.is_err() {
                        break; // The writer stopped; its error says why.
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_some() {
            aborted.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        drop(tx);
        let temp = writer
            .await
            .map_err(|e| StorageError::Io(io::Error::other(e)))??;
        match failed {
            // Dropping the temporary file removes it: nothing changed.
            Some(e) => Err(StorageError::BodyAborted(e)),
            None => Ok(temp),
        }
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

/// Timestamps that set the modification time to `modified` and leave the access time.
fn dated(modified: SystemTime) -> rustix::fs::Timestamps {
    rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: timespec(modified),
    }
}

/// `t` as the kernel takes it; times before 1970 count back from the epoch.
fn timespec(t: SystemTime) -> rustix::fs::Timespec {
    let split = |d: Duration| {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        (secs, i64::from(d.subsec_nanos()))
    };
    let (tv_sec, tv_nsec) = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => split(after),
        Err(e) => match split(e.duration()) {
            (secs, 0) => (-secs, 0),
            (secs, nanos) => (-secs - 1, 1_000_000_000 - nanos),
        },
    };
    rustix::fs::Timespec { tv_sec, tv_nsec }
}

fn errno(e: Errno) -> StorageError {
    StorageError::from_io(io::Error::from(e))
}

/// Whether `openat2` works beneath `root`: every access depends on it, and without it (Linux
/// before 5.6, or a seccomp filter that does not know it) each one would fail with `ENOSYS`
/// or `EPERM`.
fn resolves_beneath(root: &OwnedFd) -> io::Result<()> {
    let probe = rustix::fs::openat2(
        root,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    );
    openat2_verdict(probe.map(drop))
}

fn openat2_verdict(probe: Result<(), Errno>) -> io::Result<()> {
    match probe {
        Err(e @ (Errno::NOSYS | Errno::PERM)) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "the kernel refused openat2 ({e}), which Davit needs to keep every path \
                 beneath the served folder: Linux 5.6 or later is required, and a container's \
                 seccomp profile must allow openat2"
            ),
        )),
        other => other.map_err(io::Error::from),
    }
}

/// The `/proc` name of an open descriptor: where the kernel says it is, or (for linking)
/// a name for an unnamed file.
fn proc_fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `rel` of a folder with a trailing slash, ready for a member name ("" for the root).
fn rel_dir_prefix(dir: &ResourcePath) -> String {
    if dir.is_root() {
        String::new()
    } else {
        format!("{}/", &dir.as_str()[1..])
    }
}

fn rel(path: &ResourcePath) -> &str {
    if path.is_root() {
        "."
    } else {
        &path.as_str()[1..]
    }
}

/// Case-insensitive, as some filesystems (vfat, casefolded ext4) open names.
fn is_temp(name: &str) -> bool {
    name.get(..TEMP_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(TEMP_PREFIX))
}

/// Whether `segment` may open the hidden name `hidden`: in any case, with trailing dots
/// or spaces (vfat and exFAT drop them when they look a name up), or as vfat's short alias
/// of it (`DAVIT~1` for `.davit`).
fn opens_hidden(segment: &str, hidden: &str) -> bool {
    if segment
        .trim_end_matches(['.', ' '])
        .eq_ignore_ascii_case(hidden)
    {
        return true;
    }
    let Some((stem, rest)) = segment.split_once('~') else {
        return false;
    };
    let basis: String = hidden
        .trim_start_matches(['.', ' '])
        .chars()
        .filter(|c| !matches!(c, '.' | ' '))
        .take(6)
        .collect();
    !stem.is_empty()
        && rest.starts_with(|c: char| c.is_ascii_digit())
        && basis
            .get(..stem.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(stem))
}

impl Inner {
    fn is_hidden(&self, path: &ResourcePath) -> bool {
        let mut segments = path.segments();
        if let Some(first) = segments.next()
            && self.hidden.iter().any(|h| opens_hidden(first, h))
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

    /// The parent folder of `path`, which must be served, writable and there: a missing
    /// parent means `path` is missing too.
    fn parent_of_existing(&self, path: &ResourcePath) -> Result<OwnedFd, StorageError> {
        self.check_served(path)?;
        self.check_writable(path)?;
        self.parent(path).map_err(|e| match e {
            StorageError::ParentMissing => StorageError::NotFound,
            e => e,
        })
    }

    fn check_writable(&self, path: &ResourcePath) -> Result<(), StorageError> {
        if self.is_hidden(path) || path.is_root() {
            Err(StorageError::PermissionDenied)
        } else {
            Ok(())
        }
    }

    /// Opens `rel` beneath the root; any symlink or escape on the way fails (but a final
    /// symlink to a file inside the root, when following those).
    fn resolve(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        match self.open_beneath(rel, flags, ResolveFlags::NO_SYMLINKS) {
            Err(Errno::LOOP) if self.follow_symlinks.is_some() => {
                self.resolve_file_link(rel, flags)
            }
            // No such name can exist, so none is there: a lookup finds nothing, as at any
            // other free name; only creating one (not done through here) is an error.
            Err(Errno::NAMETOOLONG) => Err(Errno::NOENT),
            other => other,
        }
    }

    /// `rel` whose last component is a symlink: followed only when nothing before it is
    /// one, the target stays beneath the root, and it is a regular file.
    fn resolve_file_link(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        if flags.contains(OFlags::DIRECTORY) {
            return Err(Errno::LOOP);
        }
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.open_beneath(
                parent,
                OFlags::PATH | OFlags::DIRECTORY,
                ResolveFlags::NO_SYMLINKS,
            )?;
        }
        let fd = self.open_beneath(rel, flags, ResolveFlags::empty())?;
        let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::TYPE)?;
        if FileType::from_raw_mode(st.stx_mode.into()) != FileType::RegularFile {
            return Err(Errno::LOOP);
        }
        // Beneath the root is not enough: the link must not lead to what is never served
        // (the metadata folder, temporary files). Where it landed, the kernel tells.
        let root = self.follow_symlinks.as_ref().ok_or(Errno::LOOP)?;
        let target = std::fs::read_link(proc_fd_path(&fd)).map_err(|_| Errno::LOOP)?;
        let inside = target.strip_prefix(root).map_err(|_| Errno::LOOP)?;
        let mut parts = inside.components();
        let first = parts
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let unserved = first.is_some_and(|name| self.hidden.contains(&name))
            || inside
                .file_name()
                .is_some_and(|name| is_temp(&name.to_string_lossy()));
        if unserved {
            return Err(Errno::LOOP);
        }
        Ok(fd)
    }

    fn open_beneath(
        &self,
        rel: &str,
        flags: OFlags,
        extra: ResolveFlags,
    ) -> Result<OwnedFd, Errno> {
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
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | extra,
            ) {
                // The kernel asks for a retry when a concurrent rename raced the lookup.
                Err(Errno::AGAIN) if tries < 8 => tries += 1,
                other => return other,
            }
        }
    }

    /// Makes a change to `dir`'s entries durable when every write must survive a power
    /// loss ([`SyncPolicy::Always`]).
    fn synced(&self, dir: &OwnedFd) -> Result<(), StorageError> {
        if self.sync == SyncPolicy::Always {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Whether `name` in `dir` is a symlink this storage acts on as a link (DELETE, MOVE).
    fn is_served_link(&self, dir: impl AsFd, name: &str) -> bool {
        self.follow_symlinks.is_some()
            && rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
                .is_ok_and(|st| FileType::from_raw_mode(st.stx_mode.into()) == FileType::Symlink)
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
        // Seconds count back from the epoch; the nanoseconds still count forward.
        UNIX_EPOCH - Duration::from_secs(t.tv_sec.unsigned_abs())
            + Duration::from_nanos(t.tv_nsec.into())
    }
}

fn to_metadata(st: &Statx) -> Result<Metadata, StorageError> {
    let kind = match FileType::from_raw_mode(st.stx_mode.into()) {
        FileType::Directory => ResourceKind::Collection,
        FileType::RegularFile => ResourceKind::File,
        _ => return Err(StorageError::NotFound),
    };
    let len = if kind.is_collection() { 0 } else { st.stx_size };
    // The change time, not the modification time: clients set the latter (X-OC-Mtime,
    // Win32LastModifiedTime, rsync -t), so two versions of a file on a reused inode could
    // share it; every write, rename and date change sets the former to the kernel's clock.
    let ctime = st.stx_ctime;
    let etag = ETag::strong(format!(
        "{:x}-{:x}-{:x}.{:x}",
        st.stx_ino, len, ctime.tv_sec, ctime.tv_nsec
    ));
    let mtime = st.stx_mtime;
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
    /// The temporary name while the file has one; empty for an unnamed file and once
    /// renamed into place.
    name: String,
    /// Set while the file is unnamed (`O_TMPFILE`).
    unnamed: Option<LinkVia>,
    file: Option<File>,
    sync: SyncPolicy,
}

impl Temp {
    /// An unnamed file when `link` says how to name it later (no directory entry until
    /// commit: half the directory work of a named temporary, and nothing left behind by a
    /// crash), else a hidden temporary name in the same folder.
    fn create(
        parent: OwnedFd,
        sync: SyncPolicy,
        link: Option<LinkVia>,
    ) -> Result<Temp, StorageError> {
        if let Some(via) = link
            && let Ok(fd) = rustix::fs::openat(
                &parent,
                ".",
                OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
        {
            return Ok(Temp {
                parent,
                name: String::new(),
                unnamed: Some(via),
                file: Some(File::from(fd)),
                sync,
            });
        }
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
            unnamed: None,
            file: Some(File::from(fd)),
            sync,
        })
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }

    /// Flushes the data to disk (under [`SyncPolicy::Always`]).
    fn flush(&mut self) -> Result<(), StorageError> {
        if self.sync == SyncPolicy::Never {
            return Ok(());
        }
        self.file().sync_data().map_err(StorageError::from_io)
    }

    /// Renames the flushed file over `target` (a plain resource or nothing). A replaced
    /// file's permission bits carry over, and the parent is synced so the rename survives a
    /// power loss.
    fn commit(mut self, target: &str) -> Result<(WriteOutcome, Metadata), StorageError> {
        let file = self.file.take().expect("commit happens once");
        // A new name, the usual upload, is the whole commit for an unnamed file: the look-up
        // below is for a name already taken.
        if let Some(via) = self.unnamed {
            match via.link(&file, &self.parent, target) {
                Ok(()) => return self.committed(&file, WriteOutcome::Created),
                Err(Errno::EXIST) => {}
                Err(e) => return Err(link_error(e)),
            }
        }
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
                // Permission bits only: set-user-ID kept on a file this process wrote
                // would run the client's content as this process's user.
                let mode = Mode::from_raw_mode(u32::from(st.stx_mode) & 0o777);
                rustix::fs::fchmod(&file, mode).map_err(errno)?;
                WriteOutcome::Replaced
            }
            Ok(_) => WriteOutcome::Replaced,
            Err(_) => WriteOutcome::Created,
        };
        if let Some(via) = self.unnamed.take() {
            // Replacing takes a rename, which needs a name to rename from.
            let name = temp_name();
            via.link(&file, &self.parent, &name).map_err(link_error)?;
            self.name = name;
        }
        rustix::fs::renameat(&self.parent, self.name.as_str(), &self.parent, target)
            .map_err(link_error)?;
        self.name.clear();
        self.committed(&file, outcome)
    }

    /// As [`commit`](Self::commit), only if nothing is at `target`: the link of an unnamed
    /// file, or a rename that may not replace, refuses an existing name in the same step.
    fn commit_new(mut self, target: &str) -> Result<Metadata, StorageError> {
        let file = self.file.take().expect("commit happens once");
        let placed = match self.unnamed {
            Some(via) => via.link(&file, &self.parent, target),
            None => match rustix::fs::renameat_with(
                &self.parent,
                self.name.as_str(),
                &self.parent,
                target,
                RenameFlags::NOREPLACE,
            ) {
                // A filesystem without the flag: a hard link refuses an existing name too,
                // and dropping `self` unlinks the temporary name after it.
                Err(Errno::INVAL) => rustix::fs::linkat(
                    &self.parent,
                    self.name.as_str(),
                    &self.parent,
                    target,
                    AtFlags::empty(),
                ),
                renamed => renamed.inspect(|()| self.name.clear()),
            },
        };
        match placed {
            Ok(()) => self
                .committed(&file, WriteOutcome::Created)
                .map(|(_, metadata)| metadata),
            Err(Errno::EXIST) => Err(StorageError::AlreadyExists),
            Err(e) => Err(link_error(e)),
        }
    }

    /// Once `file` is in place: its parent synced if every write must survive a power loss,
    /// and its metadata.
    fn committed(
        &self,
        file: &File,
        outcome: WriteOutcome,
    ) -> Result<(WriteOutcome, Metadata), StorageError> {
        if self.sync == SyncPolicy::Always {
            sync_dir(&self.parent)?;
        }
        let st = rustix::fs::statx(file, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(errno)?;
        Ok((outcome, to_metadata(&st)?))
    }
}

fn link_error(e: Errno) -> StorageError {
    match e {
        Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST => StorageError::IsCollection,
        Errno::NOENT => StorageError::ParentMissing,
        e => errno(e),
    }
}

/// How an unnamed file is linked into a folder: `AT_EMPTY_PATH` needs a capability that
/// unprivileged servers lack, `/proc/self/fd` needs `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkVia {
    EmptyPath,
    ProcFd,
}

impl LinkVia {
    /// Which way works under `root`, found by trying each on a scratch file; `None` when
    /// the filesystem has no `O_TMPFILE` (or the root is not writable), so writes use
    /// named temporary files.
    fn probe(root: &OwnedFd) -> Option<LinkVia> {
        let fd = rustix::fs::openat(
            root,
            ".",
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ok()?;
        let file = File::from(fd);
        [LinkVia::EmptyPath, LinkVia::ProcFd]
            .into_iter()
            .find(|via| {
                let name = temp_name();
                let linked = via.link(&file, root, &name).is_ok();
                if linked {
                    let _ = rustix::fs::unlinkat(root, name.as_str(), AtFlags::empty());
                }
                linked
            })
    }

    fn link(self, file: &File, dir: &OwnedFd, name: &str) -> Result<(), Errno> {
        match self {
            LinkVia::EmptyPath => rustix::fs::linkat(file, "", dir, name, AtFlags::EMPTY_PATH),
            LinkVia::ProcFd => {
                let path = proc_fd_path(file);
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    path.as_str(),
                    dir,
                    name,
                    AtFlags::SYMLINK_FOLLOW,
                )
            }
        }
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

/// Opens the parent of `path` for a write, refusing at once when `path` is a collection:
/// before a body of any size is written.
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
    Temp::create(parent, inner.sync, inner.link)
}

/// [`prepare_write`] for a body already in memory: a collection at `path` is refused at
/// commit, which costs one small write, and spares every other write a look-up.
fn prepare_small_write(inner: &Inner, path: &ResourcePath) -> Result<Temp, StorageError> {
    inner.check_writable(path)?;
    Temp::create(inner.parent(path)?, inner.sync, inner.link)
}

/// A body flushed to a temporary file, renamed into place on commit.
#[derive(Debug)]
struct FsPendingWrite {
    storage: FsStorage,
    /// Taken by commit; dropping it unlinks the file.
    temp: Option<Temp>,
    path: ResourcePath,
    /// [`Inner::moved`] before the folder was opened.
    moved_at: u64,
}

#[async_trait]
impl PendingWrite for FsPendingWrite {
    fn set_modified(&mut self, modified: SystemTime) -> Result<(), StorageError> {
        let temp = self.temp.as_mut().expect("dated before commit");
        rustix::fs::futimens(temp.file(), &dated(modified)).map_err(errno)
    }

    async fn commit(self: Box<Self>) -> Result<(WriteOutcome, Metadata), StorageError> {
        self.put_in_place(Temp::commit).await
    }

    async fn commit_new(self: Box<Self>) -> Result<Metadata, StorageError> {
        self.put_in_place(Temp::commit_new).await
    }
}

/// Whether `held` is still the folder `path`'s parent names; [`StorageError::ParentMissing`]
/// when it is not (or no longer exists).
fn same_folder(inner: &Inner, held: &OwnedFd, path: &ResourcePath) -> Result<(), StorageError> {
    let now = inner.parent(path)?;
    let id = |fd: &OwnedFd| {
        rustix::fs::fstat(fd)
            .map(|st| (st.st_dev, st.st_ino))
            .map_err(errno)
    };
    if id(held)? == id(&now)? {
        Ok(())
    } else {
        Err(StorageError::ParentMissing)
    }
}

impl FsPendingWrite {
    /// Puts the temporary file in place with `place`, then forgets what the caches knew of
    /// the path.
    async fn put_in_place<T: Send + 'static>(
        mut self: Box<Self>,
        place: fn(Temp, &str) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let temp = self.temp.take().expect("commit happens once");
        let inner = &self.storage.inner;
        if inner.moved.load(Ordering::Acquire) != self.moved_at {
            // A slow upload's folder may have been moved or deleted since it was opened:
            // committing into it would write where the folder went, over another file.
            same_folder(inner, &temp.parent, &self.path)?;
        }
        let done = if temp.sync == SyncPolicy::Never {
            // A rename and two stats, nothing waiting for the disk: inline.
            place(temp, self.path.name())
        } else {
            let path = self.path.clone();
            self.storage
                .blocking(move |_| place(temp, path.name()))
                .await
        };
        self.storage.inner.changed(&self.path);
        done
    }
}

#[derive(Debug)]
struct FsReader {
    metadata: Metadata,
    content: Content,
}

/// A small file is read whole at open; a large one streams from its descriptor.
#[derive(Debug)]
enum Content {
    Small(Bytes),
    Large(Arc<File>),
}

impl FileReader for FsReader {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn in_memory(&self) -> Option<&Bytes> {
        match &self.content {
            Content::Small(data) => Some(data),
            Content::Large(_) => None,
        }
    }

    fn file(&self) -> Option<&File> {
        match &self.content {
            Content::Small(_) => None,
            Content::Large(file) => Some(file),
        }
    }

    fn stream(self: Box<Self>, range: Option<ByteRange>) -> ByteStream {
        let range = range.unwrap_or(ByteRange {
            start: 0,
            end: self.metadata.len,
        });
        let file = match self.content {
            Content::Small(data) => {
                let end = (range.end as usize).min(data.len());
                let start = (range.start as usize).min(end);
                return Box::pin(futures_util::stream::iter([Ok(data.slice(start..end))]));
            }
            Content::Large(file) => file,
        };
        // A blocking thread reads ahead while the socket takes what was read.
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
        tokio::task::spawn_blocking(move || {
            use std::io::Seek;
            let mut f = &*file;
            if let Err(e) = f.seek(io::SeekFrom::Start(range.start)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            let pool = BufferPool::default();
            let mut left = range.end - range.start;
            while left > 0 {
                let want = READ_CHUNK.min(left as usize);
                let mut buf = pool.take(want);
                let chunk = match read_full(&mut f, &mut buf) {
                    Ok(0) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while it was being sent",
                    )),
                    Ok(n) => {
                        left -= n as u64;
                        buf.truncate(n);
                        Ok(Bytes::from_owner(pool.lend(buf)))
                    }
                    Err(e) => Err(e),
                };
                let failed = chunk.is_err();
                // The receiver is gone when the client went away: stop reading.
                if tx.blocking_send(chunk).is_err() || failed {
                    return;
                }
            }
        });
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        }))
    }
}

/// Writes `chunks` with as few `writev` calls as the kernel allows, then empties it.
fn write_gathered(mut f: &File, chunks: &mut Vec<Bytes>) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = chunks.iter().map(|c| io::IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match f.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    drop(slices);
    chunks.clear();
    Ok(())
}

/// Reads until `buf` is full or the file ends; the count read.
fn read_full(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Read buffers of one download, handed back when the socket is done with them: fresh
/// megabyte buffers cost page faults and zeroing on every chunk, about a sixth of a large
/// GET. The pool lives as long as the download.
#[derive(Debug, Default, Clone)]
struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// A buffer of `len` bytes, reused when one is free.
    fn take(&self, len: usize) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut buf = reused.unwrap_or_default();
        // Only bytes never written before are zeroed.
        buf.resize(len, 0);
        buf
    }

    fn lend(&self, buf: Vec<u8>) -> Lent {
        Lent {
            buf,
            pool: self.clone(),
        }
    }
}

/// A pooled buffer inside a `Bytes`; dropping it returns the buffer.
#[derive(Debug)]
struct Lent {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut free = self.pool.0.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() <= READ_AHEAD {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

#[async_trait]
impl Storage for FsStorage {
    async fn metadata(&self, path: &ResourcePath) -> Result<Metadata, StorageError> {
        // Two syscalls that the page cache answers: cheaper inline than a thread hop.
        let inner = &self.inner;
        let generation = match inner.stats.get(path.as_str()) {
            Ok(metadata) => return Ok(metadata),
            Err(generation) => generation,
        };
        inner.look_up(path, generation)
    }

    async fn metadata_fresh(&self, path: &ResourcePath) -> Result<Metadata, StorageError> {
        let inner = &self.inner;
        let found = inner.look_up(path, inner.stats.generation());
        if let Err(StorageError::NotFound) = found
            && inner.stats.get(path.as_str()).is_ok()
        {
            // Gone behind Davit's back: nothing cached may say otherwise.
            inner.changed(path);
        }
        found
    }

    async fn list(&self, dir: &ResourcePath) -> Result<Vec<Entry>, StorageError> {
        let generation = match self.inner.listings.get(dir.as_str()) {
            Ok(entries) => return Ok(entries),
            Err(generation) => generation,
        };
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
                    tracing::debug!(dir = ?dir, "skipping a member whose name is not UTF-8");
                    continue;
                };
                if name == "." || name == ".." || is_temp(name) {
                    continue;
                }
                if dir.is_root() && inner.hidden.iter().any(|h| h == name) {
                    continue;
                }
                let metadata = match ent.file_type() {
                    FileType::RegularFile | FileType::Directory | FileType::Unknown => {
                        inner.metadata_at(&fd, name)
                    }
                    FileType::Symlink if inner.follow_symlinks.is_some() => {
                        let member = format!("{}{name}", rel_dir_prefix(&dir));
                        match inner.resolve(&member, OFlags::PATH) {
                            Ok(target) => {
                                rustix::fs::statx(&target, "", AtFlags::EMPTY_PATH, STATX_MASK)
                                    .map_err(errno)
                                    .and_then(|st| to_metadata(&st))
                            }
                            // Leads outside, to a folder, or nowhere: not served.
                            Err(_) => continue,
                        }
                    }
                    _ => continue,
                };
                match metadata {
                    // Gone since the directory was read, or not something we serve.
                    Err(StorageError::NotFound) => {}
                    metadata => entries.push(Entry {
                        name: name.to_owned(),
                        metadata,
                    }),
                }
            }
            inner.listings.put(dir.as_str(), &entries, generation);
            Ok(entries)
        })
        .await
    }

    async fn open(&self, path: &ResourcePath) -> Result<Box<dyn FileReader>, StorageError> {
        // Inline, like the event loops of nginx and lighttpd: opening and reading up to
        // SMALL_FILE bytes is a handful of syscalls the page cache answers, cheaper than a
        // thread hop; and the read cache often saves even those. Larger files stream
        // through blocking threads.
        let inner = &self.inner;
        let cached = match inner.cache.get(path.as_str()) {
            Lookup::Fresh(metadata, data) => {
                return Ok(Box::new(FsReader {
                    metadata,
                    content: Content::Small(data),
                }));
            }
            Lookup::Stale(metadata, data) => Some((metadata, data)),
            Lookup::Miss => None,
        };
        let generation = inner.cache.generation();
        inner.check_served(path)?;
        let fd = inner
            .resolve(rel(path), OFlags::RDONLY | OFlags::NONBLOCK)
            .map_err(errno)?;
        let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(errno)?;
        let metadata = to_metadata(&st)?;
        if metadata.kind.is_collection() {
            return Err(StorageError::IsCollection);
        }
        let mut metadata = metadata;
        let content = match cached {
            // Same inode, size and modification time: the bytes held are still right.
            Some((old, data)) if old.etag == metadata.etag => Content::Small(data),
            _ if metadata.len <= SMALL_FILE => {
                let mut buf = Vec::with_capacity(metadata.len as usize);
                (&File::from(fd))
                    .take(metadata.len)
                    .read_to_end(&mut buf)
                    .map_err(StorageError::from_io)?;
                // A file that shrank since the stat is served as read.
                metadata.len = buf.len() as u64;
                Content::Small(Bytes::from(buf))
            }
            _ => Content::Large(Arc::new(File::from(fd))),
        };
        if let Content::Small(data) = &content {
            inner
                .cache
                .put(path.as_str(), metadata.clone(), data.clone(), generation);
        }
        Ok(Box::new(FsReader { metadata, content }))
    }

    async fn prepare_write(
        &self,
        path: &ResourcePath,
        mut body: ByteStream,
    ) -> Result<Box<dyn PendingWrite>, StorageError> {
        let moved_at = self.inner.moved.load(Ordering::Acquire);
        // A small body is gathered and written in one blocking call.
        let mut head = BytesMut::new();
        let done = loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    head.extend_from_slice(&chunk);
                    if head.len() >= SMALL_WRITE {
                        break false;
                    }
                }
                Some(Err(e)) => return Err(StorageError::BodyAborted(e)),
                None => break true,
            }
        };
        let head = head.freeze();
        let data = head.clone();
        let small = move |inner: &Inner, target: &ResourcePath| {
            let mut t = prepare_small_write(inner, target)?;
            t.file().write_all(&data).map_err(StorageError::from_io)?;
            t.flush()?;
            Ok(t)
        };
        let temp = if done && self.inner.sync == SyncPolicy::Never {
            // Nothing waits for the disk: a few syscalls into the page cache, cheaper
            // inline than a thread hop.
            small(&self.inner, path)?
        } else if done {
            let target = path.clone();
            self.blocking(move |inner| small(inner, &target)).await?
        } else {
            self.write_streamed(path, head, body).await?
        };
        Ok(Box::new(FsPendingWrite {
            storage: self.clone(),
            temp: Some(temp),
            path: path.clone(),
            moved_at,
        }))
    }

    async fn create_collection(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let target = path.clone();
        self.changing_entry(&[path], move |inner| {
            let path = target;
            if path.is_root() {
                return Err(StorageError::AlreadyExists);
            }
            inner.check_writable(&path)?;
            let parent = inner.parent(&path)?;
            rustix::fs::mkdirat(&parent, path.name(), Mode::from_raw_mode(0o755)).map_err(errno)?;
            inner.synced(&parent)
        })
        .await
    }

    async fn set_modified(
        &self,
        path: &ResourcePath,
        modified: SystemTime,
    ) -> Result<(), StorageError> {
        let target = path.clone();
        self.changing_entry(&[path], move |inner| {
            let path = target;
            let parent = inner.parent_of_existing(&path)?;
            // Not followed: a served link keeps its target's date, as its listing shows.
            let (name, times) = (path.name(), dated(modified));
            rustix::fs::utimensat(&parent, name, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)
        })
        .await
    }

    async fn space(&self) -> Result<Space, StorageError> {
        // On a network filesystem this asks the server: off the runtime thread.
        let st = self
            .blocking(|inner| rustix::fs::fstatvfs(&inner.root).map_err(errno))
            .await?;
        // Available to an unprivileged writer (the blocks reserved for root left out), and
        // taken by anyone.
        Ok(Space {
            available: st.f_bavail.saturating_mul(st.f_frsize),
            used: st
                .f_blocks
                .saturating_sub(st.f_bfree)
                .saturating_mul(st.f_frsize),
        })
    }

    async fn remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let target = path.clone();
        self.changing(&[path], move |inner| {
            let path = target;
            let parent = inner.parent_of_existing(&path)?;
            let kind = match inner.metadata_at(&parent, path.name()) {
                Err(StorageError::NotFound) if inner.is_served_link(&parent, path.name()) => {
                    ResourceKind::File
                }
                other => other?.kind,
            };
            if !kind.is_collection() {
                rustix::fs::unlinkat(&parent, path.name(), AtFlags::empty()).map_err(errno)?;
                return inner.synced(&parent);
            }
            match rustix::fs::unlinkat(&parent, path.name(), AtFlags::REMOVEDIR) {
                Err(Errno::NOTEMPTY) => {
                    remove_unserved_members(&parent, path.name())?;
                    rustix::fs::unlinkat(&parent, path.name(), AtFlags::REMOVEDIR)
                        .map_err(errno)?;
                }
                other => other.map_err(errno)?,
            }
            inner.moved.fetch_add(1, Ordering::Release);
            inner.synced(&parent)
        })
        .await
    }

    async fn copy_file(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let (src_path, dst_path) = (from.clone(), to.clone());
        self.changing(&[to], move |inner| {
            let (from, to) = (src_path, dst_path);
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

    async fn copy_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        if self.inner.follow_symlinks.is_some() {
            // The tree copy skips links; member by member, a served link is copied as the
            // file it leads to, as a client listing the folder would expect.
            return Err(StorageError::Unsupported);
        }
        let (src_path, dst_path) = (from.clone(), to.clone());
        self.changing(&[to], move |inner| {
            let (from, to) = (src_path, dst_path);
            inner.check_served(&from)?;
            inner.check_writable(&to)?;
            let src = inner
                .resolve(rel(&from), OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(errno)?;
            let parent = inner.parent(&to)?;
            // Built under a temporary name, so the copy appears whole or not at all: in the
            // staging folder where that gives the same result, else beside the target.
            let temp = temp_name();
            let staged = inner.staging().filter(|st| {
                let dir = to.parent().unwrap_or_else(ResourcePath::root);
                inner
                    .resolve(rel(&dir), OFlags::RDONLY | OFlags::DIRECTORY)
                    .is_ok_and(|dir| st.suits(&dir))
                    && rustix::fs::mkdirat(&st.dir, temp.as_str(), Mode::from_raw_mode(0o755))
                        .is_ok()
            });
            let site = staged.map_or(&parent, |st| &st.dir);
            if staged.is_none() {
                rustix::fs::mkdirat(site, temp.as_str(), Mode::from_raw_mode(0o755))
                    .map_err(errno)?;
            }
            let built = (|| {
                let dst = rustix::fs::openat(
                    site,
                    temp.as_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?;
                copy_dir(&src, &dst, 0, &mut vec![0u8; SMALL_COPY])?;
                if inner.sync == SyncPolicy::Always {
                    // One flush for the whole tree instead of one per file.
                    rustix::fs::syncfs(&dst).map_err(errno)?;
                }
                rustix::fs::renameat_with(
                    site,
                    temp.as_str(),
                    &parent,
                    to.name(),
                    RenameFlags::NOREPLACE,
                )
                .map_err(errno)?;
                if inner.sync == SyncPolicy::Always {
                    sync_dir(&parent)?;
                    if staged.is_some() {
                        // Or a crash could leave the tree listed in staging too, and the
                        // next start would empty it as a leftover.
                        sync_dir(site)?;
                    }
                }
                Ok(())
            })();
            if built.is_err() {
                remove_all(site, &temp);
            }
            built
        })
        .await?;
        // Looked up once the caches have forgotten the target, so that the request that
        // usually follows a copy (a PROPFIND of it, a MOVE into place) finds it cached.
        // The copy is made whatever this finds.
        let _ = self.metadata(to).await;
        Ok(())
    }

    async fn rename(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let (src_path, dst_path) = (from.clone(), to.clone());
        self.changing_entry(&[from, to], move |inner| {
            let (from, to) = (src_path, dst_path);
            inner.check_served(&from)?;
            inner.check_writable(&from)?;
            inner.check_writable(&to)?;
            let src_parent = inner.parent(&from).map_err(|e| match e {
                StorageError::ParentMissing => StorageError::NotFound,
                e => e,
            })?;
            // Refuse to move what is not served (a symlink) before renaming anything.
            match inner.metadata_at(&src_parent, from.name()) {
                Err(StorageError::NotFound) if inner.is_served_link(&src_parent, from.name()) => {}
                other => {
                    other?;
                }
            }
            let other_parent;
            let dst_parent = if from.parent() == to.parent() {
                &src_parent
            } else {
                other_parent = inner.parent(&to)?;
                &other_parent
            };
            rustix::fs::renameat_with(
                &src_parent,
                from.name(),
                dst_parent,
                to.name(),
                RenameFlags::NOREPLACE,
            )
            .map_err(|e| match e {
                // Another filesystem, or one without the flag (NFS, FUSE): moved by copy.
                Errno::XDEV | Errno::INVAL => StorageError::Unsupported,
                e => errno(e),
            })?;
            inner.moved.fetch_add(1, Ordering::Release);
            inner.synced(dst_parent)?;
            if from.parent() != to.parent() {
                inner.synced(&src_parent)?;
            }
            Ok(())
        })
        .await
    }

    /// Expired entries would otherwise stay until a cache fills: an idle server kept the
    /// bytes of up to 4,096 small files, and every lookup walked the deeper maps.
    fn tidy(&self) -> bool {
        let inner = &self.inner;
        let stats = inner.stats.tidy();
        let listings = inner.listings.tidy();
        let files = inner
            .cache
            .tidy(inner.cache.ttl().saturating_mul(READ_CACHE_KEEP));
        stats || listings || files
    }
}

/// Name of the folder under the root where tree copies are built.
const STAGING: &str = ".~davit-copies";

/// The folder where this process builds tree copies before renaming them into place.
///
/// It carries the ext4 "top directory" hint, so each copy's folder, with a fresh random
/// name, lands in a block group of its own instead of the group of the folder it is copied
/// into. That group often holds the inodes of a tree deleted moments ago, and without a
/// journal ext4 refuses to reuse an inode for a minute after its deletion, scanning past
/// every such inode for every new file: copying 10,000 files right after deleting 10,000
/// took 5 s instead of 0.5 s. Other filesystems ignore the hint or refuse it (harmless).
///
/// Each process builds in a folder of its own under [`STAGING`] and holds an exclusive
/// `flock` on it while it runs; folders nobody holds were left by a process that ended
/// mid-copy and are removed when the next one starts.
#[derive(Debug)]
struct Staging {
    dir: OwnedFd,
    /// What entries made here take from their folder; a copy is built here only for a
    /// destination folder that would give them the same.
    inherited: Inherited,
}

/// What a new entry takes from the folder it is made in, besides its place on disk.
#[derive(Debug, PartialEq, Eq)]
struct Inherited {
    /// Mount and device: a rename only works within both.
    mount: u64,
    device: (u32, u32),
    /// Inode flags new entries inherit (compression, no-COW, casefold, project...).
    flags: u32,
    /// SELinux label, where there is one.
    label: Option<Vec<u8>>,
}

impl Inherited {
    /// `None` for a folder that hands on more than this describes: its group (setgid) or a
    /// default ACL. Copies into such folders are built in them, as before staging.
    fn of(dir: &OwnedFd) -> Option<Inherited> {
        let st = rustix::fs::statx(
            dir,
            "",
            AtFlags::EMPTY_PATH,
            StatxFlags::MODE | StatxFlags::MNT_ID,
        )
        .ok()?;
        if st.stx_mask & StatxFlags::MNT_ID.bits() == 0
            || u32::from(st.stx_mode) & Mode::SGID.bits() != 0
            || xattr(dir, "system.posix_acl_default").is_some()
        {
            return None;
        }
        let flags = rustix::fs::ioctl_getflags(dir)
            .map_or(0, |f| f.difference(rustix::fs::IFlags::TOPDIR).bits());
        Some(Inherited {
            mount: st.stx_mnt_id,
            device: (st.stx_dev_major, st.stx_dev_minor),
            flags,
            label: xattr(dir, "security.selinux"),
        })
    }
}

/// The value of extended attribute `name`, if the folder has it.
fn xattr(dir: &OwnedFd, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::fgetxattr(dir, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        // Too long for the buffer: present, and unlike anything it is compared with.
        Err(Errno::RANGE) => Some(Vec::new()),
        Err(_) => None,
    }
}

fn open_dir(dir: &OwnedFd, name: &str) -> Option<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

impl Staging {
    /// Makes this process's staging folder, after removing those of processes that ended.
    fn open(root: &OwnedFd) -> Option<Staging> {
        match rustix::fs::mkdirat(root, STAGING, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(_) => return None,
        }
        let all = open_dir(root, STAGING)?;
        for name in leftovers(&all) {
            remove_all(&all, &name);
        }
        let own = temp_name();
        rustix::fs::mkdirat(&all, own.as_str(), Mode::from_raw_mode(0o700)).ok()?;
        let dir = open_dir(&all, &own)?;
        // Held until the process ends: the descriptor is kept for its whole life.
        rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
        if let Ok(flags) = rustix::fs::ioctl_getflags(&dir) {
            let _ = rustix::fs::ioctl_setflags(&dir, flags | rustix::fs::IFlags::TOPDIR);
        }
        let inherited = Inherited::of(&dir)?;
        Some(Staging { dir, inherited })
    }

    /// Whether a copy into `dir` (opened for reading) can be built here: renamed into it,
    /// with its entries taking from it nothing they would not take from the staging folder.
    fn suits(&self, dir: &OwnedFd) -> bool {
        Inherited::of(dir).is_some_and(|i| i == self.inherited)
    }
}

/// Staging folders no running process holds.
fn leftovers(all: &OwnedFd) -> Vec<String> {
    let Ok(mut reader) = Dir::read_from(all) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    while let Some(Ok(ent)) = reader.read() {
        let Ok(name) = ent.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        // The lock taken here is released with the descriptor, at the end of this test.
        let unheld = open_dir(all, name).is_some_and(|d| {
            rustix::fs::flock(&d, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
        });
        if unheld {
            found.push(name.to_owned());
        }
    }
    found
}

impl Inner {
    /// The staging folder, made on first use; `None` where it cannot be made (a read-only
    /// root), and tree copies are then built beside their target.
    fn staging(&self) -> Option<&Staging> {
        self.staging
            .get_or_init(|| Staging::open(&self.root))
            .as_ref()
    }
}

/// Nesting beyond which a tree copy gives up (and the member-by-member copy takes over).
const MAX_COPY_DEPTH: usize = 256;

/// Copies the served members of `src` into the empty folder `dst`: folders, and files with
/// `copy_file_range` (reflinks where the filesystem has them) or, when small, a read and a
/// write. What is not served (symlinks, temporary files, names that are not UTF-8) is not
/// copied, as a member-by-member copy would not see it either. `buf` (of [`SMALL_COPY`]
/// bytes) serves the whole tree.
fn copy_dir(
    src: &OwnedFd,
    dst: &OwnedFd,
    depth: usize,
    buf: &mut [u8],
) -> Result<(), StorageError> {
    if depth > MAX_COPY_DEPTH {
        return Err(StorageError::Unsupported);
    }
    let mut reader = Dir::read_from(src).map_err(errno)?;
    let mut unread = Vec::with_capacity(READ_AHEAD_FILES);
    while let Some(ent) = reader.read() {
        let ent = ent.map_err(errno)?;
        let raw = ent.file_name();
        let Ok(name) = raw.to_str() else { continue };
        if name == "." || name == ".." || is_temp(name) {
            continue;
        }
        let kind = match ent.file_type() {
            FileType::Unknown => {
                let st = rustix::fs::statx(src, raw, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
                    .map_err(errno)?;
                FileType::from_raw_mode(st.stx_mode.into())
            }
            known => known,
        };
        match kind {
            FileType::Directory => {
                let from = open_member(src, raw, OFlags::DIRECTORY)?;
                let st = rustix::fs::fstat(&from).map_err(errno)?;
                rustix::fs::mkdirat(dst, raw, Mode::from_raw_mode(st.st_mode & 0o7777))
                    .map_err(errno)?;
                copy_dir(
                    &from,
                    &open_member(dst, raw, OFlags::DIRECTORY)?,
                    depth + 1,
                    buf,
                )?;
            }
            FileType::RegularFile => {
                let Some(file) = SourceFile::open(src, raw)? else {
                    continue;
                };
                if let Some(file) = copy_if_in_memory(file, dst, buf)? {
                    // Read in by the kernel meanwhile, and opened again to be copied (so no
                    // descriptor is held): a tree not in memory is read many files at a
                    // time, not one wait on the disk per file.
                    let _ = rustix::fs::fadvise(&file.from, 0, None, rustix::fs::Advice::WillNeed);
                    unread.push(file.name);
                    if unread.len() == READ_AHEAD_FILES {
                        copy_files(src, &mut unread, dst, buf)?;
                    }
                }
            }
            _ => {}
        }
    }
    copy_files(src, &mut unread, dst, buf)
}

fn open_member(dir: &OwnedFd, name: &CStr, flags: OFlags) -> Result<OwnedFd, StorageError> {
    rustix::fs::openat(
        dir,
        name,
        flags | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

/// A file of a tree being copied, open, with what it was when opened.
struct SourceFile {
    name: CString,
    from: OwnedFd,
    mode: Mode,
    size: u64,
}

impl SourceFile {
    /// `name` in `dir`, opened; `None` when it is no longer a plain file, or gone: the copy
    /// shows the tree as it was while it was copied, as a member-by-member copy would.
    fn open(dir: &OwnedFd, name: &CStr) -> Result<Option<SourceFile>, StorageError> {
        // Non-blocking: should a pipe have replaced the file, opening it must not wait.
        let from = match open_member(dir, name, OFlags::NONBLOCK | OFlags::NOCTTY) {
            Err(StorageError::NotFound) => return Ok(None),
            other => other?,
        };
        let st = rustix::fs::fstat(&from).map_err(errno)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(None); // Replaced by something else since the listing.
        }
        Ok(Some(SourceFile {
            name: name.to_owned(),
            from,
            mode: Mode::from_raw_mode(st.st_mode & 0o777),
            size: u64::try_from(st.st_size).unwrap_or(0),
        }))
    }

    fn create_copy(&self, dst: &OwnedFd) -> Result<File, StorageError> {
        rustix::fs::openat(
            dst,
            self.name.as_c_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            self.mode,
        )
        .map(File::from)
        .map_err(errno)
    }

    /// Copies the file into `dst`, through `buf` when it fits.
    fn copy_to(self, dst: &OwnedFd, buf: &mut [u8]) -> Result<(), StorageError> {
        let to = self.create_copy(dst)?;
        copy_small(self.from, to, self.size, buf)
    }
}

/// Copies `file` into `dst` unless it is small and its data is not all in memory: then it is
/// handed back, to be copied once read in.
fn copy_if_in_memory(
    file: SourceFile,
    dst: &OwnedFd,
    buf: &mut [u8],
) -> Result<Option<SourceFile>, StorageError> {
    let Some(want) = fits(file.size, buf) else {
        file.copy_to(dst, buf)?;
        return Ok(None);
    };
    let read = rustix::io::preadv2(
        &file.from,
        &mut [io::IoSliceMut::new(&mut buf[..want])],
        0,
        ReadWriteFlags::NOWAIT,
    );
    match read {
        Ok(n) if n == want => {
            file.create_copy(dst)?
                .write_all(&buf[..n])
                .map_err(StorageError::from_io)?;
            Ok(None)
        }
        // Not (all) in memory.
        Ok(_) | Err(Errno::AGAIN) => Ok(Some(file)),
        // A filesystem that cannot say: copied at once.
        Err(_) => {
            file.copy_to(dst, buf)?;
            Ok(None)
        }
    }
}

/// Copies the files of `src` named in `unread` into `dst`, in the order their reads were
/// asked for.
fn copy_files(
    src: &OwnedFd,
    unread: &mut Vec<CString>,
    dst: &OwnedFd,
    buf: &mut [u8],
) -> Result<(), StorageError> {
    for name in unread.drain(..) {
        if let Some(file) = SourceFile::open(src, &name)? {
            file.copy_to(dst, buf)?;
        }
    }
    Ok(())
}

/// Copies a file of `size` bytes (its size when opened: what is appended meanwhile is not
/// copied): one `copy_file_range` (a reflink where the filesystem has them) for the common
/// case, the standard library's copy for the rest where that one call fell short (a
/// filesystem without in-kernel copies, or an empty file that may have grown).
fn copy_contents(from: OwnedFd, mut to: File, size: u64) -> Result<(), StorageError> {
    let mut copied = 0;
    if size > 0 {
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        copied = rustix::fs::copy_file_range(&from, None, &to, None, len).unwrap_or(0);
    }
    if size == 0 || (copied as u64) < size {
        io::copy(&mut File::from(from), &mut to).map_err(StorageError::from_io)?;
    }
    Ok(())
}

/// `size` as a length when a file that large is copied through `buf`: not empty, and no
/// larger than `buf`.
fn fits(size: u64, buf: &[u8]) -> Option<usize> {
    usize::try_from(size)
        .ok()
        .filter(|&n| n > 0 && n <= buf.len())
}

/// Copies a file of at most `buf`'s size through `buf`: for a few blocks, a read and a write
/// cost less than the in-kernel copy's set-up. Empty files go to [`copy_contents`].
fn copy_small(from: OwnedFd, mut to: File, size: u64, buf: &mut [u8]) -> Result<(), StorageError> {
    let Some(data) = fits(size, buf).map(|n| &mut buf[..n]) else {
        return copy_contents(from, to, size);
    };
    let n = read_full(&mut File::from(from), data).map_err(StorageError::from_io)?;
    to.write_all(&buf[..n]).map_err(StorageError::from_io)
}

/// Removes `name` in `parent` and everything below it, as far as it can (cleanup after a
/// failed tree copy; errors are ignored).
fn remove_all(parent: &OwnedFd, name: &str) {
    if rustix::fs::unlinkat(parent, name, AtFlags::empty()).is_ok() {
        return;
    }
    if let Ok(dir) = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) && let Ok(mut reader) = Dir::read_from(&dir)
    {
        let mut names = Vec::new();
        while let Some(Ok(ent)) = reader.read() {
            if let Ok(n) = ent.file_name().to_str()
                && n != "."
                && n != ".."
            {
                names.push(n.to_owned());
            }
        }
        for n in names {
            remove_all(&dir, &n);
        }
    }
    let _ = rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_spellings_of_a_hidden_name_are_hidden() {
        for (segment, hidden) in [
            (".davit", true),
            (".DaViT", true),
            (".davit.", true),
            (".davit. .", true),
            ("DAVIT~1", true),
            ("davit~12", true),
            ("DAV~1", true),
            (".davitx", false),
            ("davit", false),
            ("DAVITX~1", false),
            ("DAVIT~", false),
            ("~1", false),
        ] {
            assert_eq!(opens_hidden(segment, ".davit"), hidden, "{segment}");
        }
    }

    fn body(data: &'static [u8]) -> ByteStream {
        Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(data))]))
    }

    #[test]
    fn times_become_the_seconds_and_nanoseconds_the_kernel_takes() {
        let ms = Duration::from_millis;
        for (t, secs, nanos) in [
            (UNIX_EPOCH, 0, 0),
            (UNIX_EPOCH + ms(1_500), 1, 500_000_000),
            (UNIX_EPOCH - ms(1_500), -2, 500_000_000),
            (UNIX_EPOCH - ms(2_000), -2, 0),
            (
                UNIX_EPOCH + Duration::from_secs(1_577_872_800),
                1_577_872_800,
                0,
            ),
        ] {
            let ts = timespec(t);
            assert_eq!((ts.tv_sec, ts.tv_nsec), (secs, nanos), "{t:?}");
        }
    }

    #[tokio::test]
    async fn a_file_rewritten_in_place_with_its_old_date_and_size_gets_a_new_etag() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        let s = FsStorage::open(dir.path()).unwrap();
        let path = ResourcePath::parse("/f").unwrap();
        let date = UNIX_EPOCH + Duration::from_secs(1_577_872_800);
        let mut tags = Vec::new();
        for content in ["aaaa", "bbbb"] {
            // Same inode, same size, and the date a sync client sets back each time.
            std::fs::write(&file, content).unwrap();
            s.set_modified(&path, date).await.unwrap();
            let meta = s.metadata_fresh(&path).await.unwrap();
            assert_eq!(meta.modified, date);
            tags.push(meta.etag);
        }
        assert_ne!(tags[0], tags[1]);
    }

    #[tokio::test]
    async fn a_date_set_before_1970_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), "x").unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        let path = ResourcePath::parse("/old").unwrap();
        let when = UNIX_EPOCH - Duration::from_millis(86_400_250);
        s.set_modified(&path, when).await.unwrap();
        assert_eq!(s.metadata(&path).await.unwrap().modified, when);
        let missing = ResourcePath::parse("/none/old").unwrap();
        assert!(matches!(
            s.set_modified(&missing, when).await,
            Err(StorageError::NotFound)
        ));
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_kernel_without_openat2_is_refused_at_open_with_the_reason() {
        for (probe, kind) in [
            (Err(Errno::NOSYS), Some(io::ErrorKind::Unsupported)),
            (Err(Errno::PERM), Some(io::ErrorKind::Unsupported)),
            (Err(Errno::ACCESS), Some(io::ErrorKind::PermissionDenied)),
            (Ok(()), None),
        ] {
            let verdict = openat2_verdict(probe);
            assert_eq!(
                verdict.as_ref().err().map(io::Error::kind),
                kind,
                "{probe:?}"
            );
            if kind == Some(io::ErrorKind::Unsupported) {
                let said = verdict.unwrap_err().to_string();
                assert!(said.contains("Linux 5.6"), "{said}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let root =
            rustix::fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        resolves_beneath(&root).unwrap();
    }

    #[tokio::test]
    async fn a_pending_write_is_invisible_until_commit_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        let path = ResourcePath::parse("/new.txt").unwrap();
        let pending = s.prepare_write(&path, body(b"data")).await.unwrap();
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        let (outcome, meta) = pending.commit().await.unwrap();
        assert_eq!(outcome, WriteOutcome::Created);
        assert_eq!(meta.len, 4);
        assert_eq!(names(dir.path()), ["new.txt"]);

        let dropped = s.prepare_write(&path, body(b"other")).await.unwrap();
        drop(dropped);
        assert_eq!(names(dir.path()), ["new.txt"]);
        assert_eq!(std::fs::read(dir.path().join("new.txt")).unwrap(), b"data");
    }

    #[tokio::test]
    async fn a_name_taken_while_the_body_arrived_is_replaced_or_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        // A file appeared meanwhile: replaced, with its permission bits.
        let file = ResourcePath::parse("/f").unwrap();
        let pending = s.prepare_write(&file, body(b"new")).await.unwrap();
        std::fs::write(dir.path().join("f"), b"old").unwrap();
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(dir.path().join("f"), private).unwrap();
        let (outcome, meta) = pending.commit().await.unwrap();
        assert_eq!((outcome, meta.len), (WriteOutcome::Replaced, 3));
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"new");
        let mode = std::fs::metadata(dir.path().join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A folder appeared meanwhile: refused, and left as it was.
        let folder = ResourcePath::parse("/d").unwrap();
        let pending = s.prepare_write(&folder, body(b"new")).await.unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/inside"), b"x").unwrap();
        let refused = pending.commit().await;
        assert!(
            matches!(refused, Err(StorageError::IsCollection)),
            "{refused:?}"
        );
        assert_eq!(names(&dir.path().join("d")), ["inside"]);
        assert_eq!(names(dir.path()), ["d", "f"]);
        // A folder there from the start: a small body is not checked against it until the
        // commit, which refuses it the same way.
        let pending = s.prepare_write(&folder, body(b"small")).await.unwrap();
        let refused = pending.commit().await;
        assert!(
            matches!(refused, Err(StorageError::IsCollection)),
            "{refused:?}"
        );
        assert_eq!(names(&dir.path().join("d")), ["inside"]);
        assert_eq!(names(dir.path()), ["d", "f"]);
    }

    /// 3 MiB in 64 KiB chunks, each chunk's bytes its index, and the bytes themselves.
    fn large_body(fail_at: Option<usize>) -> (ByteStream, Vec<u8>) {
        let chunks: Vec<Vec<u8>> = (0..48u8).map(|i| vec![i; 64 * 1024]).collect();
        let whole = chunks.concat();
        let items = chunks.into_iter().enumerate().map(move |(i, c)| {
            if Some(i) == fail_at {
                Err(io::Error::other("client went away"))
            } else {
                Ok(Bytes::from(c))
            }
        });
        (Box::pin(futures_util::stream::iter(items)), whole)
    }

    #[tokio::test]
    async fn a_large_body_is_written_whole_inline_or_on_the_writer_thread() {
        for slow_write in [SLOW_WRITE, Duration::ZERO] {
            let dir = tempfile::tempdir().unwrap();
            let mut s = FsStorage::open(dir.path()).unwrap();
            Arc::get_mut(&mut s.inner).unwrap().slow_write = slow_write;
            let path = ResourcePath::parse("/big.bin").unwrap();
            let (body, whole) = large_body(None);
            s.write(&path, body).await.unwrap();
            let stored = std::fs::read(dir.path().join("big.bin")).unwrap();
            assert!(
                stored == whole,
                "{slow_write:?}: {} bytes differ",
                stored.len()
            );

            // Cut off after the first inline write: nothing changes, nothing is left.
            let (body, _) = large_body(Some(20));
            let cut = s.write(&path, body).await;
            assert!(matches!(cut, Err(StorageError::BodyAborted(_))), "{cut:?}");
            assert!(std::fs::read(dir.path().join("big.bin")).unwrap() == whole);
            assert_eq!(names(dir.path()), ["big.bin"]);
        }
    }

    #[tokio::test]
    async fn a_file_created_meanwhile_is_replaced_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        let path = ResourcePath::parse("/race.txt").unwrap();
        let pending = s.prepare_write(&path, body(b"ours")).await.unwrap();
        std::fs::write(dir.path().join("race.txt"), "theirs").unwrap();
        let (outcome, _) = pending.commit().await.unwrap();
        assert_eq!(outcome, WriteOutcome::Replaced);
        assert_eq!(std::fs::read(dir.path().join("race.txt")).unwrap(), b"ours");
        assert_eq!(names(dir.path()), ["race.txt"]);
    }

    #[tokio::test]
    async fn a_tree_copy_leaves_its_target_looked_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a.txt"), "alpha").unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        let (from, to) = (
            ResourcePath::parse("/src/").unwrap(),
            ResourcePath::parse("/dst/").unwrap(),
        );
        s.copy_tree(&from, &to).await.unwrap();
        // Gone behind the storage's back: what answers now is what the copy looked up.
        std::fs::remove_dir_all(dir.path().join("dst")).unwrap();
        let meta = s.metadata(&to).await.unwrap();
        assert!(meta.kind.is_collection());
    }

    /// Writes `data` at `path` and drops it from memory (written back first, so the kernel
    /// lets the pages go), as a tree not read for a while would be.
    fn write_cold(path: &Path, data: &[u8]) {
        std::fs::write(path, data).unwrap();
        let f = File::open(path).unwrap();
        f.sync_all().unwrap();
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    }

    #[tokio::test]
    async fn a_tree_copy_copies_files_in_memory_or_not_large_small_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        let mut expected = Vec::new();
        // More small files than are read ahead at once, half of them out of memory.
        for i in 0..(READ_AHEAD_FILES * 2 + 5) {
            let (name, data) = (format!("f{i:03}"), format!("file {i}").repeat(i + 1));
            if i % 2 == 0 {
                write_cold(&src.join(&name), data.as_bytes());
            } else {
                std::fs::write(src.join(&name), &data).unwrap();
            }
            expected.push((name, data.into_bytes()));
        }
        let large: Vec<u8> = (0..SMALL_COPY * 3 + 7).map(|i| (i % 251) as u8).collect();
        write_cold(&src.join("sub/large"), &large);
        expected.push(("sub/large".to_owned(), large));
        write_cold(&src.join("sub/deeper/empty"), b"");
        expected.push(("sub/deeper/empty".to_owned(), Vec::new()));
        write_cold(&src.join("sub/deeper/one"), b"1");
        expected.push(("sub/deeper/one".to_owned(), b"1".to_vec()));

        let s = FsStorage::open(dir.path()).unwrap();
        let (from, to) = (
            ResourcePath::parse("/src/").unwrap(),
            ResourcePath::parse("/dst/").unwrap(),
        );
        s.copy_tree(&from, &to).await.unwrap();
        for (name, data) in &expected {
            let copied = std::fs::read(dir.path().join("dst").join(name)).unwrap();
            assert!(copied == *data, "{name}: {} bytes", copied.len());
        }
        let top = names(&dir.path().join("dst"));
        assert_eq!(top.len(), READ_AHEAD_FILES * 2 + 6, "{top:?}");
    }

    #[tokio::test]
    async fn a_tree_copy_of_files_not_in_memory_holds_no_descriptor_per_file() {
        // The limit is the process's: where tests share one (cargo test), this test runs
        // alone in a process of its own, the test binary started again.
        if std::env::var_os("NEXTEST_EXECUTION_MODE").is_none_or(|m| m != "process-per-test") {
            let name = "fs::tests::a_tree_copy_of_files_not_in_memory_holds_no_descriptor_per_file";
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name, "--exact", "--test-threads=1"])
                .env("NEXTEST_EXECUTION_MODE", "process-per-test")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        for i in 0..READ_AHEAD_FILES * 2 {
            write_cold(
                &src.join(format!("f{i:03}")),
                format!("file {i}").as_bytes(),
            );
        }
        let s = FsStorage::open(dir.path()).unwrap();
        let (from, to) = (
            ResourcePath::parse("/src/").unwrap(),
            ResourcePath::parse("/dst/").unwrap(),
        );
        // The limit bounds descriptor numbers: 20 free below it, enough for the copy's
        // folders and a file at a time, not for the files waiting on the disk.
        let used: Vec<u64> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let limit = (0u64..)
            .find(|&l| l - used.iter().filter(|&&fd| fd < l).count() as u64 == 20)
            .unwrap();
        let limits = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let mut lowered = limits;
        lowered.current = Some(limit);
        rustix::process::setrlimit(rustix::process::Resource::Nofile, lowered).unwrap();
        let copied = s.copy_tree(&from, &to).await;
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limits).unwrap();
        copied.unwrap();
        for i in 0..READ_AHEAD_FILES * 2 {
            let name = format!("f{i:03}");
            let data = std::fs::read(dir.path().join("dst").join(&name)).unwrap();
            assert_eq!(data, format!("file {i}").as_bytes(), "{name}");
        }
    }

    #[test]
    fn a_file_gone_since_the_listing_is_not_copied_and_no_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("here"), "x").unwrap();
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        assert!(SourceFile::open(&fd, c"gone").unwrap().is_none());
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        assert!(SourceFile::open(&fd, c"folder").unwrap().is_none());
        let here = SourceFile::open(&fd, c"here").unwrap().unwrap();
        assert_eq!(here.size, 1);
    }

    #[tokio::test]
    async fn a_tree_copy_is_built_in_staging_which_drops_what_ended_processes_left() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(STAGING);
        // Left by a process that ended mid-copy, and held by one still running.
        std::fs::create_dir_all(staging.join("ended/tree/sub")).unwrap();
        std::fs::write(staging.join("ended/tree/sub/f"), "x").unwrap();
        std::fs::create_dir_all(staging.join("running")).unwrap();
        let held =
            rustix::fs::open(staging.join("running"), OFlags::RDONLY, Mode::empty()).unwrap();
        rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        std::fs::create_dir_all(dir.path().join("src/sub")).unwrap();
        std::fs::write(dir.path().join("src/a.txt"), "alpha").unwrap();
        std::fs::write(dir.path().join("src/sub/b.txt"), "").unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        let (from, to) = (
            ResourcePath::parse("/src/").unwrap(),
            ResourcePath::parse("/dst/").unwrap(),
        );
        s.copy_tree(&from, &to).await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("dst/a.txt")).unwrap(),
            b"alpha"
        );
        assert_eq!(
            std::fs::read(dir.path().join("dst/sub/b.txt")).unwrap(),
            b""
        );
        let left = names(&staging);
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&"running".to_owned()), "{left:?}");
        let own = left.iter().find(|n| *n != "running").unwrap();
        assert!(
            names(&staging.join(own)).is_empty(),
            "the copy was built there and moved out"
        );
        assert!(
            s.list(&ResourcePath::root())
                .await
                .unwrap()
                .iter()
                .all(|e| e.name != STAGING)
        );
        let upper = ResourcePath::parse("/.~DAVIT-COPIES/").unwrap();
        assert!(matches!(
            s.metadata(&upper).await,
            Err(StorageError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_copy_into_a_setgid_folder_takes_its_group() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/sub")).unwrap();
        std::fs::write(dir.path().join("src/sub/f"), "x").unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        // A group other than ours: only root may hand a folder to any group.
        let gid = rustix::fs::Gid::from_raw(4242);
        if rustix::fs::chown(&shared, None, Some(gid)).is_err() {
            eprintln!("skipped: needs root to give a folder another group");
            return;
        }
        rustix::fs::chmod(&shared, Mode::from_raw_mode(0o2775)).unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        let (from, to) = (
            ResourcePath::parse("/src/").unwrap(),
            ResourcePath::parse("/shared/copy/").unwrap(),
        );
        s.copy_tree(&from, &to).await.unwrap();
        for p in ["copy", "copy/sub", "copy/sub/f"] {
            let st = rustix::fs::stat(shared.join(p)).unwrap();
            assert_eq!(st.st_gid, 4242, "{p}");
        }
    }

    #[test]
    fn unnamed_files_are_used_where_the_filesystem_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = rustix::fs::open(
            dir.path(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        // Linux filesystems used for temp folders (ext4, xfs, btrfs, tmpfs) all have O_TMPFILE.
        assert!(LinkVia::probe(&root).is_some());
        assert!(names(dir.path()).is_empty(), "the probe leaves nothing");
    }
}
