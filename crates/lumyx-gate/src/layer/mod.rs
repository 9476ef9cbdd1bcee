//! The gate as tower middleware: [`GateLayer`] wraps a service (an axum
//! route, a router, any `tower::Service` over `http` requests) in a
//! [`GateService`], which checks every request with one [`Gate`] for one
//! scope before the inner service sees it.
//!
//! Split as tower-http splits its middleware: the layer (`layer.rs`), the
//! service (`service.rs`) and its response future (`future.rs`).

use std::fmt;
use std::sync::Arc;

use lumyx_keys::KeyRecord;
use lumyx_ratelimit::Snapshot;

#[cfg(doc)]
use crate::Gate;
use crate::{Admitted, KeyEntry};

mod future;
// tower-http's `limit/layer.rs` is this module's `layer/layer.rs`.
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::GateLayer;
pub use service::GateService;

/// Who an admitted request came from: the record of its key and the key's
/// limits after this request.
///
/// [`GateService`] inserts one into the extensions of every request it
/// admits, so a handler reads it with axum's
/// `Extension<Authenticated>` (or `request.extensions().get::<Authenticated>()`).
/// Its `Debug` shows the key's id and hint, never the key or its digest.
#[derive(Clone)]
pub struct Authenticated {
    entry: Arc<KeyEntry>,
    snapshot: Snapshot,
}

impl Authenticated {
    /// The record of the key the request presented.
    pub fn record(&self) -> &KeyRecord {
        self.entry.record()
    }

    /// The key's entry in the gate's table (its record, and its limits and
    /// usage in memory).
    pub fn entry(&self) -> &Arc<KeyEntry> {
        &self.entry
    }

    /// The key's limits after this request (what the response's
    /// rate-limit headers say).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl From<&Admitted> for Authenticated {
    fn from(admitted: &Admitted) -> Authenticated {
        Authenticated {
            entry: Arc::clone(admitted.entry()),
            snapshot: *admitted.snapshot(),
        }
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("id", &self.record().id)
            .field("hint", &self.record().hint)
            .field("owner", &self.record().owner)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}
