//! The pickle opcodes, by the names CPython's `pickletools` gives them.
//!
//! The decoder, the encoder and the global scanner all name opcodes
//! through [`Opcode`]; no other code spells an opcode as a bare byte.

macro_rules! opcodes {
    ($($(#[doc = $doc:literal])* $name:ident = $byte:literal,)*) => {
        /// One pickle opcode (protocols 0 to 5), named as in CPython's
        /// `pickletools`; its discriminant is its byte.
        ///
        /// ```
        /// use tpkg_pickle::Opcode;
        /// assert_eq!(Opcode::from_byte(b'('), Some(Opcode::MARK));
        /// assert_eq!(Opcode::PROTO.byte(), 0x80);
        /// assert_eq!(Opcode::READONLY_BUFFER.to_string(), "READONLY_BUFFER");
        /// assert_eq!(Opcode::from_byte(0xff), None);
        /// ```
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode {
            $($(#[doc = $doc])* $name = $byte,)*
        }

        impl Opcode {
            /// The opcode a byte stands for, if any.
            pub const fn from_byte(byte: u8) -> Option<Opcode> {
                match byte {
                    $($byte => Some(Opcode::$name),)*
                    _ => None,
                }
            }

            /// The opcode's `pickletools` name, e.g. `"BININT1"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Opcode::$name => stringify!($name),)*
                }
            }
        }
    };
}

opcodes! {
    /// Pushes a mark onto the mark stack.
    MARK = b'(',
    /// Ends the pickle; its value is the top of the stack.
    STOP = b'.',
    /// Discards the top of the stack.
    POP = b'0',
    /// Discards everything above the last mark, and the mark.
    POP_MARK = b'1',
    /// Pushes the top of the stack again.
    DUP = b'2',
    /// A float as decimal text.
    FLOAT = b'F',
    /// An int (or `00`/`01`, a bool) as decimal text.
    INT = b'I',
    /// A 4-byte signed int.
    BININT = b'J',
    /// A 1-byte unsigned int.
    BININT1 = b'K',
    /// A long as decimal text.
    LONG = b'L',
    /// A 2-byte unsigned int.
    BININT2 = b'M',
    /// `None`.
    NONE = b'N',
    /// A persistent id as text.
    PERSID = b'P',
    /// A persistent id from the stack.
    BINPERSID = b'Q',
    /// `callable(*args)`.
    REDUCE = b'R',
    /// A Python 2 string as quoted, escaped text.
    STRING = b'S',
    /// A Python 2 string with a 4-byte length.
    BINSTRING = b'T',
    /// A Python 2 string with a 1-byte length.
    SHORT_BINSTRING = b'U',
    /// A `str` as raw-unicode-escaped text.
    UNICODE = b'V',
    /// A UTF-8 `str` with a 4-byte length.
    BINUNICODE = b'X',
    /// Appends the top of the stack to the list below it.
    APPEND = b'a',
    /// Sets an object's state.
    BUILD = b'b',
    /// A global, `module\nname\n`.
    GLOBAL = b'c',
    /// A dict of the items above the last mark.
    DICT = b'd',
    /// An empty dict.
    EMPTY_DICT = b'}',
    /// Appends the items above the last mark to the list below it.
    APPENDS = b'e',
    /// A memo lookup, index as text.
    GET = b'g',
    /// A memo lookup, 1-byte index.
    BINGET = b'h',
    /// `module.name(*items above the mark)`, the class as text.
    INST = b'i',
    /// A memo lookup, 4-byte index.
    LONG_BINGET = b'j',
    /// A list of the items above the last mark.
    LIST = b'l',
    /// An empty list.
    EMPTY_LIST = b']',
    /// `class(*args)`, class and args above the last mark.
    OBJ = b'o',
    /// A memo store, index as text.
    PUT = b'p',
    /// A memo store, 1-byte index.
    BINPUT = b'q',
    /// A memo store, 4-byte index.
    LONG_BINPUT = b'r',
    /// Sets one item of the dict below.
    SETITEM = b's',
    /// A tuple of the items above the last mark.
    TUPLE = b't',
    /// An empty tuple.
    EMPTY_TUPLE = b')',
    /// Sets the items above the last mark on the dict below.
    SETITEMS = b'u',
    /// An 8-byte big-endian float.
    BINFLOAT = b'G',
    /// The protocol version.
    PROTO = 0x80,
    /// `cls.__new__(cls, *args)`.
    NEWOBJ = 0x81,
    /// An extension-registry global, 1-byte code.
    EXT1 = 0x82,
    /// An extension-registry global, 2-byte code.
    EXT2 = 0x83,
    /// An extension-registry global, 4-byte code.
    EXT4 = 0x84,
    /// A tuple of the top item.
    TUPLE1 = 0x85,
    /// A tuple of the top two items.
    TUPLE2 = 0x86,
    /// A tuple of the top three items.
    TUPLE3 = 0x87,
    /// `True`.
    NEWTRUE = 0x88,
    /// `False`.
    NEWFALSE = 0x89,
    /// A little-endian two's-complement int, 1-byte length.
    LONG1 = 0x8a,
    /// A little-endian two's-complement int, 4-byte length.
    LONG4 = 0x8b,
    /// `bytes` with a 4-byte length.
    BINBYTES = b'B',
    /// `bytes` with a 1-byte length.
    SHORT_BINBYTES = b'C',
    /// A UTF-8 `str` with a 1-byte length.
    SHORT_BINUNICODE = 0x8c,
    /// A UTF-8 `str` with an 8-byte length.
    BINUNICODE8 = 0x8d,
    /// `bytes` with an 8-byte length.
    BINBYTES8 = 0x8e,
    /// An empty set.
    EMPTY_SET = 0x8f,
    /// Adds the items above the last mark to the set below.
    ADDITEMS = 0x90,
    /// A frozenset of the items above the last mark.
    FROZENSET = 0x91,
    /// `cls.__new__(cls, *args, **kwargs)`.
    NEWOBJ_EX = 0x92,
    /// A global from the two `str`s on the stack.
    STACK_GLOBAL = 0x93,
    /// Stores the top of the stack at the next memo index.
    MEMOIZE = 0x94,
    /// A frame's 8-byte length.
    FRAME = 0x95,
    /// A `bytearray` with an 8-byte length.
    BYTEARRAY8 = 0x96,
    /// The next out-of-band buffer.
    NEXT_BUFFER = 0x97,
    /// Makes the buffer on top of the stack read-only.
    READONLY_BUFFER = 0x98,
}

impl Opcode {
    /// The opcode's byte.
    pub const fn byte(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for Opcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Opcode;

    #[test]
    fn every_byte_round_trips() {
        let known: Vec<Opcode> = (0..=255u8).filter_map(Opcode::from_byte).collect();
        assert_eq!(known.len(), 68);
        for op in known {
            assert_eq!(Opcode::from_byte(op.byte()), Some(op));
            assert_eq!(format!("{op:?}"), op.name());
        }
    }
}
