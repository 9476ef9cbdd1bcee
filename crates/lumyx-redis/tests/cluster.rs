//! `RedisConnection` against a real 3-master, 3-replica Redis Cluster on
//! loopback: commands reach the node of their slot, scripts run there, `WAIT`
//! counts the replica of the right master, and a master's failover is
//! followed without a new connection.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lumyx_redis::{RedisConnector, RedisUrl};
use lumyx_test_support::RedisCluster;
use redis::AsyncCommands;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_cluster_url_connects_to_every_slot_and_follows_a_failover() {
    let Some(mut cluster) = RedisCluster::start_or_skip("cluster_connection") else {
        return;
    };
    let url: RedisUrl = cluster.urls().parse().unwrap();
    assert!(url.is_cluster());
    runtime().block_on(async {
        let connector = RedisConnector::new(url).timeout(Duration::from_millis(500));
        let mut connection = connector.connect_lazy().unwrap();
        assert!(connection.is_cluster());

        // Keys spread over the three masters: each is written and read back.
        for n in 0..300 {
            let key = format!("k{n}");
            let () = connection.set(&key, n).await.unwrap();
            let back: i32 = connection.get(&key).await.unwrap();
            assert_eq!(back, n);
        }
        let masters: BTreeSet<usize> = (0..300)
            .map(|n| cluster.master_of(&format!("k{n}")))
            .collect();
        assert_eq!(masters.len(), 3, "300 keys land on every master");

        // A write and WAIT together on that slot's master: its replica has
        // the write.
        let mut incr = redis::cmd("INCR");
        incr.arg("{tag}:n");
        let (counted, replicas): (i64, u32) = connection
            .query_confirmed(&incr, 1, Duration::from_millis(400))
            .await
            .unwrap();
        assert_eq!((counted, replicas), (1, 1));
        let script = redis::Script::new("return redis.call('INCR', KEYS[1])");

        // The master of `{tag}` dies; once its replica is promoted, the same
        // connection reads the confirmed write from it and writes again.
        let old_master = cluster.kill_master_of("{tag}:n");
        let new_master = cluster.wait_for_failover("{tag}:n");
        assert_ne!(old_master, new_master);
        let deadline = Instant::now() + Duration::from_secs(10);
        let counted: i64 = loop {
            match script.key("{tag}:n").invoke_async(&mut connection).await {
                Ok(counted) => break counted,
                Err(err) => {
                    assert!(Instant::now() < deadline, "no recovery: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        assert_eq!(
            counted, 2,
            "the write confirmed by WAIT survived the failover"
        );
    });
}

/// A command to one node, by its URL.
async fn on_node<T: redis::FromRedisValue>(url: &str, args: &[&str]) -> T {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query_async(&mut connection).await.unwrap()
}

/// Moves `key` from the node at `source_url` to the one on `target_port`
/// (`MIGRATE`), as a resharding does key by key.
async fn migrate(source_url: &str, target_port: &str, key: &str) {
    let () = on_node(
        source_url,
        &[
            "MIGRATE",
            "127.0.0.1",
            target_port,
            "",
            "0",
            "5000",
            "KEYS",
            key,
        ],
    )
    .await;
}

#[test]
fn a_slot_moved_to_another_master_is_followed_through_ask_then_moved() {
    let Some(cluster) = RedisCluster::start_or_skip("cluster_resharding") else {
        return;
    };
    runtime().block_on(async {
        let url: RedisUrl = cluster.urls().parse().unwrap();
        let mut connection = RedisConnector::new(url)
            .timeout(Duration::from_millis(500))
            .connect_lazy()
            .unwrap();
        let () = connection.set("{moving}:a", 1).await.unwrap();
        let () = connection.set("{moving}:b", 2).await.unwrap();

        let source = cluster.master_of("{moving}:a");
        let target = (0..3).find(|&n| n != source).unwrap();
        let third = (0..3).find(|&n| n != source && n != target).unwrap();
        let [source_url, target_url, third_url] =
            [source, target, third].map(|n| cluster.nodes()[n].url());
        let source_id: String = on_node(&source_url, &["CLUSTER", "MYID"]).await;
        let target_id: String = on_node(&target_url, &["CLUSTER", "MYID"]).await;
        let slot: i64 = on_node(&source_url, &["CLUSTER", "KEYSLOT", "{moving}"]).await;
        let slot = slot.to_string();

        // The slot is migrating, and `a` has moved: the source answers ASK
        // for it, and the client asks the target.
        let () = on_node(
            &target_url,
            &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source_id],
        )
        .await;
        let () = on_node(
            &source_url,
            &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target_id],
        )
        .await;
        let target_port = cluster.nodes()[target].port().to_string();
        migrate(&source_url, &target_port, "{moving}:a").await;
        let a: i64 = connection.get("{moving}:a").await.unwrap();
        let b: i64 = connection.get("{moving}:b").await.unwrap();
        assert_eq!(
            (a, b),
            (1, 2),
            "a through ASK to the target, b still on the source"
        );

        // The move ends: every master says the target serves the slot, and
        // the source answers MOVED, which the client follows.
        migrate(&source_url, &target_port, "{moving}:b").await;
        for url in [&target_url, &source_url, &third_url] {
            let () = on_node(url, &["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]).await;
        }
        let script = redis::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
        let a: i64 = script
            .key("{moving}:a")
            .arg(10)
            .invoke_async(&mut connection)
            .await
            .unwrap();
        let b: i64 = connection.get("{moving}:b").await.unwrap();
        assert_eq!((a, b), (11, 2));
        assert_eq!(cluster.master_of("{moving}:a"), target);
    });
}
