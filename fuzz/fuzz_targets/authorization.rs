//! Header bytes and a scope → the gate. Whatever the bytes, the gate must not
//! panic and must answer one of the outcomes of the API's error table, with
//! the status, envelope and headers that outcome has, and never repeat the
//! header in its message.
//!
//! The first byte picks the route's scope; in the rest, `\x01` to `\x04`
//! stand for the keys of the table (active, expired, revoked, out of every
//! scope but models), so that the fuzzer reaches every row without finding
//! checksums.
#![no_main]

use std::sync::{Arc, OnceLock};

use chrono::{TimeDelta, TimeZone, Utc};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use lumyx_gate::{Gate, KeyTable, MemoryBackend, Refusal, Verdict};
use lumyx_keys::{ApiKey, KeyRecord, Limits, Scope, Scopes};
use lumyx_ratelimit::ManualClock;

struct World {
    gate: Gate<MemoryBackend<ManualClock>, ManualClock>,
    keys: [ApiKey; 4],
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let clock = ManualClock::at(now);
        let table = Arc::new(KeyTable::new());
        let keys = [(); 4].map(|_| ApiKey::generate().unwrap());
        let record = |key: &ApiKey| {
            KeyRecord::new(key.as_key_ref(), "fuzz", "acct", now - TimeDelta::days(1))
                .with_limits(Limits::new(3, 5).unwrap())
        };
        table.put(record(&keys[0]));
        table.put(record(&keys[1]).with_expiry(now - TimeDelta::hours(1)));
        let mut revoked = record(&keys[2]);
        revoked.revoked_at = Some(now - TimeDelta::hours(1));
        table.put(revoked);
        table.put(record(&keys[3]).with_scopes(Scopes::NONE.with(Scope::Models)));
        let gate = Gate::with_clock(table, MemoryBackend::with_clock(clock.clone()), clock);
        World { gate, keys }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let world = world();
    let scope = Scope::ALL[usize::from(first) % Scope::ALL.len()];
    let mut header = Vec::with_capacity(rest.len() + 64);
    for &byte in rest {
        match byte {
            1..=4 => header.extend_from_slice(world.keys[usize::from(byte - 1)].expose_secret().as_bytes()),
            byte => header.push(byte),
        }
    }
    let header = (first & 0x80 == 0).then_some(header.as_slice());
    let verdict = world.gate.check_bytes_now(header, scope);
    let mut headers = HeaderMap::new();
    verdict.write_headers(&mut headers);
    match &verdict {
        Verdict::Admitted(admitted) => {
            assert!(admitted.record().scopes.contains(scope));
            assert_eq!(headers.len(), 8);
        }
        Verdict::Denied(denied) => {
            let refusal = denied.refusal();
            let status = denied.status().as_u16();
            let expected = match refusal {
                Refusal::MissingApiKey | Refusal::InvalidAuthorizationHeader | Refusal::InvalidApiKey => 401,
                Refusal::KeyExpired | Refusal::KeyRevoked | Refusal::InsufficientScope => 403,
                Refusal::RateLimitExceeded | Refusal::DailyLimitExceeded => 429,
                Refusal::ServiceUnavailable | Refusal::InternalError => {
                    panic!("the memory backend cannot fail: {refusal:?}")
                }
            };
            assert_eq!(status, expected, "{refusal:?}");
            assert_eq!(headers.contains_key("www-authenticate"), status == 401);
            assert_eq!(headers.contains_key("retry-after"), status == 429);
            let body: serde_json::Value = serde_json::from_slice(&denied.body()).unwrap();
            let error = body["error"].as_object().unwrap();
            assert_eq!(error.len(), 4);
            assert_eq!(error["code"], refusal.code().as_str());
            let message = error["message"].as_str().unwrap();
            for key in &world.keys {
                assert!(!message.contains(key.expose_secret()));
            }
        }
    }
});
