//! Converting a package's tensors (a state dict, or a whole module's state
//! dict) to safetensors or to a `torch.save` file, without Python.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use tpkg_archive::{
    ArchiveError, ArchiveLayout, AtomicFile, Durability, PackageWriter, Progress, WriteOptions,
};
use tpkg_pickle::{PyStr, Value, ValueGraph};
use tpkg_tensors::{DType, TensorEncoder, TensorError, TensorView};

use crate::tensors::PackageTensors;

/// What a conversion did, for the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertReport {
    /// Tensors written.
    pub tensors: usize,
    /// Storages written (`torch.save` keeps views sharing one storage).
    pub storages: usize,
    /// Tensors that were views (strided, offset, expanded, or sharing a
    /// storage with another tensor) and were written as contiguous copies,
    /// because safetensors stores each tensor's elements on their own.
    pub copied_contiguous: Vec<String>,
}

/// A conversion that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The pickle holds no tensors.
    #[error("the pickle holds no tensors to convert")]
    NoTensors,
    /// A dtype the target format cannot store.
    #[error("tensor {path:?} has dtype {dtype}, which safetensors cannot store")]
    UnsupportedDtype {
        /// The tensor.
        path: String,
        /// Its dtype.
        dtype: DType,
    },
    /// A tensor could not be read.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// Writing the output failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Copying a tensor out of the package failed.
    #[error(transparent)]
    Load(#[from] crate::tensors::LoadTensorsError),
    /// Encoding the `torch.save` pickle failed.
    #[error(transparent)]
    Pickle(#[from] tpkg_pickle::EncodeError),
    /// The safetensors writer failed.
    #[error("{path}: writing safetensors failed: {reason}")]
    Safetensors {
        /// The output.
        path: PathBuf,
        /// What the safetensors crate said.
        reason: String,
    },
    /// An I/O error on the output.
    #[error("{path}")]
    Io {
        /// The output.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn safetensors_dtype(dtype: DType) -> Option<safetensors::Dtype> {
    use safetensors::Dtype as S;
    Some(match dtype {
        DType::Float32 => S::F32,
        DType::Float64 => S::F64,
        DType::Float16 => S::F16,
        DType::BFloat16 => S::BF16,
        DType::UInt8 => S::U8,
        DType::Int8 => S::I8,
        DType::Int16 => S::I16,
        DType::Int32 => S::I32,
        DType::Int64 => S::I64,
        DType::UInt16 => S::U16,
        DType::UInt32 => S::U32,
        DType::UInt64 => S::U64,
        DType::Bool => S::BOOL,
        DType::Complex64 => S::C64,
        DType::Float8E4M3Fn => S::F8_E4M3,
        DType::Float8E5M2 => S::F8_E5M2,
        DType::Float8E4M3FnUz => S::F8_E4M3FNUZ,
        DType::Float8E5M2FnUz => S::F8_E5M2FNUZ,
        _ => return None,
    })
}

/// How a conversion writes its output, and whom it tells how far it got.
///
/// ```
/// use tpkg::archive::{Progress, ProgressEvent};
///
/// let hook = |event: ProgressEvent| eprint!("\r{} of {} bytes", event.done, event.total);
/// let options = tpkg::convert::ConvertOptions::default()
///     .with_durable(false)
///     .with_progress(Progress::new(&hook));
/// assert!(!options.durable);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConvertOptions<'a> {
    /// fsync the output before renaming it into place (see
    /// [`WriteOptions::durable`]); on by default.
    pub durable: bool,
    /// Called after each tensor (safetensors) or storage (`torch.save`)
    /// is written, with the bytes of tensor data written so far; none by
    /// default.
    pub progress: Progress<'a>,
}

impl Default for ConvertOptions<'_> {
    fn default() -> Self {
        ConvertOptions {
            durable: true,
            progress: Progress::default(),
        }
    }
}

impl<'a> ConvertOptions<'a> {
    /// Whether to fsync the output before renaming it into place.
    pub fn with_durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Reports progress to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: Progress<'a>) -> Self {
        self.progress = progress;
        self
    }
}

/// One tensor as the safetensors header sees it: dtype, shape and length.
/// Its data is not handed to the safetensors crate (which would copy it
/// into one buffer); [`to_safetensors`] streams it into the file instead.
struct HeaderEntry {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    len: usize,
}

impl safetensors::View for &HeaderEntry {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&[])
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

/// Whether a view covers exactly its whole storage, in order.
fn owns_storage(view: &TensorView<'_>) -> bool {
    view.is_contiguous()
        && view.storage_offset() == 0
        && view.numel() as usize * view.dtype().element_size() == view.storage_bytes().len()
}

