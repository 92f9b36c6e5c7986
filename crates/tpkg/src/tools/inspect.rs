//! `inspect`'s summary: what a PyTorch file is and holds, at a glance.
//!
//! Its format, the PyTorch and Python versions it records, each pickle
//! and what it holds (a state dict, a whole module, a checkpoint dict, ...),
//! its tensors by dtype, and for packages how many modules are interned,
//! extern and mocked. Reading never runs anything and never fails: what
//! cannot be read is listed in [`Summary::errors`].
//!
//! ```
//! use tpkg::inspect::{Holds, summarize};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/corpus/torch-2.13.0/tiny_state_dict.pt");
//! let summary = summarize(path.as_ref());
//! assert_eq!(summary.format.name(), "package");
//! assert!(matches!(summary.pickles[0].holds, Holds::StateDict));
//! let modules = summary.modules.unwrap();
//! assert_eq!((modules.interned, modules.extern_, modules.mocked), (1, 3, 0));
//! assert_eq!(summary.tensors.count, 11);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;
use tpkg_archive::{PackageMetadata, PackageReader};
use tpkg_pickle::{Value, ValueGraph, ValueId};

use crate::formats::{FileFormat, PyTorchFile, Sniffed};
use crate::tensors::PackageTensors;

/// Most keys of a checkpoint dict listed.
pub const MAX_KEYS: usize = 20;

/// Longest key shown (non-string keys are shown by their Python repr).
const KEY_REPR_LIMIT: usize = 80;

/// What a file is and holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The format, told from the content.
    pub format: FileFormat,
    /// The PyTorch version that wrote the file, where it says (`.pt2`
    /// models' `torch_version`; other formats do not record it).
    pub pytorch_version: Option<String>,
    /// The writer's Python version (`.data/python_version`, packages).
    pub python_version: Option<String>,
    /// The archive's format version (`.data/version` or `version`).
    pub format_version: Option<u64>,
    /// `little` or `big` (`byteorder`, PyTorch 2.1 on).
    pub byteorder: Option<String>,
    /// The pickles a load reads, in record order, and what each holds.
    pub pickles: Vec<PickleSummary>,
    /// The tensors of those pickles (of a `.pt2` archive's weights and
    /// constants).
    pub tensors: TensorTotals,
    /// A package's modules; `None` for other formats.
    pub modules: Option<ModuleCounts>,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// One pickle and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickleSummary {
    /// Its record (`data.pkl`, `model/model.pkl`); `object` for a legacy
    /// file's object pickle, `pickle N` (from 0) for a pickle file's.
    pub name: String,
    /// What it holds.
    pub holds: Holds,
    /// Its tensors (`None` when they could not be read).
    pub tensors: Option<usize>,
}

/// What a pickle's object is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Holds {
    /// A dict (or `OrderedDict`) whose values are all tensors.
    StateDict,
    /// A pickled `nn.Module` (whole model) of this class.
    Module {
        /// `module.qualname`.
        class: String,
    },
    /// A TorchScript module of this class (`__torch__.Net`).
    ScriptModule {
        /// The class.
        class: String,
    },
    /// A dict holding other things than tensors (a training checkpoint:
    /// `model`, `optimizer`, `epoch`, ...).
    Checkpoint {
        /// How many keys.
        key_count: usize,
        /// The first [`MAX_KEYS`], in order.
        keys: Vec<String>,
    },
    /// One tensor.
    Tensor,
    /// Anything else, by its Python type.
    Other {
        /// The type's name (`list`, `tuple`, `mymodule.Config`, ...).
        type_name: String,
    },
    /// The pickle does not decode.
    Unreadable,
}

/// Tensors, counted and sized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TensorTotals {
    /// How many.
    pub count: usize,
    /// Their elements' bytes (views of one storage each counted).
    pub bytes: u64,
    /// Distinct storages they view.
    pub storages: usize,
    /// Those storages' bytes.
    pub storage_bytes: u64,
    /// Per dtype (PyTorch's names: `float32`, ...).
    pub dtypes: BTreeMap<String, DtypeTotals>,
}

