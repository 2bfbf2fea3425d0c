//! Counters for monitoring, in Prometheus' text format, served on a separate address
//! (`davit serve --metrics-listen`), so the WebDAV namespace and its logins stay as they are.
//!
//! Counting is a few relaxed atomic additions per request, and only happens when metrics
//! are on. Durations run from the parsed request head to the answer's head: an upload's
//! body is included, a streamed answer's (a large GET, a long PROPFIND) is not. Request
//! heads refused before they reach a method (400, 431, 501) count under `other`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};

/// Upper bounds of the duration buckets, in microseconds.
const BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// The methods counted by name; the rest are counted as `other`, so a client cannot make
/// the label set grow.
const METHODS: [&str; 15] = [
    "OPTIONS",
    "GET",
    "HEAD",
    "PUT",
    "DELETE",
    "MKCOL",
    "COPY",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "POST",
    "PATCH",
    "other",
];

/// Status codes 100-599, one slot each.
const CODES: usize = 500;

/// The server's counters.
#[derive(Debug)]
pub struct Metrics {
    /// Per method, per status code.
    answered: Box<[[AtomicU64; CODES]]>,
    /// Per method: one count per bucket (not cumulative), then the sum in microseconds.
    durations: Box<[PerMethod]>,
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    connections_refused: AtomicU64,
}

#[derive(Debug)]
struct PerMethod {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

/// Which method slot a request counts in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MethodSlot(usize);

impl MethodSlot {
    pub(crate) fn of(method: &Method) -> Self {
        let name = method.as_str();
        MethodSlot(
            METHODS[..METHODS.len() - 1]
                .iter()
                .position(|m| *m == name)
                .unwrap_or(METHODS.len() - 1),
        )
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            answered: (0..METHODS.len())
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            durations: (0..METHODS.len())
                .map(|_| PerMethod {
                    buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                    sum_us: AtomicU64::new(0),
                })
                .collect(),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counters at zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    /// A request of `method` was answered with `status` after `took`.
    pub(crate) fn answered(&self, method: MethodSlot, status: StatusCode, took: Duration) {
        let code = usize::from(status.as_u16())
            .saturating_sub(100)
            .min(CODES - 1);
        self.answered[method.0][code].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.partition_point(|&bound| bound < us);
        let per = &self.durations[method.0];
        per.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        per.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// A request head was refused before it named a method we count.
    pub(crate) fn refused_head(&self, status: StatusCode) {
        self.answered(MethodSlot(METHODS.len() - 1), status, Duration::ZERO);
    }

    /// A connection was refused (503) because its client held its most connections.
    pub(crate) fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was accepted; it counts as open until the guard is dropped.
    pub(crate) fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    /// Every counter, with the process's own figures, in Prometheus' text format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let _ = writeln!(
            out,
            "# HELP davit_build_info The running version.\n# TYPE davit_build_info gauge\n\
             davit_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out.push_str(
            "# HELP davit_requests_total Requests answered, by method and status code.\n\
             # TYPE davit_requests_total counter\n",
        );
        for (m, codes) in self.answered.iter().enumerate() {
            for (i, count) in codes.iter().enumerate() {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "davit_requests_total{{method=\"{}\",code=\"{}\"}} {n}",
                        METHODS[m],
                        i + 100
                    );
                }
            }
        }
        out.push_str(
            "# HELP davit_request_duration_seconds Time from a request's arrival to its \
             answer's head.\n# TYPE davit_request_duration_seconds histogram\n",
        );
        for (m, per) in self.durations.iter().enumerate() {
            let counts: Vec<u64> = per
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let method = METHODS[m];
            let mut below = 0;
            for (bound, count) in BUCKETS_US.iter().zip(&counts) {
                below += count;
                let _ = writeln!(
                    out,
                    "davit_request_duration_seconds_bucket{{method=\"{method}\",le=\"{}\"}} {below}",
                    seconds(*bound)
                );
            }
            let _ = writeln!(
                out,
                "davit_request_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {total}\n\
                 davit_request_duration_seconds_sum{{method=\"{method}\"}} {}\n\
                 davit_request_duration_seconds_count{{method=\"{method}\"}} {total}",
                seconds(per.sum_us.load(Ordering::Relaxed))
            );
        }
        let _ = writeln!(
            out,
            "# HELP davit_connections_open Client connections open now.\n\
             # TYPE davit_connections_open gauge\ndavit_connections_open {}\n\
             # HELP davit_connections_total Client connections accepted.\n\
             # TYPE davit_connections_total counter\ndavit_connections_total {}\n\
             # HELP davit_connections_refused_total Connections refused with 503: their \
             client held its most connections.\n\
             # TYPE davit_connections_refused_total counter\ndavit_connections_refused_total {}",
            self.connections_open.load(Ordering::Relaxed),
            self.connections_total.load(Ordering::Relaxed),
            self.connections_refused.load(Ordering::Relaxed)
        );
        process::render(&mut out);
        out
    }
}

