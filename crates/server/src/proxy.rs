//! The client behind trusted reverse proxies (`--trusted-proxy`): a request that comes from
//! one is taken to come from the address the proxy puts in `X-Forwarded-For`, so the
//! login-failure limit and the access log see clients, not the proxy. Entries are read
//! from the end, while the hop that added them is trusted: what a client writes in the
//! header itself is never believed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;

/// Addresses and networks (`10.0.0.1`, `10.0.0.0/8`, `::1`) of trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Arc<[(IpAddr, u8)]>,
}

/// A proxy address that is not an address or network.
#[derive(Debug, thiserror::Error)]
#[error("--trusted-proxy {0:?}: expected an address or network (10.0.0.1, 10.0.0.0/8, ::1)")]
pub struct InvalidProxy(pub String);

impl TrustedProxies {
    /// Proxies from `specs`.
    ///
    /// # Errors
    /// A spec that is not an IP address, optionally with a prefix length that fits it.
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
            nets.push((ip, len));
        }
        Ok(TrustedProxies { nets: nets.into() })
    }

    /// Whether any proxy is trusted.
    pub fn is_on(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets
            .iter()
            .any(|&(net, len)| in_net(ip, canonical(net), len))
    }

    /// The client of a request that came from `peer` with `headers`: `peer` itself unless
    /// it is trusted, else the last `X-Forwarded-For` entry not added by a trusted hop. A
    /// forwarded client's port is unknown, and given as 0.
    pub(crate) fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer.ip();
        for entry in entries.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match forwarded_ip(entry) {
                Some(ip) => client = ip,
                // Garbage from a hop: the last hop that said something sensible stands.
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

/// IPv4-mapped IPv6 addresses as the IPv4 addresses they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
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

    #[test]
    fn table() {
        let proxies = TrustedProxies::new(&["127.0.0.1", "10.0.0.0/8", "fd00::/8"]).unwrap();
        let peer = |s: &str| -> SocketAddr { s.parse().unwrap() };
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
                &["[2001:db8::1]:80"][..],
                "[2001:db8::1]:0",
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
        assert!(!TrustedProxies::default().is_on());
        assert!(!TrustedProxies::default().trusts("127.0.0.1".parse().unwrap()));
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
        ] {
            assert!(TrustedProxies::new(&[bad]).is_err(), "{bad}");
        }
        let all = TrustedProxies::new(&["0.0.0.0/0"]).unwrap();
        assert!(all.trusts("203.0.113.7".parse().unwrap()));
        assert!(!all.trusts("2001:db8::1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn never_panics_and_never_goes_past_an_untrusted_hop(xff in "[0-9a-f.:, \\[\\]]{0,60}") {
            let proxies = TrustedProxies::new(&["127.0.0.1"]).unwrap();
            let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
            let Ok(value) = xff.parse() else { return Ok(()) };
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", value);
            let client = proxies.client(peer, &h);
            // The peer, or an address the header holds: none made up.
            let named = xff.split(',').filter_map(forwarded_ip).any(|ip| ip == client.ip());
            prop_assert!(client == peer || named);
        }
    }
}
