//! `davit serve`: flags and config, the backends, the listener, and the signals that stop it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::ValueEnum;
use davit_server::{Backends, DavServer, ServerConfig};
use davit_store::SyncPolicy;
use davit_store::fs::FsStorage;
use davit_store::memory::{MemoryLockStore, MemoryPropertyStore, MemoryStorage};
use davit_store::sqlite::SqliteStore;

/// Name of the folder inside the served folder that holds Davit's own data; never served.
const META_DIR: &str = ".davit";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// Content in the folder, dead properties in SQLite.
    Fs,
    /// Everything in memory, gone on exit (tests, trials).
    Memory,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The folder to serve (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "DAVIT_LISTEN")]
    listen: SocketAddr,
    /// Where content and metadata live.
    #[arg(long, value_enum, default_value_t = Backend::Fs)]
    backend: Backend,
    /// SQLite file for dead properties [default: DIR/.davit/davit.sqlite].
    #[arg(long)]
    meta: Option<PathBuf>,
    /// Most entries a Depth: infinity PROPFIND may return; 0 refuses them.
    #[arg(long, default_value_t = 10_000)]
    propfind_infinity_limit: usize,
    /// Longest lock timeout granted, in seconds; longer and infinite requests get this.
    #[arg(long, default_value_t = 3600)]
    lock_timeout_max: u64,
    /// When writes reach the disk: `always` flushes before answering (a write survives a
    /// power loss); `never` leaves it to the OS (writes stay atomic and survive a crash of
    /// Davit, as with Apache or nginx).
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    fsync: Fsync,
    /// Milliseconds a small file or a folder listing is served from memory before the
    /// folder is asked again (changes through Davit show at once; 0 turns caching off).
    #[arg(long, default_value_t = 1000)]
    cache_ttl_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Fsync {
    /// Flush every write to disk before answering.
    Always,
    /// Let the OS flush.
    Never,
}

impl Fsync {
    fn policy(self) -> SyncPolicy {
        match self {
            Fsync::Always => SyncPolicy::Always,
            Fsync::Never => SyncPolicy::Never,
        }
    }
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    // With one CPU to run on (a container limit, or taskset) the single-threaded scheduler
    // does the same work without the cross-thread bookkeeping of the multi-threaded one.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    runtime.block_on(async move {
        let backends = backends(&args)?;
        let config = ServerConfig::builder()
            .propfind_infinity_limit(args.propfind_infinity_limit)
            .lock_timeout_max(std::time::Duration::from_secs(args.lock_timeout_max))
            .build();
        let server = Arc::new(DavServer::new(backends, config));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{addr}/")?;
            out.flush()?;
        }
        tracing::info!(%addr, dir = %args.dir.display(), backend = ?args.backend, "serving");
        davit_server::serve(listener, server, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn backends(args: &ServeArgs) -> anyhow::Result<Backends> {
    if args.backend == Backend::Memory {
        return Ok(Backends {
            storage: Arc::new(MemoryStorage::new()),
            props: Arc::new(MemoryPropertyStore::new()),
            locks: Arc::new(MemoryLockStore::new()),
        });
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let root = args
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let meta = match &args.meta {
        Some(p) => p.clone(),
        None => root.join(META_DIR).join("davit.sqlite"),
    };
    if let Some(parent) = meta.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let meta = meta
        .canonicalize()
        .or_else(|_| Ok::<_, std::io::Error>(meta.clone()))?;
    let mut storage = FsStorage::open(&root)
        .with_context(|| format!("opening {}", root.display()))?
        .sync_policy(args.fsync.policy())
        .cache_ttl(std::time::Duration::from_millis(args.cache_ttl_ms));
    for hidden in hidden_names(&root, &meta)? {
        storage = storage.hide(&hidden);
    }
    let store = SqliteStore::open_with(&meta, args.fsync.policy())
        .with_context(|| format!("opening the property database {}", meta.display()))?;
    let store = Arc::new(store);
    Ok(Backends {
        storage: Arc::new(storage),
        props: Arc::clone(&store) as _,
        locks: store,
    })
}

/// The names directly under `root` that must not be served for the database `file` to be
/// safe: nobody may read, replace or delete it (or SQLite's `-wal`, `-shm` and `-journal`
/// files beside it) through WebDAV. A database deeper inside hides its whole top folder.
fn hidden_names(root: &Path, file: &Path) -> anyhow::Result<Vec<String>> {
    let parent = file.parent().unwrap_or(file);
    let parent = parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf());
    let Ok(rel) = parent
        .join(file.file_name().unwrap_or_default())
        .strip_prefix(root)
        .map(Path::to_path_buf)
    else {
        return Ok(Vec::new());
    };
    let mut components = rel.components();
    let Some(first) = components.next() else {
        bail!("the metadata file cannot be the served folder itself");
    };
    let first = first.as_os_str().to_string_lossy().into_owned();
    if components.next().is_some() {
        return Ok(vec![first]);
    }
    Ok(["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| format!("{first}{suffix}"))
        .collect())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing open requests");
}
