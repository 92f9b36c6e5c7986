//! The tar form's members read into the stream form's model: the
//! `storages` member's roots and views, the `tensors` member's tensors,
//! the object pickle's persistent ids resolved through them.

use std::collections::HashMap;
use std::ops::Range;

use tpkg_pickle::{Extra, PyStr, Value, ValueGraph, ValueId, python_repr_limited};
use tpkg_tensors::DType;

use super::{TarMember, python_int, tar_error};
use crate::files::legacy::stream::{Parsed, Parser, read_sys_info};
use crate::files::legacy::{
    LegacyError, LegacyStorage, PickleRole, PickleSpan, REPR_LIMIT, SysInfo,
};

/// The last member named `name` (`TarFile.getmember`), which must be a file.
fn member<'m>(
    members: &'m [TarMember],
    name: &str,
    len: usize,
) -> Result<&'m TarMember, LegacyError> {
    let member = members
        .iter()
        .rev()
        .find(|m| m.name == name)
        .ok_or_else(|| LegacyError::TarMember {
            name: name.to_owned(),
            reason: "is not in the tar (torch.load: KeyError)".to_owned(),
        })?;
    if !member.is_file() {
        return Err(LegacyError::TarMember {
            name: name.to_owned(),
            reason: format!(
                "is not a file (tar type {:?}); torch.load would follow it",
                char::from(member.kind)
            ),
        });
    }
    if member.data.end > len as u64 {
        return Err(tar_error(
            member.data.start as usize,
            format!(
                "member {name:?} ends past the end of the file (tarfile: unexpected end of data)"
            ),
        ));
    }
    Ok(member)
}

/// A storage (or storage view) the `storages` member defines.
#[derive(Debug, Clone)]
struct StorageDef {
    root: String,
    dtype: DType,
    location: String,
    root_numel: u64,
    /// `(view key, offset, numel)` for a view.
    view: Option<(String, u64, u64)>,
}

/// A tensor the `tensors` member defines.
struct TensorDef {
    storage: StorageDef,
    sizes: Vec<u64>,
    strides: Vec<u64>,
    offset: u64,
}

fn malformed(offset: u64, reason: String) -> LegacyError {
    LegacyError::TarForm { offset, reason }
}

/// A key in the `storages` or `tensors` member: an int (`obj._cdata`).
fn int_key(graph: &ValueGraph, id: ValueId, at: u64, what: &str) -> Result<String, LegacyError> {
    match graph.get(id) {
        Value::Int(n) => Ok(n.to_string()),
        Value::BigInt(n) => Ok(n.to_string()),
        _ => Err(malformed(
            at,
            format!(
                "the {what} is {}, not an int",
                python_repr_limited(graph, id, REPR_LIMIT)
            ),
        )),
    }
}

/// The items of a tuple or list (what Python unpacks).
fn items(graph: &ValueGraph, id: ValueId) -> Option<&[ValueId]> {
    match graph.get(id) {
        Value::Tuple(items) | Value::List(items) => Some(items),
        _ => None,
    }
}

/// A count pickle: `range(count)` takes an int (a bool is one; a negative
/// count is an empty range).
fn count(graph: &ValueGraph, at: u64, what: &str) -> Result<u64, LegacyError> {
    match graph.get(graph.root()) {
        Value::Int(n) => Ok(u64::try_from(*n).unwrap_or(0)),
        Value::Bool(b) => Ok(u64::from(*b)),
        _ => Err(malformed(
            at,
            format!(
                "the {what} is {}, not an int",
                python_repr_limited(graph, graph.root(), REPR_LIMIT)
            ),
        )),
    }
}

