//! Dead properties and locks in one SQLite file (WAL mode), the embedded default.
//!
//! One row per property, keyed by (path, namespace, name), with the parent path beside it so
//! that the properties of all members of a collection come back in one indexed query. Tree
//! operations (COPY, MOVE, DELETE) are one statement each over a key range: every path below
//! `/a` sorts between `/a/` and `/a0`, because `0` follows `/` in byte order.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::holders::Holders;
use crate::{
    Depth, Lock, LockScope, LockStore, MemberProps, PropName, PropOp, PropValue, PropertyStore,
    ResourcePath, StorageError, SyncPolicy,
};

const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS props (
    path   TEXT NOT NULL,
    parent TEXT NOT NULL,
    ns     TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    lang   TEXT,
    PRIMARY KEY (path, ns, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS props_parent ON props (parent);
CREATE TABLE IF NOT EXISTS locks (
    token   TEXT PRIMARY KEY,
    root    TEXT NOT NULL,
    scope   TEXT NOT NULL,
    depth   TEXT NOT NULL,
    owner   TEXT,
    timeout INTEGER,
    expires INTEGER,
    creator TEXT
);
CREATE INDEX IF NOT EXISTS locks_root ON locks (root);
CREATE TABLE IF NOT EXISTS moves (
    seq INTEGER PRIMARY KEY,
    src TEXT NOT NULL,
    dst TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS removals (
    path TEXT PRIMARY KEY
) WITHOUT ROWID;
";

/// Dead properties and locks in SQLite.
///
/// Three connections to the one file: property changes commit with `synchronous=FULL`
/// (durable on power loss, under [`SyncPolicy::Always`]); reads run on their own
/// connection, which WAL never makes wait for a writer; and lock records belong to a
/// [`LockWriter`] thread.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    props: Arc<Mutex<Connection>>,
    locks: Arc<LockWriter>,
    reads: Arc<Mutex<Connection>>,
    holders: Arc<Holders>,
    /// Held while this store is open; last, so it goes after the connections (closing any
    /// descriptor of the file drops the process's SQLite locks on it).
    _claim: Arc<std::fs::File>,
}

/// Work for the lock thread.
enum LockJob {
    Insert(Lock),
    Refresh(String, Option<u64>, Option<SystemTime>),
    Remove(String),
    RemoveTree(ResourcePath),
    RemoveExpired(SystemTime),
    /// A lookup, run after every change queued before it.
    Ask(Box<dyn FnOnce(&Connection) + Send>),
}

/// How long the lock thread gathers changes before it writes them.
const LOCK_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);

/// The thread that owns the lock table. Lock changes are queued and the request goes on:
/// a LOCK or UNLOCK does not wait for a commit, which would otherwise be most of its time
/// (the server keeps every lock in memory and reads from there). The thread gathers changes
/// for a moment and writes them in one transaction (`synchronous=NORMAL`); a lock taken and
/// released within the moment never reaches the disk, and a lock taken at the very end of
/// one is held back for one more moment, so a client that locks and unlocks in a steady
/// stream costs no writes at all. Lookups go through the same queue, so they see every
/// change made before them (waiting up to a moment while locks are held back; the server
/// reads locks from memory, so lookups are rare). A crash of the process loses at most the
/// changes of the last two moments; stopping cleanly (dropping the store) writes everything.
#[derive(Debug)]
struct LockWriter {
    queue: Mutex<Option<std::sync::mpsc::Sender<LockJob>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LockWriter {
    fn start(mut conn: Connection) -> Result<Self, StorageError> {
        use std::sync::mpsc::TryRecvError;
        let (tx, rx) = std::sync::mpsc::channel::<LockJob>();
        let thread = std::thread::Builder::new()
            .name("davit-locks".to_owned())
            .spawn(move || {
                let mut held: Vec<Lock> = Vec::new();
                // Whether the last moment brought changes: while they keep coming, the
                // thread sleeps from moment to moment instead of waiting on the queue, so
                // requests queue changes without waking it (a wake-up per batch cost as
                // much as the batch).
                let mut busy = false;
                let mut open = true;
                while open {
                    let aged: HashSet<String> = held.iter().map(|l| l.token.clone()).collect();
                    let mut batch: Vec<LockJob> = held.drain(..).map(LockJob::Insert).collect();
                    let mut lookup = false;
                    if batch.is_empty() && !busy {
                        let Ok(first) = rx.recv() else { break };
                        lookup = matches!(first, LockJob::Ask(_));
                        batch.push(first);
                    }
                    // Lookups wait for nobody; changes wait a moment for company.
                    if !lookup {
                        std::thread::sleep(LOCK_BATCH_WINDOW);
                    }
                    busy = false;
                    loop {
                        match rx.try_recv() {
                            Ok(job) => {
                                busy = true;
                                batch.push(job);
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                open = false;
                                break;
                            }
                        }
                    }
                    let (write, hold) = if open {
                        hold_back(cancel_pairs(batch), &aged)
                    } else {
                        (cancel_pairs(batch), Vec::new())
                    };
                    held = hold;
                    if let Err(e) = write_batch(&mut conn, write) {
                        tracing::error!(error = %e, "lock store: writing lock changes failed; they may be lost");
                    }
                }
            })
            .map_err(StorageError::Io)?;
        Ok(LockWriter {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn submit(&self, job: LockJob) -> Result<(), StorageError> {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue
            .as_ref()
            .and_then(|tx| tx.send(job).ok())
            .ok_or_else(|| StorageError::Io(std::io::Error::other("the lock store has stopped")))
    }

    /// Runs a lookup after every change queued before it.
    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(LockJob::Ask(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        })))?;
        rx.await
            .map_err(|_| StorageError::Io(std::io::Error::other("the lock store has stopped")))?
            .map_err(db)
    }
}

/// Drops an insert and a removal of the same lock when both are in one batch with no
/// lookup between them: the lock came and went, nothing needs writing.
fn cancel_pairs(batch: Vec<LockJob>) -> Vec<LockJob> {
    let mut kept: Vec<Option<LockJob>> = batch.into_iter().map(Some).collect();
    for i in 0..kept.len() {
        let Some(LockJob::Remove(token)) = &kept[i] else {
            continue;
        };
        let token = token.clone();
        let mut j = i;
        while j > 0 {
            j -= 1;
            match &kept[j] {
                Some(LockJob::Ask(_) | LockJob::RemoveTree(_) | LockJob::RemoveExpired(_)) => break,
                Some(LockJob::Insert(l)) if l.token == token => {
                    kept[j] = None;
                    kept[i] = None;
                    break;
                }
                _ => {}
            }
        }
        // Refreshes of a lock that never reached the disk go with it.
        if kept[i].is_none() {
            for k in kept.iter_mut().take(i) {
                if matches!(k, Some(LockJob::Refresh(t, ..)) if *t == token) {
                    *k = None;
                }
            }
        }
    }
    kept.into_iter().flatten().collect()
}

/// Splits a batch into what to write now and the locks to hold back: the inserts it ends
/// with (nothing after them depends on them), unless they were held back once already
/// (`aged`). Such a lock is often released moments later, and then never written.
fn hold_back(batch: Vec<LockJob>, aged: &HashSet<String>) -> (Vec<LockJob>, Vec<Lock>) {
    let tail = batch
        .iter()
        .rev()
        .take_while(|j| matches!(j, LockJob::Insert(_)))
        .count();
    let mut write = batch;
    let ending = write.split_off(write.len() - tail);
    let mut held = Vec::new();
    for job in ending {
        match job {
            LockJob::Insert(lock) if !aged.contains(&lock.token) => held.push(lock),
            job => write.push(job),
        }
    }
    (write, held)
}

/// Writes a batch in one transaction, lookups included in their place.
fn write_batch(conn: &mut Connection, batch: Vec<LockJob>) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for job in batch {
        let result = match job {
            LockJob::Insert(lock) => tx
                .prepare_cached(&format!(
                    "INSERT INTO locks ({LOCK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        lock.token,
                        lock.root.as_str(),
                        lock.scope.as_str(),
                        lock.depth.to_string(),
                        lock.owner,
                        lock.timeout.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                        lock.expires.map(to_millis),
                        lock.creator,
                    ])
                }),
            LockJob::Refresh(token, timeout, expires) => tx
                .prepare_cached("UPDATE locks SET timeout = ?2, expires = ?3 WHERE token = ?1")
                .and_then(|mut s| {
                    s.execute(params![
                        token,
                        timeout.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                        expires.map(to_millis)
                    ])
                }),
            LockJob::Remove(token) => tx
                .prepare_cached("DELETE FROM locks WHERE token = ?1")
                .and_then(|mut s| s.execute([token])),
            LockJob::RemoveTree(path) => {
                let (lo, hi) = below_range(&path);
                tx.prepare_cached("DELETE FROM locks WHERE root = ?1 OR (root > ?2 AND root < ?3)")
                    .and_then(|mut s| s.execute(params![path.as_str(), lo, hi]))
            }
            LockJob::RemoveExpired(now) => tx
                .prepare_cached("DELETE FROM locks WHERE expires IS NOT NULL AND expires <= ?1")
                .and_then(|mut s| s.execute([to_millis(now)])),
            LockJob::Ask(f) => {
                f(&tx);
                Ok(0)
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "lock store: a lock change failed");
        }
    }
    tx.commit()
}

