//! `/openapi.json`: an OpenAPI 3 document built from the route table (`routes::table` and
//! `routes::test_table`, the same lists the router is built from) and the schemas of the
//! request and response types (utoipa derives).

use crate::http::{self, Route};
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, Required, ResponseBuilder};

/// `{"status": ...}` of the operational and GLPI availability routes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    pub status: String,
}

/// A JSON Web Key Set (`keys` of `{kty: OKP, crv: Ed25519, alg: EdDSA, kid, x, use}`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

/// A page of an admin list: `items` (the resource's view) and an opaque `next_cursor`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page {
    pub items: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}

/// `{"intact": true, "events"}` or `{"intact": false, "broken_at", "reason"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChainCheck {
    pub intact: bool,
    pub events: Option<u64>,
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// `{offer_reference, title}` as GLPI joins it with `required_offers`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GlpiOffer {
    pub offer_reference: String,
    pub title: String,
}

/// The offers GLPI reads.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = GlpiOffers)]
pub struct GlpiOffers(pub Vec<GlpiOffer>);

/// A page of marketplace records (`[]` past the end).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PluginList(pub Vec<crate::domain::catalogue::PluginRecord>);

/// `[{key, tag}]`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TagList(pub Vec<crate::domain::catalogue::Tag>);

/// `{"now": RFC3339}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Now {
    pub now: chrono::DateTime<chrono::Utc>,
}

/// `{"rules": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FaultList {
    pub rules: Vec<crate::testmode::ArmedFault>,
}

/// `{"items": [...]}` of the request journal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Journal {
    pub items: Vec<crate::testmode::JournalEntry>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "glpi-network",
        description = "GLPI Network licensing server: registration keys bound to one instance, signed validation tokens, the GLPI-compatible API and marketplace, and test mode (the /_test routes exist only with --test-mode)."
    ),
    components(schemas(
        glpi_network_shared::ErrorEnvelope,
        glpi_network_shared::ApiErrorBody,
        glpi_network_shared::ErrorCode,
        glpi_network_shared::ValidationStatus,
        glpi_network_shared::wire::RegisterRequest,
        glpi_network_shared::wire::ValidateRequest,
        glpi_network_shared::wire::ReleaseRequest,
        glpi_network_shared::wire::Registration,
        glpi_network_shared::wire::RegisterResponse,
        glpi_network_shared::wire::ValidationResponse,
        crate::http::dto::OfferView,
        crate::http::dto::CreateSubscriberRequest,
        crate::http::dto::SubscriberView,
        crate::http::dto::CreateSubscriptionRequest,
        crate::http::dto::SubscriptionView,
        crate::http::dto::CreateKeyRequest,
        crate::http::dto::KeyView,
        crate::http::dto::AuditView,
        crate::http::dto::SigningKeyView,
        crate::http::admin::BulkKeysRequest,
        crate::domain::catalogue::PluginInput,
        crate::domain::catalogue::PluginRecord,
        crate::http::plugins::VersionView,
        crate::http::plugins::VersionQuery,
        crate::domain::glpi::Info,
        crate::http::licenses::CreateLicenseRequest,
        crate::http::licenses::RenewLicenseRequest,
        crate::http::licenses::LicenseView,
        crate::http::licenses::LicenseRequest,
        crate::http::licenses::ActivationResponse,
        crate::http::licenses::ActivationView,
        crate::http::licenses::LicenseValidationResponse,
        crate::http::invitations::CreateInvitationRequest,
        crate::http::invitations::InvitationView,
        crate::http::invitations::AccountView,
        crate::http::invitations::RedeemRequest,
        crate::http::invitations::RedeemResponse,
        crate::http::enrollments::CreateEnrollmentKeyRequest,
        crate::http::enrollments::EnrollmentKeyView,
        crate::http::enrollments::EnrollmentView,
        crate::http::enrollments::EnrollRequest,
        crate::http::enrollments::EnrollResponse,
        crate::http::webhooks::WebhookRequest,
        crate::http::webhooks::WebhookView,
        crate::http::webhooks::DeliveryView,
        crate::testmode::routes::ClockRequest,
        crate::testmode::routes::FaultsRequest,
        crate::testmode::fixtures::Fixtures,
        crate::testmode::fixtures::Loaded,
        Status,
        Jwks,
        Page,
        ChainCheck,
        GlpiOffers,
        PluginList,
        TagList,
        Now,
        FaultList,
        Journal
    ))
)]
struct Schemas;

