//! `diff`: what differs between two packages, by meaning where it can.
//!
//! Records are matched by name (the package folder and the serialization
//! id aside). Records with different bytes are explained by kind: a source
//! gives its first differing line; a pickle is decoded on both sides and its
//! value image and tensors (dtype, shape, stride, offset and a SHA-256 of
//! the elements) compared, so a re-encoded pickle holding the same values
//! reads as "same values"; anything else gives sizes.
//!
//! ```
//! use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let package = |source: &[u8]| -> Result<PackageReader, Box<dyn std::error::Error>> {
//!     let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//!     writer.write_record("m.py", source)?;
//!     Ok(PackageReader::from_bytes(writer.finish()?)?)
//! };
//! let report = tpkg::diff::diff(&package(b"a = 1\n")?, &package(b"a = 2\n")?);
//! assert_eq!(report.differ[0].record, "m.py");
//! assert_eq!(report.differ[0].detail, "source differs from line 1");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use serde::Serialize;
use tpkg_archive::PackageReader;

use crate::tensors::{PackageTensors, tensor_json};
use crate::verify::looks_like_pickle;

/// One record present in both packages with different bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The record.
    pub record: String,
    /// `source`, `pickle` or `binary`.
    pub kind: &'static str,
    /// What differs, in words.
    pub detail: String,
}

/// What [`diff`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// Records only in the first package.
    pub only_in_a: Vec<String>,
    /// Records only in the second package.
    pub only_in_b: Vec<String>,
    /// Records in both, with different bytes.
    pub differ: Vec<Difference>,
    /// Records in both with identical bytes.
    pub same: usize,
}

impl DiffReport {
    /// The packages hold the same records with the same bytes.
    pub fn is_same(&self) -> bool {
        self.only_in_a.is_empty() && self.only_in_b.is_empty() && self.differ.is_empty()
    }
}

const IGNORED: &str = ".data/serialization_id";

/// Compares two packages. See the [module docs](self).
pub fn diff(a: &PackageReader, b: &PackageReader) -> DiffReport {
    let names = |reader: &PackageReader| -> Vec<String> {
        reader
            .records()
            .iter()
            .map(|r| r.name.clone())
            .filter(|n| n != IGNORED)
            .collect()
    };
    let (names_a, names_b) = (names(a), names(b));
    let mut report = DiffReport {
        only_in_a: names_a
            .iter()
            .filter(|n| !b.has_record(n))
            .cloned()
            .collect(),
        only_in_b: names_b
            .iter()
            .filter(|n| !a.has_record(n))
            .cloned()
            .collect(),
        ..Default::default()
    };
    for name in names_a.iter().filter(|n| b.has_record(n)) {
        // Large records (storages) are compared by streaming, never held.
        let (size_a, size_b) = (
            a.record(name).map(|r| r.size).unwrap_or(0),
            b.record(name).map(|r| r.size).unwrap_or(0),
        );
        if size_a.max(size_b) > crate::show::MAX_PICKLE_BYTES {
            match streams_equal(a, b, name) {
                Ok(true) => report.same += 1,
                Ok(false) => report.differ.push(Difference {
                    record: name.clone(),
                    kind: "binary",
                    detail: format!("{size_a} bytes vs {size_b} bytes, contents differ"),
                }),
                Err(error) => report.differ.push(Difference {
                    record: name.clone(),
                    kind: "binary",
                    detail: format!("unreadable: {error}"),
                }),
            }
            continue;
        }
        let (bytes_a, bytes_b) = match (a.read(name), b.read(name)) {
            (Ok(x), Ok(y)) => (x, y),
            (x, y) => {
                let error = x
                    .err()
                    .or(y.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                report.differ.push(Difference {
                    record: name.clone(),
                    kind: "binary",
                    detail: format!("unreadable: {error}"),
                });
                continue;
            }
        };
        let same = bytes_a == bytes_b;
        // Compared: the process need not keep its pages of either input.
        let _ = (a.release(name), b.release(name));
        if same {
            report.same += 1;
            continue;
        }
        let difference = if name.ends_with(".py") {
            Difference {
                record: name.clone(),
                kind: "source",
                detail: source_difference(&bytes_a, &bytes_b),
            }
        } else if looks_like_pickle(&bytes_a) && looks_like_pickle(&bytes_b) {
            Difference {
                record: name.clone(),
                kind: "pickle",
                detail: pickle_difference(a, b, name),
            }
        } else {
            Difference {
                record: name.clone(),
                kind: "binary",
                detail: format!("{} bytes vs {} bytes", bytes_a.len(), bytes_b.len()),
            }
        };
        report.differ.push(difference);
    }
    report
}

/// Whether record `name` has the same bytes in both packages, read in 1 MiB
/// chunks.
fn streams_equal(a: &PackageReader, b: &PackageReader, name: &str) -> Result<bool, String> {
    use std::io::Read;
    let mut left = a.open_record(name).map_err(|e| e.to_string())?;
    let mut right = b.open_record(name).map_err(|e| e.to_string())?;
    if left.len() != right.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = left.read(&mut x).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(true);
        }
        right.read_exact(&mut y[..n]).map_err(|e| e.to_string())?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

fn source_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let line = a
        .split('\n')
        .zip(b.split('\n'))
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.split('\n').count().min(b.split('\n').count()))
        + 1;
    format!("source differs from line {line}")
}

/// Tensors of a pickle by path, as comparable JSON.
fn tensor_table(tensors: &PackageTensors<'_>) -> BTreeMap<String, serde_json::Value> {
    (0..tensors.len())
        .map(|i| {
            let path = tensors.path(i).to_owned();
            let value = match tensors.view(i) {
                Ok(view) => {
                    let json = tensor_json(&path, &view);
                    tensors.release_storage(&view.spec().storage.key);
                    json
                }
                Err(error) => serde_json::Value::from(error.to_string()),
            };
            (path, value)
        })
        .collect()
}

fn pickle_difference(a: &PackageReader, b: &PackageReader, name: &str) -> String {
    let (tensors_a, tensors_b) =
        match (PackageTensors::load(a, name), PackageTensors::load(b, name)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(error), _) | (_, Err(error)) => return format!("pickle does not load: {error}"),
        };
    let image_a = crate::show::image(tensors_a.graph()).ok();
    let image_b = crate::show::image(tensors_b.graph()).ok();
    let (table_a, table_b) = (tensor_table(&tensors_a), tensor_table(&tensors_b));
    let differing: Vec<&String> = table_a
        .keys()
        .chain(table_b.keys().filter(|k| !table_a.contains_key(*k)))
        .filter(|k| table_a.get(*k) != table_b.get(*k))
        .collect();
    match (image_a == image_b, differing.is_empty()) {
        (true, true) => "same values and tensors, different bytes".to_owned(),
        (false, true) => "values differ; tensors are the same".to_owned(),
        (same_values, false) => {
            let shown: Vec<&str> = differing.iter().take(5).map(|s| s.as_str()).collect();
            let more = differing.len().saturating_sub(shown.len());
            format!(
                "{}{} tensor(s) differ: {}{}",
                if same_values { "" } else { "values differ; " },
                differing.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        }
    }
}
