//! `PackageImporter`: reads what PyTorch's importer reads, runs nothing.
//!
//! PyTorch's importer executes a package's modules and unpickles objects by
//! importing their classes. This one opens the same archives (zip or
//! directory form) and hands out data: pickles as value graphs with their
//! tensors ([`PackageImporter::load_pickle`]), resources, the sources of
//! interned modules, the extern and mocked module lists, and the package's
//! mangle prefix (`<torch_package_N>`), unique per importer as in PyTorch.
//!
//! ```
//! use tpkg::exporter::PackageExporter;
//! use tpkg::importer::PackageImporter;
//! use tpkg::pysource::ModuleFinder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("pkg.pt");
//! let mut exporter = PackageExporter::create(&path, ModuleFinder::default())?;
//! exporter.save_source_string("model", "import os\n")?;
//! exporter.save_text("res", "notes.txt", "hi")?;
//! exporter.close()?;
//!
//! let importer = PackageImporter::open(&path)?;
//! assert_eq!(importer.load_text("res", "notes.txt")?, "hi");
//! assert!(importer.load_text("model", "notes.txt").is_err()); // a module, not a package
//! assert_eq!(importer.get_source("model")?, "import os\n");
//! assert_eq!(importer.extern_modules(), ["os"]);
//! assert!(importer.mangle_parent().starts_with("<torch_package_"));
//! # Ok(()) }
//! ```

use std::path::Path;

use tpkg_archive::{ArchiveError, PackageMetadata, PackageReader};
use tpkg_glob::{GlobError, Patterns};
use tpkg_mangling::Mangler;

use crate::files::records::MOCK_IMPL;

use crate::api::file_structure::{Directory, FileStructureError};
pub use crate::files::records::{SourceKind, module_of_record};
use crate::tensors::{LoadTensorsError, PackageTensors};

