//! Building a [`DependencyGraph`] from a file: the exporter's walk over a
//! package, or the pickles of any other format.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tpkg_archive::PackageReader;
use tpkg_archive::metadata::PackageMetadata;
use tpkg_digraph::DiGraph;
use tpkg_pickle::{DecodeOptions, Symbolic, Value, ValueGraph};
use tpkg_pysource::{package_of, scan_imports};

use super::{DependencyGraph, GraphError, GraphWarning, NodeKind, Slot};
use crate::files::formats::{self, FileFormat, Sniffed};
use crate::files::legacy::LegacyFile;
use crate::files::records::{MAX_PICKLE_BYTES, MOCK_IMPL, module_of_record};

/// The dependency graph of any PyTorch file, told by content: a package's
/// full graph, or for other formats its pickles and the modules they name.
pub fn graph_path(path: impl AsRef<Path>) -> Result<DependencyGraph, GraphError> {
    let path = path.as_ref();
    let sniffed = if path.is_dir() {
        Sniffed::Zip
    } else {
        formats::sniff_path(path).map_err(|error| GraphError::Io {
            path: path.display().to_string(),
            error,
        })?
    };
    match sniffed {
        Sniffed::Zip => graph_zip(&PackageReader::open(path)?),
        Sniffed::LegacyStream | Sniffed::Tar => {
            let file = LegacyFile::open(path).map_err(|error| GraphError::Legacy {
                path: path.display().to_string(),
                error,
            })?;
            let bytes = file.bytes();
            let mut builder = Builder::new(FileFormat::TorchSaveLegacy);
            for (i, span) in file.pickles().iter().enumerate() {
                let name = format!("<{i}: {}>", span.role);
                let range = usize::try_from(span.range.start).unwrap_or(usize::MAX)
                    ..usize::try_from(span.range.end).unwrap_or(usize::MAX);
                let data = bytes.get(range).unwrap_or_default();
                let modules = builder.pickle_bytes(&name, &name, data);
                builder.extern_pickle(&name, modules);
            }
            Ok(builder.finish())
        }
        Sniffed::Pickle => {
            let bytes = std::fs::read(path).map_err(|error| GraphError::Io {
                path: path.display().to_string(),
                error,
            })?;
            let mut builder = Builder::new(FileFormat::Pickle);
            let options = DecodeOptions::default();
            for (i, pickle) in tpkg_pickle::decode_stream(&bytes, &options, &Symbolic).enumerate() {
                match pickle {
                    Ok((_, graph)) => {
                        builder.extern_pickle(&format!("<pickle {i}>"), globals_of(&graph));
                    }
                    // Bytes after the last pickle: what `pickle.load`
                    // would fail on; the pickles before are the graph.
                    Err((offset, error)) => builder.warn(
                        &format!("<pickle {i}>"),
                        format!("at byte {offset}: {error}"),
                    ),
                }
            }
            Ok(builder.finish())
        }
    }
}

/// The dependency graph of an open zip (or package folder).
pub fn graph_zip(reader: &PackageReader) -> Result<DependencyGraph, GraphError> {
    let format = formats::zip_format(reader);
    if format == FileFormat::Package {
        return package_graph(reader);
    }
    let mut builder = Builder::new(format);
    for name in record_names(reader) {
        if name.ends_with(".pkl") {
            let node = format!("<{name}>");
            let modules = builder.pickle_record(reader, name, &node);
            builder.extern_pickle(&node, modules);
        }
    }
    Ok(builder.finish())
}

/// Record names once each, folder entries left out, in archive order.
fn record_names(reader: &PackageReader) -> Vec<&str> {
    let mut seen = HashSet::new();
    reader
        .records()
        .iter()
        .map(|record| record.name.as_str())
        .filter(|name| !name.ends_with('/') && seen.insert(*name))
        .collect()
}

/// PyTorch's node name for the pickle saved as `record`:
/// `save_pickle(package, resource)` is `<package.resource>`, the record
/// `package/with/dots/resource`; the package is taken to be the record's
/// folder.
fn pickle_node_name(record: &str) -> String {
    match record.rsplit_once('/') {
        Some((folder, resource)) => format!("<{}.{resource}>", folder.replace('/', ".")),
        None => format!("<.{record}>"),
    }
}

/// A package's interned sources, externs and mocks.
struct Contents {
    /// Interned module → (record, is_package), in record order.
    interned: Vec<(String, String, bool)>,
    kinds: HashMap<String, NodeKind>,
    externs: Vec<String>,
    mocked: Vec<String>,
}

