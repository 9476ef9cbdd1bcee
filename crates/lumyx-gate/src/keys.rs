//! A key store with the gate's table in front: writes go to the store, then
//! into the table; the gate reads only the table.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lumyx_keys::{ApiKey, Error, KeyDigest, KeyId, KeyRecord, KeyStore};

use crate::KeyTable;

/// A [`KeyStore`] (the records' home: memory, Redis, a database) and the
/// [`KeyTable`] the gate serves from, kept equal.
///
/// Writes through `Keys` go to the store first and then into the table, so
/// the table never holds what the store refused; reads come from the table.
/// Records changed elsewhere (another instance sharing a Redis store) reach
/// the table through [`Keys::refresh`] or [`Keys::reload`] (with Redis,
/// `Keys::follow` calls them as changes arrive).
///
/// ```
/// use std::sync::Arc;
/// use chrono::Utc;
/// use lumyx_gate::Keys;
/// use lumyx_keys::{ApiKey, KeyRecord, KeyStore, MemoryKeyStore};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let keys = Keys::load(Arc::new(MemoryKeyStore::new())).await?;
/// let key = ApiKey::generate()?;
/// keys.insert(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now())).await?;
/// assert!(keys.table().find_by_digest(&key.digest()).is_some());
/// keys.revoke(&key.id(), Utc::now()).await?;
/// let entry = keys.table().find_by_id(&key.id()).expect("still listed");
/// assert!(entry.record().revoked_at.is_some());
/// # Ok::<(), lumyx_keys::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Keys {
    store: Arc<dyn KeyStore>,
    table: Arc<KeyTable>,
}

impl Keys {
    /// Loads every record of `store` into a new table.
    ///
    /// # Errors
    /// When the store cannot list its records.
    pub async fn load(store: Arc<dyn KeyStore>) -> Result<Keys, Error> {
        let keys = Keys {
            store,
            table: Arc::new(KeyTable::new()),
        };
        keys.reload().await?;
        Ok(keys)
    }

    /// A new key, to be inserted: of two fresh keys from the operating
    /// system's CSPRNG, the one whose Redis Cluster hash slot
    /// ([`KeyId::cluster_slot`]) holds fewer of the table's keys. Choosing
    /// the less loaded of two random places ("the power of two choices")
    /// spreads keys over the slots of a cluster almost evenly: of 100,000
    /// keys made so, the fullest slot holds 9 (1.5 times the mean), where
    /// random ids alone put 17 to 20 (a Poisson law's tail over 16,384
    /// slots). A key is as random as ever: its slot follows from its id,
    /// which is public.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use chrono::Utc;
    /// use lumyx_gate::Keys;
    /// use lumyx_keys::{KeyRecord, KeyStore, MemoryKeyStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let keys = Keys::load(Arc::new(MemoryKeyStore::new())).await?;
    /// let key = keys.new_key()?;
    /// keys.insert(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now())).await?;
    /// assert_eq!(keys.table().keys_in_slot(key.id().cluster_slot()), 1);
    /// # Ok::<(), lumyx_keys::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Random`] when the CSPRNG fails.
    pub fn new_key(&self) -> Result<ApiKey, Error> {
        let first = ApiKey::generate()?;
        let second = ApiKey::generate()?;
        let load = |key: &ApiKey| self.table.keys_in_slot(key.id().cluster_slot());
        Ok(if load(&second) < load(&first) {
            second
        } else {
            first
        })
    }

    /// The table the gate serves from.
    pub fn table(&self) -> &Arc<KeyTable> {
        &self.table
    }

    /// The store that holds the records.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// Reads one record from the store into the table (or out of it, when
    /// the store has it no more), and answers it.
    ///
    /// # Errors
    /// When the store cannot answer; the table keeps what it had.
    pub async fn refresh(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, Error> {
        let found = self.store.find_by_id(id).await?;
        match &found {
            Some(record) => self.table.put(KeyRecord::clone(record)),
            None => self.table.remove(id),
        }
        Ok(found)
    }

    /// Reads every record from the store into the table.
    ///
    /// # Errors
    /// When the store cannot list its records; the table keeps what it had.
    pub async fn reload(&self) -> Result<(), Error> {
        let records = self.store.list().await?;
        self.table
            .replace_all(records.iter().map(|record| KeyRecord::clone(record)));
        Ok(())
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyStore for Keys {
    async fn insert(&self, record: KeyRecord) -> Result<(), Error> {
        self.store.insert(record.clone()).await?;
        self.table.put(record);
        Ok(())
    }

    async fn update(&self, record: KeyRecord) -> Result<bool, Error> {
        let id = record.id;
        if !self.store.update(record).await? {
            return Ok(false);
        }
        // The store may have kept an earlier revocation: read what it holds.
        self.refresh(&id).await?;
        Ok(true)
    }

    async fn revoke(&self, id: &KeyId, at: DateTime<Utc>) -> Result<Option<Arc<KeyRecord>>, Error> {
        let revoked = self.store.revoke(id, at).await?;
        if let Some(record) = &revoked {
            self.table.put(KeyRecord::clone(record));
        }
        Ok(revoked)
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<Arc<KeyRecord>>, Error> {
        Ok(self
            .table
            .find_by_digest(digest)
            .map(|entry| Arc::new(entry.record().clone())))
    }

    async fn find_by_id(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, Error> {
        Ok(self
            .table
            .find_by_id(id)
            .map(|entry| Arc::new(entry.record().clone())))
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, Error> {
        Ok(self.table.records())
    }
}
