//! `glpi-network test`: is the service usable from here? Ping, JWKS, TLS and clock skew, one
//! line per check. Exit 0 when every check passes, 3 when the service cannot be reached (a
//! server certificate that is not trusted included: no trusted connection can be made), 1
//! when it answers wrongly.

use crate::output::{CA_HINT, Out, is_certificate_problem};
use crate::spinner::Spinner;
use crate::{EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE};
use glpi_network_client::{Client, Error};
use serde_json::{Value, json};

/// The largest clock difference with the server's `Date` that passes.
const MAX_SKEW_SECS: i64 = 60;

struct Checks<'a> {
    out: &'a Out,
    list: Vec<Value>,
    exit: u8,
}

impl Checks<'_> {
    fn add(&mut self, name: &str, ok: Option<bool>, detail: String, on_fail: u8) {
        self.out.check_line(ok, name, &detail);
        let result = match ok {
            Some(true) => "ok",
            Some(false) => "fail",
            None => "skip",
        };
        self.list
            .push(json!({"name": name, "result": result, "detail": detail}));
        if ok == Some(false) {
            self.exit = self.exit.max(on_fail);
        }
    }
}

/// Whether an error is about TLS (certificate, handshake) rather than reachability.
fn is_tls(e: &Error) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    ["tls", "certificate", "handshake"]
        .iter()
        .any(|w| m.contains(w))
}

fn fail_code(e: &Error) -> u8 {
    if is_certificate_problem(e)
        || e.is_unavailable() && !is_tls(e) && !matches!(e, Error::InvalidResponse(_))
    {
        EXIT_UNREACHABLE
    } else {
        EXIT_REFUSED
    }
}

pub fn run(client: &Client, out: &Out) -> u8 {
    let Some(server) = client.server_url() else {
        let e = Error::Config("no server URL: pass --server URL or set GLPI_NETWORK_SERVER".into());
        out.error(&e, crate::EXIT_USAGE);
        return crate::EXIT_USAGE;
    };
    let https = server.starts_with("https://");
    let mut c = Checks {
        out,
        list: Vec::new(),
        exit: EXIT_OK,
    };
    let ping = {
        let _s = Spinner::start(format!("testing {server}"));
        client.ping()
    };
    let mut certificate = None;
    let ping = match ping {
        Ok(p) => {
            let ms = p.elapsed.as_millis();
            c.add(
                "ping",
                Some(true),
                format!("{server}/healthz answered in {ms} ms"),
                EXIT_OK,
            );
            Some(p)
        }
        Err(e) => {
            if let Error::Unreachable(m) = &e
                && is_certificate_problem(&e)
            {
                certificate = Some(m.trim_start_matches("TLS failed: ").to_owned());
            }
            c.add(
                "ping",
                Some(false),
                format!("{server}/healthz: {e}"),
                fail_code(&e),
            );
            None
        }
    };
    if c.exit == EXIT_UNREACHABLE {
        for name in ["jwks", "tls", "clock"] {
            if let (Some(why), "tls") = (&certificate, name) {
                let detail = format!("the server's certificate is not trusted: {why}; {CA_HINT}");
                c.add(name, Some(false), detail, EXIT_UNREACHABLE);
                continue;
            }
            c.add(
                name,
                None,
                "not tried: the service cannot be reached".into(),
                EXIT_OK,
            );
        }
        out.checks(false, c.list, c.exit);
        return c.exit;
    }
    match client.fetch_jwks() {
        Ok(set) => {
            let kids: Vec<&str> = set
                .keys
                .iter()
                .filter_map(|k| k.common.key_id.as_deref())
                .collect();
            let detail = format!("{} Ed25519 key(s), kid {}", kids.len(), kids.join(", "));
            c.add("jwks", Some(true), detail, EXIT_OK);
        }
        Err(e) => c.add("jwks", Some(false), e.to_string(), fail_code(&e)),
    }
    if !https {
        let detail = "not used: the server URL is http://, so nothing is encrypted".to_owned();
        c.add("tls", None, detail, EXIT_OK);
    } else if ping.is_some() {
        let detail = "certificate chain and host name verified".to_owned();
        c.add("tls", Some(true), detail, EXIT_OK);
    } else {
        c.add(
            "tls",
            Some(false),
            "no verified TLS connection (see ping)".into(),
            EXIT_REFUSED,
        );
    }
    match ping.as_ref().map(|p| p.server_date) {
        Some(Some(date)) => {
            let skew = client.now() - date;
            let detail =
                format!("{skew:+} s from the server's Date header (at most ±{MAX_SKEW_SECS} s)");
            c.add(
                "clock",
                Some(skew.abs() <= MAX_SKEW_SECS),
                detail,
                EXIT_REFUSED,
            );
        }
        Some(None) => c.add(
            "clock",
            Some(false),
            "the server sent no Date header".into(),
            EXIT_REFUSED,
        ),
        None => c.add(
            "clock",
            None,
            "not tried: no answer to ping".into(),
            EXIT_OK,
        ),
    }
    out.checks(c.exit == EXIT_OK, c.list, c.exit);
    c.exit
}
