use std::time::Duration;

/// The state of one policy (minute or day) as seen by one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicySnapshot {
    /// The configured limit: requests per minute, or requests per UTC day.
    pub limit: u32,
    /// How many more requests this policy would admit right now.
    pub remaining: u32,
    /// Minute: the time until the bucket is full again (OpenAI's meaning of
    /// `x-ratelimit-reset-requests`). Day: the time until the next 00:00:00
    /// UTC.
    pub reset: Duration,
    /// The time until more quota is made available (the `t` of the IETF
    /// `ratelimit` header). Minute: until the next request regenerates, zero
    /// when the bucket is full. Day: until the next 00:00:00 UTC.
    pub next_quota_in: Duration,
}

/// Both policies of a key, after a decision (or at a [`peek`](crate::MemoryLimiter::peek)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The per-minute token bucket.
    pub minute: PolicySnapshot,
    /// The per-UTC-day counter.
    pub day: PolicySnapshot,
}

/// Which policy refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeniedBy {
    /// The minute bucket was empty; the day still had room.
    Minute,
    /// The day's quota was used up; the minute bucket still had a token.
    Day,
    /// Both refused.
    Both,
}

impl DeniedBy {
    /// Whether the day limit took part in the denial: the refusal that lasts
    /// longer, so an API answers `daily_limit_exceeded` rather than
    /// `rate_limit_exceeded`, and tells clients not to retry before midnight.
    pub const fn includes_day(self) -> bool {
        matches!(self, Self::Day | Self::Both)
    }

    /// Whether the minute limit took part in the denial.
    pub const fn includes_minute(self) -> bool {
        matches!(self, Self::Minute | Self::Both)
    }
}

/// A refused request: nothing was consumed from either policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Denial {
    /// The policy (or policies) that refused.
    pub denied_by: DeniedBy,
    /// The time until this request would be admitted: the larger of the two
    /// waits when both refuse.
    pub retry_after: Duration,
    /// The state of both policies.
    pub snapshot: Snapshot,
}

/// The outcome of checking one request against a key's two limits.
///
/// A denial is a value, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a decision that is not looked at admits everything"]
pub enum Decision {
    /// Admitted; one request was consumed from both policies.
    Admitted(Snapshot),
    /// Denied; nothing was consumed.
    Denied(Denial),
}

impl Decision {
    /// Whether the request was admitted.
    pub const fn is_admitted(&self) -> bool {
        matches!(self, Self::Admitted(_))
    }

    /// The state of both policies after the decision.
    pub const fn snapshot(&self) -> &Snapshot {
        match self {
            Self::Admitted(snapshot) => snapshot,
            Self::Denied(denial) => &denial.snapshot,
        }
    }

    /// The denial, if the request was denied.
    pub const fn denial(&self) -> Option<&Denial> {
        match self {
            Self::Admitted(_) => None,
            Self::Denied(denial) => Some(denial),
        }
    }

    /// The time until the request would be admitted, if it was denied.
    pub fn retry_after(&self) -> Option<Duration> {
        self.denial().map(|denial| denial.retry_after)
    }
}
