//! From a decoded pickle to the [`Doc`] `pretty` lays out: plain data as
//! Python writes it, tensors as `tensor(float32[2, 3], storage 0)`,
//! `nn.Module`s as their module tree, other objects and calls as calls;
//! cut at the depth and item limits.

use std::collections::HashMap;

use tpkg_pickle::{Extra, Value, ValueGraph, ValueId};
use tpkg_tensors::module::{Budget, module_state};
use tpkg_tensors::{StorageIds, TensorSpec, is_tensor, tensor_spec_with};

use super::PrettyOptions;
use super::layout::{AtomCut, Break, Doc, Group, Item};

/// Deepest nesting followed; deeper values are `...`.
const MAX_NESTING: usize = super::MAX_DEPTH;

/// Longest string of a sequence that fills lines (rather than going one
/// per line), in columns.
const FILL_ITEM_LEN: usize = 20;

/// Longest number of a sequence that fills lines.
const MAX_FILL_NUMBER: usize = 64;

/// Longest dict key or call name written, in bytes of repr.
const LABEL_LIMIT: usize = 256;

/// What writing one value needs: the graph, the options, and the walk's
/// state (values on the path, for cycles; the budget).
pub(super) struct Builder<'g> {
    graph: &'g ValueGraph,
    options: &'g PrettyOptions,
    /// Longest text kept of one string or bytes value, in characters.
    atom_limit: usize,
    on_path: Vec<bool>,
    nesting: usize,
    values: usize,
    budget: Budget,
    chars: HashMap<ValueId, usize>,
}

/// A module's items, by kind, in the order they are written.
#[derive(Default)]
struct ModuleItems {
    tensors: Vec<Item>,
    children: Vec<Item>,
    attributes: Vec<Item>,
    more: usize,
    expanded_children: bool,
}

impl<'g> Builder<'g> {
    pub fn new(graph: &'g ValueGraph, options: &'g PrettyOptions, atom_limit: usize) -> Self {
        Builder {
            graph,
            options,
            atom_limit,
            on_path: vec![false; graph.len()],
            nesting: 0,
            values: super::MAX_RENDERED,
            budget: Budget::for_graph(graph),
            chars: HashMap::new(),
        }
    }

    /// Charges one value and `text_bytes` of text; false once the walk
    /// may do no more.
    fn charge(&mut self, text_bytes: usize) -> bool {
        match self.values.checked_sub(1) {
            Some(left) => self.values = left,
            None => return false,
        }
        self.budget.charge(text_bytes)
    }

    fn max_items(&self) -> usize {
        if self.options.full {
            usize::MAX
        } else {
            self.options.max_items
        }
    }

    /// The doc for `id` at nesting `level` (the root is level 0);
    /// `in_module` when a module holds it (submodules then go by their
    /// class's short name).
    pub fn doc(&mut self, id: ValueId, level: usize, in_module: bool) -> Doc {
        let text_bytes = match self.graph.get(id) {
            Value::Str(text) => text.as_bytes().len().min(4 * self.atom_limit),
            Value::Bytes(bytes) | Value::ByteArray(bytes) => bytes.len().min(4 * self.atom_limit),
            // Telling a module from another object reads its state's items.
            Value::Object { extra, .. } => {
                let items = extra.state.map_or(0, |state| dict_len(self.graph, state));
                super::text_bytes(self.graph, id).saturating_add(16 * items)
            }
            _ => super::text_bytes(self.graph, id),
        };
        if !self.charge(text_bytes) || self.nesting > MAX_NESTING {
            return Doc::atom("...".to_owned());
        }
        if self.on_path.get(id.index()).copied().unwrap_or(false) {
            return Doc::atom("<cycle>".to_owned());
        }
        if let Some(atom) = self.atom(id) {
            return atom;
        }
        if let Some(text) = self.tensor(id) {
            return Doc::atom(text);
        }
        self.set_on_path(id, true);
        self.nesting += 1;
        let doc = match module_state(self.graph, id) {
            Some((class, state)) => self.module(&class, state, level, in_module),
            None => self.container(id, level, in_module),
        };
        self.nesting -= 1;
        self.set_on_path(id, false);
        doc
    }

