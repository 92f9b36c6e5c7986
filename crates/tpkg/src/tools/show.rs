//! Showing decoded pickles: as the JSON "value image" of the corpus
//! manifests (`tests/data/corpus/README.md`), and as text that reads like Python.

use std::fmt::Write as _;

use num_bigint::BigInt;
use serde_json::{Value as Json, json};
use tpkg_pickle::{Value, ValueGraph, ValueId};

mod build;
mod layout;
#[cfg(test)]
mod pretty_tests;

pub use crate::files::records::{MAX_PICKLE_BYTES, PickleRecordError, decode_record};

pub use tpkg_pickle::python_float_repr;

/// Deepest nesting rendered; deeper values are a [`ShowError`].
pub const MAX_DEPTH: usize = 1000;

/// Most values rendered for one image, whatever the graph's size. Shared
/// values are rendered at every reference, so a small hostile pickle could
/// otherwise expand exponentially; within this cap, a rendering's work is
/// also bounded by the graph's size ([`Budget`]: 64 units per value and
/// reference plus 65,536, a unit being a value rendered or 16 bytes of
/// text written).
pub const MAX_RENDERED: usize = 1_000_000;

/// Longest text `pretty` produces; the rest is elided with `...`.
const MAX_TEXT_LEN: usize = 16 << 20;

/// Longest repr of a dict key or set member in the image (a key that
/// shares structure could otherwise expand without bound).
const KEY_REPR_LIMIT: usize = 64 << 10;

/// A value that cannot be rendered within the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShowError {
    /// Nesting beyond [`MAX_DEPTH`].
    #[error("the value nests deeper than {MAX_DEPTH} levels at path {path:?}")]
    TooDeep {
        /// Where the limit was hit.
        path: String,
    },
    /// More than [`MAX_RENDERED`] values, or more work than the graph's
    /// [`Budget`] (shared references count each time).
    #[error(
        "the value expands to more than {limit} steps when shared references are written out (a graph of {nodes} values; the limit is 64 per value and reference, plus 65,536, and at most {MAX_RENDERED} values)"
    )]
    TooLarge {
        /// Values in the graph.
        nodes: usize,
        /// The rendering's budget ([`Budget::limit`]).
        limit: u64,
    },
}

use tpkg_tensors::is_tensor;
use tpkg_tensors::module::{Budget, module_state, state_dict_within};

fn global_of(graph: &ValueGraph, id: ValueId) -> Option<(&str, &str)> {
    match graph.get(id) {
        Value::Global { module, name } => Some((module, name)),
        _ => None,
    }
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{path}.{part}")
    }
}

fn int_image(value: &BigInt) -> Json {
    let limit = BigInt::from(1u64 << 53);
    if value < &limit && value > &-limit {
        match i64::try_from(value) {
            Ok(small) => json!(small),
            Err(_) => json!({ "int": value.to_string() }),
        }
    } else {
        json!({ "int": value.to_string() })
    }
}

/// The value image of a decoded pickle (see `tests/data/corpus/README.md`):
/// plain data as JSON, tensors as `{"tensor": path}`, `nn.Module`s as their
/// class and state dict, other objects as `{"object": "module.qualname"}`.
/// A reference back to a value being rendered (a cycle) is `{"cycle": path}`.
///
/// ```
/// use tpkg_pickle::decode;
/// // pickle.dumps({"a": (1, 2.5), 3: b"x"}, protocol=3)
/// let graph = decode(b"\x80\x03}q\x00(X\x01\x00\x00\x00aq\x01K\x01G@\x04\x00\x00\x00\x00\x00\x00\x86q\x02K\x03C\x01xq\x03u.").unwrap();
/// let image = tpkg::show::image(&graph).unwrap();
/// assert_eq!(
///     image,
///     serde_json::json!({"dict": [["a", {"tuple": [1, {"float": "2.5"}]}], ["3", {"bytes": "78"}]]})
/// );
/// ```
pub fn image(graph: &ValueGraph) -> Result<Json, ShowError> {
    let mut walk = Walk {
        on_path: Vec::new(),
        marked: vec![false; graph.len()],
        values: MAX_RENDERED,
        budget: Budget::for_graph(graph),
    };
    image_of(graph, graph.root(), "", &mut walk)
}

