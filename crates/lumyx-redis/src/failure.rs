//! What a failed Redis call means: Redis is unreachable, Redis says it cannot
//! serve now, or the call's own data is at fault. Each class asks for a
//! different answer, so one key's bad data never takes down the others.

use std::fmt;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The class of a failed Redis call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The connection failed, no reply came in time, or the replies could
    /// not be read (a broken reply stream, which the client answers by
    /// reconnecting): Redis may be down for every caller, and it may have
    /// run the call before the reply was lost.
    Unreachable,
    /// Redis answered that it cannot serve now, before running the call:
    /// `LOADING` (the data set is being loaded), `READONLY` (a replica, e.g.
    /// after a failover), `MASTERDOWN` (a replica lost its primary),
    /// `NOREPLICAS` (fewer replicas than `min-replicas-to-write`), `MISCONF`
    /// (a failed RDB save or AOF write stops writes), `OOM`, `BUSY` (a
    /// script or function runs too long), `TRYAGAIN` or `CLUSTERDOWN`. The
    /// call did not take effect; other calls fail alike until Redis recovers.
    Unavailable,
    /// The call failed because of its own key's data or the script:
    /// `WRONGTYPE`, a script error, a reply of an unexpected shape. Other
    /// keys are not affected.
    Data,
}

/// The server error codes that mean "cannot serve now": what Redis 7
/// answers when it refuses a command for its own state before running it
/// (loading, a replica, a lost primary, too few replicas, a failed save,
/// out of memory, a long script) and what a cluster answers while slots
/// move or a slot has no node. Every other code is about the call itself.
const UNAVAILABLE_CODES: [&str; 9] = [
    "LOADING",
    "READONLY",
    "MASTERDOWN",
    "NOREPLICAS",
    "MISCONF",
    "OOM",
    "BUSY",
    "TRYAGAIN",
    "CLUSTERDOWN",
];

/// A failed Redis call: the error Redis or the client gave, or no reply
/// within the caller's deadline.
///
/// Its message says the class and the server's code; the client's error,
/// with Redis's own words, is its [`source`](std::error::Error::source).
/// Log it through [`Report`](crate::Report) to show both.
///
/// ```
/// use std::time::Duration;
/// use lumyx_redis::{FailureClass, RedisFailure, Report};
///
/// let failure = RedisFailure::timed_out(Duration::from_millis(250));
/// assert_eq!(failure.class(), FailureClass::Unreachable);
/// assert_eq!(failure.to_string(), "no reply from Redis within 250ms");
///
/// let oom = redis::make_extension_error("OOM".into(), Some("command not allowed".into()));
/// let failure = RedisFailure::from(oom);
/// assert_eq!(failure.to_string(), "Redis cannot serve now (OOM)");
/// assert!(Report(&failure).to_string().ends_with("command not allowed"));
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

