//! Storages carried inside a pickle rather than beside it.
//!
//! `pickle.dump` of a tensor (no `torch.save` around it) cannot keep the
//! storage out of band, so the storage pickles itself:
//! `TypedStorage.__reduce__` returns `torch.storage._load_from_bytes(b)`,
//! `b` a whole legacy `torch.save` of the storage (`torch.load` reads a zip
//! one there too). tpkg reads `b` as data, with the same readers as the
//! files themselves, and puts a plain storage persistent id in place of the
//! call, so the rest of the tensor code sees what it sees everywhere else.

use std::collections::HashMap;

use tpkg_archive::PackageReader;
use tpkg_pickle::{PyStr, Value, ValueGraph, ValueId};
use tpkg_tensors::{StorageIds, StorageRef, storage_ref};

use crate::legacy::{LegacyFile, looks_legacy, looks_legacy_tar};

/// The function a self-pickled storage names.
const LOAD_FROM_BYTES: (&str, &str) = ("torch.storage", "_load_from_bytes");

/// A storage's nested `torch.save` bytes could not be read.
#[derive(Debug, thiserror::Error)]
#[error("embedded storage {index} (a torch.storage._load_from_bytes call)")]
pub struct EmbeddedStorageError {
    /// Which call, counting from 0 in graph order.
    pub index: usize,
    /// What is wrong with its bytes.
    #[source]
    pub source: BoxedError,
}

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// The `_load_from_bytes(b)` calls of `graph`, as (call node, bytes node).
fn calls(graph: &ValueGraph) -> Vec<(ValueId, ValueId)> {
    graph
        .iter()
        .filter_map(|(id, value)| {
            let Value::Reduce { callable, args, .. } = value else {
                return None;
            };
            let is_load = matches!(graph.get(*callable),
                Value::Global { module, name } if (module.as_str(), name.as_str()) == LOAD_FROM_BYTES);
            match graph.get(*args) {
                Value::Tuple(items) if is_load && items.len() == 1 => Some((id, items[0])),
                _ => None,
            }
        })
        .collect()
}

/// Replaces each `_load_from_bytes(b)` call of `graph` by the storage
/// persistent id (in layout `ids`) of the storage `b` holds, keyed
/// `embedded/<n>` (no real key has a `/`), and returns each key's bytes.
pub(crate) fn unpack(
    graph: &mut ValueGraph,
    ids: StorageIds,
) -> Result<HashMap<String, Vec<u8>>, EmbeddedStorageError> {
    let mut storages = HashMap::new();
    for (index, (call, bytes_node)) in calls(graph).into_iter().enumerate() {
        let error = |source: BoxedError| EmbeddedStorageError { index, source };
        let bytes = pickled_bytes(graph, bytes_node).map_err(error)?;
        let (storage, data) = read_saved_storage(&bytes).map_err(error)?;
        let key = format!("embedded/{index}");
        let mut fields = vec![
            graph.add(Value::Str(PyStr::from("storage"))),
            graph.add(storage_type_global(&storage)),
            graph.add(Value::Str(PyStr::from(key.as_str()))),
            graph.add(Value::Str(PyStr::from(storage.location.as_str()))),
            graph.add(Value::Int(i64::try_from(storage.numel).unwrap_or(i64::MAX))),
        ];
        if ids == StorageIds::Legacy {
            fields.push(graph.add(Value::None));
        }
        let tuple = graph.add(Value::Tuple(fields));
        *graph.get_mut(call) = Value::PersistentId(tuple);
        storages.insert(key, data);
    }
    Ok(storages)
}

/// The bytes a pickled `bytes` value holds: a bytes node (protocol 3+),
/// or protocol 0-2's `_codecs.encode(text, 'latin1')`, whose text maps
/// each character to one byte.
pub(crate) fn pickled_bytes(graph: &ValueGraph, id: ValueId) -> Result<Vec<u8>, BoxedError> {
    match graph.get(id) {
        Value::Bytes(bytes) => Ok(bytes.clone()),
        Value::Reduce { callable, args, .. } => {
            let is_encode = matches!(graph.get(*callable),
                Value::Global { module, name } if module == "_codecs" && name == "encode");
            let (Value::Tuple(items), true) = (graph.get(*args), is_encode) else {
                return Err("its argument is a call, but not _codecs.encode".into());
            };
            let [text, encoding] = items.as_slice() else {
                return Err("_codecs.encode takes 2 arguments here".into());
            };
            if graph.get(*encoding).as_str() != Some("latin1") {
                return Err("_codecs.encode's encoding is not 'latin1'".into());
            }
            let text = graph
                .get(*text)
                .as_str()
                .ok_or("_codecs.encode's text is not a str")?;
            text.chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| "a character past latin-1".into()))
                .collect()
        }
        other => Err(format!("its argument is a {}, not bytes", other.kind()).into()),
    }
}

/// `torch.<Type>Storage` (or `torch.storage.UntypedStorage`) for `storage`.
fn storage_type_global(storage: &StorageRef) -> Value {
    let name = storage.dtype.storage_type();
    let module = if name == "UntypedStorage" {
        "torch.storage"
    } else {
        "torch"
    };
    Value::Global {
        module: module.to_owned(),
        name: name.to_owned(),
    }
}

/// The storage a `torch.save` of one storage holds, and its bytes.
fn read_saved_storage(bytes: &[u8]) -> Result<(StorageRef, Vec<u8>), BoxedError> {
    if looks_legacy(bytes) || looks_legacy_tar(bytes) {
        let file = LegacyFile::from_bytes(bytes.to_vec())?;
        let graph = file.graph();
        let storage = storage_ref(graph, graph.root(), StorageIds::Legacy, "storage")?;
        let data = file
            .storage_bytes(&storage.key)
            .ok_or_else(|| format!("the file has no storage {:?}", storage.key))?;
        let data = match &storage.view {
            None => data,
            Some(view) => {
                let size = storage.dtype.element_size() as u64;
                let start = view.offset.saturating_mul(size);
                let end = start.saturating_add(view.numel.saturating_mul(size));
                usize::try_from(start)
                    .ok()
                    .zip(usize::try_from(end).ok())
                    .and_then(|(start, end)| data.get(start..end))
                    .ok_or("the storage view is outside its storage")?
            }
        };
        return Ok((storage, data.to_vec()));
    }
    let reader = PackageReader::from_bytes(bytes.to_vec())?;
    let pickle = reader.read("data.pkl")?;
    let graph = tpkg_pickle::decode(&pickle)?;
    let storage = storage_ref(&graph, graph.root(), StorageIds::Zip, "storage")?;
    let data = reader.read(&crate::tensors::torch_save_storage_record(&storage.key))?;
    Ok((storage, data.into_owned()))
}
