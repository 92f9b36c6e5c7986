//! The data model: every pickled value as a node of a [`ValueGraph`].
//!
//! Pickles can share objects (a list referenced twice is one list) and can
//! be cyclic (a list that contains itself). A tree of owned values cannot
//! say either, so values live in an arena and refer to each other by
//! [`ValueId`]: two references to one object are the same id, and a cycle is
//! an id that appears inside its own node.

use num_bigint::BigInt;

/// A node's index in its [`ValueGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(crate) u32);

impl ValueId {
    /// The index as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A Python `str`. Python strings may hold lone surrogates (pickle writes
/// them with the `surrogatepass` error handler), which Rust strings cannot;
/// those keep their `surrogatepass` UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PyStr {
    /// Valid Unicode text.
    Utf8(String),
    /// Text with lone surrogates, as UTF-8 bytes with surrogates encoded
    /// like any other code point (CPython's `surrogatepass`).
    Surrogates(Vec<u8>),
}

impl PyStr {
    /// The text, unless it holds lone surrogates.
    ///
    /// ```
    /// use tpkg_pickle::PyStr;
    /// assert_eq!(PyStr::from("hi").as_str(), Some("hi"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyStr::Utf8(text) => Some(text),
            PyStr::Surrogates(_) => None,
        }
    }

    /// The bytes pickle stores (`surrogatepass` UTF-8).
    ///
    /// ```
    /// assert_eq!(tpkg_pickle::PyStr::from("é").as_bytes(), "é".as_bytes());
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PyStr::Utf8(text) => text.as_bytes(),
            PyStr::Surrogates(bytes) => bytes,
        }
    }

    /// The text with each lone surrogate shown as `\udXXX`, as Python's
    /// `repr` would show it.
    ///
    /// ```
    /// use tpkg_pickle::PyStr;
    /// assert_eq!(PyStr::from("ok").to_string_lossy(), "ok");
    /// ```
    pub fn to_string_lossy(&self) -> String {
        match self {
            PyStr::Utf8(text) => text.clone(),
            PyStr::Surrogates(bytes) => {
                let mut out = String::new();
                for code_point in crate::text::surrogatepass_code_points(bytes) {
                    match char::from_u32(code_point) {
                        Some(c) => out.push(c),
                        None => out.push_str(&format!("\\u{code_point:04x}")),
                    }
                }
                out
            }
        }
    }
}

impl From<&str> for PyStr {
    fn from(text: &str) -> Self {
        PyStr::Utf8(text.to_owned())
    }
}

impl From<String> for PyStr {
    fn from(text: String) -> Self {
        PyStr::Utf8(text)
    }
}

/// Attributes and items applied to an object after it was created: BUILD's
/// state (`__setstate__` or `__dict__` update), and APPENDS/SETITEMS on
/// list and dict subclasses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extra {
    /// BUILD's argument; a second BUILD replaces the first's in `state` and
    /// is kept in `more_states`.
    pub state: Option<ValueId>,
    /// Further BUILD arguments, in order (rare; kept so nothing is lost).
    pub more_states: Vec<ValueId>,
    /// Items appended (list subclasses).
    pub list_items: Vec<ValueId>,
    /// Items set (dict subclasses, `defaultdict`, ...).
    pub dict_items: Vec<(ValueId, ValueId)>,
}

impl Extra {
    pub(crate) fn add_state(&mut self, state: ValueId) {
        match self.state {
            None => self.state = Some(state),
            Some(_) => self.more_states.push(state),
        }
    }
}

