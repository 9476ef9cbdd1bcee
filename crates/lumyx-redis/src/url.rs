//! A Redis connection URL that can be shown: its password never is. A
//! comma-separated list of URLs names the nodes of a Redis Cluster.

use std::fmt;
use std::str::FromStr;

use redis::{ConnectionInfo, IntoConnectionInfo};

/// What stands for a password when a URL is shown.
const REDACTED: &str = "***";

/// The query parameters that carry a password (`unix:` URLs take `pass`).
const SECRET_QUERY_KEYS: [&str; 2] = ["pass", "password"];

/// A validated Redis connection URL, such as `redis://127.0.0.1:6379/0`,
/// `redis://:password@host:6379/` or `unix:///run/redis.sock?db=1&pass=...`;
/// or the nodes of a Redis Cluster, as URLs separated by commas:
/// `redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002`
/// (any reachable node is enough to find the others; list a few so that one
/// down node does not stop a start). One URL always means one server. A
/// comma inside a password must be written `%2C`.
///
/// `Display` and `Debug` write the URL with its password replaced by `***`,
/// so a `RedisUrl` may go into logs, error messages and `Debug` output of
/// the types that hold one.
///
/// ```
/// use lumyx_redis::RedisUrl;
///
/// let url: RedisUrl = "redis://:hunter2@127.0.0.1:6379/0".parse()?;
/// assert_eq!(url.to_string(), "redis://:***@127.0.0.1:6379/0");
/// assert!(!format!("{url:?}").contains("hunter2"));
/// assert!(!url.is_cluster());
///
/// let cluster: RedisUrl = "redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7000".parse()?;
/// assert!(cluster.is_cluster());
/// assert_eq!(cluster.nodes().len(), 2);
/// assert_eq!(cluster.to_string(), "redis://:***@10.0.0.1:7000,redis://:***@10.0.0.2:7000");
///
/// let err = "http://127.0.0.1/".parse::<RedisUrl>().unwrap_err();
/// assert!(err.to_string().starts_with("expected a Redis URL such as redis://127.0.0.1:6379/"));
/// # Ok::<(), lumyx_redis::UrlError>(())
/// ```
#[derive(Clone)]
pub struct RedisUrl {
    /// One node, or the cluster's nodes as listed: never empty.
    nodes: Vec<ConnectionInfo>,
    shown: String,
}

/// Why a text is not a usable Redis URL. The message never repeats the text,
/// which may hold a password.
#[derive(Debug, thiserror::Error)]
#[error(
    "expected a Redis URL such as redis://127.0.0.1:6379/ or redis://:PASSWORD@HOST:PORT/DB, got one that {problem}"
)]
pub struct UrlError {
    problem: &'static str,
    #[source]
    source: Option<redis::RedisError>,
}

impl RedisUrl {
    /// Parses and validates `text`: one URL, or several separated by commas
    /// (surrounding spaces allowed) for the nodes of a Redis Cluster.
    ///
    /// # Errors
    /// [`UrlError`] when a part is not a URL, its scheme is not one Redis
    /// accepts (`redis`, `rediss`, `unix`, `redis+unix`), or Redis's client
    /// refuses it (a bad database number, say); for a cluster, also when a
    /// part is empty, is a Unix socket, or names a database other than 0
    /// (a cluster has only database 0).
    pub fn parse(text: &str) -> Result<RedisUrl, UrlError> {
        if !text.contains(',') {
            let (info, shown) = parse_node(text)?;
            return Ok(RedisUrl {
                nodes: vec![info],
                shown,
            });
        }
        let mut nodes = Vec::new();
        let mut shown = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(UrlError::new("has an empty part between commas"));
            }
            let (info, part_shown) = parse_node(part)?;
            if !matches!(
                info.addr(),
                redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::TcpTls { .. }
            ) {
                return Err(UrlError::new(
                    "lists a Unix socket among cluster nodes (cluster nodes are reached over TCP)",
                ));
            }
            if info.redis_settings().db() != 0 {
                return Err(UrlError::new(
                    "names a database other than 0 for a cluster node (a cluster has only database 0)",
                ));
            }
            nodes.push(info);
            shown.push(part_shown);
        }
        Ok(RedisUrl {
            nodes,
            shown: shown.join(","),
        })
    }

    /// What the Redis client connects with: the only node, or the first
    /// node of a cluster.
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.nodes[0]
    }

    /// Every node as listed: one for a single server.
    pub fn nodes(&self) -> &[ConnectionInfo] {
        &self.nodes
    }

    /// Whether the URL lists several nodes, which means a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.nodes.len() > 1
    }
}

impl UrlError {
    fn new(problem: &'static str) -> UrlError {
        UrlError {
            problem,
            source: None,
        }
    }
}

