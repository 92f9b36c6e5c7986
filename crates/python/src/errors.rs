//! tpkg's Python exceptions, and the conversion of the library's errors
//! into them. Every failure reaches Python as an exception, never a panic.

use std::path::Path;

use pyo3::exceptions::{PyException, PyFileNotFoundError};
use pyo3::prelude::*;

pyo3::create_exception!(
    tpkg,
    TpkgError,
    PyException,
    "A PyTorch file could not be read or written by tpkg."
);
pyo3::create_exception!(
    tpkg,
    UnsafeFileError,
    TpkgError,
    "Loading the file in PyTorch would run something the audit calls unsafe. \
     Attributes: `global_name` (what would be imported or called), `offset` \
     (byte offset in the pickle, or None), `record`, `kind`, `reason`, `finding` \
     (the audit finding as a dict)."
);
pyo3::create_exception!(
    tpkg,
    UnreadableFileError,
    TpkgError,
    "Part of the file the load would unpickle cannot be read, so it cannot be \
     vetted (the audit's `unreadable`). Same attributes as `UnsafeFileError`."
);
pyo3::create_exception!(
    tpkg,
    PackagingError,
    TpkgError,
    "Packaging failed: PyTorch's grouped `PackagingError` text (broken modules \
     by reason), or an `allow_empty=False` pattern that matched nothing. \
     Nothing was written."
);

/// An error with its causes on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    tpkg::error_chain(error)
}

/// Opening or reading `path` failed: `FileNotFoundError` when it does not
/// exist, else [`TpkgError`].
pub fn open(path: &Path, error: &(dyn std::error::Error + 'static)) -> PyErr {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = cause {
        if let Some(io) = inner.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::NotFound
        {
            return PyFileNotFoundError::new_err((
                2,
                "No such file or directory",
                path.display().to_string(),
            ));
        }
        cause = inner.source();
    }
    TpkgError::new_err(chain(error))
}

/// A tensor that fails its checks.
pub fn tensor(error: tpkg::tensors::TensorError) -> PyErr {
    TpkgError::new_err(chain(&error))
}

/// Any other library error.
pub fn other(error: &dyn std::error::Error) -> PyErr {
    TpkgError::new_err(chain(error))
}
