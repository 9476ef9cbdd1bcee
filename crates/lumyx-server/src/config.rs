//! The server's configuration: defaults that need nothing, and the
//! environment variables that change them. A bad value stops the start with
//! a message naming the variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lumyx_ratelimit::OutagePolicy;
use lumyx_redis::RedisUrl;

use crate::AdminToken;

/// Where the server keeps its state: keys, limits, usage and
/// conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In an embedded SQLite database in this data directory, kept across
    /// restarts (the default, `./lumyx-data`; `LUMYX_DATA_DIR`).
    Sqlite(PathBuf),
    /// In this process's memory, gone when it stops (`LUMYX_STORE=memory`).
    Memory,
    /// In Redis (`LUMYX_REDIS_URL`): any number of instances sharing it
    /// act as one.
    Redis(RedisUrl),
}

/// The data directory when `LUMYX_DATA_DIR` is unset.
pub const DEFAULT_DATA_DIR: &str = "./lumyx-data";

impl StoreConfig {
    /// `sqlite`, `memory` or `redis`, for logs and the start banner.
    pub fn name(&self) -> &'static str {
        match self {
            StoreConfig::Sqlite(_) => "sqlite",
            StoreConfig::Memory => "memory",
            StoreConfig::Redis(_) => "redis",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Lines for people (the default).
    #[default]
    Text,
    /// One JSON object a line (`LUMYX_LOG_FORMAT=json`).
    Json,
}

/// The server's configuration.
///
/// ```
/// use lumyx_server::{Config, StoreConfig};
///
/// let config = Config::default();
/// assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
/// assert_eq!(config.store, StoreConfig::Sqlite("./lumyx-data".into()));
///
/// let vars = [("LUMYX_ADDR", "127.0.0.1:0"), ("LUMYX_LOG_FORMAT", "json")];
/// let config = Config::from_vars(|name| {
///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
/// })?;
/// assert_eq!(config.addr.port(), 0);
///
/// let err = Config::from_vars(|name| (name == "LUMYX_ADDR").then(|| "nowhere".to_owned()))
///     .unwrap_err();
/// assert!(err.to_string().starts_with("LUMYX_ADDR: "));
/// # Ok::<(), lumyx_server::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`LUMYX_ADDR`, default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// The token of the key dashboard API (`LUMYX_ADMIN_TOKEN`); made up at
    /// start when unset.
    pub admin_token: Option<AdminToken>,
    /// Where state lives (`LUMYX_STORE`, `LUMYX_REDIS_URL`).
    pub store: StoreConfig,
    /// What the limiter does while Redis is unreachable
    /// (`LUMYX_REDIS_OUTAGE`: `fallback`, the default, `open` or `closed`).
    pub outage_policy: OutagePolicy,
    /// How log lines are written (`LUMYX_LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// The longest a request may take to get its response's head
    /// (`LUMYX_REQUEST_TIMEOUT_SECS`, default 30): then it is answered 503.
    /// A stream's body is not bounded by it.
    pub request_timeout: Duration,
    /// Whether to create a demo key when the key store is empty (default
    /// `true`; `LUMYX_DEMO_KEY=false` turns it off).
    pub demo_key: bool,
    /// The longest a client may take to send a request's head (default
    /// 10 s): a connection trickling its headers is closed after it.
    pub header_read_timeout: Duration,
    /// The longest a shutdown waits for the requests and streams in flight
    /// (default 30 s); connections still open then are closed.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            store: StoreConfig::Sqlite(PathBuf::from(DEFAULT_DATA_DIR)),
            outage_policy: OutagePolicy::Fallback,
            log_format: LogFormat::Text,
            request_timeout: Duration::from_secs(30),
            demo_key: true,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A configuration value that cannot be used: which variable, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with its value (never the value itself when it may be
    /// a secret).
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            variable,
            problem: problem.into(),
        }
    }
}