    fn set_on_path(&mut self, id: ValueId, on: bool) {
        if let Some(mark) = self.on_path.get_mut(id.index()) {
            *mark = on;
        }
    }

    /// Values written on one line whatever their size: scalars, strings,
    /// bytes, names.
    fn atom(&mut self, id: ValueId) -> Option<Doc> {
        let graph = self.graph;
        Some(match graph.get(id) {
            Value::Str(text) => {
                let total = match self.chars.get(&id) {
                    Some(total) => *total,
                    None => {
                        let total = match text.as_str() {
                            Some(text) => text.chars().count(),
                            None => text.as_bytes().len(),
                        };
                        self.chars.insert(id, total);
                        total
                    }
                };
                let shown: String = match text.as_str() {
                    Some(text) => text.chars().take(self.atom_limit).collect(),
                    None => {
                        // Lone surrogates: a prefix of the bytes (4 per
                        // character at most) is all that can be shown.
                        let bytes = text.as_bytes();
                        let prefix = &bytes[..bytes.len().min(4 * self.atom_limit)];
                        tpkg_pickle::PyStr::Surrogates(prefix.to_vec())
                            .to_string_lossy()
                            .chars()
                            .take(self.atom_limit)
                            .collect()
                    }
                };
                let repr = single_repr(Value::Str(shown.into()));
                cut_atom(repr, total > self.atom_limit, total, "chars")
            }
            Value::Bytes(bytes) => {
                let shown = bytes[..bytes.len().min(self.atom_limit)].to_vec();
                let repr = single_repr(Value::Bytes(shown));
                cut_atom(repr, bytes.len() > self.atom_limit, bytes.len(), "bytes")
            }
            Value::ByteArray(bytes) if bytes.len() > self.atom_limit => {
                let shown = bytes[..self.atom_limit].to_vec();
                let repr = single_repr(Value::ByteArray(shown));
                Doc::atom(format!("{}... ({} bytes)", repr, bytes.len()))
            }
            Value::None
            | Value::Bool(_)
            | Value::Int(_)
            | Value::BigInt(_)
            | Value::Float(_)
            | Value::Complex(..)
            | Value::ByteArray(_)
            | Value::TorchDevice(_)
            | Value::TorchDtype(_)
            | Value::Global { .. } => Doc::atom(tpkg_pickle::python_repr(graph, id)),
            _ => return None,
        })
    }

    /// `tensor(float32[64, 3, 7, 7], storage 0)`, if `id` is a tensor tpkg
    /// reads (with either storage id layout).
    fn tensor(&mut self, id: ValueId) -> Option<String> {
        if !is_tensor(self.graph, id) {
            return None;
        }
        let spec = [StorageIds::Zip, StorageIds::Legacy]
            .into_iter()
            .find_map(|ids| tensor_spec_with(self.graph, id, "", ids).ok().flatten())?;
        // Reading the call cost about one unit per dimension.
        self.charge(8 * (spec.shape.len() + spec.stride.len()));
        Some(tensor_text(&spec))
    }

