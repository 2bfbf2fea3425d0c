//! Short-lived caches for the folder backend: the bytes and metadata of small files, the
//! metadata of paths looked up, and the listings of folders, trusted for a short time
//! without asking the filesystem again.
//!
//! Serving a small file otherwise costs four syscalls (open, stat, read, close) that take a
//! quarter of a GET's time, and listing a folder costs one stat per member; lighttpd's stat
//! cache makes the same trade. Changes made through Davit invalidate entries at once;
//! changes made to the folder behind Davit's back show after at most the time-to-live.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Entry, Metadata};

#[derive(Debug, Clone)]
struct Cached {
    metadata: Metadata,
    data: Bytes,
    checked: Instant,
}

/// The cache; `ttl` of zero turns it off.
#[derive(Debug)]
pub(crate) struct ReadCache {
    entries: Mutex<Files>,
    ttl: Duration,
    capacity: usize,
}

/// The files, and a generation bumped by every invalidation: a read that began before a
/// change and ends after it must not store what it read.
#[derive(Debug, Default)]
struct Files {
    map: BTreeMap<String, Cached>,
    generation: u64,
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// Fresh: serve it.
    Fresh(Metadata, Bytes),
    /// Known but due for a check: still valid if the file is unchanged.
    Stale(Metadata, Bytes),
    /// Not cached.
    Miss,
}

impl ReadCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        ReadCache {
            entries: Mutex::new(Files::default()),
            ttl,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        // Entries are inserted and removed whole: a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) fn get(&self, path: &str) -> Lookup {
        if !self.enabled() {
            return Lookup::Miss;
        }
        match self.lock().map.get(path) {
            Some(c) if c.checked.elapsed() < self.ttl => {
                Lookup::Fresh(c.metadata.clone(), c.data.clone())
            }
            Some(c) => Lookup::Stale(c.metadata.clone(), c.data.clone()),
            None => Lookup::Miss,
        }
    }

    /// The generation to hand to [`ReadCache::put`] for a read about to begin.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps what a read that began at `generation` found, unless a change came since.
    pub(crate) fn put(&self, path: &str, metadata: Metadata, data: Bytes, generation: u64) {
        if !self.enabled() {
            return;
        }
        let mut files = self.lock();
        if files.generation != generation {
            return;
        }
        let entries = &mut files.map;
        if entries.len() >= self.capacity && !entries.contains_key(path) {
            // Full: drop half, whichever the map yields first. Cheap, and a hot file is
            // back in after one miss.
            let drop: Vec<String> = entries
                .keys()
                .take(self.capacity / 2 + 1)
                .cloned()
                .collect();
            for k in drop {
                entries.remove(&k);
            }
        }
        entries.insert(
            path.to_owned(),
            Cached {
                metadata,
                data,
                checked: Instant::now(),
            },
        );
    }

    /// Forgets `path` and everything below it.
    pub(crate) fn invalidate(&self, path: &str) {
        if !self.enabled() {
            return;
        }
        let mut files = self.lock();
        files.generation = files.generation.wrapping_add(1);
        forget_tree(&mut files.map, path);
    }

    /// Forgets the files not checked within `keep`. Past its time-to-live an entry still
    /// spares a read (a stat shows the file unchanged), so `keep` is the longer horizon.
    /// Whether any file is left.
    pub(crate) fn tidy(&self, keep: Duration) -> bool {
        let mut files = self.lock();
        files.map.retain(|_, c| c.checked.elapsed() < keep);
        !files.map.is_empty()
    }
}

/// Metadata of paths recently looked up: a LOCK, a PROPFIND Depth 0 or a conditional PUT
/// otherwise costs a path walk beneath the root (openat2), a statx and a close.
#[derive(Debug)]
pub(crate) struct StatCache {
    entries: Mutex<Generational<Metadata>>,
    ttl: Duration,
    capacity: usize,
}

/// Values by path, each with when it was read, and a generation bumped by every
/// invalidation, so a lookup that raced a change does not store what it saw before it.
#[derive(Debug)]
struct Generational<V> {
    map: BTreeMap<String, (Instant, V)>,
    generation: u64,
}

impl<V> Default for Generational<V> {
    fn default() -> Self {
        Generational {
            map: BTreeMap::new(),
            generation: 0,
        }
    }
}

