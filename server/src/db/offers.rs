//! Offers (tiers): seeded by the migrations, read-only through the API.

use super::AnyConnection;
use super::models::OfferRow;
use super::schema::offers::dsl as o;
use crate::http::error::ApiError;
use diesel::prelude::*;

/// Every offer by rank.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<OfferRow>, ApiError> {
    Ok(o::offers
        .select(OfferRow::as_select())
        .order(o::rank.asc())
        .load(conn)?)
}

/// One offer by reference.
pub fn find(conn: &mut AnyConnection, reference: &str) -> Result<Option<OfferRow>, ApiError> {
    Ok(o::offers
        .find(reference)
        .select(OfferRow::as_select())
        .first(conn)
        .optional()?)
}
