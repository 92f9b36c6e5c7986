//! `PackageExporter`: PyTorch's exporter, resolving modules statically.
//!
//! PyTorch's exporter imports modules to learn what they are; this one asks
//! a [`ModuleFinder`] (a search path, or an interpreter's `sys.path` read
//! once) and scans sources with [`crate::pysource`]. Everything else follows
//! `torch/package/package_exporter.py`: the first registered pattern that
//! matches decides a module's action, `torch` and the standard library
//! (except `sys` and `io`) are externed implicitly, interned modules are
//! scanned recursively, errors are collected in the dependency graph and
//! reported together by [`PackageExporter::close`], grouped by reason in
//! PyTorch's words.
//!
//! Pickles and resources stream into the archive as they are saved; module
//! sources, mock stubs and `.data/extern_modules` are written at close, in
//! graph order, as PyTorch does. The archive is atomic: nothing appears at
//! the target path unless `close` succeeds.
//!
//! ```
//! use tpkg::exporter::PackageExporter;
//! use tpkg::pysource::ModuleFinder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("helpers.py"), "import json\n")?;
//! let finder = ModuleFinder::new(vec![dir.path().to_owned()], ["sys"]);
//! let mut exporter = PackageExporter::create(dir.path().join("pkg.pt"), finder)?;
//! exporter.intern("helpers", (), false)?;
//! exporter.save_source_string("model", "import os\nimport helpers\n", false, true)?;
//! exporter.save_text("model", "config.json", "{}")?;
//! assert_eq!(exporter.interned_modules(), ["helpers", "model"]);
//! assert_eq!(exporter.externed_modules(), ["json", "os"]); // implicitly
//! exporter.close()?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tpkg_archive::{ArchiveError, AtomicFile, Destination, PackageWriter, WriteOptions};
use tpkg_digraph::{Action, DiGraph, ErrorReason, NodeAttributes};
use tpkg_glob::{GlobError, GlobGroup, Patterns, Separator};
use tpkg_pysource::{Found, ModuleFinder, ScanError, is_stdlib_module};

use crate::api::prefetch::Prefetcher;

pub use crate::files::records::{MOCK_IMPL, MOCK_MODULE_SOURCE, source_record};

/// Modules PyTorch never externs implicitly although they are standard
/// library: they give packaged code system access.
pub const DISALLOWED_MODULES: [&str; 2] = ["sys", "io"];

/// One `intern`/`extern`/`mock`/`deny` registration.
#[derive(Debug, Clone)]
struct PatternRule {
    group: GlobGroup,
    action: Action,
    allow_empty: bool,
    was_matched: bool,
}

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

/// A registered hook's handle, for [`PackageExporter::remove_hook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookHandle(u64);

type Hook = Box<dyn FnMut(&str)>;

/// Writes a torch.package. See the [module docs](self).
pub struct PackageExporter<D: Destination = AtomicFile> {
    writer: PackageWriter<D>,
    finder: Arc<ModuleFinder>,
    prefetch: Option<Prefetcher>,
    patterns: Vec<PatternRule>,
    graph: DiGraph<NodeAttributes>,
    hooks: Vec<(HookHandle, Action, Hook)>,
    next_hook: u64,
    unique_id: u64,
    debug: bool,
    mock_kinds: std::collections::HashMap<String, bool>,
    storages_written: u64,
}

impl<D: Destination> fmt::Debug for PackageExporter<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackageExporter")
            .field("prefix", &self.writer.prefix())
            .field("patterns", &self.patterns)
            .field("modules", &self.graph.len())
            .finish_non_exhaustive()
    }
}

impl PackageExporter<AtomicFile> {
    /// An exporter writing `path` (atomically), resolving modules with
    /// `finder`.
    pub fn create(path: impl AsRef<Path>, finder: ModuleFinder) -> Result<Self, ExportError> {
        Self::create_with(path, finder, WriteOptions::default())
    }

    /// [`create`](Self::create) with archive options (python version,
    /// prefix, serialization id).
    pub fn create_with(
        path: impl AsRef<Path>,
        finder: ModuleFinder,
        options: WriteOptions,
    ) -> Result<Self, ExportError> {
        Ok(Self::with_writer(
            PackageWriter::create(path, options)?,
            finder,
        ))
    }
}

