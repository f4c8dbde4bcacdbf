//! The whole route table on one screen: each route once, with the documentation that
//! `/openapi.json` is built from.

pub(crate) mod admin;
pub mod auth;
pub mod delivery;
pub mod dto;
pub(crate) mod enrollments;
pub mod error;
mod glpi;
mod instance;
pub(crate) mod invitations;
pub(crate) mod kinds;
pub(crate) mod licenses;
pub mod limits;
pub(crate) mod lookup;
mod marketplace;
pub mod openapi;
mod ops;
pub(crate) mod plugins;
pub mod portal;
pub mod query;
pub mod telemetry;
pub mod webhooks;

use crate::http::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, Resource, web};

/// How a route is documented in `/openapi.json`.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub tag: &'static str,
    pub summary: &'static str,
    /// JSON request body schema, when there is one.
    pub body: Option<&'static str>,
    /// Success status, its schema (`None`: no JSON body; `Page<Item>`: a page of `Item`s) and
    /// content type.
    pub ok: (u16, Option<&'static str>, &'static str),
    /// Error statuses this route answers, in the error envelope.
    pub errors: &'static [u16],
    /// Its query parameters (the admin lists: `http::query`).
    pub query: Option<fn() -> Vec<utoipa::openapi::path::Parameter>>,
    /// The request headers it reads.
    pub headers: &'static [HeaderParam],
}

/// A request header a route reads: its name, whether it is required, the pattern of its value
/// (empty: any value) and what it is.
pub type HeaderParam = (&'static str, bool, &'static str, &'static str);

/// A key as the server takes it (`glpi_network_shared::PlainKey::parse`), in printable ASCII.
pub const KEY_PATTERN: &str = "^[ -~]*[!-~][ -~]*$";
/// An instance's GLPI Network UID (`domain::binding::parse_uid`).
pub const UID_PATTERN: &str = "^[A-Za-z0-9_-]{1,128}$";

const MP_KEY: &[HeaderParam] = &[
    (
        "X-Registration-Key",
        true,
        KEY_PATTERN,
        "The instance's registration key",
    ),
    (
        "X-Glpi-Network-Uid",
        false,
        UID_PATTERN,
        "The instance's GLPI Network UID (commercial plugins: the UID its license is activated for)",
    ),
];
const MP_PAGED: &[HeaderParam] = &[
    (
        "X-Registration-Key",
        true,
        KEY_PATTERN,
        "The instance's registration key",
    ),
    (
        "X-Glpi-Network-Uid",
        false,
        UID_PATTERN,
        "The instance's GLPI Network UID",
    ),
    (
        "X-Range",
        false,
        "^[0-9]{1,9}-[0-9]{1,9}$",
        "`start-end`, 0-based and inclusive, start <= end (else 400); default the first page",
    ),
];
const INFO_HEADERS: &[HeaderParam] = &[
    (
        "X-Registration-Key",
        false,
        "",
        "The registration key to describe (any value: a malformed or unknown one is described as invalid)",
    ),
    (
        "X-Glpi-Network-Uid",
        false,
        "",
        "The instance's GLPI Network UID (a malformed one is ignored)",
    ),
];

const fn doc(tag: &'static str, summary: &'static str) -> Doc {
    Doc {
        tag,
        summary,
        body: None,
        ok: (200, None, "application/json"),
        errors: &[],
        query: None,
        headers: &[],
    }
}

impl Doc {
    const fn body(mut self, schema: &'static str) -> Self {
        self.body = Some(schema);
        self
    }
    const fn ok(mut self, status: u16, schema: &'static str) -> Self {
        self.ok = (status, Some(schema), "application/json");
        self
    }
    const fn raw(mut self, status: u16, content_type: &'static str) -> Self {
        self.ok = (status, None, content_type);
        self
    }
    const fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }
    const fn query(mut self, params: fn() -> Vec<utoipa::openapi::path::Parameter>) -> Self {
        self.query = Some(params);
        self
    }
    const fn headers(mut self, headers: &'static [HeaderParam]) -> Self {
        self.headers = headers;
        self
    }
}

