//! Why exporting failed: [`ExportError`], and [`PackagingError`] with
//! PyTorch's text for a broken dependency graph.

use std::fmt;
use std::path::PathBuf;

use tpkg_archive::ArchiveError;
use tpkg_digraph::ErrorReason;
use tpkg_glob::GlobError;

use super::DISALLOWED_MODULES;

/// A module that makes the package unwritable, with why and how it was
/// reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenModule {
    /// The module (or `<package.resource>` pickle node).
    pub module: String,
    /// PyTorch's `error_context`, when there is one.
    pub context: Option<String>,
    /// The first path in the dependency graph that reaches it, from a module
    /// or pickle the user saved.
    pub path: Vec<String>,
}

/// PyTorch's `PackagingError`: every broken module of the graph, grouped by
/// reason in order of first appearance. `Display` writes PyTorch's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagingError {
    /// `(reason, modules)` groups.
    pub groups: Vec<(ErrorReason, Vec<BrokenModule>)>,
    /// Whether `Display` shows each module's path (PyTorch's `debug=True`).
    pub debug: bool,
}

impl fmt::Display for PackagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        for (reason, modules) in &self.groups {
            writeln!(f, "* {reason}")?;
            for broken in modules {
                writeln!(f, "    {}", broken.module)?;
                if let Some(context) = &broken.context {
                    writeln!(f, "      Context: {context}")?;
                }
                if DISALLOWED_MODULES.contains(&broken.module.as_str()) {
                    let m = &broken.module;
                    writeln!(
                        f,
                        "      Note: While we usually use modules in the python standard library from the local environment, `{m}` has a lot of system level access and therefore can pose a security risk. We heavily recommend removing `{m}` from your packaged code. However, if that is not possible, add it to the extern list by calling PackageExporter.extern(\"`{m}`\")"
                    )?;
                }
                if self.debug {
                    writeln!(
                        f,
                        "      A path to {}: {}",
                        broken.module,
                        broken.path.join(" -> ")
                    )?;
                }
            }
        }
        if !self.debug {
            writeln!(f)?;
            writeln!(
                f,
                "Set debug=True when invoking PackageExporter for a visualization of where broken modules are coming from!"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PackagingError {}

/// Why exporting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Broken modules in the dependency graph, all of them.
    #[error("{0}")]
    Packaging(Box<PackagingError>),
    /// An `allow_empty = false` pattern matched nothing.
    #[error(
        "Exporter did not match any modules to {pattern}, which was marked as allow_empty=False"
    )]
    EmptyMatch {
        /// The pattern, as PyTorch prints it (`GlobGroup(...)`).
        pattern: String,
    },
    /// `save_module` (or a pickle's global) names a module that cannot be
    /// found.
    #[error("No module named '{module}'")]
    ModuleNotFound {
        /// The module.
        module: String,
    },
    /// Only protocols 3 and 4 are allowed, as in PyTorch.
    #[error("torch.package only supports pickle protocols 3 and 4, got {0}")]
    UnsupportedProtocol(u8),
    /// A record name was used twice.
    #[error("Tried to write file '{0}', but it already exists in this archive.")]
    DuplicateRecord(String),
    /// A record name is mangled (a module of a loaded package saved as is).
    #[error(
        "Tried to save a torch.package'd module as '{0}'. Directly saving torch.package'd modules is not allowed."
    )]
    MangledName(String),
    /// A pattern does not parse.
    #[error(transparent)]
    Pattern(#[from] GlobError),
    /// A value graph could not be encoded.
    #[error(transparent)]
    Encode(#[from] tpkg_pickle::EncodeError),
    /// `save_pickle` got a different number of storages and buffers.
    #[error("{storages} storages but {buffers} buffers")]
    StorageMismatch {
        /// Storages registered.
        storages: usize,
        /// Buffers given.
        buffers: usize,
    },
    /// A source file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}