    /// A module: its parameters and buffers, submodules, then its other
    /// attributes (internals left out unless `full`).
    fn module(&mut self, class: &str, state: ValueId, level: usize, in_module: bool) -> Doc {
        let graph = self.graph;
        let name = if in_module {
            class.rsplit('.').next().unwrap_or(class)
        } else {
            class
        };
        let fields: &[(ValueId, ValueId)] = match graph.get(state) {
            Value::Dict(items) | Value::OrderedDict { items, .. } => items,
            _ => &[],
        };
        if !self.charge(16 * fields.len()) {
            return Doc::atom(format!("{name}(...)"));
        }
        let children = fields
            .iter()
            .find(|(key, _)| graph.get(*key).as_str() == Some("_modules"))
            .map_or(0, |(_, modules)| dict_len(graph, *modules));
        if level >= self.options.depth {
            return Doc::atom(match children {
                0 => format!("{name}(...)"),
                1 => format!("{name}(... 1 module)"),
                n => format!("{name}(... {n} modules)"),
            });
        }
        let mut items = ModuleItems::default();
        let mut budget = self.max_items();
        for (key, value) in fields {
            let Some(field) = graph.get(*key).as_str() else {
                continue;
            };
            match field {
                "_parameters" | "_buffers" | "_modules" => {
                    self.module_dict(field, *value, level, &mut items, &mut budget);
                }
                _ if self.hidden(field, *value) => {}
                _ => {
                    if budget == 0 {
                        items.more += 1;
                        continue;
                    }
                    budget -= 1;
                    let doc = self.doc(*value, level + 1, true);
                    items.attributes.push(Item {
                        label: format!("{field}="),
                        doc,
                    });
                }
            }
        }
        // A module whose submodules are not written out reads as PyTorch
        // prints a leaf module: on one line (the value shown, say at
        // `--depth 1`, keeps one item per line).
        let breaks = if items.expanded_children || self.options.full || level == 0 {
            Break::Lines
        } else {
            Break::Cut
        };
        let mut all = items.tensors;
        all.append(&mut items.children);
        all.append(&mut items.attributes);
        Doc::Group(Box::new(Group::new(
            format!("{name}("),
            ")".to_owned(),
            all,
            items.more,
            breaks,
            false,
        )))
    }

    /// The items of a module's `_parameters`, `_buffers` or `_modules`.
    fn module_dict(
        &mut self,
        field: &str,
        dict: ValueId,
        level: usize,
        items: &mut ModuleItems,
        budget: &mut usize,
    ) {
        let graph = self.graph;
        let entries: &[(ValueId, ValueId)] = match graph.get(dict) {
            Value::Dict(entries) | Value::OrderedDict { items: entries, .. } => entries,
            _ => &[],
        };
        for (key, value) in entries {
            if *budget == 0 {
                items.more += 1;
                continue;
            }
            if !self.options.full && matches!(graph.get(*value), Value::None) {
                // `bias: None`: no parameter, as the state dict says.
                continue;
            }
            *budget -= 1;
            let label = format!("{}: ", self.label(*key));
            let doc = self.doc(*value, level + 1, true);
            if field == "_modules" {
                items.expanded_children |= doc.is_group();
                items.children.push(Item { label, doc });
            } else {
                items.tensors.push(Item { label, doc });
            }
        }
    }

    /// Whether a module attribute is left out: `training`, and internals
    /// (a `_`-prefixed attribute that is `None` or empty), unless `full`.
    fn hidden(&self, field: &str, value: ValueId) -> bool {
        if self.options.full {
            return false;
        }
        field == "training" || (field.starts_with('_') && is_empty(self.graph, value))
    }

    /// A dict key or attribute name as a label: strings as themselves
    /// (attribute names) or by repr (dict keys).
    fn label(&self, key: ValueId) -> String {
        match self.graph.get(key).as_str() {
            Some(name) if name.len() <= LABEL_LIMIT => name.to_owned(),
            _ => tpkg_pickle::python_repr_limited(self.graph, key, LABEL_LIMIT),
        }
    }

