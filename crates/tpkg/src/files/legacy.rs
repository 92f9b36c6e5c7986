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
use std::path::Path;

use memmap2::Mmap;
use num_bigint::BigInt;
use tpkg_pickle::{DecodeOptions, TorchData, Value, ValueGraph, decode_prefix};
use tpkg_tensors::{DType, StorageIds, TensorView, find_tensors_with};

mod error;
mod stream;
mod tar;
#[cfg(test)]
mod tests;

pub use error::LegacyError;
use stream::Parser;
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

/// The file's bytes: a read-only memory map, or memory the caller gave.
enum Backing {
    /// The map, and the file it maps (for kernel copies out of it).
    Mapped(Mmap, File),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(map, _) => map,
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
            Backing::Mapped(unsafe { Mmap::map(&file) }.map_err(io)?, file)
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
        if let (Backing::Mapped(map, _), Some(index)) = (&self.backing, self.by_key.get(key)) {
            let data = &self.storages[*index].data;
            tpkg_archive::release_pages(map, data.start, data.end - data.start);
        }
    }

    /// Appends bytes `offset..offset + len` of storage `key` to `out` (at
    /// its position): for a mapped file on Linux copied by the kernel
    /// (`copy_file_range`, as `cp` does), never through this process's
    /// memory; otherwise written from the file's bytes. `None` when there
    /// is no such storage or the range is outside it.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = "../../tests/data/golden/torch-1.10.2/torch_save/state_dict_legacy.pt";
    /// let file = tpkg::legacy::LegacyFile::open(path)?;
    /// let storage = &file.storages()[0];
    /// let len = storage.data.end - storage.data.start;
    /// let mut out = tempfile::tempfile()?;
    /// file.copy_storage_to(&storage.key, 4, len - 4, &out).unwrap()?;
    /// let mut copied = Vec::new();
    /// std::io::Seek::rewind(&mut out)?;
    /// std::io::Read::read_to_end(&mut out, &mut copied)?;
    /// assert_eq!(copied, file.storage_bytes(&storage.key).unwrap()[4..]);
    /// assert!(file.copy_storage_to(&storage.key, 4, len, &out).is_none());
    /// # Ok(()) }
    /// ```
    pub fn copy_storage_to(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        out: &File,
    ) -> Option<std::io::Result<()>> {
        let data = &self.storages[*self.by_key.get(key)?].data;
        let start = data.start.checked_add(offset)?;
        let end = start.checked_add(len).filter(|&end| end <= data.end)?;
        let mut copied = 0;
        #[cfg(target_os = "linux")]
        if let Backing::Mapped(_, file) = &self.backing {
            match tpkg_archive::kernel_copy(file, start, out, len) {
                Ok(n) => copied = n,
                Err(error) => return Some(Err(error)),
            }
        }
        let rest = self.bytes().get((start + copied) as usize..end as usize)?;
        Some(std::io::Write::write_all(&mut &*out, rest))
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