impl Config {
    /// The configuration of this process's environment.
    ///
    /// # Errors
    /// When a variable is set to a value that cannot be used.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// The configuration of the variables `var` answers (`None`: unset).
    /// An empty value counts as unset.
    ///
    /// # Errors
    /// When a variable is set to a value that cannot be used.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let mut config = Config::default();
        if let Some(addr) = var("LUMYX_ADDR") {
            config.addr = addr.trim().parse().map_err(|_| {
                ConfigError::new(
                    "LUMYX_ADDR",
                    format!("`{addr}` is not an address and port such as 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(token) = var("LUMYX_ADMIN_TOKEN") {
            config.admin_token = Some(
                AdminToken::new(token)
                    .map_err(|problem| ConfigError::new("LUMYX_ADMIN_TOKEN", problem))?,
            );
        }
        let redis = var("LUMYX_REDIS_URL")
            .map(|url| {
                RedisUrl::parse(url.trim())
                    .map_err(|err| ConfigError::new("LUMYX_REDIS_URL", err.to_string()))
            })
            .transpose()?;
        let data_dir = var("LUMYX_DATA_DIR").map(|dir| PathBuf::from(dir.trim()));
        config.store = match (var("LUMYX_STORE").as_deref().map(str::trim), redis) {
            (None | Some("redis"), Some(url)) => StoreConfig::Redis(url),
            (None | Some("sqlite"), None) => {
                StoreConfig::Sqlite(data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)))
            }
            (Some("memory"), None) => StoreConfig::Memory,
            (Some("sqlite"), Some(_)) => {
                return Err(ConfigError::new(
                    "LUMYX_STORE",
                    "`sqlite` and LUMYX_REDIS_URL together: unset one of them",
                ));
            }
            (Some("redis"), None) => {
                return Err(ConfigError::new(
                    "LUMYX_STORE",
                    "`redis` needs LUMYX_REDIS_URL, the server's URL",
                ));
            }
            (Some("memory"), Some(_)) => {
                return Err(ConfigError::new(
                    "LUMYX_STORE",
                    "`memory` and LUMYX_REDIS_URL together: unset one of them",
                ));
            }
            (Some(other), _) => {
                return Err(ConfigError::new(
                    "LUMYX_STORE",
                    format!("`{other}` is not a store; use `sqlite`, `memory` or `redis`"),
                ));
            }
        };
        if let Some(policy) = var("LUMYX_REDIS_OUTAGE") {
            config.outage_policy = match policy.trim() {
                "fallback" => OutagePolicy::Fallback,
                "open" => OutagePolicy::Open,
                "closed" => OutagePolicy::Closed,
                other => {
                    return Err(ConfigError::new(
                        "LUMYX_REDIS_OUTAGE",
                        format!("`{other}` is not a policy; use `fallback`, `open` or `closed`"),
                    ));
                }
            };
        }
        if let Some(format) = var("LUMYX_LOG_FORMAT") {
            config.log_format = match format.trim() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::new(
                        "LUMYX_LOG_FORMAT",
                        format!("`{other}` is not a format; use `text` or `json`"),
                    ));
                }
            };
        }
        if let Some(secs) = var("LUMYX_REQUEST_TIMEOUT_SECS") {
            config.request_timeout = secs
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| (1..=3600).contains(secs))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    ConfigError::new(
                        "LUMYX_REQUEST_TIMEOUT_SECS",
                        format!("`{secs}` is not a whole number of seconds from 1 to 3600"),
                    )
                })?;
        }
        if let Some(demo) = var("LUMYX_DEMO_KEY") {
            config.demo_key = match demo.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(ConfigError::new(
                        "LUMYX_DEMO_KEY",
                        format!("`{other}` is not `true` or `false`"),
                    ));
                }
            };
        }
        Ok(config)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("admin_token", &self.admin_token)
            .field("store", &self.store)
            .field("outage_policy", &self.outage_policy)
            .field("log_format", &self.log_format)
            .field("request_timeout", &self.request_timeout)
            .field("demo_key", &self.demo_key)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn no_variables_give_the_defaults() {
        let config = config(&[]).unwrap();
        assert_eq!(config.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.store, StoreConfig::Sqlite(DEFAULT_DATA_DIR.into()));
        assert!(config.admin_token.is_none());
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.outage_policy, OutagePolicy::Fallback);
        assert!(config.demo_key);
        // Empty values are unset.
        assert_eq!(
            config_of_empty().store,
            StoreConfig::Sqlite(DEFAULT_DATA_DIR.into())
        );
    }

    fn config_of_empty() -> Config {
        config(&[("LUMYX_REDIS_URL", ""), ("LUMYX_ADDR", " ")]).unwrap()
    }

    #[test]
    fn the_data_directory_and_the_store_are_chosen_by_their_variables() {
        let durable = config(&[("LUMYX_DATA_DIR", " /var/lib/lumyx ")]).unwrap();
        assert_eq!(durable.store, StoreConfig::Sqlite("/var/lib/lumyx".into()));
        let throwaway = config(&[("LUMYX_STORE", "memory")]).unwrap();
        assert_eq!(throwaway.store, StoreConfig::Memory);
        let named = config(&[("LUMYX_STORE", "sqlite")]).unwrap();
        assert_eq!(named.store, StoreConfig::Sqlite(DEFAULT_DATA_DIR.into()));
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (vars, variable) in [
            (vec![("LUMYX_ADDR", "localhost")], "LUMYX_ADDR"),
            (vec![("LUMYX_ADMIN_TOKEN", "short")], "LUMYX_ADMIN_TOKEN"),
            (vec![("LUMYX_REDIS_URL", "http://x")], "LUMYX_REDIS_URL"),
            (vec![("LUMYX_STORE", "sqlite3")], "LUMYX_STORE"),
            (
                vec![("LUMYX_STORE", "sqlite"), ("LUMYX_REDIS_URL", "redis://h")],
                "LUMYX_STORE",
            ),
            (vec![("LUMYX_STORE", "redis")], "LUMYX_STORE"),
            (
                vec![("LUMYX_STORE", "memory"), ("LUMYX_REDIS_URL", "redis://h")],
                "LUMYX_STORE",
            ),
            (vec![("LUMYX_REDIS_OUTAGE", "maybe")], "LUMYX_REDIS_OUTAGE"),
            (vec![("LUMYX_LOG_FORMAT", "xml")], "LUMYX_LOG_FORMAT"),
            (
                vec![("LUMYX_REQUEST_TIMEOUT_SECS", "0")],
                "LUMYX_REQUEST_TIMEOUT_SECS",
            ),
            (vec![("LUMYX_DEMO_KEY", "yes")], "LUMYX_DEMO_KEY"),
        ] {
            let err = config(&vars).unwrap_err();
            assert_eq!(err.variable, variable, "{vars:?}");
            assert!(err.to_string().starts_with(&format!("{variable}: ")));
        }
    }

    #[test]
    fn secrets_are_not_repeated_in_errors_or_debug() {
        let err = config(&[("LUMYX_REDIS_URL", "rediss://:hunter2hunter2@h:6379/x")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = config(&[("LUMYX_ADMIN_TOKEN", "pass word with spaces")]).unwrap_err();
        assert!(!err.to_string().contains("pass word"), "{err}");
        let config = config(&[
            ("LUMYX_REDIS_URL", "redis://:hunter2hunter2@h:6379/0"),
            ("LUMYX_ADMIN_TOKEN", "0123456789abcdef0123"),
        ])
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("0123456789abcdef0123"), "{debug}");
    }

    #[test]
    fn values_that_are_read() {
        let config = config(&[
            ("LUMYX_ADDR", "0.0.0.0:9000"),
            ("LUMYX_REDIS_URL", "redis://127.0.0.1:6379/2"),
            ("LUMYX_REDIS_OUTAGE", "closed"),
            ("LUMYX_LOG_FORMAT", "json"),
            ("LUMYX_REQUEST_TIMEOUT_SECS", "5"),
            ("LUMYX_DEMO_KEY", "false"),
        ])
        .unwrap();
        assert_eq!(config.addr.port(), 9000);
        assert!(matches!(config.store, StoreConfig::Redis(_)));
        assert_eq!(config.outage_policy, OutagePolicy::Closed);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.request_timeout, Duration::from_secs(5));
        assert!(!config.demo_key);
    }
}
