//! Offers (tiers) and what they entitle.

use std::collections::HashMap;

/// The free offer whose entitlements survive the end of a subscription.
pub const FREE_OFFER: &str = "registered";

/// An offer: seeded by the migrations, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub reference: String,
    pub title: String,
    pub rank: i32,
    pub entitlements: Vec<String>,
}

/// The seeded offers by reference (read-only, loaded at start).
pub type OfferCatalog = HashMap<String, Offer>;