/// One routed method on one path.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub path: &'static str,
    pub method: &'static str,
    pub doc: Doc,
}

/// Declares routes once: the function that registers them and the list `/openapi.json` is
/// built from (so the document cannot miss a route).
macro_rules! route_table {
    ($configure:ident, $list:ident; $( $path:literal { $( $method:ident $handler:path => $doc:expr ),+ $(,)? } )*) => {
        fn $configure(cfg: &mut web::ServiceConfig) {
            $( cfg.service(
                res($path, &[$(stringify!($method)),+])
                    $( .route(web::$method().to($handler)) )+
                    .wrap(actix_web::middleware::from_fn(auth::gate))
            ); )*
        }
        /// Every routed (path, method) with its documentation.
        pub fn $list() -> Vec<Route> {
            vec![ $( $( Route { path: $path, method: stringify!($method), doc: $doc }, )+ )* ]
        }
    };
}

const ADMIN_ERRS: &[u16] = &[400, 401];
const ADMIN_ONE: &[u16] = &[400, 401, 404];
const KEY_ERRS: &[u16] = &[400, 404, 413, 429];
const MP_LIST: &[u16] = &[400, 401, 429];
const MP_ARCHIVE: &[u16] = &[401, 403, 404, 429];

route_table! { configure_main, table;
    // The hot routes first: actix tries routes in this order, and each pattern with a segment
    // ahead of a match costs a regex capture (10% of a cache-off /info when it came last).
    "/api/registration/info" { get glpi::registration_info => doc("glpi", "Registration information (X-Registration-Key, X-Glpi-Network-Uid, Accept-Language)").ok(200, "Info").errors(&[503]).headers(INFO_HEADERS) }
    "/v1/validations" {
        post instance::validate_instance => doc("instance", "Validate a key for an instance (a signed answer for any known key)")
            .body("ValidateRequest").ok(200, "ValidationResponse").errors(KEY_ERRS),
    }
    "/v1/registrations" {
        post instance::register_instance => doc("instance", "Bind a key to an instance (201 new, 200 same again)")
            .body("RegisterRequest").ok(201, "RegisterResponse").errors(&[400, 403, 404, 409, 413, 429]),
        delete instance::release_instance => doc("instance", "Release this instance's binding")
            .body("ReleaseRequest").raw(204, "").errors(KEY_ERRS),
    }
    "/healthz" { get ops::healthz => doc("operations", "The process is up").ok(200, "Status") }
    "/readyz" { get ops::readyz => doc("operations", "The database answers (503 when not)").ok(200, "Status") }
    "/metrics" { get ops::metrics => doc("operations", "Prometheus metrics").raw(200, "text/plain") }
    "/.well-known/jwks.json" { get ops::jwks => doc("tokens", "Public keys that verify live tokens").ok(200, "Jwks") }
    "/v1/enrollments" {
        post enrollments::enroll_agent => doc("enrollment", "Enroll an agent (201 new, 200 same agent again, no use taken)")
            .body("EnrollRequest").ok(201, "EnrollResponse").errors(&[400, 403, 404, 409, 413, 429]),
    }
    "/v1/licenses/activations" {
        post licenses::activate_license => doc("license", "Activate a plugin license for an instance (201 new, 200 same again)")
            .body("LicenseRequest").ok(201, "ActivationResponse").errors(&[400, 403, 404, 409, 413, 429]),
        delete licenses::release_license => doc("license", "Release this instance's license activation")
            .body("LicenseRequest").raw(204, "").errors(&[400, 404, 409, 413, 429]),
    }
    "/v1/licenses/validations" {
        post licenses::validate_license => doc("license", "Validate a plugin license for an instance (a signed answer for any known license)")
            .body("LicenseRequest").ok(200, "LicenseValidationResponse").errors(KEY_ERRS),
    }
    "/v1/admin/licenses" {
        post licenses::create_license => doc("admin", "Issue a plugin license (the plaintext is in this answer only)").body("CreateLicenseRequest").ok(201, "LicenseView").errors(ADMIN_ONE),
        get licenses::list_licenses => doc("admin", "List licenses (?subscriber_id, ?plugin, ?status)").ok(200, "Page<LicenseView>").errors(ADMIN_ERRS).query(query::LicenseParams::params),
    }
    "/v1/admin/licenses/{id}" { get licenses::get_license => doc("admin", "Show a license").ok(200, "LicenseView").errors(ADMIN_ONE) }
    "/v1/admin/licenses/{id}/revoke" { post licenses::revoke_license => doc("admin", "Revoke a license").ok(200, "LicenseView").errors(ADMIN_ONE) }
    "/v1/admin/licenses/{id}/renew" { post licenses::renew_license => doc("admin", "Set a license's new expiry").body("RenewLicenseRequest").ok(200, "LicenseView").errors(&[400, 401, 404, 409]) }
    "/v1/invitations/redemptions" {
        post invitations::redeem_invitation => doc("invitation", "Redeem an invitation: create the account (201), or the same email again (200, no use taken)")
            .body("RedeemRequest").ok(201, "RedeemResponse").errors(&[400, 403, 404, 409, 413, 429]),
    }
    "/v1/admin/invitations" {
        post invitations::create_invitation => doc("admin", "Create an invitation (the plaintext key and its URL are in this answer only)").body("CreateInvitationRequest").ok(201, "InvitationView").errors(ADMIN_ONE),
        get invitations::list_invitations => doc("admin", "List invitations (?subscriber_id, ?status)").ok(200, "Page<InvitationView>").errors(ADMIN_ERRS).query(query::KindParams::params),
    }
    "/v1/admin/invitations/{id}" { get invitations::get_invitation => doc("admin", "Show an invitation with its uses").ok(200, "InvitationView").errors(ADMIN_ONE) }
    "/v1/admin/invitations/{id}/revoke" { post invitations::revoke_invitation => doc("admin", "Revoke an invitation").ok(200, "InvitationView").errors(ADMIN_ONE) }
    "/v1/admin/enrollment-keys" {
        post enrollments::create_enrollment_key => doc("admin", "Issue an enrollment key (the plaintext is in this answer only)").body("CreateEnrollmentKeyRequest").ok(201, "EnrollmentKeyView").errors(ADMIN_ONE),
        get enrollments::list_enrollment_keys => doc("admin", "List enrollment keys (?subscriber_id, ?status)").ok(200, "Page<EnrollmentKeyView>").errors(ADMIN_ERRS).query(query::KindParams::params),
    }
    "/v1/admin/enrollment-keys/{id}" { get enrollments::get_enrollment_key => doc("admin", "Show an enrollment key with its uses").ok(200, "EnrollmentKeyView").errors(ADMIN_ONE) }
    "/v1/admin/enrollment-keys/{id}/revoke" { post enrollments::revoke_enrollment_key => doc("admin", "Revoke an enrollment key").ok(200, "EnrollmentKeyView").errors(ADMIN_ONE) }
    "/v1/admin/enrollment-keys/{id}/enrollments" { get enrollments::list_key_enrollments => doc("admin", "The agents a key enrolled").ok(200, "Page<EnrollmentView>").errors(ADMIN_ONE).query(query::PageParams::params) }
    "/v1/admin/enrollments/{id}" { delete enrollments::release_enrollment => doc("admin", "Revoke an agent's enrollment and free its use").raw(204, "").errors(ADMIN_ONE) }
    "/v1/admin/offers" { get admin::list_offers => doc("admin", "List offers").ok(200, "Page<OfferView>").errors(ADMIN_ERRS).query(query::PageParams::params) }
    "/v1/admin/offers/{reference}" { get admin::get_offer => doc("admin", "Show an offer").ok(200, "OfferView").errors(ADMIN_ONE) }
    "/v1/admin/subscribers" {
        post admin::create_subscriber => doc("admin", "Create a subscriber").body("CreateSubscriberRequest").ok(201, "SubscriberView").errors(ADMIN_ERRS),
        get admin::list_subscribers => doc("admin", "List subscribers").ok(200, "Page<SubscriberView>").errors(ADMIN_ERRS).query(query::PageParams::params),
    }
    "/v1/admin/subscribers/{id}" { get admin::get_subscriber => doc("admin", "Show a subscriber").ok(200, "SubscriberView").errors(ADMIN_ONE) }
    "/v1/admin/subscribers/{id}/accounts" { get portal::admin_api::list_accounts => doc("admin", "A subscriber's portal accounts (no parameters)").ok(200, "Page<AccountView>").errors(ADMIN_ONE) }
    "/v1/admin/subscribers/{id}/sessions" { delete portal::admin_api::end_sessions => doc("admin", "End every portal session of a subscriber's accounts").raw(204, "").errors(ADMIN_ONE) }
    "/v1/admin/subscriptions" {
        post admin::create_subscription => doc("admin", "Create a subscription").body("CreateSubscriptionRequest").ok(201, "SubscriptionView").errors(ADMIN_ONE),
        get admin::list_subscriptions => doc("admin", "List subscriptions (?subscriber_id, ?status)").ok(200, "Page<SubscriptionView>").errors(ADMIN_ERRS).query(query::SubscriptionParams::params),
    }
    "/v1/admin/subscriptions/{id}" { get admin::get_subscription => doc("admin", "Show a subscription").ok(200, "SubscriptionView").errors(ADMIN_ONE) }
    "/v1/admin/subscriptions/{id}/suspend" { post admin::suspend_subscription => doc("admin", "Suspend a subscription").ok(200, "SubscriptionView").errors(&[401, 404, 409]) }
    "/v1/admin/subscriptions/{id}/resume" { post admin::resume_subscription => doc("admin", "Resume a suspended subscription").ok(200, "SubscriptionView").errors(&[401, 404, 409]) }
    "/v1/admin/subscriptions/{id}/cancel" { post admin::cancel_subscription => doc("admin", "Cancel a subscription").ok(200, "SubscriptionView").errors(&[401, 404]) }
    "/v1/admin/keys" {
        post admin::create_key => doc("admin", "Issue a key (the plaintext is in this answer only)").body("CreateKeyRequest").ok(201, "KeyView").errors(ADMIN_ONE),
        get admin::list_keys => doc("admin", "List keys (?subscription_id, ?subscriber_id, ?status, ?prefix)").ok(200, "Page<KeyView>").errors(ADMIN_ERRS).query(query::KeyParams::params),
    }
    "/v1/admin/keys/bulk" { post admin::bulk_create_keys => doc("admin", "Issue up to 10,000 keys at once").body("BulkKeysRequest").ok(201, "Page<KeyView>").errors(ADMIN_ONE) }
    "/v1/admin/keys/{id}" { get admin::get_key => doc("admin", "Show a key").ok(200, "KeyView").errors(ADMIN_ONE) }
    "/v1/admin/keys/{id}/revoke" { post admin::revoke_key => doc("admin", "Revoke a key").ok(200, "KeyView").errors(ADMIN_ONE) }
    "/v1/admin/keys/{id}/regenerate" { post admin::regenerate_key => doc("admin", "Replace a key: revoke it, release its binding, issue a new one").ok(201, "KeyView").errors(&[401, 404, 409]) }
    "/v1/admin/registrations" { get admin::list_registrations => doc("admin", "List registrations (?key_id, ?include_released)").ok(200, "Page<Registration>").errors(ADMIN_ERRS).query(query::RegistrationParams::params) }
    "/v1/admin/registrations/{id}" {
        get admin::get_registration => doc("admin", "Show a registration").ok(200, "Registration").errors(ADMIN_ONE),
        delete admin::release_registration => doc("admin", "Release a registration").raw(204, "").errors(ADMIN_ONE),
    }
    "/v1/admin/signing-keys" { get admin::list_signing_keys => doc("admin", "List signing keys").ok(200, "Page<SigningKeyView>").errors(ADMIN_ERRS).query(query::PageParams::params) }
    "/v1/admin/signing-keys/rotate" { post admin::rotate_signing_key => doc("admin", "Rotate the signing key").ok(201, "SigningKeyView").errors(&[401]) }
    "/v1/admin/signing-keys/{kid}" { get admin::get_signing_key => doc("admin", "Show a signing key").ok(200, "SigningKeyView").errors(&[401, 404]) }
    "/v1/admin/audit" { get admin::list_audit => doc("admin", "Audit events, newest first (?key_id)").ok(200, "Page<AuditView>").errors(ADMIN_ERRS).query(query::AuditParams::params) }
    "/v1/admin/audit/verify" { get admin::verify_audit => doc("admin", "Check the audit hash chain").ok(200, "ChainCheck").errors(&[401]) }
    "/v1/admin/audit/{id}" { get admin::get_audit_event => doc("admin", "Show an audit event").ok(200, "AuditView").errors(ADMIN_ONE) }
    "/v1/admin/plugins" {
        post plugins::create_plugin => doc("admin", "Add a plugin to the catalogue").body("PluginInput").ok(201, "PluginRecord").errors(&[400, 401, 409]),
        get plugins::list_plugins => doc("admin", "List the catalogue").ok(200, "Page<PluginRecord>").errors(ADMIN_ERRS).query(query::PageParams::params),
    }
    "/v1/admin/plugins/{key}" {
        get plugins::get_plugin => doc("admin", "Show a plugin").ok(200, "PluginRecord").errors(ADMIN_ONE),
        put plugins::update_plugin => doc("admin", "Update a plugin (the fields sent are changed)").body("PluginInput").ok(200, "PluginRecord").errors(ADMIN_ONE),
        delete plugins::delete_plugin => doc("admin", "Delete a plugin and its versions").raw(204, "").errors(ADMIN_ONE),
    }
    "/v1/admin/plugins/{key}/versions" {
        post plugins::add_version => doc("admin", "Add a version: the archive as application/gzip with ?num=&stability=&compatibility=, or JSON and a generated archive; compatibility is a requirement on the GLPI version in Cargo's semver syntax (~10.0, >=10.0.10, <12)")
            .body("VersionQuery").ok(201, "VersionView").errors(&[400, 401, 404, 409, 413]),
    }
    "/v1/admin/webhooks" {
        post webhooks::create => doc("admin", "Create a webhook (the secret is in this answer only); the URL's host must resolve to public addresses").body("WebhookRequest").ok(201, "WebhookView").errors(ADMIN_ERRS),
        get webhooks::list => doc("admin", "List webhooks").ok(200, "Page<WebhookView>").errors(ADMIN_ERRS).query(query::PageParams::params),
    }
    "/v1/admin/webhooks/{id}" {
        get webhooks::get => doc("admin", "Show a webhook").ok(200, "WebhookView").errors(ADMIN_ONE),
        put webhooks::update => doc("admin", "Replace a webhook's url, events and description (the secret stays)").body("WebhookRequest").ok(200, "WebhookView").errors(ADMIN_ONE),
        delete webhooks::delete => doc("admin", "Delete a webhook and its deliveries").raw(204, "").errors(ADMIN_ONE),
    }
    "/v1/admin/webhooks/{id}/deliveries" { get webhooks::list_deliveries => doc("admin", "A webhook's deliveries, newest event first (?status)").ok(200, "Page<DeliveryView>").errors(ADMIN_ONE).query(query::DeliveryParams::params) }
    "/v1/admin/webhooks/{id}/deliveries/{delivery_id}/retry" { post webhooks::retry_delivery => doc("admin", "Make a delivery pending and due now").ok(202, "DeliveryView").errors(ADMIN_ONE) }
    "/api/ping" { get glpi::ping => doc("glpi", "Availability check (GLPI 11)").ok(200, "Status") }
    "/api/registration" { get glpi::ping => doc("glpi", "Availability check").ok(200, "Status") }
    "/api/registration/" { get glpi::ping => doc("glpi", "Availability check (GLPI 10.0)").ok(200, "Status") }
    "/api/registration/offers" { get glpi::offers => doc("glpi", "Offers as GLPI reads them").ok(200, "GlpiOffers") }
    "/api/marketplace/plugins" { get marketplace::list_plugins => doc("marketplace", "Plugins, X-Range paging, [] past the end; each with only the versions compatible with the GLPI version in User-Agent (GLPI/<x.y.z> (...)), all when it names none").ok(200, "PluginList").errors(MP_LIST).headers(MP_PAGED) }
    "/api/marketplace/tags/top" { get marketplace::top_tags => doc("marketplace", "The ten most used tags").ok(200, "TagList").errors(&[401, 429]).headers(MP_KEY) }
    "/api/marketplace/tags/{tag}/plugin" { get marketplace::tag_plugins => doc("marketplace", "Plugins with a tag, X-Range paging; versions filtered by the GLPI version in User-Agent as in plugins").ok(200, "PluginList").errors(MP_LIST).headers(MP_PAGED) }
    "/api/marketplace/plugin/{key}/download/{version}" { get marketplace::count_download => doc("marketplace", "Count a download").ok(200, "Status").errors(&[401, 404, 429]).headers(MP_KEY) }
    "/api/marketplace/archives/{file}" { get marketplace::archive => doc("marketplace", "A plugin archive <key>-<version>.tar.gz, gated by offer").raw(200, "application/gzip").errors(MP_ARCHIVE).headers(MP_KEY) }
    "/api/glpi-plugins/plugins" { get marketplace::list_plugins => doc("marketplace", "Plugins (GLPI 10.0.0 to 10.0.7 path); versions filtered by the GLPI version in User-Agent").ok(200, "PluginList").errors(MP_LIST).headers(MP_PAGED) }
    "/api/glpi-plugins/tags/top" { get marketplace::top_tags => doc("marketplace", "Top tags (GLPI 10.0.0 to 10.0.7 path)").ok(200, "TagList").errors(&[401, 429]).headers(MP_KEY) }
    "/api/glpi-plugins/tags/{tag}/plugin" { get marketplace::tag_plugins => doc("marketplace", "Plugins with a tag (GLPI 10.0.0 to 10.0.7 path); versions filtered by the GLPI version in User-Agent").ok(200, "PluginList").errors(MP_LIST).headers(MP_PAGED) }
    "/api/glpi-plugins/plugin/{key}/download/{version}" { get marketplace::count_download => doc("marketplace", "Count a download (GLPI 10.0.0 to 10.0.7 path)").ok(200, "Status").errors(&[401, 404, 429]).headers(MP_KEY) }
    "/api/glpi-plugins/archives/{file}" { get marketplace::archive => doc("marketplace", "A plugin archive (GLPI 10.0.0 to 10.0.7 path)").raw(200, "application/gzip").errors(MP_ARCHIVE).headers(MP_KEY) }
}

