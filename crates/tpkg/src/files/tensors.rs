//! Tensors of a package's pickle: decoded, their storages read from
//! `.data/<key>.storage`, checked, ready as raw views. Re-exports the
//! `tpkg-tensors` crate (dtypes, specs, views).

use std::borrow::Cow;
use std::collections::HashMap;

use tpkg_archive::{ArchiveError, PackageReader};
use tpkg_pickle::ValueGraph;
pub use tpkg_tensors::*;

use crate::files::records::{PickleRecordError, decode_record};

mod embedded;
mod summary;
mod write;

pub use embedded::EmbeddedStorageError;
pub(crate) use embedded::pickled_bytes;
pub use summary::{TensorSummary, tensor_sha256};
pub use write::{WriteTensorsError, write_tensor_pickle};

/// A pickle's tensors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadTensorsError {
    /// The pickle record could not be read or decoded.
    #[error(transparent)]
    Pickle(#[from] PickleRecordError),
    /// A storage record could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// libtorch refused a tensor.
    #[cfg(feature = "tch")]
    #[error(transparent)]
    Tch(#[from] tpkg_tensors::tch::TchError),
    /// A storage pickled inside the pickle could not be read.
    #[error("{archive}: record {record:?}")]
    Embedded {
        /// The file.
        archive: String,
        /// The pickle record.
        record: String,
        /// What is wrong with the storage.
        #[source]
        source: EmbeddedStorageError,
    },
    /// A `torch.save` file's `byteorder` record is neither `little` nor
    /// `big` (`torch.load` refuses it too).
    #[error(
        "{archive}: unknown byte order {byteorder:?} in record \"byteorder\" (torch.load accepts \"little\" or \"big\")"
    )]
    UnknownByteOrder {
        /// The file.
        archive: String,
        /// What the record says.
        byteorder: String,
    },
    /// A tensor is malformed or out of bounds.
    #[error("{archive}: record {record:?}")]
    Tensor {
        /// The package.
        archive: String,
        /// The pickle record.
        record: String,
        /// What is wrong with the tensor.
        #[source]
        source: Box<TensorError>,
    },
}

/// Every tensor of one pickle record, with its storages (borrowed from the
/// memory-mapped archive when stored, so nothing is copied).
#[derive(Debug)]
pub struct PackageTensors<'r> {
    source: Source<'r>,
    /// The pickle record the tensors come from.
    record: String,
    graph: ValueGraph,
    tensors: Vec<(String, TensorSpec)>,
    /// Storage key → (its record, its bytes).
    storages: HashMap<String, (String, Cow<'r, [u8]>)>,
}

/// Where a [`PackageTensors`]' storages live.
#[derive(Debug, Clone, Copy)]
enum Source<'r> {
    /// Records of a zip or directory package (or torch.save, TorchScript,
    /// `.pt2` file).
    Package(&'r PackageReader),
    /// Ranges of a legacy `torch.save` file.
    Legacy(&'r crate::legacy::LegacyFile),
    /// A plain pickle file, its storages inside its pickles.
    Pickles,
}

impl Source<'_> {
    fn label(&self) -> String {
        match self {
            Source::Package(reader) => reader.label().to_owned(),
            Source::Legacy(file) => format!("<legacy torch.save, {} bytes>", file.bytes().len()),
            Source::Pickles => "<pickle file>".to_owned(),
        }
    }

    fn tensor_error(&self, record: &str, source: TensorError) -> LoadTensorsError {
        LoadTensorsError::Tensor {
            archive: self.label(),
            record: record.to_owned(),
            source: Box::new(source),
        }
    }
}

/// [`embedded::unpack`], its error naming the file and pickle.
fn unpack_embedded(
    graph: &mut ValueGraph,
    ids: StorageIds,
    source: Source<'_>,
    record: &str,
) -> Result<HashMap<String, Vec<u8>>, LoadTensorsError> {
    embedded::unpack(graph, ids).map_err(|error| LoadTensorsError::Embedded {
        archive: source.label(),
        record: record.to_owned(),
        source: error,
    })
}

