//! Content and dead properties kept in memory: for tests, litmus and throwaway servers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::{
    ByteRange, ByteStream, ETag, Entry, FileReader, Lock, LockStore, MemberProps, Metadata,
    PendingWrite, PropName, PropOp, PropValue, PropertyStore, ResourceKind, ResourcePath, Storage,
    StorageError, WriteOutcome,
};

#[derive(Debug, Clone)]
struct Node {
    kind: ResourceKind,
    data: Bytes,
    modified: SystemTime,
    created: SystemTime,
    version: u64,
}

impl Node {
    fn metadata(&self) -> Metadata {
        Metadata {
            kind: self.kind,
            len: self.data.len() as u64,
            modified: self.modified,
            created: Some(self.created),
            etag: ETag::strong(format!("m{:x}", self.version)),
        }
    }
}

/// Content in a map from path to node; the root always exists. Clones share the same
/// content.
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    nodes: Arc<Mutex<BTreeMap<String, Node>>>,
    /// Source of entity tags: every write gets a new version, so tags never repeat.
    versions: Arc<AtomicU64>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

/// The entries strictly below `dir` in a map keyed by decoded path text. Every such key
/// starts with `dir/`, and keys sharing a prefix are contiguous in the map's order.
fn below<'a, V>(
    map: &'a BTreeMap<String, V>,
    dir: &ResourcePath,
) -> impl Iterator<Item = (&'a String, &'a V)> {
    let prefix = if dir.is_root() {
        "/".to_owned()
    } else {
        format!("{}/", dir.as_str())
    };
    map.range(prefix.clone()..)
        .take_while(move |(k, _)| k.starts_with(&prefix))
        .filter(|(k, _)| k.len() > 1)
}

/// The number of segments of a key, as [`ResourcePath::depth`] counts them.
fn key_depth(key: &str) -> usize {
    if key == "/" {
        0
    } else {
        key.matches('/').count()
    }
}

/// The last segment of a key.
fn key_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or("")
}

/// The path `key` would have if `from` were renamed to `to`.
fn rebase_key(key: &str, from: &ResourcePath, to: &ResourcePath) -> String {
    let rest = if from.is_root() {
        key
    } else {
        &key[from.as_str().len()..]
    };
    match (to.is_root(), rest) {
        (_, "" | "/") => to.as_str().to_owned(),
        (true, rest) => rest.to_owned(),
        (false, rest) => format!("{}{rest}", to.as_str()),
    }
}

impl MemoryStorage {
    /// An empty store holding only the root.
    pub fn new() -> Self {
        let now = SystemTime::now();
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_owned(),
            Node {
                kind: ResourceKind::Collection,
                data: Bytes::new(),
                modified: now,
                created: now,
                version: 0,
            },
        );
        MemoryStorage {
            nodes: Arc::new(Mutex::new(nodes)),
            versions: Arc::new(AtomicU64::new(1)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Node>> {
        // A panic while holding the lock cannot leave the map half-updated: every update
        // is a single insert or remove.
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed)
    }

    fn check_parent(
        nodes: &BTreeMap<String, Node>,
        path: &ResourcePath,
    ) -> Result<(), StorageError> {
        let parent = path.parent().ok_or(StorageError::AlreadyExists)?;
        match nodes.get(parent.as_str()) {
            Some(n) if n.kind.is_collection() => Ok(()),
            _ => Err(StorageError::ParentMissing),
        }
    }
}

/// A body held in memory until committed.
#[derive(Debug)]
struct MemoryPendingWrite {
    storage: MemoryStorage,
    path: ResourcePath,
    data: Bytes,
    /// A date the client gave, else the commit's time.
    modified: Option<SystemTime>,
}

#[async_trait]
impl PendingWrite for MemoryPendingWrite {
    fn set_modified(&mut self, modified: SystemTime) -> Result<(), StorageError> {
        self.modified = Some(modified);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(WriteOutcome, Metadata), StorageError> {
        self.put_in_place(false)
    }

    async fn commit_new(self: Box<Self>) -> Result<Metadata, StorageError> {
        self.put_in_place(true).map(|(_, metadata)| metadata)
    }
}

impl MemoryPendingWrite {
    fn put_in_place(self, create_only: bool) -> Result<(WriteOutcome, Metadata), StorageError> {
        let s = &self.storage;
        let now = SystemTime::now();
        let version = s.next_version();
        let mut nodes = s.lock();
        // The tree may have changed while the body was arriving.
        MemoryStorage::check_parent(&nodes, &self.path)?;
        let (outcome, created) = match nodes.get(self.path.as_str()) {
            Some(_) if create_only => return Err(StorageError::AlreadyExists),
            Some(n) if n.kind.is_collection() => return Err(StorageError::IsCollection),
            Some(n) => (WriteOutcome::Replaced, n.created),
            None => (WriteOutcome::Created, now),
        };
        let node = Node {
            kind: ResourceKind::File,
            data: self.data,
            modified: self.modified.unwrap_or(now),
            created,
            version,
        };
        let metadata = node.metadata();
        nodes.insert(self.path.as_str().to_owned(), node);
        Ok((outcome, metadata))
    }
}

#[derive(Debug)]
struct MemoryReader {
    metadata: Metadata,
    data: Bytes,
}

impl FileReader for MemoryReader {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn in_memory(&self) -> Option<&Bytes> {
        Some(&self.data)
    }