    /// Containers, objects and calls.
    fn container(&mut self, id: ValueId, level: usize, in_module: bool) -> Doc {
        let graph = self.graph;
        let shape = |open: &str, close: &str, segments: Vec<Segment<'g>>| Shape {
            open: open.to_owned(),
            close: close.to_owned(),
            segments,
        };
        let shape = match graph.get(id) {
            Value::List(items) => shape("[", "]", vec![Segment::Seq(items)]),
            Value::Tuple(items) => shape("(", ")", vec![Segment::Seq(items)]),
            Value::Set(items) if items.is_empty() => return Doc::atom("set()".to_owned()),
            Value::Set(items) => shape("{", "}", vec![Segment::Seq(items)]),
            Value::FrozenSet(items) if items.is_empty() => {
                return Doc::atom("frozenset()".to_owned());
            }
            Value::FrozenSet(items) => shape("frozenset({", "})", vec![Segment::Seq(items)]),
            Value::TorchSize(items) => shape("torch.Size([", "])", vec![Segment::Seq(items)]),
            Value::Dict(pairs) => shape("{", "}", vec![Segment::Pairs(pairs)]),
            Value::OrderedDict { items, state } => {
                let mut segments = vec![Segment::Pairs(items)];
                if self.options.full {
                    segments.extend(state.map(|state| self.state_segment(state)));
                }
                shape("OrderedDict({", "})", segments)
            }
            Value::PersistentId(pid) => shape(
                "persistent_id(",
                ")",
                vec![Segment::Seq(std::slice::from_ref(pid))],
            ),
            Value::Reduce {
                callable,
                args,
                extra,
            } => self.call_shape(*callable, args, None, extra),
            Value::Object {
                class,
                args,
                kwargs,
                extra,
            } => self.call_shape(*class, args, *kwargs, extra),
            _ => return Doc::atom(tpkg_pickle::python_repr_limited(graph, id, LABEL_LIMIT)),
        };
        self.group(id, shape, level, in_module)
    }

    /// A state set by BUILD: attributes when it is a dict of names,
    /// `state=...` otherwise.
    fn state_segment(&self, state: ValueId) -> Segment<'g> {
        match self.graph.get(state) {
            Value::Dict(pairs)
                if pairs
                    .iter()
                    .all(|(key, _)| self.graph.get(*key).as_str().is_some()) =>
            {
                // TorchScript's modules pickle as objects of `__torch__`
                // classes with `training` and the module's internals.
                let module_like = pairs
                    .iter()
                    .any(|(key, _)| self.graph.get(*key).as_str() == Some("training"));
                Segment::Attrs(pairs, module_like && !self.options.full)
            }
            _ => Segment::State(state),
        }
    }

    /// How a call `callable(*args, **kwargs)`, with the state and items
    /// set on its result, is written: `name(args, kwarg=value,
    /// attribute=value)`; a call of no arguments filled only with dict
    /// (list) items as `name({...})` (`name([...])`).
    fn call_shape(
        &self,
        callable: ValueId,
        args: &'g ValueId,
        kwargs: Option<ValueId>,
        extra: &'g Extra,
    ) -> Shape<'g> {
        let graph = self.graph;
        let name = match graph.get(callable) {
            Value::Global { module, name } => format!("{module}.{name}"),
            _ => tpkg_pickle::python_repr_limited(graph, callable, LABEL_LIMIT),
        };
        let args: &'g [ValueId] = match graph.get(*args) {
            Value::Tuple(items) => items,
            _ => std::slice::from_ref(args),
        };
        let kwargs: &'g [(ValueId, ValueId)] = match kwargs.map(|kwargs| graph.get(kwargs)) {
            Some(Value::Dict(pairs)) => pairs,
            _ => &[],
        };
        let ordered_dict = name == "collections.OrderedDict";
        let mut states: Vec<Segment<'g>> = extra
            .state
            .iter()
            .chain(&extra.more_states)
            .map(|state| self.state_segment(*state))
            .collect();
        if ordered_dict && !self.options.full {
            // A state dict's `_metadata`, set by BUILD.
            states.clear();
        }
        let plain = args.is_empty() && kwargs.is_empty() && states.is_empty();
        if plain && extra.list_items.is_empty() && !extra.dict_items.is_empty() {
            return Shape {
                open: format!("{name}({{"),
                close: "})".to_owned(),
                segments: vec![Segment::Pairs(&extra.dict_items)],
            };
        }
        if plain && extra.dict_items.is_empty() && !extra.list_items.is_empty() {
            return Shape {
                open: format!("{name}(["),
                close: "])".to_owned(),
                segments: vec![Segment::Seq(&extra.list_items)],
            };
        }
        let mut segments = vec![Segment::Seq(args), Segment::Attrs(kwargs, false)];
        segments.append(&mut states);
        segments.push(Segment::Seq(&extra.list_items));
        segments.push(Segment::Pairs(&extra.dict_items));
        Shape {
            open: format!("{name}("),
            close: ")".to_owned(),
            segments,
        }
    }

    /// Whether the segments hold only positional numbers, bools and `None`.
    fn all_numbers(&self, segments: &[Segment<'_>]) -> bool {
        segments.iter().all(|segment| match segment {
            Segment::Seq(values) => values.iter().all(|value| {
                matches!(
                    self.graph.get(*value),
                    Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_)
                )
            }),
            _ => segment.len() == 0,
        })
    }

    /// Items a segment writes (a module's internals not counted).
    fn segment_len(&mut self, segment: &Segment<'_>) -> usize {
        match segment {
            Segment::Attrs(pairs, true) => {
                self.charge(16 * pairs.len());
                pairs
                    .iter()
                    .filter(|(key, value)| {
                        !self
                            .graph
                            .get(*key)
                            .as_str()
                            .is_some_and(|name| self.hidden(name, *value))
                    })
                    .count()
            }
            _ => segment.len(),
        }
    }

    /// The group for a shape, or its short form past the depth limit.
    fn group(&mut self, id: ValueId, shape: Shape<'g>, level: usize, in_module: bool) -> Doc {
        let total: usize = shape.segments.iter().map(|s| self.segment_len(s)).sum();
        if total == 0 {
            // `OrderedDict()`, as Python writes an empty one.
            return match (shape.open.strip_suffix('{'), shape.close.as_str()) {
                (Some(name), "})") if name.ends_with('(') => Doc::atom(format!("{name})")),
                _ => Doc::atom(format!("{}{}", shape.open, shape.close)),
            };
        }
        if level >= self.options.depth {
            let elided = match total {
                1 => format!("{}... 1 item{}", shape.open, shape.close),
                n => format!("{}... {n} items{}", shape.open, shape.close),
            };
            // Short values such as `(3, 3)` are clearer than their count
            // (numbers only: their repr costs no more than the count).
            if total <= 16 && self.all_numbers(&shape.segments) {
                let repr = tpkg_pickle::python_repr_limited(self.graph, id, elided.len());
                if repr.len() <= elided.len() && !repr.ends_with("...") {
                    return Doc::atom(repr);
                }
            }
            return Doc::atom(elided);
        }
        let graph = self.graph;
        let mut left = self.max_items();
        let mut items = Vec::new();
        let mut keyed = false;
        // Numbers and short strings fill lines; tensors, longer texts and
        // groups go one per line.
        let mut fill = true;
        for segment in &shape.segments {
            keyed |= !matches!(segment, Segment::Seq(_)) && segment.len() > 0;
            let mut add = |label: String, value: ValueId, this: &mut Self| {
                let doc = this.doc(value, level + 1, in_module);
                fill &= match graph.get(value) {
                    Value::None
                    | Value::Bool(_)
                    | Value::Int(_)
                    | Value::BigInt(_)
                    | Value::Float(_)
                    | Value::Complex(..) => doc.flat_len() <= MAX_FILL_NUMBER,
                    Value::Str(_) | Value::Bytes(_) | Value::TorchDtype(_) => {
                        doc.flat_len() <= FILL_ITEM_LEN
                    }
                    _ => false,
                };
                items.push(Item { label, doc });
            };
            match segment {
                Segment::Seq(values) => {
                    for value in values.iter().take(left) {
                        add(String::new(), *value, self);
                    }
                }
                Segment::Attrs(pairs, hide) => {
                    let shown: Vec<(ValueId, ValueId)> = pairs
                        .iter()
                        .filter(|(key, value)| {
                            !*hide
                                || !graph
                                    .get(*key)
                                    .as_str()
                                    .is_some_and(|name| self.hidden(name, *value))
                        })
                        .take(left)
                        .copied()
                        .collect();
                    for (key, value) in shown {
                        add(format!("{}=", self.label(key)), value, self);
                    }
                }
                Segment::Pairs(pairs) => {
                    for (key, value) in pairs.iter().take(left) {
                        let key = tpkg_pickle::python_repr_limited(graph, *key, LABEL_LIMIT);
                        if !self.charge(key.len()) {
                            break;
                        }
                        add(format!("{key}: "), *value, self);
                    }
                }
                Segment::State(state) if left > 0 => add("state=".to_owned(), *state, self),
                Segment::State(_) => {}
            }
            left = self.max_items().saturating_sub(items.len());
        }
        let more = total.saturating_sub(items.len());
        let breaks = if keyed || !fill {
            Break::Lines
        } else {
            Break::Fill
        };
        let one_tuple = matches!(graph.get(id), Value::Tuple(values) if values.len() == 1);
        let group = Group::new(shape.open, shape.close, items, more, breaks, true);
        let group = if one_tuple {
            group.with_close_flat(",)")
        } else {
            group
        };
        Doc::Group(Box::new(group))
    }
}