/// The nodes holding the key of every `("storage", type, key, location,
/// numel)` persistent id of `graph`, each once: tensors of one storage, or
/// a memoized key string, share a node, which a caller rewriting keys must
/// rewrite once.
pub(crate) fn storage_key_nodes(graph: &ValueGraph) -> Vec<tpkg_pickle::ValueId> {
    use tpkg_pickle::Value;
    let mut seen = std::collections::HashSet::new();
    graph
        .iter()
        .filter_map(|(_, value)| match value {
            Value::PersistentId(pid) => match graph.get(*pid) {
                Value::Tuple(items) if items.len() == 5 => Some((items[0], items[2])),
                _ => None,
            },
            _ => None,
        })
        .filter(|(kind, _)| graph.get(*kind).as_str() == Some("storage"))
        .filter_map(|(_, key)| seen.insert(key).then_some(key))
        .collect()
}

/// The record holding storage `key` in a torch.package.
pub fn storage_record(key: &str) -> String {
    format!(".data/{key}.storage")
}

/// The record holding storage `key` in a `torch.save` file.
pub fn torch_save_storage_record(key: &str) -> String {
    format!("data/{key}")
}

/// The record holding storage `key` of the pickle at `pickle_record`:
/// `.data/<key>` for a TorchScript module packaged at
/// `.data/ts_code/<n>/`, else `.data/<key>.storage` in a torch.package,
/// else `data/<key>` (`torch.save`, TorchScript).
fn pickle_storage_record(reader: &PackageReader, pickle_record: &str, key: &str) -> String {
    if pickle_record.starts_with(".data/ts_code/") {
        return format!(".data/{key}");
    }
    let package_record = storage_record(key);
    if reader.has_record(&package_record) {
        package_record
    } else {
        torch_save_storage_record(key)
    }
}

/// A storage record's bytes: stored records borrowed straight from the
/// memory map without a CRC pass (PyTorch's reader does not check CRCs
/// either; [`PackageReader::verify`] does). Every view is still
/// bounds-checked, so corrupt data gives wrong numbers, never unsafety.
/// Other records are read checked.
fn read_storage_record<'r>(
    reader: &'r PackageReader,
    record: &str,
) -> Result<(String, Cow<'r, [u8]>), ArchiveError> {
    let bytes = match reader.stored_slice(record)? {
        Some(slice) => Cow::Borrowed(slice),
        None => reader.read(record)?,
    };
    Ok((record.to_owned(), bytes))
}

/// Whether `reader` is a `torch.save` file whose storages `torch.load`
/// byte-swaps: its `byteorder` record says `big`. Any value but `little`
/// or `big` is refused, as `torch.load` refuses it.
fn big_endian_torch_save(reader: &PackageReader) -> Result<bool, LoadTensorsError> {
    const BYTEORDER: &str = "byteorder";
    if crate::formats::zip_format(reader) != crate::formats::FileFormat::TorchSave
        || !reader.has_record(BYTEORDER)
    {
        return Ok(false);
    }
    match &*reader.read(BYTEORDER)? {
        b"little" => Ok(false),
        b"big" => Ok(true),
        other => Err(LoadTensorsError::UnknownByteOrder {
            archive: reader.label().to_owned(),
            byteorder: String::from_utf8_lossy(other).into_owned(),
        }),
    }
}

/// `storage` as little-endian elements of `dtype`: its elements
/// byte-swapped into owned memory when `swap` (a big-endian file), as
/// `torch.load` swaps each storage by its storage type's element size
/// (an `UntypedStorage` is bytes, never swapped).
fn byte_swapped<'r>(
    (record, bytes): (String, Cow<'r, [u8]>),
    dtype: DType,
    swap: bool,
) -> (String, Cow<'r, [u8]>) {
    // Complex numbers swap each of their two parts.
    let unit = match dtype {
        DType::Complex64 => 4,
        DType::Complex128 => 8,
        other => other.element_size(),
    };
    if !swap || unit < 2 {
        return (record, bytes);
    }
    let mut owned = bytes.into_owned();
    for element in owned.chunks_exact_mut(unit) {
        element.reverse();
    }
    (record, Cow::Owned(owned))
}

