//! The decoder's state: the input cursor, the stack, marks, memo and the
//! nodes made so far, and the small operations every opcode shares.

use std::collections::HashMap;

use num_bigint::BigInt;

use super::DecodeOptions;
use crate::error::{DecodeError, DecodeErrorKind, DecodeLimit};
use crate::opcode::Opcode;
use crate::policy::{Known, Policy};
use crate::text;
use crate::value::{Value, ValueGraph, ValueId};

/// Most nodes reserved before decoding; the graph grows past it as needed.
pub(super) const INITIAL_NODES_MAX: usize = 1 << 16;

/// Bytes that constructors and globals may copy per input byte (an item
/// copied counts as the 4 bytes of its id), plus [`COPY_BYTES_BASE`].
pub(super) const COPY_BYTES_PER_INPUT_BYTE: u64 = 64;

/// Bytes any pickle may copy, however short.
pub(super) const COPY_BYTES_BASE: u64 = 4096;

/// Memo slots kept dense beyond twice the entries stored; sparser indices
/// go to a hash map, so a few far-apart `LONG_BINPUT`s cannot reserve
/// memory out of proportion to the input.
pub(super) const DENSE_MEMO_SLACK: usize = 1024;

pub(super) struct Machine<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    /// Offset of the opcode being executed, for errors.
    pub(super) at: usize,
    pub(super) options: &'a DecodeOptions,
    pub(super) policy: &'a dyn Policy,
    pub(super) nodes: Vec<Value>,
    pub(super) origins: Vec<u32>,
    /// BUILDs on globals and persistent ids ([`ValueGraph::loose_builds`]).
    pub(super) loose_builds: Vec<(ValueId, ValueId)>,
    pub(super) stack: Vec<ValueId>,
    pub(super) marks: Vec<usize>,
    pub(super) memo: Vec<Option<ValueId>>,
    pub(super) sparse_memo: HashMap<u64, ValueId>,
    pub(super) memo_count: usize,
    pub(super) next_buffer: usize,
    /// Bytes constructors and globals may still copy (a `set(list)` copies
    /// the list, `STACK_GLOBAL` its two strings, `torch.device(s)` its
    /// text): [`COPY_BYTES_PER_INPUT_BYTE`] per input byte, so memo
    /// references cannot make the work or the memory quadratic.
    pub(super) copy_budget: u64,
}