impl<D: Destination> PackageExporter<D> {
    /// An exporter over an open writer.
    pub fn with_writer(writer: PackageWriter<D>, finder: ModuleFinder) -> Self {
        let finder = Arc::new(finder);
        PackageExporter {
            writer,
            prefetch: Prefetcher::start(Arc::clone(&finder)),
            finder,
            patterns: Vec::new(),
            graph: DiGraph::new(),
            hooks: Vec::new(),
            next_hook: 0,
            unique_id: 0,
            debug: false,
            mock_kinds: std::collections::HashMap::new(),
            storages_written: 0,
        }
    }

    /// PyTorch's `debug=True`: errors show the path to each broken module.
    pub fn set_debug(&mut self, debug: bool) {
        self.debug = debug;
    }

    fn add_pattern(
        &mut self,
        action: Action,
        include: Patterns,
        exclude: Patterns,
        allow_empty: bool,
    ) -> Result<(), ExportError> {
        let group = GlobGroup::new(include, exclude, Separator::Dot)?;
        self.patterns.push(PatternRule {
            group,
            action,
            allow_empty,
            was_matched: false,
        });
        Ok(())
    }

    /// `intern(include, exclude=..., allow_empty=...)`: matching modules are
    /// packaged as source, and their dependencies scanned. Patterns are a
    /// string or a list, as in PyTorch; `()` is "none".
    pub fn intern(
        &mut self,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
        allow_empty: bool,
    ) -> Result<(), ExportError> {
        self.add_pattern(Action::Intern, include.into(), exclude.into(), allow_empty)
    }

    /// `extern(...)`: matching modules are imported from the loading
    /// environment (listed in `.data/extern_modules`).
    pub fn extern_modules(
        &mut self,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
        allow_empty: bool,
    ) -> Result<(), ExportError> {
        self.add_pattern(Action::Extern, include.into(), exclude.into(), allow_empty)
    }

    /// `mock(...)`: matching modules are replaced by stubs whose attributes
    /// are `MockedObject`s.
    pub fn mock(
        &mut self,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
        allow_empty: bool,
    ) -> Result<(), ExportError> {
        self.add_pattern(Action::Mock, include.into(), exclude.into(), allow_empty)
    }

    /// `deny(...)`: depending on a matching module is an error.
    pub fn deny(
        &mut self,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
    ) -> Result<(), ExportError> {
        self.add_pattern(Action::Deny, include.into(), exclude.into(), true)
    }

    /// Registers a hook called at close for every module given `action`
    /// (`Extern`, `Mock` or `Intern`), in graph order.
    pub fn register_hook(
        &mut self,
        action: Action,
        hook: impl FnMut(&str) + 'static,
    ) -> HookHandle {
        let handle = HookHandle(self.next_hook);
        self.next_hook += 1;
        self.hooks.push((handle, action, Box::new(hook)));
        handle
    }

    /// Unregisters a hook; `false` if it was already removed.
    pub fn remove_hook(&mut self, handle: HookHandle) -> bool {
        let before = self.hooks.len();
        self.hooks.retain(|(h, _, _)| *h != handle);
        self.hooks.len() != before
    }

    /// Whether the stub of mocked `module` is written as a package
    /// (`m/__init__.py`). By default it is what the module is on the search
    /// path (PyTorch: `hasattr(module, "__path__")`); repackaging keeps what
    /// the input package had.
    pub fn set_mock_kind(&mut self, module: &str, is_package: bool) {
        self.mock_kinds.insert(module.to_owned(), is_package);
    }

    /// `get_unique_id()`: "0", "1", ... per exporter.
    pub fn get_unique_id(&mut self) -> String {
        let id = self.unique_id;
        self.unique_id += 1;
        id.to_string()
    }

    /// `save_source_string(module, src, is_package, dependencies)`.
    pub fn save_source_string(
        &mut self,
        module: &str,
        source: &str,
        is_package: bool,
        dependencies: bool,
    ) -> Result<(), ExportError> {
        self.graph.add_node(
            module,
            NodeAttributes {
                source: Some(source.to_owned()),
                is_package: Some(is_package),
                provided: Some(true),
                action: Some(Action::Intern),
                ..Default::default()
            },
        );
        if dependencies {
            self.add_dependencies_of(module, source, is_package)?;
        }
        Ok(())
    }

