//! Legacy `torch.save` files: the format before PyTorch 1.6, still written
//! by `torch.save(obj, f, _use_new_zipfile_serialization=False)` and read by
//! every `torch.load`.
//!
//! A legacy file is a stream of pickles followed by raw storage bytes
//! (`torch/serialization.py`, `_legacy_save` / `_legacy_load`):
//!
//! 1. a pickle of the magic number `0x1950a86a20f9469cfc6c`,
//! 2. a pickle of the protocol version, `1001`,
//! 3. a pickle of `sys_info` (`protocol_version`, `little_endian`,
//!    `type_sizes`),
//! 4. the object pickle, tensors in it as
//!    `torch._utils._rebuild_tensor_v2(persistent_load(('storage',
//!    torch.<Type>Storage, root_key, location, numel, view_metadata)), ...)`
//!    and `nn.Module` classes as `('module', class, source_file, source)`,
//! 5. a pickle of the list of storage keys,
//! 6. for each key in that order: its element count (8 bytes,
//!    little-endian), then its elements (count × element size bytes).
//!
//! [`LegacyFile`] reads all of it without running anything: every pickle is
//! decoded as data ([`tpkg_pickle::decode_prefix`], the `TorchData` policy
//! package pickles are read with), every span is recorded for auditors
//! ([`LegacyFile::pickles`]: a scanner that reads only the first pickle of
//! the file misses whatever the later ones hold), and tensors are
//! bounds-checked views into the file's memory map. Anything `torch.load`
//! would refuse, or would read as something other than what the stream
//! says, is a [`LegacyError`] naming what and at which byte.
//!
//! The pre-0.4 tar form (a tar holding `sys_info`, `pickle`, `tensors` and
//! `storages`, see [`LegacyForm::Tar`]) is read too, into the same model:
//! like `torch.load`, [`LegacyFile`] tries a tar first and reads the stream
//! when Python's `tarfile` refuses the file. (`torch.load` tries the tar
//! only for real files, and its default `weights_only=True` refuses the tar
//! form; `weights_only=False` reads it.)
//!
//! Where tpkg is stricter than `torch.load`, on purpose (PyTorch never
//! writes these; each is a typed error rather than a guess): a storage the
//! object pickle uses but the key list lacks (`torch.load` leaves its
//! memory uninitialised); a key listed twice; persistent ids of one key
//! that disagree (`torch.load` keeps the first); storage views past their
//! root (Python's slicing clamps them) or whose key is also a storage key;
//! element counts whose size wraps past 2^64 (`torch.load` computes it
//! modulo 2^64); storage keys that are not strings (ints in the tar form);
//! storage classes outside the `torch` module (`torch.load` resolves any
//! `*.FloatStorage` by its name); big-endian `sys_info`. Python 2 strings
//! in the pickles must be ASCII (the decoder's rule; `torch.load` decodes
//! them as UTF-8).
//!
//! ```
//! use tpkg::legacy::{LegacyFile, PickleRole, looks_legacy};
//!
//! // What torch.save({"w": torch.tensor([1.0, 2.0])}, f,
//! // _use_new_zipfile_serialization=False) writes (storage key "0",
//! // without pickle memo opcodes).
//! let mut file = Vec::new();
//! // The magic number, the protocol version (1001), sys_info.
//! file.extend_from_slice(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
//! file.extend_from_slice(b"\x80\x02M\xe9\x03.");
//! file.extend_from_slice(b"\x80\x02}X\x0d\x00\x00\x00little_endian\x88s.");
//! // {"w": _rebuild_tensor_v2(persistent_load(("storage", torch.FloatStorage,
//! //        "0", "cpu", 2, None)), 0, (2,), (1,), False, OrderedDict())}
//! file.extend_from_slice(b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n\
//!     ((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu\
//!     K\x02NtQK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.");
//! // The storage keys ["0"], then storage "0": its count, its elements.
//! file.extend_from_slice(b"\x80\x02]X\x01\x00\x00\x000a.");
//! file.extend_from_slice(&2u64.to_le_bytes());
//! file.extend_from_slice(&[1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat());
//!
//! assert!(looks_legacy(&file));
//! let legacy = LegacyFile::from_bytes(file)?;
//! let tensors = legacy.tensors()?;
//! let (path, view) = &tensors[0];
//! assert_eq!((path.as_str(), view.shape()), ("w", &[2u64][..]));
//! assert_eq!(&view.contiguous_bytes()[..], [1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat());
//! assert_eq!(legacy.pickles()[3].role, PickleRole::Object);
//! assert_eq!(legacy.storages()[0].data, 199..207);
//! # Ok::<(), tpkg::legacy::LegacyError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use num_bigint::BigInt;
use tpkg_pickle::{
    DecodeError, DecodeErrorKind, DecodeOptions, TorchData, Value, ValueGraph, ValueId,
    decode_prefix, python_repr_limited,
};
use tpkg_tensors::{
    DType, StorageIds, StorageRef, TensorError, TensorView, find_tensors_with, storage_ref,
};

use crate::files::records::MAX_PICKLE_BYTES;

mod tar;
pub use tar::TarMember;

/// `torch.serialization.MAGIC_NUMBER`: the value of a legacy file's first
/// pickle.
pub const MAGIC_NUMBER: u128 = 0x1950_a86a_20f9_469c_fc6c;

/// `torch.serialization.PROTOCOL_VERSION`: the only value of the second
/// pickle `torch.load` accepts.
pub const PROTOCOL_VERSION: i64 = 1001;

/// How many leading bytes [`looks_legacy`] reads: every protocol's plain
/// pickle of the magic number is 15 to 28 bytes.
const SNIFF_LEN: usize = 512;

/// Longest Python repr an error message quotes.
const REPR_LIMIT: usize = 80;

/// Whether `bytes` (a whole file, or at least its first 512 bytes) starts
/// with the pickle of PyTorch's magic number, as a legacy `torch.save`
/// stream does: at protocol 2 (what `torch.save` writes by default)
/// `80 02 8a 0a 6c fc 9c 46 f9 20 6a a8 50 19 2e`, at protocols 4 and 5 the
/// same inside a `FRAME`, at protocols 0 and 1 the text
/// `L119547037146038801333356L\n.`. The pickle is decoded (as data), so any
/// encoding of the number counts, as it does for `torch.load`.
///
/// ```
/// use tpkg::legacy::looks_legacy;
/// assert!(looks_legacy(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03."));
/// assert!(looks_legacy(b"L119547037146038801333356L\n.I1001\n."));
/// assert!(!looks_legacy(b"\x80\x02K\x01."));
/// assert!(!looks_legacy(b"PK\x03\x04"));
/// ```
pub fn looks_legacy(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(SNIFF_LEN)];
    decode_prefix(head, &DecodeOptions::default(), &TorchData)
        .is_ok_and(|(graph, _)| is_magic(graph.get(graph.root())))
}

fn is_magic(value: &Value) -> bool {
    matches!(value, Value::BigInt(n) if *n == BigInt::from(MAGIC_NUMBER))
}

/// The two legacy layouts `torch.load` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LegacyForm {
    /// The stream of pickles and storages (PyTorch 0.4 to today with
    /// `_use_new_zipfile_serialization=False`).
    Stream,
    /// The tar of PyTorch 0.1 to 0.3 (`sys_info`, `pickle`, `tensors`,
    /// `storages`).
    Tar,
}

/// Whether `bytes` (the whole file) is a tar holding the members
/// `torch.load` reads from the pre-0.4 form: `storages`, `tensors` and
/// `pickle`. The tar is listed as Python's `tarfile` lists it.
///
/// ```
/// // A tar whose first header is valid but that holds none of them.
/// let mut header = [0u8; 512];
/// header[..5].copy_from_slice(b"notes");
/// header[124..135].copy_from_slice(b"00000000000");
/// header[148..156].copy_from_slice(b"        ");
/// let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
/// header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
/// assert!(!tpkg::legacy::looks_legacy_tar(&header));
/// assert!(!tpkg::legacy::looks_legacy_tar(b"\x80\x02N."));
/// ```
pub fn looks_legacy_tar(bytes: &[u8]) -> bool {
    match tar::members(bytes) {
        Ok(Some((members, _))) => ["storages", "tensors", "pickle"]
            .iter()
            .all(|name| members.iter().any(|m| m.name == *name)),
        _ => false,
    }
}

