//! The torch.package container.
//!
//! A torch.package is a zip archive in the layout PyTorch's
//! `PyTorchFileWriter` produces, or the same records unzipped into a folder
//! (PyTorch's "directory form"). This crate reads and writes that container
//! and nothing else: it knows record names and bytes, not pickles, tensors or
//! Python.
//!
//! - [`PackageReader`] opens a zip file (memory-mapped), zip bytes, or a
//!   package folder, validates the whole container up front (one package
//!   folder, safe unique names, data inside the file, bounded sizes), then
//!   hands out records: zero-copy slices for stored zip records, streaming
//!   readers with size and CRC-32 enforcement for everything.
//! - [`PackageWriter`] writes PyTorch's layout (stored entries, data aligned
//!   to 64 bytes, zip64 when needed, bookkeeping records in PyTorch's order),
//!   streams large records, is deterministic, and commits atomically.
//! - [`extract`] writes the directory form, refusing to leave its folder.
//! - [`PackageMetadata`] reads the bookkeeping records.
//!
//! ```
//! # fn main() -> Result<(), tpkg_archive::ArchiveError> {
//! use tpkg_archive::{PackageMetadata, PackageReader, PackageWriter, WriteOptions};
//!
//! let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//! writer.write_record("my_pkg/__init__.py", b"x = 1\n")?;
//! writer.write_extern_modules(&["torch"])?;
//! let reader = PackageReader::from_bytes(writer.finish()?)?;
//!
//! let metadata = PackageMetadata::read(&reader)?;
//! assert_eq!(metadata.extern_modules, Some(vec!["torch".to_owned()]));
//! assert_eq!(metadata.version, Some(6));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
// Library code turns every input-dependent failure into a typed error.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod extract;
mod layout;
mod listing;
pub mod metadata;
mod miniz;
mod name;
pub mod progress;
mod reader;
mod writer;

pub use error::{ArchiveError, EntryKind, NameProblem, Result};
pub use extract::{ExtractOptions, extract, extract_with, extract_with_options};
pub use layout::{Anomaly, AnomalyKind, zip_anomalies};
pub use metadata::PackageMetadata;
pub use miniz::{MinizError, ZipStructure};
pub use name::{
    DEFAULT_MAX_NAME_LEN, IN_MEMORY_PREFIX, prefix_for_path, validate_prefix, validate_record_name,
};
pub use progress::{Progress, ProgressCounter, ProgressEvent, ProgressFn};
#[cfg(target_os = "linux")]
pub use reader::kernel_copy;
pub use reader::{
    Compression, PackageFormat, PackageReader, ReadOptions, RecordInfo, RecordReader, release_pages,
};
pub use writer::{
    ArchiveLayout, AtomicFile, DATA_ALIGNMENT, DEFAULT_PYTHON_VERSION, Destination, Durability,
    InMemory, PackageWriter, WriteOptions, start_writeback,
};
