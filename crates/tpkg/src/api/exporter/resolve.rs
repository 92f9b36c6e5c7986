//! The dependency walk: PyTorch's `add_dependency`, recursive interning and
//! the prefetch of modules the walk will intern.

use tpkg_archive::Destination;
use tpkg_digraph::{Action, ErrorReason, NodeAttributes};
use tpkg_pysource::{Found, ScanError, is_stdlib_module};

use super::records::read_source;
use super::{DISALLOWED_MODULES, Dependencies, ExportError, PackageExporter};

impl<D: Destination> PackageExporter<D> {
    /// `add_dependency(name)`: applies the patterns to a module.
    /// The module's dependencies are added in turn, if it is interned
    /// (PyTorch's default; see [`add_dependency_with`](Self::add_dependency_with)).
    pub fn add_dependency(&mut self, module: &str) -> Result<(), ExportError> {
        self.add_dependency_with(module, Dependencies::Add)
    }

    /// `add_dependency(name, dependencies=...)`.
    pub fn add_dependency_with(
        &mut self,
        module: &str,
        dependencies: Dependencies,
    ) -> Result<(), ExportError> {
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

    pub(super) fn can_implicitly_extern(&self, module: &str) -> bool {
        let top = module.split('.').next().unwrap_or(module);
        top == "torch"
            || (!DISALLOWED_MODULES.contains(&top)
                && is_stdlib_module(top, self.finder.python_version()))
    }

    pub(super) fn intern_module(
        &mut self,
        module: &str,
        dependencies: Dependencies,
    ) -> Result<(), ExportError> {
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
        let deps = dependencies.added().then(|| match scanned_deps {
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
    pub(super) fn add_dependencies_of(
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
            self.add_dependency(&dep)?;
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
}
