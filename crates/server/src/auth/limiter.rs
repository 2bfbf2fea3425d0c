//! Failed logins per client address: after too many in a window, further attempts from that
//! address are refused without checking the password, so guessing stays slow and costs the
//! server nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at once; beyond it, windows that have ended are dropped first, then
/// the table is cleared (an attacker rotating addresses gains a fresh window, no more).
const MAX_TRACKED: usize = 65_536;

#[derive(Debug)]
pub(crate) struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    table: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl FailureLimiter {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Self {
        FailureLimiter {
            max_failures,
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `client` has used up its failures for now.
    pub(crate) fn blocked(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let w = table.get(&key(client))?;
        let ends = w.started + self.window;
        (w.failures >= self.max_failures && now < ends).then(|| ends - now)
    }

    pub(crate) fn record_failure(&self, client: IpAddr, now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_TRACKED {
            table.retain(|_, w| now < w.started + self.window);
            if table.len() >= MAX_TRACKED {
                table.clear();
            }
        }
        let w = table.entry(key(client)).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

impl FailureLimiter {
    /// Takes back a failure counted ahead of a password check that then succeeded.
    pub(crate) fn forgive(&self, client: IpAddr, now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = table.get_mut(&key(client))
            && now < w.started + self.window
        {
            w.failures = w.failures.saturating_sub(1);
        }
    }
}

/// IPv6 clients usually hold a whole /64: count them by it.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(limiter.blocked(a, t0).is_none(), "after {i}");
            limiter.record_failure(a, t0);
        }
        assert_eq!(limiter.blocked(a, t0), Some(Duration::from_secs(60)));
        assert!(limiter.blocked(b, t0).is_none());
        limiter.forgive(a, t0);
        assert!(
            limiter.blocked(a, t0).is_none(),
            "a forgiven failure frees a try"
        );
        limiter.record_failure(a, t0);
        let later = t0 + Duration::from_secs(60);
        assert!(limiter.blocked(a, later).is_none());
        limiter.record_failure(a, later);
        assert!(limiter.blocked(a, later).is_none());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        limiter.record_failure("2001:db8::1".parse().unwrap(), t0);
        assert!(
            limiter
                .blocked("2001:db8::ffff".parse().unwrap(), t0)
                .is_some()
        );
        assert!(
            limiter
                .blocked("2001:db8:0:1::1".parse().unwrap(), t0)
                .is_none()
        );
        limiter.record_failure("::ffff:127.0.0.9".parse().unwrap(), t0);
        assert!(limiter.blocked("127.0.0.9".parse().unwrap(), t0).is_some());
    }
}
