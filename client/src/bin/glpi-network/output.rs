//! What the CLI prints: human text by default, exactly one JSON object on stdout with `--json`.

use chrono::{DateTime, SecondsFormat, Utc};
use glpi_network_client::{
    CachedInstance, Client, Enrollment, Error, LicenseStatus, State, Status,
};
use serde_json::{Value, json};
use std::path::Path;

/// The output mode and the command being run.
pub struct Out {
    pub json: bool,
    command: &'static str,
}

fn rfc3339(secs: i64) -> Value {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|d| Value::String(d.to_rfc3339_opts(SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

fn human(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// What to do about a server certificate the client does not trust.
pub const CA_HINT: &str = "if the server's certificate comes from a private certificate \
     authority, pass --ca-file PEM or set GLPI_NETWORK_CA_FILE";

/// Whether an error is about the server's certificate.
pub fn is_certificate_problem(e: &Error) -> bool {
    matches!(e, Error::Unreachable(m) if m.starts_with("TLS failed") && m.contains("certificate"))
}

/// A one-line explanation of a refusal.
fn explain(state: State) -> &'static str {
    use glpi_network_client::Reason::*;
    match state.reason() {
        Some(Expired) => "the key expired, or the cached token is past its offline grace",
        Some(Revoked) => "the key was revoked",
        Some(Suspended) => "the subscription is suspended",
        Some(InstanceMismatch) => {
            "the key is bound to another instance, or the cache is for another URL"
        }
        Some(ClockRollback) => "this machine's clock is well behind the server's time",
        Some(NotRegistered) => "the key is not registered to any instance",
        Some(KeyWithdrawn) => {
            "the server no longer publishes the key that signed the cached token: validate online"
        }
        _ => "the server refused this instance",
    }
}

impl Out {
    pub fn new(json: bool, command: &'static str) -> Self {
        Out { json, command }
    }

    fn emit(&self, v: Value) {
        println!("{v}");
    }

    /// A conclusion from register, validate or status.
    pub fn status(&self, client: &Client, st: &Status) {
        if self.json {
            let c = st.claims.as_ref();
            self.emit(json!({
                "command": self.command,
                "state": st.state.as_str(),
                "usable": st.is_usable(),
                "reason": st.state.reason().map(|r| r.as_str()),
                "server_status": c.map(|c| c.status.as_str()),
                "instance_url": c.and_then(|c| c.instance_url.clone()),
                "offer": c.map(|c| c.offer.clone()),
                "offer_title": c.map(|c| c.offer_title.clone()),
                "owner": c.map(|c| c.owner.clone()),
                "entitlements": st.entitlements(),
                "subscription_end": c.and_then(|c| c.subscription_end.clone()),
                "expires_at": c.map(|c| rfc3339(c.exp)).unwrap_or(Value::Null),
                "grace_until": c.map(|c| rfc3339(c.grace_until)).unwrap_or(Value::Null),
                "ver": c.map(|c| c.ver),
                "checked_at": rfc3339(st.checked_at),
                "offline_reason": st.offline_reason,
                "cache": client.cache_path().display().to_string(),
            }));
            return;
        }
        let headline = match st.state {
            State::Valid => "valid: the server confirmed this instance".to_owned(),
            State::Cached => "cached: the cached token is verified and current".to_owned(),
            State::Grace => "grace: running on the cached token for now".to_owned(),
            State::Refused(r) => format!("refused ({r}): {}", explain(st.state)),
            other => other.to_string(),
        };
        println!("{headline}");
        if let Some(why) = &st.offline_reason {
            println!("  server:       not used ({why})");
        }
        if let Some(c) = &st.claims {
            let url = c.instance_url.as_deref().unwrap_or("-");
            println!("  instance:     {url}");
            println!(
                "  offer:        {} ({}) for {}",
                c.offer_title, c.offer, c.owner
            );
            println!("  status:       {} (signed by the server)", c.status);
            if st.is_usable() {
                let ents = if c.entitlements.is_empty() {
                    "-".to_owned()
                } else {
                    c.entitlements.join(", ")
                };
                println!("  entitlements: {ents}");
                println!("  refresh by:   {}", human(c.exp));
                println!("  grace until:  {}", human(c.grace_until));
            }
        }
    }

    /// The binding was released.
    pub fn released(&self, client: &Client) {
        let cache = client.cache_path().display().to_string();
        if self.json {
            self.emit(json!({"command": self.command, "released": true, "cache": cache}));
        } else {
            println!("released: this instance's binding is gone and the cache {cache} deleted");
        }
    }

    /// A license's conclusion, from activate or validate.
    pub fn license(&self, st: &LicenseStatus) {
        if self.json {
            self.emit(json!({
                "command": self.command,
                "state": st.state.as_str(),
                "usable": st.is_usable(),
                "reason": st.state.reason().map(|r| r.as_str()),
                "server_status": st.status.map(|s| s.as_str()),
                "plugin": st.plugin(),
                "license_expires_at": st.expires_at().map(rfc3339),
                "grace_until": st.claims.as_ref().map(|c| rfc3339(c.grace_until)),
                "checked_at": rfc3339(st.checked_at),
                "offline_reason": st.offline_reason,
            }));
            return;
        }
        let plugin = st.plugin().unwrap_or("-");
        match st.state {
            State::Valid => println!("valid: the server confirmed the license of {plugin}"),
            State::Grace => println!("grace: running on the cached license token of {plugin}"),
            State::Refused(r) => println!("refused ({r}): the license of {plugin} may not be used"),
            other => println!("{other}"),
        }
        if let Some(why) = &st.offline_reason {
            println!("  server:       not used ({why})");
        }
        if let Some(s) = st.status {
            println!("  status:       {s} (signed by the server)");
        }
        if let Some(t) = st.expires_at() {
            println!("  expires:      {}", human(t));
        }
    }

    /// A license was released.
    pub fn license_released(&self, prefix: &str) {
        if self.json {
            self.emit(json!({"command": self.command, "released": true, "license": prefix}));
        } else {
            println!("released: the license {prefix} is free for another instance");
        }
    }

    /// An agent was enrolled.
    pub fn enrolled(&self, e: &Enrollment) {
        if self.json {
            self.emit(json!({
                "command": self.command,
                "enrolled": e.state.is_usable(),
                "state": e.state.as_str(),
                "reason": e.state.reason().map(|r| r.as_str()),
                "offline_reason": e.offline_reason,
                "created": e.created,
                "enrollment": {"id": e.id, "agent_id": e.agent_id, "entity": e.entity,
                               "enrolled_at": e.enrolled_at},
            }));
            return;
        }
        let how = match e.state {
            State::Grace => "grace: enrolled (from the cache)",
            State::Refused(_) => "refused: the cached enrollment is past its offline grace",
            _ if e.created => "enrolled",
            _ => "already enrolled",
        };
        println!("{how}: agent {} in entity {}", e.agent_id, e.entity);
        if let Some(why) = &e.offline_reason {
            println!("  server:       not used ({why})");
        }
        println!("  enrollment:   {} since {}", e.id, e.enrolled_at);
    }

    /// A failure and its exit code.
    pub fn error(&self, e: &Error, exit_code: u8) {
        let kind = match e {
            Error::Unreachable(_) => "unreachable",
            Error::Server { .. } => "server",
            Error::InvalidResponse(_) => "invalid_response",
            Error::Token(_) => "token",
            Error::StaleVersion { .. } => "stale_version",
            Error::Config(_) => "usage",
            Error::NotRegistered => "not_registered",
            Error::Cache { .. } => "cache",
            _ => "other",
        };
        if self.json {
            self.emit(json!({
                "command": self.command,
                "state": "error",
                "usable": false,
                "error": {
                    "kind": kind,
                    "message": e.to_string(),
                    "status": e.status(),
                    "code": e.code().map(|c| c.as_str()),
                },
                "exit_code": exit_code,
            }));
        } else {
            eprintln!("error: {e}");
            if let Error::NotRegistered = e {
                eprintln!("hint: glpi-network register KEY --url URL --server URL");
            }
            if is_certificate_problem(e) {
                eprintln!("hint: {CA_HINT}");
            }
        }
    }

    /// Several instances are cached and the command did not say which: exit 2, listing them.
    pub fn ambiguous(&self, dir: &Path, known: &[CachedInstance]) {
        let message = format!(
            "{} instances are cached in {}: pick one with --url",
            known.len(),
            dir.display()
        );
        if self.json {
            self.emit(json!({
                "command": self.command,
                "state": "error",
                "usable": false,
                "error": {
                    "kind": "usage",
                    "message": message,
                    "status": null,
                    "code": null,
                    "instances": known.iter().map(|c| &c.instance_url).collect::<Vec<_>>(),
                },
                "exit_code": crate::EXIT_USAGE,
            }));
        } else {
            eprintln!("error: {message}");
            for c in known {
                eprintln!("  {}  (server {})", c.instance_url, c.server_url);
            }
        }
    }

    /// One check of `test`.
    pub fn check_line(&self, ok: Option<bool>, name: &str, detail: &str) {
        if !self.json {
            let tag = match ok {
                Some(true) => "ok  ",
                Some(false) => "FAIL",
                None => "skip",
            };
            println!("{tag}  {name:<6} {detail}");
        }
    }

    /// The JSON object of `test`.
    pub fn checks(&self, ok: bool, checks: Vec<Value>, exit_code: u8) {
        if self.json {
            self.emit(json!({
                "command": self.command,
                "ok": ok,
                "checks": checks,
                "exit_code": exit_code,
            }));
        }
    }
}
