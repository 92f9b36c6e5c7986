//! torch.package's dependency graph.
//!
//! `PackageExporter` records every module, pickle and dependency it meets in
//! a directed graph: an edge `a -> b` means "`a` needs `b`". The graph answers
//! the questions a packaging report asks — what depends on this module, how
//! did this module get pulled in (`first_path`), every path from one module
//! to another (`all_paths`, as Graphviz DOT) — with PyTorch's exact
//! orderings, so reports read the same as PyTorch's.
//!
//! Built on petgraph; nodes are keyed by name and carry typed attributes
//! ([`NodeAttributes`] by default). Edges have set semantics; successors,
//! predecessors, nodes and edges iterate in insertion order, as PyTorch's
//! dict-based `DiGraph` does.
//!
//! ```
//! use tpkg_digraph::DiGraph;
//!
//! let mut graph: DiGraph = DiGraph::new();
//! graph.add_edge("<model.model.pkl>", "resnet");
//! graph.add_edge("resnet", "resnet.layers");
//! graph.add_edge("resnet", "torch");
//!
//! assert_eq!(graph.first_path("resnet.layers").unwrap(), ["<model.model.pkl>", "resnet", "resnet.layers"]);
//! assert_eq!(graph.predecessors("torch").unwrap().collect::<Vec<_>>(), ["resnet"]);
//! assert!(graph.to_dot().contains("\"resnet\" -> \"torch\";"));
//! ```
//!
//! Where PyTorch's `DiGraph` has bugs, tpkg is correct and says so: its
//! closures and `all_paths` seed the search with the *characters* of the
//! node name (only one-character names work), `all_paths` and `first_path`
//! loop forever on cycles, and `all_paths` returns an empty graph object
//! instead of text when `dst` is unreachable. On the inputs where PyTorch
//! works, outputs are identical.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod attributes;

pub use attributes::{Action, Attributes, ErrorReason, NodeAttributes};

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use petgraph::Direction;
use petgraph::graph::NodeIndex;

/// A name that is not a node of the graph. Displays as PyTorch's
/// `ValueError` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNotFound(pub String);

impl fmt::Display for NodeNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "The node {} is not in the digraph.", self.0)
    }
}

impl std::error::Error for NodeNotFound {}

#[derive(Debug, Clone)]
struct Node<A> {
    name: String,
    attributes: A,
}

/// A directed graph of named nodes with attributes `A`.
#[derive(Debug, Clone)]
pub struct DiGraph<A = NodeAttributes> {
    // Node indices are insertion order: petgraph's `Graph` appends and we
    // never remove.
    graph: petgraph::graph::DiGraph<Node<A>, ()>,
    index: HashMap<String, NodeIndex>,
}

impl<A: Attributes> Default for DiGraph<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Attributes> DiGraph<A> {
    /// An empty graph.
    ///
    /// ```
    /// let graph: tpkg_digraph::DiGraph = tpkg_digraph::DiGraph::new();
    /// assert_eq!(graph.len(), 0);
    /// ```
    pub fn new() -> Self {
        DiGraph {
            graph: petgraph::graph::DiGraph::new(),
            index: HashMap::new(),
        }
    }

    /// Number of nodes.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// assert_eq!(graph.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no nodes.
    ///
    /// ```
    /// assert!(tpkg_digraph::DiGraph::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Adds a node, or merges `attributes` into an existing one (which keeps
    /// its original insertion position).
    ///
    /// ```
    /// use tpkg_digraph::{Action, DiGraph, NodeAttributes};
    /// let mut graph: DiGraph = DiGraph::new();
    /// graph.add_node("a", NodeAttributes { action: Some(Action::Extern), ..Default::default() });
    /// graph.add_node("a", NodeAttributes { provided: Some(true), ..Default::default() });
    /// let node = graph.node("a").unwrap();
    /// assert_eq!((node.action, node.provided), (Some(Action::Extern), Some(true)));
    /// ```
    pub fn add_node(&mut self, name: &str, attributes: A) {
        match self.index.get(name) {
            Some(&index) => self.graph[index].attributes.update(attributes),
            None => {
                let index = self.graph.add_node(Node {
                    name: name.to_owned(),
                    attributes,
                });
                self.index.insert(name.to_owned(), index);
            }
        }
    }

    fn index_or_insert(&mut self, name: &str) -> NodeIndex {
        if let Some(&index) = self.index.get(name) {
            return index;
        }
        self.add_node(name, A::default());
        self.index[name]
    }

