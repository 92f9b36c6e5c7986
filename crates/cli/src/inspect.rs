//! `tpkg inspect`: what a package holds, as text or JSON.
//!
//! The JSON shape is a contract (issue 3): `prefix`, `records` (sorted
//! names without the package folder), `extern_modules`, `python_version`,
//! `version`, `format`, `container`, plus the details below. Fields are
//! only ever added.
//!
//! `summary` tells what a file that is not a package holds (null for
//! packages): see [`Summary`]. Reading it never fails the command: what
//! cannot be read is listed in its `errors`.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use tpkg::archive::{Compression, PackageFormat, PackageMetadata, PackageReader};
use tpkg::formats::{FileFormat, Sniffed};
use tpkg::pickle::{Value, ValueGraph, ValueId};
use tpkg::tensors::PackageTensors;

/// Everything `tpkg inspect` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The package path as given.
    pub path: String,
    /// The PyTorch file format, told from the content: `package`,
    /// `torch.save`, `torch.save-legacy`, `torchscript`, `pt2`, `pickle`.
    pub format: FileFormat,
    /// `zip` or `directory` for zip formats; `stream` otherwise.
    pub container: &'static str,
    /// The package folder.
    pub prefix: String,
    /// Record names without the folder, sorted.
    pub records: Vec<String>,
    /// As PyTorch's importer reads them (`[""]` when the package has none).
    pub extern_modules: Option<Vec<String>>,
    /// The writer's Python version.
    pub python_version: Option<String>,
    /// Format version (6).
    pub version: Option<u64>,
    /// `little` or `big`; absent in packages from PyTorch before 2.1.
    pub byteorder: Option<String>,
    /// The archive's serialization id; absent before PyTorch 2.1.
    pub serialization_id: Option<String>,
    /// Number of records.
    pub record_count: usize,
    /// Sum of record sizes in bytes.
    pub total_size: u64,
    /// Every record in archive order, with its layout.
    pub entries: Vec<Entry>,
    /// What the file holds, by format; null for packages.
    pub summary: Option<Summary>,
}

/// One record's layout.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// Name without the folder.
    pub name: String,
    /// Content size in bytes.
    pub size: u64,
    /// Bytes in the archive.
    pub compressed_size: u64,
    /// `stored` or `deflated`.
    pub compression: &'static str,
    /// Data offset in the zip file (null for folders).
    pub offset: Option<u64>,
    /// CRC-32 from the zip header (null for folders).
    pub crc32: Option<u32>,
}

impl Report {
    pub fn of(path: &Path) -> anyhow::Result<Report> {
        let format = match tpkg::formats::sniff_path(path)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
        {
            Sniffed::Zip => None,
            Sniffed::LegacyStream | Sniffed::Tar => Some(FileFormat::TorchSaveLegacy),
            Sniffed::Pickle => Some(FileFormat::Pickle),
        };
        if let Some(format) = format {
            return Self::of_stream(path, format);
        }
        let reader = PackageReader::open(path)?;
        let metadata = PackageMetadata::read(&reader)?;
        let mut records: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
        records.sort();
        let entries: Vec<Entry> = reader
            .records()
            .iter()
            .map(|record| Entry {
                name: record.name.clone(),
                size: record.size,
                compressed_size: record.compressed_size,
                compression: match record.compression {
                    Compression::Stored => "stored",
                    Compression::Deflated => "deflated",
                },
                offset: record.data_offset,
                crc32: record.crc32,
            })
            .collect();
        let format = tpkg::formats::zip_format(&reader);
        Ok(Report {
            path: path.display().to_string(),
            format,
            container: match reader.format() {
                PackageFormat::Zip => "zip",
                PackageFormat::Directory => "directory",
            },
            prefix: reader.prefix().to_owned(),
            record_count: records.len(),
            total_size: entries.iter().map(|entry| entry.size).sum(),
            records,
            extern_modules: metadata.extern_modules,
            python_version: metadata.python_version,
            version: metadata.version,
            byteorder: metadata.byteorder,
            serialization_id: metadata.serialization_id,
            entries,
            summary: Summary::of_zip(&reader, format),
        })
    }