    fn stream(self: Box<Self>, range: Option<ByteRange>) -> ByteStream {
        let data = match range {
            Some(r) => self.data.slice(r.start as usize..r.end as usize),
            None => self.data,
        };
        Box::pin(futures_util::stream::iter([Ok(data)]))
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn metadata(&self, path: &ResourcePath) -> Result<Metadata, StorageError> {
        self.lock()
            .get(path.as_str())
            .map(Node::metadata)
            .ok_or(StorageError::NotFound)
    }

    async fn list(&self, dir: &ResourcePath) -> Result<Vec<Entry>, StorageError> {
        let nodes = self.lock();
        match nodes.get(dir.as_str()) {
            None => return Err(StorageError::NotFound),
            Some(n) if !n.kind.is_collection() => return Err(StorageError::NotACollection),
            Some(_) => {}
        }
        let depth = dir.depth() + 1;
        Ok(below(&nodes, dir)
            .filter(|(k, _)| key_depth(k) == depth)
            .map(|(k, n)| Entry {
                name: key_name(k).to_owned(),
                metadata: Ok(n.metadata()),
            })
            .collect())
    }

    async fn open(&self, path: &ResourcePath) -> Result<Box<dyn FileReader>, StorageError> {
        let nodes = self.lock();
        let node = nodes.get(path.as_str()).ok_or(StorageError::NotFound)?;
        if node.kind.is_collection() {
            return Err(StorageError::IsCollection);
        }
        Ok(Box::new(MemoryReader {
            metadata: node.metadata(),
            data: node.data.clone(),
        }))
    }

    async fn prepare_write(
        &self,
        path: &ResourcePath,
        mut body: ByteStream,
    ) -> Result<Box<dyn PendingWrite>, StorageError> {
        {
            let nodes = self.lock();
            Self::check_parent(&nodes, path)?;
            if nodes
                .get(path.as_str())
                .is_some_and(|n| n.kind.is_collection())
            {
                return Err(StorageError::IsCollection);
            }
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk.map_err(StorageError::BodyAborted)?);
        }
        Ok(Box::new(MemoryPendingWrite {
            storage: self.clone(),
            path: path.clone(),
            data: buf.freeze(),
            modified: None,
        }))
    }

    async fn create_collection(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let version = self.next_version();
        let mut nodes = self.lock();
        if nodes.contains_key(path.as_str()) {
            return Err(StorageError::AlreadyExists);
        }
        Self::check_parent(&nodes, path)?;
        let now = SystemTime::now();
        nodes.insert(
            path.as_str().to_owned(),
            Node {
                kind: ResourceKind::Collection,
                data: Bytes::new(),
                modified: now,
                created: now,
                version,
            },
        );
        Ok(())
    }

