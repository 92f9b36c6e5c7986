//! The pickle virtual machine, run as data.
//!
//! Every opcode of protocols 0 to 5 is read; none imports, calls or
//! allocates beyond what the input itself holds (strings are checked against
//! the remaining bytes before any allocation; every node comes from an
//! opcode). The machine is a loop over opcodes with an explicit stack, so no
//! input can overflow the Rust stack.

use std::collections::HashMap;

use num_bigint::BigInt;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::policy::{Known, Policy, TorchData};
use crate::text;
use crate::value::{PyStr, Value, ValueGraph, ValueId};

/// Limits and out-of-band inputs for [`decode_with`].
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Deepest MARK nesting accepted.
    pub max_mark_depth: usize,
    /// Most memo entries accepted.
    pub max_memo: usize,
    /// Longest decimal text of a protocol-0 `int` (CPython's own limit is 4300
    /// digits; parsing longer text is quadratic).
    pub max_int_digits: usize,
    /// `copyreg` extension registry for EXT1/EXT2/EXT4: code → (module, name).
    pub extensions: HashMap<u32, (String, String)>,
    /// Out-of-band buffers for protocol 5's NEXT_BUFFER, in order.
    pub buffers: Vec<Vec<u8>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_mark_depth: 10_000,
            max_memo: 1 << 26,
            max_int_digits: 4300,
            extensions: HashMap::new(),
            buffers: Vec::new(),
        }
    }
}

/// Decodes a pickle with default limits and the [`TorchData`] policy.
///
/// ```
/// use tpkg_pickle::{decode, Value};
/// // pickle.dumps(None, protocol=3)
/// let graph = decode(b"\x80\x03N.").unwrap();
/// assert_eq!(graph.get(graph.root()), &Value::None);
/// ```
pub fn decode(data: &[u8]) -> Result<ValueGraph, DecodeError> {
    decode_with(data, &DecodeOptions::default(), &TorchData)
}

/// Decodes a pickle with the given limits and policy.
pub fn decode_with(
    data: &[u8],
    options: &DecodeOptions,
    policy: &dyn Policy,
) -> Result<ValueGraph, DecodeError> {
    decode_prefix(data, options, policy).map(|(graph, _)| graph)
}

/// Decodes the pickle at the start of `data`, which may go on past its
/// STOP (a stream of pickles, as `pickle.load` reads one from a file), and
/// returns it with its length: the bytes up to and including STOP, where
/// the next `pickle.load` would start.
///
/// ```
/// use tpkg_pickle::{decode_prefix, DecodeOptions, TorchData, Value};
/// // pickle.dumps(1001, protocol=2) + pickle.dumps(None, protocol=2)
/// let stream = b"\x80\x02M\xe9\x03.\x80\x02N.";
/// let (first, len) = decode_prefix(stream, &DecodeOptions::default(), &TorchData).unwrap();
/// assert_eq!((first.get(first.root()), len), (&Value::Int(1001), 6));
/// let (second, _) = decode_prefix(&stream[len..], &DecodeOptions::default(), &TorchData).unwrap();
/// assert_eq!(second.get(second.root()), &Value::None);
/// ```
pub fn decode_prefix(
    data: &[u8],
    options: &DecodeOptions,
    policy: &dyn Policy,
) -> Result<(ValueGraph, usize), DecodeError> {
    let mut machine = Machine::new(data, options, policy);
    let (root, used) = machine.run()?;
    Ok((machine.into_graph(root), used))
}

/// Decodes as [`decode_prefix`] does, but on failure keeps what was
/// decoded before it: the values the opcodes before the failing one made
/// (their root is `None`). CPython's unpickler has run those opcodes by
/// the time it fails, so a scanner audits them (a payload followed by
/// garbage is still a payload).
///
/// ```
/// use tpkg_pickle::{decode_partial, DecodeOptions, Symbolic, Value};
/// // GLOBAL os.system, then a memo lookup that fails.
/// let (graph, result) = decode_partial(b"cos\nsystem\nh\x07.", &DecodeOptions::default(), &Symbolic);
/// assert!(result.is_err());
/// assert!(graph.iter().any(|(_, v)| matches!(v, Value::Global { name, .. } if name == "system")));
/// ```
pub fn decode_partial(
    data: &[u8],
    options: &DecodeOptions,
    policy: &dyn Policy,
) -> (ValueGraph, Result<usize, DecodeError>) {
    let mut machine = Machine::new(data, options, policy);
    match machine.run() {
        Ok((root, used)) => (machine.into_graph(root), Ok(used)),
        Err(error) => {
            let root = machine.add(Value::None);
            (machine.into_graph(root), Err(error))
        }
    }
}

/// The pickles of a stream, one after another, as repeated `pickle.load`
/// calls on one file read them ([`decode_stream`]).
pub struct PickleStream<'a> {
    data: &'a [u8],
    at: usize,
    options: &'a DecodeOptions,
    policy: &'a dyn Policy,
    done: bool,
}

