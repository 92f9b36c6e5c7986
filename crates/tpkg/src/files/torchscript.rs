//! TorchScript modules inside packages, out as standalone `torch.jit.save`
//! files.
//!
//! PyTorch saves a `ScriptModule` into a package as a persistent id,
//! `("reduce_package", id, torch.jit._script.unpackage_script_module,
//! (ts_id,))`, and its serialized form under `.data/ts_code/<ts_id>/`
//! (`data.pkl`, `constants.pkl`), with the TorchScript code shared in
//! `.data/ts_code/code/` and tensor storages in the package's own
//! `.data/<key>.storage` records (shared with eager tensors of the same
//! package). A standalone file holds the same pickles with storage keys
//! `<key>` instead of `<key>.storage`, the code under `code/`, storages
//! under `data/<key>`. Nothing is run: tpkg only moves records and rewrites
//! keys; libtorch (tch's `CModule`, or `torch.jit.load`) runs the result.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let reader = tpkg::archive::PackageReader::open("scripted.pt")?;
//! let ids = tpkg::torchscript::script_modules(&reader, "model/model.pkl")?;
//! tpkg::torchscript::write_standalone(&reader, &ids[0], "model.jit.pt".as_ref())?;
//! // tch::CModule::load("model.jit.pt") or torch.jit.load("model.jit.pt")
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use tpkg_archive::{
    ArchiveError, ArchiveLayout, Durability, PackageReader, PackageWriter, WriteOptions,
};
use tpkg_pickle::{DecodeOptions, PyStr, Symbolic, Value, ValueGraph};

/// Why a script module could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchScriptError {
    /// A record could not be read or the file not written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A pickle does not decode or encode.
    #[error("{record}: {reason}")]
    Pickle {
        /// The record.
        record: String,
        /// Why.
        reason: String,
    },
    /// The package has no serialized script module with this id.
    #[error("{archive}: no TorchScript module {ts_id:?} (no .data/ts_code/{ts_id}/data.pkl)")]
    NoSuchModule {
        /// The package.
        archive: String,
        /// The id.
        ts_id: String,
    },
    /// A storage key is not what PyTorch writes (`<n>.storage`).
    #[error("{record}: storage key {key:?} is not `<key>.storage`")]
    BadStorageKey {
        /// The pickle.
        record: String,
        /// The key.
        key: String,
    },
}

fn decode(reader: &PackageReader, record: &str) -> Result<ValueGraph, TorchScriptError> {
    let size = reader.record(record)?.size;
    if size > crate::files::records::MAX_PICKLE_BYTES {
        return Err(TorchScriptError::Pickle {
            record: record.to_owned(),
            reason: format!(
                "{size} bytes, more than the {}-byte limit for a pickle",
                crate::files::records::MAX_PICKLE_BYTES
            ),
        });
    }
    let bytes = reader.read(record)?;
    tpkg_pickle::decode_with(&bytes, &DecodeOptions::default(), &Symbolic).map_err(|e| {
        TorchScriptError::Pickle {
            record: record.to_owned(),
            reason: e.to_string(),
        }
    })
}

fn str_of(graph: &ValueGraph, id: tpkg_pickle::ValueId) -> Option<&str> {
    match graph.get(id) {
        Value::Str(s) => s.as_str(),
        _ => None,
    }
}

/// The TorchScript ids (`ts_id`) of the script modules pickled in `record`,
/// in order: its `reduce_package` persistent ids calling
/// `torch.jit._script.unpackage_script_module`.
pub fn script_modules(
    reader: &PackageReader,
    record: &str,
) -> Result<Vec<String>, TorchScriptError> {
    let graph = decode(reader, record)?;
    let mut ids = Vec::new();
    for (_, value) in graph.iter() {
        let Value::PersistentId(pid) = value else {
            continue;
        };
        let Value::Tuple(items) = graph.get(*pid) else {
            continue;
        };
        let [kind, _, function, args] = items.as_slice() else {
            continue;
        };
        let is_script = str_of(&graph, *kind) == Some("reduce_package")
            && matches!(graph.get(*function), Value::Global { module, name }
                if module == "torch.jit._script" && name == "unpackage_script_module");
        if !is_script {
            continue;
        }
        if let Value::Tuple(args) = graph.get(*args)
            && let Some(ts_id) = args.first().and_then(|a| str_of(&graph, *a))
            && !ids.iter().any(|i| i == ts_id)
        {
            ids.push(ts_id.to_owned());
        }
    }
    Ok(ids)
}

