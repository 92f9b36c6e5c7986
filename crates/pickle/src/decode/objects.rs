//! Containers, the memo, globals and calls: the opcode families that
//! build values out of others.

use super::machine::Machine;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::opcode::Opcode::{self, *};
use crate::value::{PyStr, Value, ValueId};

impl Machine<'_> {
    /// Containers made from the stack.
    pub(super) fn op_container(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            EMPTY_TUPLE => self.push(Value::Tuple(Vec::new())),
            EMPTY_LIST => self.push(Value::List(Vec::new())),
            EMPTY_DICT => self.push(Value::Dict(Vec::new())),
            EMPTY_SET => self.push(Value::Set(Vec::new())),
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let count = match op {
                    TUPLE1 => 1,
                    TUPLE2 => 2,
                    _ => 3,
                };
                let mut items = vec![ValueId(0); count];
                for slot in items.iter_mut().rev() {
                    *slot = self.pop(op)?;
                }
                self.push(Value::Tuple(items));
            }
            TUPLE => {
                let items = self.pop_mark(op)?;
                self.push(Value::Tuple(items));
            }
            LIST => {
                let items = self.pop_mark(op)?;
                self.push(Value::List(items));
            }
            FROZENSET => {
                let items = self.pop_mark(op)?;
                self.push(Value::FrozenSet(items));
            }
            DICT => {
                let items = self.pop_mark(op)?;
                if items.len() % 2 != 0 {
                    return Err(self.invalid_text(op, "odd number of items for DICT"));
                }
                let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect();
                self.push(Value::Dict(pairs));
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }

    /// Items added to a container below them.
    pub(super) fn op_extend(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            APPEND => {
                let item = self.pop(op)?;
                let target = self.top(op)?;
                self.extend_list(op, target, &[item])?;
            }
            APPENDS => {
                let items = self.pop_mark(op)?;
                let target = self.top(op)?;
                self.extend_list(op, target, &items)?;
            }
            SETITEM => {
                let value = self.pop(op)?;
                let key = self.pop(op)?;
                let target = self.top(op)?;
                self.extend_dict(op, target, &[key, value])?;
            }
            SETITEMS => {
                let items = self.pop_mark(op)?;
                if items.len() % 2 != 0 {
                    return Err(self.invalid_text(op, "odd number of items for SETITEMS"));
                }
                let target = self.top(op)?;
                self.extend_dict(op, target, &items)?;
            }
            ADDITEMS => {
                let items = self.pop_mark(op)?;
                let target = self.top(op)?;
                match &mut self.nodes[target.index()] {
                    Value::Set(members) => members.extend(items),
                    _ => return Err(self.wrong(op, "a set", target)),
                }
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }

    /// Memo stores and lookups.
    pub(super) fn op_memo(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            PUT => {
                let line = self.take_line(op)?;
                let index = self.text_index(op, line)?;
                let top = self.top(op)?;
                self.memo_put(index, top)?;
            }
            BINPUT => {
                let [index] = self.take_array(op)?;
                let top = self.top(op)?;
                self.memo_put(u64::from(index), top)?;
            }
            LONG_BINPUT => {
                let index = u32::from_le_bytes(self.take_array(op)?);
                let top = self.top(op)?;
                self.memo_put(u64::from(index), top)?;
            }
            MEMOIZE => {
                let top = self.top(op)?;
                let index = self.memo_count as u64;
                self.memo_put(index, top)?;
            }
            GET => {
                let line = self.take_line(op)?;
                let index = self.text_index(op, line)?;
                let id = self.memo_get(index)?;
                self.stack.push(id);
            }
            BINGET => {
                let [index] = self.take_array(op)?;
                let id = self.memo_get(u64::from(index))?;
                self.stack.push(id);
            }
            LONG_BINGET => {
                let index = u32::from_le_bytes(self.take_array(op)?);
                let id = self.memo_get(u64::from(index))?;
                self.stack.push(id);
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }

    /// Globals: recorded, never imported.
    pub(super) fn op_global(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            GLOBAL => {
                let (module, name) = self.global_line(op)?;
                let value = self.global(&module, &name);
                self.push(value);
            }
            STACK_GLOBAL => {
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
            EXT1 | EXT2 | EXT4 => {
                let code = match op {
                    EXT1 => u32::from(self.take_array::<1>(op)?[0]),
                    EXT2 => u32::from(u16::from_le_bytes(self.take_array(op)?)),
                    _ => i32::from_le_bytes(self.take_array(op)?) as u32,
                };
                let (module, name) = self
                    .options
                    .extensions
                    .get(&code)
                    .cloned()
                    .ok_or_else(|| self.error(DecodeErrorKind::UnregisteredExtension(code)))?;
                let value = self.global(&module, &name);
                self.push(value);
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }

    /// Calls and object state: recorded, never performed.
    pub(super) fn op_call(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            REDUCE => {
                let args = self.pop(op)?;
                let callable = self.pop(op)?;
                let value = self.reduce(op, callable, args)?;
                self.push(value);
            }
            NEWOBJ => {
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
            NEWOBJ_EX => {
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
            INST => {
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
            OBJ => {
                let mut items = self.pop_mark(op)?;
                if items.is_empty() {
                    return Err(self.error(DecodeErrorKind::StackUnderflow(OBJ)));
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
            BUILD => {
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
            PERSID => {
                let line = self.take_line(op)?;
                let text = std::str::from_utf8(line)
                    .map_err(|_| self.invalid_text(op, "persistent id is not ASCII"))?;
                let pid = self.add(Value::Str(PyStr::from(text)));
                self.push(Value::PersistentId(pid));
            }
            BINPERSID => {
                let pid = self.pop(op)?;
                self.push(Value::PersistentId(pid));
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }
}
