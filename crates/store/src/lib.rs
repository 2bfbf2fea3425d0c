//! Davit's storage layer: where content and dead properties live. It knows nothing of HTTP.
//!
//! Content goes through [`Storage`], dead properties through [`PropertyStore`]. Both are
//! object-safe so the server picks backends at run time. The server owns all policy (what a
//! method means, which errors become which status); a backend only does what a call says and
//! reports what went wrong as a semantic [`StorageError`].
//!
//! # Layout
//! - [`memory`]: content and properties in memory (tests, `davit serve --backend memory`).
//! - [`fs`]: content in a local folder, with every path resolved beneath the root by the
//!   kernel (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`).
//! - [`sqlite`]: dead properties and locks in one SQLite file (WAL).
//! - [`testing`] (feature `testing`): the conformance checks every backend must pass, and a
//!   fault-injecting wrapper for tests of partial failure.
//!
//! # Example
//! ```
//! use davit_store::{memory::MemoryStorage, Storage};
//! use davit_proto::ResourcePath;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), davit_store::StorageError> {
//! let storage = MemoryStorage::new();
//! storage.create_collection(&ResourcePath::parse("/docs").unwrap()).await?;
//! assert!(storage.metadata(&ResourcePath::parse("/docs").unwrap()).await?.kind.is_collection());
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::fmt::Debug;
use std::io;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

pub use davit_proto::{
    ByteRange, Depth, ETag, LockScope, PropName, PropOp, PropValue, ResourceKind, ResourcePath,
};

pub mod error;
#[cfg(target_os = "linux")]
pub mod fs;
mod holders;
pub mod memory;
#[cfg(target_os = "linux")]
mod read_cache;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::StorageError;

/// Whether an acknowledged write must survive a power loss, or only a crash of Davit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Flush to disk before a write is acknowledged (`fdatasync` and a sync of the folder
    /// for content, `synchronous=FULL` for properties): it survives a power loss.
    #[default]
    Always,
    /// Leave flushing to the OS. Writes stay atomic (renamed into place after the data is
    /// written) and survive a crash of Davit; a power loss or kernel crash can lose the
    /// last seconds of them. This is what Apache, nginx, lighttpd and most servers do.
    Never,
}

/// A stream of body chunks, in or out.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// Room on the storage as a whole, in bytes: what the quota properties of RFC 4331 report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// What can still be written.
    pub available: u64,
    /// What is taken.
    pub used: u64,
}

/// What storage knows about one resource. The server derives live properties from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Collection or plain resource.
    pub kind: ResourceKind,
    /// Body length in bytes (0 for collections).
    pub len: u64,
    /// Last modification of the content.
    pub modified: SystemTime,
    /// Creation time, where the backend knows it.
    pub created: Option<SystemTime>,
    /// Strong entity tag; it changes whenever the content changes.
    pub etag: ETag,
}

/// A member of a collection, as [`Storage::list`] returns it.
#[derive(Debug)]
pub struct Entry {
    /// The member's name (one path segment).
    pub name: String,
    /// Its metadata, or why it could not be read: one unreadable member must not hide the
    /// others from a listing.
    pub metadata: Result<Metadata, StorageError>,
}

impl Entry {
    /// Whether the member is known to be a collection (unreadable members are not).
    pub fn is_collection(&self) -> bool {
        matches!(&self.metadata, Ok(m) if m.kind.is_collection())
    }
}

/// A plain resource opened for reading: its metadata as of the open, and its content.
pub trait FileReader: Send + Debug {
    /// Metadata of the opened content (consistent with what [`FileReader::stream`] returns).
    fn metadata(&self) -> &Metadata;
    /// The content, or the given range of it.
    fn stream(self: Box<Self>, range: Option<ByteRange>) -> ByteStream;
    /// The whole content, when it is already in memory (a small file): the server then
    /// sends it as one buffer.
    fn in_memory(&self) -> Option<&Bytes> {
        None
    }
    /// The open file the content is read from, when there is one: the server may then
    /// hand it to the kernel to send (`sendfile`) instead of streaming it.
    fn file(&self) -> Option<&std::fs::File> {
        None
    }
}

