//! `pretty` on graphs built by hand: depth, width, item limits, module
//! trees, cycles and tensor text.

use tpkg_pickle::{Extra, PyStr, Value, ValueGraph, ValueId};
use tpkg_tensors::{DType, StorageRef, TensorSpec};

use super::build::tensor_text;
use super::{PrettyOptions, pretty};

fn text(graph: &mut ValueGraph, s: &str) -> ValueId {
    graph.add(Value::Str(PyStr::from(s)))
}

/// `[[['abcdefghijklmnop']]]`: three levels of lists.
fn nested() -> ValueGraph {
    let mut graph = ValueGraph::new(Value::None);
    let leaf = text(&mut graph, "abcdefghijklmnop");
    let inner = graph.add(Value::List(vec![leaf]));
    let middle = graph.add(Value::List(vec![inner]));
    let outer = graph.add(Value::List(vec![middle]));
    graph.set_root(outer);
    graph
}

#[test]
fn depth_counts_what_it_leaves_out() {
    let graph = nested();
    let options = PrettyOptions::default();
    assert_eq!(pretty(&graph, &options), "[[['abcdefghijklmnop']]]");
    assert_eq!(
        pretty(&graph, &options.clone().with_depth(2)),
        "[[[... 1 item]]]"
    );
    assert_eq!(pretty(&graph, &options.with_depth(0)), "[... 1 item]");
}

#[test]
fn short_values_past_the_depth_are_written_out() {
    let mut graph = ValueGraph::new(Value::None);
    let three = graph.add(Value::Int(3));
    let pair = graph.add(Value::Tuple(vec![three, three]));
    let list = graph.add(Value::List(vec![pair]));
    graph.set_root(list);
    let options = PrettyOptions::default().with_depth(1);
    // `(3, 3)` is shorter than `(... 2 items)`.
    assert_eq!(pretty(&graph, &options), "[(3, 3)]");
}

#[test]
fn long_containers_are_cut_with_a_count() {
    let mut graph = ValueGraph::new(Value::None);
    let items: Vec<ValueId> = (0..250).map(|i| graph.add(Value::Int(i))).collect();
    let list = graph.add(Value::List(items));
    graph.set_root(list);
    let options = PrettyOptions::default().with_max_items(10);
    assert_eq!(
        pretty(&graph, &options),
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 240 more]"
    );
    let full = pretty(&graph, &options.clone().with_full(true));
    assert!(full.contains("248, 249,\n]"), "{full}");
    assert!(!full.contains("more"), "{full}");
    let narrow = pretty(&graph, &options.with_width(20));
    assert_eq!(
        narrow,
        "[\n  0, 1, 2, 3, 4, 5,\n  6, 7, 8, 9,\n  ... 240 more\n]"
    );
}

#[test]
fn width_decides_what_stays_on_one_line() {
    let mut graph = ValueGraph::new(Value::None);
    let key = text(&mut graph, "key");
    let value = text(&mut graph, "value");
    let dict = graph.add(Value::Dict(vec![(key, value), (value, key)]));
    graph.set_root(dict);
    let one_line = "{'key': 'value', 'value': 'key'}";
    let options = PrettyOptions::default();
    assert_eq!(pretty(&graph, &options.clone().with_width(32)), one_line);
    assert_eq!(
        pretty(&graph, &options.with_width(31)),
        "{\n  'key': 'value',\n  'value': 'key',\n}"
    );
}

/// A module as `torch.save` pickles it: an object whose state holds
/// `training`, `_parameters`, `_buffers`, `_modules` and the hooks.
fn module(graph: &mut ValueGraph, class: &str, fields: Vec<(&str, ValueId)>) -> ValueId {
    let (module, name) = class.rsplit_once('.').unwrap();
    let class = graph.add(Value::Global {
        module: module.to_owned(),
        name: name.to_owned(),
    });
    let args = graph.add(Value::Tuple(vec![]));
    let training = graph.add(Value::Bool(true));
    let hooks = graph.add(Value::OrderedDict {
        items: vec![],
        state: None,
    });
    let mut items = vec![(text(graph, "training"), training)];
    for (key, value) in [("_forward_hooks", hooks)].into_iter().chain(fields) {
        items.push((text(graph, key), value));
    }
    let state = graph.add(Value::Dict(items));
    graph.add(Value::Object {
        class,
        args,
        kwargs: None,
        extra: Box::new(Extra {
            state: Some(state),
            ..Extra::default()
        }),
    })
}

