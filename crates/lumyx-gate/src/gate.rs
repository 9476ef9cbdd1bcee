//! The gate: from an `Authorization` header and the route's scope to a
//! [`Verdict`], checking in the order of the API's error table (header, key,
//! expiry, revocation, scope, then the limits) and consuming nothing before
//! the limits.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use std::time::Duration;

use http::HeaderValue;
use lumyx_keys::{ApiKeyRef, KeyFormat, Scope};
use lumyx_ratelimit::{Clock, Counted, Decision, DeniedBy, Snapshot, SystemClock, Usage};

use crate::verdict::LimitsSeen;
use crate::{
    Admitted, Backend, Denied, HeaderProblem, KeyEntry, KeyTable, Refusal, SyncBackend, Verdict,
    bearer_token,
};

/// The target of the gate's logs: denials at `TRACE` (with the key's id when
/// one was found, never the header), backend failures at `WARN`.
pub const LOG_TARGET: &str = "lumyx_gate";

/// How far ahead a key's end is announced in `x-lumyx-key-expires-at`.
const ANNOUNCE_END: Duration = Duration::from_secs(7 * 86_400);

/// Admits or denies requests: key verification against a [`KeyTable`],
/// scopes, the limits and usage counts of a [`Backend`], and a clock for
/// expiry.
///
/// With [`MemoryBackend`](crate::MemoryBackend) a check is synchronous
/// ([`Gate::check_now`]) and allocates nothing until its verdict is rendered;
/// with a Redis backend the same logic awaits one round trip ([`Gate::check`]).
///
/// ```
/// use std::sync::Arc;
/// use chrono::Utc;
/// use http::{HeaderMap, HeaderValue};
/// use lumyx_gate::{Gate, KeyTable, MemoryBackend, Refusal, Verdict};
/// use lumyx_keys::{ApiKey, KeyRecord, Scope};
///
/// let table = Arc::new(KeyTable::new());
/// let key = ApiKey::generate()?;
/// table.put(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now()));
/// let gate = Gate::new(table, MemoryBackend::new());
///
/// let header = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))?;
/// let verdict = gate.check_now(Some(&header), Scope::Chat);
/// let mut headers = HeaderMap::new();
/// verdict.write_headers(&mut headers);
/// assert!(verdict.is_admitted());
/// assert_eq!(headers["x-ratelimit-remaining-requests"], "59");
///
/// let Verdict::Denied(denied) = gate.check_now(None, Scope::Chat) else { unreachable!() };
/// assert_eq!(denied.refusal(), Refusal::MissingApiKey);
/// assert_eq!(denied.status(), 401);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Gate<B, C = SystemClock> {
    table: Arc<KeyTable>,
    backend: B,
    clock: C,
    format: KeyFormat,
}

impl<B> Gate<B> {
    /// A gate over `table` and `backend`, on the system clock, for `nova_`
    /// keys.
    pub fn new(table: Arc<KeyTable>, backend: B) -> Gate<B> {
        Gate::with_clock(table, backend, SystemClock)
    }
}

impl<B, C> Gate<B, C> {
    /// A gate on `clock` (a manual clock in tests; give the backend the same).
    pub fn with_clock(table: Arc<KeyTable>, backend: B, clock: C) -> Gate<B, C> {
        Gate {
            table,
            backend,
            clock,
            format: KeyFormat::default(),
        }
    }

    /// The gate for keys of another `format` (another prefix).
    #[must_use]
    pub fn with_key_format(mut self, format: KeyFormat) -> Gate<B, C> {
        self.format = format;
        self
    }

    /// The table of keys.
    pub fn table(&self) -> &Arc<KeyTable> {
        &self.table
    }

    /// The backend of limits and usage.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<B: Backend, C: Clock> Gate<B, C> {
    /// Checks a request's `Authorization` header for a route of `scope`.
    pub async fn check(&self, authorization: Option<&HeaderValue>, scope: Scope) -> Verdict {
        self.check_bytes(authorization.map(HeaderValue::as_bytes), scope)
            .await
    }

    /// [`Gate::check`] on the header's raw bytes.
    pub async fn check_bytes(&self, authorization: Option<&[u8]>, scope: Scope) -> Verdict {
        match self.identify(authorization) {
            Ok(entry) => self.check_entry(entry, scope).await,
            Err(refusal) => deny(Denied::new(refusal)),
        }
    }

    /// [`Gate::check_bytes`] when the backend decides at once: a header
    /// refused before the table is answered without a future.
    fn check_bytes_at_once(&self, authorization: Option<&[u8]>, scope: Scope) -> Verdict {
        match self.identify(authorization) {
            Ok(entry) => ready_now(self.check_entry(entry, scope)),
            Err(refusal) => deny(Denied::new(refusal)),
        }
    }