route_table! { configure_test_routes, test_table;
    "/_test/clock" {
        get crate::testmode::routes::get_clock => doc("test-mode", "The server's clock (test mode only)").ok(200, "Now"),
        post crate::testmode::routes::set_clock => doc("test-mode", "Move the clock: set, advance_seconds or real").body("ClockRequest").ok(200, "Now").errors(&[400]),
    }
    "/_test/faults" {
        get crate::testmode::routes::list_faults => doc("test-mode", "Armed faults and how often each fired").ok(200, "FaultList"),
        post crate::testmode::routes::arm_faults => doc("test-mode", "Arm fault rules").body("FaultsRequest").ok(201, "FaultList").errors(&[400]),
        delete crate::testmode::routes::clear_faults => doc("test-mode", "Clear every fault").raw(204, ""),
    }
    "/_test/requests" { get crate::testmode::routes::journal => doc("test-mode", "The request journal (?path, ?uid, ?key_prefix, ?limit)").ok(200, "Journal") }
    "/_test/fixtures" { post crate::testmode::routes::load_fixtures => doc("test-mode", "Load fixtures, all or nothing").body("Fixtures").ok(201, "Loaded").errors(&[400, 409]) }
    "/_test/reset" { post crate::testmode::routes::reset => doc("test-mode", "Empty everything but offers, signing keys and demo plugins").raw(204, "") }
}

