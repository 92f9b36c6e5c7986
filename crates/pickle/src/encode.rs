//! Writing a [`ValueGraph`] as a pickle that CPython (and PyTorch's
//! `PackageImporter`) loads.
//!
//! Every string, bytes object, container, global and object is memoized
//! when first written, so a value referenced twice is written once and read
//! back as one object, and cycles through lists, dicts and objects work —
//! the same choices CPython's pickler makes.

use std::collections::HashMap;

use num_bigint::BigInt;

use crate::error::EncodeError;
use crate::opcode::Opcode::{self, *};
use crate::value::{Extra, Value, ValueGraph, ValueId};

/// Deepest nesting written (CPython's pickler stops near its recursion
/// limit of 1000 too).
pub const MAX_ENCODE_DEPTH: usize = 1000;

/// Items per APPENDS/SETITEMS batch, as CPython writes them.
const BATCH: usize = 1000;

/// Replaces values by persistent ids while encoding (Python's
/// `Pickler.persistent_id`): return the id of the value to write as the
/// persistent id, or `None` to write the value itself.
pub type PersistentIdHook<'h> = dyn FnMut(&ValueGraph, ValueId) -> Option<ValueId> + 'h;

/// Encodes `graph` with `protocol` (2 to 5; PyTorch packages use 3).
///
/// ```
/// use tpkg_pickle::{decode, encode, Value, ValueGraph};
///
/// let mut graph = ValueGraph::new(Value::List(vec![]));
/// let item = graph.add(Value::Int(7));
/// let root = graph.root();
/// if let Value::List(items) = graph.get_mut(root) { items.extend([item, root]); }
///
/// let bytes = encode(&graph, 3).unwrap();
/// let back = decode(&bytes).unwrap();
/// let Value::List(items) = back.get(back.root()) else { panic!() };
/// assert_eq!(back.get(items[0]), &Value::Int(7));
/// assert_eq!(items[1], back.root()); // the cycle survives
/// ```
pub fn encode(graph: &ValueGraph, protocol: u8) -> Result<Vec<u8>, EncodeError> {
    Encoder::new(protocol)?.encode(graph)
}

/// A configurable encoder.
pub struct Encoder<'h> {
    protocol: u8,
    persistent_id: Option<Box<PersistentIdHook<'h>>>,
}

impl std::fmt::Debug for Encoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("protocol", &self.protocol)
            .field("persistent_id", &self.persistent_id.is_some())
            .finish()
    }
}

impl<'h> Encoder<'h> {
    /// An encoder for `protocol` (2 to 5).
    pub fn new(protocol: u8) -> Result<Self, EncodeError> {
        if !(2..=5).contains(&protocol) {
            return Err(EncodeError::UnsupportedProtocol(protocol));
        }
        Ok(Encoder {
            protocol,
            persistent_id: None,
        })
    }

    /// Installs a persistent-id hook.
    ///
    /// ```
    /// use tpkg_pickle::{decode, Encoder, PyStr, Value, ValueGraph};
    /// let mut graph = ValueGraph::new(Value::Str(PyStr::from("big tensor")));
    /// let key = graph.add(Value::Str(PyStr::from("storage 0")));
    /// let mut encoder = Encoder::new(3).unwrap()
    ///     .with_persistent_id(move |_, id| (id.index() == 0).then_some(key));
    /// let back = decode(&encoder.encode(&graph).unwrap()).unwrap();
    /// assert!(matches!(back.get(back.root()), Value::PersistentId(_)));
    /// ```
    pub fn with_persistent_id(
        mut self,
        hook: impl FnMut(&ValueGraph, ValueId) -> Option<ValueId> + 'h,
    ) -> Self {
        self.persistent_id = Some(Box::new(hook));
        self
    }