impl std::fmt::Debug for PickleStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickleStream")
            .field("len", &self.data.len())
            .field("at", &self.at)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Iterator for PickleStream<'_> {
    /// A pickle's byte offset and graph; or the offset of the first pickle
    /// that does not decode and why, after which the stream ends.
    type Item = Result<(usize, ValueGraph), (usize, DecodeError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.data.len() {
            return None;
        }
        let at = self.at;
        match decode_prefix(&self.data[at..], self.options, self.policy) {
            Ok((graph, used)) => {
                // A pickle is at least PROTO-less STOP (one byte); a zero
                // length cannot happen, but must not loop forever.
                self.done = used == 0;
                self.at += used;
                Some(Ok((at, graph)))
            }
            Err(error) => {
                self.done = true;
                Some(Err((at, error)))
            }
        }
    }
}

/// Every pickle of `data`, one after another ([`decode_prefix`] in a
/// loop): what a file of several `pickle.dump`s holds, and what a scanner
/// must read whole (a payload may hide in any pickle but the first).
///
/// ```
/// use tpkg_pickle::{decode_stream, DecodeOptions, TorchData, Value};
/// // pickle.dumps(1001, protocol=2) + pickle.dumps(None, protocol=2) + junk
/// let stream = b"\x80\x02M\xe9\x03.\x80\x02N.\xff";
/// let options = DecodeOptions::default();
/// let pickles: Vec<_> = decode_stream(stream, &options, &TorchData).collect();
/// assert_eq!(pickles.len(), 3);
/// assert_eq!(pickles[1].as_ref().unwrap().0, 6);
/// assert_eq!(pickles[2].as_ref().unwrap_err().0, 10);
/// ```
pub fn decode_stream<'a>(
    data: &'a [u8],
    options: &'a DecodeOptions,
    policy: &'a dyn Policy,
) -> PickleStream<'a> {
    PickleStream {
        data,
        at: 0,
        options,
        policy,
        done: false,
    }
}

/// Most nodes reserved before decoding; the graph grows past it as needed.
const INITIAL_NODES_MAX: usize = 1 << 16;

/// Bytes that constructors and globals may copy per input byte (an item
/// copied counts as the 4 bytes of its id), plus [`COPY_BYTES_BASE`].
const COPY_BYTES_PER_INPUT_BYTE: u64 = 64;

/// Bytes any pickle may copy, however short.
const COPY_BYTES_BASE: u64 = 4096;

/// Memo slots kept dense beyond twice the entries stored; sparser indices
/// go to a hash map, so a few far-apart `LONG_BINPUT`s cannot reserve
/// memory out of proportion to the input.
const DENSE_MEMO_SLACK: usize = 1024;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed, for errors.
    at: usize,
    options: &'a DecodeOptions,
    policy: &'a dyn Policy,
    nodes: Vec<Value>,
    origins: Vec<u32>,
    /// BUILDs on globals and persistent ids ([`ValueGraph::loose_builds`]).
    loose_builds: Vec<(ValueId, ValueId)>,
    stack: Vec<ValueId>,
    marks: Vec<usize>,
    memo: Vec<Option<ValueId>>,
    sparse_memo: HashMap<u64, ValueId>,
    memo_count: usize,
    next_buffer: usize,
    /// Bytes constructors and globals may still copy (a `set(list)` copies
    /// the list, `STACK_GLOBAL` its two strings, `torch.device(s)` its
    /// text): [`COPY_BYTES_PER_INPUT_BYTE`] per input byte, so memo
    /// references cannot make the work or the memory quadratic.
    copy_budget: u64,
}