/// One pickled value.
///
/// Plain Python data maps to plain variants. What a pickle would *call* on
/// load stays symbolic: a [`Global`](Value::Global) names a function or
/// class without importing it; [`Reduce`](Value::Reduce) and
/// [`Object`](Value::Object) record a call and its arguments without making
/// it. A [`Policy`](crate::Policy) turns the calls it knows to be harmless
/// constructors (an `OrderedDict`, a `set`, `torch.Size`, ...) into plain
/// variants.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` that fits 64 bits.
    Int(i64),
    /// Any other `int`.
    BigInt(BigInt),
    /// A `float`.
    Float(f64),
    /// A `complex` (`builtins.complex(re, im)`).
    Complex(f64, f64),
    /// A `str`.
    Str(PyStr),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `bytearray`.
    ByteArray(Vec<u8>),
    /// A `tuple`.
    Tuple(Vec<ValueId>),
    /// A `list`.
    List(Vec<ValueId>),
    /// A `dict`, in insertion order. Keys are any hashable value; a key
    /// set twice keeps its first position and its last value.
    Dict(Vec<(ValueId, ValueId)>),
    /// A `set` (members in pickle order).
    Set(Vec<ValueId>),
    /// A `frozenset`.
    FrozenSet(Vec<ValueId>),
    /// `collections.OrderedDict`, with BUILD's state (PyTorch's state dicts
    /// carry a `_metadata` attribute this way).
    OrderedDict {
        /// Items in order.
        items: Vec<(ValueId, ValueId)>,
        /// BUILD's state, if any.
        state: Option<ValueId>,
    },
    /// `torch.Size(...)`: the dimensions.
    TorchSize(Vec<ValueId>),
    /// `torch.device(...)`, as PyTorch prints it (`cpu`, `cuda:0`).
    TorchDevice(String),
    /// A dtype such as `torch.float16`, by its name without `torch.`.
    TorchDtype(String),
    /// A reference to `module.name` (GLOBAL, STACK_GLOBAL, INST/OBJ's class),
    /// never imported.
    Global {
        /// The module.
        module: String,
        /// The qualified name inside it.
        name: String,
    },
    /// `callable(*args)`, never called.
    Reduce {
        /// What would be called.
        callable: ValueId,
        /// Its arguments (a tuple).
        args: ValueId,
        /// What happened to the result afterwards.
        extra: Box<Extra>,
    },
    /// `class.__new__(class, *args, **kwargs)` (NEWOBJ, NEWOBJ_EX, INST,
    /// OBJ, `copyreg._reconstructor`), never instantiated.
    Object {
        /// The class.
        class: ValueId,
        /// Positional arguments (a tuple).
        args: ValueId,
        /// Keyword arguments (NEWOBJ_EX), a dict.
        kwargs: Option<ValueId>,
        /// What happened to the object afterwards (its state).
        extra: Box<Extra>,
    },
    /// A persistent id: a reference the pickler kept out of band (PyTorch:
    /// tensor storages, `reduce_package` objects). The caller resolves it.
    PersistentId(ValueId),
}

/// Every value of one pickle, and which one is the result.
///
/// ```
/// use tpkg_pickle::{decode, Value};
///
/// // pickle.dumps([1, "a"], protocol=2)
/// let graph = decode(b"\x80\x02]q\x00(K\x01X\x01\x00\x00\x00aq\x01e.").unwrap();
/// let Value::List(items) = graph.get(graph.root()) else { panic!() };
/// assert_eq!(graph.get(items[0]), &Value::Int(1));
/// assert_eq!(graph.get(items[1]).as_str(), Some("a"));
/// ```
#[derive(Debug, Clone)]
pub struct ValueGraph {
    pub(crate) nodes: Vec<Value>,
    /// For decoded graphs, the byte offset of the opcode that made each
    /// node; empty for graphs built with [`ValueGraph::new`].
    pub(crate) origins: Vec<u32>,
    pub(crate) root: ValueId,
    /// BUILDs on values that hold no state of their own: `(target, state)`.
    pub(crate) loose_builds: Vec<(ValueId, ValueId)>,
}

/// Graphs are equal when their values and roots are (where in a pickle
/// the values came from does not count).
impl PartialEq for ValueGraph {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes && self.root == other.root
    }
}

impl ValueGraph {
    /// A graph holding one value (the root), to build on with [`add`](Self::add).
    ///
    /// ```
    /// use tpkg_pickle::{Value, ValueGraph};
    /// let mut graph = ValueGraph::new(Value::List(vec![]));
    /// let one = graph.add(Value::Int(1));
    /// let root = graph.root();
    /// if let Value::List(items) = graph.get_mut(root) { items.push(one); }
    /// ```
    pub fn new(root: Value) -> Self {
        ValueGraph {
            nodes: vec![root],
            origins: Vec::new(),
            root: ValueId(0),
            loose_builds: Vec::new(),
        }
    }

    /// Adds a value and returns its id.
    pub fn add(&mut self, value: Value) -> ValueId {
        let id = ValueId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.nodes.push(value);
        id
    }

    /// The result of the pickle.
    pub fn root(&self) -> ValueId {
        self.root
    }

    /// Makes another value the result.
    pub fn set_root(&mut self, root: ValueId) {
        self.root = root;
    }

    /// A value by id.
    ///
    /// # Panics
    /// If `id` does not belong to this graph.
    pub fn get(&self, id: ValueId) -> &Value {
        &self.nodes[id.index()]
    }

