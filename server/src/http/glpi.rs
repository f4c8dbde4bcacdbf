//! The GLPI-compatible registration endpoints (protocol §4.1–§4.3): availability, `/info`
//! (which binds the key to the instance's UID) and `/offers`. Every answer is JSON.

use super::lookup as guard;
use crate::app::AppState;
use crate::db::reader::{ReadPath, Reader};
use crate::db::{self, audit::Actor, key_state, registrations};
use crate::domain::binding::{KeyState, same_instance};
use crate::domain::glpi::{Info, Lang, Outcome, Owner, Subscription};
use crate::domain::subscription::iso_date;
use crate::http::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use glpi_network_shared::RegistrationKey;
use serde_json::json;

/// A request header as a trimmed string (`None` when absent, empty or not visible ASCII).
pub(crate) fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `GET /api/ping` and `GET /api/registration/`: GLPI only needs a non-empty body.
pub async fn ping() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "service": "glpi-network"}))
}

/// `GET /api/registration/offers`: `[{offer_reference, title}]` by rank.
pub async fn offers(state: web::Data<AppState>) -> HttpResponse {
    let mut list: Vec<_> = state.offers.values().collect();
    list.sort_by_key(|o| o.rank);
    let body: Vec<_> = list
        .into_iter()
        .map(|o| json!({"offer_reference": o.reference, "title": o.title}))
        .collect();
    HttpResponse::Ok().json(body)
}

/// Checks a key as GLPI's `/info` does, binding it to `uid` on the first valid call. Without a
/// UID nothing can be bound: the key must be usable and not bound to a UID (a key bound to one
/// is another instance's). A suspended subscription binds no new UID, but its key is still
/// answered as GLPI expects (valid, subscription not running).
fn check(
    c: &mut db::Conn,
    key: &RegistrationKey,
    uid: Option<&str>,
    now: chrono::NaiveDateTime,
    actor: &Actor,
) -> db::Result<KeyState> {
    match uid {
        Some(uid) => match registrations::register(c, key, None, Some(uid), now, actor) {
            Err(db::Error::Bind(crate::domain::binding::BindRefusal::SubscriptionSuspended)) => {
                let st = key_state::load_state(c, key)?;
                st.usable_by(Some(uid), now)?;
                Ok(st)
            }
            bound => bound.map(|b| b.state),
        },
        None => {
            let st = key_state::load_state(c, key)?;
            st.usable_by(None, now)?;
            Ok(st)
        }
    }
}

/// The GLPI outcome of a refusal, or `None` when the error is the server's own.
fn outcome_of(e: &db::Error) -> Option<Outcome> {
    match e {
        db::Error::UnknownKey => Some(Outcome::InvalidKey),
        db::Error::Key(r) => Some((*r).into()),
        db::Error::Bind(r) => Some((*r).into()),
        _ => None,
    }
}

/// Whether a cached state answers `/info` exactly as [`check`] would, without writing: the
/// instance already bound (with `last_seen_at` fresh), or a usable key without a UID.
fn cached_answer(ks: &KeyState, uid: Option<&str>, now: chrono::NaiveDateTime) -> bool {
    match uid {
        Some(uid) => {
            same_instance(ks, None, Some(uid), now)
                && ks
                    .registration
                    .as_ref()
                    .is_some_and(|r| !r.last_seen_due(now))
        }
        None => ks.usable_by(None, now).is_ok(),
    }
}

/// The `/info` answer for a usable key.
pub(crate) fn valid_info(state: &AppState, ks: &KeyState, lang: Lang) -> Info {
    let sub = &ks.subscription;
    let today = state.clock.now().date_naive();
    let outcome = Outcome::of_standing(sub.standing(today));
    Info {
        is_valid: true,
        validation_message: outcome.message(lang).to_owned(),
        owner: Some(Owner {
            name: ks.owner.clone(),
        }),
        subscription: Some(Subscription {
            title: state
                .offers
                .get(&sub.offer)
                .map(|o| o.title.clone())
                .unwrap_or_else(|| sub.offer.clone()),
            offer_reference: sub.offer.clone(),
            is_running: outcome == Outcome::Running,
            begin_date: iso_date(sub.begin_date),
            end_date: sub.end_date.map(iso_date),
        }),
    }
}

