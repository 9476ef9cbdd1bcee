//! An error and all its causes on one line, for logs.

use std::error::Error;
use std::fmt;

/// Shows an error and its whole [`source`](Error::source) chain, joined by
/// `: `, so that a log line built from `Report(&err)` loses no cause.
///
/// The errors of this workspace say only what went wrong at their own level
/// and keep the cause as their source (as `thiserror`'s `#[source]` does);
/// `Display` alone would drop the cause, and a message that also repeated it
/// would show it twice in a chain. Some errors do repeat their source's
/// message in their own (the `redis` crate's `RedisError` does), so a cause
/// whose message is already part of the message before it is left out.
///
/// ```
/// use lumyx_redis::{RedisFailure, Report};
///
/// let err = redis::make_extension_error(
///     "NOREPLICAS".into(),
///     Some("Not enough good replicas to write.".into()),
/// );
/// let failure = RedisFailure::from(err);
/// // The message: the class and the code.
/// assert_eq!(failure.to_string(), "Redis cannot serve now (NOREPLICAS)");
/// // The report: the message, then Redis's own words, once.
/// let line = Report(&failure).to_string();
/// assert!(line.starts_with("Redis cannot serve now (NOREPLICAS): "));
/// assert!(line.ends_with("Not enough good replicas to write."));
/// assert_eq!(line.matches("Not enough").count(), 1);
/// // In a log line:
/// // tracing::warn!("rate limits follow the outage policy: {}", Report(&failure));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut before = self.0.to_string();
        f.write_str(&before)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            let message = err.to_string();
            if !before.contains(&message) {
                write!(f, ": {message}")?;
            }
            before = message;
            cause = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional source.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|err| err as &(dyn Error + 'static))
        }
    }

    fn chain(messages: &[&'static str]) -> Layer {
        let (last, rest) = messages.split_last().unwrap();
        rest.iter().rev().fold(Layer(last, None), |inner, message| {
            Layer(message, Some(Box::new(inner)))
        })
    }

    #[test]
    fn every_cause_is_shown_once_in_order() {
        let err = chain(&["store failed", "Redis is unreachable", "connection refused"]);
        assert_eq!(
            Report(&err).to_string(),
            "store failed: Redis is unreachable: connection refused"
        );
        assert_eq!(Report(&chain(&["alone"])).to_string(), "alone");
    }

    #[test]
    fn a_cause_already_in_the_message_before_it_is_left_out() {
        let err = chain(&["read failed: timed out", "timed out", "", "os error 110"]);
        assert_eq!(
            Report(&err).to_string(),
            "read failed: timed out: os error 110"
        );
    }

    #[test]
    fn a_redis_failure_shows_the_servers_words_once() {
        let err = redis::make_extension_error("OOM".into(), Some("used memory".into()));
        let failure = crate::RedisFailure::from(err);
        let shown = Report(&failure).to_string();
        assert_eq!(shown.matches("used memory").count(), 1, "{shown}");
        assert!(
            shown.starts_with("Redis cannot serve now (OOM): "),
            "{shown}"
        );

        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let failure = crate::RedisFailure::from(refused);
        let shown = Report(&failure).to_string();
        assert!(shown.starts_with("Redis is unreachable: "), "{shown}");
        assert_eq!(shown.matches(": ").count(), 1, "{shown}");
    }
}