    /// Encodes a whole graph, from its root.
    pub fn encode(&mut self, graph: &ValueGraph) -> Result<Vec<u8>, EncodeError> {
        let mut writer = Writer {
            protocol: self.protocol,
            graph,
            out: Vec::new(),
            memo: HashMap::new(),
            memo_len: 0,
            globals: HashMap::new(),
            hook: self.persistent_id.as_deref_mut(),
            depth: 0,
        };
        writer.op_u8(PROTO, self.protocol);
        let body_start = writer.out.len();
        writer.save(graph.root())?;
        writer.op(STOP);
        if self.protocol >= 4 {
            // One frame around the body: valid for every protocol-4 reader,
            // which reads a frame of any length.
            let body = writer.out.split_off(body_start);
            writer.op(FRAME);
            writer
                .out
                .extend_from_slice(&(body.len() as u64).to_le_bytes());
            writer.out.extend_from_slice(&body);
        }
        Ok(writer.out)
    }
}

struct Writer<'g, 'h, 'r> {
    protocol: u8,
    graph: &'g ValueGraph,
    out: Vec<u8>,
    /// Memo index of each node written.
    memo: HashMap<ValueId, u32>,
    /// Memo entries written so far (nodes and helper values).
    memo_len: u32,
    /// Memo index of each global written, so it is written once.
    globals: HashMap<(String, String), u32>,
    hook: Option<&'r mut PersistentIdHook<'h>>,
    depth: usize,
}

