//! The tpkg side of the container differential (`tests/oracle/zip_differential.py`,
//! `cargo xtask zipdiff`, `tests/suite/oracle_container.rs`).
//!
//! Reads file paths from standard input, one a line, and prints one JSON
//! line per path, in order, flushed as soon as it is known:
//!
//! - `{"read": true, "records": [[name, sha256hex], ...]}` when
//!   `PackageReader` opens the zip (CRC-32 not checked, as PyTorch does not)
//!   and reads every listed record, in listing order, by name;
//! - `{"read": false, "error": "..."}` on the first error;
//! - `{"read": false, "error": "panic: ...", "panic": true}` if tpkg panicked
//!   (always a bug, whatever PyTorch does).
//!
//! One process serves a whole run, so the harness never starts a process
//! per case.
//!
//! `TPKG_ZIPDIFF_SABOTAGE=1` reports a wrong digest for every archive's
//! last record: the suite uses it to check that the harness can fail.

use std::io::{self, BufRead, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tpkg::archive::{PackageReader, ReadOptions};

/// The message of the last panic, captured by the hook instead of printed.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn outcome(path: &str) -> Value {
    let mut options = ReadOptions::default();
    options.verify_crc = false;
    let reader = match PackageReader::open_zip(path, options) {
        Ok(reader) => reader,
        Err(error) => return refused(&error),
    };
    let mut records = Vec::with_capacity(reader.records().len());
    for record in reader.records() {
        match reader.read(&record.name) {
            Ok(bytes) => {
                let digest = Sha256::digest(&bytes[..]);
                records.push(json!([record.name, format!("{digest:x}")]));
            }
            Err(error) => return refused(&error),
        }
    }
    if std::env::var_os("TPKG_ZIPDIFF_SABOTAGE").is_some()
        && let Some(last) = records.last_mut()
    {
        last[1] = json!("sabotaged");
    }
    json!({"read": true, "records": records})
}

/// `{"read": false}` with the error and its sources, `: `-separated.
fn refused(error: &dyn std::error::Error) -> Value {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    json!({"read": false, "error": text})
}

fn main() -> io::Result<()> {
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{message}{location}"));
        }
    }));
    let stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    for line in stdin.lines() {
        let line = line?;
        let path = line.trim_end_matches('\r');
        if path.is_empty() {
            continue;
        }
        let result = panic::catch_unwind(AssertUnwindSafe(|| outcome(path))).unwrap_or_else(|_| {
            let message = LAST_PANIC
                .lock()
                .ok()
                .and_then(|mut last| last.take())
                .unwrap_or_default();
            json!({"read": false, "error": format!("panic: {message}"), "panic": true})
        });
        serde_json::to_writer(&mut stdout, &result)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}
