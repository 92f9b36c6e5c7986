//! Finding every tensor reachable in a pickled value, with its path.

use tpkg_pickle::{Value, ValueGraph, ValueId, python_repr};

use crate::error::TensorError;
use crate::module::{module_state, state_dict};
use crate::spec::{TensorSpec, tensor_spec};

/// Deepest nesting followed.
const MAX_DEPTH: usize = 1000;

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{path}.{part}")
    }
}

/// Every tensor reachable from the root through dicts, lists, tuples and
/// `nn.Module` state dicts, in order, with its path: dict keys (non-string
/// keys by their Python repr) and list indexes joined with `.`, a module's
/// tensors by their state-dict key (as in the corpus manifests). A value
/// reached twice is listed twice; cycles are followed once.
pub fn find_tensors(graph: &ValueGraph) -> Result<Vec<(String, TensorSpec)>, TensorError> {
    let mut found = Vec::new();
    let mut on_path = Vec::new();
    walk(graph, graph.root(), String::new(), &mut on_path, &mut found)?;
    Ok(found)
}

fn walk(
    graph: &ValueGraph,
    id: ValueId,
    path: String,
    on_path: &mut Vec<ValueId>,
    found: &mut Vec<(String, TensorSpec)>,
) -> Result<(), TensorError> {
    if on_path.contains(&id) || on_path.len() > MAX_DEPTH {
        return Ok(());
    }
    if let Some(spec) = tensor_spec(graph, id, &path)? {
        found.push((path, spec));
        return Ok(());
    }
    on_path.push(id);
    if let Some((_, state)) = module_state(graph, id) {
        for (key, value) in state_dict(graph, state) {
            if let Some(spec) = tensor_spec(graph, value, &join(&path, &key))? {
                found.push((join(&path, &key), spec));
            }
        }
    } else {
        match graph.get(id) {
            Value::List(items) | Value::Tuple(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(
                        graph,
                        *item,
                        join(&path, &index.to_string()),
                        on_path,
                        found,
                    )?;
                }
            }
            Value::Dict(items) | Value::OrderedDict { items, .. } => {
                for (key, value) in items {
                    let key = match graph.get(*key) {
                        Value::Str(text) => text.to_string_lossy(),
                        _ => python_repr(graph, *key),
                    };
                    walk(graph, *value, join(&path, &key), on_path, found)?;
                }
            }
            _ => {}
        }
    }
    on_path.pop();
    Ok(())
}
