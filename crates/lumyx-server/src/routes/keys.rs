//! `/v1/keys` (admin token): the developer dashboard's API. Create, list,
//! show, update, revoke and rotate keys, and read their usage.
//!
//! Writes go through [`Keys`](lumyx_gate::Keys): to the store first, then
//! into the gate's table, so the next request through this instance already
//! sees them (and, with Redis, every other instance within a second).
//! A key is shown whole once, in the 201 of its creation or rotation.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use lumyx_api_types::{
    self as api, ApiError, CreateKeyRequest, CreatedKey, KeyListParams, KeyUsage, ListPage,
    RotateKeyRequest, UpdateKeyRequest,
};
use lumyx_gate::wire::{record_to_wire, scopes_from_wire, usage_to_wire};
use lumyx_gate::{Backend, KeyEntry};
use lumyx_keys::{ApiKey, KeyId, KeyRecord, KeyStore, Limits};

use crate::error::{Answer, Failure, unavailable};
use crate::extract::{JsonBody, OptionalJsonBody, PathParam, QueryParams};
use crate::state::AppState;

/// `POST /v1/keys`: a new key (201), shown whole this once.
pub(crate) async fn create<B>(
    State(state): State<Arc<AppState<B>>>,
    JsonBody(request): JsonBody<CreateKeyRequest>,
) -> Answer<(StatusCode, Json<CreatedKey>)> {
    let now = Utc::now();
    let limits = limits(request.rate_limit_per_minute(), request.daily_limit())?;
    let scopes = scopes_from_wire(&request.scopes()).map_err(|unknown| {
        ApiError::invalid_value("scopes", format_args!("unknown scope `{unknown}`"))
    })?;
    let key = state
        .keys
        .new_key()
        .map_err(|err| unavailable("no key could be generated", &err))?;
    let mut record = KeyRecord::new(key.as_key_ref(), request.name, request.owner, now)
        .with_limits(limits)
        .with_scopes(scopes);
    if let Some(expires_at) = request.expires_at {
        record = record.with_expiry(future_time(expires_at, now)?);
    }
    state
        .keys
        .insert(record.clone())
        .await
        .map_err(|err| store_failure(&err))?;
    tracing::info!(key = %record.id, owner = %record.owner, "key created");
    Ok(created(&key, &record))
}

/// `GET /v1/keys`: a page of the keys (of one `owner` when asked), newest
/// first by default.
pub(crate) async fn list<B>(
    State(state): State<Arc<AppState<B>>>,
    QueryParams(params): QueryParams<KeyListParams>,
) -> Answer<Json<ListPage<api::KeyRecord>>> {
    let records: Vec<api::KeyRecord> = state
        .keys
        .table()
        .records()
        .iter()
        .filter(|record| {
            params
                .owner
                .as_ref()
                .is_none_or(|owner| record.owner == *owner)
        })
        .map(|record| record_to_wire(record))
        .collect();
    ListPage::paginate(records, &params.page(), |record| &record.id)
        .map(Json)
        .ok_or_else(|| {
            Failure(ApiError::invalid_value(
                "after",
                "expected the id of a key of this list",
            ))
        })
}

/// `GET /v1/keys/{id}`.
pub(crate) async fn show<B>(
    State(state): State<Arc<AppState<B>>>,
    PathParam(id): PathParam,
) -> Answer<Json<api::KeyRecord>> {
    let entry = entry(&state, &id)?;
    Ok(Json(record_to_wire(entry.record())))
}

/// `POST /v1/keys/{id}`: changes the name, limits, scopes or expiry of a
/// key; its limiter state and usage are kept.
pub(crate) async fn update<B>(
    State(state): State<Arc<AppState<B>>>,
    PathParam(id): PathParam,
    JsonBody(request): JsonBody<UpdateKeyRequest>,
) -> Answer<Json<api::KeyRecord>> {
    let now = Utc::now();
    let mut record = entry(&state, &id)?.record().clone();
    if let Some(name) = request.name {
        record.name = name;
    }
    record.limits = limits(
        request
            .rate_limit_per_minute
            .unwrap_or(record.limits.rate_limit_per_minute()),
        request.daily_limit.unwrap_or(record.limits.daily_limit()),
    )?;
    if let Some(scopes) = &request.scopes {
        record.scopes = scopes_from_wire(scopes).map_err(|unknown| {
            ApiError::invalid_value("scopes", format_args!("unknown scope `{unknown}`"))
        })?;
    }
    match request.expires_at {
        Some(Some(expires_at)) => record.expires_at = Some(future_time(expires_at, now)?),
        Some(None) => record.expires_at = None,
        None => {}
    }
    let key_id = record.id;
    let updated = state
        .keys
        .update(record)
        .await
        .map_err(|err| store_failure(&err))?;
    if !updated {
        return Err(ApiError::key_not_found(&id).into());
    }
    tracing::info!(key = %key_id, "key updated");
    Ok(Json(record_to_wire(entry(&state, &id)?.record())))
}

/// `DELETE /v1/keys/{id}`: revokes the key now (an earlier revocation, such
/// as the end of a rotation's grace period that has passed, is kept) and
/// answers its record.
pub(crate) async fn revoke<B>(
    State(state): State<Arc<AppState<B>>>,
    PathParam(id): PathParam,
) -> Answer<Json<api::KeyRecord>> {
    let key_id = key_id(&id)?;
    let revoked = state
        .keys
        .revoke(&key_id, Utc::now())
        .await
        .map_err(|err| store_failure(&err))?
        .ok_or_else(|| ApiError::key_not_found(&id))?;
    tracing::info!(key = %key_id, "key revoked");
    Ok(Json(record_to_wire(&revoked)))
}

