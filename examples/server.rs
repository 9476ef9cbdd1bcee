//! The Lumyx API server: `cargo run --example server`.
//!
//! With no configuration it listens on 127.0.0.1:8080 with its state in
//! memory, and prints the admin token, a demo key and a curl line to try.
//! The environment changes it (`LUMYX_ADDR`, `LUMYX_ADMIN_TOKEN`,
//! `LUMYX_REDIS_URL`, `LUMYX_LOG_FORMAT`, ...): see `lumyx_server::Config`.
//! Ctrl-C (or SIGTERM) stops it after the requests in flight finish.

fn main() -> std::process::ExitCode {
    lumyx_server::run_from_env()
}
