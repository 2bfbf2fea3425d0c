//! Davit's HTTP server: RFC 4918 semantics over the backends of davit-store.
//!
//! [`serve`] runs the accept loop on a listener the caller bound (so tests use port 0) and
//! drains connections on shutdown. Each request goes through [`DavServer::handle`], which
//! never fails: every error becomes a response through [`DavError::into_response`].
//!
//! # Layout
//! - `config`: [`ServerConfig`].
//! - `protocol`, `h1`, `conn`: which HTTP a connection speaks, Davit's HTTP/1.1 (HTTP/2 is
//!   hyper's), and the watchdog over every socket.
//! - `error`: [`DavError`], a status with an optional `DAV:error` condition.
//! - `request`: the decoded Request-URI, typed headers, bounded bodies.
//! - `precondition`: conditional headers, the `If` header, and the gate every write passes.
//! - [`lock`]: lock policy (coverage, conflicts, expiry) and the clock.
//! - `live_prop`: the table of live properties.
//! - `tree`: walks over collections for DELETE, COPY and MOVE, collecting per-member failures.
//! - `method`: one module per method.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use davit_server::{Backends, DavServer, ServerConfig, serve};
//! use davit_store::memory::{MemoryLockStore, MemoryPropertyStore, MemoryStorage};
//! # async fn run() -> std::io::Result<()> {
//! let backends = Backends {
//!     storage: Arc::new(MemoryStorage::new()),
//!     props: Arc::new(MemoryPropertyStore::new()),
//!     locks: Arc::new(MemoryLockStore::new()),
//! };
//! let server = Arc::new(DavServer::new(backends, ServerConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, server, std::future::pending()).await
//! # }
//! ```
//!
//! RFC 4918 sections covered: §9.1 PROPFIND, §9.2 PROPPATCH, §9.3 MKCOL, §9.4 GET/HEAD,
//! §9.6 DELETE, §9.7 PUT, §9.8 COPY, §9.9 MOVE, §9.10 LOCK, §9.11 UNLOCK, §6-7 locking, §10
//! headers (with the full `If` grammar), §13 multistatus, §15 live properties, §16 conditions.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use davit_store::{LockStore, PropertyStore, Storage};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::either::Either;

mod access_log;
pub mod auth;
pub mod body;
pub mod config;
mod conn;
mod cors;
pub mod error;
mod h1;
mod hidden;
mod html;
mod live_prop;
pub mod lock;
mod method;
pub mod metrics;
mod precondition;
mod protocol;
mod proxy;
mod recover;
mod request;
mod spelling;
mod spin;
mod tree;

pub use body::{DavBody, FileBody};
pub use config::{ServerConfig, ServerConfigBuilder};
pub use cors::{CorsOrigins, InvalidOrigin};
pub use error::DavError;
pub use hidden::{HiddenNames, InvalidPattern};
pub use lock::{Clock, ManualClock, SystemClock};
pub use proxy::{InvalidProxy, TrustedProxies};
pub use recover::Recovery;
pub use request::RequestBody;

use conn::{ClientSlots, Conn, Watchdog};
use lock::LockManager;
use protocol::Protocol;

/// The backends a server works on.
#[derive(Debug, Clone)]
pub struct Backends {
    /// Content.
    pub storage: Arc<dyn Storage>,
    /// Dead properties.
    pub props: Arc<dyn PropertyStore>,
    /// Locks.
    pub locks: Arc<dyn LockStore>,
}

/// A WebDAV server: backends plus configuration. Share it in an `Arc`.
#[derive(Debug)]
pub struct DavServer {
    pub(crate) backends: Backends,
    pub(crate) config: ServerConfig,
    pub(crate) locks: LockManager,
    /// Held by a conditional PUT from its last check to its commit: two PUTs that saw one
    /// ETag would otherwise both pass `If-Match`, and the second replace the first unseen
    /// (the lost update of RFC 9110 §13.1). Unconditional writes do not wait for it.
    pub(crate) conditional_puts: tokio::sync::Mutex<()>,
    /// Changes that run to their end after their client left (see `method::run_to_end`):
    /// shutdown waits for them.
    pub(crate) changes: tokio_util::task::TaskTracker,
    /// Changes in progress at once. Over HTTP/1 each connection has one at most; an HTTP/2
    /// client that resets its streams would otherwise leave any number running.
    pub(crate) change_slots: Arc<tokio::sync::Semaphore>,
}

