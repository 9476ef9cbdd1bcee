//! Test-only helpers for the Lumyx workspace.
//!
//! [`RedisServer`] starts a real `redis-server` on a free loopback port for one
//! test and stops it when dropped; [`RedisCluster`] starts six of them as a
//! 3-master, 3-replica Redis Cluster. Redis tests skip with a printed note when
//! the binary is missing, so that `cargo test` works on a machine without
//! Redis, unless `LUMYX_REQUIRE_REDIS` is set (as `.ci/run` does), in which
//! case they fail: CI must not pass by skipping.
//!
//! ```no_run
//! use lumyx_test_support::RedisServer;
//!
//! let Some(server) = RedisServer::start_or_skip("my_test") else {
//!     return; // no redis-server here and it was not required
//! };
//! let url = server.url(); // "redis://127.0.0.1:PORT/"
//! # let _ = url;
//! ```

#![forbid(unsafe_code)]

mod cluster;

pub use cluster::{NODE_TIMEOUT_MS, RedisCluster};

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The environment variable that turns a missing `redis-server` into a failure.
pub const REQUIRE_REDIS_VAR: &str = "LUMYX_REQUIRE_REDIS";

/// How long a fresh `redis-server` may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` process of one test, on its own loopback port, with
/// persistence off. Dropping it kills the process.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or returns `None` after printing a note when
    /// `redis-server` is not installed and [`REQUIRE_REDIS_VAR`] is not set.
    ///
    /// # Panics
    /// When the binary is missing and Redis is required, or when it is present
    /// but does not start: a broken setup must fail the test, not skip it.
    pub fn start_or_skip(test_name: &str) -> Option<RedisServer> {
        RedisServer::start_with_args_or_skip(test_name, &[])
    }

    /// As [`RedisServer::start_or_skip`], with more command-line arguments
    /// for `redis-server` (e.g. `["--maxmemory", "1mb"]`).
    ///
    /// # Panics
    /// As [`RedisServer::start_or_skip`].
    pub fn start_with_args_or_skip(test_name: &str, extra_args: &[&str]) -> Option<RedisServer> {
        if !redis_server_installed() {
            if redis_required() {
                panic!("{test_name}: redis-server is not installed but {REQUIRE_REDIS_VAR} is set");
            }
            eprintln!(
                "note: {test_name} skipped: redis-server is not installed \
                 (set {REQUIRE_REDIS_VAR}=1 to make this a failure)"
            );
            return None;
        }
        // A port free when chosen can be taken by another process (another
        // test binary) before the server binds it: then the server exits,
        // and another port is tried.
        let mut last_error = None;
        for _ in 0..5 {
            let port =
                reserve_free_loopback_port().expect("no free loopback port for redis-server");
            let mut server = RedisServer {
                port,
                extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
                child: None,
            };
            match server.restart() {
                Ok(()) => return Some(server),
                Err(err) => last_error = Some(err),
            }
        }
        panic!(
            "{test_name}: redis-server did not start: {}",
            last_error.expect("five attempts were made")
        );
    }

    /// A read-only replica of this server, on a port of its own, that has
    /// finished its first sync: what a client meets on a node demoted by a
    /// failover (`READONLY` on writes).
    ///
    /// # Panics
    /// When the replica does not start or does not sync within 10 seconds.
    pub fn start_replica(&self, test_name: &str) -> RedisServer {
        let port = self.port.to_string();
        let replica =
            RedisServer::start_with_args_or_skip(test_name, &["--replicaof", "127.0.0.1", &port])
                .expect("redis-server is installed: this server runs");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while replica
            .info_field("replication", "master_link_status")
            .as_deref()
            != Some("up")
        {
            assert!(
                Instant::now() < deadline,
                "{test_name}: the replica did not sync"
            );
            thread::sleep(Duration::from_millis(20));
        }
        replica
    }

    /// One field of a section of `INFO`, read over a plain TCP connection.
    fn info_field(&self, section: &str, field: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        stream
            .write_all(format!("INFO {section}\r\n").as_bytes())
            .ok()?;
        let mut reply = vec![0; 64 * 1024];
        let read = stream.read(&mut reply).ok()?;
        let reply = String::from_utf8_lossy(&reply[..read]).into_owned();
        reply.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name == field).then(|| value.trim().to_owned())
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL, `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server, as an outage would; [`RedisServer::restart`] brings it
    /// back on the same port with an empty data set. The port stays reserved
    /// for it: no other server of this process is started on it meanwhile.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (`SIGSTOP`), as a stalled host would: it keeps
    /// its connections but answers nothing, and a replica acknowledges no
    /// replication, until [`RedisServer::resume`].
    ///
    /// # Panics
    /// When the server is not running or `kill` fails.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a process frozen by [`RedisServer::pause`] run again (`SIGCONT`).
    ///
    /// # Panics
    /// As [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server runs");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }

    /// The server's working directory, of this process and its port: no
    /// other process's server shares it.
    fn dir(&self) -> PathBuf {
        std::env::temp_dir().join(format!("lumyx-redis-{}-{}", std::process::id(), self.port))
    }

    /// Starts the server again on the same port (stopping it first if it runs)
    /// and waits until it accepts connections.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        // Replication writes a snapshot (and a replica its temporary file)
        // into the working directory: keep them out of the source tree.
        let dir = self.dir();
        std::fs::create_dir_all(&dir)?;
        // A replica saves what it synced as `dump.rdb`, which the next
        // server on this port would load: a restart starts empty.
        match std::fs::remove_file(dir.join("dump.rdb")) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let child = Command::new(redis_server_binary())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
            ])
            .arg("--dir")
            .arg(&dir)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "redis-server exited at startup with {status}"
                )));
            }
            // Ready when the server on the port is this one: another
            // process's server there means ours cannot bind and will exit.
            // (A server with a password answers `INFO` only after `AUTH`:
            // then a connection is taken as the sign.)
            let pid = self.child.as_ref().map(|child| child.id().to_string());
            let has_password = self.extra_args.iter().any(|arg| arg == "--requirepass");
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok()
                && (has_password || self.info_field("server", "process_id") == pid)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server did not accept connections on port {}",
                        self.port
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        // Its files (a replica's snapshot, a cluster node's file) go with it.
        let _ = std::fs::remove_dir_all(self.dir());
        release_port(self.port);
    }
}

/// Whether [`REQUIRE_REDIS_VAR`] asks for Redis tests to fail instead of skip.
pub fn redis_required() -> bool {
    std::env::var(REQUIRE_REDIS_VAR).is_ok_and(|value| !value.is_empty() && value != "0")
}

fn redis_server_binary() -> PathBuf {
    std::env::var_os("LUMYX_REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

fn redis_server_installed() -> bool {
    Command::new(redis_server_binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Ports held by the live [`RedisServer`]s of this process. A stopped server
/// keeps its port for its restart, so a test starting meanwhile must not be
/// handed the same port by the operating system.
static PORTS_IN_USE: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

fn ports_in_use() -> MutexGuard<'static, BTreeSet<u16>> {
    PORTS_IN_USE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A free loopback port that no other server of this process holds, reserved
/// until [`release_port`].
fn reserve_free_loopback_port() -> io::Result<u16> {
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if ports_in_use().insert(port) {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free loopback port after 100 tries"))
}

fn release_port(port: u16) {
    ports_in_use().remove(&port);
}