/// Appends the tensors of the TorchScript module a package pickle refers
/// to at `path` (`reduce_package` id `script_module`), read from
/// `.data/ts_code/<script_module>/data.pkl` as PyTorch's
/// `unpackage_script_module` reads them. Their storage keys become their
/// records (`.data/<key>`), which no pickle's own key can equal.
fn load_script_module<'r>(
    reader: &'r PackageReader,
    path: &str,
    script_module: &str,
    tensors: &mut Vec<(String, TensorSpec)>,
    storages: &mut HashMap<String, (String, Cow<'r, [u8]>)>,
) -> Result<(), LoadTensorsError> {
    let record = format!(".data/ts_code/{script_module}/data.pkl");
    let graph = decode_record(reader, &record)?;
    let found = find_tensors(&graph).map_err(|source| LoadTensorsError::Tensor {
        archive: reader.label().to_owned(),
        record: record.clone(),
        source: Box::new(source),
    })?;
    for (inner_path, mut spec) in found {
        let storage_record = pickle_storage_record(reader, &record, &spec.storage.key);
        if !storages.contains_key(&storage_record) {
            let storage = read_storage_record(reader, &storage_record)?;
            storages.insert(storage_record.clone(), storage);
        }
        spec.storage.key = storage_record;
        let full_path = match (path.is_empty(), inner_path.is_empty()) {
            (true, _) => inner_path,
            (false, true) => path.to_owned(),
            (false, false) => format!("{path}.{inner_path}"),
        };
        tensors.push((full_path, spec));
    }
    Ok(())
}

/// Below this many bytes in all, storages are read on one thread.
const PARALLEL_READ_MIN: usize = 64 << 20;

impl<'r> PackageTensors<'r> {
    /// Decodes `record` and reads the storages its tensors view, checking
    /// every tensor against its storage. Works on torch.package archives,
    /// on `torch.save` files (`record` is then `data.pkl`) and on
    /// TorchScript files and a package's `.data/ts_code/<n>/data.pkl`.
    ///
    /// Tensors are found wherever PyTorch's loader would put them:
    /// TorchScript modules a package pickle refers to (their tensors are
    /// listed under the module's path, read from their own pickle), fx
    /// `GraphModule`s, storages pickled inside the pickle
    /// (`torch.storage._load_from_bytes`). A `torch.save` file whose
    /// `byteorder` record says `big` has its storages byte-swapped into
    /// owned memory, as `torch.load` swaps them.
    pub fn load(reader: &'r PackageReader, record: &str) -> Result<Self, LoadTensorsError> {
        let source = Source::Package(reader);
        let mut graph = decode_record(reader, record)?;
        let embedded = unpack_embedded(&mut graph, StorageIds::Zip, source, record)?;
        let found = walk_tensors(&graph, StorageIds::Zip)
            .map_err(|error| source.tensor_error(record, error))?;
        let swap = big_endian_torch_save(reader)?;
        let mut storages = HashMap::new();
        for (_, spec) in &found.tensors {
            let key = &spec.storage.key;
            if storages.contains_key(key) {
                continue;
            }
            let storage = match embedded.get(key) {
                Some(bytes) => (format!("<{key}>"), Cow::Owned(bytes.clone())),
                None => read_storage_record(reader, &pickle_storage_record(reader, record, key))?,
            };
            storages.insert(key.clone(), byte_swapped(storage, spec.storage.dtype, swap));
        }
        let mut tensors = found.tensors;
        for (path, script_module) in &found.script_modules {
            load_script_module(reader, path, script_module, &mut tensors, &mut storages)?;
        }
        Self::checked(source, record, graph, tensors, storages)
    }