    /// `save_source_file(module, path)`: a file is that module (a package
    /// if it is named `__init__.py`); a folder gives every `**/*.py` under
    /// it, all registered before any is scanned.
    pub fn save_source_file(
        &mut self,
        module: &str,
        path: &Path,
        dependencies: bool,
    ) -> Result<(), ExportError> {
        if !path.is_dir() {
            let is_package = path.file_name().is_some_and(|n| n == "__init__.py");
            let source = read_source(path)?;
            return self.save_source_string(module, &source, is_package, dependencies);
        }
        let module_path = module.replace('.', "/");
        let mut to_save = Vec::new();
        let mut files = Vec::new();
        collect_py_files(path, &mut files).map_err(|source| ExportError::Read {
            path: path.to_owned(),
            source,
        })?;
        for file in files {
            let Ok(relative) = file.strip_prefix(path) else {
                continue;
            };
            let relative: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let archive_name = format!("{module_path}/{}", relative.join("/"));
            let (name, is_package) = match archive_name.strip_suffix("/__init__.py") {
                Some(package) => (package.replace('/', "."), true),
                None => (
                    archive_name
                        .strip_suffix(".py")
                        .unwrap_or(&archive_name)
                        .replace('/', "."),
                    false,
                ),
            };
            to_save.push((name, read_source(&file)?, is_package));
        }
        for (name, source, is_package) in to_save {
            self.save_source_string(&name, &source, is_package, dependencies)?;
        }
        Ok(())
    }

    /// `save_module(name)`: interns the module's source, found on the
    /// search path, whatever the patterns say.
    pub fn save_module(&mut self, module: &str, dependencies: bool) -> Result<(), ExportError> {
        if self.finder.find(module).is_none() {
            return Err(ExportError::ModuleNotFound {
                module: module.to_owned(),
            });
        }
        self.intern_module(module, dependencies)
    }

    /// `add_dependency(name)`: applies the patterns to a module.
    pub fn add_dependency(&mut self, module: &str, dependencies: bool) -> Result<(), ExportError> {
        if self
            .graph
            .node(module)
            .is_some_and(|n| n.provided == Some(true))
        {
            return Ok(());
        }
        let provided = |action| NodeAttributes {
            action: Some(action),
            provided: Some(true),
            ..Default::default()
        };
        // A loaded package's importer is a pseudo-module, never re-exported.
        if module == "torch_package_importer" {
            self.graph.add_node(module, provided(Action::Skip));
            return Ok(());
        }
        if module == "_mock" {
            self.graph
                .add_node(module, provided(Action::RepackagedMockModule));
            return Ok(());
        }
        if self.can_implicitly_extern(module) {
            self.graph.add_node(module, provided(Action::Extern));
            return Ok(());
        }
        let Some(index) = self.patterns.iter().position(|p| p.group.matches(module)) else {
            self.graph.add_node(
                module,
                NodeAttributes {
                    error: Some(ErrorReason::NoAction),
                    ..Default::default()
                },
            );
            return Ok(());
        };
        self.patterns[index].was_matched = true;
        let action = self.patterns[index].action;
        self.graph.add_node(module, provided(action));
        match action {
            Action::Deny => self.graph.add_node(
                module,
                NodeAttributes {
                    error: Some(ErrorReason::Denied),
                    ..Default::default()
                },
            ),
            Action::Intern => self.intern_module(module, dependencies)?,
            _ => {}
        }
        Ok(())
    }

    fn can_implicitly_extern(&self, module: &str) -> bool {
        let top = module.split('.').next().unwrap_or(module);
        top == "torch"
            || (!DISALLOWED_MODULES.contains(&top)
                && is_stdlib_module(top, self.finder.python_version()))
    }