/// Tensors smaller than this go through the output's buffer; larger ones
/// are copied by the kernel from the package file.
const KERNEL_COPY_MIN: u64 = 1 << 20;

/// With fsync, the disk is asked to start writing the output every this
/// many bytes copied ([`AtomicFile::start_writeback`]).
const WRITEBACK_STEP: u64 = 32 << 20;

/// Writes every tensor of `tensors` to a safetensors file at `out`, named
/// by its path (a state-dict key). Views are copied contiguous (listed in
/// the report). The file appears complete or not at all, and is fsynced.
pub fn to_safetensors(
    tensors: &PackageTensors<'_>,
    out: &Path,
) -> Result<ConvertReport, ConvertError> {
    to_safetensors_with(tensors, out, ConvertOptions::default())
}

/// [`to_safetensors`] with options.
///
/// The safetensors crate lays out the header (its tensor order, offsets
/// and padding); the data is streamed after it in that order. Large
/// contiguous tensors are copied by the kernel from the package file to
/// the output (`copy_file_range`, as `cp` does), so converting a
/// gigabyte touches no page of it in this process.
pub fn to_safetensors_with(
    tensors: &PackageTensors<'_>,
    out: &Path,
    options: ConvertOptions<'_>,
) -> Result<ConvertReport, ConvertError> {
    if tensors.is_empty() {
        return Err(ConvertError::NoTensors);
    }
    let mut report = ConvertReport::default();
    let mut entries = Vec::with_capacity(tensors.len());
    for index in 0..tensors.len() {
        let view = tensors.view(index)?;
        let path = tensors.path(index).to_owned();
        let dtype = safetensors_dtype(view.dtype()).ok_or(ConvertError::UnsupportedDtype {
            path: path.clone(),
            dtype: view.dtype(),
        })?;
        if !owns_storage(&view) {
            report.copied_contiguous.push(path.clone());
        }
        let entry = HeaderEntry {
            dtype,
            shape: view.shape().iter().map(|&d| d as usize).collect(),
            len: view.numel() as usize * view.dtype().element_size(),
        };
        entries.push((path, entry));
    }
    report.tensors = entries.len();
    report.storages = entries.len();
    let safetensors_error = |reason: String| ConvertError::Safetensors {
        path: out.to_path_buf(),
        reason,
    };
    // Length prefix and header: the data of a `HeaderEntry` is empty.
    let header = safetensors::serialize(
        entries.iter().map(|(name, entry)| (name.as_str(), entry)),
        None,
    )
    .map_err(|error| safetensors_error(error.to_string()))?;
    let order = data_order(&header, &entries).map_err(safetensors_error)?;

    let io_error = |source| ConvertError::Io {
        path: out.to_path_buf(),
        source,
    };
    let durability = if options.durable {
        Durability::Fsync
    } else {
        Durability::NoFsync
    };
    let mut file = AtomicFile::create(out, durability).map_err(io_error)?;
    file.write_all(&header).map_err(io_error)?;
    let total = entries.iter().map(|(_, entry)| entry.len as u64).sum();
    let progress = options.progress.counter(total);
    // Bytes copied since write-back was last started (fsynced outputs).
    let mut unsent = 0;
    for index in order {
        let len = entries[index].1.len as u64;
        if len >= KERNEL_COPY_MIN {
            tensors.copy_tensor_to(index, file.as_file().map_err(io_error)?)?;
            unsent += len;
            if unsent >= WRITEBACK_STEP {
                file.start_writeback().map_err(io_error)?;
                unsent = 0;
            }
        } else {
            let view = tensors.view(index)?;
            file.write_all(&view.contiguous_bytes()).map_err(io_error)?;
        }
        progress.add(len);
    }
    file.commit().map_err(io_error)?;
    Ok(report)
}

/// The tensors in the order of their data in the file, read back from the
/// header the safetensors crate wrote (`data_offsets` of each name).
fn data_order(header: &[u8], entries: &[(String, HeaderEntry)]) -> Result<Vec<usize>, String> {
    let json = header
        .get(8..)
        .ok_or("the header is shorter than its length prefix")?;
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(json).map_err(|error| error.to_string())?;
    let mut order = Vec::with_capacity(entries.len());
    for (index, (name, _)) in entries.iter().enumerate() {
        let begin = parsed
            .get(name)
            .and_then(|info| info["data_offsets"][0].as_u64())
            .ok_or_else(|| format!("the header has no data offsets for {name:?}"))?;
        order.push((begin, index));
    }
    order.sort_unstable();
    Ok(order.into_iter().map(|(_, index)| index).collect())
}