/// The members of a tar as Python's `tarfile.open(mode="r:")` (3.11)
/// lists them: `Ok(None)` when `tarfile` refuses the file as no tar (then
/// `torch.load` reads it as a stream), an error where `tarfile` raises
/// `ReadError` after the first header, tpkg's refusals (sparse members,
/// negative sizes) included.
///
/// ```
/// assert!(tpkg::legacy::list_tar(b"\x80\x02N.").unwrap().is_none());
/// // One zero block: an empty tar.
/// assert_eq!(tpkg::legacy::list_tar(&[0; 512]).unwrap(), Some(vec![]));
/// ```
pub fn list_tar(bytes: &[u8]) -> Result<Option<Vec<TarMember>>, LegacyError> {
    Ok(tar::members(bytes)?.map(|(members, _)| members))
}

/// Which pickle of a legacy stream a [`PickleSpan`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PickleRole {
    /// The magic number.
    Magic,
    /// The protocol version (1001).
    ProtocolVersion,
    /// `sys_info`: byte order and C type sizes of the writer.
    SysInfo,
    /// The saved object.
    Object,
    /// The list of storage keys, in the order their data follows.
    StorageKeys,
    /// Tar form, `storages` member: the number of storages.
    StorageCount,
    /// Tar form, `storages` member: a storage's `(key, location, type)`.
    StorageHeader,
    /// Tar form, `storages` member: the storage views.
    StorageViews,
    /// Tar form, `tensors` member: the number of tensors.
    TensorCount,
    /// Tar form, `tensors` member: a tensor's `(key, storage_key, type)`.
    TensorHeader,
}

impl PickleRole {
    /// A short name for messages (`magic number`, `object`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PickleRole::Magic => "magic number",
            PickleRole::ProtocolVersion => "protocol version",
            PickleRole::SysInfo => "sys_info",
            PickleRole::Object => "object",
            PickleRole::StorageKeys => "storage keys",
            PickleRole::StorageCount => "storage count",
            PickleRole::StorageHeader => "storage header",
            PickleRole::StorageViews => "storage views",
            PickleRole::TensorCount => "tensor count",
            PickleRole::TensorHeader => "tensor header",
        }
    }
}

impl fmt::Display for PickleRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pickle of the stream: its role and its bytes in the file, from its
/// first opcode up to and including its `STOP`. `torch.load` unpickles
/// every one of them (the first three and the last without persistent
/// ids), so an audit must decode all of them, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleSpan {
    /// What the pickle holds.
    pub role: PickleRole,
    /// Its bytes in the file.
    pub range: Range<u64>,
}

/// The writer's `sys_info` (the third pickle). `torch.load` ignores it;
/// tpkg reads the byte order from it and refuses big-endian files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysInfo {
    /// `protocol_version` (1001), if present as an int.
    pub protocol_version: Option<i64>,
    /// `little_endian`, if present as a bool.
    pub little_endian: Option<bool>,
    /// `type_sizes`: C type name (`short`, `int`, `long`) and its size in
    /// bytes, in pickle order (PyTorch writes 2, 4 and 4 on every
    /// platform).
    pub type_sizes: Vec<(String, i64)>,
}

/// One storage of the file: what the object pickle declares about it and
/// where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyStorage {
    /// Its key (`str(storage._cdata)` when PyTorch wrote it).
    pub key: String,
    /// Element type (of the storage class its first persistent id names).
    pub dtype: DType,
    /// Elements, as the pickle declares and the file's count confirms.
    pub numel: u64,
    /// Where it lived when saved (`cpu`, `cuda:0`).
    pub location: String,
    /// Offset of its 8-byte element count in the file.
    pub header: u64,
    /// Its elements' bytes in the file (little-endian).
    pub data: Range<u64>,
}

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
    /// A pickle runs past [`MAX_PICKLE_BYTES`] without ending.
    #[error("byte {offset}: the {role} pickle runs past the {limit}-byte limit for a pickle")]
    PickleTooLarge {
        /// Which pickle.
        role: PickleRole,
        /// Where it starts.
        offset: u64,
        /// [`MAX_PICKLE_BYTES`].
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

/// The file's bytes: a read-only memory map, or memory the caller gave.
enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(map) => map,
            Backing::Owned(bytes) => bytes,
        }
    }
}

/// A legacy `torch.save` file, parsed and checked: its pickles, its
/// `sys_info`, the object decoded as data, and its storages as ranges of the
/// file. Owns the bytes (a memory map for [`open`](Self::open)).
///
/// See the [module documentation](self) for the layout. A state dict
/// torch 1.10 saved with `_use_new_zipfile_serialization=False`:
///
/// ```
/// use tpkg::legacy::{LegacyFile, LegacyForm};
/// use tpkg::tensors::DType;
///
/// # let path = "../../tests/data/golden/torch-1.10.2/torch_save/state_dict_legacy.pt";
/// let file = LegacyFile::open(path)?;
/// assert_eq!(file.form(), LegacyForm::Stream);
/// assert_eq!(file.sys_info().little_endian, Some(true));
/// let tensors = file.tensors()?;
/// let (name, weight) = &tensors[0];
/// assert_eq!(name, "0.weight");
/// assert_eq!((weight.dtype(), weight.shape()), (DType::Float32, &[8u64, 3, 3, 3][..]));
/// // Zero-copy: the view's storage is a slice of the mapped file.
/// let key = &weight.spec().storage.key;
/// assert_eq!(file.storage_bytes(key), Some(weight.storage_bytes()));
/// # Ok::<(), tpkg::legacy::LegacyError>(())
/// ```
pub struct LegacyFile {
    backing: Backing,
    form: LegacyForm,
    members: Vec<TarMember>,
    pickles: Vec<PickleSpan>,
    sys_info: SysInfo,
    graph: ValueGraph,
    storages: Vec<LegacyStorage>,
    by_key: HashMap<String, usize>,
    data_end: u64,
}

impl fmt::Debug for LegacyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyFile")
            .field("len", &self.backing.bytes().len())
            .field("form", &self.form)
            .field("pickles", &self.pickles)
            .field("sys_info", &self.sys_info)
            .field("storages", &self.storages)
            .finish_non_exhaustive()
    }
}

