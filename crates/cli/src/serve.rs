//! `davit serve`: the backends, authentication, TLS, the listener, and the signals that stop
//! it. Flags and the config file are in [`crate::settings`].

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use anyhow::{Context, bail};
use davit_proto::{ResourcePath, XmlLimits};
use davit_server::auth::{
    Access, AccessPolicy, Auth, Htdigest, Htpasswd, UserRules, realm_fits_digest,
};
use davit_server::metrics::Metrics;
use davit_server::{Backends, CorsOrigins, DavServer, HiddenNames, ServerConfig, TrustedProxies};
use davit_store::SyncPolicy;
use davit_store::fs::FsStorage;
use davit_store::memory::{MemoryLockStore, MemoryPropertyStore, MemoryStorage};
use davit_store::sqlite::SqliteStore;
use tokio::net::{TcpListener, TcpSocket};

pub(crate) use crate::settings::ServeArgs;
use crate::settings::{AccessArg, Backend, Fsync, LogFormat, Settings};
use crate::tls::Identity;

/// Name of the folder inside the served folder that holds Davit's own data; never served.
const META_DIR: &str = ".davit";

impl Fsync {
    fn policy(self) -> SyncPolicy {
        match self {
            Fsync::Always => SyncPolicy::Always,
            Fsync::Never => SyncPolicy::Never,
        }
    }
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    crate::init_tracing(settings.log_format == LogFormat::Json);
    crate::malloc::keep_freed_memory();
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
        let s = settings;
        // Checked before the folder is created or opened: a typo leaves nothing behind.
        let cors = CorsOrigins::new(&s.cors_origins)?;
        let hidden = HiddenNames::new(&s.hide)?;
        let proxies = TrustedProxies::new(&s.trusted_proxies)?;
        let metrics = match s.metrics_listen {
            Some(addr) => {
                let listener =
                    listen(addr).with_context(|| format!("binding {addr} for metrics"))?;
                if !addr.ip().is_loopback() {
                    tracing::warn!(
                        %addr,
                        "metrics are served without a login: anyone who can reach this \
                         address sees the server's traffic and version"
                    );
                }
                Some((Metrics::new(), listener))
            }
            None => None,
        };
        let backends = backends(&s)?;
        let auth = auth(&s)?;
        let identity = match &s.tls {
            Some((cert, key)) => Some(Identity::load(cert, key)?),
            None => None,
        };
        // Before the `listening on` line, like the stop signals: a SIGHUP sent once the
        // server is up must not end it.
        reload_on_hangup(identity.clone())?;
        let tls = match &identity {
            Some(identity) => Some(Arc::new(identity.server_config()?)),
            None => None,
        };
        if auth.is_none() && !s.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %s.listen,
                "serving without authentication on a non-loopback address: anyone who can \
                 reach it can read and write everything (see --htpasswd)"
            );
        }
        if auth.is_some() && tls.is_none() && !s.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %s.listen,
                "passwords travel in clear text without TLS (see --tls-cert, or put Davit \
                 behind a TLS proxy)"
            );
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let config = ServerConfig::builder()
            .propfind_infinity_limit(s.propfind_infinity_limit)
            .lock_timeout_max(s.lock_timeout_max)
            .max_xml_body(s.max_xml_body)
            .xml_limits(XmlLimits {
                max_depth: s.max_xml_depth,
                ..XmlLimits::default()
            })
            .max_upload_bytes(s.max_upload)
            .max_header_bytes(s.max_header_bytes)
            .header_timeout(s.header_timeout)
            .idle_timeout(s.idle_timeout)
            .idle_spin(s.idle_spin)
            .max_connections(crate::open_files::fit(s.max_connections))
            .max_connections_per_client(s.max_connections_per_client)
            .max_locks(s.max_locks, s.max_locks_per_resource)
            .access_log(s.access_log)
            .auth(auth)
            .tls(tls)
            .base_path(s.base_path.clone())
            .read_only(s.read_only)
            .cors_origins(cors)
            .hidden(hidden)
            .trusted_proxies(proxies)
            .metrics(metrics.as_ref().map(|(m, _)| Arc::clone(m)))
            .build();
        let server = Arc::new(DavServer::new(backends, config));
        // A read-only server writes nothing, repairs included: the next writable start does.
        if !s.read_only {
            server
                .recover()
                .await
                .context("repairing properties after an interrupted run")?;
        }
        let stop = shutdown_signal()?;
        let listener = listen(s.listen).with_context(|| format!("binding {}", s.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "listening on {scheme}://{addr}{}/",
                s.base_path.prefix()
            )?;
            if let Some((metrics, listener)) = metrics {
                let at = listener
                    .local_addr()
                    .context("reading the metrics address")?;
                writeln!(out, "metrics on http://{at}/metrics")?;
                tokio::spawn(davit_server::metrics::serve(listener, metrics));
            }
            out.flush()?;
        }
        tracing::info!(%addr, dir = %s.dir.display(), backend = ?s.backend, read_only = s.read_only, "serving");
        davit_server::serve(listener, server, stop).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Connections the kernel accepts and queues while all `--max-connections` are taken.
