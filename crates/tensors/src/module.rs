//! Whole pickled `nn.Module`s and their state dicts.

use std::collections::HashSet;

use tpkg_pickle::{Value, ValueGraph, ValueId};

/// Deepest module nesting followed.
const MAX_MODULE_DEPTH: usize = 1000;

fn dict_items(graph: &ValueGraph, id: ValueId) -> Option<&[(ValueId, ValueId)]> {
    match graph.get(id) {
        Value::Dict(items) | Value::OrderedDict { items, .. } => Some(items),
        _ => None,
    }
}

fn dict_get(graph: &ValueGraph, id: ValueId, key: &str) -> Option<ValueId> {
    dict_items(graph, id)?
        .iter()
        .find(|(k, _)| graph.get(*k).as_str() == Some(key))
        .map(|(_, v)| *v)
}

/// If `id` is a pickled `nn.Module`: its class as `module.qualname`, and
/// its state (`__dict__`, holding `_parameters`, `_buffers` and
/// `_modules`).
///
/// Besides an object with that state, an fx `GraphModule` counts: it
/// pickles as a call whose first argument is its `__dict__`
/// (`torch.fx.graph_module.reduce_graph_module(body, import_block)` from
/// `torch.save`, `reduce_deploy_graph_module`, and in a torch.package the
/// persistent id `('reduce_package', id, reduce_package_graph_module,
/// (body, generated_module_name))`); its class is then
/// `torch.fx.graph_module.GraphModule`.
pub fn module_state(graph: &ValueGraph, id: ValueId) -> Option<(String, ValueId)> {
    let (class, state) = match graph.get(id) {
        Value::Object { class, extra, .. } => {
            let Value::Global { module, name } = graph.get(*class) else {
                return None;
            };
            (format!("{module}.{name}"), extra.state?)
        }
        Value::Reduce { callable, args, .. } => graph_module_body(graph, *callable, *args)?,
        Value::PersistentId(pid) => match graph.get(*pid) {
            Value::Tuple(fields) => match fields.as_slice() {
                [kind, _, callable, args]
                    if graph.get(*kind).as_str() == Some("reduce_package") =>
                {
                    graph_module_body(graph, *callable, *args)?
                }
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    for key in ["_parameters", "_buffers", "_modules"] {
        dict_get(graph, state, key)?;
    }
    Some((class, state))
}

/// fx's functions that rebuild a `GraphModule` from its `__dict__`, their
/// first argument.
const GRAPH_MODULE_REBUILDERS: &[&str] = &[
    "reduce_graph_module",
    "reduce_deploy_graph_module",
    "reduce_package_graph_module",
];

/// `(GraphModule's class, its body)` if `callable(*args)` rebuilds an fx
/// `GraphModule`.
fn graph_module_body(
    graph: &ValueGraph,
    callable: ValueId,
    args: ValueId,
) -> Option<(String, ValueId)> {
    let Value::Global { module, name } = graph.get(callable) else {
        return None;
    };
    if module != "torch.fx.graph_module" || !GRAPH_MODULE_REBUILDERS.contains(&name.as_str()) {
        return None;
    }
    let Value::Tuple(items) = graph.get(args) else {
        return None;
    };
    Some((
        "torch.fx.graph_module.GraphModule".to_owned(),
        *items.first()?,
    ))
}

/// The module's `state_dict()`: keys and values in PyTorch's order —
/// parameters, then buffers not in `_non_persistent_buffers_set`, then each
/// submodule's, recursively, with `None` entries skipped.
pub fn state_dict(graph: &ValueGraph, state: ValueId) -> Vec<(String, ValueId)> {
    let mut out = Vec::new();
    collect(graph, state, "", &mut out, 0);
    out
}

fn collect(
    graph: &ValueGraph,
    state: ValueId,
    prefix: &str,
    out: &mut Vec<(String, ValueId)>,
    depth: usize,
) {
    if depth > MAX_MODULE_DEPTH {
        return;
    }
    let non_persistent: HashSet<&str> = dict_get(graph, state, "_non_persistent_buffers_set")
        .map(|set| match graph.get(set) {
            Value::Set(members) | Value::FrozenSet(members) => members
                .iter()
                .filter_map(|m| graph.get(*m).as_str())
                .collect(),
            _ => HashSet::new(),
        })
        .unwrap_or_default();
    for (field, skip_non_persistent) in [("_parameters", false), ("_buffers", true)] {
        let Some(items) = dict_get(graph, state, field).and_then(|d| dict_items(graph, d)) else {
            continue;
        };
        for (key, value) in items {
            let Some(name) = graph.get(*key).as_str() else {
                continue;
            };
            if matches!(graph.get(*value), Value::None)
                || (skip_non_persistent && non_persistent.contains(name))
            {
                continue;
            }
            out.push((format!("{prefix}{name}"), *value));
        }
    }
    if let Some(items) = dict_get(graph, state, "_modules").and_then(|d| dict_items(graph, d)) {
        for (key, child) in items {
            let Some(name) = graph.get(*key).as_str() else {
                continue;
            };
            if let Some((_, child_state)) = module_state(graph, *child) {
                collect(
                    graph,
                    child_state,
                    &format!("{prefix}{name}."),
                    out,
                    depth + 1,
                );
            }
        }
    }
}
