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
        503 => "unavailable: the database cannot be reached for now (with Retry-After)",
        _ => "error",
    }
}

/// A response header of type `schema` (`Type::String` or `Type::Integer`).
fn header(description: &str, ty: utoipa::openapi::schema::Type) -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(Some(utoipa::openapi::schema::Object::with_type(ty)))
        .description(Some(description))
        .build()
}

/// The headers an error status carries (`http::error::ApiError::error_response`).
fn error_headers(
    status: u16,
    mut resp: utoipa::openapi::response::ResponseBuilder,
) -> utoipa::openapi::response::ResponseBuilder {
    use utoipa::openapi::schema::Type;
    match status {
        401 => resp.header("WWW-Authenticate", header("Bearer", Type::String)),
        429 => {
            for (name, text) in [
                (
                    "Retry-After",
                    "seconds until the limit lets this client in again",
                ),
                ("RateLimit-Limit", "the limit, per minute"),
                ("RateLimit-Remaining", "0"),
                ("RateLimit-Reset", "seconds until the window ends"),
            ] {
                resp = resp.header(name, header(text, Type::Integer));
            }
            resp
        }
        503 => resp.header("Retry-After", header("seconds", Type::Integer)),
        _ => resp,
    }
}

/// Routes that never touch the database (so never answer `503`).
const NO_DATABASE: &[&str] = &[
    "/healthz",
    "/metrics",
    "/api/ping",
    "/api/registration",
    "/api/registration/",
];

/// Path parameters that the server reads as integers.
const INTEGER_PARAMS: &[(&str, &str)] = &[("/v1/admin/audit/{id}", "id")];

/// The error statuses of a route: those its documentation names, and those every route of its
/// kind can answer (a path or query parameter or a body refused: 400; a body too large: 413; the
/// admin token missing or wrong: 401, and 429 once a client failed too often; the database down:
/// 503).
fn error_statuses(r: &Route) -> std::collections::BTreeSet<u16> {
    let d = r.doc;
    let mut out: std::collections::BTreeSet<u16> = d.errors.iter().copied().collect();
    if d.body.is_some() {
        out.extend([400, 413]);
    }
    if d.query.is_some() || r.path.contains('{') {
        out.insert(400);
    }
    if d.tag == "admin" {
        out.extend([401, 429]);
    }
    if d.tag != "test-mode" && !NO_DATABASE.contains(&r.path) {
        out.insert(503);
    }
    out
}

/// The path parameters (`{name}` segments), then the query parameters of a route.
fn parameters(r: &Route) -> Vec<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::schema::Type;
    let mut out = Vec::new();
    for seg in r.path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let schema = if INTEGER_PARAMS.contains(&(r.path, name)) {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .build()
            } else {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .build()
            };
            out.push(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schema))
                    .build(),
            );
        }
    }
    out.extend(r.doc.query.map(|params| params()).unwrap_or_default());
    for (name, required, pattern, description) in r.doc.headers {
        out.push(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Header)
                .required(if *required {
                    Required::True
                } else {
                    Required::False
                })
                .description(Some(*description))
                .schema(Some(
                    utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(*pattern).filter(|p| !p.is_empty()))
                        .build(),
                ))
                .build(),
        );
    }
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
        ok = ok.content(ctype, Content::new(Some(response_schema(schema))));
    } else if !ctype.is_empty() {
        ok = ok.content(ctype, Content::new(None::<Ref>));
    }
    op = op.response(status.to_string(), ok.build());
    for e in error_statuses(r) {
        let resp = ResponseBuilder::new().description(error_text(e)).content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
        );
        op = op.response(e.to_string(), error_headers(e, resp).build());
    }
    if d.tag == "admin" {
        op = op.security(SecurityRequirement::new(
            "admin_token",
            Vec::<String>::new(),
        ));
    }
    op.build()
}