    /// The rest of a check, for a key found in the table: expiry,
    /// revocation, scope, then the limits.
    async fn check_entry(&self, entry: Arc<KeyEntry>, scope: Scope) -> Verdict {
        let now = self.clock.now();
        let record = entry.record();
        // Expiry, then revocation, then scope: the order of the error table.
        let refusal = if entry.is_expired(now) {
            Some((Refusal::KeyExpired, Counted::Expired))
        } else if entry.is_revoked(now) {
            Some((Refusal::KeyRevoked, Counted::Revoked))
        } else if !record.scopes.contains(scope) {
            Some((Refusal::InsufficientScope, Counted::OutOfScope))
        } else {
            None
        };
        if let Some((refusal, counted)) = refusal {
            let limits = match self.backend.refuse(&entry, counted, now).await {
                // Only a valid key out of its scope shows its limits.
                Ok(snapshot) if refusal == Refusal::InsufficientScope => {
                    LimitsSeen::Untouched(snapshot)
                }
                Ok(_) => LimitsSeen::Nothing,
                Err(err) => {
                    // The refusal stands whether or not it was counted.
                    tracing::warn!(target: LOG_TARGET, key = %record.id, error = &err as &(dyn std::error::Error + 'static), "could not count a refusal");
                    LimitsSeen::Nothing
                }
            };
            return deny(Denied {
                refusal,
                entry: Some(entry),
                scope: Some(scope),
                limits,
            });
        }
        match self.backend.decide(&entry, now).await {
            Ok(Decision::Admitted(snapshot)) => {
                let stops_at = entry.stops_within(now, ANNOUNCE_END);
                Verdict::Admitted(Admitted {
                    entry,
                    snapshot,
                    stops_at,
                })
            }
            Ok(Decision::Denied(denial)) => {
                let refusal = match denial.denied_by {
                    DeniedBy::Minute => Refusal::RateLimitExceeded,
                    DeniedBy::Day | DeniedBy::Both => Refusal::DailyLimitExceeded,
                };
                deny(Denied {
                    refusal,
                    entry: Some(entry),
                    scope: Some(scope),
                    limits: LimitsSeen::Refused(denial),
                })
            }
            Err(err) => {
                let refusal = match err {
                    lumyx_ratelimit::Error::Unavailable { .. }
                    | lumyx_ratelimit::Error::Failed { .. } => Refusal::ServiceUnavailable,
                    _ => Refusal::InternalError,
                };
                tracing::warn!(target: LOG_TARGET, key = %record.id, error = &err as &(dyn std::error::Error + 'static), "the limits could not be decided");
                deny(Denied {
                    refusal,
                    entry: Some(entry),
                    scope: Some(scope),
                    limits: LimitsSeen::Nothing,
                })
            }
        }
    }

    /// The key of the header, if it is well-formed and in the table.
    #[inline]
    fn identify(&self, authorization: Option<&[u8]>) -> Result<Arc<KeyEntry>, Refusal> {
        let token = bearer_token(authorization).map_err(|problem| match problem {
            HeaderProblem::Missing => Refusal::MissingApiKey,
            HeaderProblem::Malformed => Refusal::InvalidAuthorizationHeader,
        })?;
        let key: ApiKeyRef<'_> = self
            .format
            .parse(token)
            .map_err(|_| Refusal::InvalidApiKey)?;
        self.table
            .find_by_digest(&key.digest())
            .ok_or(Refusal::InvalidApiKey)
    }

    /// The usage of the key with this record and its limits now, consuming
    /// nothing: what a usage report shows.
    ///
    /// # Errors
    /// When the backend cannot answer.
    pub async fn usage(
        &self,
        entry: &KeyEntry,
    ) -> Result<(Usage, Snapshot), lumyx_ratelimit::Error> {
        let usage = self.backend.usage(entry, self.clock.now()).await?;
        let snapshot = self.backend.peek(entry).await?;
        Ok((usage, snapshot))
    }
}

impl<B: SyncBackend, C: Clock> Gate<B, C> {
    /// [`Gate::check`] without waiting: the backend answers at once.
    pub fn check_now(&self, authorization: Option<&HeaderValue>, scope: Scope) -> Verdict {
        self.check_bytes_now(authorization.map(HeaderValue::as_bytes), scope)
    }

    /// [`Gate::check_bytes`] without waiting.
    pub fn check_bytes_now(&self, authorization: Option<&[u8]>, scope: Scope) -> Verdict {
        const { assert!(B::DECIDES_AT_ONCE, "a SyncBackend decides at once") };
        self.check_bytes_at_once(authorization, scope)
    }
}

impl<B: Backend, C: Clock> Gate<B, C> {
    /// The verdict now, when the backend [decides at
    /// once](Backend::DECIDES_AT_ONCE); `None` otherwise, and nothing was
    /// checked: for code generic over the backend (the tower layer) that
    /// waits only where it must.
    pub fn check_if_at_once(
        &self,
        authorization: Option<&HeaderValue>,
        scope: Scope,
    ) -> Option<Verdict> {
        B::DECIDES_AT_ONCE
            .then(|| ready_now(self.check_bytes(authorization.map(HeaderValue::as_bytes), scope)))
    }
}

/// The output of a future that a [`SyncBackend`] makes ready at once.
fn ready_now<T>(future: impl Future<Output = T>) -> T {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("a backend that decides at once never waits"),
    }
}

/// A refusal, logged at `TRACE` with the key's id when one was found.
fn deny(denied: Denied) -> Verdict {
    match denied.record() {
        Some(record) => {
            tracing::trace!(target: LOG_TARGET, key = %record.id, refusal = ?denied.refusal, "denied");
        }
        None => tracing::trace!(target: LOG_TARGET, refusal = ?denied.refusal, "denied"),
    }
    Verdict::Denied(denied)
}

impl<B: fmt::Debug, C: fmt::Debug> fmt::Debug for Gate<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("table", &self.table)
            .field("backend", &self.backend)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
