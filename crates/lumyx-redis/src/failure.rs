//! What a failed Redis call means: Redis is unreachable, Redis says it cannot
//! serve now, or the call's own data is at fault. Each class asks for a
//! different answer, so one key's bad data never takes down the others.

use std::fmt;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The class of a failed Redis call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The connection failed or no reply came in time: Redis may be down for
    /// every caller, and it may have run the call before the reply was lost.
    Unreachable,
    /// Redis answered that it cannot serve now: `LOADING`, `READONLY` (a
    /// replica, e.g. after a failover), `MASTERDOWN`, `OOM`, `BUSY` (another
    /// script runs too long), `TRYAGAIN` or `CLUSTERDOWN`. The call did not
    /// take effect; other calls fail alike until Redis recovers.
    Unavailable,
    /// The call failed because of its own key's data or the script:
    /// `WRONGTYPE`, a script error, a reply of an unexpected shape. Other
    /// keys are not affected.
    Data,
}

/// The server error codes that mean "cannot serve now".
const UNAVAILABLE_CODES: [&str; 7] = [
    "LOADING",
    "READONLY",
    "MASTERDOWN",
    "OOM",
    "BUSY",
    "TRYAGAIN",
    "CLUSTERDOWN",
];

/// A failed Redis call: the error Redis or the client gave, or no reply
/// within the caller's deadline.
///
/// ```
/// use std::time::Duration;
/// use lumyx_redis::{FailureClass, RedisFailure};
///
/// let failure = RedisFailure::timed_out(Duration::from_millis(250));
/// assert_eq!(failure.class(), FailureClass::Unreachable);
/// assert_eq!(failure.to_string(), "no reply from Redis within 250ms");
/// ```
#[derive(Debug, Clone)]
pub struct RedisFailure {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    TimedOut(Duration),
    Redis(RedisError),
}

impl RedisFailure {
    /// No reply came within `after`.
    pub fn timed_out(after: Duration) -> RedisFailure {
        RedisFailure {
            repr: Repr::TimedOut(after),
        }
    }

    /// What the failure means for the caller.
    pub fn class(&self) -> FailureClass {
        match &self.repr {
            Repr::TimedOut(_) => FailureClass::Unreachable,
            Repr::Redis(err) => classify(err),
        }
    }

    /// The server's error code (`OOM`, `WRONGTYPE`, ...), when Redis answered
    /// with an error.
    pub fn code(&self) -> Option<&str> {
        match &self.repr {
            Repr::TimedOut(_) => None,
            Repr::Redis(err) => err.code(),
        }
    }

    /// The client's error, when there is one.
    pub fn redis_error(&self) -> Option<&RedisError> {
        match &self.repr {
            Repr::TimedOut(_) => None,
            Repr::Redis(err) => Some(err),
        }
    }
}

impl From<RedisError> for RedisFailure {
    fn from(err: RedisError) -> Self {
        RedisFailure {
            repr: Repr::Redis(err),
        }
    }
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::TimedOut(after) => write!(f, "no reply from Redis within {after:?}"),
            Repr::Redis(err) => {
                match self.class() {
                    FailureClass::Unreachable => f.write_str("Redis is unreachable")?,
                    FailureClass::Unavailable => f.write_str("Redis cannot serve now")?,
                    FailureClass::Data => f.write_str("Redis refused the call")?,
                }
                match err.code() {
                    Some(code) => write!(f, " ({code}): {err}"),
                    None => write!(f, ": {err}"),
                }
            }
        }
    }
}

impl std::error::Error for RedisFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.repr {
            Repr::TimedOut(_) => None,
            Repr::Redis(err) => Some(err),
        }
    }
}

/// The class of a client error.
///
/// ```
/// use lumyx_redis::{classify, FailureClass};
///
/// let oom = redis::make_extension_error("OOM".into(), Some("command not allowed".into()));
/// assert_eq!(classify(&oom), FailureClass::Unavailable);
/// let wrong_type = redis::make_extension_error("WRONGTYPE".into(), None);
/// assert_eq!(classify(&wrong_type), FailureClass::Data);
/// ```
pub fn classify(err: &RedisError) -> FailureClass {
    if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
        return FailureClass::Unreachable;
    }
    match err.kind() {
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => FailureClass::Unreachable,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::MasterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown,
        ) => FailureClass::Unavailable,
        _ => match err.code() {
            // A script passes on the code of the command that failed in it.
            Some(code) if UNAVAILABLE_CODES.contains(&code) => FailureClass::Unavailable,
            _ => FailureClass::Data,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> RedisError {
        redis::make_extension_error(code.to_owned(), Some("detail".to_owned()))
    }

    #[test]
    fn codes_are_classified_as_redis_documents_them() {
        for code in ["OOM", "BUSY"] {
            assert_eq!(classify(&server(code)), FailureClass::Unavailable, "{code}");
        }
        for code in ["WRONGTYPE", "ERR", "NOPERM"] {
            assert_eq!(classify(&server(code)), FailureClass::Data, "{code}");
        }
        let kinds = [
            (
                ErrorKind::Server(ServerErrorKind::BusyLoading),
                FailureClass::Unavailable,
            ),
            (
                ErrorKind::Server(ServerErrorKind::ReadOnly),
                FailureClass::Unavailable,
            ),
            (
                ErrorKind::Server(ServerErrorKind::MasterDown),
                FailureClass::Unavailable,
            ),
            (
                ErrorKind::Server(ServerErrorKind::ResponseError),
                FailureClass::Data,
            ),
            (ErrorKind::UnexpectedReturnType, FailureClass::Data),
            (ErrorKind::Io, FailureClass::Unreachable),
        ];
        for (kind, class) in kinds {
            let err = RedisError::from((kind, "test"));
            assert_eq!(classify(&err), class, "{kind:?}");
        }
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused), FailureClass::Unreachable);
    }

    #[test]
    fn a_failure_keeps_its_cause() {
        use std::error::Error as _;
        let failure = RedisFailure::from(server("WRONGTYPE"));
        assert_eq!(failure.code(), Some("WRONGTYPE"));
        assert!(failure.source().is_some());
        assert!(
            failure.to_string().starts_with("Redis refused the call"),
            "{failure}"
        );
    }
}
