//! The stream form's parser: pickle by pickle and storage by storage, as
//! `torch.load` reads the file object; also the helpers the tar form
//! shares (one pickle, one storage block, `sys_info`).

use std::collections::HashMap;
use std::ops::Range;

use tpkg_pickle::{
    DecodeErrorKind, DecodeOptions, TorchData, Value, ValueGraph, ValueId, decode_prefix,
    python_repr_limited,
};
use tpkg_tensors::{DType, StorageIds, StorageRef, storage_ref};

use super::{
    LegacyError, LegacyStorage, PROTOCOL_VERSION, PickleRole, PickleSpan, REPR_LIMIT, SysInfo,
    is_magic,
};
use crate::files::records::MAX_PICKLE_BYTES;

/// What a parse produces.
pub(super) struct Parsed {
    pub(super) pickles: Vec<PickleSpan>,
    pub(super) sys_info: SysInfo,
    pub(super) graph: ValueGraph,
    pub(super) storages: Vec<LegacyStorage>,
    pub(super) by_key: HashMap<String, usize>,
    pub(super) data_end: u64,
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
pub(super) struct Parser<'a> {
    bytes: &'a [u8],
    /// Next byte to read (from the start of the file).
    pub(super) pos: usize,
    /// End of the region.
    pub(super) end: usize,
    pub(super) pickles: Vec<PickleSpan>,
}

impl<'a> Parser<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self::region(bytes, 0..bytes.len())
    }

    /// A parser of `bytes[range]` (offsets stay those of the file).
    pub(super) fn region(bytes: &'a [u8], range: Range<usize>) -> Self {
        Parser {
            bytes,
            pos: range.start,
            end: range.end,
            pickles: Vec::new(),
        }
    }

    /// Decodes the next pickle of the region and records its span.
    pub(super) fn pickle(&mut self, role: PickleRole) -> Result<(ValueGraph, u64), LegacyError> {
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

    pub(super) fn parse(mut self) -> Result<Parsed, LegacyError> {
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
    pub(super) fn storage_block(
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

pub(super) fn read_sys_info(graph: &ValueGraph) -> SysInfo {
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