    fn intern_module(&mut self, module: &str, dependencies: bool) -> Result<(), ExportError> {
        let module = tpkg_mangling::demangle(module).to_owned();
        let broken = |reason, is_package, context: Option<String>| NodeAttributes {
            action: Some(Action::Intern),
            is_package: Some(is_package),
            error: Some(reason),
            error_context: context,
            provided: Some(true),
            ..Default::default()
        };
        let (file, is_package) = match self.finder.find(&module) {
            Some(Found::Source { file, is_package }) => (file, is_package),
            Some(Found::Extension { .. }) => {
                self.graph
                    .add_node(&module, broken(ErrorReason::IsExtensionModule, false, None));
                return Ok(());
            }
            Some(Found::Namespace { .. }) => {
                self.graph
                    .add_node(&module, broken(ErrorReason::NoDunderFile, true, None));
                return Ok(());
            }
            Some(Found::Builtin) => {
                self.graph
                    .add_node(&module, broken(ErrorReason::NoDunderFile, false, None));
                return Ok(());
            }
            Some(Found::Stdlib) => {
                let context = "a standard-library module known by name only (no interpreter given: pass --python)";
                self.graph.add_node(
                    &module,
                    broken(
                        ErrorReason::SourceFileNotFound,
                        false,
                        Some(context.to_owned()),
                    ),
                );
                return Ok(());
            }
            None => return Err(ExportError::ModuleNotFound { module }),
        };
        // A worker may have read and scanned it already.
        let prefetched = self.prefetch.as_ref().and_then(|p| p.take(&module));
        let (source, scanned_deps) = match prefetched {
            Some(scanned) => (scanned.source, scanned.deps),
            None => (read_source(&file).map_err(|e| e.to_string()), None),
        };
        let source = match source {
            Ok(source) => source,
            Err(_) => {
                self.graph.add_node(
                    &module,
                    broken(
                        ErrorReason::SourceFileNotFound,
                        is_package,
                        Some(format!("filename: {}", file.display())),
                    ),
                );
                return Ok(());
            }
        };
        // Scanning reads the source only; then the graph owns it.
        let deps = dependencies.then(|| match scanned_deps {
            Some(deps) => deps,
            None => self
                .finder
                .dependencies(&source, &module, is_package)
                .map(|d| d.modules),
        });
        self.graph.add_node(
            &module,
            NodeAttributes {
                action: Some(Action::Intern),
                is_package: Some(is_package),
                source: Some(source),
                provided: Some(true),
                ..Default::default()
            },
        );
        if let Some(deps) = deps {
            self.apply_dependencies(&module, deps)?;
        }
        Ok(())
    }

    /// PyTorch's `_get_dependencies` plus the edges and `add_dependency`
    /// calls that follow it; a scan failure is `DEPENDENCY_RESOLUTION_FAILED`.
    fn add_dependencies_of(
        &mut self,
        module: &str,
        source: &str,
        is_package: bool,
    ) -> Result<(), ExportError> {
        let deps = self
            .finder
            .dependencies(source, module, is_package)
            .map(|d| d.modules);
        self.apply_dependencies(module, deps)
    }

    fn apply_dependencies(
        &mut self,
        module: &str,
        deps: Result<Vec<String>, ScanError>,
    ) -> Result<(), ExportError> {
        let deps = match deps {
            Ok(deps) => deps,
            Err(error) => {
                // PyTorch's context is the exception's text; for the error
                // both raise, use its exact words.
                let context = match error {
                    ScanError::BeyondTopLevel { .. } => {
                        "attempted relative import beyond top-level package".to_owned()
                    }
                    other => other.to_string(),
                };
                self.graph.add_node(
                    module,
                    NodeAttributes {
                        error: Some(ErrorReason::DependencyResolutionFailed),
                        error_context: Some(context),
                        ..Default::default()
                    },
                );
                return Ok(());
            }
        };
        self.prefetch_interned(&deps);
        for dep in deps {
            self.graph.add_edge(module, &dep);
            self.add_dependency(&dep, true)?;
        }
        Ok(())
    }

    /// Hands the modules of `deps` that `add_dependency` will intern to the
    /// prefetch workers (the walk takes their scans when it gets there).
    fn prefetch_interned(&self, deps: &[String]) {
        let Some(prefetch) = &self.prefetch else {
            return;
        };
        for dep in deps {
            let provided = self
                .graph
                .node(dep)
                .is_some_and(|n| n.provided == Some(true));
            if provided
                || dep == "torch_package_importer"
                || dep == "_mock"
                || self.can_implicitly_extern(dep)
            {
                continue;
            }
            let interned = self
                .patterns
                .iter()
                .find(|p| p.group.matches(dep))
                .is_some_and(|p| p.action == Action::Intern);
            if !interned {
                continue;
            }
            let module = tpkg_mangling::demangle(dep);
            if let Some(Found::Source { file, is_package }) = self.finder.find(module) {
                prefetch.submit(module, file, is_package);
            }
        }
    }