/// One URL, parsed and validated, and how it is shown.
fn parse_node(text: &str) -> Result<(ConnectionInfo, String), UrlError> {
    let url = url::Url::parse(text).map_err(|_| UrlError::new("does not parse as a URL"))?;
    if !matches!(url.scheme(), "redis" | "rediss" | "unix" | "redis+unix") {
        return Err(UrlError::new(
            "has a scheme other than redis, rediss, unix or redis+unix",
        ));
    }
    let info = text.into_connection_info().map_err(|source| UrlError {
        problem: "the Redis client refuses",
        source: Some(source),
    })?;
    Ok((info, redacted(url)))
}

/// The URL with every password replaced by [`REDACTED`].
fn redacted(mut url: url::Url) -> String {
    if url.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = url.set_password(Some(REDACTED));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let secret = SECRET_QUERY_KEYS.contains(&key.as_ref());
                let value = if secret { REDACTED.into() } else { value };
                (key.into_owned(), value.into_owned())
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

impl FromStr for RedisUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RedisUrl::parse(text)
    }
}

impl TryFrom<&str> for RedisUrl {
    type Error = UrlError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        RedisUrl::parse(text)
    }
}

impl TryFrom<String> for RedisUrl {
    type Error = UrlError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        RedisUrl::parse(&text)
    }
}

impl fmt::Display for RedisUrl {
    /// The URL with its password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl").field(&self.shown).finish()
    }
}

impl PartialEq for RedisUrl {
    fn eq(&self, other: &Self) -> bool {
        // Two URLs that differ only in their password show alike but are not
        // equal: compare what the client connects with.
        self.shown == other.shown
            && self.nodes.len() == other.nodes.len()
            && self.nodes.iter().zip(&other.nodes).all(|(mine, theirs)| {
                mine.redis_settings().password() == theirs.redis_settings().password()
            })
    }
}

impl Eq for RedisUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        RedisUrl::parse(text).unwrap().to_string()
    }

    #[test]
    fn passwords_are_never_shown() {
        let cases = [
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
            (
                "redis://:secret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("redis://user:secret@host:1/2", "redis://user:***@host:1/2"),
            ("redis://:s%40cret@host/", "redis://:***@host/"),
            (
                "unix:///run/redis.sock?db=1&pass=secret",
                "unix:///run/redis.sock?db=1&pass=***",
            ),
        ];
        for (text, expected) in cases {
            let url = RedisUrl::parse(text).unwrap();
            assert_eq!(url.to_string(), expected);
            assert!(!format!("{url:?}").contains("secret"), "{url:?}");
            assert!(!format!("{url:?}").contains("s%40cret"), "{url:?}");
        }
        // The client still gets the real password.
        let url = RedisUrl::parse("redis://:secret@127.0.0.1:6379/0").unwrap();
        assert_eq!(
            url.connection_info().redis_settings().password(),
            Some("secret")
        );
        assert_eq!(shown("redis://user@host:1/"), "redis://user@host:1/");
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for text in [
            "",
            "127.0.0.1:6379",
            "http://:secret@127.0.0.1/",
            "redis://:secret@127.0.0.1:6379/not-a-db",
            "redis://:secret@[::1/",
        ] {
            let err = RedisUrl::parse(text).unwrap_err();
            let message = format!("{err} {err:?}");
            assert!(!message.contains("secret"), "{message}");
            assert!(message.contains("expected a Redis URL"), "{message}");
        }
    }

    #[test]
    fn a_list_of_urls_is_a_cluster() {
        let url = RedisUrl::parse(
            "redis://:secret@127.0.0.1:7000,redis://:secret@127.0.0.1:7001 , redis://:secret@127.0.0.1:7002",
        )
        .unwrap();
        assert!(url.is_cluster());
        let ports: Vec<String> = url
            .nodes()
            .iter()
            .map(|node| node.addr().to_string())
            .collect();
        assert_eq!(
            ports,
            ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
        );
        assert_eq!(
            url.to_string(),
            "redis://:***@127.0.0.1:7000,redis://:***@127.0.0.1:7001,redis://:***@127.0.0.1:7002"
        );
        assert!(!format!("{url:?}").contains("secret"));
        assert!(
            !RedisUrl::parse("redis://127.0.0.1:6379/")
                .unwrap()
                .is_cluster()
        );

        for (text, problem) in [
            (
                "redis://127.0.0.1:7000,,redis://127.0.0.1:7001",
                "empty part",
            ),
            ("redis://127.0.0.1:7000,", "empty part"),
            (
                "redis://127.0.0.1:7000,unix:///run/redis.sock",
                "Unix socket",
            ),
            (
                "redis://127.0.0.1:7000,redis://127.0.0.1:7001/2",
                "database other than 0",
            ),
            ("redis://127.0.0.1:7000,http://:secret@127.0.0.1/", "scheme"),
        ] {
            let err = RedisUrl::parse(text).unwrap_err().to_string();
            assert!(err.contains(problem), "{text}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn equality_sees_the_password() {
        let a = RedisUrl::parse("redis://:a@host/").unwrap();
        let b = RedisUrl::parse("redis://:b@host/").unwrap();
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(a, b);
        assert_eq!(a, RedisUrl::parse("redis://:a@host/").unwrap());
    }
}
