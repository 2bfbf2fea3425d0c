//! What every backend must do (conformance checks run against each of them), and a storage
//! wrapper that injects faults, for tests of partial failure.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::{
    ByteRange, ByteStream, Depth, Entry, FileReader, Lock, LockScope, LockStore, Metadata,
    PendingWrite, PropName, PropOp, PropValue, PropertyStore, ResourceKind, ResourcePath, Storage,
    StorageError, WriteOutcome,
};

/// Wraps a storage and injects faults the way a real disk shows them, by resource name:
/// - [`stuck`](Self::stuck): a resource whose name contains the marker can be created and
///   read, but removing it or copying it fails with [`StorageError::PermissionDenied`]
///   (a file on a read-only mount, an immutable file);
/// - [`fail_reads`](Self::fail_reads): its metadata cannot be read (in listings too) and it
///   cannot be opened;
/// - [`vanishing`](Self::vanishing): something else removes it just as it is removed, so
///   the removal finds nothing ([`StorageError::NotFound`]).
///
/// - [`unlistable`](Self::unlistable): such a collection can be looked at but not listed;
/// - [`renamed_then_failing`](Self::renamed_then_failing): a rename onto such a name is
///   done, then reported failed (as when syncing the folders after it fails).
///
/// Other renames are refused as unsupported, so the server must use its member-by-member
/// fallback, where the faults show.
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    stuck_marker: Option<String>,
    read_marker: Option<String>,
    vanish_marker: Option<String>,
    rename_marker: Option<String>,
    list_marker: Option<String>,
}

impl FaultyStorage {
    /// Wraps `inner`; add faults with the builder methods.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        FaultyStorage {
            inner,
            stuck_marker: None,
            read_marker: None,
            vanish_marker: None,
            rename_marker: None,
            list_marker: None,
        }
    }

    /// Makes resources whose name contains `marker` impossible to remove or copy.
    pub fn stuck(mut self, marker: &str) -> Self {
        self.stuck_marker = Some(marker.to_owned());
        self
    }

    /// Fails reads of resources whose name contains `marker`.
    pub fn fail_reads(mut self, marker: &str) -> Self {
        self.read_marker = Some(marker.to_owned());
        self
    }

    /// Makes resources whose name contains `marker` disappear as they are removed.
    pub fn vanishing(mut self, marker: &str) -> Self {
        self.vanish_marker = Some(marker.to_owned());
        self
    }

    /// Makes collections whose name contains `marker` fail to list.
    pub fn unlistable(mut self, marker: &str) -> Self {
        self.list_marker = Some(marker.to_owned());
        self
    }

    /// Makes renames onto names containing `marker` happen, then fail.
    pub fn renamed_then_failing(mut self, marker: &str) -> Self {
        self.rename_marker = Some(marker.to_owned());
        self
    }

    fn hit(marker: &Option<String>, name: &str) -> bool {
        marker.as_deref().is_some_and(|m| name.contains(m))
    }

    fn check_change(&self, path: &ResourcePath) -> Result<(), StorageError> {
        if Self::hit(&self.stuck_marker, path.name()) {
            Err(StorageError::PermissionDenied)
        } else {
            Ok(())
        }
    }

    fn check_read(&self, path: &ResourcePath) -> Result<(), StorageError> {
        if Self::hit(&self.read_marker, path.name()) {
            Err(StorageError::PermissionDenied)
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Storage for FaultyStorage {
    async fn metadata(&self, path: &ResourcePath) -> Result<Metadata, StorageError> {
        self.check_read(path)?;
        self.inner.metadata(path).await
    }
    async fn list(&self, dir: &ResourcePath) -> Result<Vec<Entry>, StorageError> {
        self.check_read(dir)?;
        if Self::hit(&self.list_marker, dir.name()) {
            return Err(StorageError::PermissionDenied);
        }
        let mut entries = self.inner.list(dir).await?;
        for e in &mut entries {
            if Self::hit(&self.read_marker, &e.name) {
                e.metadata = Err(StorageError::PermissionDenied);
            }
        }
        Ok(entries)
    }
    async fn open(&self, path: &ResourcePath) -> Result<Box<dyn FileReader>, StorageError> {
        self.check_read(path)?;
        self.inner.open(path).await
    }
    async fn prepare_write(
        &self,
        path: &ResourcePath,
        body: ByteStream,
    ) -> Result<Box<dyn PendingWrite>, StorageError> {
        self.inner.prepare_write(path, body).await
    }
    async fn create_collection(&self, path: &ResourcePath) -> Result<(), StorageError> {
        self.inner.create_collection(path).await
    }
    async fn remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        self.check_change(path)?;
        let removed = self.inner.remove(path).await;
        if Self::hit(&self.vanish_marker, path.name()) {
            return Err(StorageError::NotFound);
        }
        removed
    }
    async fn copy_file(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        self.check_read(from)?;
        self.check_change(from)?;
        self.inner.copy_file(from, to).await
    }
    async fn rename(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        if !Self::hit(&self.rename_marker, to.name()) {
            return Err(StorageError::Unsupported);
        }
        self.inner.rename(from, to).await?;
        Err(StorageError::Io(std::io::Error::other(
            "sync after the rename failed",
        )))
    }
    async fn space(&self) -> Result<crate::Space, StorageError> {
        self.inner.space().await
    }
    async fn set_modified(
        &self,
        path: &ResourcePath,
        modified: std::time::SystemTime,
    ) -> Result<(), StorageError> {
        self.check_change(path)?;
        self.inner.set_modified(path, modified).await
    }
    async fn metadata_fresh(&self, path: &ResourcePath) -> Result<Metadata, StorageError> {
        self.check_read(path)?;
        self.inner.metadata_fresh(path).await
    }
}

// `copy_tree` keeps its default (unsupported), so copies go member by member too.

fn p(s: &str) -> ResourcePath {
    ResourcePath::parse(s).expect("test paths are valid")
}

/// A body stream of one chunk.
pub fn body(data: &'static [u8]) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(data))]))
}

async fn read_all(storage: &dyn Storage, path: &str, range: Option<ByteRange>) -> Vec<u8> {
    let reader = storage.open(&p(path)).await.expect("open");
    let mut s = reader.stream(range);
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.expect("read"));
    }
    out
}

