//! Scans files for real Lumyx keys, for a pre-commit hook.
//!
//! ```text
//! cargo run --example scan -- FILE...
//! ```
//!
//! Prints `file:line:col hint` for every key whose checksum holds, never the
//! key itself. Exits 1 when it found any key, else 2 when a file could not be
//! read, else 0: every file is clean.

use std::process::ExitCode;

use lumyx_keys::Scanner;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: scan FILE...");
        return ExitCode::from(2);
    }
    let scanner = Scanner::default();
    let mut found = false;
    let mut unreadable = false;
    for file in &files {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!("scan: {file}: {err}");
                unreadable = true;
                continue;
            }
        };
        // Keys are ASCII, so replacing invalid UTF-8 loses none of them.
        let text = String::from_utf8_lossy(&bytes);
        for finding in scanner.scan(&text) {
            println!(
                "{file}:{}:{} {}",
                finding.line, finding.column, finding.hint
            );
            found = true;
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
