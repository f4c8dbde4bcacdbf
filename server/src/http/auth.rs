//! The admin bearer token: generated on first start (or configured), compared in constant time.
//! Handlers that take an [`AdminAuth`] argument require it.

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::signing::secret::read_or_create_secret;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures::future::LocalBoxFuture;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::future::ready;
use std::path::Path;

/// Holds only an HMAC tag of the admin token, so verification is `hmac::verify` (constant
/// time) and the token itself is not kept in memory.
#[derive(Clone)]
pub struct AdminSecret {
    key: hmac::Key,
    tag: Vec<u8>,
}

impl std::fmt::Debug for AdminSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminSecret(<redacted>)")
    }
}

impl AdminSecret {
    pub fn new(token: &str) -> Self {
        let rng = SystemRandom::new();
        let key =
            hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system random generator failed");
        let tag = hmac::sign(&key, token.as_bytes()).as_ref().to_vec();
        AdminSecret { key, tag }
    }

    /// Constant-time check of a presented token.
    pub fn verify(&self, presented: &str) -> bool {
        hmac::verify(&self.key, presented.as_bytes(), &self.tag).is_ok()
    }
}

/// The admin token to use: the configured one, or the one in `<data-dir>/admin-token`,
/// created (mode 0600) with 256 random bits on first start. Returns the token and whether it
/// was just generated.
pub fn load_or_create_admin_token(
    configured: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, bool)> {
    if let Some(t) = configured.map(str::trim).filter(|t| !t.is_empty()) {
        if t.len() < 16 {
            anyhow::bail!("the admin token must be at least 16 characters");
        }
        return Ok((t.to_owned(), false));
    }
    let path = data_dir.join("admin-token");
    let (token, created) = read_or_create_secret(&path, || {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
        Ok(hex::encode(bytes))
    })?;
    if token.is_empty() {
        anyhow::bail!(
            "{} is empty; delete it to generate a new token",
            path.display()
        );
    }
    Ok((token, created))
}

/// A failed admin login: counted in the database against the client's failed look-up
/// allowance, shared by every process (`429` once over it), and audited while under it, so a
/// flood cannot flood the audit trail.
async fn refuse(state: web::Data<AppState>, req: HttpRequest) -> ApiError {
    let addr = crate::http::client_addr(&req).unwrap_or_else(|| "unknown".into());
    let counted =
        crate::http::lookup::count(&state, crate::db::limits::Limit::FailedLookup, &addr).await;
    if let Err(e) = counted {
        return e;
    }
    let mut ev = crate::db::audit::Actor::new("admin", Some(addr)).event(
        "admin.login",
        "unauthorized",
        state.clock.now_naive(),
    );
    ev.detail = Some(format!("{} {}", req.method(), req.path()));
    if let Err(e) = crate::http::run(&state.db, move |c| crate::db::audit::record(c, &ev)).await {
        tracing::error!(error = %e, "could not record a failed admin login");
    }
    ApiError::unauthorized()
}

/// Extractor: present in a handler's arguments means "admin only".
#[derive(Debug)]
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Box::pin(ready(Err(ApiError::internal(anyhow::anyhow!(
                "no app state"
            )))));
        };
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        if presented.is_some_and(|t| state.admin.verify(t)) {
            return Box::pin(ready(Ok(AdminAuth)));
        }
        let req = req.clone();
        Box::pin(async move { Err(refuse(state, req).await) })
    }
}

/// Middleware of every routed resource: under `/v1/admin/`, a request without the admin token
/// is refused with `401` before its path, query or body is read (DESIGN §4.2: `401` without
/// it), so a malformed body never tells an unauthenticated client `400` first.
pub async fn gate<B: actix_web::body::MessageBody>(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    if req.path().starts_with("/v1/admin/")
        && let Err(e) = AdminAuth::from_request(req.request(), &mut Payload::None).await
    {
        let resp = actix_web::ResponseError::error_response(&e);
        return Ok(req.into_response(resp).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
