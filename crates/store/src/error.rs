//! The one error type of davit-store.

use std::io;

/// What went wrong in a storage operation, in terms of resources, not HTTP: the server maps
/// each variant to a status per method (RFC 4918 says it depends).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Nothing exists at the path (or it is not served, such as a symlink).
    #[error("not found")]
    NotFound,
    /// Something already exists at the target path.
    #[error("already exists")]
    AlreadyExists,
    /// The parent collection does not exist or is not a collection.
    #[error("parent collection missing")]
    ParentMissing,
    /// The operation needs a collection and the path names a plain resource.
    #[error("not a collection")]
    NotACollection,
    /// The operation needs a plain resource and the path names a collection.
    #[error("is a collection")]
    IsCollection,
    /// A collection still has members.
    #[error("collection not empty")]
    NotEmpty,
    /// The backend refuses the operation (permissions, protected names).
    #[error("permission denied")]
    PermissionDenied,
    /// A name in the path is longer than the backend can hold (255 bytes on most file
    /// systems): nothing can exist there, and nothing can be created.
    #[error("name too long")]
    NameTooLong,
    /// The backend is out of space or quota.
    #[error("insufficient storage")]
    InsufficientStorage,
    /// The backend does not implement this optional operation.
    #[error("unsupported by this backend")]
    Unsupported,
    /// The request body stream failed before it ended; nothing was stored.
    #[error("request body aborted")]
    BodyAborted(#[source] io::Error),
    /// An I/O failure of the backend.
    #[error("I/O error")]
    Io(#[from] io::Error),
    /// A failure of the metadata database.
    #[error("metadata database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// Maps an `errno`-style I/O error to its semantic variant.
    pub fn from_io(err: io::Error) -> Self {
        match err.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
            Some(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::XDEV) => {
                StorageError::NotFound
            }
            Some(rustix::io::Errno::EXIST) => StorageError::AlreadyExists,
            Some(rustix::io::Errno::NOTEMPTY) => StorageError::NotEmpty,
            Some(rustix::io::Errno::NOTDIR) => StorageError::NotACollection,
            Some(rustix::io::Errno::ISDIR) => StorageError::IsCollection,
            Some(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM | rustix::io::Errno::ROFS) => {
                StorageError::PermissionDenied
            }
            Some(rustix::io::Errno::NAMETOOLONG) => StorageError::NameTooLong,
            Some(rustix::io::Errno::NOSPC | rustix::io::Errno::DQUOT | rustix::io::Errno::FBIG) => {
                StorageError::InsufficientStorage
            }
            _ => StorageError::Io(err),
        }
    }
}
