//! Tensors of a package's pickle: decoded, their storages read from
//! `.data/<key>.storage`, checked, ready as raw views. Re-exports the
//! `tpkg-tensors` crate (dtypes, specs, views).

use std::borrow::Cow;
use std::collections::HashMap;

use sha2::{Digest, Sha256};
use tpkg_archive::{ArchiveError, PackageReader};
use tpkg_pickle::ValueGraph;
pub use tpkg_tensors::*;

use crate::show::{PickleRecordError, decode_record};

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
}

impl Source<'_> {
    fn label(&self) -> String {
        match self {
            Source::Package(reader) => reader.label().to_owned(),
            Source::Legacy(file) => format!("<legacy torch.save, {} bytes>", file.bytes().len()),
        }
    }
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

/// Below this many bytes in all, storages are read on one thread.
const PARALLEL_READ_MIN: usize = 64 << 20;

impl<'r> PackageTensors<'r> {
    /// Decodes `record` and reads the storages its tensors view, checking
    /// every tensor against its storage. Works on torch.package archives and
    /// on `torch.save` files (`record` is then `data.pkl`).
    pub fn load(reader: &'r PackageReader, record: &str) -> Result<Self, LoadTensorsError> {
        let graph = decode_record(reader, record)?;
        let tensor_error = |source| LoadTensorsError::Tensor {
            archive: reader.label().to_owned(),
            record: record.to_owned(),
            source: Box::new(source),
        };
        let tensors = find_tensors(&graph).map_err(tensor_error)?;
        let mut storages = HashMap::new();
        for (_, spec) in &tensors {
            if !storages.contains_key(&spec.storage.key) {
                // torch.package keeps `.data/<key>.storage`; a torch.save
                // file (the same zip container) keeps `data/<key>`.
                let package_record = storage_record(&spec.storage.key);
                let record = if reader.has_record(&package_record) {
                    package_record
                } else {
                    torch_save_storage_record(&spec.storage.key)
                };
                // Stored records are borrowed straight from the memory map
                // without a CRC pass (PyTorch's reader does not check CRCs
                // either; `PackageReader::verify` does): every view is
                // still bounds-checked, so corrupt data gives wrong
                // numbers, never unsafety. Other records are read checked.
                let bytes = match reader.stored_slice(&record)? {
                    Some(slice) => Cow::Borrowed(slice),
                    None => reader.read(&record)?,
                };
                storages.insert(spec.storage.key.clone(), (record, bytes));
            }
        }
        let loaded = PackageTensors {
            source: Source::Package(reader),
            record: record.to_owned(),
            graph,
            tensors,
            storages,
        };
        for index in 0..loaded.len() {
            loaded.view(index).map_err(tensor_error)?;
        }
        Ok(loaded)
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
        let graph = file.graph().clone();
        let tensor_error = |source| LoadTensorsError::Tensor {
            archive: Source::Legacy(file).label(),
            record: "object".to_owned(),
            source: Box::new(source),
        };
        let tensors = find_tensors_with(&graph, StorageIds::Legacy).map_err(tensor_error)?;
        let mut storages = HashMap::new();
        for (_, spec) in &tensors {
            let key = &spec.storage.key;
            if !storages.contains_key(key) {
                let bytes =
                    file.storage_bytes(key)
                        .ok_or_else(|| ArchiveError::RecordNotFound {
                            archive: Source::Legacy(file).label(),
                            record: format!("storage {key}"),
                        })?;
                storages.insert(key.clone(), (key.clone(), Cow::Borrowed(bytes)));
            }
        }
        let loaded = PackageTensors {
            source: Source::Legacy(file),
            record: "object".to_owned(),
            graph,
            tensors,
            storages,
        };
        for index in 0..loaded.len() {
            loaded.view(index).map_err(tensor_error)?;
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
        if let (Some((record, Cow::Borrowed(_))), Source::Package(reader)) =
            (self.storages.get(key), self.source)
        {
            let _ = reader.release(record);
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

/// SHA-256 of a tensor's elements in row-major order as little-endian bytes
/// (the corpus manifests' `sha256`), as lowercase hex.
pub fn tensor_sha256(view: &TensorView<'_>) -> String {
    Sha256::digest(view.contiguous_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// One tensor as the corpus manifests (and `tpkg tensors --json`) describe
/// it: `{path, dtype, shape, stride, storage_offset, requires_grad,
/// parameter, sha256}`.
pub fn tensor_json(path: &str, view: &TensorView<'_>) -> serde_json::Value {
    serde_json::json!({
        "path": path,
        "dtype": view.dtype().name(),
        "shape": view.shape(),
        "stride": view.stride(),
        "storage_offset": view.storage_offset(),
        "requires_grad": view.spec().requires_grad,
        "parameter": view.spec().parameter,
        "sha256": tensor_sha256(view),
    })
}

/// Writing a pickle with its tensor storages failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteTensorsError {
    /// The storages and their bytes do not pair up.
    #[error("{storages} storages but {buffers} byte buffers")]
    Mismatch {
        /// Storages registered.
        storages: usize,
        /// Buffers given.
        buffers: usize,
    },
    /// Encoding the pickle failed.
    #[error(transparent)]
    Encode(#[from] tpkg_pickle::EncodeError),
    /// Writing a record failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// Writes the storages a [`TensorEncoder`] registered (`bytes[i]` for
/// `storages[i]`, each as `.data/<key>.storage`, once) and `graph` as a
/// protocol-3 pickle at `record`, as `PackageExporter.save_pickle` does.
pub fn write_tensor_pickle<D: tpkg_archive::Destination>(
    writer: &mut tpkg_archive::PackageWriter<D>,
    record: &str,
    graph: &ValueGraph,
    storages: &[StorageRef],
    bytes: &[impl AsRef<[u8]>],
) -> Result<(), WriteTensorsError> {
    if storages.len() != bytes.len() {
        return Err(WriteTensorsError::Mismatch {
            storages: storages.len(),
            buffers: bytes.len(),
        });
    }
    for (storage, data) in storages.iter().zip(bytes) {
        writer.write_record(&storage_record(&storage.key), data.as_ref())?;
    }
    writer.write_record(record, &tpkg_pickle::encode(graph, 3)?)?;
    Ok(())
}
