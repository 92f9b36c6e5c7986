//! `tpkg.PackageExporter`'s native half: tpkg's exporter, modules resolved
//! statically through an interpreter's `sys.path` (nothing is imported).
//! The Python glue (`tpkg/_exporter.py`) pickles objects with PyTorch's
//! own reducers and hands the bytes and storages over.

use std::path::PathBuf;

use pyo3::exceptions::{PyModuleNotFoundError, PyValueError};
use pyo3::prelude::*;
use tpkg::archive::{AtomicFile, WriteOptions};
use tpkg::exporter::{
    Dependencies, ExportError, PackageExporter, PatternOptions, SourceKind, SourceOptions,
};
use tpkg::glob::Patterns;
use tpkg::pysource::ModuleFinder;

use crate::errors::{self, PackagingError, TpkgError};

/// A pattern argument: one pattern or a list of them, as PyTorch takes.
#[derive(Debug, FromPyObject)]
pub enum PatternArg {
    /// `"networkx.**"`.
    One(String),
    /// `["a.**", "b"]`.
    Many(Vec<String>),
}

impl From<PatternArg> for Patterns {
    fn from(arg: PatternArg) -> Patterns {
        match arg {
            PatternArg::One(one) => Patterns::from(one),
            PatternArg::Many(many) => Patterns::from(many),
        }
    }
}

/// `dependencies=True|False` as the library's enum.
fn dependencies(add: bool) -> Dependencies {
    if add {
        Dependencies::Add
    } else {
        Dependencies::Skip
    }
}

/// An [`ExportError`] as the Python exception PyTorch raises for it.
fn export_error(error: ExportError) -> PyErr {
    match error {
        ExportError::Packaging(_) | ExportError::EmptyMatch { .. } => {
            PackagingError::new_err(error.to_string())
        }
        ExportError::ModuleNotFound { module } => {
            PyModuleNotFoundError::new_err(format!("No module named '{module}'"))
        }
        ExportError::UnsupportedProtocol(_) => PyValueError::new_err(error.to_string()),
        other => errors::other(&other),
    }
}

/// The exporter; `None` once closed.
#[pyclass(module = "tpkg._native", unsendable)]
#[derive(Debug)]
pub struct Exporter {
    inner: Option<PackageExporter<AtomicFile>>,
}

impl Exporter {
    fn open(&mut self) -> PyResult<&mut PackageExporter<AtomicFile>> {
        self.inner
            .as_mut()
            .ok_or_else(|| TpkgError::new_err("the exporter is closed"))
    }
}

#[pymethods]
impl Exporter {
    /// `Exporter(path, python)`: writes `path` at `close`, resolving
    /// modules through `python`'s `sys.path` (asked once, without imports).
    #[new]
    fn new(py: Python<'_>, path: PathBuf, python: PathBuf) -> PyResult<Self> {
        let finder = py
            .detach(|| ModuleFinder::from_python(&python))
            .map_err(|e| errors::other(&e))?;
        let mut options = WriteOptions::default();
        if let Some(release) = finder.python_release() {
            options.python_version = release.to_owned();
        }
        // The exporter holds hooks that are not `Send`: it works with the
        // GIL held.
        let inner = PackageExporter::create_with(&path, finder, options).map_err(export_error)?;
        Ok(Exporter { inner: Some(inner) })
    }

    /// `intern(include, exclude, allow_empty)`.
    fn intern(
        &mut self,
        include: PatternArg,
        exclude: PatternArg,
        allow_empty: bool,
    ) -> PyResult<()> {
        let options = pattern_options(exclude, allow_empty);
        self.open()?
            .intern_with(include, options)
            .map_err(export_error)
    }

    /// `extern(include, exclude, allow_empty)`.
    fn extern_(
        &mut self,
        include: PatternArg,
        exclude: PatternArg,
        allow_empty: bool,
    ) -> PyResult<()> {
        let options = pattern_options(exclude, allow_empty);
        self.open()?
            .extern_modules_with(include, options)
            .map_err(export_error)
    }

    /// `mock(include, exclude, allow_empty)`.
    fn mock(
        &mut self,
        include: PatternArg,
        exclude: PatternArg,
        allow_empty: bool,
    ) -> PyResult<()> {
        let options = pattern_options(exclude, allow_empty);
        self.open()?
            .mock_with(include, options)
            .map_err(export_error)
    }

    /// `deny(include, exclude)`.
    fn deny(&mut self, include: PatternArg, exclude: PatternArg) -> PyResult<()> {
        self.open()?
            .deny_with(include, Patterns::from(exclude))
            .map_err(export_error)
    }

    /// `save_module(module_name, dependencies)`.
    fn save_module(&mut self, module: &str, dependencies: bool) -> PyResult<()> {
        self.open()?
            .save_module_with(module, self::dependencies(dependencies))
            .map_err(export_error)
    }

