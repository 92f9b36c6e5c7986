//! Python source, read without running Python.
//!
//! PyTorch's exporter learns what a module depends on by parsing its source
//! with `ast` and walking it (`torch/package/find_file_dependencies.py`).
//! [`scan_imports`] gives the same answer from a tree-sitter syntax tree:
//! the same references, in the same order, with the same blind spots
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

mod literal;
mod resolve;
mod scan;

pub use resolve::{Dependencies, Found, ModuleFinder, PythonProbeError};
pub use scan::{DynamicImport, Imports, Reference, ScanError, scan_imports};