/// The class and the server's code only (`Redis cannot serve now (OOM)`):
/// the client's error is the [`source`](std::error::Error::source), so a
/// log that prints the whole chain ([`Report`](crate::Report)) shows it once.
impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::TimedOut(after) => write!(f, "no reply from Redis within {after:?}"),
            Repr::Redis(err) => {
                let code = err.code();
                match (self.class(), code) {
                    (FailureClass::Unreachable, _) => f.write_str("Redis is unreachable")?,
                    (FailureClass::Unavailable, _) => f.write_str("Redis cannot serve now")?,
                    (FailureClass::Data, Some(_)) => f.write_str("Redis refused the call")?,
                    (FailureClass::Data, None) => f.write_str("the Redis call failed")?,
                }
                match code {
                    Some(code) => write!(f, " ({code})"),
                    None => Ok(()),
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
        ErrorKind::Io | ErrorKind::Parse | ErrorKind::ClusterConnectionNotFound => {
            FailureClass::Unreachable
        }
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::MasterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            // A cluster client answers a redirection only when its retries
            // ran out: the slot is moving, as in a failover or a resharding.
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
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
                ErrorKind::Server(ServerErrorKind::Moved),
                FailureClass::Unavailable,
            ),
            (
                ErrorKind::Server(ServerErrorKind::Ask),
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
    fn refused_writes_are_unavailable() {
        // NOREPLICAS: fewer replicas than min-replicas-to-write; MISCONF: a
        // failed RDB save (or AOF write) stops writes.
        for code in [
            "NOREPLICAS",
            "MISCONF",
            "LOADING",
            "READONLY",
            "MASTERDOWN",
            "OOM",
            "BUSY",
            "TRYAGAIN",
            "CLUSTERDOWN",
        ] {
            assert_eq!(classify(&server(code)), FailureClass::Unavailable, "{code}");
        }
        // Codes that only look alike are one call's error.
        for code in ["BUSYKEY", "BUSYGROUP", "NOTBUSY", "NOSCRIPT", "EXECABORT"] {
            assert_eq!(classify(&server(code)), FailureClass::Data, "{code}");
        }
    }

    #[test]
    fn a_broken_reply_stream_is_unreachable() {
        let broken = RedisError::from((ErrorKind::Parse, "invalid reply"));
        assert_eq!(classify(&broken), FailureClass::Unreachable);
    }

    /// Against a real `redis-server`: a write it refuses, sent as a command
    /// and from a script (which passes the command's code on).
    mod real {
        use std::path::PathBuf;
        use std::time::{Duration, Instant};

        use crate::RedisConnection;
        use lumyx_test_support::RedisServer;

        use super::*;
        use crate::RedisConnector;

        fn connect(server: &RedisServer) -> RedisConnection {
            RedisConnector::new(server.url().parse().unwrap())
                .timeout(Duration::from_secs(5))
                .connect_lazy()
                .unwrap()
        }

        /// The errors of a plain write and of a script's write.
        async fn refused_writes(connection: &mut RedisConnection) -> [RedisError; 2] {
            let plain = redis::cmd("SET")
                .arg("k")
                .arg("v")
                .query_async::<()>(connection)
                .await
                .unwrap_err();
            let scripted = redis::Script::new("return redis.call('SET', KEYS[1], 'v')")
                .key("k")
                .invoke_async::<()>(connection)
                .await
                .unwrap_err();
            [plain, scripted]
        }

        #[tokio::test]
        async fn too_few_replicas_is_unavailable() {
            let Some(server) = RedisServer::start_or_skip("too_few_replicas_is_unavailable") else {
                return;
            };
            let mut connection = connect(&server);
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("min-replicas-to-write")
                .arg(1)
                .query_async::<()>(&mut connection)
                .await
                .unwrap();
            for err in refused_writes(&mut connection).await {
                assert_eq!(err.code(), Some("NOREPLICAS"), "{err}");
                assert_eq!(classify(&err), FailureClass::Unavailable, "{err}");
                // Logged through a report, Redis's words come once.
                let failure = RedisFailure::from(err);
                let line = crate::Report(&failure).to_string();
                assert!(
                    line.starts_with("Redis cannot serve now (NOREPLICAS): "),
                    "{line}"
                );
                assert_eq!(
                    line.matches("Not enough good replicas").count(),
                    1,
                    "{line}"
                );
            }
        }

        #[tokio::test]
        async fn a_failed_save_is_unavailable() {
            // A server whose data directory is gone cannot save; with a save
            // point set, it then refuses writes until a save succeeds.
            let dir: PathBuf =
                std::env::temp_dir().join(format!("lumyx-redis-misconf-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let Some(server) = RedisServer::start_with_args_or_skip(
                "a_failed_save_is_unavailable",
                &["--dir", dir.to_str().unwrap()],
            ) else {
                return;
            };
            std::fs::remove_dir(&dir).unwrap();
            let mut connection = connect(&server);
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("save")
                .arg("3600 1")
                .query_async::<()>(&mut connection)
                .await
                .unwrap();
            redis::cmd("BGSAVE")
                .query_async::<()>(&mut connection)
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let info: String = redis::cmd("INFO")
                    .arg("persistence")
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                if info.contains("rdb_last_bgsave_status:err") {
                    break;
                }
                assert!(Instant::now() < deadline, "the save did not fail: {info}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for err in refused_writes(&mut connection).await {
                assert_eq!(err.code(), Some("MISCONF"), "{err}");
                assert_eq!(classify(&err), FailureClass::Unavailable, "{err}");
            }
        }
    }

    #[test]
    fn the_message_names_the_class_and_code_and_leaves_the_cause_to_source() {
        use std::error::Error as _;
        let cases = [
            (server("OOM"), "Redis cannot serve now (OOM)"),
            (server("WRONGTYPE"), "Redis refused the call (WRONGTYPE)"),
            (
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "detail",
                )),
                "Redis is unreachable",
            ),
            (
                RedisError::from((ErrorKind::UnexpectedReturnType, "detail")),
                "the Redis call failed",
            ),
        ];
        for (err, message) in cases {
            let failure = RedisFailure::from(err);
            assert_eq!(failure.to_string(), message);
            let cause = failure.source().expect("the client's error is the source");
            assert!(cause.to_string().contains("detail"), "{cause}");
        }
        let late = RedisFailure::timed_out(Duration::from_millis(250));
        assert_eq!(late.to_string(), "no reply from Redis within 250ms");
        assert!(late.source().is_none());
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
