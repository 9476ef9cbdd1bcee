//! The program behind `cargo run --example server` and the `lumyx-server`
//! binary: read the environment, install the logs, start, print what the
//! operator needs once, and serve until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use lumyx_redis::Report;

use crate::{Config, Server, StoreConfig, init_logging};

/// Runs a server configured by the environment (see [`Config::from_env`]),
/// or with the arguments `backup PATH` copies its database to `PATH`.
///
/// The server runs until SIGINT or SIGTERM, on a new multi-threaded Tokio
/// runtime. A bad
/// variable, a store that cannot be opened or an address in use ends it
/// with one line on standard error and exit code 2 (1 when serving fails).
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     lumyx_server::run_from_env()
/// }
/// ```
pub fn run_from_env() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["backup", to] => return backup(Path::new(to)),
        _ => {
            eprintln!("usage: lumyx-server [backup PATH]   (configured by LUMYX_* variables)");
            return ExitCode::from(2);
        }
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => return fail(&err, 2),
    };
    if let Err(err) = init_logging(config.log_format) {
        eprintln!("lumyx-server: {err}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err, 1),
    };
    runtime.block_on(async {
        let running = match Server::new(config).start().await {
            Ok(running) => running,
            Err(err) => return fail(&err, 2),
        };
        println!("{}", running.started());
        match running.run_until_signal().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err, 1),
        }
    })
}

/// `backup PATH`: a consistent copy of the configured data directory's
/// database, taken while a server may be running on it.
fn backup(to: &Path) -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => return fail(&err, 2),
    };
    let StoreConfig::Sqlite(dir) = &config.store else {
        eprintln!(
            "lumyx-server: backup copies the SQLite database of LUMYX_DATA_DIR; this configuration \
             keeps its state in {}",
            config.store.name()
        );
        return ExitCode::from(2);
    };
    match crate::durable::backup(dir, to) {
        Ok(pages) => {
            println!(
                "backed up {} to {} ({pages} pages)",
                dir.display(),
                to.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, 1),
    }
}

/// Prints `err` with its causes on one line and answers `code`.
fn fail(err: &(dyn std::error::Error + 'static), code: u8) -> ExitCode {
    eprintln!("lumyx-server: {}", Report(err));
    ExitCode::from(code)
}