    /// A file that is not a zip: its format, size and summary.
    fn of_stream(path: &Path, format: FileFormat) -> anyhow::Result<Report> {
        let size = std::fs::metadata(path)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
            .len();
        let summary = match format {
            FileFormat::Pickle => ObjectSummary::of_pickles(path),
            _ => ObjectSummary::of_legacy(path),
        };
        Ok(Report {
            path: path.display().to_string(),
            format,
            container: "stream",
            prefix: String::new(),
            records: Vec::new(),
            extern_modules: None,
            python_version: None,
            version: None,
            byteorder: None,
            serialization_id: None,
            record_count: 0,
            total_size: size,
            entries: Vec::new(),
            summary: Some(Summary::Object(summary)),
        })
    }

    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let missing = || "(absent)".to_owned();
        writeln!(
            out,
            "file            {} ({}, {})",
            self.path, self.format, self.container
        )?;
        if self.container == "stream" {
            writeln!(out, "size            {} bytes", self.total_size)?;
            return match &self.summary {
                Some(summary) => summary.write_text(out),
                None => Ok(()),
            };
        }
        writeln!(out, "folder          {}", self.prefix)?;
        writeln!(
            out,
            "format version  {}",
            self.version.map_or_else(missing, |v| v.to_string())
        )?;
        writeln!(
            out,
            "python          {}",
            self.python_version.clone().unwrap_or_else(missing)
        )?;
        writeln!(
            out,
            "byte order      {}",
            self.byteorder.clone().unwrap_or_else(missing)
        )?;
        let externs = match &self.extern_modules {
            None if self.format != FileFormat::Package => "(not a package)".to_owned(),
            None => "(absent: PyTorch cannot load this package)".to_owned(),
            Some(modules) if modules.iter().all(String::is_empty) => "(none)".to_owned(),
            Some(modules) => modules.join(", "),
        };
        writeln!(out, "extern modules  {externs}")?;
        if let Some(summary) = &self.summary {
            summary.write_text(out)?;
        }
        writeln!(
            out,
            "records         {} ({} bytes)",
            self.record_count, self.total_size
        )?;
        let width = self.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for entry in &self.entries {
            let note = if entry.compression == "stored" {
                String::new()
            } else {
                format!("  {} ({} bytes)", entry.compression, entry.compressed_size)
            };
            writeln!(out, "  {:<width$}  {:>12}{note}", entry.name, entry.size)?;
        }
        Ok(())
    }
}

/// What a file that is not a package holds, by format. Every field of a
/// format's summary is always present (null when it could not be read;
/// `errors` says why).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Summary {
    /// `torch.save` (zip and legacy) and pickle files.
    Object(ObjectSummary),
    /// TorchScript files.
    TorchScript(TorchScriptSummary),
    /// `.pt2` archives.
    Pt2(Pt2Summary),
}

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
    pub legacy_form: Option<&'static str>,
    /// Legacy files: bytes after the last storage, which `torch.load`
    /// never reads.
    pub trailing_bytes: Option<u64>,
    /// What could not be read.
    pub errors: Vec<String>,
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