/// Checks the [`Storage`] contract on an empty backend. Panics on the first violation.
pub async fn check_storage(s: &dyn Storage) {
    let root = s
        .metadata(&ResourcePath::root())
        .await
        .expect("root exists");
    assert_eq!(root.kind, ResourceKind::Collection);
    assert!(
        s.list(&ResourcePath::root())
            .await
            .expect("list root")
            .is_empty()
    );

    // Collections.
    s.create_collection(&p("/a")).await.expect("mkcol");
    assert!(matches!(
        s.create_collection(&p("/a")).await,
        Err(StorageError::AlreadyExists)
    ));
    assert!(matches!(
        s.create_collection(&p("/x/y")).await,
        Err(StorageError::ParentMissing)
    ));

    // Writes: created, then replaced, with a new entity tag.
    let (o, m1) = s
        .write(&p("/a/f.txt"), body(b"hello"))
        .await
        .expect("write");
    assert_eq!(o, WriteOutcome::Created);
    assert_eq!((m1.kind, m1.len), (ResourceKind::File, 5));
    let (o, m2) = s
        .write(&p("/a/f.txt"), body(b"hello world"))
        .await
        .expect("rewrite");
    assert_eq!(o, WriteOutcome::Replaced);
    assert_eq!(m2.len, 11);
    assert_ne!(m1.etag, m2.etag, "a new content needs a new entity tag");
    assert_eq!(
        s.metadata(&p("/a/f.txt")).await.expect("stat").etag,
        m2.etag
    );
    assert!(matches!(
        s.write(&p("/nope/f"), body(b"x")).await,
        Err(StorageError::ParentMissing)
    ));
    assert!(matches!(
        s.write(&p("/a/f.txt/x"), body(b"x")).await,
        Err(StorageError::ParentMissing)
    ));
    assert!(matches!(
        s.write(&p("/a"), body(b"x")).await,
        Err(StorageError::IsCollection)
    ));

    // A write whose body fails changes nothing.
    let failing: ByteStream = Box::pin(futures_util::stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("client went away")),
    ]));
    assert!(matches!(
        s.write(&p("/a/f.txt"), failing).await,
        Err(StorageError::BodyAborted(_))
    ));
    assert_eq!(read_all(s, "/a/f.txt", None).await, b"hello world");
    let names: Vec<String> = s
        .list(&p("/a"))
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        vec!["f.txt"],
        "an aborted write leaves nothing visible behind"
    );

    // Reads and ranges.
    assert_eq!(
        read_all(s, "/a/f.txt", Some(ByteRange { start: 6, end: 11 })).await,
        b"world"
    );
    assert!(matches!(
        s.open(&p("/a")).await.map(|_| ()),
        Err(StorageError::IsCollection)
    ));
    assert!(matches!(
        s.open(&p("/a/none")).await.map(|_| ()),
        Err(StorageError::NotFound)
    ));

    // Listing.
    s.create_collection(&p("/a/sub")).await.expect("mkcol sub");
    s.write(&p("/a/sub/deep"), body(b"d"))
        .await
        .expect("write deep");
    s.write(&p("/a b"), body(b"space"))
        .await
        .expect("write sibling");
    let mut list: Vec<(String, ResourceKind)> = s
        .list(&p("/a"))
        .await
        .expect("list")
        .into_iter()
        .map(|e| (e.name, e.metadata.expect("metadata").kind))
        .collect();
    list.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        list,
        vec![
            ("f.txt".into(), ResourceKind::File),
            ("sub".into(), ResourceKind::Collection)
        ]
    );
    assert!(matches!(
        s.list(&p("/a/f.txt")).await,
        Err(StorageError::NotACollection)
    ));

    // Copy.
    s.copy_file(&p("/a/f.txt"), &p("/a/g.txt"))
        .await
        .expect("copy");
    assert_eq!(read_all(s, "/a/g.txt", None).await, b"hello world");
    s.copy_file(&p("/a b"), &p("/a/g.txt"))
        .await
        .expect("copy over");
    assert_eq!(read_all(s, "/a/g.txt", None).await, b"space");
    assert!(matches!(
        s.copy_file(&p("/a"), &p("/c")).await,
        Err(StorageError::IsCollection)
    ));

    // Tree copy, where supported: whole, or nothing left behind.
    match s.copy_tree(&p("/a"), &p("/tree-copy")).await {
        Ok(()) => {
            assert_eq!(read_all(s, "/tree-copy/sub/deep", None).await, b"d");
            assert_eq!(
                read_all(s, "/a/sub/deep", None).await,
                b"d",
                "the source stays"
            );
            assert!(matches!(
                s.copy_tree(&p("/a"), &p("/tree-copy")).await,
                Err(StorageError::AlreadyExists)
            ));
            assert!(s.copy_tree(&p("/a"), &p("/none/x")).await.is_err());
            assert!(matches!(
                s.metadata(&p("/none")).await,
                Err(StorageError::NotFound)
            ));
            for f in [
                "/tree-copy/sub/deep",
                "/tree-copy/f.txt",
                "/tree-copy/g.txt",
            ] {
                s.remove(&p(f)).await.expect("rm copy");
            }
            s.remove(&p("/tree-copy/sub")).await.expect("rm copy");
            s.remove(&p("/tree-copy")).await.expect("rm copy");
        }
        Err(StorageError::Unsupported) => {}
        Err(e) => panic!("copy_tree failed: {e}"),
    }

    // Rename, where supported.
    match s.rename(&p("/a"), &p("/moved")).await {
        Ok(()) => {
            assert_eq!(read_all(s, "/moved/sub/deep", None).await, b"d");
            assert!(matches!(
                s.metadata(&p("/a")).await,
                Err(StorageError::NotFound)
            ));
            assert!(matches!(
                s.rename(&p("/moved"), &p("/a b")).await,
                Err(StorageError::AlreadyExists)
            ));
            s.rename(&p("/moved"), &p("/a")).await.expect("rename back");
        }
        Err(StorageError::Unsupported) => {}
        Err(e) => panic!("rename failed: {e}"),
    }

    // Remove.
    assert!(matches!(
        s.remove(&p("/a")).await,
        Err(StorageError::NotEmpty)
    ));
    s.remove(&p("/a/sub/deep")).await.expect("rm file");
    s.remove(&p("/a/sub")).await.expect("rm empty dir");
    assert!(matches!(
        s.remove(&p("/a/sub")).await,
        Err(StorageError::NotFound)
    ));
    assert!(
        s.remove(&ResourcePath::root()).await.is_err(),
        "the root cannot be removed"
    );
}