/// Reads the tar form whose members `members` lists.
pub(in crate::files::legacy) fn parse(
    bytes: &[u8],
    members: Vec<TarMember>,
    listing_end: usize,
) -> Result<Parsed, LegacyError> {
    let mut pickles: Vec<PickleSpan> = Vec::new();

    // storages: the roots, then the views.
    let storages_member = member(&members, "storages", bytes.len())?;
    let mut parser = Parser::region(bytes, region(storages_member));
    let Storages {
        storages,
        by_key,
        mut defs,
    } = read_storages(&mut parser)?;
    read_views(&mut parser, &mut defs)?;
    pickles.append(&mut parser.pickles);

    // tensors.
    let tensors_member = member(&members, "tensors", bytes.len())?;
    let mut parser = Parser::region(bytes, region(tensors_member));
    let tensors = read_tensors(&mut parser, bytes, &defs)?;
    pickles.append(&mut parser.pickles);

    // pickle: the object.
    let pickle_member = member(&members, "pickle", bytes.len())?;
    let mut parser = Parser::region(bytes, region(pickle_member));
    let (mut graph, object_start) = parser.pickle(PickleRole::Object)?;
    pickles.append(&mut parser.pickles);
    resolve(&mut graph, object_start, &defs, &tensors)?;

    // sys_info: never read by torch.load; read here for the byte order.
    let mut sys_info = SysInfo::default();
    let info = members
        .iter()
        .rev()
        .find(|m| m.name == "sys_info" && m.is_file() && m.data.end <= bytes.len() as u64);
    if let Some(info) = info {
        let mut parser = Parser::region(bytes, region(info));
        if let Ok((graph, at)) = parser.pickle(PickleRole::SysInfo) {
            sys_info = read_sys_info(&graph);
            if sys_info.little_endian == Some(false) {
                return Err(LegacyError::BigEndian { offset: at });
            }
            pickles.append(&mut parser.pickles);
        }
    }
    pickles.sort_by_key(|span| span.range.start);

    // What follows the listing, unless it is only the end-of-archive zeros.
    let rest = bytes.get(listing_end..).unwrap_or(&[]);
    let data_end = if rest.iter().all(|&b| b == 0) {
        bytes.len()
    } else {
        listing_end
    };
    Ok(Parsed {
        pickles,
        sys_info,
        graph,
        storages,
        by_key,
        data_end: data_end as u64,
    })
}

/// A member's data, as a range of the file.
fn region(member: &TarMember) -> Range<usize> {
    member.data.start as usize..member.data.end as usize
}

/// The root storages of the `storages` member.
struct Storages {
    storages: Vec<LegacyStorage>,
    by_key: HashMap<String, usize>,
    defs: HashMap<String, StorageDef>,
}

/// Reads the `storages` member's count and root storages (header pickle,
/// element count, elements each).
fn read_storages(parser: &mut Parser<'_>) -> Result<Storages, LegacyError> {
    let (graph, at) = parser.pickle(PickleRole::StorageCount)?;
    let n = count(&graph, at, "storage count")?;
    let mut storages: Vec<LegacyStorage> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut defs: HashMap<String, StorageDef> = HashMap::new();
    for _ in 0..n {
        let (graph, at) = parser.pickle(PickleRole::StorageHeader)?;
        let (key, location, dtype) = storage_header(&graph, at)?;
        if defs.contains_key(&key) {
            return Err(LegacyError::DuplicateStorage { key, offset: at });
        }
        let (header, data) = parser.storage_block(&key, dtype, None)?;
        let numel = (data.end - data.start) / dtype.element_size() as u64;
        defs.insert(
            key.clone(),
            StorageDef {
                root: key.clone(),
                dtype,
                location: location.clone(),
                root_numel: numel,
                view: None,
            },
        );
        by_key.insert(key.clone(), storages.len());
        storages.push(LegacyStorage {
            key,
            dtype,
            numel,
            location,
            header,
            data,
        });
    }
    Ok(Storages {
        storages,
        by_key,
        defs,
    })
}

/// A storage header pickle: `(key, location, storage_type)`.
fn storage_header(graph: &ValueGraph, at: u64) -> Result<(String, String, DType), LegacyError> {
    let Some([key, location, storage_type]) =
        items(graph, graph.root()).and_then(|items| <&[ValueId; 3]>::try_from(items).ok())
    else {
        return Err(malformed(
            at,
            format!(
                "a storage header is {}, not (key, location, storage_type)",
                python_repr_limited(graph, graph.root(), REPR_LIMIT)
            ),
        ));
    };
    let key = int_key(graph, *key, at, "storage key")?;
    let location = match graph.get(*location) {
        Value::Str(text) => text.to_string_lossy(),
        Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => {
            return Err(malformed(
                at,
                "the storage location is not a string".to_owned(),
            ));
        }
    };
    let dtype = match graph.get(*storage_type) {
        Value::Global { module, name } if module == "torch" && name != "UntypedStorage" => {
            DType::from_storage_type(name)
        }
        _ => None,
    }
    .ok_or_else(|| {
        malformed(
            at,
            format!(
                "the storage type {} is not a typed torch storage class",
                python_repr_limited(graph, *storage_type, REPR_LIMIT)
            ),
        )
    })?;
    Ok((key, location, dtype))
}

