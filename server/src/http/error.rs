//! `ApiError`: the one place where failures become HTTP statuses and the error envelope.
//! Internal errors answer an opaque `500` and are logged with their full cause chain.

use crate::db;
use crate::domain::Invalid;
use crate::domain::binding::BindRefusal;
use crate::domain::key::KeyRefusal;
use crate::domain::kind::UseRefusal;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, error::JsonPayloadError};
use glpi_network_shared::{ErrorCode, ErrorEnvelope, KeyFormatError, UrlError};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client-side error with its status, stable code and message.
    #[error("{code}: {message}")]
    Client {
        status: StatusCode,
        code: ErrorCode,
        message: String,
    },
    /// Over a rate limit: `429` with `Retry-After` and `RateLimit-*` headers.
    #[error("rate_limited: retry after {retry_after} s")]
    RateLimited { retry_after: u64, limit: u32 },
    /// The database cannot be reached for now: `503 unavailable` with `Retry-After` (the
    /// client may retry); logged.
    #[error("unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// A server-side failure: logged, answered as an opaque `500`.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn key_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::KeyNotFound,
            "unknown registration key",
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a valid admin token is required (Authorization: Bearer <token>)",
        )
    }
    /// `503`: the server cannot answer now (code `internal`: GLPI does not cache it).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            message,
        )
    }
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            message,
        )
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            message,
        )
    }
    /// `401` for a missing or unusable registration key (marketplace).
    pub fn key_required(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }
    /// A server-side failure; `503 unavailable` when it is (or was caused by) the database
    /// being unreachable.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        let e = e.into();
        if matches!(e.downcast_ref::<ApiError>(), Some(ApiError::Unavailable(_)))
            || crate::db::outage::is_outage(e.as_ref())
        {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e)
        }
    }

    /// Prefixes a client error's message with `what` (the entry of a batch that failed);
    /// other errors pass through unchanged.
    pub fn context(self, what: &str) -> Self {
        match self {
            ApiError::Client {
                status,
                code,
                message,
            } => ApiError::Client {
                status,
                code,
                message: format!("{what}: {message}"),
            },
            other => other,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Client { code, .. } => *code,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<db::Error> for ApiError {
    fn from(e: db::Error) -> Self {
        use db::Error as E;
        match e {
            E::NotFound(message) => ApiError::not_found(message),
            E::UnknownKey => ApiError::key_not_found(),
            E::Conflict(message) => ApiError::conflict(ErrorCode::Conflict, message),
            E::Invalid(i) => i.into(),
            E::Key(r) => r.into(),
            E::UnknownKeyOf(kind) => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::KeyNotFound,
                format!("unknown {}", kind.noun()),
            ),
            E::Use(r) => r.into(),
            E::Bind(r) => r.into(),
            E::Cancelled(c) => ApiError::conflict(ErrorCode::Conflict, c.to_string()),
            E::In { what, source } => ApiError::from(*source).context(&what),
            E::Diesel(e) => ApiError::internal(e),
            E::Pool(e) => ApiError::internal(e),
            E::Other(e) => ApiError::Internal(e),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::bad_request(e.0)
    }
}

impl From<KeyRefusal> for ApiError {
    fn from(r: KeyRefusal) -> Self {
        ApiError::forbidden(r.code(), r.to_string())
    }
}

impl From<UseRefusal> for ApiError {
    fn from(r: UseRefusal) -> Self {
        if r.is_forbidden() {
            ApiError::forbidden(r.code(), r.to_string())
        } else {
            ApiError::conflict(r.code(), r.to_string())
        }
    }
}

impl From<BindRefusal> for ApiError {
    fn from(r: BindRefusal) -> Self {
        match r {
            BindRefusal::Key(k) => k.into(),
            BindRefusal::SubscriptionSuspended => ApiError::forbidden(r.code(), r.to_string()),
            _ => ApiError::conflict(r.code(), r.to_string()),
        }
    }
}

impl From<KeyFormatError> for ApiError {
    fn from(e: KeyFormatError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidKeyFormat,
            e.to_string(),
        )
    }
}

impl From<UrlError> for ApiError {
    fn from(e: UrlError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidUrl,
            e.to_string(),
        )
    }
}

/// `Retry-After` (seconds) of a `503 unavailable`.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 2;

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let envelope = match self {
            ApiError::Client { code, message, .. } => ErrorEnvelope::new(*code, message.clone()),
            ApiError::RateLimited { retry_after, .. } => ErrorEnvelope::new(
                ErrorCode::RateLimited,
                format!("too many failed attempts from this client; retry in {retry_after} s"),
            ),
            ApiError::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable");
                ErrorEnvelope::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the service is temporarily unavailable; retry in {RETRY_AFTER_UNAVAILABLE} s"
                    ),
                )
            }
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                ErrorEnvelope::new(ErrorCode::Internal, "internal error")
            }
        };
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Unavailable(_) = self {
            resp.insert_header(("Retry-After", RETRY_AFTER_UNAVAILABLE.to_string()));
        }
        if self.status_code() == StatusCode::UNAUTHORIZED {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::RateLimited { retry_after, limit } = self {
            resp.insert_header(("Retry-After", retry_after.to_string()))
                .insert_header(("RateLimit-Limit", limit.to_string()))
                .insert_header(("RateLimit-Remaining", "0"))
                .insert_header(("RateLimit-Reset", retry_after.to_string()));
        }
        resp.json(envelope)
    }
}

/// Turns JSON body errors into the envelope: `413` for oversized bodies, `400 invalid_request`
/// otherwise.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::payload_too_large(format!("request body larger than {limit} bytes"))
        }
        JsonPayloadError::ContentType => {
            ApiError::bad_request("expected Content-Type: application/json")
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request(format!("invalid JSON body: {e}"))
        }
        other => ApiError::bad_request(format!("invalid JSON body: {other}")),
    };
    api.into()
}

/// Turns query-string errors into `400 invalid_request`, naming the parameter.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::QueryPayloadError;
    let api = match &err {
        // the message names the parameter: an unknown one, or the one whose value is refused
        QueryPayloadError::Deserialize(e) => ApiError::bad_request(format!("invalid query: {e}")),
        other => ApiError::bad_request(format!("invalid query string: {other}")),
    };
    api.into()
}

/// Turns path errors into `400 invalid_request`.
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid path: {err}")).into()
}