impl Drop for LockWriter {
    fn drop(&mut self) {
        // Closing the queue lets the thread write what is left and end.
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn db(e: rusqlite::Error) -> StorageError {
    StorageError::Database(Box::new(e))
}

/// The parent key of a path key: `""` for the root, so the root is nobody's member.
fn parent_key(path: &ResourcePath) -> String {
    path.parent()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

/// `(low, high)` such that the paths strictly below `path` are those in `(low, high)`.
fn below_range(path: &ResourcePath) -> (String, String) {
    if path.is_root() {
        ("/".to_owned(), "0".to_owned())
    } else {
        (format!("{}/", path.as_str()), format!("{}0", path.as_str()))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    ///
    /// # Errors
    /// [`StorageError::Database`] if the file cannot be opened or its schema is newer than
    /// this version of Davit knows.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, SyncPolicy::Always)
    }

    /// [`SqliteStore::open`] with a sync policy for property changes
    /// ([`SyncPolicy::Never`] commits with `synchronous=NORMAL`).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with(path: impl AsRef<Path>, sync: SyncPolicy) -> Result<Self, StorageError> {
        let path = path.as_ref();
        let claim = claim(path, true)?;
        let mut props = connect(
            path,
            match sync {
                SyncPolicy::Always => "FULL",
                SyncPolicy::Never => "NORMAL",
            },
        )?;
        upgrade(&mut props)?;
        let holders = holders_of(&props)?;
        Ok(SqliteStore {
            props: Arc::new(Mutex::new(props)),
            locks: Arc::new(LockWriter::start(connect(path, "NORMAL")?)?),
            reads: Arc::new(Mutex::new(connect(path, "NORMAL")?)),
            holders: Arc::new(holders),
            _claim: Arc::new(claim),
        })
    }

    /// Opens an existing database only to read it, for a server that refuses changes: no
    /// schema upgrade and no write, so it works on read-only media. Every change through it
    /// fails.
    ///
    /// # Errors
    /// [`StorageError::Database`] if the file cannot be read or was written by another
    /// version of Davit (serve it writable once to upgrade it).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref();
        let claim = claim(path, false)?;
        let props = connect_read_only(path)?;
        let version: i64 = props
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        if version != SCHEMA_VERSION {
            return Err(StorageError::Database(
                format!("database schema version {version} is not this Davit's ({SCHEMA_VERSION}); serve it once without --read-only to upgrade it").into(),
            ));
        }
        let holders = holders_of(&props)?;
        Ok(SqliteStore {
            props: Arc::new(Mutex::new(props)),
            locks: Arc::new(LockWriter::start(connect_read_only(path)?)?),
            reads: Arc::new(Mutex::new(connect_read_only(path)?)),
            holders: Arc::new(holders),
            _claim: Arc::new(claim),
        })
    }
}

/// Claims the database file for this process: alone to write it, or with other readers.
/// The property filter and the lock list are kept in memory, right only while no other
/// process changes the file; a second server on it would also replay this one's moves in
/// progress as if they had been cut off.
fn claim(path: &Path, write: bool) -> Result<std::fs::File, StorageError> {
    use rustix::fs::{FlockOperation, flock};
    let file = if write {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    } else {
        std::fs::File::open(path)
    }
    .map_err(|e| StorageError::Database(format!("opening {}: {e}", path.display()).into()))?;
    let how = if write {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    flock(&file, how).map_err(|e| {
        StorageError::Database(
            format!(
                "{} is in use by another process (another Davit serving the same folder?): {e}",
                path.display()
            )
            .into(),
        )
    })?;
    Ok(file)
}

/// The paths that hold properties, as far as the filter keeps them.
fn holders_of(conn: &Connection) -> Result<Holders, StorageError> {
    let holders = Holders::default();
    let mut stmt = conn
        .prepare("SELECT DISTINCT path FROM props")
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    // Past the most notes, the rest of a large table need not be read.
    while !holders.everywhere()
        && let Some(row) = rows.next().map_err(db)?
    {
        holders.note_path(&row.get::<_, String>(0).map_err(db)?);
    }
    Ok(holders)
}

/// A connection that cannot write. Where SQLite cannot even take its read locks (a
/// read-only folder without the database's `-shm` file), the file is opened as immutable.
fn connect_read_only(path: &Path) -> Result<Connection, StorageError> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    if conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .is_ok()
    {
        return Ok(conn);
    }
    let text = path
        .to_str()
        .ok_or_else(|| StorageError::Database("the database path is not UTF-8".into()))?;
    let escaped = text
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    let conn = Connection::open_with_flags(
        format!("file:{escaped}?immutable=1"),
        flags | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(db)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    Ok(conn)
}

/// Gives the move records of an older database their order: early version 2 databases kept
/// moves keyed by (src, dst), without the sequence number recovery replays them by.
/// Brings the schema to [`SCHEMA_VERSION`] in one transaction: a crash part way leaves the
/// version it found.
fn upgrade(conn: &mut Connection) -> Result<(), StorageError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db)?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::Database(
            format!("database schema version {version} is newer than this Davit knows ({SCHEMA_VERSION})").into(),
        ));
    }
    // Version 1 had no lock creators: its locks keep working for anyone, as then. The
    // column may be there already: earlier upgrades added it in a step of its own.
    if version == 1 {
        let has_creator: bool = tx
            .query_row(
                "SELECT count(*) > 0 FROM pragma_table_info('locks') WHERE name = 'creator'",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        if !has_creator {
            tx.execute_batch("ALTER TABLE locks ADD COLUMN creator TEXT")
                .map_err(db)?;
        }
    }
    if (1..3).contains(&version) {
        number_moves(&tx)?;
    }
    tx.execute_batch(SCHEMA).map_err(db)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(db)?;
    tx.commit().map_err(db)
}

