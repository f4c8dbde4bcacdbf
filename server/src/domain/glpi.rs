//! What GLPI reads from `/api/registration/info` (protocol §4.2): the answer shape and its
//! messages in English and French.

use super::binding::BindRefusal;
use super::key::KeyRefusal;
use glpi_network_shared::ValidationStatus;
use serde::Serialize;

/// The answer language, from `Accept-Language` (GLPI sends a two-letter prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    /// The first language tag's primary subtag; French when it is `fr`, English otherwise.
    pub fn from_header(value: Option<&str>) -> Lang {
        let first = value
            .unwrap_or("")
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .split(['-', '_', ';'])
            .next()
            .unwrap_or("");
        if first.eq_ignore_ascii_case("fr") {
            Lang::Fr
        } else {
            Lang::En
        }
    }
}

/// Why `/info` answered as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Suspended,
    Ended,
    NoKey,
    InvalidKey,
    Revoked,
    Expired,
    UsedElsewhere,
    UidTaken,
    RateLimited,
}

impl Outcome {
    /// GLPI's `is_valid`: the key exists, is neither revoked nor expired, and is not bound to
    /// another instance.
    pub fn is_valid(self) -> bool {
        matches!(self, Outcome::Running | Outcome::Suspended | Outcome::Ended)
    }

    /// The `validation_message` GLPI shows verbatim.
    pub fn message(self, lang: Lang) -> &'static str {
        use Outcome::*;
        match (self, lang) {
            (Running, Lang::En) => "The registration key is valid.",
            (Running, Lang::Fr) => "La clé d'enregistrement est valide.",
            (Suspended, Lang::En) => {
                "The registration key is valid but its subscription is suspended."
            }
            (Suspended, Lang::Fr) => {
                "La clé d'enregistrement est valide mais son abonnement est suspendu."
            }
            (Ended, Lang::En) => "The registration key is valid but its subscription has ended.",
            (Ended, Lang::Fr) => {
                "La clé d'enregistrement est valide mais son abonnement est terminé."
            }
            (NoKey, Lang::En) => "No registration key was sent.",
            (NoKey, Lang::Fr) => "Aucune clé d'enregistrement n'a été envoyée.",
            (InvalidKey, Lang::En) => "Invalid registration key.",
            (InvalidKey, Lang::Fr) => "Clé d'enregistrement invalide.",
            (Revoked, Lang::En) => "This registration key has been revoked.",
            (Revoked, Lang::Fr) => "Cette clé d'enregistrement a été révoquée.",
            (Expired, Lang::En) => "This registration key has expired.",
            (Expired, Lang::Fr) => "Cette clé d'enregistrement a expiré.",
            (UsedElsewhere, Lang::En) => {
                "This registration key is already used by another GLPI instance."
            }
            (UsedElsewhere, Lang::Fr) => {
                "Cette clé d'enregistrement est déjà utilisée par une autre instance GLPI."
            }
            (UidTaken, Lang::En) => "This GLPI instance is already registered with another key.",
            (UidTaken, Lang::Fr) => "Cette instance GLPI est déjà enregistrée avec une autre clé.",
            (RateLimited, Lang::En) => {
                "Too many invalid registration keys were tried from your address; try again later."
            }
            (RateLimited, Lang::Fr) => {
                "Trop de clés d'enregistrement invalides ont été essayées depuis votre adresse ; réessayez plus tard."
            }
        }
    }
}

impl From<KeyRefusal> for Outcome {
    fn from(r: KeyRefusal) -> Self {
        match r {
            KeyRefusal::Revoked => Outcome::Revoked,
            KeyRefusal::Expired => Outcome::Expired,
        }
    }
}

impl From<BindRefusal> for Outcome {
    fn from(r: BindRefusal) -> Self {
        match r {
            BindRefusal::Key(k) => k.into(),
            // GLPI binds by UID: a URL held elsewhere only arises on the native API
            BindRefusal::KeyBound | BindRefusal::UrlTaken => Outcome::UsedElsewhere,
            BindRefusal::UidTaken => Outcome::UidTaken,
            BindRefusal::SubscriptionSuspended => Outcome::Suspended,
        }
    }
}

impl Outcome {
    /// The outcome for a usable key, from its subscription's standing.
    pub fn of_standing(standing: ValidationStatus) -> Outcome {
        match standing {
            ValidationStatus::Valid => Outcome::Running,
            ValidationStatus::SubscriptionSuspended => Outcome::Suspended,
            _ => Outcome::Ended,
        }
    }
}

/// `owner` as GLPI reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Owner {
    pub name: String,
}

/// `subscription` as GLPI reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    pub title: String,
    pub offer_reference: String,
    pub is_running: bool,
    pub begin_date: String,
    pub end_date: Option<String>,
}

/// The `/info` answer: `owner` and `subscription` are always present (null when invalid).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Info {
    pub is_valid: bool,
    pub validation_message: String,
    pub owner: Option<Owner>,
    pub subscription: Option<Subscription>,
}

impl Info {
    /// An invalid answer: GLPI caches it for a day.
    pub fn invalid(outcome: Outcome, lang: Lang) -> Info {
        Info {
            is_valid: false,
            validation_message: outcome.message(lang).to_owned(),
            owner: None,
            subscription: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_follows_the_first_tag() {
        assert_eq!(Lang::from_header(Some("fr")), Lang::Fr);
        assert_eq!(Lang::from_header(Some("FR-ca, en;q=0.5")), Lang::Fr);
        assert_eq!(Lang::from_header(Some("fr_FR")), Lang::Fr);
        assert_eq!(Lang::from_header(Some("en")), Lang::En);
        assert_eq!(Lang::from_header(Some("de")), Lang::En);
        assert_eq!(Lang::from_header(None), Lang::En);
    }

    #[test]
    fn only_key_problems_make_a_key_invalid() {
        assert!(
            Outcome::Ended.is_valid()
                && Outcome::Suspended.is_valid()
                && Outcome::Running.is_valid()
        );
        for o in [
            Outcome::NoKey,
            Outcome::InvalidKey,
            Outcome::Revoked,
            Outcome::Expired,
            Outcome::UsedElsewhere,
            Outcome::UidTaken,
        ] {
            assert!(!o.is_valid());
            assert_ne!(o.message(Lang::En), o.message(Lang::Fr));
        }
    }
}
