//! `davit serve` settings: flags, a TOML file (`--config`), and the defaults, merged in that
//! order of precedence. Every flag has a key of the same name in the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use davit_proto::{BasePath, ResourcePath};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    /// Content in the folder, dead properties in SQLite.
    Fs,
    /// Everything in memory, gone on exit (tests, trials).
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fsync {
    /// Flush every write to disk before answering.
    Always,
    /// Let the OS flush.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AccessArg {
    None,
    Read,
    Write,
}

/// Flags of `davit serve`. Each also reads from the `--config` file under the same name
/// (with dashes); a flag given on the command line wins.
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ServeArgs {
    /// The folder to serve (created if missing) [default: .]
    pub(crate) dir: Option<PathBuf>,
    /// A TOML file with any of these settings, and per-user access rules.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080]
    #[arg(long, env = "DAVIT_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// Where content and metadata live [default: fs]
    #[arg(long, value_enum)]
    pub(crate) backend: Option<Backend>,
    /// SQLite file for dead properties and locks [default: DIR/.davit/davit.sqlite]
    #[arg(long)]
    pub(crate) meta: Option<PathBuf>,
    /// Most entries a Depth: infinity PROPFIND may return; 0 refuses them [default: 10000]
    #[arg(long)]
    pub(crate) propfind_infinity_limit: Option<usize>,
    /// Longest lock timeout granted, in seconds [default: 3600]
    #[arg(long)]
    pub(crate) lock_timeout_max: Option<u64>,
    /// When writes reach the disk: `always` flushes before answering (a write survives a
    /// power loss); `never` leaves it to the OS (writes stay atomic and survive a crash of
    /// Davit, as with Apache or nginx) [default: always]
    #[arg(long, value_enum)]
    pub(crate) fsync: Option<Fsync>,
    /// Milliseconds a small file or a folder listing is served from memory before the
    /// folder is asked again (changes through Davit show at once; 0 turns caching off)
    /// [default: 1000]
    #[arg(long)]
    pub(crate) cache_ttl_ms: Option<u64>,
    /// htpasswd file of users (argon2 from `davit passwd`, bcrypt, $5$/$6$, apr1); with it,
    /// requests need a user and password unless --anonymous allows them.
    #[arg(long)]
    pub(crate) htpasswd: Option<PathBuf>,
    /// htdigest file of users (`davit passwd --digest`, Apache's htdigest) for the realm:
    /// they log in with Digest, which Windows takes over plain HTTP, or Basic.
    #[arg(long)]
    pub(crate) htdigest: Option<PathBuf>,
    /// With --htdigest: Digest logins only, no Basic, so no client sends the password in
    /// clear (clients without Digest cannot log in) [default: false]
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(crate) digest_only: Option<bool>,
    /// What requests without a login may do when --htpasswd or --htdigest is set
    /// [default: none]
    #[arg(long, value_enum)]
    pub(crate) anonymous: Option<AccessArg>,
    /// Realm shown in login prompts [default: Davit]
    #[arg(long)]
    pub(crate) realm: Option<String>,
    /// Failed logins allowed per client address per minute [default: 10]
    #[arg(long)]
    pub(crate) max_login_failures: Option<u32>,
    /// PEM certificate chain; with --tls-key, serves HTTPS (HTTP/2 by ALPN).
    #[arg(long)]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    pub(crate) tls_key: Option<PathBuf>,
    /// Largest XML request body, in bytes [default: 1048576]
    #[arg(long)]
    pub(crate) max_xml_body: Option<usize>,
    /// Deepest XML nesting accepted [default: 64]
    #[arg(long)]
    pub(crate) max_xml_depth: Option<usize>,
    /// Largest upload (PUT or one part of a POST), in bytes; larger gets 413 [default: none]
    #[arg(long)]
    pub(crate) max_upload: Option<u64>,
    /// Largest HTTP/1 request head, in bytes [default: 65536]
    #[arg(long)]
    pub(crate) max_header_bytes: Option<usize>,
    /// Seconds a client may take to send a request head [default: 30]
    #[arg(long)]
    pub(crate) header_timeout: Option<u64>,
    /// Seconds an idle keep-alive connection stays open [default: 75]
    #[arg(long)]
    pub(crate) idle_timeout: Option<u64>,
    /// Microseconds the server keeps polling after an answer instead of sleeping, so a
    /// client's next request is served at once (costs up to that much CPU per burst of
    /// requests; 0 sleeps at once) [default: 100]
    #[arg(long)]
    pub(crate) idle_spin_us: Option<u64>,
    /// Connections served at once, fewer if the open-file limit is too low [default: 1024]
    #[arg(long)]
    pub(crate) max_connections: Option<usize>,
    /// Connections from one client address at once; more get 503 [default: 256]
    #[arg(long)]
    pub(crate) max_connections_per_client: Option<usize>,
    /// Locks held at once, in all [default: 100000]
    #[arg(long)]
    pub(crate) max_locks: Option<usize>,
    /// Shared locks on one resource [default: 64]
    #[arg(long)]
    pub(crate) max_locks_per_resource: Option<usize>,
    /// Serve symlinks to files inside the served folder (links leading outside, or to
    /// folders, stay unserved) [default: false]
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(crate) follow_symlinks: Option<bool>,
    /// Log one line per request (target davit::access) [default: false]
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(crate) access_log: Option<bool>,
    /// Address for Prometheus metrics (`GET /metrics`: requests by method and status,
    /// durations, connections, process figures), without login: bind it where only the
    /// monitoring reaches it [default: off]
    #[arg(long)]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Log format on stderr [default: text]
    #[arg(long, value_enum)]
    pub(crate) log_format: Option<LogFormat>,
    /// URL path the folder is served under, e.g. /dav behind a reverse proxy that forwards
    /// /dav/ unchanged: other paths get 404, and every href in an answer starts with it
    /// [default: /]
    #[arg(long)]
    pub(crate) base_path: Option<String>,
    /// Refuse every change with 403 and offer no locking, so clients mount read-only
    /// [default: false]
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(crate) read_only: Option<bool>,
    /// An origin (https://app.example) whose browser applications may call the server
    /// (CORS); repeat for several, `*` for any [default: none]
    #[arg(long)]
    pub(crate) cors_origin: Vec<String>,
    /// Leave members with this name out of listings (PROPFIND, the HTML page); `*` and `?`
    /// are wildcards, and hidden members stay reachable by name. Repeat for several:
    /// `--hide '._*' --hide .DS_Store` keeps Finder's own files from other clients
    /// [default: none]
    #[arg(long)]
    pub(crate) hide: Vec<String>,
    /// A reverse proxy (its address, or its network: 127.0.0.1, 192.0.2.16/30) whose
    /// X-Forwarded-For names the client, for the login-failure limit and the access log;
    /// its connections do not count as one client's. A trusted address can claim to be any
    /// client: name only the proxies. Repeat for several [default: none]
    #[arg(long)]
    pub(crate) trusted_proxy: Vec<String>,
    /// Per-user rules, from the config file only.
    #[arg(skip)]
    pub(crate) users: BTreeMap<String, UserSection>,
}