/// Reads the `storages` member's last pickle, the storage views, into
/// `defs`.
fn read_views(
    parser: &mut Parser<'_>,
    defs: &mut HashMap<String, StorageDef>,
) -> Result<(), LegacyError> {
    let (graph, at) = parser.pickle(PickleRole::StorageViews)?;
    let views = items(&graph, graph.root()).ok_or_else(|| {
        malformed(
            at,
            format!(
                "the storage views are {}, not a list",
                python_repr_limited(&graph, graph.root(), REPR_LIMIT)
            ),
        )
    })?;
    for &view in views {
        let Some([target, root, offset, numel]) =
            items(&graph, view).and_then(|items| <&[ValueId; 4]>::try_from(items).ok())
        else {
            return Err(malformed(
                at,
                "a storage view is not (view_key, root_key, offset, numel)".to_owned(),
            ));
        };
        let target = int_key(&graph, *target, at, "storage view key")?;
        let root = int_key(&graph, *root, at, "storage view root")?;
        let number = |id: ValueId, what: &str| match graph.get(id) {
            Value::Int(n) if *n >= 0 => Ok(*n as u64),
            _ => Err(malformed(
                at,
                format!("the storage view {what} is not a non-negative int"),
            )),
        };
        let (offset, numel) = (number(*offset, "offset")?, number(*numel, "size")?);
        let Some(parent) = defs.get(&root).cloned() else {
            return Err(LegacyError::MissingStorage {
                key: root,
                offset: at,
            });
        };
        // A view of a view is a view of the root, further in.
        let (base, available) = match &parent.view {
            Some((_, base, numel)) => (*base, *numel),
            None => (0, parent.root_numel),
        };
        if u128::from(offset) + u128::from(numel) > u128::from(available) {
            return Err(malformed(
                at,
                format!(
                    "storage view {target:?} takes elements {offset}..{} of storage {root:?}, which has {available}",
                    u128::from(offset) + u128::from(numel)
                ),
            ));
        }
        if defs.contains_key(&target) {
            return Err(malformed(
                at,
                format!("storage view key {target:?} is already a storage"),
            ));
        }
        let def = StorageDef {
            view: Some((target.clone(), base + offset, numel)),
            ..parent
        };
        defs.insert(target, def);
    }
    Ok(())
}

/// Reads the `tensors` member: its count, then per tensor a header pickle
/// and its metadata.
fn read_tensors(
    parser: &mut Parser<'_>,
    bytes: &[u8],
    defs: &HashMap<String, StorageDef>,
) -> Result<HashMap<String, TensorDef>, LegacyError> {
    let (graph, at) = parser.pickle(PickleRole::TensorCount)?;
    let n = count(&graph, at, "tensor count")?;
    let mut tensors: HashMap<String, TensorDef> = HashMap::new();
    for _ in 0..n {
        let (graph, at) = parser.pickle(PickleRole::TensorHeader)?;
        let Some([key, storage, _tensor_type]) =
            items(&graph, graph.root()).and_then(|items| <&[ValueId; 3]>::try_from(items).ok())
        else {
            return Err(malformed(
                at,
                "a tensor header is not (key, storage_key, tensor_type)".to_owned(),
            ));
        };
        let key = int_key(&graph, *key, at, "tensor key")?;
        let storage_key = int_key(&graph, *storage, at, "tensor's storage key")?;
        let Some(storage) = defs.get(&storage_key).cloned() else {
            return Err(LegacyError::MissingStorage {
                key: storage_key,
                offset: at,
            });
        };
        if defs.contains_key(&key) || tensors.contains_key(&key) {
            return Err(malformed(
                at,
                format!("tensor key {key:?} is already taken"),
            ));
        }
        let (meta, end) = (parser.pos, parser.end);
        let truncated = |needed: u64| LegacyError::Truncated {
            what: format!("the metadata of tensor {key:?}"),
            offset: meta as u64,
            needed,
            available: (end - meta) as u64,
        };
        let Some(ndim) = bytes[..end].get(meta..meta + 4) else {
            return Err(truncated(8));
        };
        let ndim = i32::from_le_bytes([ndim[0], ndim[1], ndim[2], ndim[3]]);
        let Ok(ndim) = usize::try_from(ndim) else {
            return Err(malformed(
                meta as u64,
                format!("tensor {key:?} has {ndim} dimensions"),
            ));
        };
        // ndim (4 bytes, 4 ignored), sizes, strides, offset.
        let needed = 8 + 16 * ndim as u64 + 8;
        if needed > (end - meta) as u64 {
            return Err(truncated(needed));
        }
        let mut fields = Vec::with_capacity(2 * ndim + 1);
        for index in 0..=2 * ndim {
            let start = meta + 8 + 8 * index;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[start..start + 8]);
            let value = u64::try_from(i64::from_le_bytes(raw)).map_err(|_| {
                malformed(
                    meta as u64,
                    format!("tensor {key:?} has a negative size, stride or offset"),
                )
            })?;
            fields.push(value);
        }
        parser.pos = meta + needed as usize;
        tensors.insert(
            key,
            TensorDef {
                storage,
                sizes: fields[..ndim].to_vec(),
                strides: fields[ndim..2 * ndim].to_vec(),
                offset: fields[2 * ndim],
            },
        );
    }
    Ok(tensors)
}

