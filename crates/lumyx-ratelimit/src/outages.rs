//! Which decisions of a `RedisLimiter` skip Redis for the outage policy.
//!
//! One Redis server is up or down as one. A Redis Cluster is tracked per
//! master: each hash slot belongs to the group of the master that serves it
//! (read from `CLUSTER SLOTS`), and a failed call marks only its group down,
//! so the failover of one master sends only the keys of its slots to the
//! outage policy while the other masters go on deciding. Until the layout is
//! known, every slot is in one group, as on one server.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use redis::Value;

/// How many hash slots a Redis Cluster has.
const CLUSTER_SLOTS: usize = 16_384;

/// The most groups tracked apart; masters past it share groups (modulo),
/// which only makes an outage reach a little further.
const MAX_GROUPS: usize = 64;

/// For each group, when Redis is tried again after a failure.
#[derive(Debug)]
pub(crate) struct Outages {
    /// Per slot, its group; one entry (group 0) on one server.
    group_of_slot: Box<[AtomicU8]>,
    /// Per group, the time (µs after the limiter's origin) before which
    /// Redis is not tried; 0 while it is up.
    down_until: Box<[AtomicU64]>,
    /// When the cluster's layout was last read (µs after the origin, at
    /// least 1); 0 before.
    layout_read_at: AtomicU64,
}

impl Outages {
    /// Every slot up, in one group; `cluster` keeps room for the layout.
    pub(crate) fn new(cluster: bool) -> Outages {
        let (slots, groups) = if cluster {
            (CLUSTER_SLOTS, MAX_GROUPS)
        } else {
            (1, 1)
        };
        Outages {
            group_of_slot: (0..slots).map(|_| AtomicU8::new(0)).collect(),
            down_until: (0..groups).map(|_| AtomicU64::new(0)).collect(),
            layout_read_at: AtomicU64::new(0),
        }
    }

    /// The "down until" time of the group of `slot` (see
    /// `RedisClock::slot_of`: 0 on one server).
    pub(crate) fn of_slot(&self, slot: usize) -> &AtomicU64 {
        let group = self
            .group_of_slot
            .get(slot)
            .map_or(0, |group| usize::from(group.load(Ordering::Relaxed)));
        &self.down_until[group]
    }

    /// Whether any group is down.
    pub(crate) fn any_down(&self) -> bool {
        self.down_until
            .iter()
            .any(|until| until.load(Ordering::Relaxed) != 0)
    }

    /// Whether the layout should be read: never read, or read before
    /// `elapsed - max_age`.
    pub(crate) fn layout_due(&self, elapsed: u64, max_age: u64) -> bool {
        match self.layout_read_at.load(Ordering::Relaxed) {
            0 => true,
            read_at => elapsed.saturating_sub(read_at) >= max_age,
        }
    }

    /// Takes in a `CLUSTER SLOTS` reply read at `elapsed`: each master's
    /// slots become its group, masters numbered in the order of their first
    /// slots, so that a promoted replica, which takes its master's slots,
    /// takes its group too (and so its outage). A reply it cannot read
    /// changes nothing.
    pub(crate) fn set_layout(&self, reply: &Value, elapsed: u64) {
        self.layout_read_at.store(elapsed.max(1), Ordering::Relaxed);
        let Some(ranges) = slot_ranges(reply) else {
            return;
        };
        // Each master with its first slot, in the order of those.
        let mut masters: Vec<(u16, &str)> = Vec::new();
        for (first, _, master) in &ranges {
            match masters
                .iter_mut()
                .find(|(_, known)| *known == master.as_str())
            {
                Some((lowest, _)) => *lowest = (*lowest).min(*first),
                None => masters.push((*first, master.as_str())),
            }
        }
        masters.sort_unstable();
        for (first, last, master) in &ranges {
            let index = masters
                .iter()
                .position(|(_, known)| *known == master.as_str())
                .unwrap_or(0);
            let group = u8::try_from(index % MAX_GROUPS).unwrap_or(0);
            for slot in usize::from(*first)..=usize::from(*last) {
                if let Some(entry) = self.group_of_slot.get(slot) {
                    entry.store(group, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The slot ranges of a `CLUSTER SLOTS` reply, each with its master's id
/// (or address, when the reply names no id).
fn slot_ranges(reply: &Value) -> Option<Vec<(u16, u16, String)>> {
    let Value::Array(entries) = reply else {
        return None;
    };
    entries
        .iter()
        .map(|entry| {
            let Value::Array(fields) = entry else {
                return None;
            };
            let first = u16::try_from(integer(fields.first()?)?).ok()?;
            let last = u16::try_from(integer(fields.get(1)?)?).ok()?;
            let Value::Array(master) = fields.get(2)? else {
                return None;
            };
            let address = format!("{}:{}", text(master.first()?)?, integer(master.get(1)?)?);
            let id = master.get(2).and_then(text).unwrap_or(address);
            Some((first, last, id))
        })
        .collect()
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int(number) => Some(*number),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn range(first: i64, last: i64, port: i64, id: &str) -> Value {
        Value::Array(vec![
            Value::Int(first),
            Value::Int(last),
            Value::Array(vec![bulk("127.0.0.1"), Value::Int(port), bulk(id)]),
            Value::Array(vec![
                bulk("127.0.0.1"),
                Value::Int(port + 1),
                bulk("replica"),
            ]),
        ])
    }

    #[test]
    fn one_server_is_one_group() {
        let outages = Outages::new(false);
        outages.of_slot(0).store(5, Ordering::Relaxed);
        assert!(outages.any_down());
        assert_eq!(outages.of_slot(9000).load(Ordering::Relaxed), 5);
    }

    #[test]
    fn each_master_of_a_layout_is_a_group_of_its_own() {
        let outages = Outages::new(true);
        // Until the layout is known, one failure reaches every slot.
        assert!(outages.layout_due(10, 1_000));
        outages.of_slot(100).store(7, Ordering::Relaxed);
        assert_eq!(outages.of_slot(16_000).load(Ordering::Relaxed), 7);
        outages.of_slot(100).store(0, Ordering::Relaxed);

        let reply = Value::Array(vec![
            range(0, 5460, 7000, "c-master"),
            range(5461, 10922, 7002, "a-master"),
            range(10923, 16383, 7004, "b-master"),
        ]);
        outages.set_layout(&reply, 10);
        assert!(!outages.layout_due(500, 1_000));
        assert!(outages.layout_due(1_010, 1_000));
        outages.of_slot(6000).store(9, Ordering::Relaxed);
        assert_eq!(outages.of_slot(5461).load(Ordering::Relaxed), 9);
        assert_eq!(outages.of_slot(10922).load(Ordering::Relaxed), 9);
        assert_eq!(outages.of_slot(0).load(Ordering::Relaxed), 0);
        assert_eq!(outages.of_slot(16383).load(Ordering::Relaxed), 0);
        assert!(outages.any_down());

        // A promoted replica takes the same slots: they keep their group,
        // whatever its id.
        let after = Value::Array(vec![
            range(0, 5460, 7000, "c-master"),
            range(5461, 10922, 7003, "z-replica"),
            range(10923, 16383, 7004, "b-master"),
        ]);
        outages.set_layout(&after, 2_000);
        assert_eq!(outages.of_slot(6000).load(Ordering::Relaxed), 9);

        // A reply it cannot read changes nothing but the time of reading.
        outages.set_layout(&Value::Int(3), 3_000);
        assert_eq!(outages.of_slot(6000).load(Ordering::Relaxed), 9);
        assert_eq!(outages.of_slot(0).load(Ordering::Relaxed), 0);
    }
}
