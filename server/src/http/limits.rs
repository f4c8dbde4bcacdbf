//! Rate limits: failed key look-ups per client address, and registration attempts per key.
//! Fixed one-minute windows on the server's clock (so test mode can move past a window instead
//! of sleeping). IPv6 clients count per /64 ([`limit_key`]).
//!
//! The counts live in the database, shared by every process ([`crate::db::limits`]). A
//! [`Limiter`] here holds the allowance and a memory front: the subjects this process has seen
//! over their allowance in the current window ([`Limiter::mark_over`]), refused without asking
//! the database. The front only ever refuses more, never lets more through.
//!
//! Also the client address itself: the peer, or behind `--trusted-proxy` (addresses or CIDR
//! ranges) the right-most untrusted `X-Forwarded-For` hop ([`client_ip`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Mutex;

/// Entries kept before stale windows are swept.
const SWEEP_AT: usize = 100_000;

/// A fixed-window counter per key.
#[derive(Debug)]
pub struct Limiter {
    limit: u32,
    window_secs: i64,
    map: Mutex<HashMap<String, (i64, u32)>>,
}

/// Over the limit: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Over {
    pub retry_after: u64,
    pub limit: u32,
}

impl Limiter {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Limiter {
            limit,
            window_secs: window_secs.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    fn window(&self, now: i64) -> i64 {
        now.div_euclid(self.window_secs) * self.window_secs
    }

    fn over(&self, start: i64, now: i64) -> Over {
        Over {
            retry_after: (start + self.window_secs - now).max(1) as u64,
            limit: self.limit,
        }
    }

    /// Whether `key` is over its limit now (does not count). A key that is an IPv6 address
    /// counts for its /64 ([`limit_key`]).
    pub fn check(&self, key: &str, now: i64) -> Result<(), Over> {
        let key = limit_key(key);
        let key = key.as_ref();
        let start = self.window(now);
        let map = self.map.lock().expect("limiter lock");
        match map.get(key) {
            Some((s, n)) if *s == start && *n >= self.limit => Err(self.over(start, now)),
            _ => Ok(()),
        }
    }

    /// Remembers that `key` is over its allowance for the window holding `now` (the database
    /// said so), so [`Self::check`] refuses it until that window ends.
    pub fn mark_over(&self, key: &str, now: i64) {
        let key = limit_key(key);
        let start = self.window(now);
        let mut map = self.map.lock().expect("limiter lock");
        if map.len() >= SWEEP_AT {
            map.retain(|_, (s, _)| *s == start);
        }
        map.insert(key.into_owned(), (start, self.limit.max(1)));
    }

    /// Counts one event for `key` in memory only (an IPv6 address counts for its /64).
    pub fn count(&self, key: &str, now: i64) {
        let key = limit_key(key);
        let key = key.as_ref();
        let start = self.window(now);
        let mut map = self.map.lock().expect("limiter lock");
        if map.len() >= SWEEP_AT {
            map.retain(|_, (s, _)| *s == start);
        }
        let entry = map.entry(key.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Counts one event, then refuses it if it went over the limit.
    pub fn hit(&self, key: &str, now: i64) -> Result<(), Over> {
        self.check(key, now)?;
        self.count(key, now);
        Ok(())
    }
}

/// The key a client address is counted under: an IPv6 address stands for its /64 (one
/// subscriber line usually gets a whole /64, so counting single addresses would multiply the
/// allowance by 2^64), an IPv4-mapped IPv6 address for its IPv4 address. Anything else (IPv4
/// addresses, key hashes) is its own key.
pub fn limit_key(key: &str) -> Cow<'_, str> {
    match key.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            Cow::Owned(format!("{}/64", Ipv6Addr::from(bits)))
        }
        Ok(IpAddr::V4(v4)) if v4.to_string() != key => Cow::Owned(v4.to_string()),
        _ => Cow::Borrowed(key),
    }
}

