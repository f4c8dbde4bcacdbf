//! Offers (tiers): seeded by the migrations, read-only through the API.

use super::AnyConnection;
use super::Result;
use super::models::OfferRow;
use super::schema::offers::dsl as o;
use crate::domain::offer::Offer;
use diesel::prelude::*;

/// Every offer by rank.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<Offer>> {
    let rows: Vec<OfferRow> = o::offers
        .select(OfferRow::as_select())
        .order(o::rank.asc())
        .load(conn)?;
    Ok(rows.into_iter().map(Offer::from).collect())
}

/// Whether an offer with this reference exists.
pub fn exists(conn: &mut AnyConnection, reference: &str) -> Result<bool> {
    Ok(o::offers
        .find(reference)
        .select(o::reference)
        .first::<String>(conn)
        .optional()?
        .is_some())
}
