//! Pure domain rules: the clock, statuses and entitlements. No actix, no diesel.

pub mod account;
pub mod archive;
pub mod clock;
pub mod glpi;
pub mod status;
pub mod token;