/// Why a read from a package failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The archive or a record could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A pickle or its tensors could not be loaded.
    #[error(transparent)]
    Pickle(#[from] LoadTensorsError),
    /// `package` names a module, not a package (PyTorch's TypeError).
    #[error("'{0}' is not a package")]
    NotAPackage(String),
    /// No interned source for this module.
    #[error("No module named '{module}' in self-contained archive '{archive}'")]
    NoSource {
        /// The module.
        module: String,
        /// The package.
        archive: String,
    },
    /// A text resource is not UTF-8.
    #[error("{archive}: record {record:?} is not UTF-8 text")]
    NotText {
        /// The package.
        archive: String,
        /// The record.
        record: String,
    },
    /// A `file_structure` pattern does not parse.
    #[error(transparent)]
    Pattern(#[from] GlobError),
    /// `file_structure` failed.
    #[error(transparent)]
    FileStructure(#[from] FileStructureError),
}

/// An open package. See the [module docs](self).
#[derive(Debug)]
pub struct PackageImporter {
    reader: PackageReader,
    metadata: PackageMetadata,
    mangler: Mangler,
}

impl PackageImporter {
    /// Opens a package file (zip) or folder (PyTorch's directory form).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ImportError> {
        Self::from_reader(PackageReader::open(path)?)
    }

    /// Wraps an open reader.
    pub fn from_reader(reader: PackageReader) -> Result<Self, ImportError> {
        let metadata = PackageMetadata::read(&reader)?;
        Ok(PackageImporter {
            reader,
            metadata,
            mangler: Mangler::new(),
        })
    }

    /// The underlying archive.
    pub fn reader(&self) -> &PackageReader {
        &self.reader
    }

    /// This importer's mangle parent, `<torch_package_N>`: what PyTorch
    /// prefixes the package's module names with when it loads them.
    pub fn mangle_parent(&self) -> &str {
        self.mangler.parent_name()
    }

    /// The mangler (to mangle and demangle names as this importer would).
    pub fn mangler(&self) -> &Mangler {
        &self.mangler
    }

    /// `python_version()`: the writer's Python, stripped; `None` if absent.
    pub fn python_version(&self) -> Option<&str> {
        self.metadata.python_version.as_deref().map(str::trim)
    }

    /// The modules a load imports from the host (`.data/extern_modules`).
    pub fn extern_modules(&self) -> Vec<String> {
        self.metadata
            .extern_modules
            .iter()
            .flatten()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect()
    }

    /// Every module with source in the package (mock stubs included), in
    /// record order: `a/b.py` is `a.b`, `a/__init__.py` is `a`.
    pub fn interned_modules(&self) -> Vec<String> {
        self.reader
            .records()
            .iter()
            .filter_map(|r| module_of_record(&r.name))
            .filter(|m| m != "_mock")
            .collect()
    }

    /// Modules replaced by `mock` stubs when the package was written.
    pub fn mocked_modules(&self) -> Vec<String> {
        self.interned_modules()
            .into_iter()
            .filter(|m| {
                self.source_record(m)
                    .and_then(|record| self.reader.read(&record).ok())
                    .is_some_and(|bytes| bytes.as_ref() == MOCK_IMPL.as_bytes())
            })
            .collect()
    }

    fn source_record(&self, module: &str) -> Option<String> {
        let path = module.replace('.', "/");
        [format!("{path}.py"), format!("{path}/__init__.py")]
            .into_iter()
            .find(|record| self.reader.has_record(record))
    }

    /// `get_source(module)`: the interned source (a mangled name of this
    /// package is accepted), and whether the module is a package.
    pub fn get_source_with_kind(&self, module: &str) -> Result<(String, SourceKind), ImportError> {
        let module = self.mangler.demangle(module);
        let record = self
            .source_record(module)
            .ok_or_else(|| ImportError::NoSource {
                module: module.to_owned(),
                archive: self.reader.label().to_owned(),
            })?;
        let kind = SourceKind::of(record.ends_with("/__init__.py"));
        Ok((self.text(&record)?, kind))
    }

    /// `get_source(module)`.
    pub fn get_source(&self, module: &str) -> Result<String, ImportError> {
        Ok(self.get_source_with_kind(module)?.0)
    }

    /// The record of `package`/`resource`, checking that `package` is a
    /// package (a folder of the archive), not a module.
    fn resource_record(&self, package: &str, resource: &str) -> Result<String, ImportError> {
        let path = package.replace('.', "/");
        if self.reader.has_record(&format!("{path}.py")) {
            return Err(ImportError::NotAPackage(package.to_owned()));
        }
        let resource = resource.trim_start_matches('/');
        Ok(format!("{path}/{resource}"))
    }

    /// `load_binary(package, resource)`.
    pub fn load_binary(&self, package: &str, resource: &str) -> Result<Vec<u8>, ImportError> {
        let record = self.resource_record(package, resource)?;
        Ok(self.reader.read(&record)?.into_owned())
    }

    /// `load_text(package, resource)` (UTF-8, strict).
    pub fn load_text(&self, package: &str, resource: &str) -> Result<String, ImportError> {
        let record = self.resource_record(package, resource)?;
        self.text(&record)
    }

    fn text(&self, record: &str) -> Result<String, ImportError> {
        String::from_utf8(self.reader.read(record)?.into_owned()).map_err(|_| {
            ImportError::NotText {
                archive: self.reader.label().to_owned(),
                record: record.to_owned(),
            }
        })
    }

    /// `load_pickle(package, resource)`: the pickle as a value graph (no
    /// class is imported, nothing runs) with every tensor checked against
    /// its storage, storages borrowed from the memory-mapped archive.
    pub fn load_pickle(
        &self,
        package: &str,
        resource: &str,
    ) -> Result<PackageTensors<'_>, ImportError> {
        let record = self.resource_record(package, resource)?;
        Ok(PackageTensors::load(&self.reader, &record)?)
    }

    /// `file_structure(include=..., exclude=...)`, `/`-separated patterns;
    /// the top line shows the package's label.
    pub fn file_structure(
        &self,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
    ) -> Result<Directory, ImportError> {
        Ok(Directory::of_package(
            &self.reader,
            self.reader.label(),
            include,
            exclude,
        )?)
    }
}