fn two_layers() -> ValueGraph {
    let mut graph = ValueGraph::new(Value::None);
    let empty = graph.add(Value::Dict(vec![]));
    let none = graph.add(Value::None);
    let four = graph.add(Value::Int(4));
    let mut modules = Vec::new();
    for name in ["a", "b"] {
        let bias = text(&mut graph, "bias");
        let params = graph.add(Value::Dict(vec![(bias, none)]));
        let layer = module(
            &mut graph,
            "torch.nn.modules.linear.Linear",
            vec![
                ("_parameters", params),
                ("_buffers", empty),
                ("_modules", empty),
                ("in_features", four),
            ],
        );
        modules.push((text(&mut graph, name), layer));
    }
    let children = graph.add(Value::Dict(modules));
    let root = module(
        &mut graph,
        "torch.nn.modules.container.Sequential",
        vec![
            ("_parameters", empty),
            ("_buffers", empty),
            ("_modules", children),
        ],
    );
    graph.set_root(root);
    graph
}

#[test]
fn modules_are_their_module_tree() {
    let graph = two_layers();
    let options = PrettyOptions::default();
    assert_eq!(
        pretty(&graph, &options),
        "torch.nn.modules.container.Sequential(a: Linear(in_features=4), b: Linear(in_features=4))"
    );
    assert_eq!(
        pretty(&graph, &options.clone().with_width(60)),
        "torch.nn.modules.container.Sequential(\n  a: Linear(in_features=4)\n  b: Linear(in_features=4)\n)"
    );
    // The value shown keeps one item per line at any depth.
    assert_eq!(
        pretty(&graph, &options.clone().with_depth(1).with_width(60)),
        "torch.nn.modules.container.Sequential(\n  a: Linear(...)\n  b: Linear(...)\n)"
    );
    assert_eq!(
        pretty(&graph, &options.clone().with_depth(0)),
        "torch.nn.modules.container.Sequential(... 2 modules)"
    );
    let full = pretty(&graph, &options.with_full(true));
    for internal in [
        "training=True",
        "_forward_hooks=OrderedDict()",
        "bias: None",
    ] {
        assert!(full.contains(internal), "{internal} in {full}");
    }
}

#[test]
fn a_module_whose_submodules_are_hidden_is_cut_at_the_width() {
    let mut graph = two_layers();
    let root = graph.root();
    let list = graph.add(Value::List(vec![root]));
    graph.set_root(list);
    let options = PrettyOptions::default().with_depth(2);
    assert_eq!(
        pretty(&graph, &options.clone().with_width(68)),
        "[\n  torch.nn.modules.container.Sequential(a: Linear(...), ... 1 more),\n]"
    );
    assert_eq!(
        pretty(&graph, &options.clone().with_width(67)),
        "[\n  torch.nn.modules.container.Sequential(... 2 more),\n]"
    );
    // Written out in full, it breaks instead.
    assert_eq!(
        pretty(&graph, &options.with_width(67).with_full(true)),
        "[\n  torch.nn.modules.container.Sequential(\n    a: Linear(...)\n    b: Linear(...)\n    \
         training=True\n    _forward_hooks=OrderedDict()\n  ),\n]"
    );
}

#[test]
fn a_cycle_is_named_not_followed() {
    let mut graph = ValueGraph::new(Value::None);
    let list = graph.add(Value::List(vec![]));
    if let Value::List(items) = graph.get_mut(list) {
        items.push(list);
    }
    graph.set_root(list);
    assert_eq!(pretty(&graph, &PrettyOptions::default()), "[<cycle>]");
}

#[test]
fn tensors_name_offset_and_strides_only_when_not_the_default() {
    let spec = |offset, stride: Vec<u64>| TensorSpec {
        storage: StorageRef {
            key: "7".to_owned(),
            dtype: DType::Float32,
            location: "cpu".to_owned(),
            numel: 100,
            view: None,
        },
        dtype: DType::Float32,
        storage_offset: offset,
        shape: vec![2, 3],
        stride,
        requires_grad: false,
        parameter: false,
    };
    assert_eq!(
        tensor_text(&spec(0, vec![3, 1])),
        "tensor(float32[2, 3], storage 7)"
    );
    assert_eq!(
        tensor_text(&spec(5, vec![1, 2])),
        "tensor(float32[2, 3], storage 7, offset 5, stride (1, 2))"
    );
}
