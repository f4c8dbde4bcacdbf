//! The canonical form of a GLPI instance URL.
//!
//! http or https only; scheme and host lower-cased; IDN hosts in punycode; the default port
//! dropped; a trailing `.` of the host dropped; percent-encoded unreserved characters decoded
//! (`%7E` -> `~`) and other escapes upper-cased (a `%` that starts no escape becomes `%25`); dot
//! segments removed (RFC 3986 §6.2.2); trailing `/` and a trailing `/index.php` dropped;
//! userinfo, query and fragment refused. `https://GLPI.example.com:443/glpi/`,
//! `https://glpi.example.com./%67lpi` and `https://glpi.example.com/glpi` are the same
//! instance.

use std::fmt;

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why an instance URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("not a valid URL: {0}")]
    Malformed(String),
    /// Longer than [`MAX_URL_LEN`], as received or once canonical (percent-encoding can make
    /// the canonical form up to three times longer than the input).
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    /// A scheme other than http or https.
    #[error("only http and https URLs are accepted, not {0}")]
    Scheme(String),
    /// Carries a user name or password.
    #[error("the URL must not carry a user name or password")]
    Userinfo,
    /// Carries a query string.
    #[error("the URL must not carry a query string")]
    Query,
    /// Carries a fragment.
    #[error("the URL must not carry a fragment")]
    Fragment,
    /// Has no host.
    #[error("the URL has no host")]
    NoHost,
}

/// A canonical instance URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceUrl(String);

impl InstanceUrl {
    /// Parses and canonicalises an instance URL.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        if raw.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let u = url::Url::parse(raw).map_err(|e| UrlError::Malformed(e.to_string()))?;
        match u.scheme() {
            "http" | "https" => {}
            other => return Err(UrlError::Scheme(other.to_owned())),
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(UrlError::Userinfo);
        }
        if u.query().is_some() {
            return Err(UrlError::Query);
        }
        if u.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        // `example.com.` is the fully qualified spelling of `example.com`.
        let full = u.host_str().ok_or(UrlError::NoHost)?;
        let host = full.trim_end_matches('.');
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        if host.len() != full.len() {
            // Without its trailing dots a host must still be the same host: `a.3..` is a domain
            // but `a.3` would be read as an (invalid) IPv4 address.
            let again = url::Url::parse(&format!("{}://{host}/", u.scheme()))
                .map_err(|e| UrlError::Malformed(e.to_string()))?;
            if again.host_str() != Some(host) {
                return Err(UrlError::Malformed(format!(
                    "the host {full} is not the same without its trailing dots"
                )));
            }
        }
        // The parser has already removed dot segments (`.`, `..`, and their `%2e` spellings),
        // so decoding escapes afterwards cannot bring one back (`.` stays a plain character only
        // inside a longer segment).
        let normalised = normalise_escapes(u.path());
        let mut path = normalised.trim_end_matches('/');
        while let Some(p) = path.strip_suffix("/index.php") {
            path = p.trim_end_matches('/');
        }
        let mut out = format!("{}://{}", u.scheme(), host);
        if let Some(port) = u.port() {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(path);
        // Checked again on the result, so every canonical form parses back to itself.
        if out.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Ok(InstanceUrl(out))
    }

    /// The canonical string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the URL into its canonical string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Whether `b` is an unreserved character (RFC 3986 §2.3).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes the escapes of unreserved characters (`%7E` -> `~`), upper-cases the other escapes
/// (`%2f` -> `%2F`) and encodes a `%` that starts no escape as `%25` (so that decoding can
/// never assemble a new escape: the result is a fixed point).
fn normalise_escapes(path: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            // `path` is UTF-8 and only ASCII bytes are handled specially, so copying up to
            // the next `%` keeps whole characters.
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'%')
                .map_or(bytes.len(), |p| i + p);
            out.push_str(&path[i..end]);
            i = end;
            continue;
        }
        match (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (Some(h), Some(l)) => {
                let b = h << 4 | l;
                if is_unreserved(b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
                i += 3;
            }
            _ => {
                out.push_str("%25");
                i += 1;
            }
        }
    }
    out
}

