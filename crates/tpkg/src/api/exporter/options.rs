//! The keyword arguments of PyTorch's exporter calls, as option types: the
//! simple calls (`intern(patterns)`, `save_module(name)`, ...) take
//! PyTorch's defaults, the `_with` calls take these.

use tpkg_glob::Patterns;

pub use crate::files::records::SourceKind;

/// PyTorch's `exclude=` and `allow_empty=` keywords of
/// [`intern_with`](super::PackageExporter::intern_with),
/// [`extern_modules_with`](super::PackageExporter::extern_modules_with) and
/// [`mock_with`](super::PackageExporter::mock_with). The default is
/// PyTorch's: nothing excluded, an unmatched pattern allowed.
///
/// ```
/// use tpkg::exporter::{PackageExporter, PatternOptions};
/// use tpkg::pysource::ModuleFinder;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut exporter = PackageExporter::create(dir.path().join("pkg.pt"), ModuleFinder::default())?;
/// // intern("my_model.**", exclude=["my_model.tests.**"], allow_empty=False)
/// exporter.intern_with(
///     "my_model.**",
///     PatternOptions::default()
///         .with_exclude(["my_model.tests.**"])
///         .disallow_empty(),
/// )?;
/// // Nothing matched it, so close fails, with PyTorch's words.
/// let error = exporter.close().unwrap_err();
/// assert!(error.to_string().contains("which was marked as allow_empty=False"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PatternOptions {
    /// Modules matching these are left to later patterns (`exclude=`;
    /// none by default).
    pub exclude: Patterns,
    /// Whether [`close`](super::PackageExporter::close) accepts the pattern
    /// having matched no module (`allow_empty=`; `true` by default).
    pub allow_empty: bool,
}

impl Default for PatternOptions {
    fn default() -> Self {
        PatternOptions {
            exclude: Patterns::none(),
            allow_empty: true,
        }
    }
}

impl PatternOptions {
    /// `exclude=patterns`: a string or a list, as in PyTorch.
    #[must_use]
    pub fn with_exclude(mut self, exclude: impl Into<Patterns>) -> Self {
        self.exclude = exclude.into();
        self
    }

    /// `allow_empty=False`: [`close`](super::PackageExporter::close) fails
    /// with [`ExportError::EmptyMatch`](super::ExportError::EmptyMatch) if
    /// the pattern matched no module.
    #[must_use]
    pub fn disallow_empty(mut self) -> Self {
        self.allow_empty = false;
        self
    }
}

/// PyTorch's `dependencies=` keyword: whether a save also adds the modules
/// the saved code imports (or a pickle's globals come from), through the
/// patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dependencies {
    /// Scan and add them (`dependencies=True`, PyTorch's default).
    #[default]
    Add,
    /// Save only what was asked for (`dependencies=False`).
    Skip,
}

impl Dependencies {
    pub(crate) fn added(self) -> bool {
        self == Dependencies::Add
    }
}

/// PyTorch's `is_package=` and `dependencies=` keywords of
/// [`save_source_string_with`](super::PackageExporter::save_source_string_with).
/// The default is PyTorch's: a plain module (`m.py`), its dependencies
/// added.
///
/// ```
/// use tpkg::exporter::{PackageExporter, SourceKind, SourceOptions};
/// use tpkg::pysource::ModuleFinder;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut exporter = PackageExporter::create(dir.path().join("pkg.pt"), ModuleFinder::default())?;
/// // save_source_string("model", src, is_package=True): model/__init__.py
/// exporter.save_source_string_with(
///     "model",
///     "import os\n",
///     SourceOptions::default().with_kind(SourceKind::Package),
/// )?;
/// assert_eq!(exporter.externed_modules(), ["os"]);
/// exporter.close()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SourceOptions {
    /// A module or a package (`is_package=`; a module by default).
    pub kind: SourceKind,
    /// `dependencies=` (added by default).
    pub dependencies: Dependencies,
}

impl SourceOptions {
    /// `is_package=`: [`SourceKind::Package`] writes `m/__init__.py`.
    #[must_use]
    pub fn with_kind(mut self, kind: SourceKind) -> Self {
        self.kind = kind;
        self
    }

    /// `dependencies=`.
    #[must_use]
    pub fn with_dependencies(mut self, dependencies: Dependencies) -> Self {
        self.dependencies = dependencies;
        self
    }
}
