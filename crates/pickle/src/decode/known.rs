//! Constructors the policy knows, applied as data, and the copy budget
//! they are charged against.

use super::machine::{COPY_BYTES_BASE, COPY_BYTES_PER_INPUT_BYTE, Machine};
use crate::error::{DecodeError, DecodeErrorKind, DecodeLimit};
use crate::opcode::Opcode;
use crate::policy::Known;
use crate::value::{Value, ValueId};

impl Machine<'_> {
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
    pub(super) fn apply_known(&self, known: Known, args: ValueId) -> Option<Value> {
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
    pub(super) fn charge_copy(&mut self, value: &Value) -> Result<(), DecodeError> {
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
                what: DecodeLimit::CopiedBytes,
                limit: COPY_BYTES_PER_INPUT_BYTE * self.data.len() as u64 + COPY_BYTES_BASE,
            })),
        }
    }

    pub(super) fn reduce(
        &mut self,
        op: Opcode,
        callable: ValueId,
        args: ValueId,
    ) -> Result<Value, DecodeError> {
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
}
