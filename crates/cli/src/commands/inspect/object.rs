//! `inspect`'s summary of a `torch.save` file (zip or legacy) or a pickle
//! file: its main object's type, keys and tensors.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use tpkg::archive::PackageReader;
use tpkg::pickle::{Value, ValueGraph, ValueId};
use tpkg::tensors::PackageTensors;

use super::{TensorStats, error_text, write_errors};

/// A `torch.save` file's (zip or legacy) or a pickle file's main object.
#[derive(Debug, Default, Serialize)]
pub struct ObjectSummary {
    /// Pickles `torch.load` or `pickle.load` reads: `data.pkl` in a zip;
    /// magic number, protocol, sys_info, object and storage keys in a
    /// legacy stream (more in the tar form); each `pickle.dump` of a pickle
    /// file.
    pub pickles: Option<usize>,
    /// The main object's type (`collections.OrderedDict`, `dict`, a
    /// module's class, ...); a pickle file's first pickle.
    pub object: Option<String>,
    /// Its number of keys (a dict's, or a pickled module's state dict's).
    pub key_count: Option<usize>,
    /// The first 20 of them, in order.
    pub keys: Option<Vec<String>>,
    /// The tensors of the main object (a pickle file's: of every pickle).
    pub tensors: Option<TensorStats>,
    /// Legacy files: the writer's `sys_info`.
    pub sys_info: Option<SysInfo>,
    /// Legacy files: `stream` or `tar` (before PyTorch 0.4).
    pub legacy_form: Option<LegacyForm>,
    /// Legacy files: bytes after the last storage, which `torch.load`
    /// never reads.
    pub trailing_bytes: Option<u64>,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// A legacy `torch.save`'s layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LegacyForm {
    /// One stream of pickles and storages (PyTorch 0.4 on, with
    /// `_use_new_zipfile_serialization=False`).
    Stream,
    /// The tar of PyTorch 0.1 to 0.3.
    Tar,
}

impl std::fmt::Display for LegacyForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LegacyForm::Stream => "stream",
            LegacyForm::Tar => "tar",
        })
    }
}

/// A legacy `torch.save`'s `sys_info`.
#[derive(Debug, Serialize)]
pub struct SysInfo {
    /// `protocol_version` (1001).
    pub protocol_version: Option<i64>,
    /// `little_endian`.
    pub little_endian: Option<bool>,
    /// C type sizes in bytes (`short`, `int`, `long`).
    pub type_sizes: BTreeMap<String, i64>,
}

/// Most keys listed.
const MAX_KEYS: usize = 20;

/// Longest key shown (non-string keys are shown by their Python repr).
const KEY_REPR_LIMIT: usize = 80;

/// The main object's type, as Python would name it.
pub(super) fn type_name(graph: &ValueGraph, id: ValueId) -> String {
    tpkg::inspect::type_name(graph, id)
}

/// The main object's keys: a dict's, or a pickled module's state dict's.
fn keys(graph: &ValueGraph, id: ValueId) -> Option<Vec<String>> {
    let key_text = |key: ValueId| match graph.get(key) {
        Value::Str(text) => text.to_string_lossy(),
        _ => tpkg::pickle::python_repr_limited(graph, key, KEY_REPR_LIMIT),
    };
    match graph.get(id) {
        Value::Dict(items) | Value::OrderedDict { items, .. } => {
            Some(items.iter().map(|(key, _)| key_text(*key)).collect())
        }
        _ => {
            let (_, state) = tpkg::tensors::module::module_state(graph, id)?;
            let entries = tpkg::tensors::module::state_dict(graph, state);
            Some(entries.into_iter().map(|(key, _)| key).collect())
        }
    }
}

impl ObjectSummary {
    /// Type and keys of `graph`'s root.
    fn describe(&mut self, graph: &ValueGraph) {
        self.object = Some(type_name(graph, graph.root()));
        if let Some(mut keys) = keys(graph, graph.root()) {
            self.key_count = Some(keys.len());
            keys.truncate(MAX_KEYS);
            self.keys = Some(keys);
        }
    }

