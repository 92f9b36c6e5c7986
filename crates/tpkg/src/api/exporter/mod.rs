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
//! PyTorch's keyword arguments have their defaults in the simple calls
//! (`intern(patterns)`, `save_module(name)`, ...); the `_with` calls take
//! them as [`PatternOptions`], [`SourceOptions`] and [`Dependencies`].
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
//! exporter.intern("helpers")?;
//! exporter.save_source_string("model", "import os\nimport helpers\n")?;
//! exporter.save_text("model", "config.json", "{}")?;
//! assert_eq!(exporter.interned_modules(), ["helpers", "model"]);
//! assert_eq!(exporter.externed_modules(), ["json", "os"]); // implicitly
//! exporter.close()?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tpkg_archive::{AtomicFile, Destination, PackageWriter, WriteOptions};
use tpkg_digraph::{Action, DiGraph, ErrorReason, NodeAttributes};
use tpkg_glob::{GlobGroup, Patterns, Separator};
use tpkg_pysource::{Found, ModuleFinder};

use crate::api::prefetch::Prefetcher;

pub use crate::files::records::{MOCK_IMPL, MOCK_MODULE_SOURCE, source_record};

mod error;
mod options;
mod records;
mod resolve;
mod save;
mod storages;
#[cfg(test)]
mod tests;

pub use error::{BrokenModule, ExportError, PackagingError};
pub use options::{Dependencies, PatternOptions, SourceKind, SourceOptions};
pub(crate) use records::read_source;
use records::write_new_record;

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
    mock_kinds: std::collections::HashMap<String, SourceKind>,
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

    /// PyTorch's `debug=True`: errors show the path to each broken module
    /// (off by default).
    pub fn enable_debug(&mut self) {
        self.debug = true;
    }

    fn add_pattern(
        &mut self,
        action: Action,
        include: Patterns,
        options: PatternOptions,
    ) -> Result<(), ExportError> {
        let group = GlobGroup::new(include, options.exclude, Separator::Dot)?;
        self.patterns.push(PatternRule {
            group,
            action,
            allow_empty: options.allow_empty,
            was_matched: false,
        });
        Ok(())
    }

    /// `intern(include)`: matching modules are packaged as source, and
    /// their dependencies added. `include` is a pattern or a list of them,
    /// as in PyTorch; nothing is excluded and the pattern may match nothing
    /// (PyTorch's defaults; see [`intern_with`](Self::intern_with)).
    pub fn intern(&mut self, include: impl Into<Patterns>) -> Result<(), ExportError> {
        self.intern_with(include, PatternOptions::default())
    }

    /// `intern(include, exclude=..., allow_empty=...)`.
    pub fn intern_with(
        &mut self,
        include: impl Into<Patterns>,
        options: PatternOptions,
    ) -> Result<(), ExportError> {
        self.add_pattern(Action::Intern, include.into(), options)
    }

    /// `extern(include)`: matching modules are imported from the loading
    /// environment (listed in `.data/extern_modules`). PyTorch's defaults,
    /// as for [`intern`](Self::intern).
    pub fn extern_modules(&mut self, include: impl Into<Patterns>) -> Result<(), ExportError> {
        self.extern_modules_with(include, PatternOptions::default())
    }

    /// `extern(include, exclude=..., allow_empty=...)`.
    pub fn extern_modules_with(
        &mut self,
        include: impl Into<Patterns>,
        options: PatternOptions,
    ) -> Result<(), ExportError> {
        self.add_pattern(Action::Extern, include.into(), options)
    }

    /// `mock(include)`: matching modules are replaced by stubs whose
    /// attributes are `MockedObject`s. PyTorch's defaults, as for
    /// [`intern`](Self::intern).
    pub fn mock(&mut self, include: impl Into<Patterns>) -> Result<(), ExportError> {
        self.mock_with(include, PatternOptions::default())
    }

    /// `mock(include, exclude=..., allow_empty=...)`.
    pub fn mock_with(
        &mut self,
        include: impl Into<Patterns>,
        options: PatternOptions,
    ) -> Result<(), ExportError> {
        self.add_pattern(Action::Mock, include.into(), options)
    }

    /// `deny(include)`: depending on a matching module is an error.
    pub fn deny(&mut self, include: impl Into<Patterns>) -> Result<(), ExportError> {
        self.deny_with(include, ())
    }

    /// `deny(include, exclude=...)` (PyTorch's `deny` has no
    /// `allow_empty`: a deny pattern may always match nothing).
    pub fn deny_with(
        &mut self,
        include: impl Into<Patterns>,
        exclude: impl Into<Patterns>,
    ) -> Result<(), ExportError> {
        let options = PatternOptions::default().with_exclude(exclude);
        self.add_pattern(Action::Deny, include.into(), options)
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
    /// (`m/__init__.py`) or a module. By default it is what the module is on
    /// the search path (PyTorch: `hasattr(module, "__path__")`); repackaging
    /// keeps what the input package had.
    pub fn set_mock_kind(&mut self, module: &str, kind: SourceKind) {
        self.mock_kinds.insert(module.to_owned(), kind);
    }

    /// `get_unique_id()`: "0", "1", ... per exporter.
    pub fn get_unique_id(&mut self) -> String {
        let id = self.unique_id;
        self.unique_id += 1;
        id.to_string()
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
                        sources.push((
                            source_record("_mock", SourceKind::Module),
                            MOCK_MODULE_SOURCE,
                        ));
                        mock_file = true;
                    }
                    let kind = match mock_kinds.get(module) {
                        Some(&kind) => kind,
                        None => SourceKind::of(matches!(
                            finder.find(module),
                            Some(
                                Found::Source {
                                    is_package: true,
                                    ..
                                } | Found::Namespace { .. }
                            )
                        )),
                    };
                    sources.push((source_record(module, kind), MOCK_IMPL));
                }
                Action::Intern if attributes.is_pickle != Some(true) => {
                    let kind = SourceKind::of(attributes.is_package.unwrap_or(false));
                    let source = attributes.source.as_deref().unwrap_or_default();
                    sources.push((source_record(module, kind), source));
                }
                Action::RepackagedMockModule if !mock_file => {
                    sources.push((
                        source_record("_mock", SourceKind::Module),
                        MOCK_MODULE_SOURCE,
                    ));
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
