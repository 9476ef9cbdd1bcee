//! Scans files and standard input for real Lumyx keys, for a pre-commit hook.
//!
//! ```text
//! cargo run --release --example scan -- FILE...
//! git show HEAD | cargo run --release --example scan -- -
//! ```
//!
//! Prints `file:line:col hint` for every key whose checksum holds, never the
//! key itself; standard input, named `-`, prints as `-`. Inputs are streamed
//! through a fixed buffer, so a file of any size takes the same memory. Exits
//! 1 when it found any key, else 2 when an input could not be read, else 0:
//! every input is clean.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use lumyx_keys::Scanner;

const USAGE: &str = "usage: scan FILE... (`-` reads standard input)";

fn main() -> ExitCode {
    let inputs: Vec<String> = std::env::args().skip(1).collect();
    if inputs.is_empty() || inputs.iter().any(|arg| arg == "-h" || arg == "--help") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let scanner = Scanner::default();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut found = false;
    let mut unreadable = false;
    for name in &inputs {
        let reader = match open(name) {
            Ok(reader) => reader,
            Err(err) => {
                eprintln!("scan: {name}: {err}");
                unreadable = true;
                continue;
            }
        };
        // After a read error the findings end, so it is reported once.
        for finding in scanner.scan_reader(reader) {
            match finding {
                Ok(finding) => {
                    found = true;
                    let (line, column, hint) = (finding.line, finding.column, finding.hint);
                    if writeln!(out, "{name}:{line}:{column} {hint}").is_err() {
                        // Whoever read the output went away (`| head`); a key
                        // was found, so the answer is already 1.
                        return ExitCode::from(1);
                    }
                }
                Err(err) => {
                    eprintln!("scan: {name}: {err}");
                    unreadable = true;
                }
            }
        }
        // Each input's lines go out before the next input's errors.
        if out.flush().is_err() {
            return ExitCode::from(1);
        }
    }
    if found {
        ExitCode::from(1)
    } else if unreadable {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Standard input for `-`, else the named file.
fn open(name: &str) -> io::Result<Box<dyn Read>> {
    if name == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        Ok(Box::new(File::open(name)?))
    }
}
