//! Whole pickled `nn.Module`s and their state dicts.

use std::collections::HashSet;

use tpkg_pickle::{Value, ValueGraph, ValueId};

/// Deepest module nesting followed.
const MAX_MODULE_DEPTH: usize = 1000;

/// Budget units per unit of a graph's [`weight`](Budget::weight).
pub const BUDGET_PER_WEIGHT: u64 = 64;

/// Budget units every walk may spend, whatever the graph's size.
pub const BUDGET_BASE: u64 = 65_536;

/// Bytes of text (paths, keys) that cost one budget unit.
const BYTES_PER_UNIT: usize = 16;

/// The work a walk over a value graph may do, in proportion to the
/// graph's size: a walk that writes shared values out at every reference
/// (tensor listings, state dicts, value images) would otherwise be
/// exponential in the input (values sharing each other level after level)
/// or quadratic (a big value referenced many times).
///
/// One unit is one value visited, one item looked at, or 16 bytes of text
/// (a path, a key) written. A walk may spend
/// [`BUDGET_PER_WEIGHT`] × [`weight`](Budget::weight) + [`BUDGET_BASE`]
/// units: honest sharing (tied weights, a list naming one object many
/// times) stays far below it, since every reference is itself part of the
/// weight.
///
/// ```
/// use tpkg_pickle::decode;
/// use tpkg_tensors::module::Budget;
/// // pickle.dumps([1, 2], protocol=2)
/// let graph = decode(b"\x80\x02]q\x00(K\x01K\x02e.").unwrap();
/// assert_eq!(Budget::weight(&graph), 5);
/// let mut budget = Budget::for_graph(&graph);
/// assert_eq!(budget.limit(), 64 * 5 + 65_536);
/// assert!(budget.charge(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    /// A graph's size: its values plus the references between them (a
    /// container's items, a dict's keys and values, a call's parts).
    pub fn weight(graph: &ValueGraph) -> u64 {
        graph
            .iter()
            .map(|(_, value)| {
                1 + match value {
                    Value::List(items)
                    | Value::Tuple(items)
                    | Value::Set(items)
                    | Value::FrozenSet(items)
                    | Value::TorchSize(items) => items.len(),
                    Value::Dict(items) | Value::OrderedDict { items, .. } => 2 * items.len(),
                    Value::Object { extra, .. } | Value::Reduce { extra, .. } => {
                        3 + extra.more_states.len()
                            + extra.list_items.len()
                            + 2 * extra.dict_items.len()
                    }
                    Value::PersistentId(_) => 1,
                    _ => 0,
                } as u64
            })
            .sum()
    }

    /// The budget for walks over `graph`.
    pub fn for_graph(graph: &ValueGraph) -> Self {
        let limit = BUDGET_PER_WEIGHT
            .saturating_mul(Self::weight(graph))
            .saturating_add(BUDGET_BASE);
        Budget { left: limit, limit }
    }

    /// The units this budget started with.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether the budget is spent.
    pub fn is_spent(&self) -> bool {
        self.left == 0
    }

    /// Charges one unit, and one more per 16 bytes of `text_bytes`; false
    /// once the budget is spent.
    pub fn charge(&mut self, text_bytes: usize) -> bool {
        let cost = 1 + (text_bytes / BYTES_PER_UNIT) as u64;
        match self.left.checked_sub(cost) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.left = 0;
                false
            }
        }
    }
}

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

/// Bytes of work that telling what `id` is costs a walk, for it to
/// charge: [`module_state`] reads an object's state items and writes its
/// class name; the rebuild-function test writes a call's function name.
pub(crate) fn lookup_bytes(graph: &ValueGraph, id: ValueId) -> usize {
    let name_len = |global: ValueId| match graph.get(global) {
        Value::Global { module, name } => module.len() + name.len(),
        _ => 0,
    };
    match graph.get(id) {
        Value::Object { class, extra, .. } => {
            let items = extra
                .state
                .and_then(|state| dict_items(graph, state))
                .map_or(0, <[_]>::len);
            BYTES_PER_UNIT * items + name_len(*class)
        }
        Value::Reduce { callable, .. } => name_len(*callable),
        _ => 0,
    }
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
/// submodule's, recursively, with `None` entries skipped. A submodule
/// reached twice is listed twice, as PyTorch lists it; the listing stops
/// where a fresh [`Budget`] for the graph runs out ([`state_dict_within`]
/// says so instead).
pub fn state_dict(graph: &ValueGraph, state: ValueId) -> Vec<(String, ValueId)> {
    let mut out = Vec::new();
    let mut budget = Budget::for_graph(graph);
    let _ = collect(graph, state, "", &mut out, 0, &mut budget);
    out
}

/// [`state_dict`], charging its work to `budget`; `None` once the budget
/// runs out (modules sharing submodules level after level expand
/// exponentially).
pub fn state_dict_within(
    graph: &ValueGraph,
    state: ValueId,
    budget: &mut Budget,
) -> Option<Vec<(String, ValueId)>> {
    let mut out = Vec::new();
    collect(graph, state, "", &mut out, 0, budget)?;
    Some(out)
}

fn collect(
    graph: &ValueGraph,
    state: ValueId,
    prefix: &str,
    out: &mut Vec<(String, ValueId)>,
    depth: usize,
    budget: &mut Budget,
) -> Option<()> {
    if depth > MAX_MODULE_DEPTH {
        return Some(());
    }
    // Looking up the three fields reads the state's items.
    let fields = dict_items(graph, state).map_or(0, <[_]>::len);
    if !budget.charge(prefix.len() + BYTES_PER_UNIT * fields) {
        return None;
    }
    let non_persistent: HashSet<&str> = dict_get(graph, state, "_non_persistent_buffers_set")
        .map(|set| match graph.get(set) {
            Value::Set(members) | Value::FrozenSet(members)
                if budget.charge(BYTES_PER_UNIT * members.len()) =>
            {
                members
                    .iter()
                    .filter_map(|m| graph.get(*m).as_str())
                    .collect()
            }
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
            if !budget.charge(prefix.len() + name.len()) {
                return None;
            }
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
            let lookup = lookup_bytes(graph, *child);
            if !budget.charge(prefix.len() + name.len() + lookup) {
                return None;
            }
            if let Some((_, child_state)) = module_state(graph, *child) {
                collect(
                    graph,
                    child_state,
                    &format!("{prefix}{name}."),
                    out,
                    depth + 1,
                    budget,
                )?;
            }
        }
    }
    Some(())
}