fn method(m: &str) -> HttpMethod {
    match m {
        "post" => HttpMethod::Post,
        "put" => HttpMethod::Put,
        "delete" => HttpMethod::Delete,
        "patch" => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

fn error_text(status: u16) -> &'static str {
    match status {
        400 => "invalid_request, invalid_key_format or invalid_url",
        401 => "unauthorized (admin token, or a key GLPI's /info would call invalid)",
        403 => "key_revoked, key_expired or offer_required",
        404 => "not_found or key_not_found",
        409 => "key_already_bound, url_already_registered, uid_already_registered or conflict",
        413 => "payload_too_large",
        429 => "rate_limited (with Retry-After and RateLimit-* headers)",
        503 => "internal: temporarily unavailable",
        _ => "error",
    }
}

/// The path parameters (`{name}` segments), then the query parameters of a route.
fn parameters(r: &Route) -> Vec<utoipa::openapi::path::Parameter> {
    let mut out = Vec::new();
    for seg in r.path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            out.push(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(utoipa::openapi::schema::Object::with_type(
                        utoipa::openapi::schema::Type::String,
                    )))
                    .build(),
            );
        }
    }
    out.extend(r.doc.query.map(|params| params()).unwrap_or_default());
    out
}

fn operation(r: &Route) -> utoipa::openapi::path::Operation {
    let d = r.doc;
    let mut op = OperationBuilder::new()
        .tag(d.tag)
        .summary(Some(d.summary))
        .operation_id(Some(format!("{} {}", r.method, r.path)));
    for p in parameters(r) {
        op = op.parameter(p);
    }
    if let Some(body) = d.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name(body))),
                )
                .required(Some(Required::True))
                .build(),
        ));
    }
    let (status, schema, ctype) = d.ok;
    let mut ok = ResponseBuilder::new().description("success");
    if let Some(schema) = schema {
        ok = ok.content(ctype, Content::new(Some(Ref::from_schema_name(schema))));
    } else if !ctype.is_empty() {
        ok = ok.content(ctype, Content::new(None::<Ref>));
    }
    op = op.response(status.to_string(), ok.build());
    for e in d.errors {
        op = op.response(
            e.to_string(),
            ResponseBuilder::new()
                .description(error_text(*e))
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
                )
                .build(),
        );
    }
    if d.tag == "admin" {
        op = op.security(SecurityRequirement::new(
            "admin_token",
            Vec::<String>::new(),
        ));
    }
    op.build()
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Schemas::openapi();
    for r in http::table().iter().chain(http::test_table().iter()) {
        doc.paths
            .add_path_operation(r.path, vec![method(r.method)], operation(r));
    }
    let get = |summary: &str, ctype: &str| {
        OperationBuilder::new()
            .tag("operations")
            .summary(Some(summary))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("success")
                    .content(ctype, Content::new(None::<Ref>))
                    .build(),
            )
            .build()
    };
    doc.paths.add_path_operation(
        "/openapi.json",
        vec![HttpMethod::Get],
        get("This document", "application/json"),
    );
    doc.paths.add_path_operation(
        "/docs",
        vec![HttpMethod::Get],
        get("Redirects to /docs/ (308)", "text/plain"),
    );
    doc.paths.add_path_operation(
        "/docs/{_:.*}",
        vec![HttpMethod::Get],
        get("Swagger UI, served from the binary", "text/html"),
    );
    if let Some(c) = doc.components.as_mut() {
        c.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    doc
}

/// `GET /openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