    /// `save_pickle` for an already encoded pickle: writes
    /// `<package>/<resource>` and adds the modules its globals come from
    /// (PyTorch's opcode scan; a global from a mocked module is
    /// `MOCKED_BUT_STILL_USED`). Storages go in with
    /// [`save_storage`](Self::save_storage).
    pub fn save_pickle_bytes(
        &mut self,
        package: &str,
        resource: &str,
        pickle: &[u8],
        dependencies: bool,
    ) -> Result<(), ExportError> {
        let protocol = match pickle {
            [0x80, protocol, ..] => *protocol,
            _ => 0,
        };
        if !matches!(protocol, 3 | 4) {
            return Err(ExportError::UnsupportedProtocol(protocol));
        }
        let filename = record_name(package, resource);
        let node = format!("<{package}.{resource}>");
        self.graph.add_node(
            &node,
            NodeAttributes {
                action: Some(Action::Intern),
                provided: Some(true),
                is_pickle: Some(true),
                ..Default::default()
            },
        );
        if dependencies {
            let mut modules: Vec<String> = Vec::new();
            let mut mocked: Vec<(String, Vec<String>)> = Vec::new();
            for global in tpkg_pickle::scan_globals(pickle) {
                if !modules.contains(&global.module) {
                    modules.push(global.module.clone());
                }
                if self.can_implicitly_extern(&global.module) {
                    continue;
                }
                let first = self
                    .patterns
                    .iter()
                    .find(|p| p.group.matches(&global.module));
                if first.is_some_and(|p| p.action == Action::Mock) {
                    match mocked.iter_mut().find(|(m, _)| *m == global.module) {
                        Some((_, fields)) => fields.push(global.name.clone()),
                        None => mocked.push((global.module.clone(), vec![global.name.clone()])),
                    }
                }
            }
            for module in modules {
                self.graph.add_edge(&node, &module);
                match mocked.iter().find(|(m, _)| *m == module) {
                    Some((_, fields)) => {
                        let fields: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
                        self.graph.add_node(
                            &module,
                            NodeAttributes {
                                action: Some(Action::Mock),
                                error: Some(ErrorReason::MockedButStillUsed),
                                error_context: Some(format!(
                                    "Object(s) '[{}]' from module `{module}` was mocked out during packaging but is being used in resource - `{resource}` in package `{package}`. ",
                                    fields.join(", ")
                                )),
                                provided: Some(true),
                                ..Default::default()
                            },
                        );
                    }
                    None => self.add_dependency(&module, true)?,
                }
            }
        }
        self.write(&filename, pickle)
    }

    /// `save_pickle(package, resource, obj, pickle_protocol=...)` for a
    /// value graph: `graph` is encoded at `protocol` (3, PyTorch's default,
    /// or 4), after the storages its tensors view (`storages[i]` holds
    /// `bytes[i]`; build both with a [`TensorEncoder`], one per pickle).
    /// The exporter numbers storages across the whole package, as
    /// PyTorch's storage context does: an encoder's keys `0, 1, ...` become
    /// the next free keys, so pickles never share a record by accident.
    /// Dependencies come from the pickle's globals, as for
    /// [`save_pickle_bytes`](Self::save_pickle_bytes).
    ///
    /// [`TensorEncoder`]: crate::tensors::TensorEncoder
    pub fn save_pickle(
        &mut self,
        package: &str,
        resource: &str,
        graph: &tpkg_pickle::ValueGraph,
        storages: &[crate::tensors::StorageRef],
        bytes: &[impl AsRef<[u8]>],
        protocol: u8,
    ) -> Result<(), ExportError> {
        if !matches!(protocol, 3 | 4) {
            return Err(ExportError::UnsupportedProtocol(protocol));
        }
        if storages.len() != bytes.len() {
            return Err(ExportError::StorageMismatch {
                storages: storages.len(),
                buffers: bytes.len(),
            });
        }
        let base = self.storages_written;
        let mut graph = graph.clone();
        renumber_storages(&mut graph, base);
        let pickle = tpkg_pickle::encode(&graph, protocol)?;
        for (storage, data) in storages.iter().zip(bytes) {
            let key = renumbered(&storage.key, base);
            self.write(&crate::tensors::storage_record(&key), data.as_ref())?;
        }
        self.storages_written += storages.len() as u64;
        self.save_pickle_bytes(package, resource, &pickle, true)
    }

