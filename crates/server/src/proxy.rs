//! The client behind trusted reverse proxies (`--trusted-proxy`): a request that comes from
//! one is taken to come from the address the proxy puts in `X-Forwarded-For`, so the
//! login-failure limit and the access log see clients, not the proxy. Entries are read
//! from the end, while the hop that added them is trusted: what a client writes in the
//! header itself is not believed, unless the client's own address is trusted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;

/// Addresses and networks (`127.0.0.1`, `192.0.2.16/30`, `::1`) of trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    /// IPv4-mapped networks are kept as the IPv4 ones they map.
    nets: Arc<[(IpAddr, u8)]>,
}

/// A proxy address that is not an address or network.
#[derive(Debug, thiserror::Error)]
#[error("--trusted-proxy {0:?}: expected an address or network (127.0.0.1, 192.0.2.16/30, ::1)")]
pub struct InvalidProxy(pub String);

impl TrustedProxies {
    /// Proxies from `specs`.
    ///
    /// # Errors
    /// A spec that is not an IP address, optionally with a prefix length that fits it; an
    /// IPv4-mapped network wider than the mapped range.
    pub fn new<S: AsRef<str>>(specs: &[S]) -> Result<Self, InvalidProxy> {
        let mut nets = Vec::with_capacity(specs.len());
        for spec in specs {
            let spec = spec.as_ref().trim();
            let bad = || InvalidProxy(spec.to_owned());
            let (addr, len) = match spec.split_once('/') {
                Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
                None => (spec, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = len.unwrap_or(max);
            if len > max {
                return Err(bad());
            }
            // Peers are compared as IPv4 when they are IPv4-mapped, so the networks too.
            let net = match ip {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) if len >= 96 => (IpAddr::V4(v4), len - 96),
                    Some(_) => return Err(bad()),
                    None => (ip, len),
                },
                IpAddr::V4(_) => (ip, len),
            };
            nets.push(net);
        }
        Ok(TrustedProxies { nets: nets.into() })
    }