impl Writer<'_, '_, '_> {
    fn op(&mut self, op: Opcode) {
        self.out.push(op.byte());
    }

    fn ops(&mut self, ops: &[Opcode]) {
        self.out.extend(ops.iter().map(|op| op.byte()));
    }

    /// An opcode and its one-byte operand.
    fn op_u8(&mut self, op: Opcode, operand: u8) {
        self.out.extend_from_slice(&[op.byte(), operand]);
    }

    fn memoize(&mut self, id: ValueId) {
        let index = self.memo_anonymous();
        self.memo.insert(id, index);
    }

    /// Memoizes the value on top of the stack; returns its index.
    fn memo_anonymous(&mut self) -> u32 {
        let index = self.memo_len;
        self.memo_len += 1;
        if self.protocol >= 4 {
            self.op(MEMOIZE);
        } else if index < 256 {
            self.op_u8(BINPUT, index as u8);
        } else {
            self.op(LONG_BINPUT);
            self.out.extend_from_slice(&index.to_le_bytes());
        }
        index
    }

    fn get(&mut self, index: u32) {
        if index < 256 {
            self.op_u8(BINGET, index as u8);
        } else {
            self.op(LONG_BINGET);
            self.out.extend_from_slice(&index.to_le_bytes());
        }
    }

    fn save(&mut self, id: ValueId) -> Result<(), EncodeError> {
        if let Some(hook) = self.hook.as_mut()
            && let Some(pid) = hook(self.graph, id)
        {
            // The persistent id itself is written without the hook.
            let hook = self.hook.take();
            let result = self.save(pid);
            self.hook = hook;
            result?;
            self.op(BINPERSID);
            return Ok(());
        }
        if let Some(&index) = self.memo.get(&id) {
            self.get(index);
            return Ok(());
        }
        self.depth += 1;
        if self.depth > MAX_ENCODE_DEPTH {
            return Err(EncodeError::TooDeep(MAX_ENCODE_DEPTH));
        }
        let result = self.save_value(id);
        self.depth -= 1;
        result
    }

    fn save_value(&mut self, id: ValueId) -> Result<(), EncodeError> {
        let graph = self.graph;
        match graph.get(id) {
            Value::None => self.op(NONE),
            Value::Bool(true) => self.op(NEWTRUE),
            Value::Bool(false) => self.op(NEWFALSE),
            Value::Int(i) => self.int(*i),
            Value::BigInt(i) => self.big_int(i),
            Value::Float(x) => {
                self.op(BINFLOAT);
                self.out.extend_from_slice(&x.to_be_bytes());
            }
            Value::Complex(re, im) => {
                self.global_named("builtins", "complex")?;
                self.float(*re);
                self.float(*im);
                self.ops(&[TUPLE2, REDUCE]);
                self.memoize(id);
            }
            Value::Str(text) => {
                self.str_bytes(text.as_bytes());
                self.memoize(id);
            }
            Value::Bytes(bytes) => self.bytes(id, bytes)?,
            Value::ByteArray(bytes) => self.bytearray(id, bytes)?,
            Value::Tuple(items) => self.tuple(id, items)?,
            Value::List(items) => {
                self.op(EMPTY_LIST);
                self.memoize(id);
                self.appends(items)?;
            }
            Value::Dict(items) => {
                self.op(EMPTY_DICT);
                self.memoize(id);
                self.setitems(items)?;
            }
            Value::Set(members) => self.set(id, members)?,
            Value::FrozenSet(members) => self.frozenset(id, members)?,
            Value::OrderedDict { items, state } => {
                self.global_named("collections", "OrderedDict")?;
                self.ops(&[EMPTY_TUPLE, REDUCE]);
                self.memoize(id);
                self.setitems(items)?;
                if let Some(state) = state {
                    self.save(*state)?;
                    self.op(BUILD);
                }
            }
            Value::TorchSize(dims) => {
                self.global_named("torch", "Size")?;
                self.tuple_fresh(dims)?;
                self.ops(&[TUPLE1, REDUCE]);
                self.memoize(id);
            }
            Value::TorchDevice(device) => self.device(id, device)?,
            Value::TorchDtype(name) => {
                let index = self.global_named("torch", name)?;
                self.memo.insert(id, index);
            }
            Value::Global { module, name } => {
                let index = self.global_named(module, name)?;
                self.memo.insert(id, index);
            }
            Value::Reduce {
                callable,
                args,
                extra,
            } => {
                self.save(*callable)?;
                self.save(*args)?;
                self.op(REDUCE);
                self.memoize(id);
                self.extra(extra)?;
            }
            Value::Object {
                class,
                args,
                kwargs,
                extra,
            } => {
                self.save(*class)?;
                self.save(*args)?;
                match kwargs {
                    Some(kwargs) if self.protocol >= 4 => {
                        self.save(*kwargs)?;
                        self.op(NEWOBJ_EX);
                    }
                    Some(_) => {
                        return Err(EncodeError::Unencodable {
                            what: "object with keyword arguments",
                            reason: "NEWOBJ_EX needs protocol 4 or later".to_owned(),
                        });
                    }
                    None => self.op(NEWOBJ),
                }
                self.memoize(id);
                self.extra(extra)?;
            }
            Value::PersistentId(pid) => {
                self.save(*pid)?;
                self.op(BINPERSID);
            }
        }
        Ok(())
    }

    /// A set: EMPTY_SET and ADDITEMS from protocol 4, `builtins.set(list)` before.
    fn set(&mut self, id: ValueId, members: &[ValueId]) -> Result<(), EncodeError> {
        if self.protocol >= 4 {
            self.op(EMPTY_SET);
            self.memoize(id);
            for chunk in members.chunks(BATCH) {
                self.op(MARK);
                for member in chunk {
                    self.save(*member)?;
                }
                self.op(ADDITEMS);
            }
        } else {
            self.global_named("builtins", "set")?;
            self.op(EMPTY_LIST);
            self.appends_fresh(members)?;
            self.ops(&[TUPLE1, REDUCE]);
            self.memoize(id);
        }
        Ok(())
    }

    /// A frozenset: FROZENSET from protocol 4, `builtins.frozenset(list)` before.
    fn frozenset(&mut self, id: ValueId, members: &[ValueId]) -> Result<(), EncodeError> {
        if self.protocol >= 4 {
            self.op(MARK);
            for member in members {
                self.save(*member)?;
            }
            self.op(FROZENSET);
            self.memoize(id);
        } else {
            self.global_named("builtins", "frozenset")?;
            self.op(EMPTY_LIST);
            self.appends_fresh(members)?;
            self.ops(&[TUPLE1, REDUCE]);
            self.memoize(id);
        }
        Ok(())
    }

    /// `torch.device(kind)` or `torch.device(kind, index)`.
    fn device(&mut self, id: ValueId, device: &str) -> Result<(), EncodeError> {
        self.global_named("torch", "device")?;
        match device.split_once(':') {
            Some((kind, index)) => {
                let index: i64 = index.parse().map_err(|_| EncodeError::Unencodable {
                    what: "torch.device",
                    reason: format!("{device:?} has no integer index"),
                })?;
                self.str_bytes(kind.as_bytes());
                self.int(index);
                self.ops(&[TUPLE2, REDUCE]);
            }
            None => {
                self.str_bytes(device.as_bytes());
                self.ops(&[TUPLE1, REDUCE]);
            }
        }
        self.memoize(id);
        Ok(())
    }

    fn extra(&mut self, extra: &Extra) -> Result<(), EncodeError> {
        self.appends(&extra.list_items)?;
        self.setitems(&extra.dict_items)?;
        for state in extra.state.iter().chain(&extra.more_states) {
            self.save(*state)?;
            self.op(BUILD);
        }
        Ok(())
    }

    fn int(&mut self, value: i64) {
        match value {
            0..=0xFF => self.op_u8(BININT1, value as u8),
            0x100..=0xFFFF => {
                self.op(BININT2);
                self.out.extend_from_slice(&(value as u16).to_le_bytes());
            }
            _ if i32::try_from(value).is_ok() => {
                self.op(BININT);
                self.out.extend_from_slice(&(value as i32).to_le_bytes());
            }
            _ => self.big_int(&BigInt::from(value)),
        }
    }

    fn big_int(&mut self, value: &BigInt) {
        if let Ok(small) = i64::try_from(value)
            && i32::try_from(small).is_ok()
        {
            return self.int(small);
        }
        let bytes = value.to_signed_bytes_le();
        if bytes.len() < 256 {
            self.op_u8(LONG1, bytes.len() as u8);
        } else {
            self.op(LONG4);
            self.out
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(&bytes);
    }

    fn float(&mut self, value: f64) {
        self.op(BINFLOAT);
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn str_bytes(&mut self, bytes: &[u8]) {
        if self.protocol >= 4 && bytes.len() < 256 {
            self.op_u8(SHORT_BINUNICODE, bytes.len() as u8);
        } else if let Ok(len) = u32::try_from(bytes.len()) {
            self.op(BINUNICODE);
            self.out.extend_from_slice(&len.to_le_bytes());
        } else {
            self.op(BINUNICODE8);
            self.out
                .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        }
        self.out.extend_from_slice(bytes);
    }

    /// Writes (or fetches from the memo) the global `module.name`; returns
    /// its memo index.
    fn global_named(&mut self, module: &str, name: &str) -> Result<u32, EncodeError> {
        let key = (module.to_owned(), name.to_owned());
        if let Some(&index) = self.globals.get(&key) {
            self.get(index);
            return Ok(index);
        }
        if self.protocol >= 4 {
            self.str_bytes(module.as_bytes());
            self.memo_anonymous();
            self.str_bytes(name.as_bytes());
            self.memo_anonymous();
            self.op(STACK_GLOBAL);
        } else {
            // Protocol 2 writes Python 2 names for builtins, as CPython's
            // `fix_imports` does.
            let module = match (self.protocol, module) {
                (2, "builtins") => "__builtin__",
                _ => module,
            };
            if module.contains('\n') || name.contains('\n') {
                return Err(EncodeError::Unencodable {
                    what: "global",
                    reason: format!("{module:?}.{name:?} contains a newline"),
                });
            }
            self.op(GLOBAL);
            self.out.extend_from_slice(module.as_bytes());
            self.out.push(b'\n');
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'\n');
        }
        let index = self.memo_anonymous();
        self.globals.insert(key, index);
        Ok(index)
    }

    /// A `bytes` value without memoizing it (SHORT_BINBYTES, BINBYTES or
    /// BINBYTES8 by length; protocol 3 and later).
    fn raw_bytes(&mut self, bytes: &[u8]) {
        if bytes.len() < 256 {
            self.op_u8(SHORT_BINBYTES, bytes.len() as u8);
        } else if let Ok(len) = u32::try_from(bytes.len()) {
            self.op(BINBYTES);
            self.out.extend_from_slice(&len.to_le_bytes());
        } else {
            self.op(BINBYTES8);
            self.out
                .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        }
        self.out.extend_from_slice(bytes);
    }

    /// `(text, encoding)` arguments and the REDUCE that makes bytes from
    /// them, as CPython's protocol 2 writes `bytes`/`bytearray`.
    fn latin1_call(&mut self, bytes: &[u8], encoding: &[u8]) {
        let latin1: String = bytes.iter().map(|&b| char::from(b)).collect();
        self.str_bytes(latin1.as_bytes());
        self.str_bytes(encoding);
        self.ops(&[TUPLE2, REDUCE]);
    }

    fn bytes(&mut self, id: ValueId, bytes: &[u8]) -> Result<(), EncodeError> {
        if self.protocol >= 3 {
            self.raw_bytes(bytes);
        } else if bytes.is_empty() {
            self.global_named("builtins", "bytes")?;
            self.ops(&[EMPTY_TUPLE, REDUCE]);
        } else {
            // CPython's protocol 2: _codecs.encode(latin-1 text, 'latin1').
            self.global_named("_codecs", "encode")?;
            self.latin1_call(bytes, b"latin1");
        }
        self.memoize(id);
        Ok(())
    }

    fn bytearray(&mut self, id: ValueId, bytes: &[u8]) -> Result<(), EncodeError> {
        if self.protocol >= 5 {
            self.op(BYTEARRAY8);
            self.out
                .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            self.out.extend_from_slice(bytes);
        } else if self.protocol >= 3 {
            self.global_named("builtins", "bytearray")?;
            // The inner bytes object is not a node: written unmemoized.
            self.raw_bytes(bytes);
            self.ops(&[TUPLE1, REDUCE]);
        } else {
            self.global_named("builtins", "bytearray")?;
            self.latin1_call(bytes, b"latin-1");
        }
        self.memoize(id);
        Ok(())
    }

    /// A tuple, CPython-style: if writing its items memoized the tuple
    /// itself (a cycle through a list or dict), drop the items and fetch it.
    fn tuple(&mut self, id: ValueId, items: &[ValueId]) -> Result<(), EncodeError> {
        if items.is_empty() {
            self.op(EMPTY_TUPLE);
            return Ok(());
        }
        let small = items.len() <= 3;
        if !small {
            self.op(MARK);
        }
        for item in items {
            self.save(*item)?;
        }
        if let Some(&index) = self.memo.get(&id) {
            if small {
                for _ in items {
                    self.op(POP);
                }
            } else {
                self.op(POP_MARK);
            }
            self.get(index);
            return Ok(());
        }
        if small {
            self.op(match items.len() {
                1 => TUPLE1,
                2 => TUPLE2,
                _ => TUPLE3,
            });
        } else {
            self.op(TUPLE);
        }
        self.memoize(id);
        Ok(())
    }

    /// A tuple that is not a node of its own (arguments we build).
    fn tuple_fresh(&mut self, items: &[ValueId]) -> Result<(), EncodeError> {
        self.op(MARK);
        for item in items {
            self.save(*item)?;
        }
        self.op(TUPLE);
        Ok(())
    }

    /// Items appended to the list on top of the stack.
    fn appends(&mut self, items: &[ValueId]) -> Result<(), EncodeError> {
        for chunk in items.chunks(BATCH) {
            if let [only] = chunk {
                self.save(*only)?;
                self.op(APPEND);
            } else {
                self.op(MARK);
                for item in chunk {
                    self.save(*item)?;
                }
                self.op(APPENDS);
            }
        }
        Ok(())
    }

    /// Like `appends`, for a list we build (not a node).
    fn appends_fresh(&mut self, items: &[ValueId]) -> Result<(), EncodeError> {
        self.appends(items)
    }

    fn setitems(&mut self, items: &[(ValueId, ValueId)]) -> Result<(), EncodeError> {
        for chunk in items.chunks(BATCH) {
            if let [(key, value)] = chunk {
                self.save(*key)?;
                self.save(*value)?;
                self.op(SETITEM);
            } else {
                self.op(MARK);
                for (key, value) in chunk {
                    self.save(*key)?;
                    self.save(*value)?;
                }
                self.op(SETITEMS);
            }
        }
        Ok(())
    }
}
