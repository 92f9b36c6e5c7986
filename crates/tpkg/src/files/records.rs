//! Record-level helpers every layer shares: decoding a pickle record
//! within the size limit, naming source records, the mocked-module stub
//! and a record's first bytes (telling pickles by them is
//! [`crate::formats`]' business).

use std::io;

use tpkg_archive::PackageReader;
use tpkg_pickle::ValueGraph;

/// A pickle record that could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum PickleRecordError {
    /// The record could not be read.
    #[error(transparent)]
    Archive(#[from] tpkg_archive::ArchiveError),
    /// The record is not a valid pickle.
    #[error("{archive}: record {record:?}")]
    Decode {
        /// The package.
        archive: String,
        /// The record.
        record: String,
        /// Why decoding failed (with the byte offset).
        #[source]
        source: tpkg_pickle::DecodeError,
    },
    /// The record is larger than any pickle tpkg decodes (tensor data lives
    /// in storage records; a pickle this big is an attack or a mistake).
    #[error(
        "{archive}: record {record:?} is {size} bytes, more than the {limit}-byte limit for a pickle"
    )]
    TooLarge {
        /// The package.
        archive: String,
        /// The record.
        record: String,
        /// Its size.
        size: u64,
        /// [`MAX_PICKLE_BYTES`].
        limit: u64,
    },
}

/// The largest pickle record decoded (256 MiB): decoding holds the record
/// and a value graph in memory, so this bounds what one pickle can cost.
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Reads and decodes the pickle stored at `record` (a path inside the
/// package such as `data/values.pkl`), with the `TorchData` policy. Nothing
/// is imported or run.
pub fn decode_record(
    reader: &tpkg_archive::PackageReader,
    record: &str,
) -> Result<ValueGraph, PickleRecordError> {
    let size = reader.record(record)?.size;
    if size > MAX_PICKLE_BYTES {
        return Err(PickleRecordError::TooLarge {
            archive: reader.label().to_owned(),
            record: record.to_owned(),
            size,
            limit: MAX_PICKLE_BYTES,
        });
    }
    let bytes = reader.read(record)?;
    tpkg_pickle::decode(&bytes).map_err(|source| PickleRecordError::Decode {
        archive: reader.label().to_owned(),
        record: record.to_owned(),
        source,
    })
}

/// The `_mock` module, written once at the archive root when a module is
/// mocked: tpkg's own `MockedObject`, with the behaviour and messages of
/// PyTorch's (`MockedObject(name, _suppress_err=True)`, every use raises
/// `NotImplementedError`).
pub const MOCK_MODULE_SOURCE: &str = include_str!("_mock.py");

/// The stub source of every mocked module (PyTorch's `_MOCK_IMPL`).
pub const MOCK_IMPL: &str = "from _mock import MockedObject\ndef __getattr__(attr: str):\n    return MockedObject(__name__ + '.' + attr, _suppress_err=True)\n";

/// What a module's source is: a plain module (`a/b.py`) or a package
/// (`a/b/__init__.py`; PyTorch's `is_package=True`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// `a/b.py`.
    #[default]
    Module,
    /// `a/b/__init__.py`.
    Package,
}

impl SourceKind {
    /// [`Package`](Self::Package) if `is_package`.
    pub(crate) fn of(is_package: bool) -> Self {
        if is_package {
            SourceKind::Package
        } else {
            SourceKind::Module
        }
    }

    /// Whether this is [`Package`](Self::Package).
    pub fn is_package(self) -> bool {
        self == SourceKind::Package
    }
}

/// `a/b.py`, or `a/b/__init__.py` for a package.
///
/// ```
/// use tpkg::exporter::{SourceKind, source_record};
/// assert_eq!(source_record("a.b", SourceKind::Module), "a/b.py");
/// assert_eq!(source_record("a.b", SourceKind::Package), "a/b/__init__.py");
/// ```
pub fn source_record(module: &str, kind: SourceKind) -> String {
    let path = module.replace('.', "/");
    match kind {
        SourceKind::Package => format!("{path}/__init__.py"),
        SourceKind::Module => format!("{path}.py"),
    }
}

/// `a/b.py` → `a.b`, `a/__init__.py` → `a`; bookkeeping and resources →
/// `None`.
pub fn module_of_record(name: &str) -> Option<String> {
    if name.starts_with(".data/") {
        return None;
    }
    let stem = name.strip_suffix(".py")?;
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    if stem.is_empty() || stem.split('/').any(|p| p.is_empty() || p.contains('.')) {
        return None;
    }
    Some(stem.replace('/', "."))
}

/// The first two bytes of a record (enough to tell a pickle's PROTO).
pub fn peek(reader: &PackageReader, name: &str) -> [u8; 2] {
    let mut head = [0u8; 2];
    if let Ok(mut record) = reader.open_record(name) {
        let _ = io::Read::read_exact(&mut record, &mut head);
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_of_records() {
        let cases = [
            ("a/b.py", Some("a.b")),
            ("a/__init__.py", Some("a")),
            ("_mock.py", Some("_mock")),
            (".data/extern_modules", None),
            ("res/a.txt", None),
            ("a/b.c.py", None),
        ];
        for (record, module) in cases {
            assert_eq!(module_of_record(record).as_deref(), module, "{record}");
        }
    }
}