/// How a container, object or call is written: brackets around segments
/// of items.
struct Shape<'g> {
    open: String,
    close: String,
    segments: Vec<Segment<'g>>,
}

/// A run of items of one kind.
enum Segment<'g> {
    /// Positional items: `value`.
    Seq(&'g [ValueId]),
    /// Named items: `name=value`; with `true`, a module's internals
    /// left out ([`Builder::hidden`]).
    Attrs(&'g [(ValueId, ValueId)], bool),
    /// Dict items: `key: value`.
    Pairs(&'g [(ValueId, ValueId)]),
    /// A state that is not a dict of names: `state=value`.
    State(ValueId),
}

impl Segment<'_> {
    fn len(&self) -> usize {
        match self {
            Segment::Seq(values) => values.len(),
            Segment::Attrs(pairs, _) | Segment::Pairs(pairs) => pairs.len(),
            Segment::State(_) => 1,
        }
    }
}

/// The repr of one value built on its own.
fn single_repr(value: Value) -> String {
    let graph = ValueGraph::new(value);
    tpkg_pickle::python_repr(&graph, graph.root())
}

/// A string or bytes atom that layout may shorten; `partial` when `repr`
/// is of a prefix only.
fn cut_atom(repr: String, partial: bool, total: usize, unit: &'static str) -> Doc {
    let cut = AtomCut {
        total,
        unit,
        partial,
    };
    // A prefix counts as long as the text written for it.
    let suffix = if partial {
        format!("... ({total} {unit})").len()
    } else {
        0
    };
    let len = repr.chars().count() + suffix;
    Doc::Atom {
        text: repr,
        len,
        cut: Some(cut),
    }
}

/// Items in a dict (0 for anything else).
fn dict_len(graph: &ValueGraph, id: ValueId) -> usize {
    match graph.get(id) {
        Value::Dict(items) | Value::OrderedDict { items, .. } => items.len(),
        _ => 0,
    }
}

/// Whether a value is `None` or an empty container.
fn is_empty(graph: &ValueGraph, id: ValueId) -> bool {
    match graph.get(id) {
        Value::None => true,
        Value::Dict(items) | Value::OrderedDict { items, .. } => items.is_empty(),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items.is_empty()
        }
        _ => false,
    }
}