fn package_contents(reader: &PackageReader, builder: &mut Builder) -> Result<Contents, GraphError> {
    let metadata = PackageMetadata::read(reader)?;
    let externs: Vec<String> = metadata
        .extern_modules
        .unwrap_or_default()
        .into_iter()
        .filter(|name| !name.is_empty())
        .collect();
    let mut kinds: HashMap<String, NodeKind> = externs
        .iter()
        .map(|name| (name.clone(), NodeKind::Extern))
        .collect();
    kinds.insert("torch_package_importer".to_owned(), NodeKind::Provided);
    let mut interned = Vec::new();
    let mut mocked = Vec::new();
    for name in record_names(reader) {
        let Some(module) = module_of_record(name) else {
            continue;
        };
        if module == "_mock" {
            kinds.insert(module, NodeKind::Provided);
            continue;
        }
        let is_package = name.ends_with("/__init__.py");
        let source = match reader.read(name) {
            Ok(bytes) => bytes,
            Err(error) => {
                builder.warn(name, error.to_string());
                continue;
            }
        };
        if source.as_ref() == MOCK_IMPL.as_bytes() {
            kinds.insert(module.clone(), NodeKind::Mocked);
            mocked.push(module);
        } else {
            kinds.insert(module.clone(), NodeKind::Interned);
            interned.push((module, name.to_owned(), is_package));
        }
    }
    Ok(Contents {
        interned,
        kinds,
        externs,
        mocked,
    })
}

/// A package's graph (see the module documentation).
pub fn package_graph(reader: &PackageReader) -> Result<DependencyGraph, GraphError> {
    let mut builder = Builder::new(FileFormat::Package);
    let contents = package_contents(reader, &mut builder)?;
    let kind_of = |module: &str| {
        contents
            .kinds
            .get(module)
            .copied()
            .unwrap_or(NodeKind::Missing)
    };
    let records: HashMap<&str, (&str, bool)> = contents
        .interned
        .iter()
        .map(|(module, record, is_package)| (module.as_str(), (record.as_str(), *is_package)))
        .collect();
    let mut walk = Walk {
        reader,
        contents: &contents,
        records: &records,
        visited: HashSet::new(),
    };
    for name in record_names(reader) {
        if name.starts_with(".data/") || name.ends_with(".py") {
            continue;
        }
        let head = crate::files::records::peek(reader, name);
        if !(name.ends_with(".pkl") || formats::starts_like_pickle(&head)) {
            continue;
        }
        let node = pickle_node_name(name);
        // PyTorch's `save_pickle`: each module's edge, then its walk.
        for module in builder.pickle_record(reader, name, &node) {
            builder.edge(&node, &module);
            builder.node(&module, kind_of(&module));
            walk.visit(&mut builder, &module);
        }
    }
    for (module, _, _) in &contents.interned {
        builder.node(module, NodeKind::Interned);
        walk.visit(&mut builder, module);
    }
    for module in contents.externs.iter().chain(&contents.mocked) {
        builder.node(module, kind_of(module));
    }
    Ok(builder.finish())
}

/// The exporter's depth-first walk over interned modules.
struct Walk<'a> {
    reader: &'a PackageReader,
    contents: &'a Contents,
    records: &'a HashMap<&'a str, (&'a str, bool)>,
    visited: HashSet<String>,
}

impl Walk<'_> {
    /// PyTorch's `add_dependency`, iteratively (an explicit stack of
    /// dependency lists keeps the order of the recursive walk).
    fn visit(&mut self, builder: &mut Builder, root: &str) {
        let mut stack: Vec<(String, std::vec::IntoIter<String>)> = Vec::new();
        if let Some(deps) = self.enter(builder, root) {
            stack.push((root.to_owned(), deps.into_iter()));
        }
        while let Some((module, deps)) = stack.last_mut() {
            let Some(dep) = deps.next() else {
                stack.pop();
                continue;
            };
            let module = module.clone();
            builder.edge(&module, &dep);
            if let Some(&kind) = self.contents.kinds.get(&dep) {
                builder.node(&dep, kind);
            }
            if let Some(next) = self.enter(builder, &dep) {
                stack.push((dep, next.into_iter()));
            }
        }
    }

    /// Marks `module` visited; for an interned module not seen before, its
    /// dependencies.
    fn enter(&mut self, builder: &mut Builder, module: &str) -> Option<Vec<String>> {
        let &(record, is_package) = self.records.get(module)?;
        if !self.visited.insert(module.to_owned()) {
            return None;
        }
        builder.node(module, NodeKind::Interned);
        let source = match self.reader.read(record) {
            Ok(bytes) => bytes,
            Err(error) => {
                builder.warn(record, error.to_string());
                return None;
            }
        };
        let Ok(source) = std::str::from_utf8(&source) else {
            builder.warn(
                record,
                "source is not UTF-8; its imports are left out".to_owned(),
            );
            return None;
        };
        let imports = match scan_imports(source, package_of(module, is_package)) {
            Ok(imports) => imports,
            Err(error) => {
                builder.warn(record, format!("{error}; its imports are left out"));
                return None;
            }
        };
        let exists = |name: &str| self.contents.kinds.contains_key(name);
        let mut deps: Vec<String> = Vec::new();
        for (dep, attribute) in imports.references {
            let submodule = attribute.map(|attribute| format!("{dep}.{attribute}"));
            let resolved = match submodule {
                Some(submodule) if exists(&submodule) => submodule,
                _ if exists(&dep) => dep,
                _ => continue,
            };
            if !deps.contains(&resolved) {
                deps.push(resolved);
            }
        }
        Some(deps)
    }
}

