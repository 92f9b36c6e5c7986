//! tpkg: PyTorch's `torch.package` in Rust.
//!
//! This facade is the public API. Its code sits in three layers, each using
//! only the ones before it:
//!
//! - [`files`]: reading PyTorch's files (formats, legacy `torch.save`,
//!   `.pt2`, TorchScript, tensors, record helpers);
//! - [`api`]: PyTorch's `torch.package` API ([`exporter::PackageExporter`],
//!   [`importer::PackageImporter`], [`repackage`], [`Directory`]);
//! - [`tools`]: [`audit`], [`verify`], [`diff`], [`show`], [`convert`].
//!
//! Each module is also re-exported at the root (`tpkg::exporter`,
//! `tpkg::audit`, ...), and so are the crates underneath ([`archive`],
//! [`glob`], [`mangling`], [`digraph`], [`pickle`], [`pysource`]):
//!
//! ```
//! # fn main() -> Result<(), tpkg::archive::ArchiveError> {
//! use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
//!
//! let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//! writer.write_record("res/config.json", br#"{"layers": 18}"#)?;
//! let reader = PackageReader::from_bytes(writer.finish()?)?;
//! assert_eq!(&reader.read("res/config.json")?[..], br#"{"layers": 18}"#);
//! # Ok(()) }
//! ```
//!
//! With the `tch` feature (off by default: it needs libtorch), the `tch`
//! crate is re-exported as `tpkg::tch`, so that users and tpkg agree on one
//! version of it (and so one libtorch).

// Library code turns every input-dependent failure into a typed error.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod files;
pub mod tools;

pub use api::{Directory, FileStructureError, exporter, importer, repackage};
pub use files::{formats, legacy, pt2, tensors, torchscript};
pub use tools::{audit, convert, diff, graph, inspect, show, verify};
pub use tpkg_archive as archive;
pub use tpkg_digraph as digraph;
pub use tpkg_glob as glob;
pub use tpkg_mangling as mangling;
pub use tpkg_pickle as pickle;
pub use tpkg_pysource as pysource;

#[cfg(feature = "tch")]
pub use tch;

#[cfg(all(test, feature = "tch"))]
mod tests {
    /// Proves the build links the pinned libtorch and finds it at run time
    /// (rpath from build.rs), with no environment variables.
    #[test]
    fn libtorch_is_linked_and_loadable() {
        let tensor = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.5]);
        assert_eq!(tensor.sum(tch::Kind::Float).double_value(&[]), 6.5);
    }
}

/// An error with its causes, `outer: cause: root cause`, as one line: what
/// reports (audit findings, verify problems) show, so a cause is never
/// lost behind a summary. A cause whose text the line already holds is not
/// repeated.
///
/// ```
/// let error = std::io::Error::other("disk on fire");
/// assert_eq!(tpkg::error_chain(&error), "disk on fire");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}