impl DavServer {
    /// A server over `backends`.
    pub fn new(backends: Backends, config: ServerConfig) -> Self {
        let locks = LockManager::new(
            Arc::clone(&backends.locks),
            Arc::clone(&config.clock),
            config.lock_timeout_max,
        );
        let change_slots = config.max_connections.max(1);
        DavServer {
            backends,
            config,
            locks,
            conditional_puts: tokio::sync::Mutex::new(()),
            changes: tokio_util::task::TaskTracker::new(),
            change_slots: Arc::new(tokio::sync::Semaphore::new(change_slots)),
        }
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        &*self.backends.storage
    }

    pub(crate) fn props(&self) -> &dyn PropertyStore {
        &*self.backends.props
    }

    /// Answers one request from `client`. Never fails: errors become error responses.
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        client: SocketAddr,
    ) -> Response<DavBody> {
        let client = if self.config.trusted_proxies.is_on() {
            self.config.trusted_proxies.client(client, req.headers())
        } else {
            client
        };
        let mut entry = self
            .config
            .access_log
            .then(|| access_log::Entry::new(client, &req));
        let counted = self.config.metrics.as_ref().map(|_| {
            (
                metrics::MethodSlot::of(req.method()),
                std::time::Instant::now(),
            )
        });
        let mut user = None;
        let origin = self.config.cors.allowed(req.headers());
        let resp = match origin {
            Some(origin) if cors::is_preflight(req.method(), req.headers()) => {
                cors::preflight(origin, req.headers(), self.config.read_only)
            }
            _ => {
                let mut resp = match method::dispatch(self, req, client.ip(), &mut user).await {
                    Ok(resp) => resp,
                    Err(err) => err.into_response(),
                };
                match origin {
                    Some(origin) => cors::mark(&mut resp, origin),
                    // A cache must not hand this answer, made without CORS headers, to an
                    // allowed origin, nor the other way round.
                    None if self.config.cors.is_on() => {
                        resp.headers_mut()
                            .append(http::header::VARY, http::HeaderValue::from_static("Origin"));
                    }
                    None => {}
                }
                resp
            }
        };
        if let (Some(metrics), Some((method, arrived))) = (&self.config.metrics, counted) {
            metrics.answered(method, resp.status(), arrived.elapsed());
        }
        match entry.take() {
            Some(mut entry) => {
                entry.user = user;
                entry.finish(resp)
            }
            None => resp,
        }
    }
}

/// Answers one request of a connection, HTTP/1 or HTTP/2: `in_flight` keeps the
/// connection busy for the watchdog until the answer is ready, and the idle spin starts then.
async fn answer(
    server: &Arc<DavServer>,
    req: Request<RequestBody>,
    peer: SocketAddr,
    in_flight: conn::InFlight,
    spin: &spin::IdleSpin,
) -> Response<DavBody> {
    let resp = server.handle(req, peer).await;
    drop(in_flight);
    spin.answered();
    resp
}

/// A HEAD answer as HTTP/2 sends it: the headers of the answer to GET, no DATA (hyper
/// would send an error answer's body; the HTTP/1 writer leaves it out by itself).
fn without_body(resp: Response<DavBody>) -> Response<DavBody> {
    use http_body::Body as _;
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.size_hint().exact()
        && !parts.headers.contains_key(http::header::CONTENT_LENGTH)
    {
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, len.into());
    }
    Response::from_parts(parts, DavBody::Empty)
}

/// An HTTP/2 answer's body with the request slot it holds until it is sent or dropped.
struct Held {
    body: DavBody,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl http_body::Body for Held {
    type Data = bytes::Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, io::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Once a second until aborted: the watchdog expires what overstayed, and the storage
/// drops what its caches no longer trust. One timer; once no connection is open and the
/// caches are empty it stops until a connection comes, so an idle server never wakes.
async fn housekeeping(watchdog: Arc<Watchdog>, server: Arc<DavServer>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let watching = watchdog.sweep();
        let holding = server.storage().tidy();
        if !watching && !holding {
            watchdog.arrival().await;
            interval.reset();
        }
    }
}

/// Answers a connection over its client's limit with 503 and closes it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let answer = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\
                   Content-Length: 0\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer)).await;
    let _ = stream.shutdown().await;
}

