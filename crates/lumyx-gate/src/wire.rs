//! The one place where the key crate's records, scopes and usage meet the
//! API's wire shapes: times become Unix seconds, scopes their names, usage
//! the `/v1/keys/{id}/usage` answer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lumyx_api_types as api;
use lumyx_keys::{KeyRecord, Scope, Scopes};
use lumyx_ratelimit::{Counted, Counts, PolicySnapshot, Snapshot, Usage};

/// The wire scope of a key scope.
pub fn scope_to_wire(scope: Scope) -> api::Scope {
    match scope {
        Scope::Models => api::Scope::Models,
        Scope::Chat => api::Scope::Chat,
        Scope::Agents => api::Scope::Agents,
        Scope::Personas => api::Scope::Personas,
        Scope::Conversations => api::Scope::Conversations,
    }
}

/// The key scope of a wire scope; `None` for a name this version does not
/// know (kept by the wire type as `Other`).
pub fn scope_from_wire(scope: &api::Scope) -> Option<Scope> {
    Scope::ALL
        .into_iter()
        .find(|known| scope_to_wire(*known) == *scope)
}

/// The key scopes of wire scopes; the first unknown name is the error.
///
/// ```
/// use lumyx_api_types::Scope as Wire;
/// use lumyx_gate::wire::scopes_from_wire;
/// use lumyx_keys::Scope;
///
/// let scopes = scopes_from_wire(&[Wire::Models, Wire::Chat]).unwrap();
/// assert!(scopes.contains(Scope::Chat) && !scopes.contains(Scope::Agents));
/// assert_eq!(scopes_from_wire(&[Wire::from("admin")]).unwrap_err(), "admin");
/// ```
pub fn scopes_from_wire(scopes: &[api::Scope]) -> Result<Scopes, String> {
    scopes
        .iter()
        .map(|scope| scope_from_wire(scope).ok_or_else(|| scope.to_string()))
        .collect()
}

/// Unix seconds of a time (whole seconds, rounded down).
pub fn unix_seconds(time: DateTime<Utc>) -> i64 {
    time.timestamp()
}

/// The wire form of a record: what the key management API shows of a key.
pub fn record_to_wire(record: &KeyRecord) -> api::KeyRecord {
    api::KeyRecord {
        id: record.id.to_string(),
        hint: record.hint.to_string(),
        name: record.name.clone(),
        owner: record.owner.clone(),
        created_at: unix_seconds(record.created_at),
        expires_at: record.expires_at.map(unix_seconds),
        revoked_at: record.revoked_at.map(unix_seconds),
        rate_limit_per_minute: record.limits.rate_limit_per_minute(),
        daily_limit: record.limits.daily_limit(),
        scopes: record.scopes.iter().map(scope_to_wire).collect(),
    }
}

/// The wire counts of usage counts.
pub fn counts_to_wire(counts: &Counts) -> api::UsageCounts {
    let mut wire = api::UsageCounts {
        admitted: counts.admitted(),
        denied: counts.denied(),
        ..api::UsageCounts::default()
    };
    for (reason, count) in counts.denied_by_reason() {
        if count > 0 {
            wire.denied_by_reason
                .insert(api::ErrorCode::from(reason.code()), count);
        }
    }
    wire
}

/// Whole seconds, rounded up.
fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn limit_to_wire(policy: &PolicySnapshot) -> api::LimitState {
    api::LimitState {
        limit: policy.limit,
        remaining: policy.remaining,
        reset: ceil_seconds(policy.reset),
    }
}

/// The answer of `GET /v1/keys/{id}/usage`: today's and all-time counts, the
/// last admission, the last 31 UTC days oldest first, and the limits now.
pub fn usage_to_wire(record: &KeyRecord, usage: &Usage, limits: &Snapshot) -> api::KeyUsage {
    api::KeyUsage {
        id: record.id.to_string(),
        today: counts_to_wire(&usage.today()),
        total: counts_to_wire(&usage.totals),
        last_used_at: usage.last_used.map(|at| unix_seconds(at.to_utc())),
        days: usage
            .days
            .iter()
            .map(|day| api::DayUsage {
                date: day.date().to_string(),
                counts: counts_to_wire(&day.counts),
            })
            .collect(),
        limits: Some(api::UsageLimits {
            minute: limit_to_wire(&limits.minute),
            day: limit_to_wire(&limits.day),
        }),
    }
}

/// The usage kind an API error code counts as, if any.
pub fn counted_of_code(code: &api::ErrorCode) -> Option<Counted> {
    Counted::from_code(code.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips() {
        for scope in Scope::ALL {
            assert_eq!(scope_from_wire(&scope_to_wire(scope)), Some(scope));
            assert_eq!(scope_to_wire(scope).as_str(), scope.as_str());
        }
    }

    #[test]
    fn every_counted_kind_is_an_error_code_or_admitted() {
        for kind in Counted::ALL {
            let code = api::ErrorCode::from(kind.code());
            if kind == Counted::Admitted {
                assert!(matches!(code, api::ErrorCode::Other(_)));
            } else {
                assert!(!matches!(code, api::ErrorCode::Other(_)), "{kind}");
                assert_eq!(counted_of_code(&code), Some(kind));
            }
        }
    }
}
