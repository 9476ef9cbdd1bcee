//! Prints fresh API keys.
//!
//! ```text
//! cargo run --example keygen -- [--count N] [--prefix P] [--json]
//! ```
//!
//! One key per line; with `--json`, one object per line with the `key`, its
//! public `id` and `hint`, and the hex `digest` a store keeps.

use std::io::{self, Write};
use std::process::ExitCode;

use lumyx_keys::{KeyFormat, KeyHint, KeyId};

const USAGE: &str = "usage: keygen [--count N] [--prefix PREFIX] [--json]";

/// One line of `--json` output, its fields in this order.
#[derive(serde::Serialize)]
struct KeyLine<'a> {
    key: &'a str,
    id: KeyId,
    hint: KeyHint,
    digest: String,
}

struct Options {
    count: usize,
    format: KeyFormat,
    json: bool,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        count: 1,
        format: KeyFormat::NOVA,
        json: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => {
                let value = args.next().ok_or("--count needs a number")?;
                options.count = value
                    .parse()
                    .map_err(|_| format!("--count needs a whole number, got `{value}`"))?;
            }
            "--prefix" => {
                let value = args
                    .next()
                    .ok_or("--prefix needs a prefix such as `acme_`")?;
                options.format = KeyFormat::new(&value).map_err(|err| err.to_string())?;
            }
            "--json" => options.json = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    for _ in 0..options.count {
        let key = match options.format.generate() {
            Ok(key) => key,
            Err(err) => {
                // The operating system's own error is the cause.
                match std::error::Error::source(&err) {
                    Some(cause) => eprintln!("keygen: {err}: {cause}"),
                    None => eprintln!("keygen: {err}"),
                }
                return ExitCode::FAILURE;
            }
        };
        // Written straight from the key to the output, without copies.
        let written = if options.json {
            let line = KeyLine {
                key: key.expose_secret(),
                id: key.id(),
                hint: key.hint(),
                digest: key.digest().to_hex(),
            };
            serde_json::to_writer(&mut out, &line)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            writeln!(out, "{}", key.expose_secret())
        };
        if written.is_err() {
            // The reader went away (e.g. `| head`): stop quietly.
            return ExitCode::SUCCESS;
        }
    }
    if out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    ExitCode::SUCCESS
}
