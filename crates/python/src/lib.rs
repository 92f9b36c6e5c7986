//! Python bindings of tpkg, imported as `tpkg` (this extension is
//! `tpkg._native`; the pure-Python package `tpkg` wraps it).
//!
//! Built by maturin with PyO3's stable ABI (Python 3.8 and later). The
//! extension never links libtorch: tensors are made in Python, with the
//! user's torch, from the buffers and descriptions this module returns
//! (`load.rs`). Every failure is a Python exception (`errors.rs`:
//! `TpkgError`, `UnsafeFileError`, `UnreadableFileError`,
//! `PackagingError`), never a panic.

// Library code turns every input-dependent failure into a typed error.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod errors;
mod export;
mod json;
mod load;
mod safety;
mod tools;

use pyo3::prelude::*;

/// The `tpkg._native` module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("TpkgError", py.get_type::<errors::TpkgError>())?;
    module.add("UnsafeFileError", py.get_type::<errors::UnsafeFileError>())?;
    module.add(
        "UnreadableFileError",
        py.get_type::<errors::UnreadableFileError>(),
    )?;
    module.add("PackagingError", py.get_type::<errors::PackagingError>())?;
    module.add_function(wrap_pyfunction!(load::load_plan, module)?)?;
    module.add_function(wrap_pyfunction!(load::populate_private, module)?)?;
    module.add_function(wrap_pyfunction!(tools::audit, module)?)?;
    module.add_function(wrap_pyfunction!(tools::inspect, module)?)?;
    module.add_function(wrap_pyfunction!(tools::convert, module)?)?;
    module.add_class::<export::Exporter>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
