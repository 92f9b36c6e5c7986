//! `tpkg graph`: DOT snapshots of corpus files, SVG that parses and labels
//! every node, errors on bad input, and (feature `oracle`) a torchvision
//! resnet18 package whose graph equals PyTorch's own
//! `dependency_graph_string()`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root: commands run there with relative paths, so no
/// absolute path can reach a snapshot.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tpkg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the tpkg binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Runs `tpkg graph ARGS`, which must succeed without warnings.
fn graph(args: &[&str]) -> String {
    let mut all = vec!["graph"];
    all.extend_from_slice(args);
    let output = tpkg(&all);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    assert_eq!(stderr(&output), "", "{args:?}");
    stdout(&output)
}

const CORPUS: &str = "tests/data/corpus/torch-2.13.0";
const GOLDEN: &str = "tests/data/golden/torch-1.10.2";

/// The files every test draws: `(snapshot name, path from the root)`.
fn files() -> [(&'static str, String); 7] {
    [
        ("mocked", format!("{CORPUS}/mocked.pt")),
        (
            "sources_and_resources",
            format!("{CORPUS}/sources_and_resources.pt"),
        ),
        (
            "tiny_whole_module",
            format!("{CORPUS}/tiny_whole_module.pt"),
        ),
        (
            "torchvision_squeezenet",
            format!("{GOLDEN}/torchvision_squeezenet.pt"),
        ),
        ("torchscript_in_package", format!("{GOLDEN}/torchscript.pt")),
        (
            "torch_save_checkpoint",
            format!("{GOLDEN}/torch_save/checkpoint.pt"),
        ),
        (
            "torchscript_file",
            format!("{GOLDEN}/torch_save/torchscript_module.pt"),
        ),
    ]
}

#[test]
fn dot_of_corpus_files() {
    for (name, path) in files() {
        insta::assert_snapshot!(format!("dot_{name}"), graph(&[&path]));
    }
}

#[test]
fn plain_dot_is_the_styled_dot_without_node_lines() {
    for (_, path) in files() {
        let styled = graph(&[&path]);
        let plain = graph(&[&path, "--plain", "--format", "dot"]);
        let without_nodes: Vec<&str> = styled
            .lines()
            .filter(|line| !(line.starts_with('"') && line.contains("\" [shape=")))
            .collect();
        assert_eq!(plain, format!("{}\n", without_nodes.join("\n")), "{path}");
        assert!(plain.starts_with("digraph G {\nrankdir = LR;\nnode [shape=box];\n"));
    }
}

#[test]
fn legacy_and_pickle_files_graph_their_pickles() {
    insta::assert_snapshot!(
        "dot_legacy_checkpoint",
        graph(&[&format!("{GOLDEN}/torch_save/checkpoint_legacy.pt")])
    );
    insta::assert_snapshot!(
        "dot_plain_pickle",
        graph(&[&format!("{GOLDEN}/torch_save/plain.pkl")])
    );
}

/// The node names of a styled DOT text (its `"name" [shape=...];` lines).
fn dot_nodes(dot: &str) -> Vec<String> {
    dot.lines()
        .filter_map(|line| line.split_once("\" [shape="))
        .map(|(name, _)| name.trim_start_matches('"').to_owned())
        .collect()
}

/// The texts of every `<text>` element of an SVG, which must parse.
fn svg_texts(svg: &str) -> Vec<String> {
    let document = roxmltree::Document::parse(svg).expect("the SVG parses as XML");
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .map(|text| {
            text.descendants()
                .filter(|node| node.is_text())
                .filter_map(|node| node.text())
                .collect::<String>()
        })
        .collect()
}

#[test]
fn svg_parses_and_labels_every_node() {
    for (_, path) in files() {
        let names = dot_nodes(&graph(&[&path]));
        assert!(!names.is_empty(), "{path}");
        let svg = graph(&[&path, "--format", "svg"]);
        let texts = svg_texts(&svg);
        for name in &names {
            assert!(texts.contains(name), "{path}: no <text> for {name}");
        }
        assert!(texts.iter().any(|text| text.starts_with("legend: ")));
        // Deterministic: the same picture every time.
        assert_eq!(svg, graph(&[&path, "--format", "svg"]), "{path}");
    }
}

#[test]
fn output_file_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = format!("{CORPUS}/tiny_whole_module.pt");
    let out = dir.path().join("graph.dot");
    let output = tpkg(&["graph", &path, "-o", out.to_str().unwrap(), "--no-fsync"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), graph(&[&path]));
    let svg = dir.path().join("graph.svg");
    let output = tpkg(&[
        "graph",
        &path,
        "--format",
        "svg",
        "--output",
        svg.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    svg_texts(&std::fs::read_to_string(&svg).unwrap());
    // Only the targets: no temporary file left beside them.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn depth_and_collapse_shrink_the_graph() {
    let path = format!("{GOLDEN}/torchvision_squeezenet.pt");
    let edges = |dot: &str| -> BTreeSet<String> {
        dot.lines()
            .filter(|line| line.contains(" -> "))
            .map(str::to_owned)
            .collect()
    };
    let full = edges(&graph(&[&path]));
    let depth1 = edges(&graph(&[&path, "--depth", "1"]));
    // The pickles' modules, and the edges between them; nothing further.
    assert!(depth1.contains("\"torchvision.models.squeezenet\" -> \"torch\";"));
    assert!(
        !depth1
            .iter()
            .any(|edge| edge.contains("_internally_replaced_utils"))
    );
    assert!(depth1.is_subset(&full) && depth1.len() < full.len());
    let collapsed = graph(&[&path, "--collapse-extern"]);
    assert!(collapsed.contains("\"torchvision.models.squeezenet\" -> \"torch\";"));
    assert!(!collapsed.contains("\"torch.nn\""), "{collapsed}");
    let roots = graph(&[&path, "--depth", "0", "--plain"]);
    assert_eq!(
        roots,
        "digraph G {\nrankdir = LR;\nnode [shape=box];\n\n}\n"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a PyTorch file\n").unwrap();
    let missing = dir.path().join("missing.pt");
    let big_endian = root().join("tests/data/hostile/legacy_big_endian.pt");
    for (path, reason) in [
        (&text, "not a zip archive"),
        (&missing, "No such file"),
        (&big_endian, "big-endian"),
    ] {
        let output = tpkg(&["graph", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1));
        let message = stderr(&output);
        assert!(message.starts_with("tpkg: error: "), "{message}");
        assert!(message.contains(path.to_str().unwrap()), "{message}");
        assert!(message.contains(reason), "{message}");
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn damaged_records_are_warnings() {
    // A package whose pickle is cut short and whose source does not parse.
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("pkg");
    std::fs::create_dir_all(package.join(".data")).unwrap();
    std::fs::create_dir_all(package.join("model")).unwrap();
    std::fs::write(package.join(".data/extern_modules"), "collections\n").unwrap();
    std::fs::write(package.join(".data/version"), "6\n").unwrap();
    // GLOBAL collections OrderedDict, then the pickle ends.
    std::fs::write(
        package.join("model/m.pkl"),
        b"\x80\x03ccollections\nOrderedDict\nq\x00",
    )
    .unwrap();
    std::fs::write(package.join("broken.py"), "def (:\n").unwrap();
    let output = tpkg(&["graph", package.to_str().unwrap(), "--plain"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "digraph G {\nrankdir = LR;\nnode [shape=box];\n\"<model.m.pkl>\" -> \"collections\";\n}\n"
    );
    let warnings = stderr(&output);
    assert!(
        warnings.contains("tpkg: warning: ") && warnings.contains("model/m.pkl: does not decode"),
        "{warnings}"
    );
    assert!(warnings.contains("broken.py: invalid syntax"), "{warnings}");
}

/// Packages torchvision's resnet18 as PyTorch's `test/package/test_model.py`
/// does, prints `dependency_graph_string()`.
#[cfg(feature = "oracle")]
const PACK_RESNET18: &str = r#"
import sys, warnings
warnings.filterwarnings("ignore")
from torch.package import PackageExporter
from torchvision.models import resnet18
with PackageExporter(sys.argv[1]) as exporter:
    exporter.intern("torchvision.**")
    exporter.extern("**")
    exporter.save_pickle("model", "model.pkl", resnet18())
    dot = exporter.dependency_graph_string()
sys.stdout.write(dot)
"#;

/// Issue 22: the resnet18 package renders as SVG naming its key modules,
/// and its DOT equals PyTorch's own graph of the same packaging, byte for
/// byte (the edges and their order).
#[test]
#[cfg(feature = "oracle")]
fn resnet18_package_graph_equals_pytorchs() {
    let python = root().join(env!("TPKG_ORACLE_PYTHON"));
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("resnet18.pt");
    let packed = Command::new(&python)
        .args(["-c", PACK_RESNET18, package.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(packed.status.success(), "{}", stderr(&packed));
    let pytorch = stdout(&packed);

    let package = package.to_str().unwrap();
    let ours = graph(&[package, "--plain"]);
    let edge_set = |dot: &str| -> BTreeSet<String> {
        dot.lines()
            .filter(|line| line.contains(" -> "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(edge_set(&ours), edge_set(&pytorch));
    assert_eq!(ours, pytorch);

    let styled = graph(&[package]);
    assert!(styled.contains(
        "\"torchvision.models.resnet\" [shape=box, style=filled, fillcolor=\"#9ecae1\"];"
    ));
    assert!(
        styled.contains(
            "\"torch.nn.modules.conv\" [shape=box, style=filled, fillcolor=\"#d9d9d9\"];"
        )
    );
    assert!(styled.contains("\"<model.model.pkl>\" [shape=note"));

    let svg = graph(&[package, "--format", "svg"]);
    let texts = svg_texts(&svg);
    for name in [
        "<model.model.pkl>",
        "torchvision.models.resnet",
        "torch.nn.modules.conv",
    ] {
        assert!(
            texts.iter().any(|text| text == name),
            "no <text> for {name}"
        );
    }
    for name in dot_nodes(&styled) {
        assert!(texts.contains(&name), "no <text> for {name}");
    }
}