    /// Writes a record as is, under its full name (repackaging copies
    /// TorchScript code and other `.data/` records this way).
    pub fn save_raw_record(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        self.write(name, bytes)
    }

    /// [`save_raw_record`](Self::save_raw_record) from a reader of `len`
    /// bytes, streamed (large storages are never held in memory).
    pub fn save_raw_record_from(
        &mut self,
        name: &str,
        reader: impl std::io::Read,
        len: u64,
    ) -> Result<(), ExportError> {
        check_new_record(&self.writer, name)?;
        self.writer.write_record_from(name, reader, len)?;
        Ok(())
    }

    /// Writes a tensor storage as `.data/<key>.storage`.
    pub fn save_storage(&mut self, key: &str, bytes: &[u8]) -> Result<(), ExportError> {
        self.write(&crate::tensors::storage_record(key), bytes)
    }

    /// `save_text(package, resource, text)`.
    pub fn save_text(
        &mut self,
        package: &str,
        resource: &str,
        text: &str,
    ) -> Result<(), ExportError> {
        self.save_binary(package, resource, text.as_bytes())
    }

    /// `save_binary(package, resource, bytes)`.
    pub fn save_binary(
        &mut self,
        package: &str,
        resource: &str,
        bytes: &[u8],
    ) -> Result<(), ExportError> {
        self.write(&record_name(package, resource), bytes)
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        write_new_record(&mut self.writer, name, bytes)
    }

    /// The dependency graph so far.
    pub fn dependency_graph(&self) -> &DiGraph<NodeAttributes> {
        &self.graph
    }

    /// `dependency_graph_string()`: the graph as DOT.
    pub fn dependency_graph_string(&self) -> String {
        self.graph.to_dot()
    }

    /// `all_paths(src, dst)`: the subgraph of every path, as DOT.
    pub fn all_paths(&self, src: &str, dst: &str) -> Option<String> {
        self.graph.all_paths(src, dst).ok()
    }

    fn modules_with(&self, action: Action) -> Vec<String> {
        let mut out: Vec<String> = self
            .graph
            .nodes()
            .filter(|(_, a)| a.action == Some(action) && a.is_pickle != Some(true))
            .map(|(name, _)| name.to_owned())
            .collect();
        out.sort();
        out
    }

    /// `externed_modules()`, sorted.
    pub fn externed_modules(&self) -> Vec<String> {
        self.modules_with(Action::Extern)
    }

    /// `interned_modules()`, sorted (pickle nodes excluded).
    pub fn interned_modules(&self) -> Vec<String> {
        self.modules_with(Action::Intern)
    }

    /// `mocked_modules()`, sorted.
    pub fn mocked_modules(&self) -> Vec<String> {
        self.modules_with(Action::Mock)
    }

    /// `denied_modules()`, sorted.
    pub fn denied_modules(&self) -> Vec<String> {
        self.modules_with(Action::Deny)
    }