/// A received body waiting to replace (or create) its resource.
#[async_trait]
pub trait PendingWrite: Send + Debug {
    /// Makes the new content visible, atomically: readers see the old content or all of the
    /// new.
    ///
    /// # Errors
    /// [`StorageError::IsCollection`] if a collection took the name meanwhile,
    /// [`StorageError::ParentMissing`] if the parent went away.
    async fn commit(self: Box<Self>) -> Result<(WriteOutcome, Metadata), StorageError>;

    /// As [`commit`](Self::commit), but only where nothing exists yet: the check and the
    /// creation are one step, so of two create-only writes to one path just one creates
    /// (a PUT with `If-None-Match: *`, RFC 9110 §13.1.2).
    ///
    /// # Errors
    /// [`StorageError::AlreadyExists`] if something is at the path, and nothing changes;
    /// otherwise as [`commit`](Self::commit).
    async fn commit_new(self: Box<Self>) -> Result<Metadata, StorageError>;

    /// Dates the new content `modified` (a sync client's X-OC-Mtime) before it becomes
    /// visible, so no one sees it with another date and the commit's metadata has this
    /// one. The default is [`StorageError::Unsupported`].
    ///
    /// # Errors
    /// [`StorageError::Unsupported`], or what the storage refused.
    fn set_modified(&mut self, modified: SystemTime) -> Result<(), StorageError> {
        let _ = modified;
        Err(StorageError::Unsupported)
    }
}

/// Whether a write created the resource or replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// There was no resource at the path before.
    Created,
    /// An existing resource was replaced.
    Replaced,
}

/// Content storage.
///
/// Contract for every implementation:
/// - The root `/` always exists and is a collection.
/// - Paths are [`ResourcePath`]s, already validated: no `..`, no empty segments.
/// - Missing parents are reported as [`StorageError::ParentMissing`] (also when the parent is
///   not a collection), an existing target as [`StorageError::AlreadyExists`].
/// - Writes are atomic: a reader sees the old content or the new, never a mix, and a failed
///   write leaves the old content.
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// Metadata of one resource.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if nothing is there.
    async fn metadata(&self, path: &ResourcePath) -> Result<Metadata, StorageError>;

    /// The members of a collection, in no particular order.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], [`StorageError::NotACollection`].
    async fn list(&self, dir: &ResourcePath) -> Result<Vec<Entry>, StorageError>;

    /// Opens a plain resource for reading.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], [`StorageError::IsCollection`].
    async fn open(&self, path: &ResourcePath) -> Result<Box<dyn FileReader>, StorageError>;

    /// Receives `body` for `path` without making it visible yet: the returned
    /// [`PendingWrite`] replaces (or creates) the resource when committed, atomically, and
    /// changes nothing if dropped. The server checks locks again between the two steps,
    /// because a body can take long to arrive.
    ///
    /// # Errors
    /// [`StorageError::ParentMissing`], [`StorageError::IsCollection`],
    /// [`StorageError::BodyAborted`] if the body stream failed (nothing is changed then).
    async fn prepare_write(
        &self,
        path: &ResourcePath,
        body: ByteStream,
    ) -> Result<Box<dyn PendingWrite>, StorageError>;

    /// [`Storage::prepare_write`] and commit at once.
    ///
    /// # Errors
    /// As [`Storage::prepare_write`] and [`PendingWrite::commit`].
    async fn write(
        &self,
        path: &ResourcePath,
        body: ByteStream,
    ) -> Result<(WriteOutcome, Metadata), StorageError> {
        self.prepare_write(path, body).await?.commit().await
    }

    /// Creates an empty collection.
    ///
    /// # Errors
    /// [`StorageError::AlreadyExists`], [`StorageError::ParentMissing`].
    async fn create_collection(&self, path: &ResourcePath) -> Result<(), StorageError>;

    /// Removes a plain resource or an empty collection.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], [`StorageError::NotEmpty`].
    async fn remove(&self, path: &ResourcePath) -> Result<(), StorageError>;

    /// Copies the content of a plain resource to `to`, replacing a plain resource there.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], [`StorageError::ParentMissing`],
    /// [`StorageError::IsCollection`].
    async fn copy_file(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError>;

    /// Copies the collection `from` with everything below it to `to`, which must not
    /// exist, all at once: the copy appears whole or not at all. An optional fast path; the
    /// default is [`StorageError::Unsupported`], and on any error the server falls back to
    /// copying member by member (which reports the members that fail).
    ///
    /// # Errors
    /// [`StorageError::Unsupported`], or whatever stopped the copy (nothing is left at `to`).
    async fn copy_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let _ = (from, to);
        Err(StorageError::Unsupported)
    }

    /// Renames a resource (with all its members) to `to`, which must not exist. Backends
    /// that cannot do this atomically return [`StorageError::Unsupported`] and the server
    /// falls back to copying and removing member by member.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], [`StorageError::AlreadyExists`],
    /// [`StorageError::ParentMissing`], [`StorageError::Unsupported`].
    async fn rename(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError>;

    /// Sets the last-modified time of a resource, as clients that keep a file's own dates
    /// ask for (Windows' `Win32LastModifiedTime`). The default is
    /// [`StorageError::Unsupported`].
    ///
    /// # Errors
    /// [`StorageError::NotFound`], [`StorageError::PermissionDenied`],
    /// [`StorageError::Unsupported`].
    async fn set_modified(
        &self,
        path: &ResourcePath,
        modified: SystemTime,
    ) -> Result<(), StorageError> {
        let _ = (path, modified);
        Err(StorageError::Unsupported)
    }

    /// Room on the storage, for clients that show it (Finder, Windows Explorer). The
    /// default is [`StorageError::Unsupported`].
    ///
    /// # Errors
    /// [`StorageError::Unsupported`], or what stopped the look.
    async fn space(&self) -> Result<Space, StorageError> {
        Err(StorageError::Unsupported)
    }

    /// Drops what the backend's caches no longer trust, and says whether anything is left
    /// for a later call to drop. The server calls it about once a second while it serves
    /// connections, and on until it returns false; the default holds nothing.
    fn tidy(&self) -> bool {
        false
    }

    /// [`metadata`](Self::metadata) from the backing store itself, never a remembered
    /// answer (which may predate a change made there directly). The default is
    /// `metadata`, for storage that remembers nothing.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if nothing is there.
    async fn metadata_fresh(&self, path: &ResourcePath) -> Result<Metadata, StorageError> {
        self.metadata(path).await
    }
}