/// A socket, plain or after its TLS handshake. The TLS state (kilobytes) is boxed so that
/// moving a plain connection moves a few words.
type Stream = Either<TcpStream, Box<tokio_rustls::server::TlsStream<TcpStream>>>;

/// Readies an accepted connection: the TLS handshake if any, under the header timeout (the
/// watchdog takes over after it), then the protocol from its first bytes, which come along.
/// `None`, logged, when the connection ends before that.
async fn open(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
    watchdog: &Arc<Watchdog>,
    activity: Arc<conn::Activity>,
    peer: SocketAddr,
) -> Option<(Protocol, bytes::BytesMut, Conn<Stream>)> {
    let stream = match tls {
        None => Either::Left(stream),
        // Boxed for the same reason: the handshake's state would size every connection's task.
        Some(acceptor) => {
            match tokio::time::timeout(header_timeout, Box::pin(acceptor.accept(stream))).await {
                Ok(Ok(stream)) => Either::Right(Box::new(stream)),
                Ok(Err(e)) => {
                    tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(peer = %peer, "TLS handshake too slow");
                    return None;
                }
            }
        }
    };
    let handshake = matches!(stream, Either::Right(_));
    let mut conn = Conn::new(stream, watchdog, activity);
    if handshake {
        conn.handshake_written();
    }
    match protocol::detect(&mut conn).await {
        Ok(Some((protocol, first))) => Some((protocol, first, conn)),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "connection ended before its first request");
            None
        }
    }
}

/// Requests one HTTP/2 connection may have in flight at once.
pub const HTTP2_STREAMS: u32 = 16;

