//! `tpkg graph`: a file's module dependency graph as DOT (PyTorch's
//! `dependency_graph_string()` text) or as SVG laid out by `layout-rs`, so
//! no system Graphviz is needed. The graph itself is built by the facade
//! (`tpkg::graph`); this module only renders and writes it.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;
use tpkg::graph::{DependencyGraph, DotOptions, DotStyle, NodeKind};

/// `tpkg graph --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT text, as PyTorch's `dependency_graph_string()`.
    Dot,
    /// An SVG picture (laid out without Graphviz).
    Svg,
}

/// What `tpkg graph` was asked for.
pub struct GraphArgs<'a> {
    /// The file.
    pub package: &'a Path,
    /// DOT or SVG.
    pub format: GraphFormat,
    /// Where to write (atomically); standard output when `None`.
    pub output: Option<&'a Path>,
    /// DOT without node attributes: PyTorch's text byte for byte.
    pub plain: bool,
    /// Extern modules merged into their top-level package.
    pub collapse_extern: bool,
    /// Only nodes within this many edges of the pickles.
    pub depth: Option<usize>,
    /// fsync the output or not.
    pub durability: tpkg::archive::Durability,
}

/// The font size of node labels in the SVG (one size: layout-rs keeps
/// font classes in a hash map, and one class keeps its output stable).
const FONT_SIZE: usize = 14;

/// Graphs with more edges are laid out without layout-rs's crossing
/// reduction, which grows much faster than the graph (resnet18's 249 edges:
/// 4 s instead of 0.2 s, optimised build).
const MAX_OPTIMIZED_EDGES: usize = 200;

pub fn run(args: GraphArgs<'_>) -> anyhow::Result<()> {
    let mut graph = tpkg::graph::graph_path(args.package)?;
    if args.collapse_extern {
        graph = graph.collapse_externs();
    }
    if let Some(depth) = args.depth {
        graph = graph.within_depth(depth);
    }
    for warning in graph.warnings() {
        eprintln!("tpkg: warning: {}: {warning}", args.package.display());
    }
    let text = match args.format {
        GraphFormat::Dot => graph.to_dot(&DotOptions {
            style: if args.plain {
                DotStyle::Plain
            } else {
                DotStyle::Styled
            },
        }),
        GraphFormat::Svg => svg(&graph),
    };
    match args.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Some(path) => {
            let write = || -> std::io::Result<()> {
                let mut file = tpkg::archive::AtomicFile::create(path, args.durability)?;
                file.write_all(text.as_bytes())?;
                file.commit()?;
                Ok(())
            };
            write().with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

fn look(kind: NodeKind) -> StyleAttr {
    let line = match kind {
        NodeKind::Missing => Color::fast("red"),
        _ => Color::fast("black"),
    };
    StyleAttr::new(line, 1, Color::from_name(kind.fill()), 0, FONT_SIZE)
}

fn element(label: &str, kind: NodeKind) -> Element {
    let shape = ShapeKind::new_box(label);
    let size = get_shape_size(Orientation::LeftToRight, &shape, FONT_SIZE, false);
    Element::create(shape, look(kind), Orientation::LeftToRight, size)
}

/// The graph laid out left to right, one box per node filled by kind,
/// and a legend: one box per kind present, unconnected, so the layout
/// stacks them in the first column.
fn svg(graph: &DependencyGraph) -> String {
    let mut visual = VisualGraph::new(Orientation::LeftToRight);
    let handles: Vec<_> = graph
        .nodes()
        .iter()
        .map(|node| visual.add_node(element(&node.name, node.kind)))
        .collect();
    // The arrows' look has the labels' font size: layout-rs writes one CSS
    // class per font size, in hash-map order.
    let look = StyleAttr::new(Color::fast("black"), 1, None, 0, FONT_SIZE);
    for &(from, to) in graph.edges() {
        let edge = Arrow::new(
            LineEndKind::None,
            LineEndKind::Arrow,
            LineStyleKind::Normal,
            "",
            &look,
            &None,
            &None,
        );
        visual.add_edge(edge, handles[from], handles[to]);
    }
    let present: Vec<NodeKind> = NodeKind::ALL
        .into_iter()
        .filter(|kind| graph.nodes().iter().any(|node| node.kind == *kind))
        .collect();
    for kind in present {
        visual.add_node(element(&format!("legend: {kind}"), kind));
    }
    if visual.num_nodes() == 0 {
        // layout-rs cannot lay out an empty graph.
        visual.add_node(element("(no modules and no pickles)", NodeKind::Extern));
    }
    let mut writer = SVGWriter::new();
    // layout-rs's crossing reduction takes minutes past a few hundred
    // edges (and cannot make such a graph readable anyway).
    let skip_crossing_reduction = graph.edges().len() > MAX_OPTIMIZED_EDGES;
    visual.do_it(false, skip_crossing_reduction, false, &mut writer);
    writer.finalize()
}