    /// A value by id, mutably.
    ///
    /// # Panics
    /// If `id` does not belong to this graph.
    pub fn get_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.nodes[id.index()]
    }

    /// BUILDs whose target is a global or a persistent id, as `(target,
    /// state)`, in pickle order. CPython applies them to the object itself:
    /// `__setstate__` if it has one, else the state's items become
    /// attributes of the class, function or module the global names (a
    /// way to rewrite code of the running process that a scanner must
    /// see).
    ///
    /// ```
    /// // GLOBAL torch.nn.Module, BUILD (None, {'x': 1})
    /// let data = b"ctorch.nn\nModule\nN}X\x01\x00\x00\x00xK\x01s\x86b.";
    /// let graph = tpkg_pickle::decode_with(data, &Default::default(), &tpkg_pickle::Symbolic).unwrap();
    /// assert_eq!(graph.loose_builds().len(), 1);
    /// ```
    pub fn loose_builds(&self) -> &[(ValueId, ValueId)] {
        &self.loose_builds
    }

    /// For a decoded graph, the byte offset in the pickle of the opcode that
    /// made value `id` (GLOBAL, REDUCE, BUILD's object...); `None` for values
    /// added after decoding or in graphs built by hand.
    ///
    /// ```
    /// // pickle.dumps(collections.OrderedDict(), protocol=3), decoded symbolically
    /// let data = b"\x80\x03ccollections\nOrderedDict\nq\x00)Rq\x01.";
    /// let graph = tpkg_pickle::decode_with(data, &Default::default(), &tpkg_pickle::Symbolic).unwrap();
    /// assert_eq!(graph.origin(graph.root()), Some(30)); // the REDUCE
    /// ```
    pub fn origin(&self, id: ValueId) -> Option<usize> {
        self.origins.get(id.index()).map(|&o| o as usize)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every value with its id.
    pub fn iter(&self) -> impl Iterator<Item = (ValueId, &Value)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, v)| (ValueId(i as u32), v))
    }
}

impl Value {
    /// The text of a `str` value without surrogates.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => text.as_str(),
            _ => None,
        }
    }

    /// The kind of value, for messages ([`ValueKind`]'s `Display` is its
    /// short name: `list`, `torch.Size`, ...).
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::None => ValueKind::None,
            Value::Bool(_) => ValueKind::Bool,
            Value::Int(_) | Value::BigInt(_) => ValueKind::Int,
            Value::Float(_) => ValueKind::Float,
            Value::Complex(..) => ValueKind::Complex,
            Value::Str(_) => ValueKind::Str,
            Value::Bytes(_) => ValueKind::Bytes,
            Value::ByteArray(_) => ValueKind::ByteArray,
            Value::Tuple(_) => ValueKind::Tuple,
            Value::List(_) => ValueKind::List,
            Value::Dict(_) => ValueKind::Dict,
            Value::Set(_) => ValueKind::Set,
            Value::FrozenSet(_) => ValueKind::FrozenSet,
            Value::OrderedDict { .. } => ValueKind::OrderedDict,
            Value::TorchSize(_) => ValueKind::TorchSize,
            Value::TorchDevice(_) => ValueKind::TorchDevice,
            Value::TorchDtype(_) => ValueKind::TorchDtype,
            Value::Global { .. } => ValueKind::Global,
            Value::Reduce { .. } => ValueKind::Reduce,
            Value::Object { .. } => ValueKind::Object,
            Value::PersistentId(_) => ValueKind::PersistentId,
        }
    }
}

/// What kind of value a [`Value`] is ([`Value::kind`]); `Display` gives
/// its short name for messages (`None`, `int`, `list`, `torch.Size`,
/// `persistent id`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// `None`.
    None,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `float`.
    Float,
    /// `complex`.
    Complex,
    /// `str`.
    Str,
    /// `bytes`.
    Bytes,
    /// `bytearray`.
    ByteArray,
    /// `tuple`.
    Tuple,
    /// `list`.
    List,
    /// `dict`.
    Dict,
    /// `set`.
    Set,
    /// `frozenset`.
    FrozenSet,
    /// `OrderedDict`.
    OrderedDict,
    /// `torch.Size`.
    TorchSize,
    /// `torch.device`.
    TorchDevice,
    /// `torch.dtype`.
    TorchDtype,
    /// `global`.
    Global,
    /// `reduce`.
    Reduce,
    /// `object`.
    Object,
    /// `persistent id`.
    PersistentId,
}

impl ValueKind {
    /// The short name: `None`, `int`, `list`, `torch.Size`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::None => "None",
            ValueKind::Bool => "bool",
            ValueKind::Int => "int",
            ValueKind::Float => "float",
            ValueKind::Complex => "complex",
            ValueKind::Str => "str",
            ValueKind::Bytes => "bytes",
            ValueKind::ByteArray => "bytearray",
            ValueKind::Tuple => "tuple",
            ValueKind::List => "list",
            ValueKind::Dict => "dict",
            ValueKind::Set => "set",
            ValueKind::FrozenSet => "frozenset",
            ValueKind::OrderedDict => "OrderedDict",
            ValueKind::TorchSize => "torch.Size",
            ValueKind::TorchDevice => "torch.device",
            ValueKind::TorchDtype => "torch.dtype",
            ValueKind::Global => "global",
            ValueKind::Reduce => "reduce",
            ValueKind::Object => "object",
            ValueKind::PersistentId => "persistent id",
        }
    }
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