/// A `--trusted-proxy` value: one address, or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is inside the range (an IPv4-mapped IPv6 address counts as its IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl From<IpAddr> for IpNet {
    fn from(addr: IpAddr) -> Self {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad =
            || format!("`{s}` is neither an IP address nor a CIDR range (10.0.0.0/8, fd00::/8)");
        let (addr, prefix) = match s.split_once('/') {
            None => return s.parse::<IpAddr>().map(IpNet::from).map_err(|_| bad()),
            Some((a, p)) => (
                a.parse::<IpAddr>().map_err(|_| bad())?,
                p.parse::<u8>().map_err(|_| bad())?,
            ),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("`{s}`: the prefix length is at most {max}"));
        }
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The limits a server enforces, and whom it trusts for `X-Forwarded-For`.
#[derive(Debug)]
pub struct Limits {
    /// Failed key look-ups (unknown keys, `invalid_key_format`) per client address.
    pub failed_lookups: Limiter,
    /// Registration attempts per key.
    pub registrations: Limiter,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// The client address: the peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` hop that is not itself a trusted proxy. `forwarded_for` holds every
/// `X-Forwarded-For` header line in the order received: they are one list (RFC 9110 §5.3), so a
/// line the client wrote itself, before the one its proxy appended, cannot win. A hop that is
/// not an address stops the walk at the peer.
pub fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let lines: Vec<&str> = forwarded_for.into_iter().collect();
    for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return Some(ip.to_canonical()),
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thirty_first_failure_in_a_window_is_refused_until_the_window_ends() {
        let l = Limiter::new(30, 60);
        let t0 = 6_000; // a window start
        for _ in 0..30 {
            assert_eq!(l.check("1.2.3.4", t0 + 5), Ok(()));
            l.count("1.2.3.4", t0 + 5);
        }
        assert_eq!(
            l.check("1.2.3.4", t0 + 10),
            Err(Over {
                retry_after: 50,
                limit: 30
            })
        );
        assert_eq!(
            l.check("5.6.7.8", t0 + 10),
            Ok(()),
            "other addresses are not affected"
        );
        assert_eq!(l.check("1.2.3.4", t0 + 60), Ok(()), "a new window");
        let r = Limiter::new(2, 60);
        assert!(r.hit("k", t0).is_ok() && r.hit("k", t0).is_ok());
        assert!(r.hit("k", t0).is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let peer: IpAddr = "198.51.100.7".parse().unwrap();
        let trusted = [IpNet::from(proxy)];
        assert_eq!(client_ip(Some(peer), ["203.0.113.9"], &trusted), Some(peer));
        assert_eq!(
            client_ip(Some(proxy), ["203.0.113.9"], &trusted),
            Some(client)
        );
        assert_eq!(
            client_ip(Some(proxy), ["1.1.1.1, 203.0.113.9, 10.0.0.1"], &trusted),
            Some(client)
        );
        assert_eq!(client_ip(Some(proxy), ["garbage"], &trusted), Some(proxy));
        assert_eq!(client_ip(Some(proxy), [], &trusted), Some(proxy));
    }

    /// Issue 14 #2: HAProxy appends its own `X-Forwarded-For` line; the client's forged first
    /// line won because only the first line was read.
    #[test]
    fn every_forwarded_for_line_is_read_in_order_and_the_right_most_untrusted_hop_wins() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = [IpNet::from(proxy)];
        assert_eq!(
            client_ip(Some(proxy), ["6.6.6.6", "203.0.113.9"], &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(
                Some(proxy),
                ["6.6.6.6, 7.7.7.7", "203.0.113.9, 10.0.0.1"],
                &trusted
            ),
            Some("203.0.113.9".parse().unwrap())
        );
        // a trusted hop in the last line hands over to the line before
        assert_eq!(
            client_ip(Some(proxy), ["203.0.113.9", "10.0.0.1"], &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
    }

    #[test]
    fn trusted_proxies_take_cidr_ranges_of_both_families() {
        let nets: Vec<IpNet> = ["10.0.0.0/8", "fd00::/8", "192.0.2.7", "2001:db8::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for inside in [
            "10.1.2.3",
            "10.255.255.255",
            "fd12:3456::1",
            "192.0.2.7",
            "2001:db8::1",
            "::ffff:10.9.9.9",
        ] {
            assert!(nets.iter().any(|n| n.contains(ip(inside))), "{inside}");
        }
        for outside in ["11.0.0.1", "192.0.2.8", "fe00::1", "2001:db8::2"] {
            assert!(!nets.iter().any(|n| n.contains(ip(outside))), "{outside}");
        }
        assert_eq!(
            client_ip(Some(ip("fd00::5")), ["2001:db8:aa::9, 10.3.3.3"], &nets),
            Some(ip("2001:db8:aa::9"))
        );
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!("::/0".parse::<IpNet>().unwrap().contains(ip("2001::1")));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/",
            "nonsense",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_clients_count_per_slash_64() {
        assert_eq!(limit_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(limit_key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(limit_key("192.0.2.1"), "192.0.2.1");
        assert_eq!(limit_key("ab12cd"), "ab12cd");
        let l = Limiter::new(30, 60);
        for i in 0..30 {
            l.count(&format!("2001:db8:1:2::{i:x}"), 6_000);
        }
        assert!(l.check("2001:db8:1:2:ffff::1", 6_000).is_err(), "same /64");
        assert_eq!(l.check("2001:db8:1:3::1", 6_000), Ok(()), "another /64");
    }
}
