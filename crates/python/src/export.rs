//! `tpkg.PackageExporter`'s native half.

use pyo3::prelude::*;

/// Placeholder.
#[pyclass(module = "tpkg._native")]
#[derive(Debug)]
pub struct Exporter {}