/// Checks the [`PropertyStore`] contract on an empty backend. Panics on the first violation.
pub async fn check_property_store(s: &dyn PropertyStore) {
    let n = |l: &str| PropName::new("urn:t", l);
    let v = |t: &str| PropValue::text(t);
    s.apply(
        &p("/a"),
        &[PropOp::Set(n("x"), v("1")), PropOp::Set(n("y"), v("2"))],
    )
    .await
    .expect("set");
    s.apply(
        &p("/a"),
        &[
            PropOp::Remove(n("y")),
            PropOp::Set(n("x"), v("3")),
            PropOp::Remove(n("nothing")),
        ],
    )
    .await
    .expect("set and remove in order");
    assert_eq!(
        s.get_all(&p("/a")).await.expect("get"),
        vec![(n("x"), v("3"))]
    );

    let lang = PropValue {
        xml: r#"<q xmlns="urn:q">é</q>"#.into(),
        lang: Some("fr".into()),
    };
    s.apply(&p("/a/b"), &[PropOp::Set(n("l"), lang.clone())])
        .await
        .expect("set lang");
    s.apply(&p("/a/b/c"), &[PropOp::Set(n("z"), v("deep"))])
        .await
        .expect("set deep");
    s.apply(&p("/a b"), &[PropOp::Set(n("s"), v("sibling"))])
        .await
        .expect("set sibling");
    s.apply(&p("/a0"), &[PropOp::Set(n("s"), v("sibling0"))])
        .await
        .expect("set sibling");

    let members = s.get_members(&p("/a")).await.expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members["b"], vec![(n("l"), lang.clone())]);
    let top = s
        .get_members(&ResourcePath::root())
        .await
        .expect("root members");
    let mut names: Vec<&String> = top.keys().collect();
    names.sort();
    assert_eq!(names, vec!["a", "a b", "a0"]);

    s.copy_tree(&p("/a"), &p("/copy")).await.expect("copy");
    assert_eq!(
        s.get_all(&p("/copy/b/c")).await.expect("get"),
        vec![(n("z"), v("deep"))]
    );
    assert_eq!(
        s.get_all(&p("/a/b/c")).await.expect("get").len(),
        1,
        "copy keeps the source"
    );
    assert_eq!(
        s.get_members(&p("/copy")).await.expect("members")["b"],
        vec![(n("l"), lang)]
    );

    s.move_tree(&p("/copy"), &p("/a b/moved"))
        .await
        .expect("move");
    assert!(s.get_all(&p("/copy/b/c")).await.expect("get").is_empty());
    assert_eq!(s.get_all(&p("/a b/moved/b/c")).await.expect("get").len(), 1);
    let moved = s.get_members(&p("/a b/moved")).await.expect("members");
    assert_eq!(moved.len(), 1, "members are found under their new parent");
    assert!(moved.contains_key("b"));
    assert_eq!(
        s.get_members(&p("/a b/moved/b"))
            .await
            .expect("members")
            .len(),
        1
    );
    assert!(
        s.get_members(&p("/copy"))
            .await
            .expect("members")
            .is_empty()
    );
    assert_eq!(
        s.get_all(&p("/a b")).await.expect("get").len(),
        1,
        "the target's parent keeps its own"
    );

    for (path, has) in [
        ("/a", true),
        ("/a/b/c", true),
        ("/a b/moved", true),
        ("/copy", false),
        ("/a/b/c/d", false),
        ("/nothing", false),
        ("/", true),
    ] {
        assert_eq!(
            s.has_any_tree(&[&p(path)]).await.expect("has_any_tree"),
            has,
            "{path}"
        );
    }

    s.remove_tree(&p("/a")).await.expect("remove");
    assert!(!s.has_any_tree(&[&p("/a")]).await.expect("has_any_tree"));
    assert!(
        s.has_any_tree(&[&p("/a"), &p("/a b")])
            .await
            .expect("has_any_tree")
    );
    assert!(s.get_all(&p("/a/b")).await.expect("get").is_empty());
    assert_eq!(
        s.get_all(&p("/a b")).await.expect("get").len(),
        1,
        "a name sharing a prefix is not below"
    );
    assert_eq!(
        s.get_all(&p("/a0")).await.expect("get").len(),
        1,
        "a name sharing a prefix is not below"
    );
}