/// The state of one image rendering: the values being rendered (to spot
/// cycles: marked, and listed with their paths) and how much more may be
/// rendered.
struct Walk {
    on_path: Vec<(ValueId, String)>,
    marked: Vec<bool>,
    values: usize,
    budget: Budget,
}

impl Walk {
    /// Charges a value rendered and `text_bytes` of text written for it.
    fn charge(&mut self, graph: &ValueGraph, text_bytes: usize) -> Result<(), ShowError> {
        let too_large = ShowError::TooLarge {
            nodes: graph.len(),
            limit: self.budget.limit().min(MAX_RENDERED as u64),
        };
        self.values = self.values.checked_sub(1).ok_or(too_large.clone())?;
        if self.budget.charge(text_bytes) {
            Ok(())
        } else {
            Err(too_large)
        }
    }

    fn is_marked(&self, id: ValueId) -> bool {
        self.marked.get(id.index()).copied().unwrap_or(false)
    }

    fn mark(&mut self, id: ValueId, on: bool) {
        if let Some(mark) = self.marked.get_mut(id.index()) {
            *mark = on;
        }
    }
}

/// Bytes of text rendering `id` itself writes (its children are charged
/// when they are rendered).
fn text_bytes(graph: &ValueGraph, id: ValueId) -> usize {
    match graph.get(id) {
        Value::Str(text) => text.to_string_lossy().len(),
        Value::Bytes(bytes) | Value::ByteArray(bytes) => 2 * bytes.len(),
        Value::BigInt(i) => (i.bits() / 3) as usize,
        Value::TorchDevice(text) | Value::TorchDtype(text) => text.len(),
        Value::Global { module, name } => module.len() + name.len(),
        Value::Object { class, .. }
        | Value::Reduce {
            callable: class, ..
        } => match graph.get(*class) {
            Value::Global { module, name } => module.len() + name.len(),
            _ => 0,
        },
        _ => 0,
    }
}

fn image_of(
    graph: &ValueGraph,
    id: ValueId,
    path: &str,
    walk: &mut Walk,
) -> Result<Json, ShowError> {
    if walk.on_path.len() > MAX_DEPTH {
        return Err(ShowError::TooDeep {
            path: path.to_owned(),
        });
    }
    walk.charge(graph, path.len() + text_bytes(graph, id))?;
    if walk.is_marked(id) {
        let first = walk
            .on_path
            .iter()
            .find(|(seen, _)| *seen == id)
            .map(|(_, first)| first.as_str())
            .unwrap_or_default();
        return Ok(json!({ "cycle": first }));
    }
    if is_tensor(graph, id) {
        return Ok(json!({ "tensor": path }));
    }
    if let Some((class, state)) = module_state(graph, id) {
        let too_large = ShowError::TooLarge {
            nodes: graph.len(),
            limit: walk.budget.limit(),
        };
        let entries = state_dict_within(graph, state, &mut walk.budget).ok_or(too_large)?;
        let mut items = Vec::with_capacity(entries.len());
        for (key, _) in &entries {
            walk.charge(graph, 2 * key.len() + path.len())?;
            items.push(json!([key, { "tensor": join(path, key) }]));
        }
        return Ok(json!({ "module": class, "state_dict": { "OrderedDict": items } }));
    }
    walk.on_path.push((id, path.to_owned()));
    walk.mark(id, true);
    let result = image_inner(graph, id, path, walk);
    walk.mark(id, false);
    walk.on_path.pop();
    result
}

