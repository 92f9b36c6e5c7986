//! PyTorch's `test/package/test_digraph.py`, golden text printed by
//! PyTorch 2.13, and properties against a naive reference.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use tpkg_digraph::{DiGraph, NodeNotFound};

fn graph(edges: &[(&str, &str)]) -> DiGraph<()> {
    let mut graph = DiGraph::new();
    for (from, to) in edges {
        graph.add_edge(from, to);
    }
    graph
}

#[test]
fn successors_and_predecessors() {
    let mut g = graph(&[("foo", "bar"), ("foo", "baz")]);
    g.add_node("qux", ());
    assert_eq!(
        g.successors("foo").unwrap().collect::<Vec<_>>(),
        ["bar", "baz"]
    );
    assert_eq!(g.successors("qux").unwrap().count(), 0);
    assert_eq!(g.predecessors("bar").unwrap().collect::<Vec<_>>(), ["foo"]);
    assert_eq!(g.predecessors("qux").unwrap().count(), 0);
}

#[test]
fn absent_nodes_are_errors_with_pytorchs_text() {
    let g = DiGraph::<()>::new();
    let error = g.successors("not in graph").err().unwrap();
    assert_eq!(error, NodeNotFound("not in graph".to_owned()));
    assert_eq!(
        error.to_string(),
        "The node not in graph is not in the digraph."
    );
    assert!(g.predecessors("not in graph").is_err());
    assert!(g.forward_transitive_closure("x").is_err());
    assert!(g.first_path("x").is_err());
}

#[test]
fn node_attributes_are_stored_and_updated_in_place() {
    use tpkg_digraph::{Action, NodeAttributes};
    let mut g: DiGraph = DiGraph::new();
    g.add_node("first", NodeAttributes::default());
    g.add_node(
        "foo",
        NodeAttributes {
            action: Some(Action::Intern),
            is_package: Some(true),
            ..Default::default()
        },
    );
    g.add_node(
        "foo",
        NodeAttributes {
            action: Some(Action::Mock),
            ..Default::default()
        },
    );
    let foo = g.node("foo").unwrap();
    assert_eq!(foo.action, Some(Action::Mock));
    assert_eq!(foo.is_package, Some(true));
    // Re-adding keeps the original insertion position.
    assert_eq!(
        g.nodes().map(|(n, _)| n).collect::<Vec<_>>(),
        ["first", "foo"]
    );
}

#[test]
fn edges_are_a_set() {
    let g = graph(&[("1", "2"), ("2", "3"), ("1", "3"), ("4", "5"), ("1", "2")]);
    let edges: Vec<_> = g.edges().collect();
    assert_eq!(edges, [("1", "2"), ("1", "3"), ("2", "3"), ("4", "5")]);
}

#[test]
fn iteration_and_membership() {
    let mut g = DiGraph::<()>::new();
    for n in ["1", "2", "3"] {
        g.add_node(n, ());
    }
    assert_eq!(
        g.nodes().map(|(n, _)| n).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    assert!(g.contains("1"));
    assert!(!g.contains("nup"));
}

#[test]
fn forward_closure() {
    let g = graph(&[("1", "2"), ("2", "3"), ("5", "4"), ("4", "3")]);
    let set = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<BTreeSet<_>>();
    assert_eq!(
        set(g.forward_transitive_closure("1").unwrap()),
        set(vec!["1", "2", "3"])
    );
    assert_eq!(
        set(g.forward_transitive_closure("4").unwrap()),
        set(vec!["4", "3"])
    );
}

/// Closures and paths work for real module names; PyTorch's iterate the
/// characters of the name.
#[test]
fn multi_character_names() {
    let g = graph(&[
        ("torch", "torch.nn"),
        ("torch.nn", "torch.nn.functional"),
        ("app", "torch"),
    ]);
    assert_eq!(
        g.forward_transitive_closure("torch").unwrap(),
        ["torch", "torch.nn", "torch.nn.functional"]
    );
    assert_eq!(
        g.backward_transitive_closure("torch.nn").unwrap(),
        ["torch.nn", "torch", "app"]
    );
    assert!(
        g.all_paths("app", "torch.nn.functional")
            .unwrap()
            .contains("\"app\" -> \"torch\";")
    );
}

const EMPTY_DOT: &str = "digraph G {\nrankdir = LR;\nnode [shape=box];\n\n}\n";

/// Golden output of PyTorch 2.13's `DiGraph` for `test_all_paths`'s graph.
#[test]
fn all_paths_and_to_dot_equal_pytorch_text() {
    let g = graph(&[
        ("1", "2"),
        ("1", "7"),
        ("7", "8"),
        ("8", "3"),
        ("2", "3"),
        ("5", "4"),
        ("4", "3"),
    ]);
    assert_eq!(
        g.all_paths("1", "3").unwrap(),
        "digraph G {\nrankdir = LR;\nnode [shape=box];\n\"8\" -> \"3\";\n\"2\" -> \"3\";\n\"7\" -> \"8\";\n\"1\" -> \"2\";\n\"1\" -> \"7\";\n}\n"
    );
    assert_eq!(
        g.to_dot(),
        "digraph G {\nrankdir = LR;\nnode [shape=box];\n\"1\" -> \"2\";\n\"1\" -> \"7\";\n\"2\" -> \"3\";\n\"7\" -> \"8\";\n\"8\" -> \"3\";\n\"5\" -> \"4\";\n\"4\" -> \"3\";\n}\n"
    );
    assert_eq!(g.first_path("3").unwrap(), ["1", "2", "3"]);
    // Unreachable: an empty graph (PyTorch returns an empty DiGraph object).
    assert_eq!(g.all_paths("5", "7").unwrap(), EMPTY_DOT);
}

/// PyTorch never returns on these; tpkg does.
#[test]
fn cycles_terminate() {
    let g = graph(&[("root", "a"), ("a", "b"), ("b", "a"), ("b", "c")]);
    assert_eq!(
        g.all_paths("root", "c").unwrap(),
        "digraph G {\nrankdir = LR;\nnode [shape=box];\n\"b\" -> \"c\";\n\"b\" -> \"a\";\n\"a\" -> \"b\";\n\"root\" -> \"a\";\n}\n"
    );
    let cycle = graph(&[("a", "b"), ("b", "a")]);
    assert_eq!(cycle.first_path("a").unwrap(), ["b", "a"]);
}

/// Random graphs over a few names, as insertion-ordered edge lists.
fn edges() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop::sample::select(vec!["a", "b", "c", "dd", "e.f", "g", "hh.i"]);
    prop::collection::vec((name.clone(), name), 0..25).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(u, v)| (u.to_owned(), v.to_owned()))
            .collect()
    })
}