/// Rewrites the storage keys of a TorchScript pickle from package form
/// (`<key>.storage`) to standalone form (`<key>`); returns the pickle and
/// the keys.
fn standalone_pickle(
    reader: &PackageReader,
    record: &str,
) -> Result<(Vec<u8>, BTreeSet<String>), TorchScriptError> {
    let bytes = reader.read(record)?;
    let mut graph = decode(reader, record)?;
    let mut keys = BTreeSet::new();
    for node in crate::tensors::storage_key_nodes(&graph) {
        let Some(key) = str_of(&graph, node).map(str::to_owned) else {
            continue;
        };
        let Some(bare) = key.strip_suffix(".storage") else {
            return Err(TorchScriptError::BadStorageKey {
                record: record.to_owned(),
                key,
            });
        };
        keys.insert(bare.to_owned());
        *graph.get_mut(node) = Value::Str(PyStr::from(bare));
    }
    let protocol = bytes.get(1).copied().unwrap_or(2).clamp(2, 5);
    let encoded = tpkg_pickle::encode(&graph, protocol).map_err(|e| TorchScriptError::Pickle {
        record: record.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((encoded, keys))
}

/// Writes script module `ts_id` of the package as a standalone TorchScript
/// file at `out` (atomically), which `torch.jit.load` and tch's
/// `CModule::load` open.
pub fn write_standalone(
    reader: &PackageReader,
    ts_id: &str,
    out: &Path,
) -> Result<(), TorchScriptError> {
    write_standalone_with(reader, ts_id, out, Durability::Fsync)
}

/// [`write_standalone`], fsyncing the file before it replaces `out` or not.
pub fn write_standalone_with(
    reader: &PackageReader,
    ts_id: &str,
    out: &Path,
    durability: Durability,
) -> Result<(), TorchScriptError> {
    let base = format!(".data/ts_code/{ts_id}");
    let data_record = format!("{base}/data.pkl");
    if !reader.has_record(&data_record) {
        return Err(TorchScriptError::NoSuchModule {
            archive: reader.label().to_owned(),
            ts_id: ts_id.to_owned(),
        });
    }
    let (data, mut keys) = standalone_pickle(reader, &data_record)?;
    let constants_record = format!("{base}/constants.pkl");
    let constants = if reader.has_record(&constants_record) {
        let (constants, constant_keys) = standalone_pickle(reader, &constants_record)?;
        keys.extend(constant_keys);
        Some(constants)
    } else {
        None
    };
    let mut options = WriteOptions::default().with_layout(ArchiveLayout::TorchScript);
    if durability == Durability::NoFsync {
        options = options.without_fsync();
    }
    let mut writer = PackageWriter::create(out, options)?;
    writer.write_record("data.pkl", &data)?;
    for record in reader.records() {
        if let Some(code) = record.name.strip_prefix(".data/ts_code/code/") {
            writer.write_record(&format!("code/{code}"), &reader.read(&record.name)?)?;
        }
    }
    if let Some(constants) = constants {
        writer.write_record("constants.pkl", &constants)?;
    }
    // Numeric keys in numeric order, as torch.jit.save writes them.
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort_by_key(|k| (k.len(), k.clone()));
    for key in keys {
        let storage = reader.read(&crate::tensors::storage_record(&key))?;
        writer.write_record(&format!("data/{key}"), &storage)?;
    }
    writer.finish()?;
    Ok(())
}