impl<V> Generational<V> {
    /// The value of `key` read less than `ttl` ago, or the generation to hand to a store.
    fn fresh(&self, key: &str, ttl: Duration) -> Result<&V, u64> {
        match self.map.get(key) {
            Some((checked, v)) if checked.elapsed() < ttl => Ok(v),
            _ => Err(self.generation),
        }
    }

    /// Forgets `path`, its parent (whose times and members a change of a member changes),
    /// and everything below it; lookups under way will not store what they saw.
    fn forget(&mut self, path: &str) {
        self.generation = self.generation.wrapping_add(1);
        self.map.remove(parent(path));
        forget_tree(&mut self.map, path);
    }

    /// Forgets what was read `ttl` or more ago; whether anything is left.
    fn tidy(&mut self, ttl: Duration) -> bool {
        self.map.retain(|_, (checked, _)| checked.elapsed() < ttl);
        !self.map.is_empty()
    }
}

impl StatCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        StatCache {
            entries: Mutex::new(Generational::default()),
            ttl,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generational<Metadata>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fresh metadata of `path`, or the generation to hand to [`StatCache::put`].
    pub(crate) fn get(&self, path: &str) -> Result<Metadata, u64> {
        if self.ttl.is_zero() {
            return Err(0);
        }
        self.lock().fresh(path, self.ttl).cloned()
    }

    /// The generation to hand to [`StatCache::put`] for a lookup that skips the cache.
    pub(crate) fn generation(&self) -> u64 {
        if self.ttl.is_zero() {
            return 0;
        }
        self.lock().generation
    }

    /// Keeps what a lookup that began at `generation` found, unless something changed since.
    pub(crate) fn put(&self, path: &str, metadata: &Metadata, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.generation != generation {
            return;
        }
        if entries.map.len() >= self.capacity {
            entries.map.clear();
        }
        entries
            .map
            .insert(path.to_owned(), (Instant::now(), metadata.clone()));
    }

    /// Forgets `path`, its parent (whose times a change of a member changes), and
    /// everything below it.
    pub(crate) fn invalidate(&self, path: &str) {
        if self.ttl.is_zero() {
            return;
        }
        self.lock().forget(path);
    }

    /// Forgets what is past its time-to-live: a lookup never returns it again. Whether
    /// anything is left.
    pub(crate) fn tidy(&self) -> bool {
        self.lock().tidy(self.ttl)
    }
}

/// A folder's members as listed.
type Listing = Vec<(String, Metadata)>;

/// Folder listings: names with metadata.
#[derive(Debug)]
pub(crate) struct ListCache {
    entries: Mutex<Generational<Listing>>,
    ttl: Duration,
    /// Most members held over all folders.
    capacity: usize,
}

impl ListCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        ListCache {
            entries: Mutex::new(Generational::default()),
            ttl,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generational<Listing>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh listing of `dir`, or the generation to hand to [`ListCache::put`].
    pub(crate) fn get(&self, dir: &str) -> Result<Vec<Entry>, u64> {
        if self.ttl.is_zero() {
            return Err(0);
        }
        self.lock().fresh(dir, self.ttl).map(|members| {
            members
                .iter()
                .map(|(name, m)| Entry {
                    name: name.clone(),
                    metadata: Ok(m.clone()),
                })
                .collect()
        })
    }

    /// Remembers a listing, begun at `generation`, in which every member could be read,
    /// unless something changed since it began.
    pub(crate) fn put(&self, dir: &str, listing: &[Entry], generation: u64) {
        if self.ttl.is_zero() || listing.len() > self.capacity / 2 {
            return;
        }
        let Some(members) = listing
            .iter()
            .map(|e| {
                e.metadata
                    .as_ref()
                    .ok()
                    .map(|m| (e.name.clone(), m.clone()))
            })
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let mut entries = self.lock();
        if entries.generation != generation {
            return;
        }
        let held = |e: &Generational<Listing>| e.map.values().map(|(_, m)| m.len()).sum::<usize>();
        if held(&entries) + members.len() > self.capacity {
            entries.tidy(self.ttl);
            if held(&entries) + members.len() > self.capacity {
                entries.map.clear();
            }
        }
        entries
            .map
            .insert(dir.to_owned(), (Instant::now(), members));
    }

    /// Forgets the listings of `path`, its parent, and everything below it.
    pub(crate) fn invalidate(&self, path: &str) {
        if self.ttl.is_zero() {
            return;
        }
        self.lock().forget(path);
    }

