//! Decoding and encoding errors.

use std::fmt;

use crate::opcode::Opcode;
use crate::value::ValueKind;

/// A pickle that cannot be decoded, and where.
///
/// ```
/// let error = tpkg_pickle::decode(b"\x80\x02K").unwrap_err();
/// assert_eq!(error.offset(), 2);
/// assert_eq!(error.to_string(), "pickle byte 2: BININT1 needs 1 byte(s) but the data ends");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pickle byte {offset}: {kind}")]
pub struct DecodeError {
    pub(crate) offset: usize,
    pub(crate) kind: DecodeErrorKind,
}

impl DecodeError {
    /// Byte offset of the opcode (or operand) at fault.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }
}

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The data ends inside an opcode's operand.
    Truncated {
        /// The opcode.
        opcode: Opcode,
        /// Bytes it needs.
        needed: u64,
    },
    /// The data ends before STOP.
    MissingStop,
    /// A byte that is no pickle opcode.
    UnknownOpcode(u8),
    /// PROTO names a protocol newer than 5.
    UnsupportedProtocol(u8),
    /// An opcode needs more values than the stack (above the last MARK) has.
    StackUnderflow(Opcode),
    /// An opcode needs a MARK and there is none.
    MissingMark(Opcode),
    /// A memo lookup for an index never stored.
    MemoMiss(u64),
    /// An operand of the wrong kind, e.g. APPEND onto a `str`.
    WrongOperand {
        /// The opcode.
        opcode: Opcode,
        /// What it needs.
        expected: &'static str,
        /// What it found.
        found: ValueKind,
    },
    /// Text that is not valid UTF-8 even with surrogates allowed.
    InvalidUtf8 {
        /// Offset of the bad byte within the string.
        at: usize,
    },
    /// A protocol-0 text operand that does not parse.
    InvalidText {
        /// The opcode.
        opcode: Opcode,
        /// Why.
        reason: String,
    },
    /// EXT1/EXT2/EXT4 without an extension registry entry for the code.
    UnregisteredExtension(u32),
    /// NEXT_BUFFER with no out-of-band buffer left.
    MissingBuffer,
    /// A configured limit was exceeded.
    Limit {
        /// What was counted.
        what: DecodeLimit,
        /// The limit.
        limit: u64,
    },
}

/// What a [`DecodeErrorKind::Limit`] counted; `Display` says it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeLimit {
    /// MARKs open at once ([`DecodeOptions::max_mark_depth`](crate::DecodeOptions::max_mark_depth)).
    MarkNesting,
    /// Memo entries ([`DecodeOptions::max_memo`](crate::DecodeOptions::max_memo)).
    MemoEntries,
    /// Digits of a protocol-0 int ([`DecodeOptions::max_int_digits`](crate::DecodeOptions::max_int_digits)).
    IntDigits,
    /// Bytes constructors and globals copied (64 per input byte plus 4096).
    CopiedBytes,
}

impl fmt::Display for DecodeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeLimit::MarkNesting => "MARK nesting",
            DecodeLimit::MemoEntries => "memo entries",
            DecodeLimit::IntDigits => "digits of a text int",
            DecodeLimit::CopiedBytes => "bytes copied by constructors and globals",
        })
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Truncated { opcode, needed } => {
                write!(f, "{opcode} needs {needed} byte(s) but the data ends")
            }
            DecodeErrorKind::MissingStop => f.write_str("the data ends without a STOP opcode"),
            DecodeErrorKind::UnknownOpcode(byte) => write!(f, "unknown opcode {byte:#04x}"),
            DecodeErrorKind::UnsupportedProtocol(p) => {
                write!(f, "unsupported pickle protocol {p} (0 to 5 are known)")
            }
            DecodeErrorKind::StackUnderflow(opcode) => {
                write!(f, "{opcode} needs more values than the stack holds")
            }
            DecodeErrorKind::MissingMark(opcode) => write!(f, "{opcode} needs a MARK"),
            DecodeErrorKind::MemoMiss(index) => write!(f, "memo entry {index} was never stored"),
            DecodeErrorKind::WrongOperand {
                opcode,
                expected,
                found,
            } => write!(f, "{opcode} needs {expected}, found {found}"),
            DecodeErrorKind::InvalidUtf8 { at } => {
                write!(f, "string is not UTF-8 (byte {at} of the string)")
            }
            DecodeErrorKind::InvalidText { opcode, reason } => write!(f, "{opcode}: {reason}"),
            DecodeErrorKind::UnregisteredExtension(code) => {
                write!(f, "extension code {code} is not in the extension registry")
            }
            DecodeErrorKind::MissingBuffer => {
                f.write_str("NEXT_BUFFER but no out-of-band buffer was supplied")
            }
            DecodeErrorKind::Limit { what, limit } => {
                write!(f, "{what} exceeds the limit of {limit}")
            }
        }
    }
}

/// A value graph that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Protocols 2 to 5 are written.
    #[error("cannot write pickle protocol {0}; tpkg writes protocols 2 to 5")]
    UnsupportedProtocol(u8),
    /// A value cannot be written in this protocol (e.g. a `str` with lone
    /// surrogates is fine, but a set in protocol 2 needs `builtins.set`).
    #[error("cannot encode {what}: {reason}")]
    Unencodable {
        /// The value kind.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The graph nests deeper than the encoder's limit.
    #[error("values nest deeper than {0} levels")]
    TooDeep(usize),
}