    /// Tensors described other than by a pickle (a `.pt2` archive's
    /// weights config): `tensors` by path, each storage key's record in
    /// `storage_records`. Every tensor is checked against its storage, as
    /// in [`load`](Self::load); [`graph`](Self::graph) is empty.
    pub fn from_specs(
        reader: &'r PackageReader,
        record: &str,
        tensors: Vec<(String, TensorSpec)>,
        storage_records: HashMap<String, String>,
    ) -> Result<Self, LoadTensorsError> {
        let mut storages = HashMap::new();
        for (key, storage_record) in storage_records {
            let bytes = match reader.stored_slice(&storage_record)? {
                Some(slice) => Cow::Borrowed(slice),
                None => reader.read(&storage_record)?,
            };
            storages.insert(key, (storage_record, bytes));
        }
        let loaded = PackageTensors {
            source: Source::Package(reader),
            record: record.to_owned(),
            graph: ValueGraph::new(tpkg_pickle::Value::None),
            tensors,
            storages,
        };
        for index in 0..loaded.len() {
            loaded
                .view(index)
                .map_err(|source| LoadTensorsError::Tensor {
                    archive: reader.label().to_owned(),
                    record: record.to_owned(),
                    source: Box::new(source),
                })?;
        }
        Ok(loaded)
    }

    /// The tensors of a legacy `torch.save` file, their storages borrowed
    /// from its memory map: the same API (views, owned copies, tch,
    /// conversion) as for every zip format. The "record" is `object`.
    pub fn from_legacy(file: &'r crate::legacy::LegacyFile) -> Result<Self, LoadTensorsError> {
        let source = Source::Legacy(file);
        let mut graph = file.graph().clone();
        let embedded = unpack_embedded(&mut graph, StorageIds::Legacy, source, "object")?;
        let tensors = find_tensors_with(&graph, StorageIds::Legacy)
            .map_err(|error| source.tensor_error("object", error))?;
        let mut storages = HashMap::new();
        for (_, spec) in &tensors {
            let key = &spec.storage.key;
            if storages.contains_key(key) {
                continue;
            }
            let bytes = match embedded.get(key) {
                Some(bytes) => Cow::Owned(bytes.clone()),
                None => Cow::Borrowed(file.storage_bytes(key).ok_or_else(|| {
                    ArchiveError::RecordNotFound {
                        archive: source.label(),
                        record: format!("storage {key}"),
                    }
                })?),
            };
            storages.insert(key.clone(), (key.clone(), bytes));
        }
        Self::checked(source, "object", graph, tensors, storages)
    }

    /// The tensors of a plain pickle file (`pickle.dump`, several pickles
    /// in a row allowed): their storages are pickled inside
    /// (`torch.storage._load_from_bytes`), so everything is owned. With one
    /// pickle, paths are as in any file; with several, each pickle's paths
    /// start with its index (`0.`, `1.`, ...). [`graph`](Self::graph) is
    /// the first pickle's.
    pub fn from_pickles(pickles: &[ValueGraph]) -> Result<Self, LoadTensorsError> {
        let source = Source::Pickles;
        let mut tensors = Vec::new();
        let mut storages = HashMap::new();
        for (index, pickle) in pickles.iter().enumerate() {
            let record = format!("pickle[{index}]");
            let mut graph = pickle.clone();
            let embedded = unpack_embedded(&mut graph, StorageIds::Zip, source, &record)?;
            let found =
                find_tensors(&graph).map_err(|error| source.tensor_error(&record, error))?;
            for (path, mut spec) in found {
                let bytes = embedded.get(&spec.storage.key).cloned().ok_or_else(|| {
                    ArchiveError::RecordNotFound {
                        archive: source.label(),
                        record: format!("{record}: storage {}", spec.storage.key),
                    }
                })?;
                // Keys are per pickle: make them unique across pickles.
                if pickles.len() > 1 {
                    spec.storage.key = format!("{index}/{}", spec.storage.key);
                }
                storages
                    .entry(spec.storage.key.clone())
                    .or_insert_with(|| (record.clone(), Cow::Owned(bytes)));
                let path = match (pickles.len(), path.is_empty()) {
                    (1, _) => path,
                    (_, true) => index.to_string(),
                    (_, false) => format!("{index}.{path}"),
                };
                tensors.push((path, spec));
            }
        }
        let graph = pickles
            .first()
            .cloned()
            .unwrap_or_else(|| ValueGraph::new(tpkg_pickle::Value::None));
        Self::checked(source, "pickle[0]", graph, tensors, storages)
    }