    /// `save_source_string(module_name, src, is_package, dependencies)`.
    fn save_source_string(
        &mut self,
        module: &str,
        source: &str,
        is_package: bool,
        dependencies: bool,
    ) -> PyResult<()> {
        let kind = if is_package {
            SourceKind::Package
        } else {
            SourceKind::Module
        };
        let options = SourceOptions::default()
            .with_kind(kind)
            .with_dependencies(self::dependencies(dependencies));
        self.open()?
            .save_source_string_with(module, source, options)
            .map_err(export_error)
    }

    /// `save_source_file(module_name, file_or_directory, dependencies)`.
    fn save_source_file(
        &mut self,
        module: &str,
        path: PathBuf,
        dependencies: bool,
    ) -> PyResult<()> {
        self.open()?
            .save_source_file_with(module, &path, self::dependencies(dependencies))
            .map_err(export_error)
    }

    /// `save_text(package, resource, text)`.
    fn save_text(&mut self, package: &str, resource: &str, text: &str) -> PyResult<()> {
        self.open()?
            .save_text(package, resource, text)
            .map_err(export_error)
    }

    /// `save_binary(package, resource, binary)`.
    fn save_binary(&mut self, package: &str, resource: &str, binary: &[u8]) -> PyResult<()> {
        self.open()?
            .save_binary(package, resource, binary)
            .map_err(export_error)
    }

    /// A pickle PyTorch's pickler wrote (protocol 3 or 4): its record,
    /// and the modules of its globals as dependencies.
    fn save_pickle_bytes(
        &mut self,
        package: &str,
        resource: &str,
        pickle: &[u8],
        dependencies: bool,
    ) -> PyResult<()> {
        self.open()?
            .save_pickle_bytes_with(package, resource, pickle, self::dependencies(dependencies))
            .map_err(export_error)
    }

    /// Writes storage `key` (`.data/<key>.storage`) from `nbytes` bytes of
    /// CPU memory at `address`.
    ///
    /// The caller (the glue, with a CPU `torch.UntypedStorage` it holds
    /// alive for the call) guarantees the memory is readable.
    fn save_storage(&mut self, key: &str, address: usize, nbytes: usize) -> PyResult<()> {
        let exporter = self.open()?;
        if nbytes == 0 {
            return exporter.save_storage(key, &[]).map_err(export_error);
        }
        if address == 0 {
            return Err(PyValueError::new_err("a storage with no memory"));
        }
        let address = address as *const u8;
        // SAFETY: see above: `nbytes` readable bytes at `address`, kept
        // alive and unchanged by the caller during the call.
        let bytes = unsafe { std::slice::from_raw_parts(address, nbytes) };
        exporter.save_storage(key, bytes).map_err(export_error)
    }

    /// `close()`: checks the dependency graph and writes the package, or
    /// raises `PackagingError` (PyTorch's grouped text) and writes nothing.
    fn close(&mut self) -> PyResult<()> {
        let Some(exporter) = self.inner.take() else {
            return Ok(());
        };
        exporter.close().map(|_| ()).map_err(export_error)
    }

    /// Drops the exporter without writing anything (an exception inside
    /// the `with` block).
    fn discard(&mut self) {
        self.inner = None;
    }

    /// PyTorch's `debug=True`: a `PackagingError` shows each broken
    /// module's dependency path.
    fn enable_debug(&mut self) -> PyResult<()> {
        self.open()?.enable_debug();
        Ok(())
    }

    /// Modules interned so far.
    fn interned_modules(&mut self) -> PyResult<Vec<String>> {
        Ok(self.open()?.interned_modules())
    }

    /// Modules externed so far.
    fn externed_modules(&mut self) -> PyResult<Vec<String>> {
        Ok(self.open()?.externed_modules())
    }

    /// Modules mocked so far.
    fn mocked_modules(&mut self) -> PyResult<Vec<String>> {
        Ok(self.open()?.mocked_modules())
    }

    /// Modules denied so far.
    fn denied_modules(&mut self) -> PyResult<Vec<String>> {
        Ok(self.open()?.denied_modules())
    }

    /// The modules that depend on `module`.
    fn get_rdeps(&mut self, module: &str) -> PyResult<Vec<String>> {
        Ok(self.open()?.get_rdeps(module))
    }

    /// PyTorch's DOT text of the dependency graph.
    fn dependency_graph_string(&mut self) -> PyResult<String> {
        Ok(self.open()?.dependency_graph_string())
    }

    /// PyTorch's DOT text of every path from `src` to `dst`.
    fn all_paths(&mut self, src: &str, dst: &str) -> PyResult<Option<String>> {
        Ok(self.open()?.all_paths(src, dst))
    }

    /// A name unique in this package (`"0"`, `"1"`, ...).
    fn get_unique_id(&mut self) -> PyResult<String> {
        Ok(self.open()?.get_unique_id())
    }
}

/// `exclude=`, `allow_empty=` as [`PatternOptions`].
fn pattern_options(exclude: PatternArg, allow_empty: bool) -> PatternOptions {
    let options = PatternOptions::default().with_exclude(exclude);
    if allow_empty {
        options
    } else {
        options.disallow_empty()
    }
}
