//! Webhook rules (DESIGN §12): event types, the retry schedule, which addresses a webhook may
//! reach, and the Standard Webhooks signature. Pure: no I/O, no clock of its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every event type a webhook can take.
pub const EVENT_TYPES: [&str; 15] = [
    "key.issued",
    "key.revoked",
    "key.regenerated",
    "registration.created",
    "registration.released",
    "subscription.created",
    "subscription.suspended",
    "subscription.resumed",
    "subscription.cancelled",
    "license.issued",
    "license.activated",
    "enrollment.created",
    "invitation.redeemed",
    "signing_key.rotated",
    "lookup.rate_limited",
];

/// The delays after each failed attempt, in seconds: after the last one the delivery is
/// `failed` (so a delivery gets `RETRY_DELAYS.len() + 1` attempts).
pub const RETRY_DELAYS: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// The delay before the next attempt once `attempts` attempts failed, or `None` when the
/// schedule is over (the delivery is then `failed`).
pub fn retry_delay(attempts: i32) -> Option<i64> {
    let n = usize::try_from(attempts).ok()?.checked_sub(1)?;
    RETRY_DELAYS.get(n).copied()
}

/// A webhook's event filter: explicit types, or `["*"]` for every type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    /// Checks a requested list: not empty, each a known type or `*` alone.
    pub fn parse(events: &[String]) -> Result<EventFilter, String> {
        if events.is_empty() {
            return Err("events must name at least one event type, or \"*\"".into());
        }
        if events.iter().any(|e| e == "*") {
            if events.len() > 1 {
                return Err("\"*\" stands alone in events".into());
            }
            return Ok(EventFilter(vec!["*".into()]));
        }
        let mut out: Vec<String> = Vec::new();
        for e in events {
            if !EVENT_TYPES.contains(&e.as_str()) {
                return Err(format!("unknown event type {e:?}"));
            }
            if !out.contains(e) {
                out.push(e.clone());
            }
        }
        Ok(EventFilter(out))
    }

    /// Whether an event of type `kind` goes to this webhook.
    pub fn takes(&self, kind: &str) -> bool {
        self.0.iter().any(|e| e == "*" || e == kind)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// A webhook target: an `http` or `https` URL with a host, no user info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(raw: &str) -> Result<Target, String> {
        let u = url::Url::parse(raw.trim()).map_err(|e| format!("url: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err("url: the scheme must be http or https".into());
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err("url: user information is not allowed".into());
        }
        let host = match u.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err("url: a host is required".into()),
        };
        let port = u
            .port_or_known_default()
            .ok_or("url: no port for this scheme")?;
        Ok(Target {
            url: u.to_string(),
            host,
            port,
        })
    }
}

/// Whether `ip` is an address on the public internet: not loopback, private (RFC 1918),
/// link-local, unique-local, shared (CGNAT), unspecified, multicast, broadcast, documentation
/// or otherwise reserved, looking through IPv4-mapped and IPv4-compatible IPv6 forms.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [b0, b1, b2, _] = a.octets();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || b0 == 0
        || (b0 == 100 && (64..128).contains(&b1)) // shared address space (CGNAT)
        || (b0 == 192 && b1 == 0 && b2 == 0) // IETF protocol assignments
        || (b0 == 198 && (18..20).contains(&b1)) // benchmarking
        || b0 >= 240) // reserved
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = a.segments();
    // IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
    // embed an IPv4 address: judge that one
    if s[..6] == [0, 0, 0, 0, 0, 0] && !a.is_loopback() && !a.is_unspecified() {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// The addresses a delivery may connect to: all of `resolved` must be public (one private
/// answer refuses the target: a name must not point at the inside at all), unless
/// `allow_private`. Refused: the reason.
pub fn check_addresses(resolved: &[IpAddr], allow_private: bool) -> Result<(), String> {
    if resolved.is_empty() {
        return Err("the host does not resolve".into());
    }
    if allow_private {
        return Ok(());
    }
    match resolved.iter().find(|ip| !is_public(**ip)) {
        Some(ip) => Err(format!(
            "the host resolves to {ip}, a loopback, private, link-local or other non-public address (allowed only with --webhooks-allow-private)"
        )),
        None => Ok(()),
    }
}

/// The content a Standard Webhooks signature covers: `id.timestamp.body`.
pub fn signed_content(id: &str, timestamp: i64, body: &str) -> String {
    format!("{id}.{timestamp}.{body}")
}

/// The prefix of a webhook secret's text.
pub const SECRET_PREFIX: &str = "whsec_";

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn inside_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip(a)), "{a}");
        }
        for a in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn one_inside_answer_refuses_the_name() {
        assert!(check_addresses(&[ip("1.1.1.1"), ip("10.0.0.1")], false).is_err());
        assert!(check_addresses(&[ip("10.0.0.1")], true).is_ok());
        assert!(check_addresses(&[], true).is_err());
    }

    #[test]
    fn the_schedule_has_seven_retries() {
        assert_eq!(retry_delay(0), None);
        assert_eq!(retry_delay(1), Some(5));
        assert_eq!(retry_delay(7), Some(36_000));
        assert_eq!(retry_delay(8), None);
    }

    #[test]
    fn filters_and_targets_are_checked() {
        assert!(
            EventFilter::parse(&["*".into()])
                .unwrap()
                .takes("key.issued")
        );
        assert!(EventFilter::parse(&["nope".into()]).is_err());
        assert!(EventFilter::parse(&[]).is_err());
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://u:p@x").is_err());
        let t = Target::parse("http://[::1]:8080/h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
    }
}
