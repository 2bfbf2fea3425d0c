//! Lock policy (RFC 4918 §6, §7): which locks cover a resource, which conflict, when they
//! lapse. Kept once here for every [`LockStore`]; the store only keeps the records.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use davit_proto::{ActiveLock, Depth, LockScope, ResourceKind, ResourcePath};
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
    pub(crate) store: Arc<dyn LockStore>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Longest timeout granted; longer and infinite requests get this.
    pub(crate) max_timeout: Duration,
    /// Orders lock creation against writes: a write holds it shared from its lock check
    /// until its change is made, a LOCK holds it exclusively from its conflict check until
    /// the lock is stored. So no write passes its check and then lands after a LOCK that
    /// should have stopped it, and two LOCKs cannot both see no conflict.
    pub(crate) gate: tokio::sync::RwLock<()>,
}

impl LockManager {
    /// Held by a write from its lock check until its change is made.
    pub(crate) async fn write_gate(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Held by a LOCK from its conflict check until the lock is stored.
    pub(crate) async fn lock_gate(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().await
    }

    fn live(&self, mut locks: Vec<Lock>) -> Vec<Lock> {
        let now = self.clock.now();
        locks.retain(|l| l.expires.is_none_or(|e| e > now));
        locks
    }

    /// Active locks rooted at `path` or at an ancestor (whatever their depth).
    pub(crate) async fn on_path(&self, path: &ResourcePath) -> Result<Vec<Lock>, DavError> {
        let locks = self
            .store
            .on_path(path)
            .await
            .map_err(DavError::from_storage)?;
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
        let locks = self
            .store
            .below(path)
            .await
            .map_err(DavError::from_storage)?;
        Ok(self.live(locks))
    }

    /// The active lock with this token.
    pub(crate) async fn get(&self, token: &str) -> Result<Option<Lock>, DavError> {
        let lock = self
            .store
            .get(token)
            .await
            .map_err(DavError::from_storage)?;
        Ok(lock.and_then(|l| self.live(vec![l]).pop()))
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

    /// Drops lapsed locks from the store.
    pub(crate) async fn purge(&self) {
        if let Err(e) = self.store.remove_expired(self.clock.now()).await {
            tracing::warn!(error = %e, "could not remove expired locks");
        }
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
pub(crate) fn active(lock: &Lock, now: SystemTime, root_kind: ResourceKind) -> ActiveLock<'_> {
    ActiveLock {
        scope: lock.scope,
        depth: lock.depth,
        owner: lock.owner.as_deref(),
        timeout: remaining(lock, now),
        token: &lock.token,
        root: &lock.root,
        root_kind,
    }
}
