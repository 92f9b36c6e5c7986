//! [`LegacyError`]: what is wrong with a legacy file, and where.

use std::path::PathBuf;

use tpkg_pickle::DecodeError;
use tpkg_tensors::TensorError;

use super::PickleRole;

/// A legacy file that cannot be read, with what is wrong and where (byte
/// offsets are from the start of the file).
///
/// ```
/// use tpkg::legacy::{LegacyError, LegacyFile};
///
/// # let path = "../../tests/data/golden/torch-1.10.2/torch_save/state_dict_legacy.pt";
/// let mut bytes = std::fs::read(path).unwrap();
/// bytes.truncate(bytes.len() - 10); // inside the last storage's data
/// let error = LegacyFile::from_bytes(bytes).unwrap_err();
/// assert!(matches!(error, LegacyError::Truncated { needed, available, .. } if needed == available + 10));
/// assert!(error.to_string().starts_with("byte "));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A pickle of the stream does not decode (a truncated stream ends
    /// here too, with the decoder's "data ends" error).
    #[error("byte {offset}: the {role} pickle does not decode")]
    Pickle {
        /// Which pickle.
        role: PickleRole,
        /// Where it starts.
        offset: u64,
        /// Why (its offset is within the pickle).
        #[source]
        source: DecodeError,
    },
    /// A pickle runs past
    /// [`MAX_PICKLE_BYTES`](crate::files::records::MAX_PICKLE_BYTES)
    /// without ending.
    #[error("byte {offset}: the {role} pickle runs past the {limit}-byte limit for a pickle")]
    PickleTooLarge {
        /// Which pickle.
        role: PickleRole,
        /// Where it starts.
        offset: u64,
        /// [`MAX_PICKLE_BYTES`](crate::files::records::MAX_PICKLE_BYTES).
        limit: u64,
    },
    /// The first pickle is not PyTorch's magic number: not a legacy file.
    #[error(
        "byte 0: not a legacy torch.save file: the first pickle is {found}, not the magic number 0x1950a86a20f9469cfc6c"
    )]
    BadMagic {
        /// The value found (Python repr, shortened).
        found: String,
    },
    /// The second pickle is not protocol version 1001.
    #[error("byte {offset}: protocol version {found}, but torch.load reads only 1001")]
    ProtocolVersion {
        /// Where the pickle starts.
        offset: u64,
        /// The value found (Python repr, shortened).
        found: String,
    },
    /// `sys_info` says a big-endian machine wrote the file. PyTorch's own
    /// byte order handling changed over the versions (element counts were
    /// written in the writer's byte order), so tpkg refuses rather than
    /// guesses.
    #[error(
        "byte {offset}: sys_info says a big-endian machine wrote this file; tpkg reads only little-endian legacy files"
    )]
    BigEndian {
        /// Where the sys_info pickle starts.
        offset: u64,
    },
    /// A pickle `torch.load` reads without a persistent-id handler holds a
    /// persistent id (`torch.load` fails on it).
    #[error("byte {offset}: the {role} pickle holds a persistent id, which torch.load cannot load")]
    UnexpectedPersistentId {
        /// Which pickle.
        role: PickleRole,
        /// The persistent id's opcode.
        offset: u64,
    },
    /// The storage key pickle is not a list of strings.
    #[error("byte {offset}: the storage keys are {found}, not a list of strings")]
    StorageKeys {
        /// The offending value's opcode (or the pickle's start).
        offset: u64,
        /// What was found (Python repr, shortened).
        found: String,
    },
    /// The stream ends inside a storage's count or data.
    #[error("byte {offset}: the file ends inside {what}: {needed} bytes needed, {available} left")]
    Truncated {
        /// What was being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes the file has from `offset` on.
        available: u64,
    },
    /// A storage's element count times its element size overflows 64 bits
    /// (no file holds that; `torch.load` computes it modulo 2^64).
    #[error(
        "byte {offset}: storage {key:?} claims {count} elements of {element_size} bytes, which overflows"
    )]
    SizeOverflow {
        /// Storage key.
        key: String,
        /// Offset of its count.
        offset: u64,
        /// The count in the file.
        count: u64,
        /// Bytes per element.
        element_size: u64,
    },
    /// A storage's element count in the file is negative, or differs from
    /// the pickle's (`torch.load`: "storage has wrong byte size").
    #[error(
        "byte {offset}: storage {key:?} holds {count} elements in the file{}",
        numel.map(|n| format!(", but the pickle declares {n}")).unwrap_or_default()
    )]
    StorageSize {
        /// Storage key.
        key: String,
        /// Offset of its count.
        offset: u64,
        /// The count in the file (signed, as PyTorch reads it).
        count: i64,
        /// Elements the pickle declares (the tar form declares none).
        numel: Option<u64>,
    },
    /// A storage the object pickle uses is not in the key list, so the file
    /// has no bytes for it (`torch.load` would leave its memory
    /// uninitialised).
    #[error(
        "byte {offset}: storage {key:?} is used by the object pickle but missing from the storage key list"
    )]
    MissingStorage {
        /// Storage key.
        key: String,
        /// Its first persistent id's opcode.
        offset: u64,
    },
    /// A key in the key list that no storage persistent id of the object
    /// pickle names as its root (`torch.load` fails on it).
    #[error(
        "byte {offset}: storage key {key:?} is in the key list but no storage of the object pickle has it"
    )]
    UnknownStorage {
        /// The key.
        key: String,
        /// Where the key list pickle starts.
        offset: u64,
    },
    /// A key listed twice (PyTorch never writes that; `torch.load` would
    /// read two blocks of data into one storage).
    #[error("byte {offset}: storage key {key:?} is in the key list twice")]
    DuplicateStorage {
        /// The key.
        key: String,
        /// Where the key list pickle starts.
        offset: u64,
    },
    /// A persistent id `torch.load` would refuse, or that contradicts
    /// another one.
    #[error("byte {offset}: persistent id: {reason}")]
    PersistentId {
        /// The persistent id's opcode.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Tar form: the tar itself is damaged where Python's `tarfile` raises
    /// `ReadError` (then `torch.load` tries the file as a stream, which
    /// tpkg does too before giving this error).
    #[error("byte {offset}: tar: {reason}")]
    Tar {
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Tar form: a member `torch.load` needs is missing or not a file.
    #[error("tar member {name:?} {reason}")]
    TarMember {
        /// The member name (`storages`, `tensors`, `pickle`).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Tar form: a member's content is not what `torch.load` reads.
    #[error("byte {offset}: {reason}")]
    TarForm {
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor is malformed or out of bounds, or a storage persistent id
    /// does not parse.
    #[error("{}tensor", offset.map(|o| format!("byte {o}: ")).unwrap_or_default())]
    Tensor {
        /// The persistent id's opcode, when the fault is in one.
        offset: Option<u64>,
        /// What is wrong.
        #[source]
        source: TensorError,
    },
}