/// Accumulates nodes and edges in PyTorch's insertion order.
struct Builder {
    format: FileFormat,
    graph: DiGraph<Slot>,
    warnings: Vec<GraphWarning>,
}

impl Builder {
    fn new(format: FileFormat) -> Self {
        Builder {
            format,
            graph: DiGraph::new(),
            warnings: Vec::new(),
        }
    }

    fn node(&mut self, name: &str, kind: NodeKind) {
        self.graph.add_node(name, Slot(Some(kind)));
    }

    fn edge(&mut self, from: &str, to: &str) {
        self.graph.add_edge(from, to);
    }

    fn warn(&mut self, record: &str, message: String) {
        self.warnings.push(GraphWarning {
            record: record.to_owned(),
            message,
        });
    }

    /// Adds the pickle in `record` as the node `node`; returns the modules
    /// its globals name, in first-seen order (no edges yet).
    fn pickle_record(&mut self, reader: &PackageReader, record: &str, node: &str) -> Vec<String> {
        self.node(node, NodeKind::Pickle);
        let size = reader.record(record).map(|info| info.size).unwrap_or(0);
        if size > MAX_PICKLE_BYTES {
            self.warn(
                record,
                format!(
                    "{size} bytes, more than the {MAX_PICKLE_BYTES}-byte limit for a pickle; its globals are left out"
                ),
            );
            return Vec::new();
        }
        match reader.read(record) {
            Ok(bytes) => self.pickle_bytes(record, node, &bytes),
            Err(error) => {
                self.warn(record, error.to_string());
                Vec::new()
            }
        }
    }

    /// [`pickle_record`](Self::pickle_record) for bytes; `record` names
    /// the pickle in warnings.
    fn pickle_bytes(&mut self, record: &str, node: &str, data: &[u8]) -> Vec<String> {
        self.node(node, NodeKind::Pickle);
        let (graph, result) =
            tpkg_pickle::decode_partial(data, &DecodeOptions::default(), &Symbolic);
        if let Err(error) = result {
            self.warn(
                record,
                format!("does not decode ({error}); only the globals before that are shown"),
            );
        }
        globals_of(&graph)
    }

    /// A pickle of a file that is not a package: the node and an edge to
    /// each module its globals name (all extern).
    fn extern_pickle(&mut self, node: &str, modules: Vec<String>) {
        self.node(node, NodeKind::Pickle);
        for module in modules {
            self.edge(node, &module);
            self.node(&module, NodeKind::Extern);
        }
    }

    fn finish(self) -> DependencyGraph {
        DependencyGraph::from_digraph(self.format, &self.graph, self.warnings)
    }
}

/// The modules a decoded pickle's globals name, in first-seen order.
fn globals_of(graph: &ValueGraph) -> Vec<String> {
    let mut modules: Vec<String> = Vec::new();
    for (_, value) in graph.iter() {
        if let Value::Global { module, .. } = value
            && !modules.iter().any(|seen| seen.as_str() == &**module)
        {
            modules.push(module.to_string());
        }
    }
    modules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickle_names_follow_pytorch() {
        assert_eq!(pickle_node_name("model/model.pkl"), "<model.model.pkl>");
        assert_eq!(pickle_node_name("a/b/c.pkl"), "<a.b.c.pkl>");
        assert_eq!(pickle_node_name("x.pkl"), "<.x.pkl>");
    }
}
