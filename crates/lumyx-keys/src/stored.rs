//! What the stores that keep records outside this process (Redis, SQLite)
//! share: how a time is kept (whole seconds and the nanoseconds within,
//! both integers, so that times compare exactly) and read back, how scopes
//! are kept (their names joined by commas), and the error for a stored
//! field that cannot be read.

use chrono::{DateTime, Utc};

use crate::{Error, KeyRecord, Scope, Scopes};

/// What the seconds of a stored time must hold.
pub(crate) const SECONDS: &str =
    "seconds since 1970 from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z";
/// What the nanoseconds of a stored time must hold.
pub(crate) const NANOS: &str = "the nanoseconds within its second, at most 9999-12-31T23:59:59Z";

/// A stored `field` that is not `expected`.
pub(crate) fn corrupt(
    field: &'static str,
    expected: &'static str,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::Corrupt {
        field,
        expected,
        source,
    }
}

/// The time of the fields (or columns) `[secs, nanos]`. A time outside
/// what a record may hold is corrupt too, so that whatever is read back
/// can be written again.
pub(crate) fn stored_time(
    [secs, nanos]: [&'static str; 2],
    seconds: i64,
    nanoseconds: i64,
) -> Result<DateTime<Utc>, Error> {
    let held = |time: Option<DateTime<Utc>>| {
        time.filter(|time| KeyRecord::check_time(secs, *time).is_ok())
    };
    held(DateTime::from_timestamp(seconds, 0)).ok_or_else(|| corrupt(secs, SECONDS, None))?;
    u32::try_from(nanoseconds)
        .ok()
        .and_then(|nanoseconds| held(DateTime::from_timestamp(seconds, nanoseconds)))
        .ok_or_else(|| corrupt(nanos, NANOS, None))
}

/// Scopes as stored: their names joined by commas.
pub(crate) fn scopes_text(scopes: Scopes) -> String {
    let names: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
    names.join(",")
}

/// What stored scopes must hold.
pub(crate) const SCOPES: &str = "scope names joined by commas";

/// Scopes from their stored text (see [`scopes_text`]).
pub(crate) fn stored_scopes(text: &str) -> Result<Scopes, Error> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse::<Scope>()
                .map_err(|err| corrupt("scopes", SCOPES, Some(Box::new(err))))
        })
        .collect()
}
