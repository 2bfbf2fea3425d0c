//! The process's open-file limit, fitted to the connections the server accepts.
//!
//! Most systems start a process with a soft limit of 1024 descriptors (systemd services,
//! login shells) and a much higher hard one. At the default 1024 connections that soft limit
//! would run out first, and a request would fail with a 500 when it opens its file. The
//! server raises the soft limit to the hard one, as it may; where even the hard one is too
//! low, it accepts fewer connections at once (the rest wait in the listen queue) instead of
//! failing requests it has already taken.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors one connection may hold at once: its socket, the file a request reads or
/// writes, and that file's folder while a new file is committed; and two more for the
/// HTTP/2 requests the server lets be in flight besides, as many as connections.
const PER_CONNECTION: u64 = 5;
/// Descriptors outside the connections: the listener, the runtime, SQLite, the served
/// folder, and a tree copy's folders.
const SPARE: u64 = 256;

/// Raises the soft open-file limit where `connections` need more, and returns how many
/// connections fit the limit in force.
pub(crate) fn fit(connections: usize) -> usize {
    let wanted = needed(connections);
    let limits = getrlimit(Resource::Nofile);
    let soft = limits.current.unwrap_or(u64::MAX);
    if soft >= wanted {
        return connections;
    }
    // An unlimited hard limit still stops at the kernel's `nr_open`: ask for what is needed.
    let raised = limits.maximum.unwrap_or(wanted);
    let now = match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(raised),
            maximum: limits.maximum,
        },
    ) {
        Ok(()) => {
            tracing::debug!(from = soft, to = raised, "raised the open-file limit");
            raised
        }
        Err(e) => {
            tracing::debug!(error = %e, limit = soft, "could not raise the open-file limit");
            soft
        }
    };
    let fitting = fitting(now);
    if fitting < connections {
        tracing::warn!(
            open_files = now,
            connections = fitting,
            asked = connections,
            "the open-file limit allows fewer connections at once than --max-connections; \
             raise the hard limit (ulimit -Hn, LimitNOFILE= in a systemd unit) to accept more"
        );
        return fitting;
    }
    connections
}

/// Descriptors `connections` connections may need.
fn needed(connections: usize) -> u64 {
    u64::try_from(connections)
        .unwrap_or(u64::MAX)
        .saturating_mul(PER_CONNECTION)
        .saturating_add(SPARE)
}

/// Connections that fit `limit` descriptors; at least one, so the server still serves.
fn fitting(limit: u64) -> usize {
    let n = limit.saturating_sub(SPARE) / PER_CONNECTION;
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_and_descriptors_match_both_ways() {
        for connections in [2, 3, 100, 1024, 65_536] {
            let limit = needed(connections);
            assert_eq!(fitting(limit), connections, "{connections}");
            assert_eq!(fitting(limit - 1), connections - 1, "{connections}");
        }
    }

    #[test]
    fn a_limit_below_the_spare_descriptors_still_serves_one_connection() {
        assert_eq!(fitting(0), 1);
        assert_eq!(fitting(SPARE), 1);
        assert_eq!(fitting(SPARE + 2 * PER_CONNECTION), 2);
    }

    #[test]
    fn no_count_overflows() {
        assert_eq!(needed(usize::MAX), u64::MAX);
        assert!(fitting(u64::MAX) > 1 << 40);
    }
}
