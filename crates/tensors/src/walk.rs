//! Finding every tensor reachable in a pickled value, with its path.

use tpkg_pickle::{Value, ValueGraph, ValueId, python_repr_limited};

use crate::error::TensorError;
use crate::module::{Budget, lookup_bytes, module_state, state_dict_within};
use crate::spec::{StorageIds, TensorSpec, tensor_spec_with};

/// Deepest nesting followed.
const MAX_DEPTH: usize = 1000;

/// Longest repr of a non-string dict key in a path (a key sharing
/// structure could otherwise expand without bound).
const KEY_REPR_LIMIT: usize = 256;

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{path}.{part}")
    }
}

/// Every tensor reachable from the root through dicts, lists, tuples and
/// `nn.Module` state dicts, in order, with its path: dict keys (non-string
/// keys by their Python repr, cut at 256 bytes) and list indexes joined
/// with `.`, a module's tensors by their state-dict key (as in the corpus
/// manifests). A value reached twice is listed twice; cycles are followed
/// once. The walk's work is bounded by the graph's size ([`Budget`]): a
/// pickle whose shared references would make it longer (values sharing
/// each other level after level expand exponentially) is
/// [`TensorError::TooMuchSharing`].
pub fn find_tensors(graph: &ValueGraph) -> Result<Vec<(String, TensorSpec)>, TensorError> {
    find_tensors_with(graph, StorageIds::Zip)
}

/// [`find_tensors`] for a pickle whose storage persistent ids have the
/// layout `ids` ([`StorageIds::Legacy`] for a legacy `torch.save` stream).
pub fn find_tensors_with(
    graph: &ValueGraph,
    ids: StorageIds,
) -> Result<Vec<(String, TensorSpec)>, TensorError> {
    Ok(walk_tensors(graph, ids)?.tensors)
}

/// What a walk over a pickle found: its tensors, and the TorchScript
/// modules whose tensors live in other pickles of the package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Every tensor, with its path ([`find_tensors`]).
    pub tensors: Vec<(String, TensorSpec)>,
    /// Every TorchScript module pickled into a torch.package, by path:
    /// the persistent id `('reduce_package', id,
    /// torch.jit._script.unpackage_script_module, (script_module_id,))`,
    /// whose module PyTorch loads from
    /// `.data/ts_code/<script_module_id>/data.pkl`.
    pub script_modules: Vec<(String, String)>,
}

/// [`find_tensors_with`], also listing the TorchScript modules a
/// torch.package pickle refers to ([`Found::script_modules`]), whose
/// tensors the caller reads from their own pickles.
///
/// ```
/// use tpkg_pickle::decode;
/// use tpkg_tensors::{walk_tensors, StorageIds};
/// // {'m': persistent_id(('reduce_package', 1, unpackage_script_module, ('0',)))}
/// let pickle = b"\x80\x03}X\x01\x00\x00\x00m(X\x0e\x00\x00\x00reduce_packageK\x01ctorch.jit._script\nunpackage_script_module\nX\x01\x00\x00\x000\x85tQs.";
/// let found = walk_tensors(&decode(pickle).unwrap(), StorageIds::Zip).unwrap();
/// assert!(found.tensors.is_empty());
/// assert_eq!(found.script_modules, [("m".to_owned(), "0".to_owned())]);
/// ```
pub fn walk_tensors(graph: &ValueGraph, ids: StorageIds) -> Result<Found, TensorError> {
    let mut found = Found::default();
    let mut walk = Walk {
        graph,
        ids,
        on_path: OnPath::new(graph),
        budget: Budget::for_graph(graph),
    };
    walk.walk(graph.root(), String::new(), &mut found)?;
    Ok(found)
}

/// The values being walked, to spot cycles in constant time.
struct OnPath {
    marked: Vec<bool>,
    depth: usize,
}

impl OnPath {
    fn new(graph: &ValueGraph) -> Self {
        OnPath {
            marked: vec![false; graph.len()],
            depth: 0,
        }
    }

    /// Whether `id` may be entered: not being walked already, and not
    /// past [`MAX_DEPTH`].
    fn can_enter(&self, id: ValueId) -> bool {
        self.depth <= MAX_DEPTH && !self.marked.get(id.index()).copied().unwrap_or(true)
    }

    fn enter(&mut self, id: ValueId) {
        if let Some(mark) = self.marked.get_mut(id.index()) {
            *mark = true;
        }
        self.depth += 1;
    }

    fn leave(&mut self, id: ValueId) {
        if let Some(mark) = self.marked.get_mut(id.index()) {
            *mark = false;
        }
        self.depth -= 1;
    }
}

/// The script module id of a `reduce_package` persistent id naming
/// `torch.jit._script.unpackage_script_module`.
fn packaged_script_module(graph: &ValueGraph, id: ValueId) -> Option<String> {
    let Value::PersistentId(pid) = graph.get(id) else {
        return None;
    };
    let Value::Tuple(fields) = graph.get(*pid) else {
        return None;
    };
    let [kind, _, callable, args] = fields.as_slice() else {
        return None;
    };
    let is_script = matches!(graph.get(*callable),
        Value::Global { module, name } if module == "torch.jit._script" && name == "unpackage_script_module");
    if graph.get(*kind).as_str() != Some("reduce_package") || !is_script {
        return None;
    }
    let Value::Tuple(args) = graph.get(*args) else {
        return None;
    };
    match args.first().map(|arg| graph.get(*arg)) {
        Some(Value::Str(text)) => Some(text.to_string_lossy()),
        Some(Value::Int(number)) => Some(number.to_string()),
        _ => None,
    }
}

