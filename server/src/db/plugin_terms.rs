//! A catalogue plugin's commercial terms (DESIGN §11.1): whether its archive needs a license,
//! the term of a new license and a display price. Kept beside `plugins` in their own table.

use super::schema::plugin_terms::dsl as t;
use super::{AnyConnection, Error, Result};
use crate::domain::catalogue::{DEFAULT_LICENSE_TERM_DAYS, PluginInput, check_license_term};
use diesel::prelude::*;
use std::collections::HashMap;

/// A plugin's terms (none stored: a free plugin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = super::schema::plugin_terms, treat_none_as_null = true)]
pub struct Terms {
    pub plugin_key: String,
    pub commercial: bool,
    pub license_term_days: Option<i32>,
    pub price: Option<String>,
}

impl Terms {
    /// The term of a new license, in days.
    pub fn term_days(&self) -> i32 {
        self.license_term_days.unwrap_or(DEFAULT_LICENSE_TERM_DAYS)
    }
}

/// The terms of `key`, when it has some.
pub fn find(c: &mut AnyConnection, key: &str) -> Result<Option<Terms>> {
    Ok(t::plugin_terms
        .find(key)
        .select(Terms::as_select())
        .first(c)
        .optional()?)
}

/// Every plugin's terms by key.
pub fn all(c: &mut AnyConnection) -> Result<HashMap<String, Terms>> {
    let rows: Vec<Terms> = t::plugin_terms.select(Terms::as_select()).load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.plugin_key.clone(), r))
        .collect())
}

/// Applies the terms `input` names to plugin `key` (after the plugin row exists).
pub fn save(c: &mut AnyConnection, key: &str, input: &PluginInput) -> Result<()> {
    if input.commercial.is_none() && input.license_term_days.is_none() && input.price.is_none() {
        return Ok(());
    }
    let mut terms = find(c, key)?.unwrap_or_else(|| Terms {
        plugin_key: key.to_owned(),
        ..Terms::default()
    });
    if let Some(commercial) = input.commercial {
        terms.commercial = commercial;
    }
    if let Some(days) = input.license_term_days {
        terms.license_term_days = Some(check_license_term(days)?);
    }
    if let Some(price) = &input.price {
        if price.chars().count() > 64 || price.chars().any(char::is_control) {
            return Err(Error::invalid(
                "price must be at most 64 printable characters",
            ));
        }
        terms.price = (!price.trim().is_empty()).then(|| price.trim().to_owned());
    }
    // (MultiConnection has no upsert: update, else insert, inside the caller's transaction)
    let updated = diesel::update(t::plugin_terms.find(key))
        .set(&terms)
        .execute(c)?;
    if updated == 0 {
        diesel::insert_into(t::plugin_terms)
            .values(&terms)
            .execute(c)?;
    }
    Ok(())
}