/// Dead property storage (RFC 4918 §4.1), keyed by resource path.
///
/// Live properties are computed by the server and never stored here.
#[async_trait]
pub trait PropertyStore: Send + Sync + Debug {
    /// All dead properties of one resource.
    async fn get_all(
        &self,
        path: &ResourcePath,
    ) -> Result<Vec<(PropName, PropValue)>, StorageError>;

    /// The dead properties of every immediate member of `dir`, keyed by member name, in
    /// one query: a listing must not cost one lookup per member. Members without
    /// properties are absent.
    async fn get_members(&self, dir: &ResourcePath) -> Result<MemberProps, StorageError>;

    /// Applies the instructions in order, all or nothing (RFC 4918 §9.2).
    async fn apply(&self, path: &ResourcePath, ops: &[PropOp]) -> Result<(), StorageError>;

    /// Copies the properties of `from` and everything below it to the same places below
    /// `to`, replacing whatever `to` and its members had.
    async fn copy_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError>;

    /// Moves the properties of `from` and everything below it to `to`, replacing whatever
    /// `to` and its members had.
    async fn move_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError>;

    /// Removes the properties of `path` and everything below it.
    async fn remove_tree(&self, path: &ResourcePath) -> Result<(), StorageError>;

    /// Whether any of `paths`, or anything below one of them, has properties. Lets a MOVE
    /// or DELETE where none do skip the property bookkeeping. The default answers `true`,
    /// which is always safe.
    async fn has_any_tree(&self, paths: &[&ResourcePath]) -> Result<bool, StorageError> {
        let _ = paths;
        Ok(true)
    }

    /// Records, durably, that content at `from` is about to be renamed to `to`; the
    /// [`PropertyStore::move_tree`] that follows the rename clears the record. A process
    /// killed between the two leaves it for [`PropertyStore::unfinished_moves`], so the
    /// properties can follow their content at the next start. Stores that do not outlive
    /// the process need not keep it.
    async fn begin_move(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let _ = (from, to);
        Ok(())
    }

