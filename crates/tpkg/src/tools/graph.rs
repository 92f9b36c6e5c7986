//! A file's module dependency graph, as `PackageExporter` recorded it:
//! which pickle references which module, which interned module imports
//! which, and what each module is (interned, extern, mocked).
//!
//! For a package the graph is rebuilt from the archive alone, the way
//! PyTorch's exporter built it while packaging: a depth-first walk from
//! each pickle (in record order) over the modules its globals name, then
//! from each interned module not reached, where an interned module's
//! dependencies are its imports (`pysource`'s scanner, PyTorch's
//! `find_files_source_depends_on`) resolved with the exporter's rule
//! (`from pack import x` is `pack.x` if that is a module, else `pack`),
//! "is a module" meaning: the package interns, externs or mocks it. Every
//! module that existed when the package was written is in one of those
//! lists, so for packages PyTorch wrote the edges are PyTorch's and
//! [`DependencyGraph::to_dot`] with [`DotStyle::Plain`] prints
//! `PackageExporter.dependency_graph_string()`'s text (node order included,
//! when the pickles were saved before any `save_module`).
//!
//! Pickle globals are read by the decoder (nothing is imported or run), not
//! by PyTorch's opcode heuristic; both agree on the pickles PyTorch writes.
//! A file that is not a package (`torch.save`, TorchScript, `.pt2`, a
//! legacy `torch.save`, a pickle file) has no sources: its graph is its
//! pickles and the modules their globals name, all [`NodeKind::Extern`]
//! (a load imports them from the environment).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use tpkg_archive::PackageReader;
use tpkg_archive::metadata::PackageMetadata;
use tpkg_digraph::{Attributes, DiGraph};
use tpkg_pickle::{DecodeOptions, Symbolic, Value, ValueGraph};
use tpkg_pysource::{package_of, scan_imports};

use crate::files::formats::{self, FileFormat, Sniffed};
use crate::files::legacy::LegacyFile;
use crate::files::records::{MAX_PICKLE_BYTES, MOCK_IMPL, module_of_record};

/// What a node of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// A module whose source is in the package.
    Interned,
    /// A module loaded from the environment: listed in a package's
    /// `.data/extern_modules`, or named by a pickle of a file that is not a
    /// package.
    Extern,
    /// A module replaced by a stub (its source is PyTorch's `_MOCK_IMPL`).
    Mocked,
    /// A module the package loader supplies itself: `torch_package_importer`,
    /// and `_mock` when a source imports it (PyTorch's `SKIP` and
    /// `REPACKAGED_MOCK_MODULE` actions).
    Provided,
    /// A module a package's pickle names that the package neither interns,
    /// externs nor mocks: `PackageImporter` cannot load it. PyTorch's
    /// exporter never writes such a package.
    Missing,
    /// A pickle record (named `<package.resource>` as PyTorch names it).
    Pickle,
}

impl NodeKind {
    /// Every kind, in legend order.
    pub const ALL: [NodeKind; 6] = [
        NodeKind::Pickle,
        NodeKind::Interned,
        NodeKind::Extern,
        NodeKind::Mocked,
        NodeKind::Provided,
        NodeKind::Missing,
    ];

    /// A lower-case name (`interned`, `extern`, ...).
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Interned => "interned",
            NodeKind::Extern => "extern",
            NodeKind::Mocked => "mocked",
            NodeKind::Provided => "provided",
            NodeKind::Missing => "missing",
            NodeKind::Pickle => "pickle",
        }
    }

    /// The fill colour both renderings give nodes of this kind.
    pub fn fill(self) -> &'static str {
        match self {
            NodeKind::Interned => "#9ecae1",
            NodeKind::Extern => "#d9d9d9",
            NodeKind::Mocked => "#fdae6b",
            NodeKind::Provided => "#bcbddc",
            NodeKind::Missing => "#fb6a4a",
            NodeKind::Pickle => "#a1d99b",
        }
    }

    /// The DOT attributes of a node of this kind (`tpkg graph`'s own
    /// choice: PyTorch's DOT has no node attributes).
    fn dot_attributes(self) -> String {
        let (shape, style) = match self {
            NodeKind::Pickle => ("note", "filled"),
            NodeKind::Mocked => ("box", "\"filled,dashed\""),
            NodeKind::Missing => ("box", "\"filled,bold\""),
            _ => ("box", "filled"),
        };
        format!(
            "shape={shape}, style={style}, fillcolor=\"{}\"",
            self.fill()
        )
    }
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One node: a module or a pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// The module's name, or the pickle's `<package.resource>`.
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
}