    async fn remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        if path.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        let mut nodes = self.lock();
        if !nodes.contains_key(path.as_str()) {
            return Err(StorageError::NotFound);
        }
        if below(&nodes, path).next().is_some() {
            return Err(StorageError::NotEmpty);
        }
        nodes.remove(path.as_str());
        Ok(())
    }

    async fn copy_file(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let version = self.next_version();
        let mut nodes = self.lock();
        let src = nodes.get(from.as_str()).ok_or(StorageError::NotFound)?;
        if src.kind.is_collection() {
            return Err(StorageError::IsCollection);
        }
        let data = src.data.clone();
        Self::check_parent(&nodes, to)?;
        let now = SystemTime::now();
        let created = match nodes.get(to.as_str()) {
            Some(n) if n.kind.is_collection() => return Err(StorageError::IsCollection),
            Some(n) => n.created,
            None => now,
        };
        nodes.insert(
            to.as_str().to_owned(),
            Node {
                kind: ResourceKind::File,
                data,
                modified: now,
                created,
                version,
            },
        );
        Ok(())
    }

    async fn copy_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let now = SystemTime::now();
        let mut nodes = self.lock();
        match nodes.get(from.as_str()) {
            None => return Err(StorageError::NotFound),
            Some(n) if !n.kind.is_collection() => return Err(StorageError::NotACollection),
            Some(_) => {}
        }
        if nodes.contains_key(to.as_str()) {
            return Err(StorageError::AlreadyExists);
        }
        if to.starts_with(from) {
            return Err(StorageError::PermissionDenied);
        }
        Self::check_parent(&nodes, to)?;
        let copied: Vec<(String, Node)> =
            std::iter::once((from.as_str().to_owned(), nodes[from.as_str()].clone()))
                .chain(below(&nodes, from).map(|(k, n)| (k.clone(), n.clone())))
                .collect();
        for (old, mut node) in copied {
            node.modified = now;
            node.created = now;
            node.version = self.next_version();
            nodes.insert(rebase_key(&old, from, to), node);
        }
        Ok(())
    }

    async fn set_modified(
        &self,
        path: &ResourcePath,
        modified: SystemTime,
    ) -> Result<(), StorageError> {
        let mut nodes = self.lock();
        let node = nodes.get_mut(path.as_str()).ok_or(StorageError::NotFound)?;
        node.modified = modified;
        Ok(())
    }

    async fn rename(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let mut nodes = self.lock();
        if !nodes.contains_key(from.as_str()) {
            return Err(StorageError::NotFound);
        }
        if nodes.contains_key(to.as_str()) {
            return Err(StorageError::AlreadyExists);
        }
        if from.is_root() || to.starts_with(from) {
            return Err(StorageError::PermissionDenied);
        }
        Self::check_parent(&nodes, to)?;
        let moved: Vec<String> = std::iter::once(from.as_str().to_owned())
            .chain(below(&nodes, from).map(|(k, _)| k.clone()))
            .collect();
        for old in moved {
            let node = nodes
                .remove(&old)
                .expect("collected from the map under the lock");
            nodes.insert(rebase_key(&old, from, to), node);
        }
        Ok(())
    }
}

/// Dead properties in a map from path to properties.
#[derive(Debug, Default)]
pub struct MemoryPropertyStore {
    props: Mutex<BTreeMap<String, BTreeMap<PropName, PropValue>>>,
}

impl MemoryPropertyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<PropName, PropValue>>> {
        // Updates below are computed on a copy and stored with one assignment, so a panic
        // cannot leave a half-applied PROPPATCH behind the poisoned lock.
        self.props.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn subtree(
        map: &BTreeMap<String, BTreeMap<PropName, PropValue>>,
        root: &ResourcePath,
    ) -> Vec<String> {
        map.get(root.as_str())
            .map(|_| root.as_str().to_owned())
            .into_iter()
            .chain(below(map, root).map(|(k, _)| k.clone()))
            .collect()
    }
}