    /// Adds the edge `from -> to`, creating missing nodes; adding an edge
    /// twice keeps one.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// graph.add_edge("a", "b");
    /// assert_eq!(graph.edges().count(), 1);
    /// ```
    pub fn add_edge(&mut self, from: &str, to: &str) {
        let from = self.index_or_insert(from);
        let to = self.index_or_insert(to);
        if self.graph.find_edge(from, to).is_none() {
            self.graph.add_edge(from, to, ());
        }
    }

    /// Whether `name` is a node.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// assert!(graph.contains("a") && !graph.contains("c"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// A node's attributes.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// assert_eq!(graph.node("a").unwrap().action, None);
    /// assert!(graph.node("zzz").is_none());
    /// ```
    pub fn node(&self, name: &str) -> Option<&A> {
        self.index
            .get(name)
            .map(|&index| &self.graph[index].attributes)
    }

    /// A node's attributes, mutably.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// graph.node_mut("a").unwrap().provided = Some(true);
    /// ```
    pub fn node_mut(&mut self, name: &str) -> Option<&mut A> {
        self.index
            .get(name)
            .map(|&index| &mut self.graph[index].attributes)
    }

    /// Every node and its attributes, in insertion order.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("b", "a");
    /// assert_eq!(graph.nodes().map(|(name, _)| name).collect::<Vec<_>>(), ["b", "a"]);
    /// ```
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &A)> {
        self.graph
            .node_weights()
            .map(|node| (node.name.as_str(), &node.attributes))
    }

    fn lookup(&self, name: &str) -> Result<NodeIndex, NodeNotFound> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| NodeNotFound(name.to_owned()))
    }

    /// Neighbours in edge-insertion order (petgraph lists newest first).
    fn neighbours(&self, index: NodeIndex, direction: Direction) -> Vec<NodeIndex> {
        let mut neighbours: Vec<NodeIndex> =
            self.graph.neighbors_directed(index, direction).collect();
        neighbours.reverse();
        neighbours
    }

    /// What `name` depends on, in the order the edges were added.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "c");
    /// graph.add_edge("a", "b");
    /// assert_eq!(graph.successors("a").unwrap().collect::<Vec<_>>(), ["c", "b"]);
    /// assert!(graph.successors("x").is_err());
    /// ```
    pub fn successors(&self, name: &str) -> Result<impl Iterator<Item = &str>, NodeNotFound> {
        let index = self.lookup(name)?;
        Ok(self
            .neighbours(index, Direction::Outgoing)
            .into_iter()
            .map(|n| self.graph[n].name.as_str()))
    }

    /// What depends on `name` (its reverse dependencies), in the order the
    /// edges were added.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("b", "a");
    /// graph.add_edge("c", "a");
    /// assert_eq!(graph.predecessors("a").unwrap().collect::<Vec<_>>(), ["b", "c"]);
    /// ```
    pub fn predecessors(&self, name: &str) -> Result<impl Iterator<Item = &str>, NodeNotFound> {
        let index = self.lookup(name)?;
        Ok(self
            .neighbours(index, Direction::Incoming)
            .into_iter()
            .map(|n| self.graph[n].name.as_str()))
    }

    /// Every edge `(from, to)`: nodes in insertion order, each node's
    /// successors in insertion order.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("1", "2");
    /// graph.add_edge("3", "1");
    /// graph.add_edge("1", "3");
    /// assert_eq!(graph.edges().collect::<Vec<_>>(), [("1", "2"), ("1", "3"), ("3", "1")]);
    /// ```
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.graph.node_indices().flat_map(move |from| {
            self.neighbours(from, Direction::Outgoing)
                .into_iter()
                .map(move |to| (self.graph[from].name.as_str(), self.graph[to].name.as_str()))
        })
    }

    fn closure(&self, src: &str, direction: Direction) -> Result<Vec<&str>, NodeNotFound> {
        let start = self.lookup(src)?;
        let mut seen = HashSet::from([start]);
        let mut order = vec![start];
        let mut queue = VecDeque::from([start]);
        while let Some(current) = queue.pop_front() {
            for next in self.neighbours(current, direction) {
                if seen.insert(next) {
                    order.push(next);
                    queue.push_back(next);
                }
            }
        }
        Ok(order
            .into_iter()
            .map(|n| self.graph[n].name.as_str())
            .collect())
    }

    /// `src` and every node reachable from it, breadth first.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("torch", "torch.nn");
    /// graph.add_edge("torch.nn", "torch.nn.functional");
    /// assert_eq!(graph.forward_transitive_closure("torch.nn").unwrap(), ["torch.nn", "torch.nn.functional"]);
    /// ```
    pub fn forward_transitive_closure(&self, src: &str) -> Result<Vec<&str>, NodeNotFound> {
        self.closure(src, Direction::Outgoing)
    }

    /// `src` and every node that reaches it, breadth first.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("app", "lib");
    /// graph.add_edge("lib", "util");
    /// assert_eq!(graph.backward_transitive_closure("util").unwrap(), ["util", "lib", "app"]);
    /// ```
    pub fn backward_transitive_closure(&self, src: &str) -> Result<Vec<&str>, NodeNotFound> {
        self.closure(src, Direction::Incoming)
    }

    /// The subgraph of every path from `src` to `dst`, built as PyTorch
    /// builds it (walking back from `dst` through nodes reachable from
    /// `src`). Empty when `dst` is not reachable.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// graph.add_edge("b", "c");
    /// graph.add_edge("x", "c");
    /// let paths = graph.all_paths_graph("a", "c").unwrap();
    /// assert_eq!(paths.edges().collect::<Vec<_>>(), [("b", "c"), ("a", "b")]);
    /// ```
    pub fn all_paths_graph(&self, src: &str, dst: &str) -> Result<DiGraph<()>, NodeNotFound> {
        let reachable: HashSet<NodeIndex> = self
            .forward_transitive_closure(src)?
            .into_iter()
            .map(|name| self.index[name])
            .collect();
        let target = self.lookup(dst)?;
        let mut result = DiGraph::new();
        if !reachable.contains(&target) {
            return Ok(result);
        }
        // PyTorch re-queues nodes it has seen (and so never ends on a
        // cycle); visiting each node once adds the same edges in the same
        // order.
        let mut visited = HashSet::from([target]);
        let mut queue = VecDeque::from([target]);
        while let Some(current) = queue.pop_front() {
            for predecessor in self.neighbours(current, Direction::Incoming) {
                if reachable.contains(&predecessor) {
                    result.add_edge(&self.graph[predecessor].name, &self.graph[current].name);
                    if visited.insert(predecessor) {
                        queue.push_back(predecessor);
                    }
                }
            }
        }
        Ok(result)
    }

    /// [`all_paths_graph`](Self::all_paths_graph) as DOT text: what
    /// PyTorch's `PackageExporter.all_paths(src, dst)` returns.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// assert_eq!(
    ///     graph.all_paths("a", "b").unwrap(),
    ///     "digraph G {\nrankdir = LR;\nnode [shape=box];\n\"a\" -> \"b\";\n}\n"
    /// );
    /// ```
    pub fn all_paths(&self, src: &str, dst: &str) -> Result<String, NodeNotFound> {
        Ok(self.all_paths_graph(src, dst)?.to_dot())
    }

    /// The path by which `dst` first entered the graph: from `dst`, step to
    /// the predecessor added earliest, until a node has none (or, unlike
    /// PyTorch, which loops forever, until the walk would revisit a node).
    /// Returned from the root to `dst`; used for "A path to X: a -> b -> X".
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("root", "a");
    /// graph.add_edge("root", "b");
    /// graph.add_edge("b", "x");
    /// graph.add_edge("a", "x");
    /// assert_eq!(graph.first_path("x").unwrap(), ["root", "a", "x"]);
    /// ```
    pub fn first_path(&self, dst: &str) -> Result<Vec<&str>, NodeNotFound> {
        let mut current = self.lookup(dst)?;
        let mut path = vec![current];
        let mut on_path = HashSet::from([current]);
        // Node indices are insertion order, so "earliest added" is "smallest".
        while let Some(earliest) = self
            .graph
            .neighbors_directed(current, Direction::Incoming)
            .min()
        {
            if !on_path.insert(earliest) {
                break;
            }
            path.push(earliest);
            current = earliest;
        }
        path.reverse();
        Ok(path
            .into_iter()
            .map(|n| self.graph[n].name.as_str())
            .collect())
    }

    /// The whole graph as DOT, exactly as PyTorch's `to_dot` (and so
    /// `PackageExporter.dependency_graph_string()`) writes it.
    ///
    /// ```
    /// let mut graph: tpkg_digraph::DiGraph<()> = tpkg_digraph::DiGraph::new();
    /// graph.add_edge("a", "b");
    /// graph.add_edge("a", "c");
    /// assert_eq!(
    ///     graph.to_dot(),
    ///     "digraph G {\nrankdir = LR;\nnode [shape=box];\n\"a\" -> \"b\";\n\"a\" -> \"c\";\n}\n"
    /// );
    /// ```
    pub fn to_dot(&self) -> String {
        let edges: Vec<String> = self
            .edges()
            .map(|(from, to)| format!("\"{from}\" -> \"{to}\";"))
            .collect();
        format!(
            "digraph G {{\nrankdir = LR;\nnode [shape=box];\n{}\n}}\n",
            edges.join("\n")
        )
    }
}