/// Microseconds as seconds, without float rounding noise (`0.00025`, `2.5`, `10`).
fn seconds(us: u64) -> String {
    let (whole, frac) = (us / 1_000_000, us % 1_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Connections to the metrics listener served at once; more are closed at once, so the
/// listener cannot take the descriptors the WebDAV connections need.
const MAX_SCRAPERS: usize = 8;

/// Answers `GET /metrics` on connections from `listener` until dropped (HTTP/1.1, no
/// login: bind it where only the monitoring can reach it).
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPERS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _slot = slot;
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let metrics = Arc::clone(&metrics);
                    async move { Ok::<_, std::convert::Infallible>(answer(&req, &metrics)) }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics: connection ended with an error");
            }
        });
    }
}

fn answer<B>(
    req: &http::Request<B>,
    metrics: &Metrics,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, body, content_type) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (
            StatusCode::OK,
            metrics.render(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        // For a load balancer or an orchestrator: the process answers.
        (&Method::GET | &Method::HEAD, "/healthz") => (
            StatusCode::OK,
            "ok\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or HEAD only\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "metrics are at /metrics, health at /healthz\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
    };
    let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
    }
    resp
}

/// Counts a connection as open while alive.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The process figures Prometheus' client libraries export under these names, from
/// `/proc/self`; left out where it cannot be read.
mod process {
    use std::fmt::Write as _;

    /// Clock ticks per second of `/proc` times: 100 on every Linux architecture Davit
    /// builds for.
    const TICKS: f64 = 100.0;

    pub(super) fn render(out: &mut String) {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            // utime, stime and starttime are fields 14, 15 and 22 of the line; the list
            // starts at field 3.
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (field(14), field(15)) {
                let _ = writeln!(
                    out,
                    "# HELP process_cpu_seconds_total CPU time used.\n\
                     # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
                    (user + system) as f64 / TICKS
                );
            }
            if let (Some(start), Some(boot)) = (field(22), boot_time()) {
                let _ = writeln!(
                    out,
                    "# HELP process_start_time_seconds When the process started, in Unix time.\n\
                     # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}",
                    boot as f64 + start as f64 / TICKS
                );
            }
        }
        if let Some(rss) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| kib(&s, "VmRSS:"))
        {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory.\n\
                 # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
                rss * 1024
            );
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let _ = writeln!(
                out,
                "# HELP process_open_fds Open file descriptors.\n\
                 # TYPE process_open_fds gauge\nprocess_open_fds {}",
                fds.count()
            );
        }
    }

    fn boot_time() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    }

    fn kib(status: &str, key: &str) -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_written_exactly() {
        for (us, s) in [
            (100, "0.0001"),
            (250, "0.00025"),
            (1_000_000, "1"),
            (2_500_000, "2.5"),
            (0, "0"),
            (1_234_567, "1.234567"),
        ] {
            assert_eq!(seconds(us), s);
        }
    }

    #[test]
    fn answers_land_in_their_method_code_and_bucket() {
        let m = Metrics::new();
        let get = MethodSlot::of(&Method::GET);
        m.answered(get, StatusCode::OK, Duration::from_micros(100));
        m.answered(get, StatusCode::OK, Duration::from_micros(101));
        m.answered(get, StatusCode::NOT_FOUND, Duration::from_secs(60));
        let odd = Method::from_bytes(b"BREW").unwrap();
        m.answered(
            MethodSlot::of(&odd),
            StatusCode::NOT_IMPLEMENTED,
            Duration::ZERO,
        );
        let text = m.render();
        for line in [
            "davit_requests_total{method=\"GET\",code=\"200\"} 2",
            "davit_requests_total{method=\"GET\",code=\"404\"} 1",
            "davit_requests_total{method=\"other\",code=\"501\"} 1",
            "davit_request_duration_seconds_bucket{method=\"GET\",le=\"0.0001\"} 1",
            "davit_request_duration_seconds_bucket{method=\"GET\",le=\"0.00025\"} 2",
            "davit_request_duration_seconds_bucket{method=\"GET\",le=\"10\"} 2",
            "davit_request_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 3",
            "davit_request_duration_seconds_sum{method=\"GET\"} 60.000201",
            "davit_request_duration_seconds_count{method=\"GET\"} 3",
            "davit_request_duration_seconds_count{method=\"other\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("method=\"PUT\""), "no empty series");
    }

    #[test]
    fn refusals_are_counted() {
        let m = Metrics::new();
        m.refused_head(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        m.connection_refused();
        let text = m.render();
        assert!(
            text.contains("davit_requests_total{method=\"other\",code=\"431\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("davit_connections_refused_total 1\n"),
            "{text}"
        );
    }

    #[test]
    fn open_connections_go_down_when_they_close() {
        let m = Metrics::new();
        let a = m.connection();
        let b = m.connection();
        drop(a);
        let text = m.render();
        assert!(text.contains("davit_connections_open 1\n"), "{text}");
        assert!(text.contains("davit_connections_total 2\n"), "{text}");
        drop(b);
        assert!(m.render().contains("davit_connections_open 0\n"));
    }

    #[test]
    fn process_figures_are_read() {
        let text = Metrics::new().render();
        for name in [
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} in\n{text}"
            );
        }
    }
}