/// Something in the file that could not be read; the graph holds what
/// could be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphWarning {
    /// The record (or, in a stream, the pickle).
    pub record: String,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for GraphWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.record, self.message)
    }
}

/// The file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// The zip (or folder), or its bookkeeping records, could not be read.
    #[error(transparent)]
    Archive(#[from] tpkg_archive::ArchiveError),
    /// The legacy `torch.save` file could not be read.
    #[error(transparent)]
    Legacy(#[from] crate::files::legacy::LegacyError),
}

/// How [`DependencyGraph::to_dot`] writes nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DotStyle {
    /// PyTorch's text exactly: the header and one line per edge.
    Plain,
    /// PyTorch's text, then one line per node with its kind's shape, style
    /// and fill colour (which also lists nodes without edges).
    #[default]
    Styled,
}

/// Options of [`DependencyGraph::to_dot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DotOptions {
    /// Node attributes or not.
    pub style: DotStyle,
}

/// A file's dependency graph: nodes in PyTorch's insertion order, edges
/// `from -> to` meaning "`from` needs `to`", in PyTorch's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyGraph {
    format: FileFormat,
    nodes: Vec<GraphNode>,
    edges: Vec<(usize, usize)>,
    warnings: Vec<GraphWarning>,
}

/// A node's kind while the graph is built (`dict.update` semantics).
#[derive(Debug, Clone, Copy, Default)]
struct Slot(Option<NodeKind>);

impl Attributes for Slot {
    fn update(&mut self, newer: Self) {
        if newer.0.is_some() {
            *self = newer;
        }
    }
}

impl DependencyGraph {
    /// The format of the file the graph is of.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Every node, in insertion order.
    pub fn nodes(&self) -> &[GraphNode] {
        &self.nodes
    }

    /// Every edge as `(from, to)` indices into [`nodes`](Self::nodes).
    pub fn edges(&self) -> &[(usize, usize)] {
        &self.edges
    }

    /// What could not be read (the graph leaves it out).
    pub fn warnings(&self) -> &[GraphWarning] {
        &self.warnings
    }

    /// The graph as DOT: PyTorch's `dependency_graph_string()` text
    /// (`digraph G {`, `rankdir = LR;`, `node [shape=box];`, then
    /// `"from" -> "to";` per edge), with [`DotStyle::Styled`] followed by
    /// one `"name" [shape=..., style=..., fillcolor=...];` line per node.
    /// Names are written as PyTorch writes them, except that `"`, `\` and
    /// line breaks (which no module name has) are escaped so hostile names
    /// cannot break the DOT syntax.
    pub fn to_dot(&self, options: &DotOptions) -> String {
        let mut out = String::from("digraph G {\nrankdir = LR;\nnode [shape=box];\n");
        let lines: Vec<String> = self
            .edges
            .iter()
            .map(|&(from, to)| {
                format!(
                    "\"{}\" -> \"{}\";",
                    dot_escape(&self.nodes[from].name),
                    dot_escape(&self.nodes[to].name)
                )
            })
            .collect();
        out.push_str(&lines.join("\n"));
        out.push('\n');
        if options.style == DotStyle::Styled {
            for node in &self.nodes {
                let _ = writeln!(
                    out,
                    "\"{}\" [{}];",
                    dot_escape(&node.name),
                    node.kind.dot_attributes()
                );
            }
        }
        out.push_str("}\n");
        out
    }