/// `POST /v1/keys/{id}/rotate`: a new key with the old one's name, owner,
/// limits, scopes and expiry (201, shown whole this once); the old key stays
/// valid for `grace_period_seconds` (0 by default), then is revoked. A key
/// that is revoked, already rotated (in its grace period) or expired is not
/// rotated: 400 `invalid_value` with `param` `id`.
pub(crate) async fn rotate<B>(
    State(state): State<Arc<AppState<B>>>,
    PathParam(id): PathParam,
    OptionalJsonBody(request): OptionalJsonBody<RotateKeyRequest>,
) -> Answer<(StatusCode, Json<CreatedKey>)> {
    let now = Utc::now();
    let old = entry(&state, &id)?.record().clone();
    if old.revoked_at.is_some() {
        return Err(ApiError::invalid_value(
            "id",
            format_args!(
                "key {} is revoked, or rotated already (its successor is the key to rotate)",
                old.id
            ),
        )
        .into());
    }
    if old.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::invalid_value(
            "id",
            format_args!("key {} has expired; create a new key instead", old.id),
        )
        .into());
    }
    let key = state
        .keys
        .new_key()
        .map_err(|err| unavailable("no key could be generated", &err))?;
    let mut record = KeyRecord::new(key.as_key_ref(), old.name.clone(), old.owner.clone(), now)
        .with_limits(old.limits)
        .with_scopes(old.scopes);
    record.expires_at = old.expires_at;
    state
        .keys
        .insert(record.clone())
        .await
        .map_err(|err| store_failure(&err))?;
    let grace = request.grace_period_seconds.unwrap_or(0);
    let grace = Duration::seconds(i64::try_from(grace).unwrap_or(i64::MAX));
    state
        .keys
        .revoke(&old.id, now + grace)
        .await
        .map_err(|err| store_failure(&err))?;
    tracing::info!(old = %old.id, new = %record.id, grace_seconds = grace.num_seconds(), "key rotated");
    Ok(created(&key, &record))
}

/// `GET /v1/keys/{id}/usage`: the gate's counts for the key, today, in
/// total and for each of the last 31 UTC days, and its limits now (read
/// without consuming anything).
pub(crate) async fn usage<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    PathParam(id): PathParam,
) -> Answer<Json<KeyUsage>> {
    let entry = entry(&state, &id)?;
    let (usage, snapshot) = state
        .gate
        .usage(&entry)
        .await
        .map_err(|err| unavailable("the usage of a key could not be read", &err))?;
    Ok(Json(usage_to_wire(entry.record(), &usage, &snapshot)))
}

/// The 201 answer that shows a new key once.
fn created(key: &ApiKey, record: &KeyRecord) -> (StatusCode, Json<CreatedKey>) {
    let created = CreatedKey::new(key.expose_secret(), record_to_wire(record));
    (StatusCode::CREATED, Json(created))
}

/// The key id of a path, or 404 `key_not_found` for text that is none.
fn key_id(id: &str) -> Result<KeyId, Failure> {
    id.parse().map_err(|_| Failure(ApiError::key_not_found(id)))
}

/// The gate's entry of the key `id`, or 404 `key_not_found`.
fn entry<B>(state: &AppState<B>, id: &str) -> Result<Arc<KeyEntry>, Failure> {
    state
        .keys
        .table()
        .find_by_id(&key_id(id)?)
        .ok_or_else(|| Failure(ApiError::key_not_found(id)))
}

/// Limits in their ranges, or 400 `invalid_value` naming the field (the
/// request's validation checks them already; this keeps the two in step).
fn limits(rate_limit_per_minute: u32, daily_limit: u32) -> Result<Limits, Failure> {
    Limits::new(rate_limit_per_minute, daily_limit).map_err(|err| {
        let param = if Limits::RATE_LIMIT_PER_MINUTE_RANGE.contains(&rate_limit_per_minute) {
            "daily_limit"
        } else {
            "rate_limit_per_minute"
        };
        Failure(ApiError::invalid_value(param, err))
    })
}

/// `expires_at` (Unix seconds) as a time after `now`, or 400
/// `invalid_value` with `param` `expires_at`.
fn future_time(expires_at: i64, now: DateTime<Utc>) -> Result<DateTime<Utc>, Failure> {
    match DateTime::from_timestamp(expires_at, 0) {
        Some(time) if time > now => Ok(time),
        _ => Err(Failure(ApiError::invalid_value(
            "expires_at",
            format_args!(
                "expected a time in the future, got {expires_at} (now is {})",
                now.timestamp()
            ),
        ))),
    }
}

/// The answer to a key store's failure: 503 while it cannot answer, 500
/// otherwise (a duplicate id or a corrupt record is the server's fault).
fn store_failure(err: &lumyx_keys::Error) -> Failure {
    match err {
        lumyx_keys::Error::Store(_) => unavailable("the key store is unavailable", err),
        _ => {
            tracing::error!(
                error = err as &(dyn std::error::Error + 'static),
                "the key store failed"
            );
            Failure(ApiError::internal_error())
        }
    }
}
