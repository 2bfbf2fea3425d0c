//! Server settings.

use std::sync::Arc;
use std::time::Duration;

use davit_proto::{BasePath, XmlLimits};

use crate::auth::Auth;
use crate::cors::CorsOrigins;
use crate::hidden::HiddenNames;
use crate::lock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::proxy::TrustedProxies;

/// Settings of a [`crate::DavServer`]; build with [`ServerConfig::builder`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest XML request body accepted (PROPFIND, PROPPATCH, LOCK); larger gets 413.
    pub max_xml_body: usize,
    /// Nesting and element-count bounds on XML bodies.
    pub xml_limits: XmlLimits,
    /// Most entries a `Depth: infinity` PROPFIND may return; 0 refuses such requests. Above
    /// the bound the request gets 403 with `propfind-finite-depth`.
    pub propfind_infinity_limit: usize,
    /// Longest lock timeout granted; longer and `Infinite` requests get this.
    pub lock_timeout_max: Duration,
    /// Where lock expiry reads the time.
    pub clock: Arc<dyn Clock>,
    /// Longest a client may take to send a request head (slowloris); then the connection
    /// is closed.
    pub header_timeout: Duration,
    /// Longest a connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// How long the server keeps polling instead of sleeping after an answer, so a
    /// client's next request is picked up at once; zero sleeps right away.
    pub idle_spin: Duration,
    /// Largest request head (request line and headers) of HTTP/1; larger gets 431.
    pub max_header_bytes: usize,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections from one client address at once; more get 503 and are closed.
    pub max_connections_per_client: usize,
    /// Largest PUT or uploaded part; larger gets 413 and nothing is stored.
    pub max_upload_bytes: Option<u64>,
    /// Locks held at once, in all.
    pub max_locks: usize,
    /// Locks (shared ones) on one resource.
    pub max_locks_per_resource: usize,
    /// Who may do what; `None` lets everyone do everything.
    pub auth: Option<Arc<Auth>>,
    /// One `info` event per request on target `davit::access`.
    pub access_log: bool,
    /// TLS settings; `None` serves plain HTTP (HTTP/1.1, and HTTP/2 by prior knowledge).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The URL path the tree is served under: requests outside it get 404, and every href
    /// in an answer starts with it (for a reverse proxy that forwards `/dav/…` unchanged).
    pub base_path: BasePath,
    /// Refuse every change (403), and offer no locking: clients mount read-only.
    pub read_only: bool,
    /// Origins whose browser applications may call the server (CORS); none by default.
    pub cors: CorsOrigins,
    /// Counters for monitoring (see [`crate::metrics`]); `None` counts nothing.
    pub metrics: Option<Arc<Metrics>>,
    /// Member names left out of listings (they stay reachable by name).
    pub hidden: HiddenNames,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the login limit and
    /// the access log); their connections are not counted as one client's.
    pub trusted_proxies: TrustedProxies,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_xml_body: 1024 * 1024,
            xml_limits: XmlLimits::default(),
            propfind_infinity_limit: 10_000,
            lock_timeout_max: Duration::from_secs(3600),
            clock: Arc::new(SystemClock),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            idle_spin: Duration::from_micros(100),
            max_header_bytes: 64 * 1024,
            max_connections: 1024,
            max_connections_per_client: 256,
            max_upload_bytes: None,
            max_locks: 100_000,
            max_locks_per_resource: 64,
            auth: None,
            access_log: false,
            tls: None,
            base_path: BasePath::default(),
            read_only: false,
            cors: CorsOrigins::default(),
            metrics: None,
            hidden: HiddenNames::default(),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

impl ServerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ServerConfigBuilder {
        ServerConfigBuilder(ServerConfig::default())
    }
}

/// Builder for [`ServerConfig`].
#[derive(Debug, Clone)]
pub struct ServerConfigBuilder(ServerConfig);

impl ServerConfigBuilder {
    /// See [`ServerConfig::max_xml_body`].
    pub fn max_xml_body(mut self, bytes: usize) -> Self {
        self.0.max_xml_body = bytes;
        self
    }

    /// See [`ServerConfig::xml_limits`].
    pub fn xml_limits(mut self, limits: XmlLimits) -> Self {
        self.0.xml_limits = limits;
        self
    }

    /// See [`ServerConfig::propfind_infinity_limit`].
    pub fn propfind_infinity_limit(mut self, entries: usize) -> Self {
        self.0.propfind_infinity_limit = entries;
        self
    }

    /// See [`ServerConfig::lock_timeout_max`].
    pub fn lock_timeout_max(mut self, max: Duration) -> Self {
        self.0.lock_timeout_max = max;
        self
    }

    /// See [`ServerConfig::clock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.0.clock = clock;
        self
    }

    /// See [`ServerConfig::header_timeout`].
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.0.header_timeout = timeout;
        self
    }

    /// See [`ServerConfig::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.0.idle_timeout = timeout;
        self
    }

    /// See [`ServerConfig::idle_spin`].
    pub fn idle_spin(mut self, span: Duration) -> Self {
        self.0.idle_spin = span;
        self
    }

    /// See [`ServerConfig::max_header_bytes`].
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.0.max_header_bytes = bytes;
        self
    }

    /// See [`ServerConfig::max_connections`].
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.0.max_connections = connections.max(1);
        self
    }

    /// See [`ServerConfig::max_connections_per_client`].
    pub fn max_connections_per_client(mut self, connections: usize) -> Self {
        self.0.max_connections_per_client = connections.max(1);
        self
    }

    /// See [`ServerConfig::max_upload_bytes`].
    pub fn max_upload_bytes(mut self, bytes: Option<u64>) -> Self {
        self.0.max_upload_bytes = bytes;
        self
    }

    /// See [`ServerConfig::max_locks`] and [`ServerConfig::max_locks_per_resource`].
    pub fn max_locks(mut self, total: usize, per_resource: usize) -> Self {
        self.0.max_locks = total;
        self.0.max_locks_per_resource = per_resource.max(1);
        self
    }

    /// See [`ServerConfig::auth`].
    pub fn auth(mut self, auth: Option<Arc<Auth>>) -> Self {
        self.0.auth = auth;
        self
    }

    /// See [`ServerConfig::access_log`].
    pub fn access_log(mut self, on: bool) -> Self {
        self.0.access_log = on;
        self
    }

    /// See [`ServerConfig::base_path`].
    pub fn base_path(mut self, base: BasePath) -> Self {
        self.0.base_path = base;
        self
    }

    /// See [`ServerConfig::read_only`].
    pub fn read_only(mut self, on: bool) -> Self {
        self.0.read_only = on;
        self
    }

    /// See [`ServerConfig::cors`].
    pub fn cors_origins(mut self, origins: CorsOrigins) -> Self {
        self.0.cors = origins;
        self
    }

    /// See [`ServerConfig::metrics`].
    pub fn metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.0.metrics = metrics;
        self
    }

    /// See [`ServerConfig::hidden`].
    pub fn hidden(mut self, hidden: HiddenNames) -> Self {
        self.0.hidden = hidden;
        self
    }

    /// See [`ServerConfig::trusted_proxies`].
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.0.trusted_proxies = proxies;
        self
    }

    /// See [`ServerConfig::tls`].
    pub fn tls(mut self, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        self.0.tls = tls;
        self
    }

    /// The finished configuration.
    pub fn build(self) -> ServerConfig {
        self.0
    }
}