/// `GET /api/registration/info`: `X-Registration-Key`, `X-Glpi-Network-Uid`,
/// `Accept-Language`. Always `200` with the §4.2 shape, except when the server itself fails
/// (`503` with the error envelope, which GLPI does not cache).
pub async fn registration_info(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let lang = Lang::from_header(header(&req, "accept-language"));
    let Some(raw_key) = header(&req, "x-registration-key") else {
        return Ok(HttpResponse::Ok().json(Info::invalid(Outcome::NoKey, lang)));
    };
    // Over the failed look-up limit: an answer GLPI can show (and will cache for a day).
    let caller = match guard::caller(&state, &req) {
        Ok(c) => c,
        Err(ApiError::RateLimited { .. }) => {
            return Ok(HttpResponse::Ok().json(Info::invalid(Outcome::RateLimited, lang)));
        }
        Err(e) => return Err(e),
    };
    let key = match caller.parse_key(&state, &req, raw_key).await {
        Ok(key) => key,
        Err(ApiError::RateLimited { .. }) => {
            return Ok(HttpResponse::Ok().json(Info::invalid(Outcome::RateLimited, lang)));
        }
        Err(ApiError::Client { .. }) => {
            return Ok(HttpResponse::Ok().json(Info::invalid(Outcome::InvalidKey, lang)));
        }
        Err(e) => return Err(e),
    };
    // A malformed UID cannot bind anything: treat it as absent.
    let uid =
        header(&req, "x-glpi-network-uid").and_then(|u| crate::domain::binding::parse_uid(u).ok());
    let now = state.clock.now_naive();
    let hash = key.hash();
    let cached = state
        .keys
        .get(&hash)
        .filter(|ks| cached_answer(ks, uid.as_deref(), now));
    state
        .metrics
        .key_cache(state.keys.enabled(), cached.is_some());
    if let Some(ks) = cached {
        return Ok(HttpResponse::Ok().json(valid_info(&state, &ks, lang)));
    }
    if let Some(reader) = req.app_data::<Reader>()
        && let Some(ks) = info_from_worker(&state, reader, &hash, uid.as_deref(), now).await
    {
        state.metrics.key_read(reader.path());
        return Ok(HttpResponse::Ok().json(valid_info(&state, &ks, lang)));
    }
    state.metrics.key_read(ReadPath::Pool);
    info_from_database(&state, &caller, (key, hash), uid, now, lang).await
}

/// `/info` read on the worker's own connection when the answer needs no write: the instance
/// already bound (a due `last_seen_at` recorded for the next batch), or a usable key without a
/// UID. `None` sends the request down the pooled path, which binds, refuses and audits.
async fn info_from_worker(
    state: &AppState,
    reader: &Reader,
    hash: &str,
    uid: Option<&str>,
    now: chrono::NaiveDateTime,
) -> Option<std::sync::Arc<KeyState>> {
    let stamp = state.keys.stamp(hash);
    let mut ks = super::read_state(reader, hash).await?;
    match uid {
        Some(uid) => {
            same_instance(&ks, None, Some(uid), now).then_some(())?;
            reader.note_use(&mut ks, now).then_some(())?;
        }
        None => ks.usable_by(None, now).ok()?,
    }
    let ks = std::sync::Arc::new(ks);
    state.keys.put(hash, ks.clone(), stamp);
    Some(ks)
}

/// `/info` from the database (binding the UID on the first valid call); the state read is
/// cached under the stamp taken before the read.
async fn info_from_database(
    state: &AppState,
    caller: &guard::Caller,
    (key, hash): (RegistrationKey, String),
    uid: Option<String>,
    now: chrono::NaiveDateTime,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let stamp = state.keys.stamp(&hash);
    let actor = Actor::new("glpi", Some(caller.addr.clone()));
    let result = super::run(&state.db, move |c| {
        match check(c, &key, uid.as_deref(), now, &actor) {
            Ok(ks) => Ok(Ok(ks)),
            Err(e) => match outcome_of(&e) {
                Some(o) => Ok(Err(o)),
                None => Err(e),
            },
        }
    })
    .await;
    if let Ok(Err(Outcome::InvalidKey)) = result {
        match caller.failed(state).await {
            Ok(()) => {}
            Err(ApiError::RateLimited { .. }) => {
                return Ok(HttpResponse::Ok().json(Info::invalid(Outcome::RateLimited, lang)));
            }
            Err(e) => return Err(e),
        }
    }
    match result {
        Ok(Ok(ks)) => {
            let ks = std::sync::Arc::new(ks);
            state.keys.put(&hash, ks.clone(), stamp);
            Ok(HttpResponse::Ok().json(valid_info(state, &ks, lang)))
        }
        Ok(Err(outcome)) => {
            // never answer a cached "valid" after the database said otherwise
            state.keys.forget(&hash);
            Ok(HttpResponse::Ok().json(Info::invalid(outcome, lang)))
        }
        Err(ApiError::Internal(e)) => {
            tracing::error!(error = format!("{e:#}"), "registration info failed");
            Err(ApiError::unavailable(
                "registration information is temporarily unavailable",
            ))
        }
        Err(e) => Err(e),
    }
}