/// Writes the tensors as a `torch.save` file (an `OrderedDict` of name to
/// tensor) that `torch.load(weights_only=True)` opens. Storages, strides,
/// offsets, sharing, `requires_grad` and Parameters are kept as they were.
pub fn to_torch_save(
    tensors: &PackageTensors<'_>,
    out: &Path,
) -> Result<ConvertReport, ConvertError> {
    to_torch_save_with(tensors, out, ConvertOptions::default())
}

/// [`to_torch_save`] with options.
pub fn to_torch_save_with(
    tensors: &PackageTensors<'_>,
    out: &Path,
    options: ConvertOptions<'_>,
) -> Result<ConvertReport, ConvertError> {
    if tensors.is_empty() {
        return Err(ConvertError::NoTensors);
    }
    let mut encoder = TensorEncoder::new();
    let mut graph = ValueGraph::new(Value::None);
    let mut items = Vec::with_capacity(tensors.len());
    // Each storage's bytes and its key in the package.
    let mut storage_bytes: Vec<(&[u8], String)> = Vec::new();
    for index in 0..tensors.len() {
        let view = tensors.view(index)?;
        let spec = view.spec();
        let node = encoder.tensor_like(&mut graph, spec, &spec.storage.key);
        if encoder.storages().len() > storage_bytes.len() {
            storage_bytes.push((view.storage_bytes(), spec.storage.key.clone()));
        }
        let key = graph.add(Value::Str(PyStr::from(tensors.path(index))));
        items.push((key, node));
    }
    let root = graph.add(Value::OrderedDict { items, state: None });
    graph.set_root(root);
    let mut write_options = WriteOptions::default().with_layout(ArchiveLayout::TorchSave);
    if !options.durable {
        write_options = write_options.without_fsync();
    }
    let mut writer = PackageWriter::create(out, write_options)?;
    writer.write_record("data.pkl", &tpkg_pickle::encode(&graph, 2)?)?;
    let total = storage_bytes
        .iter()
        .map(|(bytes, _)| bytes.len() as u64)
        .sum();
    let progress = options.progress.counter(total);
    for (storage, (bytes, key)) in encoder.storages().iter().zip(&storage_bytes) {
        writer.write_record(&format!("data/{}", storage.key), bytes)?;
        // Written: the process need not keep its pages of the input.
        tensors.release_storage(key);
        progress.add(bytes.len() as u64);
    }
    writer.finish()?;
    Ok(ConvertReport {
        tensors: tensors.len(),
        storages: storage_bytes.len(),
        copied_contiguous: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpkg_tensors::{StorageRef, TensorSpec};

    /// A tensor with its data, as safetensors' own serializer takes it.
    struct Full {
        dtype: safetensors::Dtype,
        shape: Vec<usize>,
        data: Vec<u8>,
    }

    impl safetensors::View for &Full {
        fn dtype(&self) -> safetensors::Dtype {
            self.dtype
        }
        fn shape(&self) -> &[usize] {
            &self.shape
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&self.data)
        }
        fn data_len(&self) -> usize {
            self.data.len()
        }
    }

    fn spec(
        storage: &StorageRef,
        dtype: DType,
        offset: u64,
        shape: &[u64],
        stride: &[u64],
    ) -> TensorSpec {
        TensorSpec {
            storage: storage.clone(),
            dtype,
            storage_offset: offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
            requires_grad: false,
            parameter: false,
        }
    }

    /// A package whose state dict mixes what a conversion meets: a large
    /// tensor owning its storage, a large contiguous slice of it at an
    /// offset, a transposed view, small tensors of other dtypes.
    fn package(dir: &Path) -> PathBuf {
        let mut encoder = TensorEncoder::new();
        let big_numel = 600_000u64; // 2.4 MB of f32: copied by the kernel
        let big = encoder.storage("big", DType::Float32, big_numel, "cpu");
        let small = encoder.storage("small", DType::Int64, 6, "cpu");
        let half = encoder.storage("half", DType::Float16, 4, "cpu");
        let bytes: Vec<Vec<u8>> = vec![
            (0..big_numel * 4).map(|i| (i * 7 % 251) as u8).collect(),
            (0..48u8).collect(),
            vec![1, 60, 2, 61, 3, 62, 4, 63],
        ];
        let tensors = [
            (
                "layer.weight",
                spec(&big, DType::Float32, 0, &[600, 1000], &[1000, 1]),
            ),
            (
                "layer.tail",
                spec(&big, DType::Float32, 200_000, &[400_000], &[1]),
            ),
            ("counts", spec(&small, DType::Int64, 0, &[6], &[1])),
            ("counts_t", spec(&small, DType::Int64, 0, &[3, 2], &[1, 3])),
            ("bias", spec(&half, DType::Float16, 0, &[4], &[1])),
        ];
        let mut graph = ValueGraph::new(Value::None);
        let mut items = Vec::new();
        for (name, spec) in &tensors {
            let node = encoder.tensor(&mut graph, spec);
            let key = graph.add(Value::Str(PyStr::from(*name)));
            items.push((key, node));
        }
        write_state_dict(&dir.join("state.pt"), graph, items, &encoder, &bytes)
    }

    /// Writes `{name: tensor}` (`items`) as `model/state.pkl` at `path`.
    fn write_state_dict(
        path: &Path,
        mut graph: ValueGraph,
        items: Vec<(tpkg_pickle::ValueId, tpkg_pickle::ValueId)>,
        encoder: &TensorEncoder,
        bytes: &[Vec<u8>],
    ) -> PathBuf {
        let root = graph.add(Value::OrderedDict { items, state: None });
        graph.set_root(root);
        let mut writer = PackageWriter::create(path, WriteOptions::default()).unwrap();
        crate::tensors::write_tensor_pickle(
            &mut writer,
            "model/state.pkl",
            &graph,
            encoder.storages(),
            bytes,
        )
        .unwrap();
        writer.finish().unwrap();
        path.to_path_buf()
    }

    #[test]
    fn safetensors_output_is_what_the_safetensors_crate_serializes() {
        let dir = tempfile::tempdir().unwrap();
        let path = package(dir.path());
        let reader = tpkg_archive::PackageReader::open(&path).unwrap();
        let tensors = PackageTensors::load(&reader, "model/state.pkl").unwrap();
        let full: Vec<(String, Full)> = (0..tensors.len())
            .map(|index| {
                let view = tensors.view(index).unwrap();
                let full = Full {
                    dtype: safetensors_dtype(view.dtype()).unwrap(),
                    shape: view.shape().iter().map(|&d| d as usize).collect(),
                    data: view.contiguous_bytes().into_owned(),
                };
                (tensors.path(index).to_owned(), full)
            })
            .collect();
        let expected =
            safetensors::serialize(full.iter().map(|(name, full)| (name.as_str(), full)), None)
                .unwrap();
        for durable in [true, false] {
            let out = dir.path().join(format!("state-{durable}.safetensors"));
            let options = ConvertOptions::default().with_durable(durable);
            let report = to_safetensors_with(&tensors, &out, options).unwrap();
            assert!(
                std::fs::read(&out).unwrap() == expected,
                "durable = {durable}"
            );
            assert_eq!(report.tensors, 5);
            assert_eq!(report.copied_contiguous, ["layer.tail", "counts_t"]);
        }
    }

    #[test]
    fn progress_reports_increasing_bytes_of_tensor_data_ending_at_the_total() {
        use std::sync::Mutex;
        use tpkg_archive::ProgressEvent;

        let dir = tempfile::tempdir().unwrap();
        let path = package(dir.path());
        let reader = tpkg_archive::PackageReader::open(&path).unwrap();
        let tensors = PackageTensors::load(&reader, "model/state.pkl").unwrap();
        // safetensors: every tensor's elements; torch.save: each storage once.
        let safetensors_total = (600_000 + 400_000) * 4 + 6 * 8 + 6 * 8 + 4 * 2;
        let torch_save_total = 600_000 * 4 + 48 + 8;
        for (to_safetensors, total) in [(true, safetensors_total), (false, torch_save_total)] {
            let seen = Mutex::new(Vec::new());
            let hook = |event: ProgressEvent| seen.lock().unwrap().push(event);
            let options = ConvertOptions::default()
                .with_durable(false)
                .with_progress(Progress::new(&hook));
            let out = dir.path().join(format!("out-{to_safetensors}"));
            if to_safetensors {
                to_safetensors_with(&tensors, &out, options).unwrap();
            } else {
                to_torch_save_with(&tensors, &out, options).unwrap();
            }
            let seen = seen.into_inner().unwrap();
            assert!(seen.len() > 2, "{seen:?}");
            assert!(seen.iter().all(|event| event.total == total), "{seen:?}");
            assert!(seen.windows(2).all(|pair| pair[0].done <= pair[1].done));
            assert_eq!(seen.last().map(|event| event.done), Some(total));
        }
    }

    #[test]
    fn summaries_report_increasing_bytes_hashed_ending_at_the_total() {
        use std::sync::Mutex;
        use tpkg_archive::ProgressEvent;

        let dir = tempfile::tempdir().unwrap();
        let path = package(dir.path());
        let reader = tpkg_archive::PackageReader::open(&path).unwrap();
        let tensors = PackageTensors::load(&reader, "model/state.pkl").unwrap();
        let seen = Mutex::new(Vec::new());
        let hook = |event: ProgressEvent| seen.lock().unwrap().push(event);
        let summaries = tensors
            .summaries_with_progress(Progress::new(&hook))
            .unwrap();
        assert_eq!(summaries, tensors.summaries().unwrap());
        let seen = seen.into_inner().unwrap();
        let total = (600_000 + 400_000) * 4 + 6 * 8 + 6 * 8 + 4 * 2;
        assert_eq!(seen.len(), tensors.len() + 1);
        assert!(seen.iter().all(|event| event.total == total), "{seen:?}");
        assert!(seen.windows(2).all(|pair| pair[0].done <= pair[1].done));
        assert_eq!(seen.last().map(|event| event.done), Some(total));
    }

    #[test]
    fn read_storage_copies_each_storage_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = package(dir.path());
        let reader = tpkg_archive::PackageReader::open(&path).unwrap();
        let tensors = PackageTensors::load(&reader, "model/state.pkl").unwrap();
        for index in 0..tensors.len() {
            let view = tensors.view(index).unwrap();
            let owned = tensors.read_storage(&view.spec().storage.key).unwrap();
            assert!(owned == view.storage_bytes(), "{}", tensors.path(index));
        }
        assert!(matches!(
            tensors.read_storage("no-such-key"),
            Err(ArchiveError::RecordNotFound { .. })
        ));
        let all = tensors.read_storages().unwrap();
        assert_eq!(all.len(), 3);
        for key in tensors.storage_keys() {
            assert!(
                all[key] == tensors.read_storage(key).unwrap(),
                "storage {key}"
            );
        }
    }

    #[cfg(feature = "tch")]
    #[test]
    fn to_tch_copies_every_tensor_in_order_and_views_share_their_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = package(dir.path());
        let reader = tpkg_archive::PackageReader::open(&path).unwrap();
        let tensors = PackageTensors::load(&reader, "model/state.pkl").unwrap();
        let copied = tensors.to_tch().unwrap();
        assert_eq!(copied.len(), tensors.len());
        for (index, tensor) in copied.iter().enumerate() {
            let view = tensors.view(index).unwrap();
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            assert_eq!(tensor.size(), shape, "{}", tensors.path(index));
            let mut bytes = vec![0u8; view.contiguous_bytes().len()];
            tensor.contiguous().copy_data_u8(&mut bytes, tensor.numel());
            assert!(
                bytes == view.contiguous_bytes().as_ref(),
                "{}",
                tensors.path(index)
            );
        }
        // layer.weight and layer.tail view one storage: one buffer.
        let (weight, tail) = (&copied[0], &copied[1]);
        assert_eq!(
            tail.data_ptr() as usize - weight.data_ptr() as usize,
            200_000 * 4,
            "the tail is a view of the weight's buffer"
        );
    }

    #[test]
    fn read_storages_splits_large_archives_across_threads_and_loses_nothing() {
        // 72 MiB in storages of uneven sizes: past the one-thread limit.
        let dir = tempfile::tempdir().unwrap();
        let sizes = [30u64 << 20, 20 << 20, 12 << 20, 6 << 20, 4 << 20, 0, 7];
        let mut encoder = TensorEncoder::new();
        let mut graph = ValueGraph::new(Value::None);
        let mut items = Vec::new();
        let mut bytes = Vec::new();
        for (index, size) in sizes.iter().enumerate() {
            let storage = encoder.storage(&index.to_string(), DType::UInt8, *size, "cpu");
            let node = encoder.tensor(&mut graph, &spec(&storage, DType::UInt8, 0, &[*size], &[1]));
            let key = graph.add(Value::Str(PyStr::from(format!("t{index}"))));
            items.push((key, node));
            bytes.push(vec![index as u8 + 1; *size as usize]);
        }
        let path = write_state_dict(&dir.path().join("big.pt"), graph, items, &encoder, &bytes);
        let reader = tpkg_archive::PackageReader::open(&path).unwrap();
        let tensors = PackageTensors::load(&reader, "model/state.pkl").unwrap();
        let all = tensors.read_storages().unwrap();
        assert_eq!(all.len(), sizes.len());
        for (index, expected) in bytes.iter().enumerate() {
            assert!(all[&index.to_string()] == *expected, "storage {index}");
        }
    }
}