/// Beyond the queue a new client's handshake is dropped, and it tries again only after a
/// second or more. Rust's standard library queues 128; the kernel caps this at
/// `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: u32 = 1024;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As the standard library does: a restart binds while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Authentication and rules, when an htpasswd or htdigest file is given.
fn auth(s: &Settings) -> anyhow::Result<Option<Arc<Auth>>> {
    if s.digest_only && (s.htdigest.is_none() || s.htpasswd.is_some()) {
        bail!("--digest-only takes its users from --htdigest, and htpasswd users need Basic");
    }
    if s.htpasswd.is_none() && s.htdigest.is_none() {
        if !s.users.is_empty() || s.anonymous.is_some() {
            bail!("users and anonymous access need a file of users (--htpasswd or --htdigest)");
        }
        return Ok(None);
    }
    let users = match &s.htpasswd {
        Some(file) => {
            let users = Htpasswd::load(file)?;
            if users.is_empty() {
                tracing::warn!(file = %file.display(), "the htpasswd file has no users");
            }
            users
        }
        None => Htpasswd::default(),
    };
    let users_in = |user: &str| users.contains(user);
    let digest_users = match &s.htdigest {
        Some(file) => {
            if !realm_fits_digest(&s.realm) {
                bail!(
                    "realm {:?}: with --htdigest the realm must be printable ASCII without '\"', \
                     '\\' or ':' (clients hash it as the challenge shows it)",
                    s.realm
                );
            }
            let users = Htdigest::load(file, &s.realm)?;
            let mut both: Vec<&str> = users.users().filter(|u| users_in(u)).collect();
            if !both.is_empty() {
                both.sort_unstable();
                tracing::warn!(
                    users = ?both,
                    "users in both the htpasswd and the htdigest file have a password in each: \
                     Basic logins check the htpasswd one, Digest logins the htdigest one"
                );
            }
            if users.other_realms() > 0 {
                tracing::warn!(
                    file = %file.display(),
                    skipped = users.other_realms(),
                    realm = %s.realm,
                    "htdigest lines of other realms cannot log in here (see --realm)"
                );
            }
            if users.is_empty() {
                tracing::warn!(file = %file.display(), realm = %s.realm, "the htdigest file has no users for the realm");
            }
            Some(users)
        }
        None => None,
    };
    let mut policy = AccessPolicy::new(access(s.anonymous.unwrap_or(AccessArg::None)));
    for (name, section) in &s.users {
        warn_if_under_base(s, name, section);
        let in_digest = digest_users
            .as_ref()
            .is_some_and(|d| d.users().any(|u| u == name));
        if !users_in(name) && !in_digest {
            // Likely a misspelling (`Alice` for `alice`): the real user would get the
            // default, write access everywhere.
            tracing::warn!(
                user = %name,
                "a [users.{name}] section names no user of the password files: its rules apply to nobody"
            );
        }
        let mut rules = UserRules::new(
            section.root.as_deref().unwrap_or("/"),
            access(section.access.unwrap_or(AccessArg::Write)),
        )
        .with_context(|| format!("user {name}"))?;
        for rule in &section.rules {
            rules = rules
                .with_rule(&rule.path, access(rule.access))
                .with_context(|| format!("user {name}"))?;
        }
        policy = policy.with_user(name.clone(), rules);
    }
    let mut auth = Auth::new(users, policy)?
        .realm(s.realm.clone())
        .failure_limit(s.max_login_failures.max(1), Duration::from_secs(60));
    if let Some(users) = digest_users {
        auth = auth.digest_users(users);
    }
    if s.digest_only {
        auth = auth.digest_only();
    }
    Ok(Some(Arc::new(auth)))
}