fn image_inner(
    graph: &ValueGraph,
    id: ValueId,
    path: &str,
    walk: &mut Walk,
) -> Result<Json, ShowError> {
    let children = |ids: &[ValueId], walk: &mut Walk| -> Result<Vec<Json>, ShowError> {
        ids.iter()
            .enumerate()
            .map(|(i, child)| image_of(graph, *child, &join(path, &i.to_string()), walk))
            .collect()
    };
    Ok(match graph.get(id) {
        Value::None => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => int_image(&BigInt::from(*i)),
        Value::BigInt(i) => int_image(i),
        Value::Float(x) => json!({ "float": python_float_repr(*x) }),
        Value::Complex(re, im) => json!({ "complex": [re, im] }),
        Value::Str(text) => json!(text.to_string_lossy()),
        Value::Bytes(bytes) => json!({ "bytes": hex(bytes) }),
        Value::ByteArray(bytes) => json!({ "bytearray": hex(bytes) }),
        Value::List(items) => Json::Array(children(items, walk)?),
        Value::Tuple(items) => json!({ "tuple": children(items, walk)? }),
        Value::TorchSize(items) => json!({ "torch.Size": children(items, walk)? }),
        Value::Dict(items) => json!({ "dict": pairs_image(graph, items, path, walk)? }),
        Value::OrderedDict { items, .. } => {
            json!({ "OrderedDict": pairs_image(graph, items, path, walk)? })
        }
        Value::Set(members) => json!({ "set": sorted_reprs(graph, members, walk)? }),
        Value::FrozenSet(members) => json!({ "frozenset": sorted_reprs(graph, members, walk)? }),
        Value::TorchDtype(name) => json!({ "torch.dtype": format!("torch.{name}") }),
        Value::TorchDevice(device) => json!({ "torch.device": device }),
        Value::Global { module, name } => json!({ "global": format!("{module}.{name}") }),
        Value::Object { class, .. } => match global_of(graph, *class) {
            Some((module, name)) => json!({ "object": format!("{module}.{name}") }),
            None => json!({ "object": "?" }),
        },
        Value::Reduce { callable, .. } => match global_of(graph, *callable) {
            Some((module, name)) => json!({ "object": format!("{module}.{name}") }),
            None => json!({ "object": "?" }),
        },
        Value::PersistentId(pid) => {
            json!({ "persistent_id": image_of(graph, *pid, path, walk)? })
        }
    })
}

fn pairs_image(
    graph: &ValueGraph,
    items: &[(ValueId, ValueId)],
    path: &str,
    walk: &mut Walk,
) -> Result<Vec<Json>, ShowError> {
    items
        .iter()
        .map(|(key, value)| {
            let key_text = key_string(graph, *key);
            walk.charge(graph, key_text.len())?;
            let value = image_of(graph, *value, &join(path, &key_text), walk)?;
            Ok(json!([key_text, value]))
        })
        .collect()
}

/// A dict key as the image shows it: strings as themselves, anything else
/// by its Python repr.
fn key_string(graph: &ValueGraph, key: ValueId) -> String {
    match graph.get(key) {
        Value::Str(text) => text.to_string_lossy(),
        _ => tpkg_pickle::python_repr_limited(graph, key, KEY_REPR_LIMIT),
    }
}

fn sorted_reprs(
    graph: &ValueGraph,
    members: &[ValueId],
    walk: &mut Walk,
) -> Result<Vec<String>, ShowError> {
    let mut reprs = Vec::with_capacity(members.len());
    for member in members {
        let text = tpkg_pickle::python_repr_limited(graph, *member, KEY_REPR_LIMIT);
        walk.charge(graph, text.len())?;
        reprs.push(text);
    }
    reprs.sort();
    Ok(reprs)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// How [`pretty`] writes a value.
///
/// ```
/// let options = tpkg::show::PrettyOptions::default().with_depth(2).with_width(80);
/// assert_eq!((options.depth, options.width, options.full), (2, 80, false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrettyOptions {
    /// Levels of nesting written out (the value itself is level 0); a
    /// container deeper than this is written as a count
    /// (`[... 3 items]`, `Sequential(... 2 modules)`). 3 by default.
    pub depth: usize,
    /// Columns per line: what fits stays on one line. 100 by default.
    pub width: usize,
    /// Write everything: modules' internals (`training`, hooks, empty
    /// `_`-prefixed attributes) and state dicts' `_metadata`, every item of
    /// long containers, whole strings, and modules broken over lines
    /// rather than cut at the width. Off by default.
    pub full: bool,
    /// Items written of one container before `... N more` (unless
    /// `full`). 100 by default.
    pub max_items: usize,
}

