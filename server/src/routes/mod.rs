//! The whole route table on one screen.

mod admin;
mod glpi;
pub(crate) mod guard;
mod instance;
mod marketplace;
mod ops;
mod plugins;
mod testing;

use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, Resource, http::StatusCode, web};
use glpi_network_shared::ErrorCode;

/// The `/_test` routes, registered only in test mode.
pub fn configure_test_mode(cfg: &mut web::ServiceConfig) {
    cfg.service(
        res("/_test/clock")
            .get(testing::get_clock)
            .post(testing::set_clock),
    )
    .service(
        res("/_test/faults")
            .get(testing::list_faults)
            .post(testing::arm_faults)
            .delete(testing::clear_faults),
    )
    .service(res("/_test/requests").get(testing::journal))
    .service(res("/_test/fixtures").post(testing::load_fixtures))
    .service(res("/_test/reset").post(testing::reset));
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/healthz").get(ops::healthz))
        .service(res("/readyz").get(ops::readyz))
        .service(res("/metrics").get(ops::metrics))
        .service(res("/.well-known/jwks.json").get(ops::jwks))
        // instance API (the key is the credential)
        .service(
            res("/v1/registrations")
                .post(instance::register_instance)
                .delete(instance::release_instance),
        )
        .service(res("/v1/validations").post(instance::validate_instance))
        // admin API (bearer token)
        .service(
            web::scope("/v1/admin")
                .service(res("/offers").get(admin::list_offers))
                .service(res("/offers/{reference}").get(admin::get_offer))
                .service(
                    res("/subscribers")
                        .post(admin::create_subscriber)
                        .get(admin::list_subscribers),
                )
                .service(res("/subscribers/{id}").get(admin::get_subscriber))
                .service(
                    res("/subscriptions")
                        .post(admin::create_subscription)
                        .get(admin::list_subscriptions),
                )
                .service(res("/subscriptions/{id}").get(admin::get_subscription))
                .service(res("/subscriptions/{id}/suspend").post(admin::suspend_subscription))
                .service(res("/subscriptions/{id}/resume").post(admin::resume_subscription))
                .service(res("/subscriptions/{id}/cancel").post(admin::cancel_subscription))
                .service(res("/keys").post(admin::create_key).get(admin::list_keys))
                .service(res("/keys/bulk").post(admin::bulk_create_keys))
                .service(res("/keys/{id}").get(admin::get_key))
                .service(res("/keys/{id}/revoke").post(admin::revoke_key))
                .service(res("/keys/{id}/regenerate").post(admin::regenerate_key))
                .service(res("/registrations").get(admin::list_registrations))
                .service(
                    res("/registrations/{id}")
                        .get(admin::get_registration)
                        .delete(admin::release_registration),
                )
                .service(res("/signing-keys").get(admin::list_signing_keys))
                .service(res("/signing-keys/rotate").post(admin::rotate_signing_key))
                .service(res("/signing-keys/{kid}").get(admin::get_signing_key))
                .service(res("/audit").get(admin::list_audit))
                .service(res("/audit/verify").get(admin::verify_audit))
                .service(res("/audit/{id}").get(admin::get_audit_event))
                .service(
                    res("/plugins")
                        .post(plugins::create_plugin)
                        .get(plugins::list_plugins),
                )
                .service(
                    res("/plugins/{key}")
                        .get(plugins::get_plugin)
                        .put(plugins::update_plugin)
                        .delete(plugins::delete_plugin),
                )
                .service(res("/plugins/{key}/versions").post(plugins::add_version)),
        )
        // GLPI-compatible API (protocol §13)
        .service(res("/api/ping").get(glpi::ping))
        .service(res("/api/registration").get(glpi::ping))
        .service(res("/api/registration/").get(glpi::ping))
        .service(res("/api/registration/info").get(glpi::registration_info))
        .service(res("/api/registration/offers").get(glpi::offers))
        .service(marketplace_scope("/api/marketplace"))
        .service(marketplace_scope("/api/glpi-plugins"))
        .default_service(web::to(not_found));
}

/// The marketplace, mounted under both prefixes GLPI has used.
fn marketplace_scope(prefix: &str) -> actix_web::Scope {
    web::scope(prefix)
        .service(res("/plugins").get(marketplace::list_plugins))
        .service(res("/tags/top").get(marketplace::top_tags))
        .service(res("/tags/{tag}/plugin").get(marketplace::tag_plugins))
        .service(res("/plugin/{key}/download/{version}").get(marketplace::count_download))
        .service(res("/archives/{file}").get(marketplace::archive))
}

/// A resource whose other methods answer `405` in the error envelope.
fn res(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

/// The client address: the peer, or `X-Forwarded-For` when the peer is a trusted proxy.
pub(crate) fn client_addr(req: &HttpRequest) -> Option<String> {
    let trusted = req
        .app_data::<web::Data<crate::app::AppState>>()
        .map(|s| s.limits.trusted_proxies.clone())
        .unwrap_or_default();
    let xff = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    crate::ratelimit::client_ip(req.peer_addr().map(|a| a.ip()), xff, &trusted)
        .map(|ip| ip.to_string())
}

/// `201 Created` with a JSON body.
pub(crate) fn created<T: serde::Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}