/// Rule paths and roots name the served tree, without the base path: `/dav/private` under
/// `--base-path /dav` is the URL `/dav/dav/private`, most likely not what was meant.
fn warn_if_under_base(s: &Settings, user: &str, section: &crate::settings::UserSection) {
    let base = s.base_path.path();
    if base.is_root() {
        return;
    }
    let paths = section
        .root
        .iter()
        .chain(section.rules.iter().map(|r| &r.path));
    for path in paths {
        if ResourcePath::parse(path).is_ok_and(|p| p.starts_with(base)) {
            tracing::warn!(
                user,
                path = %path,
                base = %base,
                "rule paths are paths of the served tree, without the base path: this one \
                 names the URL {}{path}",
                s.base_path.prefix()
            );
        }
    }
}

fn access(a: AccessArg) -> Access {
    match a {
        AccessArg::None => Access::None,
        AccessArg::Read => Access::Read,
        AccessArg::Write => Access::Write,
    }
}

fn backends(args: &Settings) -> anyhow::Result<Backends> {
    if args.backend == Backend::Memory {
        return Ok(Backends {
            storage: Arc::new(MemoryStorage::new()),
            props: Arc::new(MemoryPropertyStore::new()),
            locks: Arc::new(MemoryLockStore::new()),
        });
    }
    // Read-only, nothing is created or written, so read-only media serve too.
    if !args.read_only {
        std::fs::create_dir_all(&args.dir)
            .with_context(|| format!("creating {}", args.dir.display()))?;
    }
    let root = args.dir.canonicalize().with_context(|| {
        let note = if args.read_only {
            " (a read-only server does not create it)"
        } else {
            ""
        };
        format!("resolving {}{note}", args.dir.display())
    })?;
    let meta = match &args.meta {
        Some(p) => p.clone(),
        None => root.join(META_DIR).join("davit.sqlite"),
    };
    if let (false, Some(parent)) = (args.read_only, meta.parent()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let meta = meta.canonicalize().unwrap_or(meta);
    let mut storage = FsStorage::open(&root)
        .with_context(|| format!("opening {}", root.display()))?
        .sync_policy(args.fsync.policy())
        .cache_ttl(args.cache_ttl)
        .follow_symlinks(args.follow_symlinks);
    for hidden in hidden_names(&root, &meta)? {
        storage = storage.hide(&hidden);
    }
    let storage = Arc::new(storage);
    let opening = || format!("opening the property database {}", meta.display());
    if !args.read_only {
        let store =
            Arc::new(SqliteStore::open_with(&meta, args.fsync.policy()).with_context(opening)?);
        return Ok(Backends {
            storage,
            props: Arc::clone(&store) as _,
            locks: store,
        });
    }
    // Dead properties come from the database when there is one; locks are never taken.
    let props: Arc<dyn davit_store::PropertyStore> = if meta.exists() {
        Arc::new(SqliteStore::open_read_only(&meta).with_context(opening)?)
    } else {
        Arc::new(MemoryPropertyStore::new())
    };
    Ok(Backends {
        storage,
        props,
        locks: Arc::new(MemoryLockStore::new()),
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

/// On SIGHUP, reads the TLS certificate and key again; without TLS there is nothing to
/// read, and the signal is only logged (it does not stop the server, as it would by
/// default).
fn reload_on_hangup(identity: Option<Arc<Identity>>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match &identity {
                    Some(identity) => identity.reload_and_log(),
                    None => tracing::info!("SIGHUP: nothing to reload without TLS"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = identity;
    Ok(())
}

/// Ctrl-C or SIGTERM. Registered when called, not when first polled: a signal that comes
/// right after the address is printed still stops the server gracefully.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let (mut term, mut interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing open requests");
    })
}