impl Default for PrettyOptions {
    fn default() -> Self {
        PrettyOptions {
            depth: 3,
            width: 100,
            full: false,
            max_items: 100,
        }
    }
}

impl PrettyOptions {
    /// Sets [`depth`](Self::depth).
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    /// Sets [`width`](Self::width).
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Sets [`full`](Self::full).
    pub fn with_full(mut self, full: bool) -> Self {
        self.full = full;
        self
    }

    /// Sets [`max_items`](Self::max_items).
    pub fn with_max_items(mut self, max_items: usize) -> Self {
        self.max_items = max_items;
        self
    }
}

/// The value as text that reads like Python's `pprint`: what fits in the
/// width stays on one line; otherwise dicts, objects and modules put one
/// item per line and sequences of plain values fill lines, indented by
/// two columns. Tensors are `tensor(float32[64, 3, 7, 7], storage 0)`
/// (offset, strides and device when not the default); an `nn.Module` is
/// its module tree, as PyTorch's `print(model)`: the class, then its
/// parameters and buffers (`weight: tensor(...)`), submodules
/// (`conv1: Conv2d(...)`) and other attributes (`stride=(2, 2)`); a module
/// whose submodules are not written out stays on one line, cut at the
/// width with `... N more`. Other objects and calls read as calls
/// (`argparse.Namespace(lr=0.1)`). Values nested deeper than
/// [`PrettyOptions::depth`] are counted, not written; long containers and
/// strings are cut with counts.
///
/// Shared values are written at every reference, within the graph's
/// [`Budget`] (and at most [`MAX_RENDERED`] values and 16 MiB of text):
/// past it, `...`.
///
/// ```
/// use tpkg::show::{pretty, PrettyOptions};
/// use tpkg_pickle::decode;
/// // pickle.dumps({"lr": 0.1, "steps": [10, 20, 30, 40]}, protocol=2)
/// let graph = decode(b"\x80\x02}q\x00(X\x02\x00\x00\x00lrq\x01G?\xb9\x99\x99\x99\x99\x99\x9aX\x05\x00\x00\x00stepsq\x02]q\x03(K\x0aK\x14K\x1eK(eu.").unwrap();
/// let options = PrettyOptions::default();
/// assert_eq!(pretty(&graph, &options), "{'lr': 0.1, 'steps': [10, 20, 30, 40]}");
/// assert_eq!(
///     pretty(&graph, &options.clone().with_width(30)),
///     "{\n  'lr': 0.1,\n  'steps': [10, 20, 30, 40],\n}"
/// );
/// assert_eq!(
///     pretty(&graph, &options.with_depth(1)),
///     "{'lr': 0.1, 'steps': [... 4 items]}"
/// );
/// ```
pub fn pretty(graph: &ValueGraph, options: &PrettyOptions) -> String {
    let atom_limit = if options.full {
        MAX_TEXT_LEN
    } else {
        options.width.max(64)
    };
    let doc = build::Builder::new(graph, options, atom_limit).doc(graph.root(), 0, false);
    let mut layout = layout::Layout {
        width: options.width,
        shorten: !options.full,
        max_len: MAX_TEXT_LEN,
        out: String::new(),
    };
    layout.write(&doc, 0, options.width);
    layout.out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fuzz finding (pickle_decoder, out of memory): 20 values whose
    /// shared references expand exponentially when written out. Rendering
    /// must stay bounded in time and memory.
    #[test]
    fn shared_structure_renders_within_limits() {
        let data = include_bytes!("../../../../tests/data/fuzz-findings/pickle_shared_dag_oom.pkl");
        let graph = tpkg_pickle::decode(data).unwrap();
        assert!(graph.len() < 100);
        let text = pretty(&graph, &PrettyOptions::default().with_full(true));
        assert!(text.len() <= MAX_TEXT_LEN + (64 << 10), "{}", text.len());
        assert!(matches!(image(&graph), Err(ShowError::TooLarge { .. })));
    }
}