impl LegacyFile {
    /// Opens and checks a legacy file (either form), memory-mapped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LegacyError> {
        let path = path.as_ref();
        let io = |source| LegacyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let backing = if len == 0 {
            // An empty file cannot be mapped; it is refused below all the same.
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io)?;
            Backing::Owned(bytes)
        } else {
            // SAFETY: the map is read-only. As with every mmap-based reader,
            // another process truncating or rewriting the file while it is
            // open can change or invalidate the bytes.
            Backing::Mapped(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        Self::parse(backing)
    }

    /// Reads and checks a legacy file (either form) held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, LegacyError> {
        Self::parse(Backing::Owned(bytes))
    }

    fn parse(backing: Backing) -> Result<Self, LegacyError> {
        let bytes = backing.bytes();
        // torch.load tries a tar first; where Python's tarfile raises
        // (TarError) it reads the file as a stream instead.
        let (form, members, parsed) = match tar::members(bytes) {
            Ok(None) => (LegacyForm::Stream, Vec::new(), Parser::new(bytes).parse()?),
            Ok(Some((members, end))) => match tar::parse(bytes, members.clone(), end) {
                Ok(parsed) => (LegacyForm::Tar, members, parsed),
                Err(error @ LegacyError::Tar { .. }) => (
                    LegacyForm::Stream,
                    Vec::new(),
                    Parser::new(bytes).parse().map_err(|_| error)?,
                ),
                Err(error) => return Err(error),
            },
            Err(error) => (
                LegacyForm::Stream,
                Vec::new(),
                Parser::new(bytes).parse().map_err(|_| error)?,
            ),
        };
        Ok(LegacyFile {
            backing,
            form,
            members,
            pickles: parsed.pickles,
            sys_info: parsed.sys_info,
            graph: parsed.graph,
            storages: parsed.storages,
            by_key: parsed.by_key,
            data_end: parsed.data_end,
        })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Which of the two legacy forms the file is.
    pub fn form(&self) -> LegacyForm {
        self.form
    }

    /// The tar form's members, as Python's `tarfile` lists them (empty for
    /// the stream form). Members `torch.load` does not read (anything but
    /// `storages`, `tensors` and `pickle`, or an earlier member of one of
    /// those names) are invisible to PyTorch.
    pub fn tar_members(&self) -> &[TarMember] {
        &self.members
    }

    /// The writer's `sys_info`.
    pub fn sys_info(&self) -> &SysInfo {
        &self.sys_info
    }

    /// Every pickle `torch.load` unpickles, in file order: in the stream
    /// form the magic number, protocol version, sys_info, object and
    /// storage keys; in the tar form the pickles of its members (sys_info
    /// first, when present). An audit decodes every one of them:
    ///
    /// ```
    /// use tpkg::legacy::{LegacyFile, PickleRole};
    /// use tpkg::pickle::{Symbolic, Value, decode_with};
    ///
    /// # let path = "../../tests/data/golden/torch-1.10.2/torch_save/state_dict_legacy.pt";
    /// let file = LegacyFile::open(path)?;
    /// let mut globals = Vec::new();
    /// for span in file.pickles() {
    ///     let bytes = &file.bytes()[span.range.start as usize..span.range.end as usize];
    ///     let graph = decode_with(bytes, &Default::default(), &Symbolic).unwrap();
    ///     for (_, value) in graph.iter() {
    ///         if let Value::Global { module, name } = value {
    ///             globals.push((span.role, format!("{module}.{name}")));
    ///         }
    ///     }
    /// }
    /// assert!(globals.contains(&(PickleRole::Object, "torch._utils._rebuild_tensor_v2".into())));
    /// assert!(globals.iter().all(|(role, _)| *role == PickleRole::Object));
    /// # Ok::<(), tpkg::legacy::LegacyError>(())
    /// ```
    pub fn pickles(&self) -> &[PickleSpan] {
        &self.pickles
    }

    /// The object pickle decoded as data (the `TorchData` policy; nothing
    /// imported or run). Persistent ids `('module', class, source_file,
    /// source)` are replaced by their class, as `torch.load` does, so a
    /// pickled `nn.Module` reads as one; storage persistent ids stay.
    pub fn graph(&self) -> &ValueGraph {
        &self.graph
    }

    /// The storages, in the order of the key list (which is their order in
    /// the file).
    ///
    /// ```
    /// # let path = "../../tests/data/golden/torch-1.10.2/torch_save/state_dict_legacy.pt";
    /// let file = tpkg::legacy::LegacyFile::open(path)?;
    /// let total: u64 = file.storages().iter().map(|s| s.data.end - s.data.start).sum();
    /// let last = file.storages().last().unwrap();
    /// assert_eq!(last.data.end, file.bytes().len() as u64);
    /// assert!(total > 0 && file.trailing().is_empty());
    /// # Ok::<(), tpkg::legacy::LegacyError>(())
    /// ```
    pub fn storages(&self) -> &[LegacyStorage] {
        &self.storages
    }

    /// Storage `key`'s bytes (its elements, little-endian), borrowed from
    /// the file.
    pub fn storage_bytes(&self, key: &str) -> Option<&[u8]> {
        let storage = &self.storages[*self.by_key.get(key)?];
        self.bytes()
            .get(storage.data.start as usize..storage.data.end as usize)
    }

    /// Drops this process's mapped pages of storage `key` (nothing for a
    /// file read into memory): for passes that copy every storage out, so
    /// the process ends holding the copies, not the copies plus the map.
    /// Its bytes stay readable (the pages fault in again from the file).
    pub fn release_storage(&self, key: &str) {
        if let (Backing::Mapped(map), Some(index)) = (&self.backing, self.by_key.get(key)) {
            let data = &self.storages[*index].data;
            tpkg_archive::release_pages(map, data.start, data.end - data.start);
        }
    }

    /// Bytes after the last storage (in the tar form: after the last
    /// member, unless they are only the end-of-archive zeros). `torch.load`
    /// never reads them, so anything there is invisible to PyTorch (and
    /// worth an auditor's look).
    pub fn trailing(&self) -> Range<u64> {
        self.data_end..self.bytes().len() as u64
    }

    /// Every tensor reachable from the saved object (through dicts, lists,
    /// tuples and `nn.Module` state dicts, paths as in
    /// [`tpkg_tensors::find_tensors`]), each a bounds-checked view borrowing
    /// the file's bytes.
    pub fn tensors(&self) -> Result<Vec<(String, TensorView<'_>)>, LegacyError> {
        let tensor_error = |source| LegacyError::Tensor {
            offset: None,
            source,
        };
        let specs = find_tensors_with(&self.graph, StorageIds::Legacy).map_err(tensor_error)?;
        let mut views = Vec::with_capacity(specs.len());
        for (path, spec) in specs {
            // Every storage persistent id was checked against the key list
            // when the file was opened, so the key is there.
            let storage = self.storage_bytes(&spec.storage.key).unwrap_or(&[]);
            let view = TensorView::new(spec, &path, storage).map_err(tensor_error)?;
            views.push((path, view));
        }
        Ok(views)
    }
}

/// What a parse produces.
struct Parsed {
    pickles: Vec<PickleSpan>,
    sys_info: SysInfo,
    graph: ValueGraph,
    storages: Vec<LegacyStorage>,
    by_key: HashMap<String, usize>,
    data_end: u64,
}

/// A root storage as the object pickle's persistent ids declare it (the
/// first one naming a key wins in `torch.load`; later ones must agree).
struct Root {
    storage: StorageRef,
    /// Its first persistent id's opcode.
    offset: u64,
}

/// A legacy storage view's declaration: (root key, offset, numel), and its
/// first persistent id's opcode.
struct ViewDecl {
    root: String,
    offset: u64,
    numel: u64,
    at: u64,
}