/// The `/_test` routes, registered only in test mode.
pub fn configure_test_mode(cfg: &mut web::ServiceConfig) {
    configure_test_routes(cfg);
}

/// Every route, `/openapi.json` and Swagger UI at `/docs/` (served from the binary).
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_main(cfg);
    portal::configure(cfg);
    cfg.service(res("/openapi.json", &["get"]).get(crate::http::openapi::serve))
        .service(res("/docs", &["get"]).get(docs_without_slash))
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .config(utoipa_swagger_ui::Config::from("/openapi.json")),
        )
        .default_service(web::to(not_found));
}

/// `GET /docs`: Swagger UI lives at `/docs/` (its pages load their assets relative to it).
async fn docs_without_slash() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}

/// A resource whose other methods answer `405` in the error envelope, with an `Allow` header
/// naming the `methods` it routes (RFC 9110 §15.5.6).
fn res(path: &str, methods: &[&str]) -> Resource {
    let allow = methods
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    web::resource(path).default_service(web::to(move |req: HttpRequest| {
        method_not_allowed(req, allow.clone())
    }))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

async fn method_not_allowed(req: HttpRequest, allow: String) -> HttpResponse {
    use actix_web::ResponseError;
    let mut resp =
        ApiError::method_not_allowed(format!("{} is not allowed on {}", req.method(), req.path()))
            .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        resp.headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    resp
}

/// The client address: the peer, or `X-Forwarded-For` when the peer is a trusted proxy.
pub(crate) fn client_addr(req: &HttpRequest) -> Option<String> {
    let trusted = req
        .app_data::<web::Data<crate::app::AppState>>()
        .map(|s| s.limits.trusted_proxies.clone())
        .unwrap_or_default();
    let xff = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or(""));
    crate::http::limits::client_ip(req.peer_addr().map(|a| a.ip()), xff, &trusted)
        .map(|ip| ip.to_string())
}