/// Tensors of one dtype.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DtypeTotals {
    /// How many.
    pub count: usize,
    /// Their elements' bytes.
    pub bytes: u64,
}

/// A package's modules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ModuleCounts {
    /// Modules with source in the package (mock stubs not counted).
    pub interned: usize,
    /// Modules a load imports from the host (`.data/extern_modules`).
    #[serde(rename = "extern")]
    pub extern_: usize,
    /// Modules replaced by `mock` stubs.
    pub mocked: usize,
}

impl TensorTotals {
    /// Adds `tensors`, each storage's bytes once (by key, over every call).
    fn add(&mut self, tensors: &PackageTensors<'_>, seen: &mut HashSet<String>) {
        for index in 0..tensors.len() {
            let Ok(view) = tensors.view(index) else {
                continue;
            };
            let element = view.dtype().element_size() as u64;
            let bytes = view.numel().saturating_mul(element);
            self.count += 1;
            self.bytes = self.bytes.saturating_add(bytes);
            let dtype = self
                .dtypes
                .entry(view.dtype().name().to_owned())
                .or_default();
            dtype.count += 1;
            dtype.bytes = dtype.bytes.saturating_add(bytes);
            if seen.insert(view.spec().storage.key.clone()) {
                self.storages += 1;
                self.storage_bytes = self
                    .storage_bytes
                    .saturating_add(view.storage_bytes().len() as u64);
            }
        }
    }
}

/// The class a value instantiates or the function that makes it, as
/// `module.name`.
fn global_name(graph: &ValueGraph, id: ValueId) -> Option<String> {
    match graph.get(id) {
        Value::Global { module, name } => Some(format!("{module}.{name}")),
        _ => None,
    }
}

/// A value's type, as Python would name it (`dict`,
/// `collections.OrderedDict`, a module's class, `torch.Tensor`, ...).
pub fn type_name(graph: &ValueGraph, id: ValueId) -> String {
    if crate::tensors::is_tensor(graph, id) {
        return "torch.Tensor".to_owned();
    }
    if let Some((class, _)) = tpkg_tensors::module::module_state(graph, id) {
        return class;
    }
    let name = match graph.get(id) {
        Value::None => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::BigInt(_) => "int",
        Value::Float(_) => "float",
        Value::Complex(..) => "complex",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::ByteArray(_) => "bytearray",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Set(_) => "set",
        Value::FrozenSet(_) => "frozenset",
        Value::OrderedDict { .. } => "collections.OrderedDict",
        Value::TorchSize(_) => "torch.Size",
        Value::TorchDevice(_) => "torch.device",
        Value::TorchDtype(_) => "torch.dtype",
        Value::PersistentId(_) => "persistent id",
        Value::Global { .. } => {
            return format!("global {}", global_name(graph, id).unwrap_or_default());
        }
        Value::Object { class, .. } => {
            return global_name(graph, *class).unwrap_or_else(|| "object".to_owned());
        }
        Value::Reduce { callable, .. } => {
            return global_name(graph, *callable)
                .map_or_else(|| "object".to_owned(), |name| format!("{name}(...)"));
        }
    };
    name.to_owned()
}

/// What the root of `graph` is.
pub fn holds(graph: &ValueGraph) -> Holds {
    let root = graph.root();
    if crate::tensors::is_tensor(graph, root) {
        return Holds::Tensor;
    }
    if let Some((class, _)) = tpkg_tensors::module::module_state(graph, root) {
        return Holds::Module { class };
    }
    match graph.get(root) {
        Value::Dict(items) | Value::OrderedDict { items, .. } => {
            let all_tensors = !items.is_empty()
                && items
                    .iter()
                    .all(|(_, value)| crate::tensors::is_tensor(graph, *value));
            if all_tensors {
                return Holds::StateDict;
            }
            let key_text = |key: ValueId| match graph.get(key) {
                Value::Str(text) => text.to_string_lossy(),
                _ => tpkg_pickle::python_repr_limited(graph, key, KEY_REPR_LIMIT),
            };
            Holds::Checkpoint {
                key_count: items.len(),
                keys: items
                    .iter()
                    .take(MAX_KEYS)
                    .map(|(key, _)| key_text(*key))
                    .collect(),
            }
        }
        _ => {
            let type_name = type_name(graph, root);
            if type_name.starts_with("__torch__.") {
                Holds::ScriptModule { class: type_name }
            } else {
                Holds::Other { type_name }
            }
        }
    }
}

