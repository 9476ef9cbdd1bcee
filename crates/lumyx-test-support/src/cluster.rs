//! A real Redis Cluster of one test: three masters and three replicas, each a
//! `redis-server` process on its own free loopback port, joined by
//! `redis-cli --cluster create`, with a short `cluster-node-timeout` so that
//! a failover takes a few seconds.

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{REQUIRE_REDIS_VAR, RedisServer, redis_required};

/// How long a master may be unreachable before its replica takes over, in
/// milliseconds (`cluster-node-timeout`): short, so a test's failover is quick.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// How long the cluster may take to form, or to fail over.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many masters; each has one replica.
const MASTERS: usize = 3;

/// Numbers the nodes of this process, so their node files never meet.
static NODES: AtomicU32 = AtomicU32::new(0);

/// The `redis-server` arguments of a new cluster node.
fn node_args() -> Vec<String> {
    // Node directories are per port and outlive the process: a name of this
    // process, this node and this moment is one no earlier run left there.
    let node = NODES.fetch_add(1, Ordering::Relaxed);
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let node_file = format!("nodes-{}-{node}-{started}.conf", std::process::id());
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &node_file,
        "--cluster-node-timeout",
        &NODE_TIMEOUT_MS.to_string(),
        // A replica takes over however long it was cut off from its master:
        // a test kills masters on purpose.
        "--cluster-replica-validity-factor",
        "0",
        // A replica loads what it syncs straight from the socket: no
        // snapshot is left in the port's directory for a later run.
        "--repl-diskless-load",
        "on-empty-db",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A running 3-master, 3-replica Redis Cluster on loopback. Dropping it
/// kills every node.
///
/// ```no_run
/// use lumyx_test_support::RedisCluster;
///
/// let Some(mut cluster) = RedisCluster::start_or_skip("my_test") else {
///     return; // no redis-server here and it was not required
/// };
/// let urls = cluster.urls(); // "redis://127.0.0.1:P1/,redis://127.0.0.1:P2/,..."
/// let killed = cluster.kill_master_of("lumyx:rl:{key_0123456789abcdef}");
/// cluster.wait_for_failover("lumyx:rl:{key_0123456789abcdef}");
/// # let _ = (urls, killed);
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts and joins the cluster, and waits until every slot is served
    /// and every master has its replica in sync; or returns `None` after a
    /// note when `redis-server` or `redis-cli` is missing and
    /// [`REQUIRE_REDIS_VAR`] is not set.
    ///
    /// # Panics
    /// When a binary is missing and Redis is required, or when the cluster
    /// does not form within 30 seconds.
    pub fn start_or_skip(test_name: &str) -> Option<RedisCluster> {
        if !redis_cli_installed() {
            if redis_required() {
                panic!("{test_name}: redis-cli is not installed but {REQUIRE_REDIS_VAR} is set");
            }
            eprintln!("note: {test_name} skipped: redis-cli is not installed");
            return None;
        }
        let mut nodes = Vec::with_capacity(2 * MASTERS);
        for _ in 0..2 * MASTERS {
            let args = node_args();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            nodes.push(RedisServer::start_with_args_or_skip(test_name, &args)?);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("{test_name}: redis-cli did not run: {err}"));
        assert!(
            output.status.success(),
            "{test_name}: redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_settled(test_name);
        Some(cluster)
    }

    /// The URLs of every node, joined by commas: what `LUMYX_REDIS_URL`
    /// takes for a cluster.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes, in the order they were started (the first three began as
    /// masters).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The index (into [`RedisCluster::nodes`]) of the live node that serves
    /// `key`'s slot as master, as a live node sees the cluster now.
    ///
    /// # Panics
    /// When no live node answers or none serves the slot.
    pub fn master_of(&self, key: &str) -> usize {
        self.live_master_of(key)
            .unwrap_or_else(|| panic!("no live master serves the slot of {key}"))
    }

    /// The index of a replica of the master of `key`'s slot.
    ///
    /// # Panics
    /// When no live node answers or the master has no replica.
    pub fn replica_of(&self, key: &str) -> usize {
        let master = self.master_of(key);
        let master_port = self.nodes[master].port();
        let nodes = self
            .ask_any_live_node(&["CLUSTER", "NODES"])
            .expect("a live node answers");
        let master_id = nodes
            .lines()
            .find(|line| line.split(' ').nth(1).and_then(port_of) == Some(master_port))
            .and_then(|line| line.split(' ').next())
            .expect("the master is listed");
        let port = nodes
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                (fields.get(3) == Some(&master_id))
                    .then(|| port_of(fields.get(1)?))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("the master of {key} has no replica:\n{nodes}"));
        self.nodes
            .iter()
            .position(|node| node.port() == port)
            .expect("the replica is a node of this cluster")
    }

    /// Starts a new node and joins it as a replica of the master of `key`'s
    /// slot (`redis-cli --cluster add-node ... --cluster-slave`), as an
    /// operator does after a failover left a master without one; waits until
    /// it confirms the master's writes. Answers its index.
    ///
    /// # Panics
    /// When the node does not start or join, or does not confirm a write
    /// within 30 seconds.
    pub fn add_replica_of(&mut self, key: &str) -> usize {
        let master = self.master_of(key);
        let master_port = self.nodes[master].port();
        let args = node_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = RedisServer::start_with_args_or_skip("cluster replica", &args)
            .expect("redis-server runs: the cluster's nodes do");
        let master_id = command(master_port, &["CLUSTER", "MYID"]).expect("the master answers");
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("add-node")
            .arg(format!("127.0.0.1:{}", node.port()))
            .arg(format!("127.0.0.1:{master_port}"))
            .args(["--cluster-slave", "--cluster-master-id", &master_id])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster add-node failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        self.nodes.push(node);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !self.every_master_has_writes_confirmed() {
            assert!(
                Instant::now() < deadline,
                "the new replica confirms no write within {SETTLE_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        self.nodes.len() - 1
    }

    /// The live master of `key`'s slot, if a live node answers and names one
    /// that runs.
    fn live_master_of(&self, key: &str) -> Option<usize> {
        let slot: u16 = self
            .ask_any_live_node(&["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()
            .ok()?;
        let nodes = self.ask_any_live_node(&["CLUSTER", "NODES"])?;
        let port = nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let flags = *fields.get(2)?;
            let serves = fields.iter().skip(8).any(|range| slot_in(range, slot));
            (flags.contains("master") && !flags.contains("fail") && serves)
                .then(|| port_of(fields.get(1)?))
                .flatten()
        })?;
        self.nodes
            .iter()
            .position(|node| node.port() == port && node.is_running())
    }

    /// Kills the master of `key`'s slot, as a crash would, and answers its
    /// index. Its replica takes over after about [`NODE_TIMEOUT_MS`]
    /// (see [`RedisCluster::wait_for_failover`]).
    pub fn kill_master_of(&mut self, key: &str) -> usize {
        let master = self.master_of(key);
        self.nodes[master].stop();
        master
    }

    /// Waits until a live master serves `key`'s slot again and the cluster
    /// says it is healthy (`cluster_state:ok`); answers the new master's
    /// index.
    ///
    /// # Panics
    /// When that takes more than 30 seconds.
    pub fn wait_for_failover(&self, key: &str) -> usize {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            if let Some(master) = self.live_master_of(key)
                && self.every_live_node_says_ok()
            {
                return master;
            }
            assert!(
                Instant::now() < deadline,
                "no failover within {SETTLE_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_settled(&self, test_name: &str) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !(self.every_live_node_says_ok()
            && self.every_replica_in_sync()
            && self.every_master_has_writes_confirmed())
        {
            assert!(
                Instant::now() < deadline,
                "{test_name}: the cluster did not form within {SETTLE_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn every_live_node_says_ok(&self) -> bool {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .all(|node| {
                command(node.port(), &["CLUSTER", "INFO"])
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            })
    }

    /// Whether a write on each master is confirmed by its replica (`WAIT`):
    /// a replica can say its link is up a moment before it acknowledges.
    fn every_master_has_writes_confirmed(&self) -> bool {
        let mut confirmed = BTreeSet::new();
        for probe in 0..1000 {
            if confirmed.len() == MASTERS {
                return true;
            }
            let key = format!("lumyx-test-support:probe:{probe}");
            let Some(master) = self.live_master_of(&key) else {
                return false;
            };
            if confirmed.contains(&master) {
                continue;
            }
            let port = self.nodes[master].port();
            let replies = commands(port, &[&["SET", &key, "1"], &["WAIT", "1", "100"]]);
            if !replies.is_ok_and(|replies| replies[1] == "1") {
                return false;
            }
            confirmed.insert(master);
        }
        false
    }

    fn every_replica_in_sync(&self) -> bool {
        self.nodes.iter().all(|node| {
            command(node.port(), &["INFO", "replication"]).is_ok_and(|info| {
                info.contains("role:master")
                    && info.contains("connected_slaves:1")
                    && info.contains("state=online")
                    || info.contains("master_link_status:up")
                        && info.contains("master_sync_in_progress:0")
            })
        })
    }

    fn ask_any_live_node(&self, args: &[&str]) -> Option<String> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .find_map(|node| command(node.port(), args).ok())
    }
}

/// Whether `range` of a `CLUSTER NODES` line (`5461-10922` or `42`) holds
/// `slot`; an importing or migrating mark (`[...]`) holds none.
fn slot_in(range: &str, slot: u16) -> bool {
    if range.starts_with('[') {
        return false;
    }
    let (low, high) = range.split_once('-').unwrap_or((range, range));
    match (low.parse::<u16>(), high.parse::<u16>()) {
        (Ok(low), Ok(high)) => (low..=high).contains(&slot),
        _ => false,
    }
}

/// The port of a `CLUSTER NODES` address, `127.0.0.1:7000@17000`.
fn port_of(address: &str) -> Option<u16> {
    let host_port = address.split('@').next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

fn redis_cli_installed() -> bool {
    Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Sends one command to the node on `port` and answers its reply as text
/// (a status, an integer, or a bulk string); an error reply is an error.
fn command(port: u16, args: &[&str]) -> io::Result<String> {
    commands(port, &[args]).map(|mut replies| replies.remove(0))
}

/// Sends commands to the node on `port` over one connection, in order, and
/// answers their replies as [`command`] does.
fn commands(port: u16, all: &[&[&str]]) -> io::Result<Vec<String>> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = String::new();
    for args in all {
        request.push_str(&format!("*{}\r\n", args.len()));
        for arg in *args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
    }
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut replies = Vec::with_capacity(all.len());
    for _ in all {
        let mut first = String::new();
        reader.read_line(&mut first)?;
        let first = first.trim_end();
        let reply = match first.split_at(first.len().min(1)) {
            ("+" | ":", rest) => rest.to_owned(),
            ("$", length) => {
                let length: usize = length
                    .parse()
                    .map_err(|_| io::Error::other(format!("bad bulk length {length}")))?;
                let mut body = vec![0; length + 2];
                reader.read_exact(&mut body)?;
                body.truncate(length);
                String::from_utf8_lossy(&body).into_owned()
            }
            _ => return Err(io::Error::other(format!("Redis answered {first}"))),
        };
        replies.push(reply);
    }
    Ok(replies)
}