    /// Assembles a [`PackageTensors`], checking every tensor against its
    /// storage.
    fn checked(
        source: Source<'r>,
        record: &str,
        graph: ValueGraph,
        tensors: Vec<(String, TensorSpec)>,
        storages: HashMap<String, (String, Cow<'r, [u8]>)>,
    ) -> Result<Self, LoadTensorsError> {
        let loaded = PackageTensors {
            source,
            record: record.to_owned(),
            graph,
            tensors,
            storages,
        };
        for index in 0..loaded.len() {
            loaded.checked_view(index)?;
        }
        Ok(loaded)
    }

    /// The decoded pickle.
    pub fn graph(&self) -> &ValueGraph {
        &self.graph
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Path of tensor `index` (as in the corpus manifests).
    pub fn path(&self, index: usize) -> &str {
        &self.tensors[index].0
    }

    /// Tensor `index` as a checked view of its storage.
    pub fn view(&self, index: usize) -> Result<TensorView<'_>, TensorError> {
        let (path, spec) = &self.tensors[index];
        let storage = self
            .storages
            .get(&spec.storage.key)
            .map(|(_, bytes)| &bytes[..])
            .unwrap_or(&[]);
        TensorView::new(spec.clone(), path, storage)
    }

    /// The key of every storage the tensors view, each once, in key order.
    pub fn storage_keys(&self) -> impl Iterator<Item = &str> {
        let mut keys: Vec<&str> = self.storages.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys.into_iter()
    }

    /// Copies storage `key` (a tensor's `spec().storage.key`) into memory
    /// the caller owns.
    ///
    /// The map's pages of the storage are released once copied
    /// ([`PackageReader::read_range`]), so loading every storage this way
    /// leaves the process holding the copies only, not the copies plus the
    /// mapped pages: peak memory is the data loaded, not twice the archive.
    /// Views of one storage share it: read each key once.
    pub fn read_storage(&self, key: &str) -> Result<Vec<u8>, ArchiveError> {
        let Some((record, bytes)) = self.storages.get(key) else {
            return Err(ArchiveError::RecordNotFound {
                archive: self.source.label(),
                record: storage_record(key),
            });
        };
        match (bytes, self.source) {
            (Cow::Borrowed(_), Source::Package(reader)) => {
                reader.read_range(record, 0, bytes.len() as u64)
            }
            (Cow::Borrowed(bytes), Source::Legacy(file)) => {
                let copy = bytes.to_vec();
                file.release_storage(key);
                Ok(copy)
            }
            (bytes, _) => Ok(bytes.to_vec()),
        }
    }

    /// [`view`](Self::view), its error naming the package and the pickle.
    fn checked_view(&self, index: usize) -> Result<TensorView<'_>, LoadTensorsError> {
        self.view(index).map_err(|source| LoadTensorsError::Tensor {
            archive: self.source.label(),
            record: self.record.clone(),
            source: Box::new(source),
        })
    }

    /// Drops this process's mapped pages of storage `key`
    /// ([`PackageReader::release`]): for passes over every tensor (digests,
    /// conversions) that are done with a storage. Its views stay valid.
    pub fn release_storage(&self, key: &str) {
        match (self.storages.get(key), self.source) {
            (Some((record, Cow::Borrowed(_))), Source::Package(reader)) => {
                let _ = reader.release(record);
            }
            (Some((_, Cow::Borrowed(_))), Source::Legacy(file)) => file.release_storage(key),
            _ => {}
        }
    }

