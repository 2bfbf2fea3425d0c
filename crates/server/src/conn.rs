//! The connection wrapper every socket goes through: a watchdog closes connections whose
//! request head arrives too slowly (slowloris) or that sit idle.
//!
//! The watchdog keeps one coarse clock (a tick per second) and looks at every connection
//! once per tick. A request costs a few atomic stores instead of arming and cancelling a
//! kernel timer, which on a virtual machine means exits to the hypervisor: hyper's own
//! header timer cost two fifths of the throughput of small requests one after another.
//! With no connection to watch the clock stops, so an idle server does not wake at all.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Closes connections that take too long to send a request head, or sit idle.
#[derive(Debug)]
pub(crate) struct Watchdog {
    conns: Mutex<Vec<Weak<Activity>>>,
    /// Seconds the watchdog has run while it had connections to watch.
    tick: AtomicU64,
    /// A connection came: the clock runs again.
    arrived: tokio::sync::Notify,
    header_timeout: u64,
    idle_timeout: u64,
}

/// What a connection did lately, shared between it and the watchdog.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Tick + 1 at which the request head now being read began; 0 when none is.
    head_since: AtomicU64,
    /// Tick of the last byte read or written.
    last: AtomicU64,
    /// Requests being handled (their service futures not yet done).
    in_flight: AtomicUsize,
    /// Requests whose handlers wait for body bytes the client has not sent: when every
    /// request in flight does, the connection is idle despite them.
    bodies_waiting: AtomicUsize,
    expired: AtomicBool,
    /// The server is stopping: a connection waiting for its next request ends.
    stopping: AtomicBool,
    /// The connection waits for the first byte of its next request.
    between_requests: AtomicBool,
    /// Who to wake so an expired connection notices.
    waker: Mutex<Option<Waker>>,
}

impl Watchdog {
    pub(crate) fn new(header_timeout: Duration, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Watchdog {
            conns: Mutex::new(Vec::new()),
            tick: AtomicU64::new(0),
            arrived: tokio::sync::Notify::new(),
            header_timeout: header_timeout.as_secs().max(1),
            idle_timeout: idle_timeout.as_secs().max(1),
        })
    }

    fn now(&self) -> u64 {
        self.tick.load(Ordering::Relaxed)
    }

    /// Starts watching a new connection.
    pub(crate) fn watch(&self) -> Arc<Activity> {
        let activity = Arc::new(Activity::default());
        activity.last.store(self.now(), Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&activity));
        self.arrived.notify_one();
        activity
    }

    /// Waits for a connection to arrive: at once if one came since the last wait.
    pub(crate) async fn arrival(&self) {
        self.arrived.notified().await;
    }

    /// Tells every connection the server is stopping: those waiting for their next request
    /// read an end of stream; the others end after their current answer.
    pub(crate) fn stop_all(&self) {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        for a in conns.iter().filter_map(Weak::upgrade) {
            a.stopping.store(true, Ordering::Relaxed);
            a.wake();
        }
    }

    /// Expires what overstayed; called once a second. Whether any connection is left.
    pub(crate) fn sweep(&self) -> bool {
        let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|weak| {
            let Some(a) = weak.upgrade() else {
                return false;
            };
            if a.expired.load(Ordering::Relaxed) {
                return false;
            }
            let head = a.head_since.load(Ordering::Relaxed);
            // Strictly more than the timeout in whole ticks: never less than asked.
            let slow_head = head != 0 && now - (head - 1) > self.header_timeout;
            let in_flight = a.in_flight.load(Ordering::Relaxed);
            let bodies_waiting = a.bodies_waiting.load(Ordering::Relaxed);
            let idle = head == 0
                && (in_flight == 0 || bodies_waiting >= in_flight)
                && now.saturating_sub(a.last.load(Ordering::Relaxed)) > self.idle_timeout;
            if slow_head || idle {
                tracing::debug!(
                    reason = if slow_head {
                        "request head too slow"
                    } else {
                        "idle"
                    },
                    "closing connection"
                );
                a.expired.store(true, Ordering::Relaxed);
                a.wake();
                return false;
            }
            true
        });
        !conns.is_empty()
    }
}

/// Counts a request body among those waited for, while it is.
#[derive(Debug)]
pub(crate) struct BodyWait {
    activity: Arc<Activity>,
    waiting: bool,
}