    /// Forgets the listings past their time-to-live; whether any is left.
    pub(crate) fn tidy(&self) -> bool {
        self.lock().tidy(self.ttl)
    }
}

/// The folder holding `path` (`/` for top-level names).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Drops the entries of `path` and of everything below it. The maps are ordered, so what
/// lies below a path is one run of keys and a change costs what it drops: a scan of all
/// 4,096 entries on every change made a MOVE after a read-heavy spell 0.5 ms slower.
fn forget_tree<V>(entries: &mut BTreeMap<String, V>, path: &str) {
    entries.remove(path);
    let prefix = if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    };
    let below: Vec<String> = entries
        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(&prefix))
        .cloned()
        .collect();
    for k in below {
        entries.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ETag, ResourceKind};
    use std::time::SystemTime;

    fn meta() -> Metadata {
        Metadata {
            kind: ResourceKind::File,
            len: 1,
            modified: SystemTime::now(),
            created: None,
            etag: ETag::strong("e"),
        }
    }

    #[test]
    fn fresh_then_stale_then_gone() {
        let c = ReadCache::new(Duration::from_millis(30), 10);
        // A read that began before a change does not store what it read after it.
        let before = c.generation();
        c.invalidate("/late");
        c.put("/late", meta(), Bytes::from_static(b"old"), before);
        assert!(matches!(c.get("/late"), Lookup::Miss));
        c.put("/a/b", meta(), Bytes::from_static(b"x"), c.generation());
        assert!(matches!(c.get("/a/b"), Lookup::Fresh(..)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(c.get("/a/b"), Lookup::Stale(..)));
        c.put("/a b", meta(), Bytes::new(), c.generation());
        c.invalidate("/a");
        assert!(matches!(c.get("/a/b"), Lookup::Miss));
        assert!(
            !matches!(c.get("/a b"), Lookup::Miss),
            "a sibling sharing a prefix stays"
        );
    }

    #[test]
    fn tidying_drops_only_what_is_past_its_time() {
        let ttl = Duration::from_millis(30);
        let (files, stats, lists) = (
            ReadCache::new(ttl, 10),
            StatCache::new(ttl, 10),
            ListCache::new(ttl, 10),
        );
        files.put("/old", meta(), Bytes::new(), files.generation());
        stats.put("/old", &meta(), 0);
        lists.put("/old", &[], 0);
        std::thread::sleep(Duration::from_millis(40));
        files.put("/new", meta(), Bytes::new(), files.generation());
        stats.put("/new", &meta(), 0);
        lists.put("/new", &[], 0);
        files.tidy(Duration::from_secs(60));
        stats.tidy();
        lists.tidy();
        assert!(
            matches!(files.get("/old"), Lookup::Stale(..)),
            "a stale file is kept for a check"
        );
        assert_eq!(stats.lock().map.len(), 1);
        assert_eq!(lists.lock().map.len(), 1);
        assert!(stats.get("/new").is_ok() && lists.get("/new").is_ok());
        assert!(files.tidy(ttl), "one file is left");
        assert!(matches!(files.get("/old"), Lookup::Miss));
        assert!(matches!(files.get("/new"), Lookup::Fresh(..)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            !files.tidy(ttl) && !stats.tidy() && !lists.tidy(),
            "all empty"
        );
    }

    #[test]
    fn listings_are_forgotten_with_their_members() {
        let c = ListCache::new(Duration::from_secs(5), 100);
        let e = |n: &str| Entry {
            name: n.to_owned(),
            metadata: Ok(meta()),
        };
        let put = |dir: &str, listing: &[Entry]| {
            let generation = c.get(dir).unwrap_err();
            c.put(dir, listing, generation);
        };
        put("/a", &[e("x"), e("y")]);
        put("/a/sub", &[e("z")]);
        put("/b", &[e("w")]);
        assert_eq!(c.get("/a").map(|l| l.len()), Ok(2));
        c.invalidate("/a/x");
        assert!(
            c.get("/a").is_err(),
            "a change to a member changes the listing"
        );
        assert!(c.get("/a/sub").is_ok());
        c.invalidate("/a");
        assert!(c.get("/a/sub").is_err());
        assert!(c.get("/b").is_ok());
        let failed = Entry {
            name: "bad".to_owned(),
            metadata: Err(crate::StorageError::PermissionDenied),
        };
        put("/c", &[failed]);
        assert!(
            c.get("/c").is_err(),
            "a listing with an unreadable member is not kept"
        );

        // A listing read while a member changed must not be kept.
        let generation = c.get("/d").unwrap_err();
        c.invalidate("/d/new");
        c.put("/d", &[e("old")], generation);
        assert!(c.get("/d").is_err());
    }

    #[test]
    fn forget_tree_drops_exactly_the_subtree() {
        // Names that sort between "/a/b" and "/a/b/..." (space, '-', '.') sit inside the
        // run a careless range would cut.
        let held = [
            "/", "/a", "/a/b", "/a/b c", "/a/b-1", "/a/b.txt", "/a/b/c", "/a/b/c/d", "/a/b0",
            "/a/bc", "/a/c", "/b",
        ];
        let cases: [(&str, &[&str]); 5] = [
            ("/a/b", &["/a/b", "/a/b/c", "/a/b/c/d"]),
            ("/a/b/c/d", &["/a/b/c/d"]),
            (
                "/a",
                &[
                    "/a", "/a/b", "/a/b c", "/a/b-1", "/a/b.txt", "/a/b/c", "/a/b/c/d", "/a/b0",
                    "/a/bc", "/a/c",
                ],
            ),
            ("/", &held),
            ("/missing", &[]),
        ];
        for (path, gone) in cases {
            let mut map: BTreeMap<String, ()> =
                held.iter().map(|k| ((*k).to_owned(), ())).collect();
            forget_tree(&mut map, path);
            let left: Vec<&str> = map.keys().map(String::as_str).collect();
            let want: Vec<&str> = held.iter().copied().filter(|k| !gone.contains(k)).collect();
            assert_eq!(left, want, "forgetting {path}");
        }
    }

    proptest::proptest! {
        /// The range walk drops what the plain scan it replaced dropped: the path and every
        /// key below it, nothing else. Segments are drawn from names that sort around '/'.
        #[test]
        fn forget_tree_matches_a_scan(
            keys in proptest::collection::btree_set(
                proptest::collection::vec(
                    proptest::sample::select(vec!["a", "b", "a b", "a-1", "a.b", "a0", "ab", "é"]),
                    0..4,
                ),
                0..40,
            ),
            target in proptest::collection::vec(
                proptest::sample::select(vec!["a", "b", "a b", "a-1", "a0"]),
                0..3,
            ),
        ) {
            let as_path = |segs: &[&str]| format!("/{}", segs.join("/"));
            let mut map: BTreeMap<String, ()> = keys.iter().map(|k| (as_path(k), ())).collect();
            let path = as_path(&target);
            let prefix = if path == "/" { "/".to_owned() } else { format!("{path}/") };
            let mut want = map.clone();
            want.retain(|k, _| *k != path && !k.starts_with(&prefix));
            forget_tree(&mut map, &path);
            proptest::prop_assert_eq!(map, want);
        }
    }

    #[test]
    fn bounded_and_switchable() {
        let c = ReadCache::new(Duration::from_secs(1), 4);
        for i in 0..20 {
            c.put(&format!("/{i}"), meta(), Bytes::new(), c.generation());
        }
        assert!(c.lock().map.len() <= 4);
        let off = ReadCache::new(Duration::ZERO, 4);
        off.put("/x", meta(), Bytes::new(), off.generation());
        assert!(matches!(off.get("/x"), Lookup::Miss));
    }

    #[test]
    fn stat_cache_forgets_changes_their_parents_and_raced_lookups() {
        let c = StatCache::new(Duration::from_secs(60), 100);
        for path in ["/d", "/d/f", "/d/sub/g", "/other"] {
            let generation = c.get(path).unwrap_err();
            c.put(path, &meta(), generation);
            assert!(c.get(path).is_ok(), "{path}");
        }
        c.invalidate("/d/sub");
        assert!(c.get("/d").is_err(), "the parent's times changed");
        assert!(c.get("/d/sub/g").is_err(), "below is gone");
        assert!(c.get("/d/f").is_ok() && c.get("/other").is_ok());

        // A lookup that began before a change must not store what it saw.
        let generation = c.get("/new").unwrap_err();
        c.invalidate("/new");
        c.put("/new", &meta(), generation);
        assert!(c.get("/new").is_err());

        let off = StatCache::new(Duration::ZERO, 100);
        off.put("/x", &meta(), 0);
        assert!(off.get("/x").is_err());
    }
}
