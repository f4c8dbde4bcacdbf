//! Rate limits: failed key look-ups per client address, and registration attempts per key.
//! Fixed one-minute windows on the server's clock (so test mode can move past a window instead
//! of sleeping).
//!
//! The counts live in the database, shared by every process ([`crate::db::limits`]). A
//! [`Limiter`] here holds the allowance and a memory front: the subjects this process has seen
//! over their allowance in the current window ([`Limiter::mark_over`]), refused without asking
//! the database. The front only ever refuses more, never lets more through.

use std::collections::HashMap;
use std::net::IpAddr;
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

    /// Whether `key` is over its limit now (does not count).
    pub fn check(&self, key: &str, now: i64) -> Result<(), Over> {
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
        let start = self.window(now);
        let mut map = self.map.lock().expect("limiter lock");
        if map.len() >= SWEEP_AT {
            map.retain(|_, (s, _)| *s == start);
        }
        map.insert(key.to_owned(), (start, self.limit.max(1)));
    }

    /// Counts one event for `key` (in memory only).
    pub fn count(&self, key: &str, now: i64) {
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

/// The limits a server enforces, and whom it trusts for `X-Forwarded-For`.
#[derive(Debug)]
pub struct Limits {
    /// Failed key look-ups (unknown keys, `invalid_key_format`) per client address.
    pub failed_lookups: Limiter,
    /// Registration attempts per key.
    pub registrations: Limiter,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The client address: the peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(xff) = forwarded_for else {
        return Some(peer);
    };
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return Some(ip),
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
        assert_eq!(
            client_ip(Some(peer), Some("203.0.113.9"), &[proxy]),
            Some(peer)
        );
        assert_eq!(
            client_ip(Some(proxy), Some("203.0.113.9"), &[proxy]),
            Some(client)
        );
        assert_eq!(
            client_ip(
                Some(proxy),
                Some("1.1.1.1, 203.0.113.9, 10.0.0.1"),
                &[proxy]
            ),
            Some(client)
        );
        assert_eq!(
            client_ip(Some(proxy), Some("garbage"), &[proxy]),
            Some(proxy)
        );
        assert_eq!(client_ip(Some(proxy), None, &[proxy]), Some(proxy));
    }
}
