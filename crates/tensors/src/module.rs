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

/// If `id` is a pickled `nn.Module` (an object whose state holds
/// `_parameters`, `_buffers` and `_modules`): its class as
/// `module.qualname`, and its state (`__dict__`).
pub fn module_state(graph: &ValueGraph, id: ValueId) -> Option<(String, ValueId)> {
    let Value::Object { class, extra, .. } = graph.get(id) else {
        return None;
    };
    let state = extra.state?;
    for key in ["_parameters", "_buffers", "_modules"] {
        dict_get(graph, state, key)?;
    }
    let Value::Global { module, name } = graph.get(*class) else {
        return None;
    };
    Some((format!("{module}.{name}"), state))
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