struct Walk<'g> {
    graph: &'g ValueGraph,
    ids: StorageIds,
    on_path: OnPath,
    budget: Budget,
}

impl Walk<'_> {
    /// Charges the visit of a value at `path` (and what it lists) to the
    /// budget.
    fn charge(&mut self, bytes: usize) -> Result<(), TensorError> {
        if self.budget.charge(bytes) {
            Ok(())
        } else {
            Err(TensorError::TooMuchSharing {
                nodes: self.graph.len(),
                limit: self.budget.limit(),
            })
        }
    }

    /// Lists a tensor, charging what it holds.
    fn push_tensor(
        &mut self,
        found: &mut Found,
        path: String,
        spec: TensorSpec,
    ) -> Result<(), TensorError> {
        self.charge(path.len() + spec.storage.key.len() + 16 * spec.shape.len())?;
        found.tensors.push((path, spec));
        Ok(())
    }

    /// The tensors of a module that its `state_dict()` does not name: plain
    /// attributes (`self.scale = torch.ones(3)`), containers of tensors or
    /// modules (`self.blocks = [Linear(...)]`), and those of its
    /// submodules, each by attribute path as PyTorch's object gives it.
    fn walk_module_attributes(
        &mut self,
        state: ValueId,
        path: &str,
        found: &mut Found,
    ) -> Result<(), TensorError> {
        let graph = self.graph;
        let (Value::Dict(items) | Value::OrderedDict { items, .. }) = graph.get(state) else {
            return Ok(());
        };
        for (key, value) in items {
            self.charge(0)?;
            let Some(key) = graph.get(*key).as_str() else {
                continue;
            };
            if key == "_modules" {
                let (Value::Dict(modules) | Value::OrderedDict { items: modules, .. }) =
                    graph.get(*value)
                else {
                    continue;
                };
                for (name, module) in modules {
                    let Some(name) = graph.get(*name).as_str() else {
                        continue;
                    };
                    let sub_path = join(path, name);
                    self.charge(sub_path.len() + lookup_bytes(graph, *module))?;
                    if let Some(script_module) = packaged_script_module(graph, *module) {
                        found.script_modules.push((sub_path, script_module));
                    } else if let Some((_, sub_state)) = module_state(graph, *module) {
                        if !self.on_path.can_enter(*module) {
                            continue;
                        }
                        self.on_path.enter(*module);
                        let walked = self.walk_module_attributes(sub_state, &sub_path, found);
                        self.on_path.leave(*module);
                        walked?;
                    }
                }
            } else if !key.starts_with('_') {
                self.walk(*value, join(path, key), found)?;
            }
        }
        Ok(())
    }

    fn walk(&mut self, id: ValueId, path: String, found: &mut Found) -> Result<(), TensorError> {
        let graph = self.graph;
        // Charged first: a reference back to a value being walked costs
        // its caller a visit too.
        self.charge(path.len() + lookup_bytes(graph, id))?;
        if !self.on_path.can_enter(id) {
            return Ok(());
        }
        if let Some(spec) = tensor_spec_with(graph, id, &path, self.ids)? {
            return self.push_tensor(found, path, spec);
        }
        if let Some(script_module) = packaged_script_module(graph, id) {
            found.script_modules.push((path, script_module));
            return Ok(());
        }
        self.on_path.enter(id);
        let walked = self.walk_inner(id, &path, found);
        self.on_path.leave(id);
        walked
    }

    fn walk_inner(
        &mut self,
        id: ValueId,
        path: &str,
        found: &mut Found,
    ) -> Result<(), TensorError> {
        let graph = self.graph;
        if let Some((_, state)) = module_state(graph, id) {
            let entries = state_dict_within(graph, state, &mut self.budget).ok_or(
                TensorError::TooMuchSharing {
                    nodes: graph.len(),
                    limit: self.budget.limit(),
                },
            )?;
            for (key, value) in entries {
                let path = join(path, &key);
                if let Some(spec) = tensor_spec_with(graph, value, &path, self.ids)? {
                    self.push_tensor(found, path, spec)?;
                }
            }
            return self.walk_module_attributes(state, path, found);
        }
        match graph.get(id) {
            Value::List(items) | Value::Tuple(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.walk(*item, join(path, &index.to_string()), found)?;
                }
            }
            Value::Dict(items) | Value::OrderedDict { items, .. } => {
                for (key, value) in items {
                    let key = match graph.get(*key) {
                        Value::Str(text) => text.to_string_lossy(),
                        _ => python_repr_limited(graph, *key, KEY_REPR_LIMIT),
                    };
                    self.walk(*value, join(path, &key), found)?;
                }
            }
            // Any other object: its state, attributes by name (a
            // TorchScript module's `__torch__.*` objects, or a class
            // holding tensors), as PyTorch's loader rebuilds it.
            Value::Object { extra, .. } => {
                if let Some(state) = extra.state {
                    self.walk(state, path.to_owned(), found)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
