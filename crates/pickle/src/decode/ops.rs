//! The opcode loop and its dispatch to one function per opcode family:
//! stack control, numbers, text and bytes here; containers, the memo,
//! globals and calls in [`super::objects`].

use num_bigint::BigInt;

use super::machine::Machine;
use crate::error::{DecodeError, DecodeErrorKind, DecodeLimit};
use crate::opcode::Opcode::{self, *};
use crate::text;
use crate::value::{Value, ValueId};

impl Machine<'_> {
    /// Runs opcodes up to STOP: the root and the bytes read.
    pub(super) fn run(&mut self) -> Result<(ValueId, usize), DecodeError> {
        loop {
            self.at = self.pos;
            let Some(&byte) = self.data.get(self.pos) else {
                return Err(self.error(DecodeErrorKind::MissingStop));
            };
            self.pos += 1;
            let Some(op) = Opcode::from_byte(byte) else {
                return Err(self.error(DecodeErrorKind::UnknownOpcode(byte)));
            };
            match op {
                STOP => {
                    let root = self.pop(op)?;
                    return Ok((root, self.pos));
                }
                PROTO | FRAME | MARK | POP | POP_MARK | DUP => self.op_control(op)?,
                NONE | NEWTRUE | NEWFALSE | BININT1 | BININT2 | BININT | LONG1 | LONG4 | INT
                | LONG | BINFLOAT | FLOAT => self.op_number(op)?,
                BINUNICODE | SHORT_BINUNICODE | BINUNICODE8 | UNICODE | BINBYTES
                | SHORT_BINBYTES | BINBYTES8 | BYTEARRAY8 | BINSTRING | SHORT_BINSTRING
                | STRING | NEXT_BUFFER | READONLY_BUFFER => self.op_text(op)?,
                EMPTY_TUPLE | EMPTY_LIST | EMPTY_DICT | EMPTY_SET | TUPLE1 | TUPLE2 | TUPLE3
                | TUPLE | LIST | FROZENSET | DICT => self.op_container(op)?,
                APPEND | APPENDS | SETITEM | SETITEMS | ADDITEMS => self.op_extend(op)?,
                PUT | BINPUT | LONG_BINPUT | MEMOIZE | GET | BINGET | LONG_BINGET => {
                    self.op_memo(op)?;
                }
                GLOBAL | STACK_GLOBAL | EXT1 | EXT2 | EXT4 => self.op_global(op)?,
                REDUCE | NEWOBJ | NEWOBJ_EX | INST | OBJ | BUILD | PERSID | BINPERSID => {
                    self.op_call(op)?;
                }
            }
        }
    }

    /// An opcode dispatched to a family it is not in: a bug in [`Self::run`],
    /// reported as the unknown opcode it is to that family.
    pub(super) fn not_in_family(&self, op: Opcode) -> DecodeError {
        self.error(DecodeErrorKind::UnknownOpcode(op.byte()))
    }

    /// PROTO, FRAME and the stack and mark opcodes.
    fn op_control(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            PROTO => {
                let [protocol] = self.take_array(op)?;
                if protocol > 5 {
                    return Err(self.error(DecodeErrorKind::UnsupportedProtocol(protocol)));
                }
            }
            FRAME => {
                // FRAME: a length prefix for buffered reading; the data
                // is already in memory, so only check it.
                let len = u64::from_le_bytes(self.take_array(op)?);
                if len > (self.data.len() - self.pos) as u64 {
                    return Err(self.error(DecodeErrorKind::Truncated {
                        opcode: FRAME,
                        needed: len,
                    }));
                }
            }
            MARK => {
                if self.marks.len() >= self.options.max_mark_depth {
                    return Err(self.error(DecodeErrorKind::Limit {
                        what: DecodeLimit::MarkNesting,
                        limit: self.options.max_mark_depth as u64,
                    }));
                }
                self.marks.push(self.stack.len());
            }
            POP => {
                self.pop(op)?;
            }
            POP_MARK => {
                self.pop_mark(op)?;
            }
            DUP => {
                let top = self.top(op)?;
                self.stack.push(top);
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }

    /// Constants and numbers.
    fn op_number(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            NONE => self.push(Value::None),
            NEWTRUE => self.push(Value::Bool(true)),
            NEWFALSE => self.push(Value::Bool(false)),
            BININT1 => {
                let [byte] = self.take_array(op)?;
                self.push(Value::Int(i64::from(byte)));
            }
            BININT2 => {
                let value = u16::from_le_bytes(self.take_array(op)?);
                self.push(Value::Int(i64::from(value)));
            }
            BININT => {
                let value = i32::from_le_bytes(self.take_array(op)?);
                self.push(Value::Int(i64::from(value)));
            }
            LONG1 => {
                let [len] = self.take_array(op)?;
                let bytes = self.take(usize::from(len), op)?;
                self.push(Self::int_from_big(BigInt::from_signed_bytes_le(bytes)));
            }
            LONG4 => {
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
            INT => {
                let line = self.take_line(op)?;
                let value = match line {
                    b"01" => Value::Bool(true),
                    b"00" => Value::Bool(false),
                    _ => Self::int_from_big(self.text_int(op, line)?),
                };
                self.push(value);
            }
            LONG => {
                let line = self.take_line(op)?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                let value = self.text_int(op, digits)?;
                self.push(Self::int_from_big(value));
            }
            BINFLOAT => {
                let value = f64::from_be_bytes(self.take_array(op)?);
                self.push(Value::Float(value));
            }
            FLOAT => {
                let line = self.take_line(op)?;
                let value = std::str::from_utf8(line)
                    .ok()
                    .and_then(|text| text.trim().parse::<f64>().ok())
                    .ok_or_else(|| self.invalid_text(op, "invalid float literal"))?;
                self.push(Value::Float(value));
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }

    /// Strings, bytes and buffers.
    fn op_text(&mut self, op: Opcode) -> Result<(), DecodeError> {
        match op {
            BINUNICODE => {
                let len = u32::from_le_bytes(self.take_array(op)?);
                let bytes = self.take_sized(u64::from(len), op)?;
                let value = self.string(bytes)?;
                self.push(value);
            }
            SHORT_BINUNICODE => {
                let [len] = self.take_array(op)?;
                let bytes = self.take(usize::from(len), op)?;
                let value = self.string(bytes)?;
                self.push(value);
            }
            BINUNICODE8 => {
                let len = u64::from_le_bytes(self.take_array(op)?);
                let bytes = self.take_sized(len, op)?;
                let value = self.string(bytes)?;
                self.push(value);
            }
            UNICODE => {
                let line = self.take_line(op)?;
                let text = text::decode_raw_unicode_escape(line)
                    .map_err(|reason| self.invalid_text(op, reason))?;
                self.push(Value::Str(text));
            }
            BINBYTES => {
                let len = u32::from_le_bytes(self.take_array(op)?);
                let bytes = self.take_sized(u64::from(len), op)?;
                self.push(Value::Bytes(bytes.to_vec()));
            }
            SHORT_BINBYTES => {
                let [len] = self.take_array(op)?;
                let bytes = self.take(usize::from(len), op)?;
                self.push(Value::Bytes(bytes.to_vec()));
            }
            BINBYTES8 => {
                let len = u64::from_le_bytes(self.take_array(op)?);
                let bytes = self.take_sized(len, op)?;
                self.push(Value::Bytes(bytes.to_vec()));
            }
            BYTEARRAY8 => {
                let len = u64::from_le_bytes(self.take_array(op)?);
                let bytes = self.take_sized(len, op)?;
                self.push(Value::ByteArray(bytes.to_vec()));
            }
            // Python 2 `str`: CPython 3 decodes it as ASCII by default.
            BINSTRING => {
                let len = i32::from_le_bytes(self.take_array(op)?);
                if len < 0 {
                    return Err(self.invalid_text(op, "negative length"));
                }
                let bytes = self.take_sized(len as u64, op)?;
                let value = self.python2_string(op, bytes)?;
                self.push(value);
            }
            SHORT_BINSTRING => {
                let [len] = self.take_array(op)?;
                let bytes = self.take(usize::from(len), op)?;
                let value = self.python2_string(op, bytes)?;
                self.push(value);
            }
            STRING => {
                let line = self.take_line(op)?;
                let quoted = match line {
                    [q @ (b'\'' | b'"'), inner @ .., end] if end == q => inner,
                    _ => {
                        return Err(
                            self.invalid_text(op, "the STRING opcode argument must be quoted")
                        );
                    }
                };
                let bytes =
                    text::escape_decode(quoted).map_err(|reason| self.invalid_text(op, reason))?;
                let value = self.python2_string(op, &bytes)?;
                self.push(value);
            }
            NEXT_BUFFER => {
                let buffer = self
                    .options
                    .buffers
                    .get(self.next_buffer)
                    .cloned()
                    .ok_or_else(|| self.error(DecodeErrorKind::MissingBuffer))?;
                self.next_buffer += 1;
                self.push(Value::ByteArray(buffer));
            }
            READONLY_BUFFER => {
                // READONLY_BUFFER: a read-only view of the buffer on top.
                let top = self.top(op)?;
                if let Value::ByteArray(bytes) = &mut self.nodes[top.index()] {
                    let bytes = std::mem::take(bytes);
                    self.nodes[top.index()] = Value::Bytes(bytes);
                }
            }
            _ => return Err(self.not_in_family(op)),
        }
        Ok(())
    }
}