/// Serves connections from `listener` until `shutdown` completes, then stops accepting and
/// waits (up to 30 s) for open connections to finish their current requests.
///
/// # Errors
/// None so far: accept errors are logged and retried; the `Result` leaves room for
/// set-up failures. A panic of the accept loop is returned as an error.
pub async fn serve(
    listener: TcpListener,
    server: Arc<DavServer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // The accept loop runs as a task of its own, on a runtime thread. Awaited in place, it
    // ran where the caller was, usually `block_on` on a thread outside the runtime: every
    // new connection then woke that thread, and the connection's task was handed back to
    // a runtime thread, two wake-ups and (on one CPU) two context switches before the
    // request was read: a cold MOVE on a new connection took 5-10% longer. Dropping this
    // future still stops accepting (and closes the listener), as when it ran in place.
    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(accept_loop(listener, server, shutdown)))
        .await
        .map_err(io::Error::other)?
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<DavServer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max_head = server.config.max_header_bytes.max(8192);
    let watchdog = Watchdog::new(server.config.header_timeout, server.config.idle_timeout);
    let housekeeper = tokio::spawn(housekeeping(Arc::clone(&watchdog), Arc::clone(&server)));
    let spin = spin::IdleSpin::new(server.config.idle_spin);
    let spinner = tokio::spawn(Arc::clone(&spin).run());
    // Every connection picks its protocol from its first bytes (see `protocol`): HTTP/1 is
    // served by `h1`, HTTP/2 by hyper.
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2.max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX));
    // hyper's 200 would let one connection hold 200 open files and 200 buffered XML
    // bodies, against the one of an HTTP/1 connection that limits are sized by.
    http2.max_concurrent_streams(HTTP2_STREAMS);
    let http2 = Arc::new(http2);
    // Tells connections still in their TLS handshake or picking their protocol to give up
    // at shutdown (those between requests hear it from the watchdog). Each holds a
    // receiver until it ends, which is how shutdown knows they have.
    let (stopping, stop) = tokio::sync::watch::channel(());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(server.config.max_connections));
    // HTTP/2 requests in flight over all connections, each until its answer's body is
    // done: no more than as many HTTP/1 connections could have, one request each, so the
    // descriptors (a file per request) stay within what --max-connections is fitted to.
    let http2_requests = Arc::new(tokio::sync::Semaphore::new(
        server.config.max_connections.max(1),
    ));
    let per_client = ClientSlots::new(server.config.max_connections_per_client);
    let tls = server
        .config
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);
    // The accept loop hears of the stop through a notification: polling the caller's
    // future (signal streams, for `davit serve`) with every connection cost about a
    // thousand instructions each time.
    let stop_accepting = Arc::new(tokio::sync::Notify::new());
    let stop_listener = {
        let stop_accepting = Arc::clone(&stop_accepting);
        tokio::spawn(async move {
            shutdown.await;
            stop_accepting.notify_one();
        })
    };
    let shutdown = stop_accepting.notified();
    tokio::pin!(shutdown);
    loop {
        // A free slot is the usual case: taken without a future or a poll of `shutdown`.
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::Closed) => break,
            Err(tokio::sync::TryAcquireError::NoPermits) => tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            },
        };
        // Biased: a stop is seen even while connections keep arriving.
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A trusted proxy carries many clients: its connections are not one client's.
        let client_slot = if server.config.trusted_proxies.trusts(peer.ip()) {
            None
        } else {
            let Some(claimed) = per_client.claim(peer.ip()) else {
                tracing::warn!(client = %peer.ip(), "connection refused: this client holds its most connections");
                if let Some(metrics) = &server.config.metrics {
                    metrics.connection_refused();
                }
                if tls.is_some() {
                    // A TLS client would read the plain answer as a broken record.
                    drop(stream);
                } else {
                    tokio::spawn(refuse(stream));
                }
                continue;
            };
            Some(claimed)
        };
        let slot = (
            slot,
            client_slot,
            server.config.metrics.as_ref().map(|m| m.connection()),
        );
        let activity = watchdog.watch();
        let (server, spin, http2) = (Arc::clone(&server), Arc::clone(&spin), Arc::clone(&http2));
        let (watchdog, tls) = (Arc::clone(&watchdog), tls.clone());
        let http2_requests = Arc::clone(&http2_requests);
        let (watcher, mut stop) = (graceful.watcher(), stop.clone());
        let header_timeout = server.config.header_timeout;
        // Boxed: a connection's state is kilobytes, and spawning moves a future through
        // several frames before it lands in its task.
        tokio::spawn(Box::pin(async move {
            let _slot = slot;
            let opened = tokio::select! {
                opened = open(stream, tls, header_timeout, &watchdog, Arc::clone(&activity), peer) => opened,
                _ = stop.changed() => return,
            };
            let Some((protocol, first, mut conn)) = opened else {
                return;
            };
            if protocol == Protocol::Http1 {
                let cx = h1::Context {
                    server,
                    peer,
                    activity,
                    spin,
                    max_head,
                };
                h1::serve(conn, first, cx, stop).await;
                return;
            }
            conn.head_ends();
            conn.give_back(first);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let server = Arc::clone(&server);
                let guard = activity.request();
                let wait = activity.body_wait();
                let spin = Arc::clone(&spin);
                let requests = Arc::clone(&http2_requests);
                async move {
                    let Ok(slot) = requests.acquire_owned().await else {
                        // Never closed; but no answer without a slot.
                        let mut refused = Response::new(Held {
                            body: DavBody::Empty,
                            _slot: None,
                        });
                        *refused.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                        return Ok::<_, Infallible>(refused);
                    };
                    let head = req.method() == http::Method::HEAD;
                    let req = req.map(|body| RequestBody::http2(body, wait));
                    let resp = answer(&server, req, peer, guard, &spin).await;
                    let resp = if head { without_body(resp) } else { resp };
                    Ok(resp.map(|body| Held {
                        body,
                        _slot: Some(slot),
                    }))
                }
            });
            let ended = watcher
                .watch(http2.serve_connection(TokioIo::new(conn), service))
                .await;
            if let Err(e) = ended {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(stop);
        }));
        // The new connection runs first: its request is usually there already, and the
        // next accept, which usually finds nothing, waits until it has been answered.
        tokio::task::yield_now().await;
    }
    stop_listener.abort();
    housekeeper.abort();
    spinner.abort();
    drop(listener);
    drop(stop);
    let _ = stopping.send(());
    watchdog.stop_all();
    // `graceful` sends HTTP/2 connections their GOAWAY; every connection ends by dropping
    // its receiver of `stopping`.
    let all_closed = async {
        graceful.shutdown().await;
        stopping.closed().await;
        // Changes whose clients left before the end still finish.
        server.changes.close();
        server.changes.wait().await;
    };
    tokio::select! {
        () = all_closed => tracing::info!("all connections closed"),
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("connections still open after 30 s; stopping anyway");
        }
    }
    Ok(())
}