/// `persistent_load` of the tar form: a tuple is a module class (its first
/// item), anything else `int(saved_id)`, a tensor or storage key. Tensors
/// become `_rebuild_tensor_v2` calls, storages storage persistent ids, both
/// in the stream form's layout.
fn resolve(
    graph: &mut ValueGraph,
    start: u64,
    storages: &HashMap<String, StorageDef>,
    tensors: &HashMap<String, TensorDef>,
) -> Result<(), LegacyError> {
    let pids: Vec<(ValueId, ValueId)> = graph
        .iter()
        .filter_map(|(id, value)| match value {
            Value::PersistentId(pid) => Some((id, *pid)),
            _ => None,
        })
        .collect();
    let mut rebuild = None;
    for (id, pid) in pids {
        let offset = start + graph.origin(id).unwrap_or(0) as u64;
        let refuse = |reason: String| LegacyError::PersistentId { offset, reason };
        if let Value::Tuple(fields) = graph.get(pid) {
            let Some(&class) = fields.first() else {
                return Err(refuse("an empty tuple".to_owned()));
            };
            let class = graph.get(class).clone();
            *graph.get_mut(id) = class;
            continue;
        }
        let key = match graph.get(pid) {
            Value::Str(text) => text.as_str().and_then(|t| python_int(t, 10)),
            Value::Bytes(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| python_int(t, 10)),
            Value::Int(n) => Some(i128::from(*n)),
            _ => None,
        }
        .map(|n| n.to_string())
        .ok_or_else(|| {
            refuse(format!(
                "{} is not a tensor or storage key (torch.load calls int() on it)",
                python_repr_limited(graph, pid, REPR_LIMIT)
            ))
        })?;
        if let Some(tensor) = tensors.get(&key) {
            let storage = storage_id(graph, &tensor.storage);
            let callable = *rebuild.get_or_insert_with(|| {
                graph.add(Value::Global {
                    module: "torch._utils".to_owned(),
                    name: "_rebuild_tensor_v2".to_owned(),
                })
            });
            let mut args = vec![storage, int(graph, tensor.offset)];
            let sizes = tensor.sizes.iter().map(|&n| int(graph, n)).collect();
            args.push(graph.add(Value::Tuple(sizes)));
            let strides = tensor.strides.iter().map(|&n| int(graph, n)).collect();
            args.push(graph.add(Value::Tuple(strides)));
            args.push(graph.add(Value::Bool(false)));
            args.push(graph.add(Value::OrderedDict {
                items: Vec::new(),
                state: None,
            }));
            let args = graph.add(Value::Tuple(args));
            *graph.get_mut(id) = Value::Reduce {
                callable,
                args,
                extra: Box::new(Extra::default()),
            };
        } else if let Some(storage) = storages.get(&key) {
            let storage = storage_id(graph, storage);
            let tuple = match graph.get(storage) {
                Value::PersistentId(tuple) => *tuple,
                _ => storage,
            };
            *graph.get_mut(id) = Value::PersistentId(tuple);
        } else {
            return Err(refuse(format!(
                "key {key} names no tensor or storage of the file"
            )));
        }
    }
    Ok(())
}

fn int(graph: &mut ValueGraph, n: u64) -> ValueId {
    graph.add(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn text(graph: &mut ValueGraph, text: &str) -> ValueId {
    graph.add(Value::Str(PyStr::from(text)))
}

/// A legacy storage persistent id for `storage`: `('storage',
/// torch.<Type>Storage, root_key, location, root_numel, view_metadata)`.
fn storage_id(graph: &mut ValueGraph, storage: &StorageDef) -> ValueId {
    let mut fields = vec![text(graph, "storage")];
    fields.push(graph.add(Value::Global {
        module: "torch".to_owned(),
        name: storage.dtype.storage_type().to_owned(),
    }));
    fields.push(text(graph, &storage.root));
    fields.push(text(graph, &storage.location));
    fields.push(int(graph, storage.root_numel));
    let view = match &storage.view {
        None => graph.add(Value::None),
        Some((key, offset, numel)) => {
            let items = vec![text(graph, key), int(graph, *offset), int(graph, *numel)];
            graph.add(Value::Tuple(items))
        }
    };
    fields.push(view);
    let tuple = graph.add(Value::Tuple(fields));
    graph.add(Value::PersistentId(tuple))
}
