//! Storage renumbering: the exporter numbers storages across the whole
//! package, as PyTorch's storage context does.

/// A numeric storage key moved up by `base` (other keys are kept).
pub(super) fn renumbered(key: &str, base: u64) -> String {
    match key.parse::<u64>() {
        Ok(n) => (n + base).to_string(),
        Err(_) => key.to_owned(),
    }
}

/// Moves every `("storage", type, key, location, numel)` persistent id's
/// numeric key up by `base`. A key node shared by several tensors of one
/// storage is moved once.
pub(super) fn renumber_storages(graph: &mut tpkg_pickle::ValueGraph, base: u64) {
    use tpkg_pickle::{PyStr, Value};
    if base == 0 {
        return;
    }
    for key in crate::tensors::storage_key_nodes(graph) {
        // PyTorch writes integer keys; strings are accepted too.
        let new = match graph.get(key) {
            Value::Int(n) => Value::Int(n.saturating_add(i64::try_from(base).unwrap_or(i64::MAX))),
            Value::Str(text) => match text.as_str() {
                Some(text) => Value::Str(PyStr::from(renumbered(text, base).as_str())),
                None => continue,
            },
            _ => continue,
        };
        *graph.get_mut(key) = new;
    }
}