/// Checks the [`LockStore`] contract on an empty backend. Panics on the first violation.
pub async fn check_lock_store(s: &dyn LockStore) {
    use std::time::{Duration, UNIX_EPOCH};
    let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let lock = |token: &str, root: &str, expires: Option<u64>| Lock {
        token: token.to_owned(),
        root: p(root),
        scope: LockScope::Exclusive,
        depth: Depth::Infinity,
        owner: Some("<href xmlns=\"DAV:\">me</href>".to_owned()),
        timeout: expires,
        expires: expires.map(|e| t0 + Duration::from_secs(e)),
        creator: None,
    };
    let a = lock("urn:uuid:a", "/a", Some(10));
    let b = Lock {
        scope: LockScope::Shared,
        depth: Depth::Zero,
        creator: Some("élise".to_owned()),
        ..lock("urn:uuid:b", "/a/b/c", None)
    };
    let sibling = lock("urn:uuid:s", "/a b", Some(100));
    for l in [&a, &b, &sibling] {
        s.insert(l).await.expect("insert");
    }
    assert_eq!(
        s.get("urn:uuid:b").await.expect("get"),
        Some(b.clone()),
        "a lock reads back whole"
    );
    assert_eq!(s.get("urn:uuid:none").await.expect("get"), None);

    let mut on = s.on_path(&p("/a/b/c/d")).await.expect("on_path");
    on.sort_by(|x, y| x.token.cmp(&y.token));
    assert_eq!(on, vec![a.clone(), b.clone()]);
    assert_eq!(s.on_path(&p("/a")).await.expect("on_path"), vec![a.clone()]);
    assert!(
        s.on_path(&ResourcePath::root())
            .await
            .expect("on_path")
            .is_empty()
    );
    assert_eq!(s.below(&p("/a")).await.expect("below"), vec![b.clone()]);
    assert_eq!(
        s.below(&ResourcePath::root()).await.expect("below").len(),
        3
    );

    s.refresh("urn:uuid:a", Some(50), Some(t0 + Duration::from_secs(50)))
        .await
        .expect("refresh");
    s.refresh("urn:uuid:none", None, None)
        .await
        .expect("refreshing nothing is not an error");
    assert_eq!(
        s.get("urn:uuid:a").await.expect("get").map(|l| l.timeout),
        Some(Some(50))
    );

    s.remove_expired(t0 + Duration::from_secs(60))
        .await
        .expect("expire");
    assert_eq!(
        s.get("urn:uuid:a").await.expect("get"),
        None,
        "expired at 50"
    );
    assert!(
        s.get("urn:uuid:b").await.expect("get").is_some(),
        "infinite locks never expire"
    );

    s.insert(&a).await.expect("insert");
    s.remove_tree(&p("/a")).await.expect("remove tree");
    assert!(s.get("urn:uuid:a").await.expect("get").is_none());
    assert!(s.get("urn:uuid:b").await.expect("get").is_none());
    assert!(
        s.get("urn:uuid:s").await.expect("get").is_some(),
        "a sibling sharing a prefix stays"
    );
    s.remove("urn:uuid:s").await.expect("remove");
    assert!(s.get("urn:uuid:s").await.expect("get").is_none());
    s.remove("urn:uuid:s")
        .await
        .expect("removing nothing is not an error");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryPropertyStore, MemoryStorage};
    use crate::sqlite::SqliteStore;

    #[tokio::test]
    async fn memory_storage_conforms() {
        check_storage(&MemoryStorage::new()).await;
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn fs_write_keeps_the_replaced_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("private"), "old").unwrap();
        std::fs::set_permissions(
            dir.path().join("private"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let s = crate::fs::FsStorage::open(dir.path()).unwrap();
        s.write(&p("/private"), body(b"new")).await.unwrap();
        let mode = std::fs::metadata(dir.path().join("private"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("private")).unwrap(),
            "new"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn fs_storage_conforms() {
        let dir = tempfile::tempdir().unwrap();
        check_storage(&crate::fs::FsStorage::open(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn faulty_storage_conforms_outside_the_marker() {
        check_storage(
            &FaultyStorage::new(Arc::new(MemoryStorage::new()))
                .stuck("never-used")
                .fail_reads("never-used"),
        )
        .await;
    }

    #[tokio::test]
    async fn memory_property_store_conforms() {
        check_property_store(&MemoryPropertyStore::new()).await;
    }

    #[tokio::test]
    async fn memory_lock_store_conforms() {
        check_lock_store(&crate::memory::MemoryLockStore::new()).await;
    }

    #[tokio::test]
    async fn sqlite_lock_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        check_lock_store(&SqliteStore::open(dir.path().join("l.db")).unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_property_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        check_property_store(&SqliteStore::open(dir.path().join("p.db")).unwrap()).await;
    }
}