    /// The graph with every extern module merged into its top-level
    /// package (`torch.nn.modules.conv` into `torch`): far fewer nodes, for
    /// a picture. Edges keep their first-seen order; an edge from a module
    /// to itself after merging is dropped. PyTorch's graphs are never
    /// collapsed.
    pub fn collapse_externs(&self) -> DependencyGraph {
        let mut graph: DiGraph<Slot> = DiGraph::new();
        let renamed: Vec<String> = self
            .nodes
            .iter()
            .map(|node| match node.kind {
                NodeKind::Extern => top_level(&node.name).to_owned(),
                _ => node.name.clone(),
            })
            .collect();
        for (node, name) in self.nodes.iter().zip(&renamed) {
            graph.add_node(name, Slot(Some(node.kind)));
        }
        for &(from, to) in &self.edges {
            if renamed[from] != renamed[to] {
                graph.add_edge(&renamed[from], &renamed[to]);
            }
        }
        Self::from_digraph(self.format, &graph, self.warnings.clone())
    }

    /// The part of the graph within `depth` edges of its roots: the
    /// pickles, or in a file without pickles the nodes nothing points to.
    /// Edges between kept nodes are kept; `depth` 0 keeps the roots alone.
    pub fn within_depth(&self, depth: usize) -> DependencyGraph {
        let mut successors: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        let mut has_predecessor = vec![false; self.nodes.len()];
        for &(from, to) in &self.edges {
            successors[from].push(to);
            has_predecessor[to] = true;
        }
        let pickles: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].kind == NodeKind::Pickle)
            .collect();
        let mut frontier = if pickles.is_empty() {
            (0..self.nodes.len())
                .filter(|&i| !has_predecessor[i])
                .collect()
        } else {
            pickles
        };
        let mut kept = vec![false; self.nodes.len()];
        for &root in &frontier {
            kept[root] = true;
        }
        for _ in 0..depth {
            let mut next = Vec::new();
            for node in frontier {
                for &succ in &successors[node] {
                    if !kept[succ] {
                        kept[succ] = true;
                        next.push(succ);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let mut graph: DiGraph<Slot> = DiGraph::new();
        for (node, _) in self.nodes.iter().zip(&kept).filter(|(_, kept)| **kept) {
            graph.add_node(&node.name, Slot(Some(node.kind)));
        }
        for &(from, to) in &self.edges {
            if kept[from] && kept[to] {
                graph.add_edge(&self.nodes[from].name, &self.nodes[to].name);
            }
        }
        Self::from_digraph(self.format, &graph, self.warnings.clone())
    }

    fn from_digraph(
        format: FileFormat,
        graph: &DiGraph<Slot>,
        warnings: Vec<GraphWarning>,
    ) -> DependencyGraph {
        let mut index = HashMap::new();
        let nodes: Vec<GraphNode> = graph
            .nodes()
            .enumerate()
            .map(|(i, (name, slot))| {
                index.insert(name.to_owned(), i);
                GraphNode {
                    name: name.to_owned(),
                    kind: slot.0.unwrap_or(NodeKind::Missing),
                }
            })
            .collect();
        let edges = graph
            .edges()
            .filter_map(|(from, to)| Some((*index.get(from)?, *index.get(to)?)))
            .collect();
        DependencyGraph {
            format,
            nodes,
            edges,
            warnings,
        }
    }
}

fn top_level(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

fn dot_escape(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains(['"', '\\', '\n', '\r']) {
        return name.into();
    }
    name.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .into()
}

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
            let file = LegacyFile::open(path)?;
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

    #[test]
    fn escapes_only_what_breaks_dot() {
        assert_eq!(dot_escape("torch.nn"), "torch.nn");
        assert_eq!(dot_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