/// `[users.NAME]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct UserSection {
    /// Folder the user is confined to [default: /].
    pub(crate) root: Option<String>,
    /// Access inside the root [default: write].
    pub(crate) access: Option<AccessArg>,
    /// Finer rules below the root.
    pub(crate) rules: Vec<RuleSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSection {
    pub(crate) path: String,
    pub(crate) access: AccessArg,
}

/// Settings with every default applied.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) dir: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) backend: Backend,
    pub(crate) meta: Option<PathBuf>,
    pub(crate) propfind_infinity_limit: usize,
    pub(crate) lock_timeout_max: Duration,
    pub(crate) fsync: Fsync,
    pub(crate) cache_ttl: Duration,
    pub(crate) htpasswd: Option<PathBuf>,
    pub(crate) htdigest: Option<PathBuf>,
    pub(crate) digest_only: bool,
    pub(crate) anonymous: Option<AccessArg>,
    pub(crate) realm: String,
    pub(crate) max_login_failures: u32,
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    pub(crate) max_xml_body: usize,
    pub(crate) max_xml_depth: usize,
    pub(crate) max_upload: Option<u64>,
    pub(crate) max_header_bytes: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) idle_spin: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_client: usize,
    pub(crate) max_locks: usize,
    pub(crate) max_locks_per_resource: usize,
    pub(crate) follow_symlinks: bool,
    pub(crate) access_log: bool,
    pub(crate) metrics_listen: Option<SocketAddr>,
    pub(crate) log_format: LogFormat,
    pub(crate) base_path: BasePath,
    pub(crate) read_only: bool,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) hide: Vec<String>,
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) users: BTreeMap<String, UserSection>,
}