    /// A zip `torch.save` file: `data.pkl`.
    pub(super) fn of_zip(reader: &PackageReader) -> ObjectSummary {
        let mut summary = ObjectSummary {
            pickles: Some(
                reader
                    .records()
                    .iter()
                    .filter(|record| record.name.ends_with(".pkl"))
                    .count(),
            ),
            ..Default::default()
        };
        match PackageTensors::load(reader, "data.pkl") {
            Ok(tensors) => {
                summary.describe(tensors.graph());
                summary.tensors = Some(TensorStats::of(&tensors));
            }
            Err(error) => {
                summary.errors.push(error_text(&error));
                // The object may still decode when its tensors do not read.
                if let Ok(graph) = tpkg::show::decode_record(reader, "data.pkl") {
                    summary.describe(&graph);
                }
            }
        }
        summary
    }

    /// A legacy `torch.save` stream or tar.
    pub(super) fn of_legacy(path: &Path) -> ObjectSummary {
        let mut summary = ObjectSummary::default();
        let file = match tpkg::legacy::LegacyFile::open(path) {
            Ok(file) => file,
            Err(error) => {
                summary.errors.push(error_text(&error));
                return summary;
            }
        };
        summary.pickles = Some(file.pickles().len());
        summary.describe(file.graph());
        let info = file.sys_info();
        summary.sys_info = Some(SysInfo {
            protocol_version: info.protocol_version,
            little_endian: info.little_endian,
            type_sizes: info.type_sizes.iter().cloned().collect(),
        });
        summary.legacy_form = Some(match file.form() {
            tpkg::legacy::LegacyForm::Tar => LegacyForm::Tar,
            _ => LegacyForm::Stream,
        });
        let trailing = file.trailing();
        summary.trailing_bytes = Some(trailing.end - trailing.start);
        match PackageTensors::from_legacy(&file) {
            Ok(tensors) => summary.tensors = Some(TensorStats::of(&tensors)),
            Err(error) => summary.errors.push(error_text(&error)),
        }
        summary
    }

    /// A pickle file: every pickle in it.
    pub(super) fn of_pickles(path: &Path) -> ObjectSummary {
        let mut summary = ObjectSummary::default();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                summary.errors.push(error_text(&error));
                return summary;
            }
        };
        let options = tpkg::pickle::DecodeOptions::default();
        let mut graphs = Vec::new();
        for pickle in tpkg::pickle::decode_stream(&bytes, &options, &tpkg::pickle::TorchData) {
            match pickle {
                Ok((_, graph)) => graphs.push(graph),
                Err((offset, error)) => {
                    summary
                        .errors
                        .push(format!("pickle at byte {offset}: {}", error_text(&error)));
                    break;
                }
            }
        }
        drop(bytes);
        summary.pickles = Some(graphs.len());
        if let Some(first) = graphs.first() {
            summary.describe(first);
        }
        if summary.errors.is_empty() {
            match PackageTensors::from_pickles(&graphs) {
                Ok(tensors) => summary.tensors = Some(TensorStats::of(&tensors)),
                Err(error) => summary.errors.push(error_text(&error)),
            }
        }
        summary
    }

    /// The details the summary block does not show (`show_keys`: the
    /// object's keys, unless the summary lists them).
    pub(super) fn write_text(&self, out: &mut impl Write, show_keys: bool) -> io::Result<()> {
        if let (Some(count), Some(keys), true) = (self.key_count, &self.keys, show_keys) {
            let more = count.saturating_sub(keys.len());
            let more = if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            };
            writeln!(out, "keys            {count}: {}{more}", keys.join(", "))?;
        }
        if let Some(info) = &self.sys_info {
            let mut parts = Vec::new();
            if let Some(protocol) = info.protocol_version {
                parts.push(format!("protocol {protocol}"));
            }
            match info.little_endian {
                Some(true) => parts.push("little-endian".to_owned()),
                Some(false) => parts.push("big-endian".to_owned()),
                None => {}
            }
            parts.extend(
                info.type_sizes
                    .iter()
                    .map(|(name, size)| format!("{name} {size}")),
            );
            writeln!(out, "sys_info        {}", parts.join(", "))?;
        }
        if let Some(form) = self.legacy_form {
            writeln!(out, "legacy form     {form}")?;
        }
        if let Some(trailing) = self.trailing_bytes {
            writeln!(out, "trailing bytes  {trailing}")?;
        }
        write_errors(out, &self.errors)
    }
}
