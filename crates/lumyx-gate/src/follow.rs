//! Following a Redis key store: every instance's writes reach this gate's
//! table, usually within milliseconds (a blocking read of the store's change
//! log wakes on each write), always within a second while Redis is up.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lumyx_keys::{Error, KeyChange, KeyChanges, KeyId, RedisKeyStore};
use tokio::task::JoinHandle;

use crate::{Keys, LOG_TARGET};

/// How long one read of the change log waits for a write (clamped to the
/// store's own limit).
const WAIT: Duration = Duration::from_millis(400);

/// How long the follower waits after a failure before it tries again.
const RETRY: Duration = Duration::from_millis(100);

/// The task that keeps a gate's table equal to a Redis key store; dropping
/// it stops the task.
pub struct Following {
    task: JoinHandle<()>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Following {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Following")
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

impl Keys {
    /// Loads every record of `store` into a new table and keeps the table
    /// current with the writes of every instance sharing the store, for as
    /// long as the returned [`Following`] lives. Must be called inside a
    /// Tokio runtime.
    ///
    /// The change log is opened before the records are listed, so no write
    /// falls between the two. While Redis is down the table keeps what it
    /// has (keys keep working; a revocation made meanwhile elsewhere is
    /// obeyed once Redis is back); when the follower finds it missed writes
    /// (Redis restarted empty, or it fell behind the log), it lists every
    /// record again.
    ///
    /// # Errors
    /// When the store cannot be reached to open its change log or list its
    /// records.
    pub async fn load_following(store: RedisKeyStore) -> Result<(Keys, Following), Error> {
        let changes = store.changes().await?;
        let keys = Keys::load(Arc::new(store)).await?;
        let task = tokio::spawn(follow(keys.clone(), changes));
        Ok((keys, Following { task }))
    }
}

/// Applies the store's changes to the table, forever.
async fn follow(keys: Keys, mut changes: KeyChanges) {
    // Set when a change could not be applied: everything is read again as
    // soon as the store answers.
    let mut stale = false;
    loop {
        match changes.next(WAIT).await {
            Ok(KeyChange::Changed(ids)) => {
                if stale || !apply(&keys, ids).await {
                    stale = !reload(&keys).await;
                }
            }
            Ok(KeyChange::Lost) => stale = !reload(&keys).await,
            Err(err) => {
                if !stale {
                    tracing::warn!(target: LOG_TARGET, error = &err as &(dyn std::error::Error + 'static), "cannot follow the key store's changes");
                }
                stale = true;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Reads each changed record into the table; `false` when one could not be.
async fn apply(keys: &Keys, ids: Vec<KeyId>) -> bool {
    let mut seen = HashSet::new();
    for id in ids.into_iter().filter(|id| seen.insert(*id)) {
        if let Err(err) = keys.refresh(&id).await {
            tracing::warn!(target: LOG_TARGET, key = %id, error = &err as &(dyn std::error::Error + 'static), "cannot read a changed key");
            return false;
        }
    }
    true
}

/// Reads every record into the table; `false` when the store did not answer.
async fn reload(keys: &Keys) -> bool {
    match keys.reload().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(target: LOG_TARGET, error = &err as &(dyn std::error::Error + 'static), "cannot list the key store's records");
            false
        }
    }
}