/// Reads a region of the file (the whole stream, or one tar member's data)
/// pickle by pickle and storage by storage, as `torch.load` reads the file
/// object.
struct Parser<'a> {
    bytes: &'a [u8],
    /// Next byte to read (from the start of the file).
    pos: usize,
    /// End of the region.
    end: usize,
    pickles: Vec<PickleSpan>,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self::region(bytes, 0..bytes.len())
    }

    /// A parser of `bytes[range]` (offsets stay those of the file).
    fn region(bytes: &'a [u8], range: Range<usize>) -> Self {
        Parser {
            bytes,
            pos: range.start,
            end: range.end,
            pickles: Vec::new(),
        }
    }

    /// Decodes the next pickle of the region and records its span.
    fn pickle(&mut self, role: PickleRole) -> Result<(ValueGraph, u64), LegacyError> {
        let start = self.pos;
        let rest = &self.bytes[start..self.end];
        let limit = usize::try_from(MAX_PICKLE_BYTES).unwrap_or(usize::MAX);
        let cut = rest.len() > limit;
        let window = &rest[..rest.len().min(limit)];
        let (graph, len) =
            decode_prefix(window, &DecodeOptions::default(), &TorchData).map_err(|source| {
                let at_cut = matches!(
                    source.kind(),
                    DecodeErrorKind::MissingStop | DecodeErrorKind::Truncated { .. }
                );
                if cut && at_cut {
                    LegacyError::PickleTooLarge {
                        role,
                        offset: start as u64,
                        limit: MAX_PICKLE_BYTES,
                    }
                } else {
                    LegacyError::Pickle {
                        role,
                        offset: start as u64,
                        source,
                    }
                }
            })?;
        self.pos = start + len;
        self.pickles.push(PickleSpan {
            role,
            range: start as u64..self.pos as u64,
        });
        Ok((graph, start as u64))
    }

    /// `torch.load` reads this pickle with a plain unpickler: a persistent
    /// id in it fails the load.
    fn no_persistent_ids(
        graph: &ValueGraph,
        role: PickleRole,
        start: u64,
    ) -> Result<(), LegacyError> {
        match graph
            .iter()
            .find(|(_, value)| matches!(value, Value::PersistentId(_)))
        {
            Some((id, _)) => Err(LegacyError::UnexpectedPersistentId {
                role,
                offset: start + graph.origin(id).unwrap_or(0) as u64,
            }),
            None => Ok(()),
        }
    }

    fn parse(mut self) -> Result<Parsed, LegacyError> {
        let (magic, start) = self.pickle(PickleRole::Magic)?;
        if !is_magic(magic.get(magic.root())) {
            return Err(LegacyError::BadMagic {
                found: python_repr_limited(&magic, magic.root(), REPR_LIMIT),
            });
        }
        Self::no_persistent_ids(&magic, PickleRole::Magic, start)?;

        let (version, start) = self.pickle(PickleRole::ProtocolVersion)?;
        // Python compares with `!=`: 1001.0 is 1001 too.
        let is_1001 = match version.get(version.root()) {
            Value::Int(n) => *n == PROTOCOL_VERSION,
            Value::Float(x) => *x == PROTOCOL_VERSION as f64,
            _ => false,
        };
        if !is_1001 {
            return Err(LegacyError::ProtocolVersion {
                offset: start,
                found: python_repr_limited(&version, version.root(), REPR_LIMIT),
            });
        }
        Self::no_persistent_ids(&version, PickleRole::ProtocolVersion, start)?;

        let (info, start) = self.pickle(PickleRole::SysInfo)?;
        Self::no_persistent_ids(&info, PickleRole::SysInfo, start)?;
        let sys_info = read_sys_info(&info);
        if sys_info.little_endian == Some(false) {
            return Err(LegacyError::BigEndian { offset: start });
        }

        let (mut graph, object_start) = self.pickle(PickleRole::Object)?;
        let (roots, root_order) = resolve_persistent_ids(&mut graph, object_start)?;

        let (keys, keys_start) = self.pickle(PickleRole::StorageKeys)?;
        Self::no_persistent_ids(&keys, PickleRole::StorageKeys, keys_start)?;
        let keys = read_keys(&keys, keys_start)?;

        let mut storages = Vec::with_capacity(keys.len());
        let mut by_key = HashMap::with_capacity(keys.len());
        for key in keys {
            let Some(root) = roots.get(&key) else {
                return Err(LegacyError::UnknownStorage {
                    key,
                    offset: keys_start,
                });
            };
            if by_key.contains_key(&key) {
                return Err(LegacyError::DuplicateStorage {
                    key,
                    offset: keys_start,
                });
            }
            let storage = self.storage_data(&key, root)?;
            by_key.insert(key, storages.len());
            storages.push(storage);
        }
        for key in &root_order {
            if !by_key.contains_key(key) {
                let offset = roots.get(key).map_or(object_start, |root| root.offset);
                return Err(LegacyError::MissingStorage {
                    key: key.clone(),
                    offset,
                });
            }
        }
        Ok(Parsed {
            pickles: self.pickles,
            sys_info,
            graph,
            storages,
            by_key,
            data_end: self.pos as u64,
        })
    }

    /// Reads one storage's count and locates its data, as
    /// `_set_from_file` does; `root` is what the object pickle declares.
    fn storage_data(&mut self, key: &str, root: &Root) -> Result<LegacyStorage, LegacyError> {
        let storage = &root.storage;
        let (header, data) = self.storage_block(key, storage.dtype, Some(storage.numel))?;
        Ok(LegacyStorage {
            key: key.to_owned(),
            dtype: storage.dtype,
            numel: storage.numel,
            location: storage.location.clone(),
            header,
            data,
        })
    }

    /// Reads a storage's element count (8 bytes, little-endian, signed as
    /// PyTorch reads it) and locates the `count` elements of `dtype` after
    /// it; the count must be `expected` when the pickle declared one.
    /// Returns the count's offset and the data's range.
    fn storage_block(
        &mut self,
        key: &str,
        dtype: DType,
        expected: Option<u64>,
    ) -> Result<(u64, Range<u64>), LegacyError> {
        let header = self.pos;
        let available = (self.end - header) as u64;
        let Some(count) = self.bytes[..self.end].get(header..header + 8) else {
            return Err(LegacyError::Truncated {
                what: format!("the element count of storage {key:?}"),
                offset: header as u64,
                needed: 8,
                available,
            });
        };
        let mut raw = [0u8; 8];
        raw.copy_from_slice(count);
        // PyTorch reads an int64: a negative count cannot match any size.
        let signed = i64::from_le_bytes(raw);
        let count = u64::from_le_bytes(raw);
        let element_size = dtype.element_size() as u64;
        let Some(nbytes) = count.checked_mul(element_size) else {
            return Err(LegacyError::SizeOverflow {
                key: key.to_owned(),
                offset: header as u64,
                count,
                element_size,
            });
        };
        if signed < 0 || expected.is_some_and(|numel| numel != count) {
            return Err(LegacyError::StorageSize {
                key: key.to_owned(),
                offset: header as u64,
                count: signed,
                numel: expected,
            });
        }
        let start = header as u64 + 8;
        if nbytes > available - 8 {
            return Err(LegacyError::Truncated {
                what: format!("the data of storage {key:?}"),
                offset: start,
                needed: nbytes,
                available: available - 8,
            });
        }
        // Fits the region, so fits usize.
        self.pos = header + 8 + nbytes as usize;
        Ok((header as u64, start..start + nbytes))
    }
}

fn read_sys_info(graph: &ValueGraph) -> SysInfo {
    let mut info = SysInfo::default();
    let Value::Dict(items) = graph.get(graph.root()) else {
        return info;
    };
    for (key, value) in items {
        match (graph.get(*key).as_str(), graph.get(*value)) {
            (Some("protocol_version"), Value::Int(n)) => info.protocol_version = Some(*n),
            (Some("little_endian"), Value::Bool(b)) => info.little_endian = Some(*b),
            (Some("type_sizes"), Value::Dict(sizes)) => {
                info.type_sizes = sizes
                    .iter()
                    .filter_map(|(name, size)| match (graph.get(*name), graph.get(*size)) {
                        (Value::Str(name), Value::Int(size)) => {
                            Some((name.to_string_lossy(), *size))
                        }
                        _ => None,
                    })
                    .collect();
            }
            _ => {}
        }
    }
    info
}

/// The storage key list: a list (or tuple) of strings.
fn read_keys(graph: &ValueGraph, start: u64) -> Result<Vec<String>, LegacyError> {
    let at = |id: ValueId| start + graph.origin(id).unwrap_or(0) as u64;
    let (Value::List(items) | Value::Tuple(items)) = graph.get(graph.root()) else {
        return Err(LegacyError::StorageKeys {
            offset: at(graph.root()),
            found: python_repr_limited(graph, graph.root(), REPR_LIMIT),
        });
    };
    items
        .iter()
        .map(|item| match graph.get(*item) {
            Value::Str(key) => Ok(key.to_string_lossy()),
            _ => Err(LegacyError::StorageKeys {
                offset: at(*item),
                found: format!(
                    "a list holding {}",
                    python_repr_limited(graph, *item, REPR_LIMIT)
                ),
            }),
        })
        .collect()
}

/// The text of a persistent id field that `_maybe_decode_ascii` accepts.
fn pid_text(graph: &ValueGraph, id: ValueId) -> Option<String> {
    match graph.get(id) {
        Value::Str(text) => Some(text.to_string_lossy()),
        Value::Bytes(bytes) => std::str::from_utf8(bytes).ok().map(str::to_owned),
        _ => None,
    }
}