    /// Moves begun and not finished, in the order they began.
    async fn unfinished_moves(&self) -> Result<Vec<(ResourcePath, ResourcePath)>, StorageError> {
        Ok(Vec::new())
    }

    /// Forgets an unfinished move whose rename never happened.
    async fn abandon_move(
        &self,
        from: &ResourcePath,
        to: &ResourcePath,
    ) -> Result<(), StorageError> {
        let _ = (from, to);
        Ok(())
    }

    /// Every path that has properties, for finding those whose resource is gone.
    async fn paths(&self) -> Result<Vec<ResourcePath>, StorageError> {
        Ok(Vec::new())
    }

    /// Records, durably, that content at `path` (and below) is about to be removed, so the
    /// properties of whatever a crash left removed can be dropped at the next start instead
    /// of passing to a new resource at the same path.
    async fn begin_remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let _ = path;
        Ok(())
    }

    /// Clears what [`PropertyStore::begin_remove`] recorded.
    async fn end_remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let _ = path;
        Ok(())
    }

    /// Removals begun and not finished.
    async fn unfinished_removes(&self) -> Result<Vec<ResourcePath>, StorageError> {
        Ok(Vec::new())
    }
}

/// A write lock as stored (RFC 4918 §6). Policy (conflicts, coverage, expiry) is the
/// server's; a [`LockStore`] keeps these records and finds them by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The lock token URI (`urn:uuid:…`).
    pub token: String,
    /// The locked resource.
    pub root: ResourcePath,
    /// Exclusive or shared.
    pub scope: LockScope,
    /// `Depth::Zero` (the resource) or `Depth::Infinity` (and everything below).
    pub depth: Depth,
    /// The `owner` fragment the client sent, verbatim.
    pub owner: Option<String>,
    /// The granted timeout in seconds, or `None` for an infinite lock.
    pub timeout: Option<u64>,
    /// When the lock lapses, or `None` for never.
    pub expires: Option<SystemTime>,
    /// The authenticated user who took the lock; only they may use its token (RFC 4918
    /// §6.4). `None` when the server runs without authentication.
    pub creator: Option<String>,
}

/// Lock persistence.
///
/// Contract: the store keeps what it is given and answers by path; it judges nothing
/// (expired locks are returned until removed). Changes may be applied after the call
/// returns, but in call order, and every lookup sees every change made before it.
#[async_trait]
pub trait LockStore: Send + Sync + Debug {
    /// Stores a new lock.
    async fn insert(&self, lock: &Lock) -> Result<(), StorageError>;
    /// The locks rooted at `path` or at one of its ancestors.
    async fn on_path(&self, path: &ResourcePath) -> Result<Vec<Lock>, StorageError>;
    /// The locks rooted strictly below `path`.
    async fn below(&self, path: &ResourcePath) -> Result<Vec<Lock>, StorageError>;
    /// The lock with this token.
    async fn get(&self, token: &str) -> Result<Option<Lock>, StorageError>;
    /// Sets a lock's timeout and expiry (nothing happens if there is no such lock).
    async fn refresh(
        &self,
        token: &str,
        timeout: Option<u64>,
        expires: Option<SystemTime>,
    ) -> Result<(), StorageError>;
    /// Removes a lock (nothing happens if there is none).
    async fn remove(&self, token: &str) -> Result<(), StorageError>;
    /// Removes the locks rooted at `path` or below it.
    async fn remove_tree(&self, path: &ResourcePath) -> Result<(), StorageError>;
    /// Removes the locks that lapsed at or before `now`.
    async fn remove_expired(&self, now: SystemTime) -> Result<(), StorageError>;
    /// True when only this process uses the store, so the server may keep every lock in
    /// memory and read from there (a store shared by several nodes answers false).
    fn is_exclusive(&self) -> bool {
        false
    }
}

/// Dead properties of the members of a collection, keyed by member name.
pub type MemberProps = std::collections::HashMap<String, Vec<(PropName, PropValue)>>;