impl ServeArgs {
    /// Flags over the config file over the defaults.
    pub(crate) fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => load(path)?,
            None => ServeArgs::default(),
        };
        macro_rules! pick {
            ($field:ident, $default:expr) => {
                self.$field.or(file.$field).unwrap_or($default)
            };
        }
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!("TLS needs both tls-cert and tls-key"),
        };
        let users = if self.users.is_empty() {
            file.users
        } else {
            self.users
        };
        Ok(Settings {
            dir: pick!(dir, PathBuf::from(".")),
            listen: pick!(listen, SocketAddr::from(([127, 0, 0, 1], 8080))),
            backend: pick!(backend, Backend::Fs),
            meta: self.meta.or(file.meta),
            propfind_infinity_limit: pick!(propfind_infinity_limit, 10_000),
            lock_timeout_max: Duration::from_secs(pick!(lock_timeout_max, 3600)),
            fsync: pick!(fsync, Fsync::Always),
            cache_ttl: Duration::from_millis(pick!(cache_ttl_ms, 1000)),
            htpasswd: self.htpasswd.or(file.htpasswd),
            htdigest: self.htdigest.or(file.htdigest),
            digest_only: pick!(digest_only, false),
            anonymous: self.anonymous.or(file.anonymous),
            realm: pick!(realm, "Davit".to_owned()),
            max_login_failures: pick!(max_login_failures, 10),
            tls,
            max_xml_body: pick!(max_xml_body, 1024 * 1024),
            max_xml_depth: pick!(max_xml_depth, 64),
            max_upload: self.max_upload.or(file.max_upload),
            max_header_bytes: pick!(max_header_bytes, 64 * 1024),
            header_timeout: Duration::from_secs(pick!(header_timeout, 30)),
            idle_timeout: Duration::from_secs(pick!(idle_timeout, 75)),
            idle_spin: Duration::from_micros(pick!(idle_spin_us, 100)),
            max_connections: pick!(max_connections, 1024),
            max_connections_per_client: pick!(max_connections_per_client, 256),
            max_locks: pick!(max_locks, 100_000),
            max_locks_per_resource: pick!(max_locks_per_resource, 64),
            follow_symlinks: pick!(follow_symlinks, false),
            access_log: pick!(access_log, false),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            log_format: pick!(log_format, LogFormat::Text),
            base_path: match self.base_path.or(file.base_path) {
                Some(text) => base_path(&text)?,
                None => BasePath::default(),
            },
            read_only: pick!(read_only, false),
            cors_origins: listed(self.cors_origin, file.cors_origin),
            hide: listed(self.hide, file.hide),
            trusted_proxies: listed(self.trusted_proxy, file.trusted_proxy),
            users,
        })
    }
}

/// A repeatable flag: the command line's values, else the config file's.
fn listed(cli: Vec<String>, file: Vec<String>) -> Vec<String> {
    if cli.is_empty() { file } else { cli }
}

/// `/dav`, `/dav/` and `dav` all name the same base.
fn base_path(text: &str) -> anyhow::Result<BasePath> {
    let absolute = if text.starts_with('/') {
        text.to_owned()
    } else {
        format!("/{text}")
    };
    let path = ResourcePath::parse(&absolute)
        .with_context(|| format!("base-path {text:?} is not a URL path"))?;
    Ok(BasePath::new(path))
}

/// Reads a config file; its relative paths are taken from the file's folder.
fn load(path: &Path) -> anyhow::Result<ServeArgs> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut file: ServeArgs =
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for p in [
        &mut file.dir,
        &mut file.meta,
        &mut file.htpasswd,
        &mut file.htdigest,
        &mut file.tls_cert,
        &mut file.tls_key,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("davit.toml");
        std::fs::write(
            &path,
            r#"
dir = "data"
listen = "127.0.0.1:9000"
fsync = "never"
htpasswd = "users"
anonymous = "read"
access-log = true

[users.alice]
root = "/alice"
rules = [{ path = "/alice/archive", access = "read" }]
"#,
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            fsync: Some(Fsync::Always),
            ..ServeArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.dir, dir.path().join("data"));
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.fsync, Fsync::Always);
        assert_eq!(s.htpasswd, Some(dir.path().join("users")));
        assert_eq!(s.anonymous, Some(AccessArg::Read));
        assert!(s.access_log);
        assert_eq!(s.max_connections, 1024);
        assert_eq!(s.users["alice"].rules.len(), 1);
    }

    #[test]
    fn base_path_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/dav", Some("/dav")),
            ("/dav/", Some("/dav")),
            ("dav", Some("/dav")),
            ("/", Some("")),
            ("/a/b", Some("/a/b")),
            ("/my files", Some("/my%20files")),
            ("/my%20files", Some("/my%20files")),
            ("/a/../b", None),
            ("/%2F", None),
        ];
        for (text, prefix) in cases {
            let got = base_path(text).ok();
            assert_eq!(got.as_ref().map(BasePath::prefix), *prefix, "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("davit.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:1\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let err = format!("{:#}", args.resolve().unwrap_err());
        assert!(err.contains("listne"), "{err}");
    }
}
