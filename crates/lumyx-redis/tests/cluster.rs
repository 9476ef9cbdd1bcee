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
