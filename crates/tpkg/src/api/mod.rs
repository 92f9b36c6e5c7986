//! PyTorch's `torch.package` API: [`exporter`] (`PackageExporter`),
//! [`importer`] (`PackageImporter`), [`repackage`] (an importer's modules
//! re-exported) and `file_structure` ([`Directory`]).
//!
//! Builds on [`crate::files`]; never on [`crate::tools`].

pub mod exporter;
mod file_structure;
pub mod importer;
mod prefetch;
pub mod repackage;

pub use file_structure::{Directory, FileStructureError};