/// The naive reference: a deduplicated edge list and a node list.
struct Naive {
    nodes: Vec<String>,
    edges: Vec<(String, String)>,
}

impl Naive {
    fn new(input: &[(String, String)]) -> Self {
        let mut naive = Naive {
            nodes: vec![],
            edges: vec![],
        };
        for (u, v) in input {
            for n in [u, v] {
                if !naive.nodes.contains(n) {
                    naive.nodes.push(n.clone());
                }
            }
            if !naive.edges.contains(&(u.clone(), v.clone())) {
                naive.edges.push((u.clone(), v.clone()));
            }
        }
        naive
    }

    fn reach(&self, src: &str, forward: bool) -> BTreeSet<String> {
        let mut reached = BTreeSet::from([src.to_owned()]);
        loop {
            let before = reached.len();
            for (u, v) in &self.edges {
                let (from, to) = if forward { (u, v) } else { (v, u) };
                if reached.contains(from) {
                    reached.insert(to.clone());
                }
            }
            if reached.len() == before {
                return reached;
            }
        }
    }
}

proptest! {
    #[test]
    fn agrees_with_a_naive_reference(input in edges()) {
        let mut g = DiGraph::<()>::new();
        for (u, v) in &input {
            g.add_edge(u, v);
        }
        let naive = Naive::new(&input);
        prop_assert_eq!(g.nodes().map(|(n, _)| n.to_owned()).collect::<Vec<_>>(), naive.nodes.clone());
        // Edges: nodes in insertion order, then each node's edges in order.
        let expected_edges: Vec<(String, String)> = naive
            .nodes
            .iter()
            .flat_map(|n| naive.edges.iter().filter(move |(u, _)| u == n).cloned())
            .collect();
        let edges: Vec<(String, String)> =
            g.edges().map(|(u, v)| (u.to_owned(), v.to_owned())).collect();
        prop_assert_eq!(edges, expected_edges);
        for n in &naive.nodes {
            let successors: Vec<&str> = g.successors(n).unwrap().collect();
            let expected: Vec<&str> =
                naive.edges.iter().filter(|(u, _)| u == n).map(|(_, v)| v.as_str()).collect();
            prop_assert_eq!(successors, expected);
            let predecessors: Vec<&str> = g.predecessors(n).unwrap().collect();
            let expected: Vec<&str> =
                naive.edges.iter().filter(|(_, v)| v == n).map(|(u, _)| u.as_str()).collect();
            prop_assert_eq!(predecessors, expected);

            let forward: BTreeSet<String> =
                g.forward_transitive_closure(n).unwrap().into_iter().map(str::to_owned).collect();
            prop_assert_eq!(forward, naive.reach(n, true));
            let backward: BTreeSet<String> =
                g.backward_transitive_closure(n).unwrap().into_iter().map(str::to_owned).collect();
            prop_assert_eq!(backward, naive.reach(n, false));

            // first_path ends at n, starts at a node without predecessors or
            // on a cycle, and follows real edges.
            let path = g.first_path(n).unwrap();
            prop_assert_eq!(*path.last().unwrap(), n.as_str());
            for pair in path.windows(2) {
                prop_assert!(naive.edges.contains(&(pair[0].to_owned(), pair[1].to_owned())));
            }
            let unique: HashSet<&&str> = path.iter().collect();
            prop_assert_eq!(unique.len(), path.len());
        }
        for src in &naive.nodes {
            for dst in &naive.nodes {
                // all_paths: exactly the edges u -> v with u reachable from
                // src and v reaching dst (v itself reachable from src).
                let forward = naive.reach(src, true);
                let expected: BTreeSet<(String, String)> = naive
                    .edges
                    .iter()
                    .filter(|(u, v)| {
                        forward.contains(u) && forward.contains(v) && naive.reach(v, true).contains(dst)
                    })
                    .cloned()
                    .collect();
                let expected = if forward.contains(dst) { expected } else { BTreeSet::new() };
                let paths = g.all_paths_graph(src, dst).unwrap();
                let actual: BTreeSet<(String, String)> =
                    paths.edges().map(|(u, v)| (u.to_owned(), v.to_owned())).collect();
                prop_assert_eq!(actual, expected, "{} -> {}", src, dst);
            }
        }
    }
}