/// Runs blocking database work on actix's blocking pool with a pooled connection.
pub(crate) async fn run<T, F>(db: &crate::db::Db, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut crate::db::Conn) -> crate::db::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let db = db.clone();
    web::block(move || {
        let mut conn = db.get()?;
        f(&mut conn)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)
}

/// How long a worker waits for its key read (`db::reader`) before taking the pooled path: a
/// batched read on PostgreSQL (`db::batch`) waits on the reader threads, which a database that
/// stopped answering holds; the pool has its own time-outs and errors.
const READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The key's state read by the worker's `reader`, or `None` (the caller takes the pooled path)
/// when it cannot be read there or no answer comes within [`READ_WITHIN`].
pub(crate) async fn read_state(
    reader: &crate::db::reader::Reader,
    hash: &str,
) -> Option<crate::domain::binding::KeyState> {
    actix_web::rt::time::timeout(READ_WITHIN, reader.state(hash))
        .await
        .ok()
        .flatten()
}

/// `201 Created` with a JSON body.
pub(crate) fn created<T: serde::Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, batch::BatchReads, reader::Reader};
    use std::time::Instant;

    /// A server that takes the connection and never answers: the read gives up after
    /// [`READ_WITHIN`] and the caller takes the pooled path, instead of waiting on the reader
    /// threads.
    #[actix_web::test]
    async fn a_database_that_never_answers_sends_the_read_to_the_pool() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "postgres://nobody@127.0.0.1:{}/none",
            silent.local_addr().unwrap().port()
        );
        let reads = BatchReads::start(&url, 1, || ()).unwrap();
        let reader = Reader::batched(&Db::open("sqlite::memory:", 1).unwrap(), reads);
        let started = Instant::now();
        assert!(read_state(&reader, &"0".repeat(64)).await.is_none());
        let waited = started.elapsed();
        assert!(
            waited >= READ_WITHIN && waited < READ_WITHIN * 3,
            "{waited:?}"
        );
    }
}
