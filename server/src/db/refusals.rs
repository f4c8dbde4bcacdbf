//! Refused attempts of a known key in the audit trail, coalesced (DESIGN §3): identical
//! refusals (same key, action, outcome and client address) within a minute of the event that
//! first recorded them are one event whose `count` grows. An attacker replaying a known key
//! against foreign URLs therefore adds one event a minute, not one per request (and its
//! chosen URLs after the first are not stored).
//!
//! `count` is not part of the event's hash (the chain covers what happened and when it was
//! first seen; the count is a tally kept on the event afterwards).

use super::models::NewAuditEvent;
use super::schema::audit_events::dsl as a;
use super::{Error, Result, Touches, Transact};
use diesel::prelude::*;

/// Identical refusals within this many seconds of the first are one event.
pub const COALESCE_SECS: i64 = 60;

/// Records a refusal: adds one to the `count` of the latest identical event of the last
/// minute, or appends a new event (outside any transaction of the caller's; its own is a write
/// transaction that changes no key state). A refusal without a known key is appended as is.
pub fn record(c: &mut impl Transact, ev: &NewAuditEvent) -> Result<()> {
    c.write(Touches::AuditOnly, |tx| {
        if let Some(key_id) = &ev.key_id {
            let cutoff = ev.at - chrono::Duration::seconds(COALESCE_SECS);
            let mut q = a::audit_events
                .filter(a::key_id.eq(key_id))
                .filter(a::action.eq(&ev.action))
                .filter(a::outcome.eq(&ev.outcome))
                .filter(a::at.ge(cutoff))
                .select(a::id)
                .order(a::id.desc())
                .into_boxed();
            q = match &ev.client_addr {
                Some(addr) => q.filter(a::client_addr.eq(addr)),
                None => q.filter(a::client_addr.is_null()),
            };
            if let Some(id) = q.first::<i64>(tx.conn()).optional()? {
                diesel::update(a::audit_events.find(id))
                    .set(a::count.eq(a::count + 1))
                    .execute(tx.conn())?;
                return Ok::<_, Error>(());
            }
        }
        tx.audit(ev.clone());
        Ok(())
    })
}
