//! Pure domain rules: the clock, statuses and entitlements. No actix, no diesel.

pub mod clock;
pub mod status;
pub mod token;
