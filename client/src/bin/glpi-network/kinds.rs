//! `glpi-network license activate|validate|release KEY` and `glpi-network enroll KEY`.

use crate::output::Out;
use crate::spinner::Spinner;
use crate::{EXIT_OK, EXIT_REFUSED, LicenseAction, failed};
use glpi_network_client::{Client, Error, KeyKind, LicenseStatus, parse_kind_key};

/// Runs a license command: exit 0 when the license may be used, 1 refused, 2 usage, 3 the
/// server unreachable with nothing usable cached.
pub fn license(client: &Client, out: &Out, action: &LicenseAction) -> u8 {
    let raw = match action {
        LicenseAction::Activate { license_key }
        | LicenseAction::Validate { license_key }
        | LicenseAction::Release { license_key } => license_key,
    };
    let key = match parse_kind_key(raw, KeyKind::License) {
        Ok(k) => k,
        Err(e) => return failed(out, &e),
    };
    let server = client.server_url().unwrap_or_default();
    let _s = Spinner::start(format!("asking {server}"));
    let r = match action {
        LicenseAction::Activate { .. } => client.activate_license(&key),
        LicenseAction::Validate { .. } => client.validate_license(&key),
        LicenseAction::Release { .. } => {
            return match client.release_license(&key) {
                Ok(()) => {
                    out.license_released(&key.display_prefix());
                    EXIT_OK
                }
                Err(e) => failed(out, &e),
            };
        }
    };
    drop(_s);
    report(out, r)
}

fn report(out: &Out, r: Result<LicenseStatus, Error>) -> u8 {
    match r {
        Ok(st) => {
            out.license(&st);
            if st.is_usable() {
                EXIT_OK
            } else {
                EXIT_REFUSED
            }
        }
        Err(e) => failed(out, &e),
    }
}

/// Enrolls an agent: exit 0 enrolled, 1 refused (revoked, expired, exhausted), 2 usage, 3
/// unreachable.
pub fn enroll(client: &Client, out: &Out, raw: &str, agent_id: &str, hostname: Option<&str>) -> u8 {
    let key = match parse_kind_key(raw, KeyKind::Enrollment) {
        Ok(k) => k,
        Err(e) => return failed(out, &e),
    };
    let server = client.server_url().unwrap_or_default();
    let r = {
        let _s = Spinner::start(format!("enrolling with {server}"));
        client.enroll(&key, agent_id, hostname)
    };
    match r {
        Ok(e) => {
            out.enrolled(&e);
            if e.state.is_usable() {
                EXIT_OK
            } else {
                EXIT_REFUSED
            }
        }
        Err(e) => failed(out, &e),
    }
}