/// The summary of the file at `path`; a file that does not open gives a
/// summary whose `errors` say why.
pub fn summarize(path: &Path) -> Summary {
    match PyTorchFile::open(path) {
        Ok(file) => Summary::of(&file),
        Err(error) => {
            let format = match crate::formats::sniff_path(path) {
                Ok(Sniffed::Pickle) => FileFormat::Pickle,
                Ok(Sniffed::LegacyStream | Sniffed::Tar) => FileFormat::TorchSaveLegacy,
                _ => FileFormat::Package,
            };
            let mut summary = Summary::empty(format);
            summary.errors.push(crate::error_chain(&error));
            summary
        }
    }
}

impl Summary {
    fn empty(format: FileFormat) -> Summary {
        Summary {
            format,
            pytorch_version: None,
            python_version: None,
            format_version: None,
            byteorder: None,
            pickles: Vec::new(),
            tensors: TensorTotals::default(),
            modules: None,
            errors: Vec::new(),
        }
    }

    /// The summary of an opened file.
    pub fn of(file: &PyTorchFile) -> Summary {
        let mut summary = Summary::empty(file.format());
        let mut seen = HashSet::new();
        match file {
            PyTorchFile::Zip { reader, format } => summary.read_zip(reader, *format, &mut seen),
            PyTorchFile::Legacy(legacy) => {
                let tensors = PackageTensors::from_legacy(legacy);
                summary.push_pickle("object", holds(legacy.graph()), tensors, &mut seen);
            }
            PyTorchFile::Pickle(graphs) => {
                for (index, graph) in graphs.iter().enumerate() {
                    let tensors = PackageTensors::from_pickles(std::slice::from_ref(graph));
                    summary.push_pickle(
                        &format!("pickle {index}"),
                        holds(graph),
                        tensors,
                        &mut seen,
                    );
                }
            }
        }
        summary
    }

    fn push_pickle<E: std::error::Error>(
        &mut self,
        name: &str,
        holds: Holds,
        tensors: Result<PackageTensors<'_>, E>,
        seen: &mut HashSet<String>,
    ) {
        let count = match tensors {
            Ok(tensors) => {
                self.tensors.add(&tensors, seen);
                Some(tensors.len())
            }
            Err(error) => {
                self.errors
                    .push(format!("{name}: {}", crate::error_chain(&error)));
                None
            }
        };
        self.pickles.push(PickleSummary {
            name: name.to_owned(),
            holds,
            tensors: count,
        });
    }