/// Goes through every persistent id of the object pickle as
/// `torch.load`'s `persistent_load` would meet them: `module` ids become
/// their class, `storage` ids are parsed and checked for consistency, any
/// other is refused. Returns the root storages by key, and their keys in
/// order of first use.
fn resolve_persistent_ids(
    graph: &mut ValueGraph,
    start: u64,
) -> Result<(HashMap<String, Root>, Vec<String>), LegacyError> {
    let pids: Vec<(ValueId, ValueId)> = graph
        .iter()
        .filter_map(|(id, value)| match value {
            Value::PersistentId(pid) => Some((id, *pid)),
            _ => None,
        })
        .collect();
    let mut roots: HashMap<String, Root> = HashMap::new();
    let mut order = Vec::new();
    let mut views: HashMap<String, ViewDecl> = HashMap::new();
    for (id, pid) in pids {
        let offset = start + graph.origin(id).unwrap_or(0) as u64;
        let refuse = |reason: String| LegacyError::PersistentId { offset, reason };
        let Value::Tuple(fields) = graph.get(pid) else {
            return Err(refuse(format!(
                "{} is not a tuple",
                python_repr_limited(graph, pid, REPR_LIMIT)
            )));
        };
        let typename = fields.first().and_then(|t| pid_text(graph, *t));
        match typename.as_deref() {
            Some("module") => {
                // persistent_load returns data[0], the class.
                let Some(&class) = fields.get(1) else {
                    return Err(refuse(
                        "a module persistent id without its class".to_owned(),
                    ));
                };
                let class = graph.get(class).clone();
                *graph.get_mut(id) = class;
            }
            Some("storage") => {
                if let Some(&storage_type) = fields.get(1)
                    && matches!(graph.get(storage_type),
                        Value::Global { name, .. } if name == "UntypedStorage")
                {
                    return Err(refuse(
                        "the storage type is UntypedStorage, which torch.load cannot load from a legacy file (torch.save writes it for dtypes without a storage class: uint16-64, float8, complex32)"
                            .to_owned(),
                    ));
                }
                let storage =
                    storage_ref(graph, pid, StorageIds::Legacy, "").map_err(|source| {
                        LegacyError::Tensor {
                            offset: Some(offset),
                            source,
                        }
                    })?;
                let view_key = match fields.get(5).map(|v| graph.get(*v)) {
                    Some(Value::Tuple(view)) => view.first().copied(),
                    _ => None,
                };
                for key in [fields.get(2).copied(), view_key].into_iter().flatten() {
                    if !matches!(graph.get(key), Value::Str(_)) {
                        return Err(refuse(format!(
                            "the storage key {} is not a string (torch.save writes strings)",
                            python_repr_limited(graph, key, REPR_LIMIT)
                        )));
                    }
                }
                declare(&mut roots, &mut order, &mut views, storage, offset).map_err(refuse)?;
            }
            _ => {
                return Err(refuse(format!(
                    "{} is neither a storage nor a module (torch.load: \"Unknown saved id type\")",
                    python_repr_limited(graph, pid, REPR_LIMIT)
                )));
            }
        }
    }
    // A view key that is also a root key would make torch.load hand out the
    // root (or the view) for both.
    for (key, view) in &views {
        if roots.contains_key(key) {
            return Err(LegacyError::PersistentId {
                offset: view.at,
                reason: format!("the view key {key:?} is also a storage key"),
            });
        }
    }
    Ok((roots, order))
}

