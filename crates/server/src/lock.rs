//! Lock policy (RFC 4918 §6, §7): which locks cover a resource, which conflict, when they
//! lapse. Kept once here for every [`LockStore`]; the store only keeps the records.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use davit_proto::{ActiveLock, BasePath, Depth, LockScope, ResourceKind, ResourcePath};
use davit_store::{Lock, LockStore};

use crate::error::DavError;

/// Where the server reads the time, so tests can move it instead of sleeping.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock(Mutex::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// True if `lock` applies to `path`: rooted there, or rooted above with depth infinity.
pub(crate) fn covers(lock: &Lock, path: &ResourcePath) -> bool {
    lock.root == *path || (lock.depth == Depth::Infinity && path.starts_with(&lock.root))
}

/// True if a new lock of `scope` cannot coexist with `existing`.
pub(crate) fn conflicts(existing: &Lock, scope: LockScope) -> bool {
    existing.scope == LockScope::Exclusive || scope == LockScope::Exclusive
}

/// The lock policy over a store.
#[derive(Debug)]
pub(crate) struct LockManager {
    store: Arc<dyn LockStore>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Longest timeout granted; longer and infinite requests get this.
    max_timeout: Duration,
    /// Orders lock creation against writes: a write holds it shared from its lock check
    /// until its change is made, a LOCK holds it exclusively from its conflict check until
    /// the lock is stored. So no write passes its check and then lands after a LOCK that
    /// should have stopped it, and two LOCKs cannot both see no conflict.
    gate: tokio::sync::RwLock<()>,
    /// When lapsed locks were last removed from the store (seconds since the epoch): once a
    /// minute is enough, since lookups ignore lapsed locks anyway.
    last_purge: AtomicU64,
    /// Every lock, when the store is this process's alone: every write checks locks, and
    /// this way the check never leaves memory. Loaded on first use; changed only after the
    /// store accepted a change.
    mirror: Option<tokio::sync::OnceCell<Mutex<Vec<Lock>>>>,
}

impl LockManager {
    pub(crate) fn new(
        store: Arc<dyn LockStore>,
        clock: Arc<dyn Clock>,
        max_timeout: Duration,
    ) -> Self {
        let mirror = store.is_exclusive().then(tokio::sync::OnceCell::new);
        LockManager {
            store,
            clock,
            max_timeout,
            gate: tokio::sync::RwLock::new(()),
            last_purge: AtomicU64::new(0),
            mirror,
        }
    }