    /// `get_rdeps(module)`: direct dependents, in insertion order.
    pub fn get_rdeps(&self, module: &str) -> Vec<String> {
        self.graph
            .predecessors(module)
            .map(|p| p.map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The errors the graph holds now, as `close` would report them.
    pub fn packaging_error(&self) -> Option<PackagingError> {
        let mut groups: Vec<(ErrorReason, Vec<BrokenModule>)> = Vec::new();
        for (name, attributes) in self.graph.nodes() {
            let Some(reason) = attributes.error else {
                continue;
            };
            let broken = BrokenModule {
                module: name.to_owned(),
                context: attributes.error_context.clone(),
                path: self
                    .graph
                    .first_path(name)
                    .map(|p| p.into_iter().map(str::to_owned).collect())
                    .unwrap_or_default(),
            };
            match groups.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, modules)) => modules.push(broken),
                None => groups.push((reason, vec![broken])),
            }
        }
        (!groups.is_empty()).then_some(PackagingError {
            groups,
            debug: self.debug,
        })
    }

    /// Checks the graph, writes sources, mocks and the extern list, and
    /// commits the archive. On error nothing is written at the target.
    pub fn close(self) -> Result<D::Output, ExportError> {
        if let Some(error) = self.packaging_error() {
            return Err(ExportError::Packaging(Box::new(error)));
        }
        if let Some(rule) = self
            .patterns
            .iter()
            .find(|p| !p.allow_empty && !p.was_matched)
        {
            return Err(ExportError::EmptyMatch {
                pattern: rule.group.to_string(),
            });
        }
        // The graph lends the sources straight to the writer: nothing of it
        // is copied.
        let PackageExporter {
            mut writer,
            finder,
            graph,
            mut hooks,
            mock_kinds,
            ..
        } = self;
        let mut externs: Vec<&str> = Vec::new();
        let mut sources: Vec<(String, &str)> = Vec::new();
        let mut mock_file = false;
        for (module, attributes) in graph.nodes() {
            let Some(action) = attributes.action else {
                continue;
            };
            for (_, hook_action, hook) in &mut hooks {
                if *hook_action == action {
                    hook(module);
                }
            }
            match action {
                Action::Extern => externs.push(module),
                Action::Mock => {
                    if !mock_file {
                        sources.push((source_record("_mock", false), MOCK_MODULE_SOURCE));
                        mock_file = true;
                    }
                    let is_package = match mock_kinds.get(module) {
                        Some(&is_package) => is_package,
                        None => matches!(
                            finder.find(module),
                            Some(
                                Found::Source {
                                    is_package: true,
                                    ..
                                } | Found::Namespace { .. }
                            )
                        ),
                    };
                    sources.push((source_record(module, is_package), MOCK_IMPL));
                }
                Action::Intern if attributes.is_pickle != Some(true) => {
                    let is_package = attributes.is_package.unwrap_or(false);
                    let source = attributes.source.as_deref().unwrap_or_default();
                    sources.push((source_record(module, is_package), source));
                }
                Action::RepackagedMockModule if !mock_file => {
                    sources.push((source_record("_mock", false), MOCK_MODULE_SOURCE));
                    mock_file = true;
                }
                _ => {}
            }
        }
        let mut written: HashSet<&str> = HashSet::new();
        for (name, source) in &sources {
            if written.insert(name) {
                write_new_record(&mut writer, name, source.as_bytes())?;
            }
        }
        writer.write_extern_modules(&externs)?;
        Ok(writer.finish()?)
    }
}

/// Refuses a record name already written, or a mangled one (a module of a
/// loaded package saved under its `<torch_package_N>` name).
fn check_new_record<D: Destination>(
    writer: &PackageWriter<D>,
    name: &str,
) -> Result<(), ExportError> {
    if writer.has_record(name) {
        return Err(ExportError::DuplicateRecord(name.to_owned()));
    }
    if tpkg_mangling::is_mangled(name) {
        return Err(ExportError::MangledName(name.to_owned()));
    }
    Ok(())
}

fn write_new_record<D: Destination>(
    writer: &mut PackageWriter<D>,
    name: &str,
    bytes: &[u8],
) -> Result<(), ExportError> {
    check_new_record(writer, name)?;
    writer.write_record(name, bytes)?;
    Ok(())
}

/// A numeric storage key moved up by `base` (other keys are kept).
fn renumbered(key: &str, base: u64) -> String {
    match key.parse::<u64>() {
        Ok(n) => (n + base).to_string(),
        Err(_) => key.to_owned(),
    }
}

/// Moves every `("storage", type, key, location, numel)` persistent id's
/// numeric key up by `base`. A key node shared by several tensors of one
/// storage is moved once.
fn renumber_storages(graph: &mut tpkg_pickle::ValueGraph, base: u64) {
    use tpkg_pickle::{PyStr, Value};
    if base == 0 {
        return;
    }
    for key in crate::tensors::storage_key_nodes(graph) {
        // PyTorch writes integer keys; strings are accepted too.
        let new = match graph.get(key) {
            Value::Int(n) => Value::Int(n.saturating_add(i64::try_from(base).unwrap_or(i64::MAX))),
            Value::Str(text) => match text.as_str() {
                Some(text) => Value::Str(PyStr::from(renumbered(text, base).as_str())),
                None => continue,
            },
            _ => continue,
        };
        *graph.get_mut(key) = new;
    }
}

/// `package/resource` with dots of the package as folders.
fn record_name(package: &str, resource: &str) -> String {
    let resource = resource.trim_start_matches('/');
    if package.is_empty() {
        return resource.to_owned();
    }
    format!("{}/{resource}", package.replace('.', "/"))
}

