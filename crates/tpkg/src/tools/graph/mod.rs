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
//! when the pickles were saved before any `save_module`). What the archive
//! cannot tell, and so where the graph may differ from the exporter's: a
//! module or pickle saved with `dependencies=False` (its edges are drawn
//! anyway), a `save_module` called before a `save_pickle` (node order),
//! and sources scanned with the newest Python syntax rather than the
//! exporting interpreter's.
//!
//! Pickle globals are read by the decoder (nothing is imported or run), not
//! by PyTorch's opcode heuristic; both agree on the pickles PyTorch writes.
//! A file that is not a package (`torch.save`, TorchScript, `.pt2`, a
//! legacy `torch.save`, a pickle file) has no sources: its graph is its
//! pickles and the modules their globals name, all [`NodeKind::Extern`]
//! (a load imports them from the environment).

mod walk;

pub use walk::{graph_path, graph_zip, package_graph};

use std::collections::HashMap;
use std::fmt::Write as _;

use tpkg_digraph::{Attributes, DiGraph};

use crate::files::formats::FileFormat;

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
    #[error("{path}: {error}")]
    Legacy {
        /// The file.
        path: String,
        /// Why.
        error: crate::files::legacy::LegacyError,
    },
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
    /// pickles, or in a file without pickles the nodes nothing points to
    /// (every node, when there are none: a graph of cycles).
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
        let mut frontier: Vec<usize> = if pickles.is_empty() {
            (0..self.nodes.len())
                .filter(|&i| !has_predecessor[i])
                .collect()
        } else {
            pickles
        };
        if frontier.is_empty() {
            // Only cycles: every node is as much a root as any other.
            frontier = (0..self.nodes.len()).collect();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(names: &[&str], edges: &[(usize, usize)]) -> DependencyGraph {
        DependencyGraph {
            format: FileFormat::Package,
            nodes: names
                .iter()
                .map(|name| GraphNode {
                    name: (*name).to_owned(),
                    kind: if name.starts_with('<') {
                        NodeKind::Pickle
                    } else if name.starts_with("torch") {
                        NodeKind::Extern
                    } else {
                        NodeKind::Interned
                    },
                })
                .collect(),
            edges: edges.to_vec(),
            warnings: Vec::new(),
        }
    }

    fn names(graph: &DependencyGraph) -> Vec<&str> {
        graph
            .nodes()
            .iter()
            .map(|node| node.name.as_str())
            .collect()
    }

    #[test]
    fn depth_counts_edges_from_the_pickles() {
        let graph = modules(
            &["<m.pkl>", "a", "b", "c", "torch.nn"],
            &[(0, 1), (1, 2), (1, 4), (2, 3)],
        );
        assert_eq!(names(&graph.within_depth(0)), ["<m.pkl>"]);
        assert_eq!(names(&graph.within_depth(1)), ["<m.pkl>", "a"]);
        assert_eq!(
            names(&graph.within_depth(2)),
            ["<m.pkl>", "a", "b", "torch.nn"]
        );
        assert_eq!(graph.within_depth(9), graph);
        // Without pickles, from what nothing imports; a cycle keeps all.
        let cycle = modules(&["a", "b"], &[(0, 1), (1, 0)]);
        assert_eq!(cycle.within_depth(0), cycle.within_depth(5));
        assert_eq!(names(&cycle.within_depth(0)), ["a", "b"]);
    }

    #[test]
    fn collapsing_merges_externs_by_top_level_package() {
        let graph = modules(
            &["<m.pkl>", "torch.nn", "a", "torch.nn.functional", "torch"],
            &[(0, 1), (0, 2), (2, 3), (2, 4), (1, 3)],
        );
        let collapsed = graph.collapse_externs();
        assert_eq!(names(&collapsed), ["<m.pkl>", "torch", "a"]);
        let dot = collapsed.to_dot(&DotOptions {
            style: DotStyle::Plain,
        });
        assert_eq!(
            dot,
            "digraph G {\nrankdir = LR;\nnode [shape=box];\n\"<m.pkl>\" -> \"torch\";\n\"<m.pkl>\" -> \"a\";\n\"a\" -> \"torch\";\n}\n"
        );
    }

    #[test]
    fn escapes_only_what_breaks_dot() {
        assert_eq!(dot_escape("torch.nn"), "torch.nn");
        assert_eq!(dot_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