impl<'a> Machine<'a> {
    pub(super) fn new(data: &'a [u8], options: &'a DecodeOptions, policy: &'a dyn Policy) -> Self {
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

    pub(super) fn into_graph(self, root: ValueId) -> ValueGraph {
        ValueGraph {
            nodes: self.nodes,
            origins: self.origins,
            root,
            loose_builds: self.loose_builds,
        }
    }

    pub(super) fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: self.at,
            kind,
        }
    }

    pub(super) fn take(&mut self, len: usize, op: Opcode) -> Result<&'a [u8], DecodeError> {
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
                opcode: op,
                needed: len as u64,
            })),
        }
    }

    pub(super) fn take_array<const N: usize>(
        &mut self,
        op: Opcode,
    ) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, op)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    /// A length operand, checked against the bytes that remain.
    pub(super) fn take_sized(&mut self, len: u64, op: Opcode) -> Result<&'a [u8], DecodeError> {
        let remaining = (self.data.len() - self.pos) as u64;
        if len > remaining {
            return Err(self.error(DecodeErrorKind::Truncated {
                opcode: op,
                needed: len,
            }));
        }
        self.take(len as usize, op)
    }

    /// A protocol-0 line, without its `\n`.
    pub(super) fn take_line(&mut self, op: Opcode) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.pos += end + 1;
                Ok(&rest[..end])
            }
            None => Err(self.error(DecodeErrorKind::Truncated {
                opcode: op,
                needed: rest.len() as u64 + 1,
            })),
        }
    }

    pub(super) fn add(&mut self, value: Value) -> ValueId {
        let id = ValueId(self.nodes.len() as u32);
        self.nodes.push(value);
        // The opcode that made the value (u32: pickles past 4 GiB saturate).
        self.origins
            .push(u32::try_from(self.at).unwrap_or(u32::MAX));
        id
    }

    pub(super) fn push(&mut self, value: Value) {
        let id = self.add(value);
        self.stack.push(id);
    }

    pub(super) fn mark_base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self, op: Opcode) -> Result<ValueId, DecodeError> {
        if self.stack.len() <= self.mark_base() {
            return Err(self.error(DecodeErrorKind::StackUnderflow(op)));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.error(DecodeErrorKind::StackUnderflow(op)))
    }

    pub(super) fn top(&self, op: Opcode) -> Result<ValueId, DecodeError> {
        if self.stack.len() <= self.mark_base() {
            return Err(self.error(DecodeErrorKind::StackUnderflow(op)));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.error(DecodeErrorKind::StackUnderflow(op)))
    }

    /// Everything above the last MARK, removing the MARK.
    pub(super) fn pop_mark(&mut self, op: Opcode) -> Result<Vec<ValueId>, DecodeError> {
        let base = self
            .marks
            .pop()
            .ok_or_else(|| self.error(DecodeErrorKind::MissingMark(op)))?;
        Ok(self.stack.split_off(base))
    }

    pub(super) fn memo_put(&mut self, index: u64, id: ValueId) -> Result<(), DecodeError> {
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
                    what: DecodeLimit::MemoEntries,
                    limit: self.options.max_memo as u64,
                }));
            }
        }
        Ok(())
    }

    pub(super) fn memo_get(&self, index: u64) -> Result<ValueId, DecodeError> {
        let dense = usize::try_from(index)
            .ok()
            .and_then(|i| self.memo.get(i).copied().flatten());
        dense
            .or_else(|| self.sparse_memo.get(&index).copied())
            .ok_or_else(|| self.error(DecodeErrorKind::MemoMiss(index)))
    }

    pub(super) fn string(&self, bytes: &[u8]) -> Result<Value, DecodeError> {
        text::decode_utf8_surrogatepass(bytes)
            .map(Value::Str)
            .map_err(|at| self.error(DecodeErrorKind::InvalidUtf8 { at }))
    }

    pub(super) fn invalid_text(&self, op: Opcode, reason: impl Into<String>) -> DecodeError {
        self.error(DecodeErrorKind::InvalidText {
            opcode: op,
            reason: reason.into(),
        })
    }

    pub(super) fn wrong(&self, op: Opcode, expected: &'static str, found: ValueId) -> DecodeError {
        self.error(DecodeErrorKind::WrongOperand {
            opcode: op,
            expected,
            found: self.nodes[found.index()].kind(),
        })
    }

    pub(super) fn int_from_big(value: BigInt) -> Value {
        match i64::try_from(&value) {
            Ok(small) => Value::Int(small),
            Err(_) => Value::BigInt(value),
        }
    }

    pub(super) fn text_int(&self, op: Opcode, line: &[u8]) -> Result<BigInt, DecodeError> {
        let text = std::str::from_utf8(line).map_err(|_| self.invalid_text(op, "not ASCII"))?;
        if text.len() > self.options.max_int_digits {
            return Err(self.error(DecodeErrorKind::Limit {
                what: DecodeLimit::IntDigits,
                limit: self.options.max_int_digits as u64,
            }));
        }
        text::parse_python_int(text)
            .ok_or_else(|| self.invalid_text(op, format!("invalid int literal {text:?}")))
    }

    pub(super) fn global(&self, module: &str, name: &str) -> Value {
        match self.policy.classify(module, name) {
            Some(Known::TorchDtype(dtype)) => Value::TorchDtype(dtype.to_owned()),
            _ => Value::Global {
                module: module.to_owned(),
                name: name.to_owned(),
            },
        }
    }

    pub(super) fn global_line(&mut self, op: Opcode) -> Result<(String, String), DecodeError> {
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

    pub(super) fn known_of(&self, callable: ValueId) -> Option<Known> {
        match &self.nodes[callable.index()] {
            Value::Global { module, name } => self.policy.classify(module, name),
            _ => None,
        }
    }

    pub(super) fn tuple_items(&self, id: ValueId) -> Option<&[ValueId]> {
        match &self.nodes[id.index()] {
            Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    pub(super) fn text_index(&self, op: Opcode, line: &[u8]) -> Result<u64, DecodeError> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| self.invalid_text(op, "invalid memo index"))
    }

    /// Python 2 `str` (STRING, BINSTRING, SHORT_BINSTRING): CPython 3's
    /// default `encoding="ASCII"` makes it a `str`; other bytes fail there
    /// too.
    pub(super) fn python2_string(&self, op: Opcode, bytes: &[u8]) -> Result<Value, DecodeError> {
        if !bytes.is_ascii() {
            return Err(self.invalid_text(
                op,
                "Python 2 string is not ASCII (CPython's default encoding for it)",
            ));
        }
        self.string(bytes)
    }

    pub(super) fn extend_list(
        &mut self,
        op: Opcode,
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

    pub(super) fn extend_dict(
        &mut self,
        op: Opcode,
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