/// Names of opcodes for messages.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "an unknown opcode",
    }
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], options: &'a DecodeOptions, policy: &'a dyn Policy) -> Self {
        Machine {
            data,
            pos: 0,
            at: 0,
            options,
            policy,
            // A guess from the input's size, capped: `data` may be a window
            // much larger than the pickle (a stream's rest), and reserving
            // for it would cost memory no pickle asked for.
            nodes: Vec::with_capacity((data.len() / 4).min(INITIAL_NODES_MAX)),
            origins: Vec::with_capacity((data.len() / 4).min(INITIAL_NODES_MAX)),
            loose_builds: Vec::new(),
            stack: Vec::with_capacity(64),
            marks: Vec::new(),
            memo: Vec::new(),
            sparse_memo: HashMap::new(),
            memo_count: 0,
            next_buffer: 0,
            copy_budget: COPY_BYTES_PER_INPUT_BYTE * data.len() as u64 + COPY_BYTES_BASE,
        }
    }

    fn into_graph(self, root: ValueId) -> ValueGraph {
        ValueGraph {
            nodes: self.nodes,
            origins: self.origins,
            root,
            loose_builds: self.loose_builds,
        }
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: self.at,
            kind,
        }
    }

    fn take(&mut self, len: usize, op: u8) -> Result<&'a [u8], DecodeError> {
        let data = self.data;
        match self
            .pos
            .checked_add(len)
            .and_then(|end| data.get(self.pos..end))
        {
            Some(bytes) => {
                self.pos += len;
                Ok(bytes)
            }
            None => Err(self.error(DecodeErrorKind::Truncated {
                opcode: opcode_name(op),
                needed: len as u64,
            })),
        }
    }

    fn take_array<const N: usize>(&mut self, op: u8) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, op)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    /// A length operand, checked against the bytes that remain.
    fn take_sized(&mut self, len: u64, op: u8) -> Result<&'a [u8], DecodeError> {
        let remaining = (self.data.len() - self.pos) as u64;
        if len > remaining {
            return Err(self.error(DecodeErrorKind::Truncated {
                opcode: opcode_name(op),
                needed: len,
            }));
        }
        self.take(len as usize, op)
    }

    /// A protocol-0 line, without its `\n`.
    fn take_line(&mut self, op: u8) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.pos += end + 1;
                Ok(&rest[..end])
            }
            None => Err(self.error(DecodeErrorKind::Truncated {
                opcode: opcode_name(op),
                needed: rest.len() as u64 + 1,
            })),
        }
    }

    fn add(&mut self, value: Value) -> ValueId {
        let id = ValueId(self.nodes.len() as u32);
        self.nodes.push(value);
        // The opcode that made the value (u32: pickles past 4 GiB saturate).
        self.origins
            .push(u32::try_from(self.at).unwrap_or(u32::MAX));
        id
    }

    fn push(&mut self, value: Value) {
        let id = self.add(value);
        self.stack.push(id);
    }

    fn mark_base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, op: u8) -> Result<ValueId, DecodeError> {
        if self.stack.len() <= self.mark_base() {
            return Err(self.error(DecodeErrorKind::StackUnderflow(opcode_name(op))));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.error(DecodeErrorKind::StackUnderflow(opcode_name(op))))
    }

    fn top(&self, op: u8) -> Result<ValueId, DecodeError> {
        if self.stack.len() <= self.mark_base() {
            return Err(self.error(DecodeErrorKind::StackUnderflow(opcode_name(op))));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.error(DecodeErrorKind::StackUnderflow(opcode_name(op))))
    }

    /// Everything above the last MARK, removing the MARK.
    fn pop_mark(&mut self, op: u8) -> Result<Vec<ValueId>, DecodeError> {
        let base = self
            .marks
            .pop()
            .ok_or_else(|| self.error(DecodeErrorKind::MissingMark(opcode_name(op))))?;
        Ok(self.stack.split_off(base))
    }

    fn memo_put(&mut self, index: u64, id: ValueId) -> Result<(), DecodeError> {
        let is_new = match usize::try_from(index) {
            Ok(i) if i < self.memo.len() => self.memo[i].replace(id).is_none(),
            Ok(i)
                if i <= self.memo.len() + DENSE_MEMO_SLACK
                    && i < 2 * self.memo_count + DENSE_MEMO_SLACK
                    && i < self.options.max_memo =>
            {
                self.memo.resize(i + 1, None);
                self.memo[i] = Some(id);
                true
            }
            _ => self.sparse_memo.insert(index, id).is_none(),
        };
        if is_new {
            self.memo_count += 1;
            if self.memo_count > self.options.max_memo {
                return Err(self.error(DecodeErrorKind::Limit {
                    what: "memo entries",
                    limit: self.options.max_memo as u64,
                }));
            }
        }
        Ok(())
    }

    fn memo_get(&self, index: u64) -> Result<ValueId, DecodeError> {
        let dense = usize::try_from(index)
            .ok()
            .and_then(|i| self.memo.get(i).copied().flatten());
        dense
            .or_else(|| self.sparse_memo.get(&index).copied())
            .ok_or_else(|| self.error(DecodeErrorKind::MemoMiss(index)))
    }

    fn string(&self, bytes: &[u8]) -> Result<Value, DecodeError> {
        text::decode_utf8_surrogatepass(bytes)
            .map(Value::Str)
            .map_err(|at| self.error(DecodeErrorKind::InvalidUtf8 { at }))
    }

    fn invalid_text(&self, op: u8, reason: impl Into<String>) -> DecodeError {
        self.error(DecodeErrorKind::InvalidText {
            opcode: opcode_name(op),
            reason: reason.into(),
        })
    }

    fn wrong(&self, op: u8, expected: &'static str, found: ValueId) -> DecodeError {
        self.error(DecodeErrorKind::WrongOperand {
            opcode: opcode_name(op),
            expected,
            found: self.nodes[found.index()].kind(),
        })
    }

    fn int_from_big(value: BigInt) -> Value {
        match i64::try_from(&value) {
            Ok(small) => Value::Int(small),
            Err(_) => Value::BigInt(value),
        }
    }

    fn text_int(&self, op: u8, line: &[u8]) -> Result<BigInt, DecodeError> {
        let text = std::str::from_utf8(line).map_err(|_| self.invalid_text(op, "not ASCII"))?;
        if text.len() > self.options.max_int_digits {
            return Err(self.error(DecodeErrorKind::Limit {
                what: "digits of a text int",
                limit: self.options.max_int_digits as u64,
            }));
        }
        text::parse_python_int(text)
            .ok_or_else(|| self.invalid_text(op, format!("invalid int literal {text:?}")))
    }

    fn global(&self, module: &str, name: &str) -> Value {
        match self.policy.classify(module, name) {
            Some(Known::TorchDtype(dtype)) => Value::TorchDtype(dtype.to_owned()),
            _ => Value::Global {
                module: module.to_owned(),
                name: name.to_owned(),
            },
        }
    }

    fn global_line(&mut self, op: u8) -> Result<(String, String), DecodeError> {
        let module = self.take_line(op)?;
        let name = self.take_line(op)?;
        // CPython decodes these as UTF-8.
        let as_text = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| self.invalid_text(op, "module or name is not UTF-8"))
        };
        Ok((as_text(module)?, as_text(name)?))
    }

    fn known_of(&self, callable: ValueId) -> Option<Known> {
        match &self.nodes[callable.index()] {
            Value::Global { module, name } => self.policy.classify(module, name),
            _ => None,
        }
    }

    fn tuple_items(&self, id: ValueId) -> Option<&[ValueId]> {
        match &self.nodes[id.index()] {
            Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    fn number(&self, id: ValueId) -> Option<f64> {
        match &self.nodes[id.index()] {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// Latin-1 bytes of a `str` whose code points are all below 256.
    fn latin1(&self, id: ValueId) -> Option<Vec<u8>> {
        let text = self.nodes[id.index()].as_str()?;
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect()
    }

    /// `callable(*args)` as plain data, when the policy knows the callable
    /// and the arguments have the shape the constructor takes.
    fn apply_known(&self, known: Known, args: ValueId) -> Option<Value> {
        let items = self.tuple_items(args)?;
        let node = |id: ValueId| &self.nodes[id.index()];
        Some(match (known, items) {
            (Known::OrderedDict, []) => Value::OrderedDict {
                items: Vec::new(),
                state: None,
            },
            (Known::OrderedDict, [pairs]) => {
                let Value::List(pairs) = node(*pairs) else {
                    return None;
                };
                let mut items = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    match node(*pair) {
                        Value::Tuple(kv) | Value::List(kv) if kv.len() == 2 => {
                            items.push((kv[0], kv[1]));
                        }
                        _ => return None,
                    }
                }
                Value::OrderedDict { items, state: None }
            }
            (Known::Set, []) => Value::Set(Vec::new()),
            (Known::FrozenSet, []) => Value::FrozenSet(Vec::new()),
            (Known::Set | Known::FrozenSet, [members]) => {
                let members = match node(*members) {
                    Value::List(m) | Value::Tuple(m) | Value::Set(m) | Value::FrozenSet(m) => {
                        m.clone()
                    }
                    _ => return None,
                };
                if known == Known::Set {
                    Value::Set(members)
                } else {
                    Value::FrozenSet(members)
                }
            }
            (Known::ByteArray, []) => Value::ByteArray(Vec::new()),
            (Known::Bytes, []) => Value::Bytes(Vec::new()),
            (Known::ByteArray, [bytes]) => match node(*bytes) {
                Value::Bytes(b) => Value::ByteArray(b.clone()),
                _ => return None,
            },
            (Known::ByteArray | Known::CodecsEncode, [text, encoding]) => {
                let encoding = node(*encoding).as_str()?;
                if !matches!(encoding, "latin1" | "latin-1") {
                    return None;
                }
                let bytes = self.latin1(*text)?;
                if known == Known::ByteArray {
                    Value::ByteArray(bytes)
                } else {
                    Value::Bytes(bytes)
                }
            }
            (Known::Complex, [re]) => Value::Complex(self.number(*re)?, 0.0),
            (Known::Complex, [re, im]) => Value::Complex(self.number(*re)?, self.number(*im)?),
            (Known::TorchSize, []) => Value::TorchSize(Vec::new()),
            (Known::TorchSize, [dims]) => match node(*dims) {
                Value::Tuple(d) | Value::List(d)
                    if d.iter().all(|i| matches!(node(*i), Value::Int(_))) =>
                {
                    Value::TorchSize(d.clone())
                }
                _ => return None,
            },
            (Known::TorchDevice, [kind]) => Value::TorchDevice(node(*kind).as_str()?.to_owned()),
            (Known::TorchDevice, [kind, index]) => {
                let Value::Int(index) = node(*index) else {
                    return None;
                };
                Value::TorchDevice(format!("{}:{index}", node(*kind).as_str()?))
            }
            _ => return None,
        })
    }

    /// Counts the bytes a constructor or a global copied against the
    /// copy budget.
    fn charge_copy(&mut self, value: &Value) -> Result<(), DecodeError> {
        let copied = match value {
            Value::Set(items) | Value::FrozenSet(items) | Value::TorchSize(items) => {
                4 * items.len()
            }
            Value::OrderedDict { items, .. } => 8 * items.len(),
            Value::Bytes(bytes) | Value::ByteArray(bytes) => bytes.len(),
            Value::TorchDevice(text) | Value::TorchDtype(text) => text.len(),
            Value::Global { module, name } => module.len() + name.len(),
            _ => 0,
        } as u64;
        match self.copy_budget.checked_sub(copied) {
            Some(left) => {
                self.copy_budget = left;
                Ok(())
            }
            None => Err(self.error(DecodeErrorKind::Limit {
                what: "bytes copied by constructors and globals",
                limit: COPY_BYTES_PER_INPUT_BYTE * self.data.len() as u64 + COPY_BYTES_BASE,
            })),
        }
    }

    fn reduce(&mut self, op: u8, callable: ValueId, args: ValueId) -> Result<Value, DecodeError> {
        if !matches!(self.nodes[args.index()], Value::Tuple(_)) {
            return Err(self.wrong(op, "a tuple of arguments", args));
        }
        if let Some(known) = self.known_of(callable) {
            if known == Known::Reconstructor
                && let Some(&[class, base, state]) = self.tuple_items(args)
                && matches!(&self.nodes[base.index()], Value::Global { module, name }
                    if matches!(module.as_str(), "builtins" | "__builtin__") && name == "object")
                && matches!(self.nodes[state.index()], Value::None)
            {
                let empty = self.add(Value::Tuple(Vec::new()));
                return Ok(Value::Object {
                    class,
                    args: empty,
                    kwargs: None,
                    extra: Box::default(),
                });
            }
            if let Some(value) = self.apply_known(known, args) {
                self.charge_copy(&value)?;
                return Ok(value);
            }
        }
        Ok(Value::Reduce {
            callable,
            args,
            extra: Box::default(),
        })
    }

    fn run(&mut self) -> Result<(ValueId, usize), DecodeError> {
        loop {
            self.at = self.pos;
            let Some(&op) = self.data.get(self.pos) else {
                return Err(self.error(DecodeErrorKind::MissingStop));
            };
            self.pos += 1;
            match op {
                b'.' => {
                    let root = self.pop(op)?;
                    return Ok((root, self.pos));
                }
                0x80 => {
                    let [protocol] = self.take_array(op)?;
                    if protocol > 5 {
                        return Err(self.error(DecodeErrorKind::UnsupportedProtocol(protocol)));
                    }
                }
                0x95 => {
                    // FRAME: a length prefix for buffered reading; the data
                    // is already in memory, so only check it.
                    let len = u64::from_le_bytes(self.take_array(op)?);
                    if len > (self.data.len() - self.pos) as u64 {
                        return Err(self.error(DecodeErrorKind::Truncated {
                            opcode: "FRAME",
                            needed: len,
                        }));
                    }
                }
                b'(' => {
                    if self.marks.len() >= self.options.max_mark_depth {
                        return Err(self.error(DecodeErrorKind::Limit {
                            what: "MARK nesting",
                            limit: self.options.max_mark_depth as u64,
                        }));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop(op)?;
                }
                b'1' => {
                    self.pop_mark(op)?;
                }
                b'2' => {
                    let top = self.top(op)?;
                    self.stack.push(top);
                }
                // Constants and numbers.
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'K' => {
                    let [byte] = self.take_array(op)?;
                    self.push(Value::Int(i64::from(byte)));
                }
                b'M' => {
                    let value = u16::from_le_bytes(self.take_array(op)?);
                    self.push(Value::Int(i64::from(value)));
                }
                b'J' => {
                    let value = i32::from_le_bytes(self.take_array(op)?);
                    self.push(Value::Int(i64::from(value)));
                }
                0x8a => {
                    let [len] = self.take_array(op)?;
                    let bytes = self.take(usize::from(len), op)?;
                    self.push(Self::int_from_big(BigInt::from_signed_bytes_le(bytes)));
                }
                0x8b => {
                    let len = i32::from_le_bytes(self.take_array(op)?);
                    if len < 0 {
                        return Err(self.invalid_text(op, "negative length"));
                    }
                    let bytes = self.take_sized(len as u64, op)?;
                    let value = if bytes.is_empty() {
                        BigInt::from(0)
                    } else {
                        BigInt::from_signed_bytes_le(bytes)
                    };
                    self.push(Self::int_from_big(value));
                }
                b'I' => {
                    let line = self.take_line(op)?;
                    let value = match line {
                        b"01" => Value::Bool(true),
                        b"00" => Value::Bool(false),
                        _ => Self::int_from_big(self.text_int(op, line)?),
                    };
                    self.push(value);
                }
                b'L' => {
                    let line = self.take_line(op)?;
                    let digits = line.strip_suffix(b"L").unwrap_or(line);
                    let value = self.text_int(op, digits)?;
                    self.push(Self::int_from_big(value));
                }
                b'G' => {
                    let value = f64::from_be_bytes(self.take_array(op)?);
                    self.push(Value::Float(value));
                }
                b'F' => {
                    let line = self.take_line(op)?;
                    let value = std::str::from_utf8(line)
                        .ok()
                        .and_then(|text| text.trim().parse::<f64>().ok())
                        .ok_or_else(|| self.invalid_text(op, "invalid float literal"))?;
                    self.push(Value::Float(value));
                }
                // Strings and bytes.
                b'X' => {
                    let len = u32::from_le_bytes(self.take_array(op)?);
                    let bytes = self.take_sized(u64::from(len), op)?;
                    let value = self.string(bytes)?;
                    self.push(value);
                }
                0x8c => {
                    let [len] = self.take_array(op)?;
                    let bytes = self.take(usize::from(len), op)?;
                    let value = self.string(bytes)?;
                    self.push(value);
                }
                0x8d => {
                    let len = u64::from_le_bytes(self.take_array(op)?);
                    let bytes = self.take_sized(len, op)?;
                    let value = self.string(bytes)?;
                    self.push(value);
                }
                b'V' => {
                    let line = self.take_line(op)?;
                    let text = text::decode_raw_unicode_escape(line)
                        .map_err(|reason| self.invalid_text(op, reason))?;
                    self.push(Value::Str(text));
                }
                b'B' => {
                    let len = u32::from_le_bytes(self.take_array(op)?);
                    let bytes = self.take_sized(u64::from(len), op)?;
                    self.push(Value::Bytes(bytes.to_vec()));
                }
                b'C' => {
                    let [len] = self.take_array(op)?;
                    let bytes = self.take(usize::from(len), op)?;
                    self.push(Value::Bytes(bytes.to_vec()));
                }
                0x8e => {
                    let len = u64::from_le_bytes(self.take_array(op)?);
                    let bytes = self.take_sized(len, op)?;
                    self.push(Value::Bytes(bytes.to_vec()));
                }
                0x96 => {
                    let len = u64::from_le_bytes(self.take_array(op)?);
                    let bytes = self.take_sized(len, op)?;
                    self.push(Value::ByteArray(bytes.to_vec()));
                }
                // Python 2 `str`: CPython 3 decodes it as ASCII by default.
                b'T' => {
                    let len = i32::from_le_bytes(self.take_array(op)?);
                    if len < 0 {
                        return Err(self.invalid_text(op, "negative length"));
                    }
                    let bytes = self.take_sized(len as u64, op)?;
                    let value = self.python2_string(op, bytes)?;
                    self.push(value);
                }
                b'U' => {
                    let [len] = self.take_array(op)?;
                    let bytes = self.take(usize::from(len), op)?;
                    let value = self.python2_string(op, bytes)?;
                    self.push(value);
                }
                b'S' => {
                    let line = self.take_line(op)?;
                    let quoted = match line {
                        [q @ (b'\'' | b'"'), inner @ .., end] if end == q => inner,
                        _ => {
                            return Err(
                                self.invalid_text(op, "the STRING opcode argument must be quoted")
                            );
                        }
                    };
                    let bytes = text::escape_decode(quoted)
                        .map_err(|reason| self.invalid_text(op, reason))?;
                    let value = self.python2_string(op, &bytes)?;
                    self.push(value);
                }
                0x97 => {
                    let buffer = self
                        .options
                        .buffers
                        .get(self.next_buffer)
                        .cloned()
                        .ok_or_else(|| self.error(DecodeErrorKind::MissingBuffer))?;
                    self.next_buffer += 1;
                    self.push(Value::ByteArray(buffer));
                }
                0x98 => {
                    // READONLY_BUFFER: a read-only view of the buffer on top.
                    let top = self.top(op)?;
                    if let Value::ByteArray(bytes) = &mut self.nodes[top.index()] {
                        let bytes = std::mem::take(bytes);
                        self.nodes[top.index()] = Value::Bytes(bytes);
                    }
                }
                // Containers.
                b')' => self.push(Value::Tuple(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b'}' => self.push(Value::Dict(Vec::new())),
                0x8f => self.push(Value::Set(Vec::new())),
                0x85..=0x87 => {
                    let count = usize::from(op - 0x84);
                    let mut items = vec![ValueId(0); count];
                    for slot in items.iter_mut().rev() {
                        *slot = self.pop(op)?;
                    }
                    self.push(Value::Tuple(items));
                }
                b't' => {
                    let items = self.pop_mark(op)?;
                    self.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark(op)?;
                    self.push(Value::List(items));
                }
                0x91 => {
                    let items = self.pop_mark(op)?;
                    self.push(Value::FrozenSet(items));
                }
                b'd' => {
                    let items = self.pop_mark(op)?;
                    if items.len() % 2 != 0 {
                        return Err(self.invalid_text(op, "odd number of items for DICT"));
                    }
                    let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect();
                    self.push(Value::Dict(pairs));
                }
                b'a' => {
                    let item = self.pop(op)?;
                    let target = self.top(op)?;
                    self.extend_list(op, target, &[item])?;
                }
                b'e' => {
                    let items = self.pop_mark(op)?;
                    let target = self.top(op)?;
                    self.extend_list(op, target, &items)?;
                }
                b's' => {
                    let value = self.pop(op)?;
                    let key = self.pop(op)?;
                    let target = self.top(op)?;
                    self.extend_dict(op, target, &[key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark(op)?;
                    if items.len() % 2 != 0 {
                        return Err(self.invalid_text(op, "odd number of items for SETITEMS"));
                    }
                    let target = self.top(op)?;
                    self.extend_dict(op, target, &items)?;
                }
                0x90 => {
                    let items = self.pop_mark(op)?;
                    let target = self.top(op)?;
                    match &mut self.nodes[target.index()] {
                        Value::Set(members) => members.extend(items),
                        _ => return Err(self.wrong(op, "a set", target)),
                    }
                }
                // Memo.
                b'p' => {
                    let line = self.take_line(op)?;
                    let index = self.text_index(op, line)?;
                    let top = self.top(op)?;
                    self.memo_put(index, top)?;
                }
                b'q' => {
                    let [index] = self.take_array(op)?;
                    let top = self.top(op)?;
                    self.memo_put(u64::from(index), top)?;
                }
                b'r' => {
                    let index = u32::from_le_bytes(self.take_array(op)?);
                    let top = self.top(op)?;
                    self.memo_put(u64::from(index), top)?;
                }
                0x94 => {
                    let top = self.top(op)?;
                    let index = self.memo_count as u64;
                    self.memo_put(index, top)?;
                }
                b'g' => {
                    let line = self.take_line(op)?;
                    let index = self.text_index(op, line)?;
                    let id = self.memo_get(index)?;
                    self.stack.push(id);
                }
                b'h' => {
                    let [index] = self.take_array(op)?;
                    let id = self.memo_get(u64::from(index))?;
                    self.stack.push(id);
                }
                b'j' => {
                    let index = u32::from_le_bytes(self.take_array(op)?);
                    let id = self.memo_get(u64::from(index))?;
                    self.stack.push(id);
                }
                // Globals and calls: recorded, never performed.
                b'c' => {
                    let (module, name) = self.global_line(op)?;
                    let value = self.global(&module, &name);
                    self.push(value);
                }
                0x93 => {
                    let name = self.pop(op)?;
                    let module = self.pop(op)?;
                    let (Some(module_text), Some(name_text)) = (
                        self.nodes[module.index()].as_str(),
                        self.nodes[name.index()].as_str(),
                    ) else {
                        return Err(self.wrong(op, "two str operands", module));
                    };
                    let value = self.global(module_text, name_text);
                    // The strings may come from the memo, again and again.
                    self.charge_copy(&value)?;
                    self.push(value);
                }
                0x82..=0x84 => {
                    let code = match op {
                        0x82 => u32::from(self.take_array::<1>(op)?[0]),
                        0x83 => u32::from(u16::from_le_bytes(self.take_array(op)?)),
                        _ => i32::from_le_bytes(self.take_array(op)?) as u32,
                    };
                    let (module, name) =
                        self.options.extensions.get(&code).cloned().ok_or_else(|| {
                            self.error(DecodeErrorKind::UnregisteredExtension(code))
                        })?;
                    let value = self.global(&module, &name);
                    self.push(value);
                }
                b'R' => {
                    let args = self.pop(op)?;
                    let callable = self.pop(op)?;
                    let value = self.reduce(op, callable, args)?;
                    self.push(value);
                }
                0x81 => {
                    let args = self.pop(op)?;
                    let class = self.pop(op)?;
                    if !matches!(self.nodes[args.index()], Value::Tuple(_)) {
                        return Err(self.wrong(op, "a tuple of arguments", args));
                    }
                    let value = match self.known_of(class).and_then(|k| self.apply_known(k, args)) {
                        Some(value) => {
                            self.charge_copy(&value)?;
                            value
                        }
                        None => Value::Object {
                            class,
                            args,
                            kwargs: None,
                            extra: Box::default(),
                        },
                    };
                    self.push(value);
                }
                0x92 => {
                    let kwargs = self.pop(op)?;
                    let args = self.pop(op)?;
                    let class = self.pop(op)?;
                    if !matches!(self.nodes[args.index()], Value::Tuple(_)) {
                        return Err(self.wrong(op, "a tuple of arguments", args));
                    }
                    if !matches!(self.nodes[kwargs.index()], Value::Dict(_)) {
                        return Err(self.wrong(op, "a dict of keyword arguments", kwargs));
                    }
                    self.push(Value::Object {
                        class,
                        args,
                        kwargs: Some(kwargs),
                        extra: Box::default(),
                    });
                }
                b'i' => {
                    let (module, name) = self.global_line(op)?;
                    let items = self.pop_mark(op)?;
                    let class = self.add(Value::Global { module, name });
                    let args = self.add(Value::Tuple(items));
                    self.push(Value::Object {
                        class,
                        args,
                        kwargs: None,
                        extra: Box::default(),
                    });
                }
                b'o' => {
                    let mut items = self.pop_mark(op)?;
                    if items.is_empty() {
                        return Err(self.error(DecodeErrorKind::StackUnderflow("OBJ")));
                    }
                    let class = items.remove(0);
                    let args = self.add(Value::Tuple(items));
                    self.push(Value::Object {
                        class,
                        args,
                        kwargs: None,
                        extra: Box::default(),
                    });
                }
                b'b' => {
                    let state = self.pop(op)?;
                    let target = self.top(op)?;
                    match &mut self.nodes[target.index()] {
                        Value::OrderedDict { state: slot, .. } if slot.is_none() => {
                            *slot = Some(state);
                        }
                        Value::Object { extra, .. } | Value::Reduce { extra, .. } => {
                            extra.add_state(state);
                        }
                        // CPython sets the state on the class or function
                        // itself (or calls its __setstate__).
                        Value::Global { .. } | Value::PersistentId(_) => {
                            self.loose_builds.push((target, state));
                        }
                        _ => return Err(self.wrong(op, "an object", target)),
                    }
                }
                b'P' => {
                    let line = self.take_line(op)?;
                    let text = std::str::from_utf8(line)
                        .map_err(|_| self.invalid_text(op, "persistent id is not ASCII"))?;
                    let pid = self.add(Value::Str(PyStr::from(text)));
                    self.push(Value::PersistentId(pid));
                }
                b'Q' => {
                    let pid = self.pop(op)?;
                    self.push(Value::PersistentId(pid));
                }
                other => return Err(self.error(DecodeErrorKind::UnknownOpcode(other))),
            }
        }
    }

    fn text_index(&self, op: u8, line: &[u8]) -> Result<u64, DecodeError> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| self.invalid_text(op, "invalid memo index"))
    }

    /// Python 2 `str` (STRING, BINSTRING, SHORT_BINSTRING): CPython 3's
    /// default `encoding="ASCII"` makes it a `str`; other bytes fail there
    /// too.
    fn python2_string(&self, op: u8, bytes: &[u8]) -> Result<Value, DecodeError> {
        if !bytes.is_ascii() {
            return Err(self.invalid_text(
                op,
                "Python 2 string is not ASCII (CPython's default encoding for it)",
            ));
        }
        self.string(bytes)
    }

    fn extend_list(
        &mut self,
        op: u8,
        target: ValueId,
        items: &[ValueId],
    ) -> Result<(), DecodeError> {
        match &mut self.nodes[target.index()] {
            Value::List(list) => list.extend_from_slice(items),
            Value::Object { extra, .. } | Value::Reduce { extra, .. } => {
                extra.list_items.extend_from_slice(items);
            }
            _ => return Err(self.wrong(op, "a list", target)),
        }
        Ok(())
    }

    fn extend_dict(
        &mut self,
        op: u8,
        target: ValueId,
        items: &[ValueId],
    ) -> Result<(), DecodeError> {
        let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1]));
        match &mut self.nodes[target.index()] {
            Value::Dict(dict) => dict.extend(pairs),
            Value::OrderedDict { items: dict, .. } => dict.extend(pairs),
            Value::Object { extra, .. } | Value::Reduce { extra, .. } => {
                extra.dict_items.extend(pairs);
            }
            _ => return Err(self.wrong(op, "a dict", target)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(data: &[u8]) -> (ValueGraph, Value) {
        let graph = decode(data).unwrap();
        let value = graph.get(graph.root()).clone();
        (graph, value)
    }

    #[test]
    fn scalars_table() {
        let cases: Vec<(&[u8], Value)> = vec![
            (b"N.", Value::None),
            (b"\x88.", Value::Bool(true)),
            (b"I01\n.", Value::Bool(true)),
            (b"I00\n.", Value::Bool(false)),
            (b"I-42\n.", Value::Int(-42)),
            (b"K\xff.", Value::Int(255)),
            (b"M\x00\x01.", Value::Int(256)),
            (b"J\xff\xff\xff\xff.", Value::Int(-1)),
            (b"\x8a\x00.", Value::Int(0)),
            (b"\x8a\x01\x80.", Value::Int(-128)),
            (b"L123L\n.", Value::Int(123)),
            (b"F1.5\n.", Value::Float(1.5)),
            (b"G?\xf8\x00\x00\x00\x00\x00\x00.", Value::Float(1.5)),
            (b"X\x02\x00\x00\x00hi.", Value::Str(PyStr::from("hi"))),
            (b"Vcaf\xe9\n.", Value::Str(PyStr::from("café"))),
            (b"S'a\\nb'\n.", Value::Str(PyStr::from("a\nb"))),
            (b"C\x02ab.", Value::Bytes(b"ab".to_vec())),
            (
                b"\x96\x01\x00\x00\x00\x00\x00\x00\x00z.",
                Value::ByteArray(b"z".to_vec()),
            ),
            (
                b"ctorch\nfloat16\n.",
                Value::TorchDtype("float16".to_owned()),
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(root(data).1, expected, "{data:?}");
        }
    }

    #[test]
    fn big_ints() {
        // 2**100 in LONG1 (protocol 2).
        let mut data = vec![0x8a, 13];
        data.extend_from_slice(&[0; 12]);
        data.push(0x10);
        data.push(b'.');
        let (_, value) = root(&data);
        assert_eq!(value, Value::BigInt(BigInt::from(1) << 100));
    }

    #[test]
    fn shared_references_stay_shared_and_cycles_work() {
        // x = [1]; pickle.dumps([x, x], 2)
        let (graph, value) = root(b"\x80\x02]q\x00(]q\x01K\x01ah\x01e.");
        let Value::List(items) = value else { panic!() };
        assert_eq!(items[0], items[1]);
        let Value::List(inner) = graph.get(items[0]) else {
            panic!()
        };
        assert_eq!(graph.get(inner[0]), &Value::Int(1));
        // a = []; a.append(a); pickle.dumps(a, 2)
        let (graph, value) = root(b"\x80\x02]q\x00h\x00a.");
        let Value::List(items) = value else { panic!() };
        assert_eq!(items, vec![graph.root()]);
    }

    #[test]
    fn malformed_inputs_are_typed_errors_with_offsets() {
        let cases: Vec<(&[u8], usize, &str)> = vec![
            (b"", 0, "without a STOP"),
            (b"\x80\x02", 2, "without a STOP"),
            (b"K", 0, "BININT1 needs 1"),
            (b"X\xff\xff\xff\x7f", 0, "BINUNICODE needs"),
            (b"\xff.", 0, "unknown opcode 0xff"),
            (b"\x80\x06N.", 0, "unsupported pickle protocol 6"),
            (b"a.", 0, "APPEND needs more values"),
            (b"(a.", 1, "APPEND needs more values"),
            (b"e.", 0, "APPENDS needs a MARK"),
            (b"h\x05.", 0, "memo entry 5"),
            (b"X\x01\x00\x00\x00\xff.", 0, "not UTF-8"),
            (b"NK\x01a.", 3, "APPEND needs a list"),
            (b"\x82\x01.", 0, "extension code 1"),
            (b"\x97.", 0, "NEXT_BUFFER"),
            (b"Ixyz\n.", 0, "invalid int literal"),
            (b".", 0, "STOP needs more values"),
        ];
        for (data, offset, message) in cases {
            let error = decode(data).unwrap_err();
            assert_eq!(error.offset(), offset, "{data:?}: {error}");
            assert!(error.to_string().contains(message), "{data:?}: {error}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let deep = [b'('; 20];
        let options = DecodeOptions {
            max_mark_depth: 10,
            ..DecodeOptions::default()
        };
        let error = decode_with(&deep, &options, &TorchData).unwrap_err();
        assert_eq!(error.offset(), 10);
        let digits = format!("I{}\n.", "9".repeat(5000));
        assert!(
            decode(digits.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
    }
}
