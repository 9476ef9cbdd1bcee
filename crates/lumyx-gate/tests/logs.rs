//! No key in what the gate says: its logs (every level, captured through
//! `tracing`), the `Debug` of everything it hands out, and its error
//! messages, whatever form the key comes in.

use std::io;
use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, Utc};
use http::HeaderValue;
use lumyx_gate::{Gate, KeyTable, Keys, MemoryBackend, Verdict};
use lumyx_keys::{ApiKey, KeyRecord, KeyStore, MemoryKeyStore, Scope};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// Whether `text` shows `key` or any 12 characters of its secret part.
fn shows(text: &str, key: &ApiKey) -> bool {
    let secret = key.expose_secret();
    let lower = text.to_lowercase();
    secret.as_bytes()[5..]
        .windows(12)
        .any(|window| lower.contains(std::str::from_utf8(window).unwrap()))
}

#[test]
fn no_key_in_logs_debug_output_or_errors() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = runtime
        .block_on(Keys::load(Arc::new(MemoryKeyStore::new())))
        .unwrap();
    let gate = Gate::new(keys.table().clone(), MemoryBackend::new());
    let key = ApiKey::generate().unwrap();
    let secret = key.expose_secret().to_owned();
    let record = KeyRecord::new(key.as_key_ref(), "logged", "acct_1", Utc::now());
    runtime.block_on(keys.insert(record)).unwrap();

    let mut said = Vec::new();
    let mut typo = secret.clone();
    typo.replace_range(30..31, if &typo[30..31] == "a" { "b" } else { "a" });
    let headers = [
        format!("Bearer {secret}"),
        format!("bearer   {secret}  "),
        format!("Basic {secret}"),
        secret.clone(),
        format!("Bearer {secret} {secret}"),
        format!("Bearer {}", secret.to_uppercase()),
        format!("Bearer {typo}"),
        format!("Bearer {}", &secret[..40]),
    ];
    let mut check = |header: &str, scope: Scope| {
        let value = HeaderValue::from_str(header).unwrap();
        let verdict = gate.check_now(Some(&value), scope);
        said.push(format!("{verdict:?}"));
        if let Verdict::Denied(denied) = &verdict {
            said.push(denied.error().to_string());
            said.push(String::from_utf8(denied.body()).unwrap());
        }
    };
    for header in &headers {
        for scope in [Scope::Chat, Scope::Models] {
            check(header, scope);
        }
    }
    // Expired, then revoked.
    let mut expired = KeyRecord::clone(gate.table().find_by_id(&key.id()).unwrap().record());
    expired.expires_at = Some(Utc::now() - TimeDelta::seconds(1));
    gate.table().put(expired);
    check(&headers[0], Scope::Chat);
    runtime
        .block_on(keys.revoke(&key.id(), Utc::now()))
        .unwrap();
    check(&headers[0], Scope::Chat);
    // Everything the caller can print.
    said.push(format!("{gate:?}"));
    said.push(format!("{:?}", gate.table()));
    said.push(format!("{keys:?}"));
    said.push(format!("{:?}", gate.table().find_by_id(&key.id()).unwrap()));
    let table = KeyTable::new();
    said.push(format!("{table:?}"));

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("denied"),
        "the denials were not logged: {logged}"
    );
    assert!(logged.contains(&key.id().to_string()), "{logged}");
    assert!(!shows(&logged, &key), "{logged}");
    for text in &said {
        assert!(!shows(text, &key), "{text}");
    }
}
