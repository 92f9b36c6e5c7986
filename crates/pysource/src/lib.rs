//! Python source, read without running Python.
//!
//! PyTorch's exporter learns what a module depends on by parsing its source
//! with `ast` and walking it (`torch/package/find_file_dependencies.py`).
//! [`scan_imports`] gives the same answer from ruff's syntax tree (the
//! parser behind the ruff linter, about 8x faster than tree-sitter here and
//! exact on current syntax): the same references, in the same order, with
//! the same blind spots
//! (nothing inside a call's arguments is seen; `__import__` counts only with
//! literal arguments), plus what PyTorch cannot see, reported apart:
//! `importlib.import_module("x")` calls.
//!
//! ```
//! use tpkg_pysource::scan_imports;
//! let imports = scan_imports("import torch\nfrom torch import nn\n", "model").unwrap();
//! assert_eq!(imports.references[0], ("torch".to_owned(), None));
//! assert_eq!(imports.references[1], ("torch".to_owned(), Some("nn".to_owned())));
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod calls;
mod resolve;
mod scan;
mod stdlib;
mod stdlib_names;
mod toplevel;
mod visit;

pub use calls::{Call, Callee, Construct, function_calls, import_time_calls};
pub use resolve::{Dependencies, Found, ModuleFinder, PythonProbeError};
pub use scan::{
    DynamicImport, Imports, MAX_SOURCE_BYTES, PythonVersion, Reference, ScanError, package_of,
    scan_imports, scan_imports_for,
};
pub use stdlib::{is_stdlib_module, is_stdlib_submodule, stdlib_module_names};
pub use toplevel::{ImportTimeCode, StatementKind, import_time_code};
