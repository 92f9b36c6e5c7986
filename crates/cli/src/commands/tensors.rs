//! `tpkg tensors`: a pickle's tensors as a table or JSON.
//!
//! The JSON shape is a contract (issue 6): an array of
//! `{path, dtype, shape, stride, storage_offset, requires_grad, parameter,
//! sha256}`, as in the corpus manifests; `storage` is added.

use std::io::{self, Write};
use std::path::Path;

use tpkg::tensors::PackageTensors;

use super::write_json;

/// `tpkg tensors PACKAGE [RESOURCE] [--json]`.
pub fn run(package: &Path, resource: Option<&str>, json: bool) -> anyhow::Result<()> {
    let file = tpkg::formats::PyTorchFile::open(package)?;
    let tensors = file.tensors(resource)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    print(&tensors, json, &mut out)?;
    out.flush()?;
    Ok(())
}

fn print(tensors: &PackageTensors<'_>, as_json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let mut rows = Vec::with_capacity(tensors.len());
    let summaries = super::progress::with_bytes("hashing", |progress| {
        tensors.summaries_with_progress(progress)
    })?;
    for (index, summary) in summaries.into_iter().enumerate() {
        let mut row = serde_json::to_value(summary)?;
        row["storage"] = tensors.view(index)?.spec().storage.key.clone().into();
        rows.push(row);
    }
    print_rows(rows, as_json, out)
}

fn print_rows(
    rows: Vec<serde_json::Value>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if as_json {
        write_json(&mut *out, &rows)?;
        return Ok(());
    }
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let header = [
        "path", "dtype", "shape", "stride", "offset", "flags", "storage", "sha256",
    ];
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            let mut flags = Vec::new();
            if row["parameter"] == true {
                flags.push("param");
            }
            if row["requires_grad"] == true {
                flags.push("grad");
            }
            [
                text(&row["path"]),
                text(&row["dtype"]),
                text(&row["shape"]),
                text(&row["stride"]),
                text(&row["storage_offset"]),
                flags.join(","),
                text(&row["storage"]),
                text(&row["sha256"]).chars().take(12).collect(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &table {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    writeln!(out, "{} tensors", table.len())?;
    Ok(())
}