    fn read_zip(&mut self, reader: &PackageReader, format: FileFormat, seen: &mut HashSet<String>) {
        let mut externs = 0;
        match PackageMetadata::read(reader) {
            Ok(metadata) => {
                self.python_version = metadata.python_version.map(|v| v.trim().to_owned());
                self.format_version = metadata.version;
                self.byteorder = metadata.byteorder;
                externs = metadata
                    .extern_modules
                    .iter()
                    .flatten()
                    .filter(|m| !m.is_empty())
                    .count();
            }
            Err(error) => self.errors.push(crate::error_chain(&error)),
        }
        let records: Vec<String> = match format {
            FileFormat::Package => reader
                .records()
                .iter()
                .map(|record| record.name.clone())
                .filter(|name| name.ends_with(".pkl") && !name.starts_with(".data/"))
                .collect(),
            FileFormat::TorchSave | FileFormat::TorchScript => vec!["data.pkl".to_owned()],
            _ => Vec::new(),
        };
        for record in records {
            let holds = match crate::files::records::decode_record(reader, &record) {
                Ok(graph) if matches!(graph.get(graph.root()), Value::PersistentId(_)) => {
                    packaged_script_module(reader, &record).unwrap_or_else(|| holds(&graph))
                }
                Ok(graph) => holds(&graph),
                Err(error) => {
                    self.errors
                        .push(format!("{record}: {}", crate::error_chain(&error)));
                    Holds::Unreadable
                }
            };
            let tensors = PackageTensors::load(reader, &record);
            self.push_pickle(&record, holds, tensors, seen);
        }
        match format {
            FileFormat::Pt2 => {
                self.pytorch_version = pt2_torch_version(reader);
                match crate::pt2::pt2_tensors(reader) {
                    Ok(tensors) => self.tensors.add(&tensors, seen),
                    Err(error) => self.errors.push(crate::error_chain(&error)),
                }
            }
            FileFormat::Package => {
                let (interned, mocked) = interned_and_mocked(reader);
                self.modules = Some(ModuleCounts {
                    interned,
                    extern_: externs,
                    mocked,
                });
            }
            _ => {}
        }
    }
}

/// A package's interned modules (mock stubs aside) and mocked ones, as
/// `PackageImporter` tells them.
fn interned_and_mocked(reader: &PackageReader) -> (usize, usize) {
    let (mut interned, mut mocked) = (0, 0);
    for record in reader.records() {
        let Some(module) = crate::files::records::module_of_record(&record.name) else {
            continue;
        };
        if module == "_mock" {
            continue;
        }
        let is_stub = record.size == crate::files::records::MOCK_IMPL.len() as u64
            && reader
                .read(&record.name)
                .is_ok_and(|bytes| bytes.as_ref() == crate::files::records::MOCK_IMPL.as_bytes());
        if is_stub {
            mocked += 1;
        } else {
            interned += 1;
        }
    }
    (interned, mocked)
}

/// A package pickle that is one packaged TorchScript module: that
/// module's class, from its `.data/ts_code/<id>/data.pkl`.
fn packaged_script_module(reader: &PackageReader, record: &str) -> Option<Holds> {
    let ids = crate::torchscript::script_modules(reader, record).ok()?;
    let [id] = ids.as_slice() else {
        return None;
    };
    let graph =
        crate::files::records::decode_record(reader, &format!(".data/ts_code/{id}/data.pkl"))
            .ok()?;
    Some(Holds::ScriptModule {
        class: type_name(&graph, graph.root()),
    })
}

/// The `torch_version` of a `.pt2` archive's first model.
fn pt2_torch_version(reader: &PackageReader) -> Option<String> {
    let record = reader.records().iter().find(|record| {
        record.name.starts_with("models/")
            && record.name.ends_with(".json")
            && record.size <= crate::files::records::MAX_PICKLE_BYTES
    })?;
    let bytes = reader.read(&record.name).ok()?;
    let model: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    model.get("torch_version")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> ValueGraph {
        tpkg_pickle::decode(bytes).unwrap()
    }

    #[test]
    fn a_dict_of_plain_values_is_a_checkpoint_with_its_keys() {
        // pickle.dumps({"epoch": 3, "lr": 0.1}, protocol=2)
        let graph = decode(b"\x80\x02}q\x00(X\x05\x00\x00\x00epochq\x01K\x03X\x02\x00\x00\x00lrq\x02G?\xb9\x99\x99\x99\x99\x99\x9au.");
        assert_eq!(
            holds(&graph),
            Holds::Checkpoint {
                key_count: 2,
                keys: vec!["epoch".into(), "lr".into()]
            }
        );
    }

    #[test]
    fn an_empty_dict_is_no_state_dict_and_a_list_is_other() {
        assert!(matches!(
            holds(&decode(b"\x80\x02}q\x00.")),
            Holds::Checkpoint { key_count: 0, .. }
        ));
        assert_eq!(
            holds(&decode(b"\x80\x02]q\x00.")),
            Holds::Other {
                type_name: "list".into()
            }
        );
    }
}