impl BodyWait {
    /// Whether the handler now waits for bytes the client has not sent.
    pub(crate) fn set(&mut self, waiting: bool) {
        if waiting != self.waiting {
            self.waiting = waiting;
            if waiting {
                self.activity.bodies_waiting.fetch_add(1, Ordering::Relaxed);
            } else {
                self.activity.bodies_waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for BodyWait {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// Marks a request in flight while alive.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Activity {
    /// A request is being handled until the returned guard drops.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A request body of this connection, to be counted while waited for.
    pub(crate) fn body_wait(self: &Arc<Self>) -> BodyWait {
        BodyWait {
            activity: Arc::clone(self),
            waiting: false,
        }
    }

    fn expired(&self) -> io::Result<()> {
        if self.expired.load(Ordering::Relaxed) {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection closed: request head too slow, or idle",
            ))
        } else {
            Ok(())
        }
    }

    /// Wakes the connection's task, if it waits, to see a flag the watchdog set.
    fn wake(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.wake();
        }
    }

    /// `r`, with the task parked where the watchdog can wake it if `r` is pending.
    fn parked<T>(&self, r: Poll<T>, cx: &Context<'_>) -> Poll<T> {
        if r.is_pending() {
            self.park(cx);
        }
        r
    }

    fn park(&self, cx: &Context<'_>) {
        let mut w = self.waker.lock().unwrap_or_else(|p| p.into_inner());
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A watched connection.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    inner: S,
    /// Bytes already read (and scanned) that are to be read again first.
    replay: Bytes,
    activity: Arc<Activity>,
    watchdog: Arc<Watchdog>,
    nagle: Nagle,
    /// The HTTP/1 request body now read, if its handler waits for it.
    body_wait: BodyWait,
}

/// Where a connection stands with Nagle's algorithm. A write can only be held back while
/// earlier bytes wait for their acknowledgement, so the first write never is (unless a TLS
/// handshake wrote before it, see [`Conn::handshake_written`]): a connection
/// that answers once with one write (a command-line MOVE) is spared the system call, and
/// every later write, the tail of a streamed body or a pipelined answer, goes out at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Nagle {
    NotWritten,
    Written,
    Off,
}

/// A socket whose Nagle's algorithm can be switched off.
pub(crate) trait NoDelay {
    fn no_delay(&self);
}

impl NoDelay for crate::Stream {
    fn no_delay(&self) {
        let tcp = match self {
            tokio_util::either::Either::Left(tcp) => tcp,
            tokio_util::either::Either::Right(tls) => tls.get_ref().0,
        };
        // Without it answers only wait longer; nothing to report.
        let _ = tcp.set_nodelay(true);
    }
}

impl<S> Conn<S> {
    pub(crate) fn new(inner: S, watchdog: &Arc<Watchdog>, activity: Arc<Activity>) -> Self {
        Conn {
            inner,
            replay: Bytes::new(),
            body_wait: activity.body_wait(),
            activity,
            watchdog: Arc::clone(watchdog),
            nagle: Nagle::NotWritten,
        }
    }

    /// Puts `bytes`, read from this connection just now, back in front of what it reads
    /// next (see [`crate::protocol`]).
    pub(crate) fn give_back(&mut self, bytes: bytes::BytesMut) {
        debug_assert!(self.replay.is_empty(), "bytes are given back once");
        self.replay = bytes.freeze();
    }

    /// Part of a request head has arrived: the header timeout runs from the first such call
    /// until [`Conn::head_ends`].
    pub(crate) fn head_begins(&self) {
        let a = &self.activity;
        if a.head_since.load(Ordering::Relaxed) == 0 {
            a.head_since
                .store(self.watchdog.now() + 1, Ordering::Relaxed);
        }
    }

    /// The request head is complete.
    pub(crate) fn head_ends(&self) {
        self.activity.head_since.store(0, Ordering::Relaxed);
    }

    /// Whether the server is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.activity.stopping.load(Ordering::Relaxed)
    }

    /// Whether the connection now waits for a new request: if so, a stop ends its reads.
    pub(crate) fn between_requests(&self, between: bool) {
        self.activity
            .between_requests
            .store(between, Ordering::Relaxed);
    }

    /// Whether a handler now waits for request body bytes (so the idle timeout applies).
    pub(crate) fn body_waits(&mut self, waiting: bool) {
        self.body_wait.set(waiting);
    }
}

impl Conn<crate::Stream> {
    /// The socket, when no TLS runs over it, to write to directly (`sendfile`): bytes
    /// written there reach the client as they are. Asked for before such a write, so it
    /// switches Nagle's algorithm off as any later write does.
    pub(crate) fn plain_tcp(&mut self) -> Option<&tokio::net::TcpStream> {
        self.before_write();
        match &self.inner {
            tokio_util::either::Either::Left(tcp) => Some(tcp),
            tokio_util::either::Either::Right(_) => None,
        }
    }