/// A module's source as Python's `linecache` reads it: UTF-8 (a BOM
/// dropped), universal newlines.
pub(crate) fn read_source(path: &Path) -> Result<String, ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let text = String::from_utf8_lossy(bytes);
    Ok(if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.into_owned()
    })
}

fn collect_py_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_py_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! PyTorch's `test_dependency_hooks.py`, on in-memory packages.
    use std::cell::RefCell;
    use std::rc::Rc;

    use tpkg_archive::InMemory;

    use super::*;

    fn exporter() -> PackageExporter<InMemory> {
        let writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
        let finder = ModuleFinder::new(Vec::new(), ["sys"]).with_known_modules([
            "package_a",
            "package_a.subpackage",
            "module_a",
        ]);
        PackageExporter::with_writer(writer, finder)
    }

    fn recorder() -> (Rc<RefCell<Vec<String>>>, impl FnMut(&str) + 'static) {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&seen);
        (seen, move |m: &str| sink.borrow_mut().push(m.to_owned()))
    }

    #[test]
    fn single_hook_sees_only_modules_reached() {
        let (seen, hook) = recorder();
        let mut e = exporter();
        e.extern_modules(vec!["package_a.subpackage", "module_a"], (), true)
            .unwrap();
        e.register_hook(Action::Extern, hook);
        e.save_source_string("foo", "import module_a", false, true)
            .unwrap();
        e.close().unwrap();
        assert_eq!(*seen.borrow(), ["module_a"]);
    }

    #[test]
    fn multiple_hooks_run_in_registration_order() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut e = exporter();
        e.extern_modules(vec!["package_a.subpackage", "module_a"], (), true)
            .unwrap();
        for tag in ["first", "second"] {
            let order = Rc::clone(&order);
            e.register_hook(Action::Extern, move |m| {
                order.borrow_mut().push(format!("{tag}:{m}"))
            });
        }
        e.save_source_string("foo", "import module_a", false, true)
            .unwrap();
        e.close().unwrap();
        assert_eq!(*order.borrow(), ["first:module_a", "second:module_a"]);
    }

    #[test]
    fn removed_hooks_do_not_run() {
        let (seen, hook) = recorder();
        let (kept, kept_hook) = recorder();
        let mut e = exporter();
        e.extern_modules(vec!["package_a.subpackage", "module_a"], (), true)
            .unwrap();
        let handle = e.register_hook(Action::Extern, hook);
        e.register_hook(Action::Extern, kept_hook);
        assert!(e.remove_hook(handle));
        assert!(!e.remove_hook(handle));
        e.save_source_string("foo", "import module_a", false, true)
            .unwrap();
        e.close().unwrap();
        assert!(seen.borrow().is_empty());
        assert_eq!(*kept.borrow(), ["module_a"]);
    }

    #[test]
    fn extern_and_mock_hooks_are_independent() {
        let (externs, extern_hook) = recorder();
        let (mocks, mock_hook) = recorder();
        let (interns, intern_hook) = recorder();
        let mut e = exporter();
        e.extern_modules("module_a", (), true).unwrap();
        e.mock("package_a", (), true).unwrap();
        e.register_hook(Action::Extern, extern_hook);
        e.register_hook(Action::Mock, mock_hook);
        e.register_hook(Action::Intern, intern_hook);
        e.save_source_string(
            "foo",
            "import module_a\nimport package_a\nimport os\n",
            false,
            true,
        )
        .unwrap();
        e.close().unwrap();
        // Implicit externs fire extern hooks too; save_source_string interns.
        assert_eq!(*externs.borrow(), ["module_a", "os"]);
        assert_eq!(*mocks.borrow(), ["package_a"]);
        assert_eq!(*interns.borrow(), ["foo"]);
    }

    #[test]
    fn unsupported_protocols_and_duplicate_records_are_refused() {
        let mut e = exporter();
        assert_eq!(
            e.save_pickle_bytes("a", "b.pkl", b"\x80\x02N.", true)
                .unwrap_err()
                .to_string(),
            "torch.package only supports pickle protocols 3 and 4, got 2"
        );
        e.save_text("a", "x.txt", "1").unwrap();
        assert!(matches!(
            e.save_text("a", "x.txt", "2"),
            Err(ExportError::DuplicateRecord(_))
        ));
        assert!(matches!(
            e.save_text("<torch_package_0>.a", "y.txt", "2"),
            Err(ExportError::MangledName(_))
        ));
    }
}