/// A TorchScript file (`torch.jit.save`).
#[derive(Debug, Default, Serialize)]
pub struct TorchScriptSummary {
    /// The module's class (`__torch__.Net`).
    pub module_class: Option<String>,
    /// Python sources under `code/`.
    pub code_files: usize,
    /// The tensors of `data.pkl` (parameters, buffers, attributes).
    pub tensors: Option<TensorStats>,
    /// Entries of `constants.pkl` (the constants the code uses).
    pub constants: Option<usize>,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// A `.pt2` archive (`torch.export.save`).
#[derive(Debug, Default, Serialize)]
pub struct Pt2Summary {
    /// `archive_version`.
    pub archive_version: Option<String>,
    /// Models, by name (`models/<name>.json`).
    pub models: Vec<String>,
    /// Weights and constants together.
    pub tensors: Option<TensorStats>,
    /// `data/weights/`.
    pub weights: Pt2Group,
    /// `data/constants/`.
    pub constants: Pt2Group,
    /// Models with sample inputs (`data/sample_inputs/<name>.pt`).
    pub sample_inputs: Vec<String>,
    /// AOTInductor folders (`data/aotinductor/<folder>/`).
    pub aotinductor: Vec<String>,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// One folder of a `.pt2` archive's tensors.
#[derive(Debug, Default, Serialize)]
pub struct Pt2Group {
    /// Tensors its configs describe (null when unreadable).
    pub tensors: Option<usize>,
    /// Its data records (configs aside).
    pub records: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Tensors of a main object.
#[derive(Debug, Default, Serialize)]
pub struct TensorStats {
    /// How many.
    pub count: usize,
    /// Their elements' bytes (views of one storage each counted).
    pub bytes: u64,
    /// Distinct storages they view.
    pub storages: usize,
    /// Those storages' bytes.
    pub storage_bytes: u64,
    /// Tensors per dtype.
    pub dtypes: BTreeMap<&'static str, usize>,
}

impl TensorStats {
    fn of(tensors: &PackageTensors<'_>) -> TensorStats {
        let mut stats = TensorStats::default();
        let mut seen = HashSet::new();
        for index in 0..tensors.len() {
            let Ok(view) = tensors.view(index) else {
                continue;
            };
            stats.count += 1;
            let element = view.dtype().element_size() as u64;
            stats.bytes = stats
                .bytes
                .saturating_add(view.numel().saturating_mul(element));
            *stats.dtypes.entry(view.dtype().name()).or_default() += 1;
            if seen.insert(view.spec().storage.key.clone()) {
                stats.storages += 1;
                stats.storage_bytes += view.storage_bytes().len() as u64;
            }
        }
        stats
    }
}

/// Most keys listed.
const MAX_KEYS: usize = 20;

/// Longest key shown (non-string keys are shown by their Python repr).
const KEY_REPR_LIMIT: usize = 80;

fn error_text(error: &dyn std::error::Error) -> String {
    tpkg::error_chain(error)
}

/// The class a value instantiates or the function that makes it, as
/// `module.name`.
fn global_name(graph: &ValueGraph, id: ValueId) -> Option<String> {
    match graph.get(id) {
        Value::Global { module, name } => Some(format!("{module}.{name}")),
        _ => None,
    }
}

/// The main object's type, as Python would name it.
fn type_name(graph: &ValueGraph, id: ValueId) -> String {
    if tpkg::tensors::is_tensor(graph, id) {
        return "torch.Tensor".to_owned();
    }
    if let Some((class, _)) = tpkg::tensors::module::module_state(graph, id) {
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
    fn of_zip(reader: &PackageReader) -> ObjectSummary {
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
    fn of_legacy(path: &Path) -> ObjectSummary {
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
            tpkg::legacy::LegacyForm::Tar => "tar",
            _ => "stream",
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
    fn of_pickles(path: &Path) -> ObjectSummary {
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

    fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        if let Some(pickles) = self.pickles {
            writeln!(out, "pickles         {pickles}")?;
        }
        if let Some(object) = &self.object {
            writeln!(out, "object          {object}")?;
        }
        if let (Some(count), Some(keys)) = (self.key_count, &self.keys) {
            let more = count.saturating_sub(keys.len());
            let more = if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            };
            writeln!(out, "keys            {count}: {}{more}", keys.join(", "))?;
        }
        write_tensors(out, self.tensors.as_ref())?;
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

impl TorchScriptSummary {
    fn of(reader: &PackageReader) -> TorchScriptSummary {
        let mut summary = TorchScriptSummary {
            code_files: reader
                .records()
                .iter()
                .filter(|record| record.name.starts_with("code/") && record.name.ends_with(".py"))
                .count(),
            ..Default::default()
        };
        match PackageTensors::load(reader, "data.pkl") {
            Ok(tensors) => {
                let graph = tensors.graph();
                summary.module_class = Some(type_name(graph, graph.root()));
                summary.tensors = Some(TensorStats::of(&tensors));
            }
            Err(error) => {
                summary.errors.push(error_text(&error));
                if let Ok(graph) = tpkg::show::decode_record(reader, "data.pkl") {
                    summary.module_class = Some(type_name(&graph, graph.root()));
                }
            }
        }
        match tpkg::show::decode_record(reader, "constants.pkl") {
            Ok(graph) => match graph.get(graph.root()) {
                Value::Tuple(items) | Value::List(items) => summary.constants = Some(items.len()),
                _ => summary
                    .errors
                    .push("constants.pkl: not a tuple of constants".to_owned()),
            },
            Err(error) => summary.errors.push(error_text(&error)),
        }
        summary
    }

    fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        if let Some(class) = &self.module_class {
            writeln!(out, "module          {class}")?;
        }
        writeln!(out, "code files      {}", self.code_files)?;
        write_tensors(out, self.tensors.as_ref())?;
        if let Some(constants) = self.constants {
            writeln!(out, "constants       {constants}")?;
        }
        write_errors(out, &self.errors)
    }
}

impl Pt2Summary {
    fn of(reader: &PackageReader) -> Pt2Summary {
        let mut summary = Pt2Summary {
            archive_version: reader
                .read("archive_version")
                .ok()
                .map(|text| String::from_utf8_lossy(text.trim_ascii()).into_owned()),
            ..Default::default()
        };
        let mut aotinductor = std::collections::BTreeSet::new();
        for record in reader.records() {
            let name = record.name.as_str();
            let is_config = name.ends_with("_config.json");
            if let Some(model) = name
                .strip_prefix("models/")
                .and_then(|rest| rest.strip_suffix(".json"))
            {
                summary.models.push(model.to_owned());
            } else if let Some(model) = name
                .strip_prefix("data/sample_inputs/")
                .and_then(|rest| rest.strip_suffix(".pt"))
            {
                summary.sample_inputs.push(model.to_owned());
            } else if let Some((folder, _)) = name
                .strip_prefix("data/aotinductor/")
                .and_then(|rest| rest.split_once('/'))
            {
                aotinductor.insert(folder.to_owned());
            } else if name.starts_with("data/weights/") && !is_config {
                summary.weights.records += 1;
                summary.weights.bytes += record.size;
            } else if name.starts_with("data/constants/") && !is_config {
                summary.constants.records += 1;
                summary.constants.bytes += record.size;
            }
        }
        summary.aotinductor = aotinductor.into_iter().collect();
        match tpkg::pt2::pt2_tensors(reader) {
            Ok(tensors) => {
                let (mut weights, mut constants) = (0, 0);
                for index in 0..tensors.len() {
                    if let Ok(view) = tensors.view(index) {
                        if view.spec().storage.key.starts_with("data/weights/") {
                            weights += 1;
                        } else {
                            constants += 1;
                        }
                    }
                }
                summary.weights.tensors = Some(weights);
                summary.constants.tensors = Some(constants);
                summary.tensors = Some(TensorStats::of(&tensors));
            }
            Err(error) => summary.errors.push(error_text(&error)),
        }
        summary
    }

    fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let list = |names: &[String]| {
            if names.is_empty() {
                "(none)".to_owned()
            } else {
                names.join(", ")
            }
        };
        if let Some(version) = &self.archive_version {
            writeln!(out, "pt2 version     {version}")?;
        }
        writeln!(out, "models          {}", list(&self.models))?;
        write_tensors(out, self.tensors.as_ref())?;
        for (label, group) in [
            ("weights         ", &self.weights),
            ("constants       ", &self.constants),
        ] {
            let tensors = group
                .tensors
                .map_or_else(|| "?".to_owned(), |n| n.to_string());
            writeln!(
                out,
                "{label}{tensors} tensors in {} records ({} bytes)",
                group.records, group.bytes
            )?;
        }
        writeln!(out, "sample inputs   {}", list(&self.sample_inputs))?;
        writeln!(out, "aotinductor     {}", list(&self.aotinductor))?;
        write_errors(out, &self.errors)
    }
}

fn write_tensors(out: &mut impl Write, stats: Option<&TensorStats>) -> io::Result<()> {
    let Some(stats) = stats else {
        return Ok(());
    };
    writeln!(
        out,
        "tensors         {} ({} bytes; {} storages, {} bytes)",
        stats.count, stats.bytes, stats.storages, stats.storage_bytes
    )?;
    if !stats.dtypes.is_empty() {
        let dtypes: Vec<String> = stats
            .dtypes
            .iter()
            .map(|(dtype, count)| format!("{dtype} {count}"))
            .collect();
        writeln!(out, "dtypes          {}", dtypes.join(", "))?;
    }
    Ok(())
}

fn write_errors(out: &mut impl Write, errors: &[String]) -> io::Result<()> {
    for error in errors {
        writeln!(out, "error           {error}")?;
    }
    Ok(())
}

impl Summary {
    /// The summary of an opened zip of `format` (none for packages).
    fn of_zip(reader: &PackageReader, format: FileFormat) -> Option<Summary> {
        match format {
            FileFormat::TorchSave => Some(Summary::Object(ObjectSummary::of_zip(reader))),
            FileFormat::TorchScript => Some(Summary::TorchScript(TorchScriptSummary::of(reader))),
            FileFormat::Pt2 => Some(Summary::Pt2(Pt2Summary::of(reader))),
            _ => None,
        }
    }

    fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Summary::Object(summary) => summary.write_text(out),
            Summary::TorchScript(summary) => summary.write_text(out),
            Summary::Pt2(summary) => summary.write_text(out),
        }
    }
}