fn number_moves(conn: &Connection) -> Result<(), StorageError> {
    // No columns: no table (a version 1 database); a `seq` column: numbered already.
    let (columns, seq): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE name = 'seq') FROM pragma_table_info('moves')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db)?;
    if columns == 0 || seq > 0 {
        return Ok(());
    }
    conn.execute_batch(
        "ALTER TABLE moves RENAME TO moves_unnumbered;
         CREATE TABLE moves (seq INTEGER PRIMARY KEY, src TEXT NOT NULL, dst TEXT NOT NULL);
         INSERT INTO moves (src, dst) SELECT src, dst FROM moves_unnumbered;
         DROP TABLE moves_unnumbered;",
    )
    .map_err(db)
}

/// How long a statement waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(path: &Path, synchronous: &str) -> Result<Connection, StorageError> {
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    // WAL: readers never block the writer, and the writer never blocks readers.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db)?;
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(db)?;
    Ok(conn)
}

async fn run<T, F>(conn: &Arc<Mutex<Connection>>, f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
{
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        // A panic inside a transaction rolls it back when the Transaction drops, so the
        // connection behind a poisoned lock is still consistent.
        let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    })
    .await
    .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
    .map_err(db)
}

/// [`run`] for a read of a few rows by key: in place when the connection is free. Such a
/// read is answered from SQLite's page cache in microseconds, less than the two thread
/// switches of the blocking pool. It must not wait there, though: when another read holds
/// the connection, or the database is busy (recovery after a crash), it goes to the pool,
/// which may wait up to the busy timeout.
async fn read<T, F>(conn: &Arc<Mutex<Connection>>, f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: Fn(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
{
    if let Ok(mut c) = conn.try_lock() {
        let _ = c.busy_timeout(Duration::ZERO);
        let result = f(&mut c);
        let _ = c.busy_timeout(BUSY_TIMEOUT);
        match result {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy => {}
            other => return other.map_err(db),
        }
    }
    run(conn, f).await
}

fn row_prop(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<(PropName, PropValue)> {
    Ok((
        PropName::new(row.get::<_, String>(at)?, row.get::<_, String>(at + 1)?),
        PropValue {
            xml: row.get(at + 2)?,
            lang: row.get(at + 3)?,
        },
    ))
}

/// Copies the rows of `from` and below to `to`, after clearing `to` and below.
fn copy_rows(
    tx: &rusqlite::Transaction<'_>,
    from: &ResourcePath,
    to: &ResourcePath,
) -> rusqlite::Result<()> {
    delete_tree(tx, to)?;
    let (lo, hi) = below_range(from);
    let from_len = from.as_str().chars().count() as i64;
    let prefix = if to.is_root() { "" } else { to.as_str() };
    let from_prefix_len = if from.is_root() { 0 } else { from_len };
    tx.prepare_cached(
        "INSERT INTO props (path, parent, ns, name, value, lang)
         SELECT CASE WHEN path = ?1 THEN ?2 ELSE ?3 || substr(path, ?4 + 1) END,
                CASE WHEN path = ?1 THEN ?5 ELSE
                    CASE WHEN parent = ?1 THEN ?2 ELSE ?3 || substr(parent, ?4 + 1) END
                END,
                ns, name, value, lang
         FROM props
         WHERE path = ?1 OR (path > ?6 AND path < ?7)",
    )?
    .execute(params![
        from.as_str(),
        to.as_str(),
        prefix,
        from_prefix_len,
        parent_key(to),
        lo,
        hi
    ])?;
    Ok(())
}

/// Renames the rows of `from` and below to `to`, after clearing `to` and below (which
/// cannot overlap `from`: a tree is never moved into itself).
fn move_rows(
    tx: &rusqlite::Transaction<'_>,
    from: &ResourcePath,
    to: &ResourcePath,
) -> rusqlite::Result<()> {
    delete_tree(tx, to)?;
    let (lo, hi) = below_range(from);
    let from_prefix_len = if from.is_root() {
        0
    } else {
        from.as_str().chars().count() as i64
    };
    let prefix = if to.is_root() { "" } else { to.as_str() };
    tx.prepare_cached(
        "UPDATE props
         SET path = CASE WHEN path = ?1 THEN ?2 ELSE ?3 || substr(path, ?4 + 1) END,
             parent = CASE WHEN path = ?1 THEN ?5 ELSE
                 CASE WHEN parent = ?1 THEN ?2 ELSE ?3 || substr(parent, ?4 + 1) END
             END
         WHERE path = ?1 OR (path > ?6 AND path < ?7)",
    )?
    .execute(params![
        from.as_str(),
        to.as_str(),
        prefix,
        from_prefix_len,
        parent_key(to),
        lo,
        hi
    ])?;
    Ok(())
}

fn delete_tree(tx: &rusqlite::Transaction<'_>, path: &ResourcePath) -> rusqlite::Result<()> {
    let (lo, hi) = below_range(path);
    tx.prepare_cached("DELETE FROM props WHERE path = ?1 OR (path > ?2 AND path < ?3)")?
        .execute(params![path.as_str(), lo, hi])?;
    Ok(())
}

#[async_trait]
impl PropertyStore for SqliteStore {
    async fn get_all(
        &self,
        path: &ResourcePath,
    ) -> Result<Vec<(PropName, PropValue)>, StorageError> {
        if !self.holders.may_hold(path.as_str()) {
            return Ok(Vec::new());
        }
        let path = path.as_str().to_owned();
        read(&self.reads, move |conn| {
            let mut stmt = conn.prepare_cached(GET_ALL)?;
            let rows = stmt.query_map([&path], |r| row_prop(r, 0))?;
            let mut props: Vec<(PropName, PropValue)> = rows.collect::<Result<_, _>>()?;
            props.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(props)
        })
        .await
    }

    async fn get_members(&self, dir: &ResourcePath) -> Result<MemberProps, StorageError> {
        if !self.holders.may_hold(dir.as_str()) {
            return Ok(MemberProps::new());
        }
        let dir = dir.clone();
        run(&self.reads, move |conn| {
            let mut stmt = conn.prepare_cached(GET_MEMBERS)?;
            let mut out = MemberProps::new();
            let mut rows = stmt.query([dir.as_str()])?;
            while let Some(row) = rows.next()? {
                let path: String = row.get(0)?;
                let name = path.rsplit('/').next().unwrap_or_default().to_owned();
                out.entry(name).or_default().push(row_prop(row, 1)?);
            }
            Ok(out)
        })
        .await
    }

    async fn apply(&self, path: &ResourcePath, ops: &[PropOp]) -> Result<(), StorageError> {
        if ops.iter().any(|op| matches!(op, PropOp::Set(..))) {
            self.holders.note_path(path.as_str());
        }
        let path = path.clone();
        let ops = ops.to_vec();
        run(&self.props, move |conn| {
            let tx = conn.transaction()?;
            let parent = parent_key(&path);
            for op in &ops {
                match op {
                    PropOp::Set(n, v) => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO props (path, parent, ns, name, value, lang)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )?
                        .execute(params![
                            path.as_str(),
                            parent,
                            n.namespace,
                            n.local,
                            v.xml,
                            v.lang
                        ])?;
                    }
                    PropOp::Remove(n) => {
                        tx.prepare_cached(
                            "DELETE FROM props WHERE path = ?1 AND ns = ?2 AND name = ?3",
                        )?
                        .execute(params![
                            path.as_str(),
                            n.namespace,
                            n.local
                        ])?;
                    }
                }
            }
            tx.commit()
        })
        .await
    }

    async fn copy_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        let copied = self.holders.may_hold(from.as_str());
        if !copied && !self.holders.may_hold(to.as_str()) {
            return Ok(()); // Nothing to copy, nothing to clear.
        }
        if copied {
            self.holders.note_tree(to.as_str());
        }
        let (from, to) = (from.clone(), to.clone());
        run(&self.props, move |conn| {
            let tx = conn.transaction()?;
            copy_rows(&tx, &from, &to)?;
            tx.commit()
        })
        .await
    }

    async fn move_tree(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        if self.holders.may_hold(from.as_str()) {
            self.holders.note_tree(to.as_str());
        }
        let (from, to) = (from.clone(), to.clone());
        run(&self.props, move |conn| {
            let tx = conn.transaction()?;
            move_rows(&tx, &from, &to)?;
            tx.prepare_cached(FORGET_MOVE)?
                .execute(params![from.as_str(), to.as_str()])?;
            tx.commit()
        })
        .await
    }

    async fn has_any_tree(&self, paths: &[&ResourcePath]) -> Result<bool, StorageError> {
        let paths: Vec<ResourcePath> = paths
            .iter()
            .filter(|p| self.holders.may_hold(p.as_str()))
            .map(|p| (*p).clone())
            .collect();
        if paths.is_empty() {
            return Ok(false);
        }
        read(&self.reads, move |conn| {
            // MOVE and COPY ask about two trees: one statement (one read transaction) for both.
            for pair in paths.chunks(2) {
                let sql = if pair.len() == 2 {
                    HAS_ANY_TREES
                } else {
                    HAS_ANY_TREE
                };
                let mut args = Vec::with_capacity(6);
                for path in pair {
                    let (lo, hi) = below_range(path);
                    args.extend([path.as_str().to_owned(), lo, hi]);
                }
                let mut stmt = conn.prepare_cached(sql)?;
                if stmt.query_row(rusqlite::params_from_iter(&args), |r| r.get::<_, bool>(0))? {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn begin_move(&self, from: &ResourcePath, to: &ResourcePath) -> Result<(), StorageError> {
        self.record("INSERT INTO moves (src, dst) VALUES (?1, ?2)", &[from, to])
            .await
    }

    async fn unfinished_moves(&self) -> Result<Vec<(ResourcePath, ResourcePath)>, StorageError> {
        let rows = self
            .stored_paths("SELECT src, dst FROM moves ORDER BY seq")
            .await?;
        rows.into_iter()
            .map(|row| match <[ResourcePath; 2]>::try_from(row) {
                Ok([src, dst]) => Ok((src, dst)),
                Err(_) => Err(StorageError::Database(
                    "a move record without two paths".into(),
                )),
            })
            .collect()
    }

    async fn abandon_move(
        &self,
        from: &ResourcePath,
        to: &ResourcePath,
    ) -> Result<(), StorageError> {
        self.record(FORGET_MOVE, &[from, to]).await
    }

    async fn begin_remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        self.record("INSERT OR IGNORE INTO removals (path) VALUES (?1)", &[path])
            .await
    }

    async fn end_remove(&self, path: &ResourcePath) -> Result<(), StorageError> {
        self.record("DELETE FROM removals WHERE path = ?1", &[path])
            .await
    }

    async fn unfinished_removes(&self) -> Result<Vec<ResourcePath>, StorageError> {
        Ok(self
            .stored_paths("SELECT path FROM removals")
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn paths(&self) -> Result<Vec<ResourcePath>, StorageError> {
        if !self.holders.any() {
            return Ok(Vec::new());
        }
        Ok(self
            .stored_paths("SELECT DISTINCT path FROM props")
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn remove_tree(&self, path: &ResourcePath) -> Result<(), StorageError> {
        if !self.holders.may_hold(path.as_str()) {
            return Ok(());
        }
        let path = path.clone();
        run(&self.props, move |conn| {
            let tx = conn.transaction()?;
            delete_tree(&tx, &path)?;
            tx.commit()
        })
        .await
    }
}

// The reads every PROPFIND and MOVE makes. No ORDER BY next to `path = ?1`: SQLite then
// recompiles the statement for every new value bound (its plan depends on it), which cost
// more than the rest of the query; the few rows are sorted afterwards instead.
const GET_ALL: &str = "SELECT ns, name, value, lang FROM props WHERE path = ?1";
const GET_MEMBERS: &str = "SELECT path, ns, name, value, lang FROM props WHERE parent = ?1";
// Two index seeks each: an OR inside one WHERE would make SQLite build a temporary table.
const HAS_ANY_TREE: &str = "SELECT EXISTS (SELECT 1 FROM props WHERE path = ?1) \
     OR EXISTS (SELECT 1 FROM props WHERE path > ?2 AND path < ?3)";
const HAS_ANY_TREES: &str = "SELECT EXISTS (SELECT 1 FROM props WHERE path = ?1) \
     OR EXISTS (SELECT 1 FROM props WHERE path > ?2 AND path < ?3) \
     OR EXISTS (SELECT 1 FROM props WHERE path = ?4) \
     OR EXISTS (SELECT 1 FROM props WHERE path > ?5 AND path < ?6)";

/// Clears one record of a move (two identical moves at once each have their own).
const FORGET_MOVE: &str = "DELETE FROM moves WHERE seq = \
     (SELECT min(seq) FROM moves WHERE src = ?1 AND dst = ?2)";

/// A path read back from the database; one that does not parse means the file was edited
/// by something else.
fn stored_path(text: &str) -> Result<ResourcePath, StorageError> {
    ResourcePath::from_decoded(text)
        .map_err(|e| StorageError::Database(format!("stored path {text:?}: {e}").into()))
}

impl SqliteStore {
    /// Runs one statement about `paths` (bound as ?1, ?2, …) on the property connection:
    /// the intent records of MOVE and DELETE.
    async fn record(&self, sql: &'static str, paths: &[&ResourcePath]) -> Result<(), StorageError> {
        let paths: Vec<String> = paths.iter().map(|p| p.as_str().to_owned()).collect();
        run(&self.props, move |conn| {
            conn.prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(&paths))
                .map(drop)
        })
        .await
    }

    /// The rows of `sql`, every column a stored path.
    async fn stored_paths(
        &self,
        sql: &'static str,
    ) -> Result<Vec<Vec<ResourcePath>>, StorageError> {
        let rows: Vec<Vec<String>> = run(&self.reads, move |conn| {
            let mut stmt = conn.prepare_cached(sql)?;
            let columns = stmt.column_count();
            stmt.query_map([], |r| (0..columns).map(|i| r.get(i)).collect())?
                .collect()
        })
        .await?;
        rows.iter()
            .map(|row| row.iter().map(|p| stored_path(p)).collect())
            .collect()
    }

    /// Number of stored properties (diagnostics and tests).
    ///
    /// # Errors
    /// [`StorageError::Database`] if the query fails.
    pub async fn count(&self) -> Result<u64, StorageError> {
        run(&self.reads, |conn| {
            conn.query_row("SELECT count(*) FROM props", [], |r| r.get::<_, i64>(0))
                .optional()
                .map(|n| n.unwrap_or(0) as u64)
        })
        .await
    }
}

fn to_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

const LOCK_COLUMNS: &str = "token, root, scope, depth, owner, timeout, expires, creator";

fn row_lock(row: &rusqlite::Row<'_>) -> rusqlite::Result<Lock> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("invalid {what} in the locks table").into(),
        )
    };
    let root: String = row.get(1)?;
    let scope: String = row.get(2)?;
    let depth: String = row.get(3)?;
    Ok(Lock {
        token: row.get(0)?,
        root: ResourcePath::from_decoded(&root).map_err(|_| bad(1, "root"))?,
        scope: LockScope::from_name(&scope).ok_or_else(|| bad(2, "scope"))?,
        depth: match depth.as_str() {
            "0" => Depth::Zero,
            "infinity" => Depth::Infinity,
            _ => return Err(bad(3, "depth")),
        },
        owner: row.get(4)?,
        timeout: row.get::<_, Option<i64>>(5)?.map(|t| t.max(0) as u64),
        expires: row.get::<_, Option<i64>>(6)?.map(from_millis),
        creator: row.get(7)?,
    })
}

#[async_trait]
impl LockStore for SqliteStore {
    async fn insert(&self, lock: &Lock) -> Result<(), StorageError> {
        self.locks.submit(LockJob::Insert(lock.clone()))
    }

    async fn on_path(&self, path: &ResourcePath) -> Result<Vec<Lock>, StorageError> {
        let mut roots = vec![path.as_str().to_owned()];
        let mut p = path.clone();
        while let Some(parent) = p.parent() {
            roots.push(parent.as_str().to_owned());
            p = parent;
        }
        self.locks
            .ask(move |conn| {
                let placeholders = vec!["?"; roots.len()].join(",");
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {LOCK_COLUMNS} FROM locks WHERE root IN ({placeholders})"
                ))?;
                let rows = stmt.query_map(rusqlite::params_from_iter(roots.iter()), row_lock)?;
                rows.collect()
            })
            .await
    }

    async fn below(&self, path: &ResourcePath) -> Result<Vec<Lock>, StorageError> {
        let (lo, hi) = below_range(path);
        self.locks
            .ask(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {LOCK_COLUMNS} FROM locks WHERE root > ?1 AND root < ?2"
                ))?;
                let rows = stmt.query_map(params![lo, hi], row_lock)?;
                rows.collect()
            })
            .await
    }

    async fn get(&self, token: &str) -> Result<Option<Lock>, StorageError> {
        let token = token.to_owned();
        self.locks
            .ask(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {LOCK_COLUMNS} FROM locks WHERE token = ?1"
                ))?
                .query_row([token], row_lock)
                .optional()
            })
            .await
    }

    async fn refresh(
        &self,
        token: &str,
        timeout: Option<u64>,
        expires: Option<SystemTime>,
    ) -> Result<(), StorageError> {
        self.locks
            .submit(LockJob::Refresh(token.to_owned(), timeout, expires))
    }

    async fn remove(&self, token: &str) -> Result<(), StorageError> {
        self.locks.submit(LockJob::Remove(token.to_owned()))
    }

    async fn remove_tree(&self, path: &ResourcePath) -> Result<(), StorageError> {
        self.locks.submit(LockJob::RemoveTree(path.clone()))
    }

    async fn remove_expired(&self, now: SystemTime) -> Result<(), StorageError> {
        self.locks.submit(LockJob::RemoveExpired(now))
    }

    fn is_exclusive(&self) -> bool {
        // The database is opened by this process only.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(token: &str) -> Lock {
        Lock {
            token: token.to_owned(),
            root: ResourcePath::root(),
            scope: LockScope::Exclusive,
            depth: Depth::Zero,
            owner: None,
            timeout: None,
            expires: None,
            creator: None,
        }
    }

    fn kinds(batch: &[LockJob]) -> Vec<String> {
        batch
            .iter()
            .map(|j| match j {
                LockJob::Insert(l) => format!("+{}", l.token),
                LockJob::Remove(t) => format!("-{t}"),
                LockJob::Refresh(t, ..) => format!("~{t}"),
                LockJob::RemoveTree(_) => "tree".to_owned(),
                LockJob::RemoveExpired(_) => "expired".to_owned(),
                LockJob::Ask(_) => "?".to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_lock_taken_and_released_in_one_batch_is_not_written() {
        let batch = vec![
            LockJob::Insert(lock("a")),
            LockJob::Refresh("a".into(), None, None),
            LockJob::Insert(lock("b")),
            LockJob::Remove("a".into()),
            LockJob::Remove("c".into()),
        ];
        assert_eq!(kinds(&cancel_pairs(batch)), ["+b", "-c"]);
        // A lookup between them must see the lock: both stay.
        let batch = vec![
            LockJob::Insert(lock("a")),
            LockJob::Ask(Box::new(|_| {})),
            LockJob::Remove("a".into()),
        ];
        assert_eq!(kinds(&cancel_pairs(batch)), ["+a", "?", "-a"]);
    }

    #[test]
    fn only_fresh_locks_at_the_end_of_a_batch_are_held_back() {
        let none = HashSet::new();
        let (write, held) = hold_back(
            vec![
                LockJob::Insert(lock("a")),
                LockJob::Remove("b".into()),
                LockJob::Insert(lock("c")),
                LockJob::Insert(lock("d")),
            ],
            &none,
        );
        assert_eq!(kinds(&write), ["+a", "-b"]);
        assert_eq!(
            held.iter().map(|l| l.token.as_str()).collect::<Vec<_>>(),
            ["c", "d"]
        );
        // Held back once is enough: the next batch writes them even if they end it again.
        let aged: HashSet<String> = ["c".to_owned()].into();
        let (write, held) = hold_back(
            vec![LockJob::Insert(lock("c")), LockJob::Insert(lock("e"))],
            &aged,
        );
        assert_eq!(kinds(&write), ["+c"]);
        assert_eq!(
            held.iter().map(|l| l.token.as_str()).collect::<Vec<_>>(),
            ["e"]
        );
        // Anything after an insert (a lookup, a removal) keeps it in this batch.
        let (write, held) = hold_back(
            vec![LockJob::Insert(lock("f")), LockJob::Ask(Box::new(|_| {}))],
            &none,
        );
        assert_eq!(kinds(&write), ["+f", "?"]);
        assert!(held.is_empty());
    }

    #[tokio::test]
    async fn a_held_back_lock_is_written_a_moment_later_and_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("locks.db");
        let store = SqliteStore::open(&file).unwrap();
        store.insert(&lock("late")).await.unwrap();
        // No other change follows, so the lock is written once the thread has waited.
        tokio::time::sleep(LOCK_BATCH_WINDOW * 10).await;
        let count = |file: &std::path::Path| -> i64 {
            let c = Connection::open(file).unwrap();
            c.query_row("SELECT count(*) FROM locks", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&file), 1);
        store.insert(&lock("last")).await.unwrap();
        drop(store);
        assert_eq!(count(&file), 2);
    }

    #[test]
    fn one_process_at_a_time_writes_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.db");
        let first = SqliteStore::open(&file).unwrap();
        let in_use = |e: StorageError| {
            let why = std::error::Error::source(&e).map(ToString::to_string);
            assert!(
                why.as_ref().is_some_and(|w| w.contains("in use")),
                "{why:?}"
            );
        };
        in_use(SqliteStore::open(&file).unwrap_err());
        in_use(SqliteStore::open_read_only(&file).unwrap_err());
        drop(first);
        let readers = (
            SqliteStore::open_read_only(&file).unwrap(),
            SqliteStore::open_read_only(&file).unwrap(),
        );
        assert!(SqliteStore::open(&file).is_err());
        drop(readers);
        SqliteStore::open(&file).unwrap();
    }

    /// Upgrades once added the lock creators' column in a step of their own: a crash right
    /// after it left a version 1 database that has it.
    #[test]
    fn a_version_1_database_upgraded_half_way_opens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("half.db");
        {
            let old = Connection::open(&file).unwrap();
            old.execute_batch(
                "CREATE TABLE locks (token TEXT PRIMARY KEY, root TEXT NOT NULL,
                     scope TEXT NOT NULL, depth TEXT NOT NULL, owner TEXT, timeout INTEGER,
                     expires INTEGER, creator TEXT);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        drop(SqliteStore::open(&file).unwrap());
        let conn = Connection::open(&file).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn an_early_version_2_database_gets_numbered_moves() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.db");
        {
            let old = Connection::open(&file).unwrap();
            old.execute_batch(
                "CREATE TABLE moves (src TEXT NOT NULL, dst TEXT NOT NULL,
                     PRIMARY KEY (src, dst)) WITHOUT ROWID;
                 INSERT INTO moves VALUES ('/a', '/b');
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&file).unwrap();
        let (a, b, c) = (
            ResourcePath::parse("/a").unwrap(),
            ResourcePath::parse("/b").unwrap(),
            ResourcePath::parse("/c").unwrap(),
        );
        store.begin_move(&b, &c).await.unwrap();
        assert_eq!(
            store.unfinished_moves().await.unwrap(),
            [(a, b.clone()), (b, c)]
        );
        drop(store);
        let conn = Connection::open(&file).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn a_store_without_properties_skips_sqlite_and_never_hides_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.db");
        let (root, a) = (ResourcePath::root(), ResourcePath::parse("/d/a").unwrap());
        let name = PropName::new("urn:t", "p");
        let value = PropValue {
            xml: "v".into(),
            lang: None,
        };
        let store = SqliteStore::open(&file).unwrap();
        store
            .apply(&a, &[PropOp::Remove(name.clone())])
            .await
            .unwrap();
        assert!(!store.holders.any(), "a removal adds no row");
        assert!(!store.has_any_tree(&[&root]).await.unwrap());
        store
            .apply(&a, &[PropOp::Set(name.clone(), value.clone())])
            .await
            .unwrap();
        assert!(store.has_any_tree(&[&root]).await.unwrap());
        assert_eq!(
            store.get_all(&a).await.unwrap(),
            [(name.clone(), value.clone())]
        );
        drop(store);

        // Rows already on disk are seen by a store opened afterwards.
        let store = SqliteStore::open(&file).unwrap();
        assert!(store.holders.may_hold("/d/a"));
        let dir_d = ResourcePath::parse("/d").unwrap();
        assert_eq!(store.get_members(&dir_d).await.unwrap().len(), 1);
        let b = ResourcePath::parse("/e").unwrap();
        store.copy_tree(&dir_d, &b).await.unwrap();
        assert_eq!(store.paths().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_table_with_more_paths_than_notes_is_asked_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.db");
        drop(SqliteStore::open(&file).unwrap());
        let conn = Connection::open(&file).unwrap();
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 70000)
             INSERT INTO props (path, parent, ns, name, value, lang)
             SELECT '/f' || i, '/', 'urn:t', 'p', 'v', NULL FROM n;",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&file).unwrap();
        assert!(store.holders.everywhere());
        let last = ResourcePath::parse("/f70000").unwrap();
        assert!(store.has_any_tree(&[&last]).await.unwrap());
        assert_eq!(store.get_all(&last).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn rows_copied_or_moved_into_a_tree_are_found_there() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("p.db")).unwrap();
        let path = |p: &str| ResourcePath::parse(p).unwrap();
        let name = PropName::new("urn:t", "p");
        let value = PropValue {
            xml: "v".into(),
            lang: None,
        };
        store
            .apply(&path("/d/x/a"), &[PropOp::Set(name.clone(), value.clone())])
            .await
            .unwrap();
        let held = vec![(name, value)];
        // Elsewhere the store answers from memory; that answer is right.
        assert!(!store.holders.may_hold("/other"));
        assert!(!store.has_any_tree(&[&path("/other")]).await.unwrap());

        store.copy_tree(&path("/d"), &path("/c/d")).await.unwrap();
        assert_eq!(store.get_all(&path("/c/d/x/a")).await.unwrap(), held);
        assert_eq!(store.get_members(&path("/c/d/x")).await.unwrap().len(), 1);
        assert!(store.has_any_tree(&[&path("/c/d/x")]).await.unwrap());

        store.move_tree(&path("/c"), &path("/m/n")).await.unwrap();
        assert_eq!(store.get_all(&path("/m/n/d/x/a")).await.unwrap(), held);
        assert!(store.get_all(&path("/c/d/x/a")).await.unwrap().is_empty());
        PropertyStore::remove_tree(&store, &path("/m"))
            .await
            .unwrap();
        assert!(!store.has_any_tree(&[&path("/m")]).await.unwrap());
        assert_eq!(store.get_all(&path("/d/x/a")).await.unwrap(), held);
    }

    #[tokio::test]
    async fn the_reads_of_every_request_are_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("p.db")).unwrap();
        let name = PropName::new("urn:t", "p");
        for p in ["/a", "/b", "/c/d"] {
            let path = ResourcePath::parse(p).unwrap();
            let value = PropValue {
                xml: "v".into(),
                lang: None,
            };
            store
                .apply(&path, &[PropOp::Set(name.clone(), value)])
                .await
                .unwrap();
        }
        for p in ["/a", "/b", "/c/d", "/e"] {
            let path = ResourcePath::parse(p).unwrap();
            store.get_all(&path).await.unwrap();
            store.get_members(&path).await.unwrap();
            store.has_any_tree(&[&path]).await.unwrap();
            store.has_any_tree(&[&path, &path]).await.unwrap();
        }
        let conn = store.reads.lock().unwrap();
        for sql in [GET_ALL, GET_MEMBERS, HAS_ANY_TREE, HAS_ANY_TREES] {
            let stmt = conn.prepare_cached(sql).unwrap();
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }
}