/// Records a storage persistent id; later ids of one key must agree with
/// the first (which `torch.load` keeps), views of one view key too.
fn declare(
    roots: &mut HashMap<String, Root>,
    order: &mut Vec<String>,
    views: &mut HashMap<String, ViewDecl>,
    storage: StorageRef,
    offset: u64,
) -> Result<(), String> {
    if let Some(view) = &storage.view {
        match views.get(&view.key) {
            Some(known) => {
                if (known.root.as_str(), known.offset, known.numel)
                    != (storage.key.as_str(), view.offset, view.numel)
                {
                    return Err(format!(
                        "storage view {:?} is declared differently at byte {}",
                        view.key, known.at
                    ));
                }
            }
            None => {
                views.insert(
                    view.key.clone(),
                    ViewDecl {
                        root: storage.key.clone(),
                        offset: view.offset,
                        numel: view.numel,
                        at: offset,
                    },
                );
            }
        }
    }
    match roots.get(&storage.key) {
        Some(known) => {
            let (a, b) = (&known.storage, &storage);
            if (a.dtype, a.numel) != (b.dtype, b.numel) {
                return Err(format!(
                    "storage {:?} is declared as {} elements of {} here but {} of {} at byte {}",
                    b.key, b.numel, b.dtype, a.numel, a.dtype, known.offset
                ));
            }
        }
        None => {
            order.push(storage.key.clone());
            roots.insert(storage.key.clone(), Root { storage, offset });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A small pickle writer (protocol 2, no memo) for hand-made streams.

    fn text(s: &str) -> Vec<u8> {
        let mut out = vec![b'X'];
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn int(n: i64) -> Vec<u8> {
        let mut out = vec![b'\x8a', 8];
        out.extend_from_slice(&n.to_le_bytes());
        out
    }

    fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![b'('];
        for item in items {
            out.extend_from_slice(item);
        }
        out.push(b't');
        out
    }

    fn global(module: &str, name: &str) -> Vec<u8> {
        format!("c{module}\n{name}\n").into_bytes()
    }

    fn pickle(body: &[u8]) -> Vec<u8> {
        [b"\x80\x02".as_slice(), body, b"."].concat()
    }

    fn dict(items: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"}(".to_vec();
        for (key, value) in items {
            out.extend_from_slice(&text(key));
            out.extend_from_slice(value);
        }
        out.push(b'u');
        out
    }

    /// `('storage', torch.<storage_type>, key, 'cpu', numel, view)`, as a
    /// persistent id.
    fn pid(storage_type: &str, key: &str, numel: i64, view: Option<(&str, i64, i64)>) -> Vec<u8> {
        let view = match view {
            None => b"N".to_vec(),
            Some((key, offset, numel)) => tuple(&[text(key), int(offset), int(numel)]),
        };
        let mut out = tuple(&[
            text("storage"),
            global("torch", storage_type),
            text(key),
            text("cpu"),
            int(numel),
            view,
        ]);
        out.push(b'Q');
        out
    }

    fn ints(values: &[i64]) -> Vec<u8> {
        tuple(&values.iter().map(|v| int(*v)).collect::<Vec<_>>())
    }

    /// `_rebuild_tensor_v2(pid, offset, size, stride, False, OrderedDict())`.
    fn tensor(pid: Vec<u8>, offset: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
        let mut out = global("torch._utils", "_rebuild_tensor_v2");
        let hooks = [global("collections", "OrderedDict"), b")R".to_vec()].concat();
        out.extend_from_slice(&tuple(&[
            pid,
            int(offset),
            ints(size),
            ints(stride),
            b"\x89".to_vec(),
            hooks,
        ]));
        out.push(b'R');
        out
    }

    const MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
    const VERSION: &[u8] = b"\x80\x02M\xe9\x03.";

    fn sys_info(little_endian: bool) -> Vec<u8> {
        let flag = if little_endian { b"\x88" } else { b"\x89" };
        pickle(&dict(&[
            ("protocol_version", int(1001)),
            ("little_endian", flag.to_vec()),
            (
                "type_sizes",
                dict(&[("short", int(2)), ("int", int(4)), ("long", int(4))]),
            ),
        ]))
    }

    fn keys(keys: &[&str]) -> Vec<u8> {
        let mut body = b"](".to_vec();
        for key in keys {
            body.extend_from_slice(&text(key));
        }
        body.push(b'e');
        pickle(&body)
    }

    fn stream(object: &[u8], key_list: &[&str], storages: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = [MAGIC, VERSION, &sys_info(true), object, &keys(key_list)].concat();
        for (count, bytes) in storages {
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// {"a": 2x3 float32 on "1", "t": its transpose, "b": int64 [2] on "2"}.
    fn good() -> Vec<u8> {
        let object = pickle(&dict(&[
            (
                "a",
                tensor(pid("FloatStorage", "1", 6, None), 0, &[2, 3], &[3, 1]),
            ),
            (
                "t",
                tensor(pid("FloatStorage", "1", 6, None), 0, &[3, 2], &[1, 3]),
            ),
            ("b", tensor(pid("LongStorage", "2", 2, None), 0, &[2], &[1])),
        ]));
        let longs: Vec<u8> = [7i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        stream(
            &object,
            &["1", "2"],
            &[(6, floats(&[0., 1., 2., 3., 4., 5.])), (2, longs)],
        )
    }

    fn open(bytes: Vec<u8>) -> Result<LegacyFile, LegacyError> {
        LegacyFile::from_bytes(bytes)
    }

    #[test]
    fn a_hand_made_stream_reads() {
        let file = open(good()).unwrap();
        let roles: Vec<_> = file.pickles().iter().map(|p| p.role).collect();
        assert_eq!(
            roles,
            [
                PickleRole::Magic,
                PickleRole::ProtocolVersion,
                PickleRole::SysInfo,
                PickleRole::Object,
                PickleRole::StorageKeys
            ]
        );
        assert_eq!(file.pickles()[0].range, 0..15);
        assert_eq!(file.pickles()[1].range, 15..21);
        assert_eq!(file.sys_info().little_endian, Some(true));
        assert_eq!(file.sys_info().protocol_version, Some(1001));
        assert_eq!(
            file.sys_info().type_sizes,
            [("short".into(), 2), ("int".into(), 4), ("long".into(), 4)]
        );
        let keys: Vec<_> = file.storages().iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["1", "2"]);
        let first = &file.storages()[0];
        assert_eq!(first.dtype, DType::Float32);
        assert_eq!(first.data.start, first.header + 8);
        assert_eq!(first.data.end - first.data.start, 24);
        assert_eq!(file.storages()[1].header, first.data.end);
        assert!(file.trailing().is_empty());
        let tensors = file.tensors().unwrap();
        let paths: Vec<_> = tensors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["a", "t", "b"]);
        assert_eq!(
            &tensors[1].1.contiguous_bytes()[..],
            floats(&[0., 3., 1., 4., 2., 5.])
        );
        assert_eq!(tensors[2].1.dtype(), DType::Int64);
        assert!(looks_legacy(&good()));
    }

    #[test]
    fn trailing_bytes_are_reported_not_read() {
        let mut bytes = good();
        let len = bytes.len() as u64;
        bytes.extend_from_slice(b"hidden");
        let file = open(bytes).unwrap();
        assert_eq!(file.trailing(), len..len + 6);
    }

    #[test]
    fn truncation_anywhere_is_a_typed_error() {
        let bytes = good();
        let file = open(bytes.clone()).unwrap();
        let spans = file.pickles().to_vec();
        let storages = file.storages().to_vec();
        // Inside every pickle, then inside each count and each storage's data.
        let mut cuts: Vec<(u64, &str)> = spans
            .iter()
            .map(|span| ((span.range.start + span.range.end) / 2, "pickle"))
            .collect();
        cuts.push((spans[1].range.start, "pickle"));
        for storage in &storages {
            cuts.push((storage.header + 3, "count"));
            cuts.push((storage.data.start + 5, "data"));
        }
        cuts.push((0, "pickle"));
        for (cut, what) in cuts {
            let error = open(bytes[..cut as usize].to_vec()).unwrap_err();
            let ok = match (what, &error) {
                ("pickle", LegacyError::Pickle { source, .. }) => matches!(
                    source.kind(),
                    DecodeErrorKind::MissingStop | DecodeErrorKind::Truncated { .. }
                ),
                ("count", LegacyError::Truncated { needed: 8, .. }) => true,
                ("data", LegacyError::Truncated { what, .. }) => what.contains("data"),
                _ => false,
            };
            assert!(ok, "cut at {cut} ({what}): {error:?}");
            // Messages name the byte.
            assert!(error.to_string().starts_with("byte "), "{error}");
        }
    }

    #[test]
    fn a_storage_count_past_the_end_of_the_file() {
        let object = pickle(&dict(&[(
            "a",
            tensor(pid("FloatStorage", "1", 1 << 40, None), 0, &[2], &[1]),
        )]));
        let bytes = stream(&object, &["1"], &[(1 << 40, floats(&[1.0, 2.0]))]);
        let header = (bytes.len() - 16) as u64;
        match open(bytes).unwrap_err() {
            LegacyError::Truncated {
                offset,
                needed,
                available,
                ..
            } => {
                assert_eq!(offset, header + 8);
                assert_eq!(needed, 4 << 40);
                assert_eq!(available, 8);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_count_that_overflows_or_disagrees_with_the_pickle() {
        let object = pickle(&dict(&[(
            "a",
            tensor(pid("DoubleStorage", "1", 2, None), 0, &[2], &[1]),
        )]));
        let error = open(stream(&object, &["1"], &[(u64::MAX / 4, vec![0; 16])])).unwrap_err();
        assert!(
            matches!(
                error,
                LegacyError::SizeOverflow {
                    element_size: 8,
                    ..
                }
            ),
            "{error:?}"
        );
        let error = open(stream(&object, &["1"], &[(3, vec![0; 24])])).unwrap_err();
        assert!(
            matches!(
                error,
                LegacyError::StorageSize {
                    count: 3,
                    numel: Some(2),
                    ..
                }
            ),
            "{error:?}"
        );
        let error = open(stream(&object, &["1"], &[(u64::MAX, vec![])])).unwrap_err();
        assert!(
            matches!(error, LegacyError::SizeOverflow { .. }),
            "{error:?}"
        );
        let object = pickle(&dict(&[(
            "a",
            tensor(pid("ByteStorage", "1", 2, None), 0, &[2], &[1]),
        )]));
        let error = open(stream(&object, &["1"], &[(u64::MAX, vec![])])).unwrap_err();
        assert!(
            matches!(error, LegacyError::StorageSize { count: -1, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn wrong_magic_version_or_byte_order() {
        let bytes = good();
        let mut wrong = bytes.clone();
        wrong[4] ^= 1;
        let error = open(wrong.clone()).unwrap_err();
        assert!(matches!(error, LegacyError::BadMagic { .. }), "{error:?}");
        assert!(!looks_legacy(&wrong));
        assert!(matches!(
            open(b"PK\x03\x04".to_vec()).unwrap_err(),
            LegacyError::Pickle {
                role: PickleRole::Magic,
                offset: 0,
                ..
            }
        ));
        assert!(matches!(
            open(Vec::new()).unwrap_err(),
            LegacyError::Pickle { .. }
        ));
        let mut version = bytes.clone();
        version[18] = 0xea; // 1002
        match open(version).unwrap_err() {
            LegacyError::ProtocolVersion { offset, found } => {
                assert_eq!((offset, found.as_str()), (15, "1002"));
            }
            other => panic!("{other:?}"),
        }
        let big = [MAGIC, VERSION, &sys_info(false)].concat();
        assert!(matches!(
            open(big).unwrap_err(),
            LegacyError::BigEndian { offset: 21 }
        ));
    }

    #[test]
    fn magic_and_version_at_every_protocol() {
        // pickle.dumps(MAGIC_NUMBER / 1001, protocol=0, 1, 4)
        let heads: [&[u8]; 3] = [
            b"L119547037146038801333356L\n.I1001\n.",
            b"L119547037146038801333356L\n.M\xe9\x03.",
            b"\x80\x04\x95\r\x00\x00\x00\x00\x00\x00\x00\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00M\xe9\x03.",
        ];
        let rest = &good()[21..];
        for head in heads {
            assert!(looks_legacy(head));
            let file = open([head, rest].concat()).unwrap();
            assert_eq!(file.tensors().unwrap().len(), 3);
        }
    }

    #[test]
    fn keys_missing_unknown_or_twice() {
        let object = pickle(&dict(&[
            (
                "a",
                tensor(pid("FloatStorage", "1", 1, None), 0, &[1], &[1]),
            ),
            (
                "b",
                tensor(pid("FloatStorage", "2", 1, None), 0, &[1], &[1]),
            ),
        ]));
        let one = (1, floats(&[1.0]));
        let error = open(stream(&object, &["1"], std::slice::from_ref(&one))).unwrap_err();
        match &error {
            LegacyError::MissingStorage { key, offset } => {
                assert_eq!(key, "2");
                assert!(*offset > 45, "{offset}");
            }
            other => panic!("{other:?}"),
        }
        let error = open(stream(
            &object,
            &["1", "2", "3"],
            &[one.clone(), one.clone(), one.clone()],
        ))
        .unwrap_err();
        assert!(
            matches!(&error, LegacyError::UnknownStorage { key, .. } if key == "3"),
            "{error:?}"
        );
        let error = open(stream(
            &object,
            &["1", "1", "2"],
            &[one.clone(), one.clone(), one],
        ))
        .unwrap_err();
        assert!(
            matches!(&error, LegacyError::DuplicateStorage { key, .. } if key == "1"),
            "{error:?}"
        );
        let not_strings = [
            MAGIC,
            VERSION,
            &sys_info(true),
            &object,
            &pickle(&ints(&[1, 2])),
        ]
        .concat();
        assert!(matches!(
            open(not_strings).unwrap_err(),
            LegacyError::StorageKeys { .. }
        ));
    }

    #[test]
    fn persistent_ids_torch_load_refuses() {
        let one = || vec![(1, floats(&[1.0]))];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            // Five fields: the zip layout, not the legacy one.
            (
                {
                    let mut pid = tuple(&[
                        text("storage"),
                        global("torch", "FloatStorage"),
                        text("1"),
                        text("cpu"),
                        int(1),
                    ]);
                    pid.push(b'Q');
                    tensor(pid, 0, &[1], &[1])
                },
                "fields",
            ),
            (
                [tuple(&[text("reduce_package"), int(1)]), b"Q".to_vec()].concat(),
                "Unknown saved id type",
            ),
            (
                tensor(pid("UntypedStorage", "1", 4, None), 0, &[4], &[1]),
                "UntypedStorage",
            ),
            (
                tensor(pid("QInt8Storage", "1", 1, None), 0, &[1], &[1]),
                "QInt8Storage",
            ),
            (
                tuple(&[
                    tensor(pid("FloatStorage", "1", 1, None), 0, &[1], &[1]),
                    tensor(pid("LongStorage", "1", 1, None), 0, &[1], &[1]),
                ]),
                "declared as",
            ),
            (b"K\x05Q".to_vec(), "not a tuple"),
        ];
        for (object, message) in cases {
            let error = open(stream(&pickle(&object), &["1"], &one())).unwrap_err();
            let text = format!("{error} {:?}", std::error::Error::source(&error));
            assert!(text.contains(message), "{message}: {text}");
            assert!(text.starts_with("byte "), "{text}");
        }
        // A persistent id in a pickle read without persistent_load.
        let object = pickle(b"N");
        let keys_with_pid = pickle(&[b"](".as_slice(), &text("1"), b"Qe"].concat());
        let bytes = [MAGIC, VERSION, &sys_info(true), &object, &keys_with_pid].concat();
        assert!(matches!(
            open(bytes).unwrap_err(),
            LegacyError::UnexpectedPersistentId {
                role: PickleRole::StorageKeys,
                ..
            }
        ));
    }

    #[test]
    fn storage_views_are_slices_of_their_root() {
        // Root "1" of 6 floats; view "v" = elements 2..5; a tensor of 2 at
        // offset 1 in the view sees root elements 3 and 4.
        let object = pickle(&dict(&[
            (
                "v",
                tensor(
                    pid("FloatStorage", "1", 6, Some(("v", 2, 3))),
                    1,
                    &[2],
                    &[1],
                ),
            ),
            (
                "root",
                tensor(pid("FloatStorage", "1", 6, None), 0, &[6], &[1]),
            ),
        ]));
        let data = (6, floats(&[0., 1., 2., 3., 4., 5.]));
        let file = open(stream(&object, &["1"], std::slice::from_ref(&data))).unwrap();
        let tensors = file.tensors().unwrap();
        let view = &tensors[0].1;
        assert_eq!(view.storage_offset(), 1);
        assert_eq!(view.storage_bytes().len(), 12);
        assert_eq!(&view.contiguous_bytes()[..], floats(&[3., 4.]));
        assert_eq!(tensors[1].1.storage_bytes().len(), 24);

        // A tensor reaching past its view, a view past its root, a view
        // key that is also a root key, a view declared twice differently.
        let bad: Vec<(Vec<u8>, bool)> = vec![
            (
                tensor(
                    pid("FloatStorage", "1", 6, Some(("v", 2, 3))),
                    2,
                    &[2],
                    &[1],
                ),
                true,
            ),
            (
                tensor(
                    pid("FloatStorage", "1", 6, Some(("v", 4, 3))),
                    0,
                    &[1],
                    &[1],
                ),
                true,
            ),
            (
                tensor(
                    pid("FloatStorage", "1", 6, Some(("1", 0, 3))),
                    0,
                    &[1],
                    &[1],
                ),
                false,
            ),
            (
                tuple(&[
                    tensor(
                        pid("FloatStorage", "1", 6, Some(("v", 0, 3))),
                        0,
                        &[1],
                        &[1],
                    ),
                    tensor(
                        pid("FloatStorage", "1", 6, Some(("v", 1, 3))),
                        0,
                        &[1],
                        &[1],
                    ),
                ]),
                false,
            ),
        ];
        for (object, at_tensors) in bad {
            let result = open(stream(
                &pickle(&object),
                &["1"],
                std::slice::from_ref(&data),
            ));
            let error = if at_tensors {
                result.unwrap().tensors().unwrap_err()
            } else {
                result.unwrap_err()
            };
            assert!(
                matches!(
                    error,
                    LegacyError::Tensor { .. } | LegacyError::PersistentId { .. }
                ),
                "{error:?}"
            );
        }
    }

    #[test]
    fn module_classes_become_globals() {
        // An object whose class is a ('module', class, file, source)
        // persistent id: NEWOBJ with the id as its class.
        let class = [
            tuple(&[
                text("module"),
                global("torch.nn.modules.linear", "Identity"),
                b"N".to_vec(),
                b"N".to_vec(),
            ]),
            b"Q".to_vec(),
        ]
        .concat();
        let object = pickle(&[class, b")\x81".to_vec()].concat());
        let file = open(stream(&object, &[], &[])).unwrap();
        let graph = file.graph();
        let Value::Object { class, .. } = graph.get(graph.root()) else {
            panic!("{:?}", graph.get(graph.root()))
        };
        assert!(matches!(
            graph.get(*class),
            Value::Global { module, name } if module == "torch.nn.modules.linear" && name == "Identity"
        ));
    }

    /// 3,000 seeded damages of `bytes` (a byte set, sometimes a cut):
    /// each opens or fails, and an opened file's tensors read or fail.
    fn damage_never_panics(bytes: &[u8], seed: u64) {
        let mut state = seed;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut damaged = bytes.to_vec();
            let at = (state % damaged.len() as u64) as usize;
            damaged[at] = (state >> 32) as u8;
            if state & 1 == 0 {
                damaged.truncate((state >> 40) as usize % bytes.len());
            }
            if let Ok(file) = open(damaged) {
                let _ = file.tensors();
            }
        }
    }

    #[test]
    fn random_damage_never_panics() {
        damage_never_panics(&good(), 0x9e37_79b9_7f4a_7c15);
    }

    // The tar form.

    /// A ustar header block for `name`.
    fn tar_header(name: &str, kind: u8, size: usize) -> Vec<u8> {
        let mut block = vec![0u8; 512];
        block[..name.len()].copy_from_slice(name.as_bytes());
        block[100..107].copy_from_slice(b"0000644");
        block[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        block[136..147].copy_from_slice(b"00000000000");
        block[156] = kind;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        block
    }

    fn tar_member(name: &str, kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = tar_header(name, kind, data.len());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn tar(members: &[Vec<u8>]) -> Vec<u8> {
        let mut out = members.concat();
        out.extend_from_slice(&[0; 1024]);
        out
    }

    /// `storages`: root 100 (6 float32 0..6) and view 200 = its elements
    /// 2..5.
    fn tar_storages() -> Vec<u8> {
        let mut out = pickle(&int(1));
        out.extend_from_slice(&pickle(&tuple(&[
            int(100),
            text("cpu"),
            global("torch", "FloatStorage"),
        ])));
        out.extend_from_slice(&6u64.to_le_bytes());
        out.extend_from_slice(&floats(&[0., 1., 2., 3., 4., 5.]));
        out.extend_from_slice(&pickle(
            &[b"](".to_vec(), ints(&[200, 100, 2, 3]), b"e".to_vec()].concat(),
        ));
        out
    }

    /// `tensors`: 1 = [2, 3] over root 100, 2 = [2] at 1 in view 200.
    fn tar_tensors(ndim_override: Option<i32>) -> Vec<u8> {
        let mut out = pickle(&int(2));
        for (key, storage, sizes, strides, offset) in [
            (1i64, 100i64, vec![2i64, 3], vec![3i64, 1], 0i64),
            (2, 200, vec![2], vec![1], 1),
        ] {
            out.extend_from_slice(&pickle(&tuple(&[
                int(key),
                int(storage),
                global("torch", "FloatTensor"),
            ])));
            let ndim = ndim_override.unwrap_or(sizes.len() as i32);
            out.extend_from_slice(&ndim.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            for value in sizes.iter().chain(&strides).chain([&offset]) {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out
    }

    fn tar_object(keys: [&str; 2]) -> Vec<u8> {
        let pid = |key: &str| [text(key), b"Q".to_vec()].concat();
        pickle(&dict(&[("a", pid(keys[0])), ("v", pid(keys[1]))]))
    }

    fn tar_form(storages: Vec<u8>, tensors: Vec<u8>, object: Vec<u8>) -> Vec<u8> {
        tar(&[
            tar_member("sys_info", b'0', &sys_info(true)),
            tar_member("pickle", b'0', &object),
            tar_member("tensors", b'0', &tensors),
            tar_member("storages", b'0', &storages),
        ])
    }

    fn good_tar() -> Vec<u8> {
        tar_form(tar_storages(), tar_tensors(None), tar_object(["1", "2"]))
    }

    #[test]
    fn a_hand_made_tar_reads() {
        let bytes = good_tar();
        assert!(looks_legacy_tar(&bytes));
        assert!(!looks_legacy(&bytes));
        let file = open(bytes).unwrap();
        assert_eq!(file.form(), LegacyForm::Tar);
        let names: Vec<_> = file.tar_members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["sys_info", "pickle", "tensors", "storages"]);
        let roles: Vec<_> = file.pickles().iter().map(|p| p.role).collect();
        assert_eq!(
            roles,
            [
                PickleRole::SysInfo,
                PickleRole::Object,
                PickleRole::TensorCount,
                PickleRole::TensorHeader,
                PickleRole::TensorHeader,
                PickleRole::StorageCount,
                PickleRole::StorageHeader,
                PickleRole::StorageViews,
            ]
        );
        assert_eq!(file.storages().len(), 1);
        assert_eq!(file.storages()[0].key, "100");
        assert!(file.trailing().is_empty());
        let tensors = file.tensors().unwrap();
        assert_eq!(tensors.len(), 2);
        assert_eq!(tensors[0].0, "a");
        assert_eq!(tensors[0].1.shape(), [2, 3]);
        assert_eq!(
            &tensors[1].1.contiguous_bytes()[..],
            floats(&[3., 4.]),
            "the view starts at element 2, the tensor at 1 in it"
        );
        assert_eq!(tensors[1].1.storage_offset(), 1);
    }

    #[test]
    fn tar_members_torch_load_cannot_use() {
        let storages = tar_storages();
        let tensors = tar_tensors(None);
        let object = tar_object(["1", "2"]);
        let missing = tar(&[
            tar_member("pickle", b'0', &object),
            tar_member("storages", b'0', &storages),
        ]);
        assert!(!looks_legacy_tar(&missing));
        assert!(matches!(
            open(missing).unwrap_err(),
            LegacyError::TarMember { name, .. } if name == "tensors"
        ));
        // A symbolic link named `storages` (tarfile would extract the link
        // and torch.load read whatever it points to).
        let link = tar(&[
            tar_member("pickle", b'0', &object),
            tar_member("tensors", b'0', &tensors),
            tar_member("storages", b'2', b""),
        ]);
        let error = open(link).unwrap_err();
        assert!(error.to_string().contains("not a file"), "{error}");
        // The last member of a name wins, as in tarfile.getmember.
        let twice = tar(&[
            tar_member("pickle", b'0', &tar_object(["9", "9"])),
            tar_member("tensors", b'0', &tensors),
            tar_member("storages", b'0', &storages),
            tar_member("pickle", b'0', &object),
        ]);
        assert_eq!(open(twice).unwrap().tensors().unwrap().len(), 2);
        // A pax header renaming a member.
        let pax = b"17 path=storages\n";
        let renamed = tar(&[
            tar_member("pickle", b'0', &object),
            tar_member("tensors", b'0', &tensors),
            tar_member("pax", b'x', pax),
            tar_member("junk", b'0', &storages),
        ]);
        let file = open(renamed).unwrap();
        assert_eq!(file.tar_members()[2].name, "storages");
        assert_eq!(file.tensors().unwrap().len(), 2);
    }

    #[test]
    fn damaged_tars_are_typed_errors() {
        let bytes = good_tar();
        // Cut inside the storages member's data: tarfile's "unexpected end
        // of data" (and the file is no stream either).
        let storages_data = open(bytes.clone()).unwrap().tar_members()[3].data.clone();
        let error = open(bytes[..storages_data.start as usize + 30].to_vec()).unwrap_err();
        assert!(matches!(error, LegacyError::Tar { .. }), "{error:?}");
        // Tensor metadata: a negative ndim, then too few bytes.
        let negative = tar_form(
            tar_storages(),
            tar_tensors(Some(-1)),
            tar_object(["1", "2"]),
        );
        assert!(matches!(
            open(negative).unwrap_err(),
            LegacyError::TarForm { .. }
        ));
        let huge = tar_form(
            tar_storages(),
            tar_tensors(Some(1 << 20)),
            tar_object(["1", "2"]),
        );
        assert!(matches!(
            open(huge).unwrap_err(),
            LegacyError::Truncated { .. }
        ));
        // A persistent id naming nothing, a storage count past the member.
        let nothing = tar_form(tar_storages(), tar_tensors(None), tar_object(["1", "3"]));
        assert!(matches!(
            open(nothing).unwrap_err(),
            LegacyError::PersistentId { .. }
        ));
        let mut storages = tar_storages();
        let count_at = storages.len()
            - 24
            - 8
            - pickle(&[b"](".to_vec(), ints(&[200, 100, 2, 3]), b"e".to_vec()].concat()).len();
        storages[count_at..count_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let error = open(tar_form(
            storages,
            tar_tensors(None),
            tar_object(["1", "2"]),
        ))
        .unwrap_err();
        assert!(matches!(error, LegacyError::Truncated { .. }), "{error:?}");
        // A bad header after a pax header: tarfile's ReadError.
        let mut bad = tar(&[tar_member("pax", b'x', b"11 size=1\n")]);
        bad.truncate(1024);
        bad[600] = 1;
        assert!(matches!(open(bad).unwrap_err(), LegacyError::Tar { .. }));
        // A zero block first: an empty tar, whose members are missing.
        assert!(matches!(
            open(vec![0; 1024]).unwrap_err(),
            LegacyError::TarMember { .. }
        ));
    }

    #[test]
    fn random_tar_damage_never_panics() {
        damage_never_panics(&good_tar(), 0x2545_f491_4f6c_dd1d);
    }
}