#[async_trait]
impl PropertyStore for MemoryPropertyStore {
    async fn get_all(
        &self,
        path: &ResourcePath,
    ) -> Result<Vec<(PropName, PropValue)>, StorageError> {
        Ok(self
            .lock()
            .get(path.as_str())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn get_members(&self, dir: &ResourcePath) -> Result<MemberProps, StorageError> {
        let map = self.lock();
        let depth = dir.depth() + 1;
        let mut out = HashMap::new();
        for (k, props) in below(&map, dir).filter(|(k, _)| key_depth(k) == depth) {
            out.insert(
                key_name(k).to_owned(),
                props.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
            );
        }
        Ok(out)
    }

    async fn apply(&self, path: &ResourcePath, ops: &[PropOp]) -> Result<(), StorageError> {
        let mut map = self.lock();
        let mut props = map.get(path.as_str()).cloned().unwrap_or_default();
        for op in ops {
            match op {
                PropOp::Set(n, v) => {
                    props.insert(n.clone(), v.clone());
                }
                PropOp::Remove(n) => {
                    props.remove(n);
                }
            }
        }
        if props.is_empty() {
            map.remove(path.as_str());
        } else {
            map.insert(path.as_str().to_owned(), props);
        }
        Ok(())
    }

    async fn copy_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let mut map = self.lock();
        for old in Self::subtree(&map, to) {
            map.remove(&old);
        }
        for src in Self::subtree(&map, from) {
            let props = map[&src].clone();
            map.insert(rebase_key(&src, from, to), props);
        }
        Ok(())
    }

    async fn move_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let mut map = self.lock();
        for old in Self::subtree(&map, to) {
            map.remove(&old);
        }
        for src in Self::subtree(&map, from) {
            let props = map
                .remove(&src)
                .expect("collected from the map under the lock");
            map.insert(rebase_key(&src, from, to), props);
        }
        Ok(())
    }

    async fn remove_tree(&self, path: &ResourcePath) -> Result<(), StorageError> {
        let mut map = self.lock();
        for old in Self::subtree(&map, path) {
            map.remove(&old);
        }
        Ok(())
    }

    async fn has_any_tree(&self, paths: &[&ResourcePath]) -> Result<bool, StorageError> {
        let map = self.lock();
        Ok(paths
            .iter()
            .any(|path| map.contains_key(path.as_str()) || below(&map, path).next().is_some()))
    }
}

/// Locks in a map from token to lock.
#[derive(Debug, Default)]
pub struct MemoryLockStore {
    locks: Mutex<BTreeMap<String, Lock>>,
}

impl MemoryLockStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Lock>> {
        // Every update is one insert or remove: a poisoned map is still consistent.
        self.locks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl LockStore for MemoryLockStore {
    async fn insert(&self, lock: &Lock) -> Result<(), StorageError> {
        self.lock().insert(lock.token.clone(), lock.clone());
        Ok(())
    }

    async fn on_path(&self, path: &ResourcePath) -> Result<Vec<Lock>, StorageError> {
        Ok(self
            .lock()
            .values()
            .filter(|l| path.starts_with(&l.root))
            .cloned()
            .collect())
    }

    async fn below(&self, path: &ResourcePath) -> Result<Vec<Lock>, StorageError> {
        Ok(self
            .lock()
            .values()
            .filter(|l| l.root != *path && l.root.starts_with(path))
            .cloned()
            .collect())
    }

    async fn get(&self, token: &str) -> Result<Option<Lock>, StorageError> {
        Ok(self.lock().get(token).cloned())
    }

    async fn refresh(
        &self,
        token: &str,
        timeout: Option<u64>,
        expires: Option<SystemTime>,
    ) -> Result<(), StorageError> {
        if let Some(l) = self.lock().get_mut(token) {
            l.timeout = timeout;
            l.expires = expires;
        }
        Ok(())
    }

    async fn remove(&self, token: &str) -> Result<(), StorageError> {
        self.lock().remove(token);
        Ok(())
    }

    async fn remove_tree(&self, path: &ResourcePath) -> Result<(), StorageError> {
        self.lock().retain(|_, l| !l.root.starts_with(path));
        Ok(())
    }

    async fn remove_expired(&self, now: SystemTime) -> Result<(), StorageError> {
        self.lock().retain(|_, l| l.expires.is_none_or(|e| e > now));
        Ok(())
    }

    fn is_exclusive(&self) -> bool {
        true
    }
}