    /// Readiness to write on the plain socket, for writes made on it directly
    /// (`sendfile`): an error once the watchdog has closed the connection as idle (a
    /// client that stopped reading), which it wakes this wait to see.
    pub(crate) fn poll_plain_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.activity.expired()?;
        let r = match &self.inner {
            tokio_util::either::Either::Left(tcp) => tcp.poll_write_ready(cx),
            tokio_util::either::Either::Right(_) => {
                Poll::Ready(Err(io::Error::other("not a plain socket")))
            }
        };
        self.activity.parked(r, cx)
    }

    /// The TLS handshake wrote to the socket before this wrapper did: its last flight may
    /// still wait for an acknowledgement, so even the first answer must not.
    pub(crate) fn handshake_written(&mut self) {
        self.nagle = Nagle::Written;
    }

    /// Bytes went out past the wrapper: the connection is not idle. An error once the
    /// watchdog has closed it.
    pub(crate) fn sent_directly(&mut self) -> io::Result<()> {
        self.activity.expired()?;
        self.nagle = self.nagle.max(Nagle::Written);
        self.activity
            .last
            .store(self.watchdog.now(), Ordering::Relaxed);
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.expired()?;
        if this.activity.between_requests.load(Ordering::Relaxed)
            && this.activity.stopping.load(Ordering::Relaxed)
        {
            // Read as the end of the stream: the connection closes without a request lost.
            return Poll::Ready(Ok(()));
        }
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                this.activity.park(cx);
                Poll::Pending
            }
            Poll::Ready(r) => {
                r?;
                if buf.filled().len() > before {
                    this.activity
                        .last
                        .store(this.watchdog.now(), Ordering::Relaxed);
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S: NoDelay> Conn<S> {
    fn before_write(&mut self) {
        if self.nagle == Nagle::Written {
            self.inner.no_delay();
            self.nagle = Nagle::Off;
        }
    }

    fn wrote(&mut self, r: Poll<io::Result<usize>>, cx: &Context<'_>) -> Poll<io::Result<usize>> {
        match &r {
            Poll::Ready(Ok(n)) if *n > 0 => {
                self.nagle = self.nagle.max(Nagle::Written);
                self.activity
                    .last
                    .store(self.watchdog.now(), Ordering::Relaxed);
            }
            Poll::Pending => self.activity.park(cx),
            _ => {}
        }
        r
    }
}

impl<S: AsyncWrite + NoDelay + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.expired()?;
        this.before_write();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        this.wrote(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.expired()?;
        this.before_write();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    // Flushing and closing wait on the client too (TLS holds written bytes until then):
    // the watchdog must be able to end that wait like any other.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.expired()?;
        this.activity
            .parked(Pin::new(&mut this.inner).poll_flush(cx), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.expired()?;
        this.activity
            .parked(Pin::new(&mut this.inner).poll_shutdown(cx), cx)
    }
}

/// Connections per client address, so one client cannot take every slot.
#[derive(Debug)]
pub(crate) struct ClientSlots {
    max: usize,
    held: Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One connection's claim on its client's slots, given back when dropped.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: std::net::IpAddr,
}

impl ClientSlots {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(ClientSlots {
            max: max.max(1),
            held: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// A slot for `client`, unless it holds its most connections already.
    pub(crate) fn claim(self: &Arc<Self>, client: std::net::IpAddr) -> Option<ClientSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(client).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: Arc::clone(self),
            client,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio_util::either::Either;

    fn no_delay(conn: &Conn<crate::Stream>) -> bool {
        match &conn.inner {
            Either::Left(tcp) => tcp.nodelay().unwrap(),
            Either::Right(_) => unreachable!("plain TCP"),
        }
    }

    /// A server-side connection over loopback TCP, and its client.
    async fn connected() -> (Conn<crate::Stream>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let watchdog = Watchdog::new(Duration::from_secs(30), Duration::from_secs(30));
        let conn = Conn::new(Either::Left(server), &watchdog, watchdog.watch());
        (conn, client)
    }

    #[tokio::test]
    async fn nagle_goes_off_before_the_second_write() {
        let (mut conn, _client) = connected().await;
        assert!(!no_delay(&conn));
        conn.write_all(b"HTTP/1.1 201 Created\r\n\r\n")
            .await
            .unwrap();
        assert!(!no_delay(&conn), "one answer in one write keeps it");
        conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .unwrap();
        assert!(
            no_delay(&conn),
            "the next write must not wait for an acknowledgement"
        );
    }

    #[tokio::test]
    async fn after_a_handshake_the_first_write_goes_out_at_once() {
        let (mut conn, _client) = connected().await;
        conn.handshake_written();
        conn.write_all(b"HTTP/1.1 201 Created\r\n\r\n")
            .await
            .unwrap();
        assert!(no_delay(&conn));
    }

    #[tokio::test]
    async fn writing_past_the_wrapper_counts_as_a_write() {
        let (mut conn, _client) = connected().await;
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            .await
            .unwrap();
        assert!(conn.plain_tcp().is_some());
        assert!(no_delay(&conn), "sendfile follows the head");
    }
}