    /// Whether any proxy is trusted.
    pub fn is_on(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|&(net, len)| in_net(ip, net, len))
    }

    /// The client of a request that came from `peer` with `headers`: `peer` itself unless
    /// it is trusted, else the last `X-Forwarded-For` entry not added by a trusted hop. A
    /// forwarded client's port is unknown, and given as 0.
    pub(crate) fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        // Split as bytes: an element that is not text (a client's own) spoils only itself.
        let entries: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .collect();
        let mut client = peer.ip();
        for entry in entries.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match std::str::from_utf8(entry).ok().and_then(forwarded_ip) {
                Some(ip) => client = ip.to_canonical(),
                // Garbage, `unknown` or an obfuscated name: the last address known, a
                // trusted proxy's, stands.
                None => break,
            }
        }
        if client == peer.ip() {
            peer
        } else {
            SocketAddr::new(client, 0)
        }
    }
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let len = u32::from(len);
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => match 32u32.checked_sub(len) {
            Some(host) => {
                let mask = u32::MAX.checked_shl(host).unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            None => false,
        },
        (IpAddr::V6(a), IpAddr::V6(n)) => match 128u32.checked_sub(len) {
            Some(host) => {
                let mask = u128::MAX.checked_shl(host).unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn table() {
        let proxies = TrustedProxies::new(&["127.0.0.1", "10.0.0.0/8", "fd00::/8"]).unwrap();
        for (from, xff, client) in [
            // Not from a proxy: the header is the client's own text.
            ("192.0.2.9:5000", &["198.51.100.1"][..], "192.0.2.9:5000"),
            ("127.0.0.1:5000", &[][..], "127.0.0.1:5000"),
            ("127.0.0.1:5000", &["198.51.100.1"][..], "198.51.100.1:0"),
            (
                "127.0.0.1:5000",
                &["198.51.100.1:4711"][..],
                "198.51.100.1:0",
            ),
            // Through two proxies.
            (
                "127.0.0.1:5000",
                &["198.51.100.1, 10.1.2.3"][..],
                "198.51.100.1:0",
            ),
            (
                "127.0.0.1:5000",
                &["198.51.100.1", "10.1.2.3"][..],
                "198.51.100.1:0",
            ),
            // Header lines are read in order: the last is the nearest hop's.
            (
                "127.0.0.1:5000",
                &["6.6.6.6", "198.51.100.1"][..],
                "198.51.100.1:0",
            ),
            // What the client wrote before the proxy added its address is not believed.
            (
                "127.0.0.1:5000",
                &["6.6.6.6, 198.51.100.1"][..],
                "198.51.100.1:0",
            ),
            (
                "127.0.0.1:5000",
                &["6.6.6.6, nonsense"][..],
                "127.0.0.1:5000",
            ),
            (
                "127.0.0.1:5000",
                &["6.6.6.6, unknown"][..],
                "127.0.0.1:5000",
            ),
            (
                "127.0.0.1:5000",
                &["[2001:db8::1]:80"][..],
                "[2001:db8::1]:0",
            ),
            (
                "127.0.0.1:5000",
                &["::ffff:203.0.113.9"][..],
                "203.0.113.9:0",
            ),
            (
                "[::ffff:127.0.0.1]:5000",
                &["198.51.100.1"][..],
                "198.51.100.1:0",
            ),
            ("[fd12::1]:5000", &["2001:db8::2"][..], "[2001:db8::2]:0"),
        ] {
            assert_eq!(
                proxies.client(peer(from), &headers(xff)),
                peer(client),
                "{from} {xff:?}"
            );
        }
        // A client's bytes that are not text spoil only their own element.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"\xff, 203.0.113.9").unwrap(),
        );
        assert_eq!(
            proxies.client(peer("127.0.0.1:1"), &h),
            peer("203.0.113.9:0")
        );
        assert!(!TrustedProxies::default().is_on());
        assert!(!TrustedProxies::default().trusts(ip("127.0.0.1")));
    }

    #[test]
    fn specs() {
        for ok in [
            "10.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::1",
            "fd00::/8",
            " 10.0.0.1 ",
        ] {
            assert!(TrustedProxies::new(&[ok]).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "host",
            "10.0.0.0/x",
            "10.0.0.1/8/1",
            "::ffff:10.0.0.0/95",
        ] {
            assert!(TrustedProxies::new(&[bad]).is_err(), "{bad}");
        }
        let all = TrustedProxies::new(&["0.0.0.0/0"]).unwrap();
        assert!(all.trusts(ip("203.0.113.7")));
        assert!(!all.trusts(ip("2001:db8::1")));
        for (spec, inside, outside) in [
            ("10.0.0.4/31", "10.0.0.5", "10.0.0.6"),
            ("10.0.0.4/32", "10.0.0.4", "10.0.0.5"),
            ("fd00::1/128", "fd00::1", "fd00::2"),
            ("::ffff:127.0.0.1", "127.0.0.1", "127.0.0.2"),
            ("::ffff:10.0.0.0/104", "10.255.0.1", "11.0.0.1"),
            ("::ffff:10.0.0.0/104", "::ffff:10.1.2.3", "::ffff:11.1.2.3"),
        ] {
            let p = TrustedProxies::new(&[spec]).unwrap();
            assert!(p.trusts(ip(inside)), "{spec} {inside}");
            assert!(!p.trusts(ip(outside)), "{spec} {outside}");
        }
    }

    proptest! {
        #[test]
        fn the_nearest_untrusted_entry_is_the_client(xff in "[0-9a-f.:, \\[\\]]{0,60}") {
            let proxies = TrustedProxies::new(&["127.0.0.1"]).unwrap();
            let from = peer("127.0.0.1:1");
            let Ok(value) = xff.parse() else { return Ok(()) };
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", value);
            let client = proxies.client(from, &h);
            let entries: Vec<Option<IpAddr>> = xff.split(',').map(forwarded_ip).collect();
            match entries.last() {
                Some(Some(last)) if !proxies.trusts(*last) => {
                    prop_assert_eq!(client.ip(), last.to_canonical());
                }
                // Garbage: the proxy itself.
                Some(None) => prop_assert_eq!(client, from),
                // Another trusted hop: the walk goes on, to an entry of the header.
                _ => {
                    let named = entries.iter().flatten().any(|ip| ip.to_canonical() == client.ip());
                    prop_assert!(client == from || named);
                }
            }
        }
    }
}