/// `tensor(float32[64, 3, 7, 7], storage 0)`, with the offset, strides,
/// device and storage view only when they are not the default.
pub(super) fn tensor_text(spec: &TensorSpec) -> String {
    let join = |values: &[u64]| {
        values
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "tensor({}[{}], storage {}",
        spec.dtype.name(),
        join(&spec.shape),
        spec.storage.key
    );
    if let Some(view) = &spec.storage.view {
        text.push_str(&format!(
            " view {} at {} of {}",
            view.key, view.offset, view.numel
        ));
    }
    if spec.storage_offset != 0 {
        text.push_str(&format!(", offset {}", spec.storage_offset));
    }
    if !is_contiguous(&spec.shape, &spec.stride) {
        text.push_str(&format!(", stride ({})", join(&spec.stride)));
    }
    if spec.storage.location != "cpu" {
        text.push_str(&format!(", {}", spec.storage.location));
    }
    text.push(')');
    text
}

/// Whether `stride` is the row-major layout of `shape` (dimensions of
/// size 1 may have any stride, as in PyTorch).
fn is_contiguous(shape: &[u64], stride: &[u64]) -> bool {
    if shape.len() != stride.len() {
        return false;
    }
    let mut expected: u64 = 1;
    for (size, step) in shape.iter().zip(stride).rev() {
        if *size != 1 && *step != expected {
            return false;
        }
        expected = expected.saturating_mul(*size);
    }
    true
}
