//! The query strings of the admin lists: each list takes only the parameters it documents
//! (`deny_unknown_fields`), so an unknown or misspelt parameter answers `400 invalid_request`
//! naming it, never the unfiltered list (DESIGN §14). A value that cannot be read (a `limit`
//! out of range, `include_released=maybe`) is refused the same way; a filter naming something
//! that does not exist is refused when the list is read ([`ListQuery::check`]).

use crate::db::page::{ListQuery, MAX_LIMIT};
use serde::{Deserialize, Deserializer, de::Error as _};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

/// `limit`: an integer from 1 to [`MAX_LIMIT`]; the error names the parameter.
fn limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(D::Error::custom(format!(
            "limit: must be an integer from 1 to {MAX_LIMIT}, not {text:?}"
        ))),
    }
}

/// A boolean parameter (`true` or `false`); the error names `include_released`.
fn include_released<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(D::Error::custom(format!(
            "include_released: must be true or false, not {other:?}"
        ))),
    }
}

/// Declares a list's query parameters: `limit`, `cursor` and the given text filters, how they
/// become a [`ListQuery`], and their OpenAPI description.
macro_rules! list_params {
    ($(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $field:ident ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default, Deserialize, IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Page size, 1 to 500 (default 50).
            #[serde(default, deserialize_with = "limit")]
            #[param(minimum = 1, maximum = 500)]
            pub limit: Option<i64>,
            /// The `next_cursor` of the previous page.
            #[serde(default)]
            pub cursor: Option<String>,
            $( $(#[$fm])* #[serde(default)] pub $field: Option<String>, )*
        }

        impl From<$name> for ListQuery {
            fn from(p: $name) -> ListQuery {
                ListQuery {
                    limit: p.limit,
                    cursor: p.cursor,
                    $( $field: p.$field, )*
                    ..Default::default()
                }
            }
        }

        impl $name {
            /// The OpenAPI description of these parameters.
            pub fn params() -> Vec<Parameter> {
                <$name as IntoParams>::into_params(|| Some(ParameterIn::Query))
            }
        }
    };
}

list_params! {
    /// `?limit=&cursor=`: the lists without filters.
    PageParams {}
}

list_params! {
    /// `GET /v1/admin/keys`.
    KeyParams {
        /// Only the keys of this subscription (an unknown one answers 400).
        subscription_id,
        /// Only the keys of this subscriber's subscriptions (an unknown one answers 400).
        subscriber_id,
        /// `active` or `revoked`.
        #[param(pattern = r"^(active|revoked)$")]
        status,
        /// Only the keys whose display prefix starts with this, compared case-insensitively
        /// (1 to 64 characters).
        #[param(pattern = r"^[ -~]*[!-~][ -~]*$", max_length = 64)]
        prefix,
    }
}

list_params! {
    /// `GET /v1/admin/subscriptions`.
    SubscriptionParams {
        /// Only this subscriber's subscriptions (an unknown one answers 400).
        subscriber_id,
        /// `active`, `suspended` or `cancelled`.
        #[param(pattern = r"^(active|suspended|cancelled)$")]
        status,
    }
}

list_params! {
    /// `GET /v1/admin/licenses`.
    LicenseParams {
        /// Only this subscriber's licenses (an unknown one answers 400).
        subscriber_id,
        /// Only the licenses of this plugin (its key).
        plugin,
        /// `active` or `revoked`.
        #[param(pattern = r"^(active|revoked)$")]
        status,
    }
}

list_params! {
    /// `GET /v1/admin/enrollment-keys` and `GET /v1/admin/invitations`.
    KindParams {
        /// Only this subscriber's keys (an unknown one answers 400).
        subscriber_id,
        /// `active` or `revoked`.
        #[param(pattern = r"^(active|revoked)$")]
        status,
    }
}

list_params! {
    /// `GET /v1/admin/webhooks/{id}/deliveries`.
    DeliveryParams {
        /// `pending`, `delivered` or `failed`.
        #[param(pattern = r"^(pending|delivered|failed)$")]
        status,
    }
}

list_params! {
    /// `GET /v1/admin/audit`.
    AuditParams {
        /// Only the events about this key (its id).
        key_id,
    }
}

/// `GET /v1/admin/registrations`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegistrationParams {
    /// Page size, 1 to 500 (default 50).
    #[serde(default, deserialize_with = "limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Only the registrations of this key (its id).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Include released registrations (default false).
    #[serde(default, deserialize_with = "include_released")]
    pub include_released: Option<bool>,
}

impl From<RegistrationParams> for ListQuery {
    fn from(p: RegistrationParams) -> ListQuery {
        ListQuery {
            limit: p.limit,
            cursor: p.cursor,
            key_id: p.key_id,
            include_released: p.include_released,
            ..Default::default()
        }
    }
}

impl RegistrationParams {
    /// The OpenAPI description of these parameters.
    pub fn params() -> Vec<Parameter> {
        <RegistrationParams as IntoParams>::into_params(|| Some(ParameterIn::Query))
    }
}

/// No parameter at all (a list that is not paged).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(q: &str) -> Result<T, String> {
        actix_web::web::Query::<T>::from_query(q)
            .map(|q| q.into_inner())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_unknown_parameter_or_unreadable_value_is_refused_by_name() {
        let e = parse::<KeyParams>("subscriber=x").unwrap_err();
        assert!(e.contains("subscriber"), "{e}");
        let e = parse::<PageParams>("subscriber_id=x").unwrap_err();
        assert!(e.contains("subscriber_id"), "{e}");
        for bad in ["limit=0", "limit=501", "limit=abc", "limit=1.5"] {
            let e = parse::<KeyParams>(bad).unwrap_err();
            assert!(e.contains("limit"), "{bad}: {e}");
        }
        let e = parse::<RegistrationParams>("include_released=maybe").unwrap_err();
        assert!(e.contains("include_released"), "{e}");
        let ok: ListQuery = parse::<KeyParams>("limit=5&subscriber_id=s&prefix=GLPI-AB")
            .unwrap()
            .into();
        assert_eq!(ok.limit, Some(5));
        assert_eq!(ok.subscriber_id.as_deref(), Some("s"));
        assert_eq!(ok.prefix.as_deref(), Some("GLPI-AB"));
    }
}
