//! Web sessions, CSRF tokens and password hashes.
//!
//! - A session is a random 256-bit token in an `HttpOnly`, `SameSite=Strict`, `Path=/`
//!   cookie (`Secure` when the public URL is https); the database keeps only its SHA-256.
//! - Every form that changes something carries `csrf_token`: SHA-256 of a purpose and the
//!   session token (signed in) or of a random pre-session cookie (sign-up and login forms).
//!   Neither cookie can be read by script or sent cross-site, so another site cannot know or
//!   use the token; it is compared in constant time.
//! - Passwords are hashed with Argon2id (the `argon2` crate's defaults) and a random salt.

use crate::app::AppState;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use ring::rand::{SecureRandom, SystemRandom};

/// The subscriber portal's session cookie.
pub const PORTAL_COOKIE: &str = "gn_portal";
/// The vendor console's session cookie.
pub const CONSOLE_COOKIE: &str = "gn_console";
/// The pre-session cookie the sign-up and login forms' CSRF tokens are bound to.
pub const PRE_COOKIE: &str = "gn_pre";
/// How long a portal session lasts.
pub const PORTAL_SESSION_HOURS: i64 = 24;
/// How long a console session lasts.
pub const CONSOLE_SESSION_HOURS: i64 = 8;

/// 256 random bits, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .expect("system random generator failed");
    hex::encode(b)
}

/// SHA-256, hex.
pub fn sha256_hex(data: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data.as_bytes()))
}

/// Equality whose time does not depend on where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which cookie a CSRF token is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Binding {
    Pre,
    Portal,
    Console,
}

impl Binding {
    fn purpose(self) -> &'static str {
        match self {
            Binding::Pre => "csrf-pre:",
            Binding::Portal => "csrf-portal:",
            Binding::Console => "csrf-console:",
        }
    }
    fn cookie(self) -> &'static str {
        match self {
            Binding::Pre => PRE_COOKIE,
            Binding::Portal => PORTAL_COOKIE,
            Binding::Console => CONSOLE_COOKIE,
        }
    }
}

/// The CSRF token for forms bound to the cookie value `secret`.
pub fn csrf_for(binding: Binding, secret: &str) -> String {
    sha256_hex(&format!("{}{secret}", binding.purpose()))
}

/// Whether the form's token matches the request's cookie of `binding`.
pub fn csrf_ok(req: &HttpRequest, binding: Binding, presented: &str) -> bool {
    match req.cookie(binding.cookie()) {
        Some(c) if !c.value().is_empty() => ct_eq(
            csrf_for(binding, c.value()).as_bytes(),
            presented.as_bytes(),
        ),
        _ => false,
    }
}

/// A cookie with the flags every cookie of the portal carries.
pub fn cookie(state: &AppState, name: &'static str, value: String, hours: i64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.public_url.starts_with("https://"))
        .max_age(CookieAge::hours(hours))
        .finish()
}

/// A cookie that removes `name`.
pub fn removal(state: &AppState, name: &'static str) -> Cookie<'static> {
    let mut c = cookie(state, name, String::new(), 0);
    c.make_removal();
    c
}

/// The pre-session cookie's value, and the cookie to set when the request had none.
pub fn pre_session(state: &AppState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match req.cookie(PRE_COOKIE) {
        Some(c) if c.value().len() == 64 => (c.value().to_owned(), None),
        _ => {
            let v = random_token();
            (v.clone(), Some(cookie(state, PRE_COOKIE, v, 24)))
        }
    }
}

/// An Argon2id PHC string for a password.
pub fn hash_password(pw: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
    let hash = argon2::Argon2::default()
        .hash_password_with_salt(pw.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `pw` matches a stored PHC string.
pub fn verify_password(pw: &str, phc: &str) -> bool {
    argon2::Argon2::default()
        .verify_password(pw.as_bytes(), phc)
        .is_ok()
}

/// Spends the time of one password check (for an unknown email, so that its answer takes as
/// long as a wrong password's).
pub fn spend_password_time(pw: &str) {
    let _ = hash_password(pw);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn csrf_tokens_differ_by_purpose_and_compare_exactly() {
        let s = random_token();
        assert_ne!(csrf_for(Binding::Pre, &s), csrf_for(Binding::Portal, &s));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab"));
    }
}