impl fmt::Display for InstanceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(s: &str) -> String {
        InstanceUrl::parse(s).unwrap().into_string()
    }

    #[test]
    fn equivalent_spellings_agree() {
        let c = "https://glpi.example.com/glpi";
        for s in [
            "https://GLPI.example.com:443/glpi/",
            "https://glpi.example.com/glpi",
            "HTTPS://glpi.EXAMPLE.com/glpi/index.php",
            "https://glpi.example.com/glpi//",
            "  https://glpi.example.com/glpi/index.php/ ",
            "https://glpi.example.com/x/../glpi",
            "https://glpi.example.com/glpi/index.php/index.php",
        ] {
            assert_eq!(canon(s), c, "{s}");
        }
        assert_eq!(canon("http://Example.COM:80/"), "http://example.com");
        assert_eq!(canon("http://example.com:8080/"), "http://example.com:8080");
        assert_eq!(
            canon("https://bücher.example/glpi"),
            "https://xn--bcher-kva.example/glpi"
        );
        assert_eq!(canon("http://[::1]:8080/glpi/"), "http://[::1]:8080/glpi");
    }

    /// Issue 14 #8: these aliases bound twice (one key, two registrations).
    #[test]
    fn trailing_dot_escapes_and_dot_segments_are_one_instance() {
        let c = "https://glpi.example.com/glpi";
        for s in [
            "https://glpi.example.com./glpi",
            "https://glpi.example.com./%67lpi",
            "https://glpi.example.com/%67%6C%70%69/",
            "https://glpi.example.com/%67%6c%70%69/index%2Ephp",
            "https://GLPI.example.com.:443/./glpi/a/../",
            "https://glpi.example.com/glpi/%2E/",
            "https://glpi.example.com/x/%2e%2E/glpi",
        ] {
            assert_eq!(canon(s), c, "{s}");
        }
        assert_eq!(canon("https://h/%7Euser"), "https://h/~user");
        assert_eq!(canon("https://h/~user"), "https://h/~user");
        assert_eq!(canon("https://h/a%2fb"), "https://h/a%2Fb");
        assert_eq!(canon("https://h/a%2Fb"), "https://h/a%2Fb");
        assert_ne!(canon("https://h/a%2Fb"), canon("https://h/a/b"));
        assert_eq!(canon("https://h/a%zz"), "https://h/a%25zz");
        assert_eq!(canon("https://h/a%25zz"), "https://h/a%25zz");
        // decoding never assembles a new escape
        assert_eq!(canon("https://h/%%34%31"), "https://h/%2541");
        assert_eq!(canon("https://1.2.3.4./x"), "https://1.2.3.4/x");
        assert_eq!(InstanceUrl::parse("https://./x"), Err(UrlError::NoHost));
    }

    /// Found by the `url_canonicalise` fuzz target: dropping the trailing dots of this host
    /// left a last label that is a number, so the canonical form read as an invalid IPv4
    /// address and did not parse back.
    #[test]
    fn fuzz_regression_a_host_that_changes_without_its_trailing_dots_is_refused() {
        let raw = "http:p..,..........................................3.........//inhp\0\u{e}";
        assert!(matches!(
            InstanceUrl::parse(raw),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            InstanceUrl::parse("http://a.3../x"),
            Err(UrlError::Malformed(_))
        ));
        assert_eq!(canon("http://a.b../x"), "http://a.b/x");
    }

    #[test]
    fn paths_keep_their_case_and_ports_matter() {
        assert_ne!(canon("https://h/GLPI"), canon("https://h/glpi"));
        assert_ne!(canon("https://h:8443/glpi"), canon("https://h/glpi"));
        assert_ne!(canon("http://h/glpi"), canon("https://h/glpi"));
    }

    #[test]
    fn bad_urls_are_refused_precisely() {
        assert!(matches!(
            InstanceUrl::parse("glpi.example.com"),
            Err(UrlError::Malformed(_))
        ));
        assert_eq!(
            InstanceUrl::parse("ftp://h/x"),
            Err(UrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            InstanceUrl::parse("https://u:p@h/x"),
            Err(UrlError::Userinfo)
        );
        assert_eq!(InstanceUrl::parse("https://u@h/x"), Err(UrlError::Userinfo));
        assert_eq!(InstanceUrl::parse("https://h/x?a=1"), Err(UrlError::Query));
        assert_eq!(InstanceUrl::parse("https://h/x?"), Err(UrlError::Query));
        assert_eq!(
            InstanceUrl::parse("https://h/x#top"),
            Err(UrlError::Fragment)
        );
        assert_eq!(
            InstanceUrl::parse(&format!("https://h/{}", "a".repeat(3000))),
            Err(UrlError::TooLong)
        );
        assert!(InstanceUrl::parse("").is_err());
        assert!(InstanceUrl::parse("https://").is_err());
    }

    /// A host label with the IDNA prefix that is not valid Punycode is refused, never kept.
    #[test]
    fn punycode_prefix_labels_are_checked() {
        assert!(matches!(
            InstanceUrl::parse("http://xN--"),
            Err(UrlError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn canonicalisation_is_idempotent(
            scheme in "(http|https|HTTP|HttpS)",
            host in "[a-zA-Z][a-zA-Z0-9-]{0,10}(\\.[a-zA-Z]{2,5}){0,2}",
            port in proptest::option::of(1u16..),
            path in "(/[a-zA-Z0-9_.~-]{0,8}){0,4}(/index\\.php)?/{0,2}",
        ) {
            // a label with the IDNA prefix `xn--` must be valid Punycode, which the generator
            // does not make: such hosts are refused (`punycode_prefix_labels_are_checked`)
            prop_assume!(!host.split('.').any(|l| l.to_ascii_lowercase().starts_with("xn--")));
            let raw = match port {
                Some(p) => format!("{scheme}://{host}:{p}{path}"),
                None => format!("{scheme}://{host}{path}"),
            };
            let once = InstanceUrl::parse(&raw).unwrap();
            let twice = InstanceUrl::parse(once.as_str()).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert!(!once.as_str().ends_with('/'));
            prop_assert!(!once.as_str().ends_with("/index.php"));
            prop_assert_eq!(once.as_str(), once.as_str().to_string());
        }

        #[test]
        fn host_case_default_port_and_trailing_slash_do_not_matter(
            host in "[a-z][a-z0-9]{0,10}\\.[a-z]{2,4}",
            path in "(/[a-z0-9]{1,8}){0,3}",
        ) {
            let a = InstanceUrl::parse(&format!("https://{host}{path}")).unwrap();
            let b = InstanceUrl::parse(&format!("HTTPS://{}:443{path}/", host.to_uppercase())).unwrap();
            let c = InstanceUrl::parse(&format!("https://{host}{path}/index.php")).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(&a, &c);
        }

        /// Every alias of one instance (host case, default port, trailing dot of the host,
        /// escapes of unreserved characters in either case, dot segments, trailing slashes,
        /// `/index.php`) has one canonical form, and that form is a fixed point.
        #[test]
        fn every_alias_maps_to_one_form(
            https in any::<bool>(),
            labels in proptest::collection::vec("[a-z][a-z0-9-]{0,6}[a-z0-9]", 1..4),
            port in proptest::option::of(1u16..),
            segments in proptest::collection::vec("[a-zA-Z0-9._~-]{1,8}|%2[fF]|%40", 0..4),
            spell in proptest::collection::vec(any::<u8>(), 48),
        ) {
            let scheme = if https { "https" } else { "http" };
            prop_assume!(labels.iter().all(|l| !l.starts_with("xn--")));
            let host = labels.join(".");
            // dot-only segments mean something else (removed), and so does `index.php` last
            prop_assume!(segments.iter().all(|s| s != "." && s != ".."));
            prop_assume!(segments.last().is_none_or(|s| s != "index.php"));
            let plain: String = segments.iter().map(|s| format!("/{s}")).collect();
            let base = match port {
                Some(p) => format!("{scheme}://{host}:{p}{plain}"),
                None => format!("{scheme}://{host}{plain}"),
            };
            let canonical = InstanceUrl::parse(&base).unwrap();
            prop_assert_eq!(InstanceUrl::parse(canonical.as_str()), Ok(canonical.clone()));

            let mut draws = spell.iter().copied().cycle();
            let mut draw = || draws.next().unwrap();
            let scheme_s = if draw() % 2 == 0 { scheme.to_uppercase() } else { scheme.to_owned() };
            let host_s: String = host
                .chars()
                .map(|c| if draw() % 2 == 0 { c.to_ascii_uppercase() } else { c })
                .collect();
            let dot = if draw() % 2 == 0 { "." } else { "" };
            let port_s = match port {
                Some(p) => format!(":{p}"),
                None if draw() % 2 == 0 => (if https { ":443" } else { ":80" }).to_owned(),
                None => String::new(),
            };
            let mut path = String::new();
            for seg in &segments {
                match draw() % 4 {
                    0 => path.push_str("/."),
                    1 => path.push_str("/zz/.."),
                    2 => path.push_str("/%2e/x/%2E%2e"),
                    _ => {}
                }
                path.push('/');
                if seg.starts_with('%') {
                    // an escape of a reserved character, in either case
                    path.push_str(&if draw() % 2 == 0 { seg.to_lowercase() } else { seg.to_uppercase() });
                    continue;
                }
                for b in seg.bytes() {
                    match draw() % 3 {
                        0 => path.push_str(&format!("%{b:02x}")),
                        1 => path.push_str(&format!("%{b:02X}")),
                        _ => path.push(b as char),
                    }
                }
            }
            match draw() % 4 {
                0 => path.push('/'),
                1 => path.push_str("/index.php"),
                2 => path.push_str("/index%2Ephp/"),
                _ => {}
            }
            let alias = format!("{scheme_s}://{host_s}{dot}{port_s}{path}");
            prop_assert_eq!(InstanceUrl::parse(&alias), Ok(canonical), "{}", alias);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,64}") {
            let _ = InstanceUrl::parse(&s);
        }

        #[test]
        fn any_accepted_text_canonicalises_to_a_fixed_point_within_the_limit(
            head in "(?i)https?://[a-z0-9.-]{1,12}(:[0-9]{1,5})?",
            tail in "\\PC{0,900}",
        ) {
            if let Ok(once) = InstanceUrl::parse(&format!("{head}/{tail}")) {
                prop_assert!(once.as_str().len() <= MAX_URL_LEN);
                prop_assert_eq!(InstanceUrl::parse(once.as_str()), Ok(once.clone()));
            }
        }
    }

    /// The input the `url_canonicalise` fuzz target found (minimised): 263 bytes, not UTF-8,
    /// read lossily as the target does. Each invalid byte becomes U+FFFD, which the path
    /// percent-encodes to nine characters, so the canonical form outgrew `MAX_URL_LEN` and
    /// `parse(canonical)` refused it.
    #[test]
    fn fuzz_regression_canonical_form_longer_than_the_limit_is_refused() {
        let runs: &[(&[u8], usize)] = &[
            (b"HTTPS:0Xsa/0elerTPS:0Xc", 1),
            (b"\xd5", 26),
            (b"\x8c", 37),
            (b"\xd5", 40),
            (b"a/D", 1),
            (b"\xd5", 25),
            (b"a/D", 1),
            (b"\x8c", 33),
            (b"\xd5", 35),
            (b"a/D", 1),
            (b"\xd5", 4),
            (b"a/D", 1),
            (b"\xd5", 25),
            (b"a/D", 1),
        ];
        let bytes: Vec<u8> = runs.iter().flat_map(|(b, n)| b.repeat(*n)).collect();
        assert_eq!(bytes.len(), 263);
        let raw = String::from_utf8_lossy(&bytes);
        assert!(raw.len() <= MAX_URL_LEN);
        assert_eq!(InstanceUrl::parse(&raw), Err(UrlError::TooLong));

        // the same in readable form: 730 bytes in, 2170 once percent-encoded
        let raw = format!("https://h/{}", "\u{FFFD}".repeat(240));
        assert_eq!(InstanceUrl::parse(&raw), Err(UrlError::TooLong));
        let fits = format!("https://h/{}", "\u{e9}".repeat(300));
        let c = InstanceUrl::parse(&fits).unwrap();
        assert_eq!(c.as_str().len(), 10 + 300 * 6);
        assert_eq!(InstanceUrl::parse(c.as_str()), Ok(c));
    }
}