/// A component schema by name, or for `Page<Item>` a page of `Item`s (`http::db::page::Page`).
fn response_schema(name: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let Some(item) = name.strip_prefix("Page<").and_then(|s| s.strip_suffix('>')) else {
        return Ref::from_schema_name(name).into();
    };
    ObjectBuilder::new()
        .description(Some(
            "A page: `items`, and `next_cursor` to pass as `?cursor=` for the next one (null on the last page)",
        ))
        .property("items", ArrayBuilder::new().items(Ref::from_schema_name(item)))
        .required("items")
        .property(
            "next_cursor",
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
        )
        .required("next_cursor")
        .into()
}

/// `GET` of a route outside the table: one `status` answer of `ctype`.
fn plain_get(summary: &str, status: u16, ctype: &str) -> utoipa::openapi::path::Operation {
    let mut resp = ResponseBuilder::new().description("success");
    if status == 308 {
        resp = resp.header(
            "Location",
            header("/docs/", utoipa::openapi::schema::Type::String),
        );
    } else {
        resp = resp.content(ctype, Content::new(None::<Ref>));
    }
    OperationBuilder::new()
        .tag("operations")
        .summary(Some(summary))
        .response(status.to_string(), resp.build())
        .build()
}

/// The whole document: every route of the table, and the `/_test` routes when the server runs
/// in test mode (they exist only then).
pub fn document(test_mode: bool) -> utoipa::openapi::OpenApi {
    let mut doc = Schemas::openapi();
    let test_routes = if test_mode {
        http::test_table()
    } else {
        Vec::new()
    };
    for r in http::table().iter().chain(test_routes.iter()) {
        doc.paths
            .add_path_operation(r.path, vec![method(r.method)], operation(r));
    }
    for (path, summary, status, ctype) in [
        ("/openapi.json", "This document", 200, "application/json"),
        (
            "/docs",
            "Redirects to /docs/, Swagger UI (served from the binary)",
            308,
            "",
        ),
    ] {
        doc.paths.add_path_operation(
            path,
            vec![HttpMethod::Get],
            plain_get(summary, status, ctype),
        );
    }
    if let Some(c) = doc.components.as_mut() {
        c.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    doc
}

/// RFC 3339 dates as the server reads them (chrono): a real month and day (29 February aside).
const DATE_PATTERN: &str = r"\d{4}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)|02-(0[1-9]|1\d|2[0-8]))";

/// The `pattern` of a string `format` the server parses (a format alone is only an annotation
/// in JSON Schema 2020-12, so a client or a generator may not hold to it).
fn format_pattern(format: &str) -> Option<String> {
    match format {
        "date" => Some(format!("^{DATE_PATTERN}$")),
        "date-time" => Some(format!(
            "^{DATE_PATTERN}T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{{1,9}})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)$"
        )),
        _ => None,
    }
}

/// Adds to every schema with a `date` or `date-time` format the pattern of that format.
fn add_format_patterns(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let pattern = map
                .get("format")
                .and_then(|f| f.as_str())
                .filter(|_| !map.contains_key("pattern"))
                .and_then(format_pattern);
            if let Some(p) = pattern {
                map.insert("pattern".into(), p.into());
            }
            map.values_mut().for_each(add_format_patterns);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(add_format_patterns),
        _ => {}
    }
}

/// Request schemas that need one of two properties (a rule a derive cannot state).
const ONE_OF_REQUIRED: &[(&str, [&str; 2])] =
    &[("LicenseRequest", ["instance_url", "instance_uid"])];

/// The document as served: [`document`], with the patterns of its formats and the
/// [`ONE_OF_REQUIRED`] rules.
pub fn document_json(test_mode: bool) -> serde_json::Value {
    let mut v = serde_json::to_value(document(test_mode)).unwrap_or_default();
    add_format_patterns(&mut v);
    for (schema, fields) in ONE_OF_REQUIRED {
        let either: Vec<serde_json::Value> = fields
            .iter()
            .map(|f| serde_json::json!({"required": [f], "properties": {*f: {"type": "string"}}}))
            .collect();
        if let Some(s) = v["components"]["schemas"][*schema].as_object_mut() {
            s.insert("anyOf".into(), either.into());
        }
    }
    v
}

/// `GET /openapi.json`.
pub async fn serve(state: actix_web::web::Data<crate::app::AppState>) -> HttpResponse {
    HttpResponse::Ok().json(document_json(state.test_mode.is_some()))
}