    /// Every storage, copied into memory the caller owns
    /// ([`read_storage`](Self::read_storage) for each key), keyed by
    /// storage key. Large storages are copied by as many threads as the
    /// machine has cores: copying from the page cache is bound by memory
    /// bandwidth, which one core does not saturate.
    pub fn read_storages(&self) -> Result<HashMap<String, Vec<u8>>, ArchiveError> {
        let keys: Vec<&str> = self.storage_keys().collect();
        let total: usize = self.storages.values().map(|(_, bytes)| bytes.len()).sum();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(keys.len())
            .min(total / PARALLEL_READ_MIN + 1);
        if threads <= 1 {
            return keys
                .into_iter()
                .map(|key| Ok((key.to_owned(), self.read_storage(key)?)))
                .collect();
        }
        // Deal the storages out largest first, each to the least loaded
        // thread, so the threads finish together.
        let mut by_size = keys;
        by_size.sort_by_key(|key| std::cmp::Reverse(self.storages[*key].1.len()));
        let mut shares: Vec<(usize, Vec<&str>)> = vec![(0, Vec::new()); threads];
        for key in by_size {
            if let Some(share) = shares.iter_mut().min_by_key(|(load, _)| *load) {
                share.0 += self.storages[key].1.len();
                share.1.push(key);
            }
        }
        std::thread::scope(|scope| {
            let workers: Vec<_> = shares
                .into_iter()
                .map(|(_, keys)| {
                    scope.spawn(move || {
                        keys.into_iter()
                            .map(|key| Ok((key.to_owned(), self.read_storage(key)?)))
                            .collect::<Result<Vec<_>, ArchiveError>>()
                    })
                })
                .collect();
            let mut all = HashMap::new();
            for worker in workers {
                match worker.join() {
                    Ok(read) => all.extend(read?),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Ok(all)
        })
    }

    /// Every tensor, copied into libtorch (in index order), with views of
    /// one storage sharing one libtorch buffer as they shared the storage
    /// ([`tch::to_tch`], one storage at a time).
    /// Each storage's mapped pages are released once it is copied, so the
    /// process holds the tensors, not the tensors plus the archive.
    #[cfg(feature = "tch")]
    pub fn to_tch(&self) -> Result<Vec<::tch::Tensor>, LoadTensorsError> {
        let mut by_storage: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (index, (_, spec)) in self.tensors.iter().enumerate() {
            by_storage.entry(&spec.storage.key).or_default().push(index);
        }
        let mut tensors: Vec<Option<::tch::Tensor>> = (0..self.len()).map(|_| None).collect();
        for (key, indices) in by_storage {
            let mut views = Vec::with_capacity(indices.len());
            for &index in &indices {
                let view = self.checked_view(index)?;
                views.push((self.path(index), view));
            }
            for (index, tensor) in indices.into_iter().zip(tpkg_tensors::tch::to_tch(&views)?) {
                tensors[index] = Some(tensor);
            }
            self.release_storage(key);
        }
        Ok(tensors.into_iter().flatten().collect())
    }

    /// Appends tensor `index`'s elements in row-major order to `out` (at
    /// its position) and returns how many bytes that was.
    ///
    /// A contiguous tensor of a stored record is one run of its storage
    /// record, which the kernel copies from file to file
    /// ([`PackageReader::copy_range_to`]): the bytes never enter this
    /// process. Other tensors are gathered in memory and written.
    pub fn copy_tensor_to(
        &self,
        index: usize,
        out: &std::fs::File,
    ) -> Result<u64, LoadTensorsError> {
        let view = self.checked_view(index)?;
        let element = view.dtype().element_size() as u64;
        let len = view.numel() * element;
        let stored = self
            .storages
            .get(&view.spec().storage.key)
            .filter(|(_, bytes)| matches!(bytes, Cow::Borrowed(_)));
        match (stored, self.source) {
            (Some((record, _)), Source::Package(reader)) if view.is_contiguous() && len > 0 => {
                let start = view.storage_offset() * element;
                reader.copy_range_to(record, start, len, out)?;
            }
            (Some(_), Source::Legacy(file)) if view.is_contiguous() && len > 0 => {
                let key = &view.spec().storage.key;
                let start = view.storage_offset() * element;
                let copied = file
                    .copy_storage_to(key, start, len, out)
                    .unwrap_or_else(|| {
                        Err(std::io::Error::other("the tensor lies outside its storage"))
                    });
                copied.map_err(|source| ArchiveError::CopyOut {
                    archive: self.source.label(),
                    record: self.path(index).to_owned(),
                    source,
                })?;
            }
            _ => {
                let write = |source| ArchiveError::CopyOut {
                    archive: self.source.label(),
                    record: self.path(index).to_owned(),
                    source,
                };
                std::io::Write::write_all(&mut &*out, &view.contiguous_bytes()).map_err(write)?;
            }
        }
        Ok(len)
    }
}