    /// Held by a write from its lock check until its change is made.
    pub(crate) async fn write_gate(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Held alone, with no write beside it: by a LOCK from its conflict check until the
    /// lock is stored, and by a MOVE throughout.
    pub(crate) async fn sole_gate(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().await
    }

    /// The in-memory copy of every lock, if this store has one.
    async fn mirror(&self) -> Result<Option<&Mutex<Vec<Lock>>>, DavError> {
        let Some(cell) = &self.mirror else {
            return Ok(None);
        };
        let all = cell
            .get_or_try_init(|| async {
                let root = ResourcePath::root();
                let mut all = self.store.on_path(&root).await?;
                all.extend(self.store.below(&root).await?);
                Ok::<_, davit_store::StorageError>(Mutex::new(all))
            })
            .await
            .map_err(DavError::from_storage)?;
        Ok(Some(all))
    }

    fn live(&self, mut locks: Vec<Lock>) -> Vec<Lock> {
        let now = self.clock.now();
        locks.retain(|l| l.expires.is_none_or(|e| e > now));
        locks
    }

    /// The mirrored locks that `keep` selects, if there is a mirror.
    async fn mirrored_where(
        &self,
        keep: impl Fn(&Lock) -> bool,
    ) -> Result<Option<Vec<Lock>>, DavError> {
        Ok(self.mirror().await?.map(|m| {
            let all = m.lock().unwrap_or_else(|p| p.into_inner());
            all.iter().filter(|l| keep(l)).cloned().collect()
        }))
    }

    /// Active locks rooted at `path` or at an ancestor (whatever their depth).
    pub(crate) async fn on_path(&self, path: &ResourcePath) -> Result<Vec<Lock>, DavError> {
        let locks = match self.mirrored_where(|l| path.starts_with(&l.root)).await? {
            Some(locks) => locks,
            None => self
                .store
                .on_path(path)
                .await
                .map_err(DavError::from_storage)?,
        };
        Ok(self.live(locks))
    }

    /// Active locks that apply to `path`.
    pub(crate) async fn covering(&self, path: &ResourcePath) -> Result<Vec<Lock>, DavError> {
        let mut locks = self.on_path(path).await?;
        locks.retain(|l| covers(l, path));
        Ok(locks)
    }

    /// Active locks rooted strictly below `path`.
    pub(crate) async fn below(&self, path: &ResourcePath) -> Result<Vec<Lock>, DavError> {
        let locks = match self
            .mirrored_where(|l| l.root != *path && l.root.starts_with(path))
            .await?
        {
            Some(locks) => locks,
            None => self
                .store
                .below(path)
                .await
                .map_err(DavError::from_storage)?,
        };
        Ok(self.live(locks))
    }

    /// The active lock with this token.
    pub(crate) async fn get(&self, token: &str) -> Result<Option<Lock>, DavError> {
        let lock = match self.mirrored_where(|l| l.token == token).await? {
            Some(mut locks) => locks.pop(),
            None => self
                .store
                .get(token)
                .await
                .map_err(DavError::from_storage)?,
        };
        Ok(lock.and_then(|l| self.live(vec![l]).pop()))
    }

    /// Applies `change` to the mirror, if there is one.
    async fn mirrored(&self, change: impl FnOnce(&mut Vec<Lock>)) -> Result<(), DavError> {
        if let Some(m) = self.mirror().await? {
            change(&mut m.lock().unwrap_or_else(|p| p.into_inner()));
        }
        Ok(())
    }

    /// Whether fewer than `max` locks are active, as far as known without asking the store
    /// (a store without a mirror counts as below).
    pub(crate) async fn holds_fewer_than(&self, max: usize) -> Result<bool, DavError> {
        let now = self.clock.now();
        Ok(self.mirror().await?.is_none_or(|m| {
            let all = m.lock().unwrap_or_else(|p| p.into_inner());
            // Lapsed locks not yet purged only need counting out near the limit.
            all.len() < max
                || all
                    .iter()
                    .filter(|l| l.expires.is_none_or(|e| e > now))
                    .count()
                    < max
        }))
    }

    /// Stores a new lock.
    pub(crate) async fn insert(&self, lock: &Lock) -> Result<(), DavError> {
        self.mirror().await?;
        self.store
            .insert(lock)
            .await
            .map_err(DavError::from_storage)?;
        self.mirrored(|all| all.push(lock.clone())).await
    }

    /// Gives a lock a new timeout.
    pub(crate) async fn refresh(&self, lock: &Lock) -> Result<(), DavError> {
        self.mirror().await?;
        self.store
            .refresh(&lock.token, lock.timeout, lock.expires)
            .await
            .map_err(DavError::from_storage)?;
        self.mirrored(|all| {
            for l in all.iter_mut().filter(|l| l.token == lock.token) {
                l.timeout = lock.timeout;
                l.expires = lock.expires;
            }
        })
        .await
    }

    /// Releases a lock.
    pub(crate) async fn remove(&self, token: &str) -> Result<(), DavError> {
        self.mirror().await?;
        self.store
            .remove(token)
            .await
            .map_err(DavError::from_storage)?;
        self.mirrored(|all| all.retain(|l| l.token != token)).await
    }

    /// Drops the locks of `path` and everything below it (the resources are gone).
    pub(crate) async fn remove_tree(&self, path: &ResourcePath) -> Result<(), DavError> {
        if let Some(m) = self.mirror().await? {
            let mut all = m.lock().unwrap_or_else(|p| p.into_inner());
            let before = all.len();
            all.retain(|l| !l.root.starts_with(path));
            if all.len() == before {
                // Most trees moved or deleted hold no lock: no store write.
                return Ok(());
            }
        }
        self.store
            .remove_tree(path)
            .await
            .map_err(DavError::from_storage)
    }

    /// The timeout to grant for a request (seconds; always finite).
    pub(crate) fn grant(&self, requested: Option<davit_proto::Timeout>) -> u64 {
        let max = self.max_timeout.as_secs().max(1);
        match requested {
            Some(davit_proto::Timeout::Seconds(s)) => s.clamp(1, max),
            Some(davit_proto::Timeout::Infinite) | None => max,
        }
    }

    /// When a lock granted `secs` now lapses.
    pub(crate) fn expiry(&self, secs: u64) -> SystemTime {
        self.clock.now() + Duration::from_secs(secs)
    }

    /// Drops lapsed locks from the store, at most once a minute.
    pub(crate) async fn purge(&self) {
        let now = self.clock.now();
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_purge.load(Ordering::Relaxed);
        if secs < last.saturating_add(60)
            || self
                .last_purge
                .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.store.remove_expired(now).await {
            tracing::warn!(error = %e, "could not remove expired locks");
            return;
        }
        let _ = self
            .mirrored(|all| all.retain(|l| l.expires.is_none_or(|e| e > now)))
            .await;
    }
}

/// Seconds left at `now` before `lock` lapses (`None` for a lock that never does).
pub(crate) fn remaining(lock: &Lock, now: SystemTime) -> Option<u64> {
    lock.expires.map(|e| {
        e.duration_since(now)
            .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
    })
}

/// How `lock` shows in `lockdiscovery` at `now`; `root_kind` is the kind of its root.
pub(crate) fn active<'a>(
    lock: &'a Lock,
    now: SystemTime,
    root_kind: ResourceKind,
    base: &'a BasePath,
) -> ActiveLock<'a> {
    ActiveLock {
        scope: lock.scope,
        depth: lock.depth,
        owner: lock.owner.as_deref(),
        timeout: remaining(lock, now),
        token: &lock.token,
        root: &lock.root,
        root_kind,
        base,
    }
}
