//! Converting a package's tensors (a state dict, or a whole module's state
//! dict) to safetensors or to a `torch.save` file, without Python.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use tpkg_archive::{ArchiveError, ArchiveLayout, PackageWriter, WriteOptions};
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

/// One tensor as safetensors sees it.
struct SafetensorsView<'a> {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl safetensors::View for &SafetensorsView<'_> {
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

/// Whether a view covers exactly its whole storage, in order.
fn owns_storage(view: &TensorView<'_>) -> bool {
    view.is_contiguous()
        && view.storage_offset() == 0
        && view.numel() as usize * view.dtype().element_size() == view.storage_bytes().len()
}

/// Writes every tensor of `tensors` to a safetensors file at `out`, named
/// by its path (a state-dict key). Views are copied contiguous (listed in
/// the report). The file appears complete or not at all.
pub fn to_safetensors(
    tensors: &PackageTensors<'_>,
    out: &Path,
) -> Result<ConvertReport, ConvertError> {
    if tensors.is_empty() {
        return Err(ConvertError::NoTensors);
    }
    let mut report = ConvertReport::default();
    let mut views = Vec::with_capacity(tensors.len());
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
        views.push((
            path,
            SafetensorsView {
                dtype,
                shape: view.shape().iter().map(|&d| d as usize).collect(),
                data: view.contiguous_bytes(),
            },
        ));
    }
    report.tensors = views.len();
    report.storages = views.len();
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io_error = |source| ConvertError::Io {
        path: out.to_path_buf(),
        source,
    };
    let temp = tempfile::Builder::new()
        .prefix(".tpkg-")
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(io_error)?;
    safetensors::serialize_to_file(
        views.iter().map(|(name, view)| (name.as_str(), view)),
        None,
        temp.path(),
    )
    .map_err(|error| ConvertError::Safetensors {
        path: out.to_path_buf(),
        reason: error.to_string(),
    })?;
    temp.as_file().sync_all().map_err(io_error)?;
    temp.persist(out).map_err(|error| io_error(error.error))?;
    Ok(report)
}

/// Writes the tensors as a `torch.save` file (an `OrderedDict` of name to
/// tensor) that `torch.load(weights_only=True)` opens. Storages, strides,
/// offsets, sharing, `requires_grad` and Parameters are kept as they were.
pub fn to_torch_save(
    tensors: &PackageTensors<'_>,
    out: &Path,
) -> Result<ConvertReport, ConvertError> {
    if tensors.is_empty() {
        return Err(ConvertError::NoTensors);
    }
    let mut encoder = TensorEncoder::new();
    let mut graph = ValueGraph::new(Value::None);
    let mut items = Vec::with_capacity(tensors.len());
    let mut storage_bytes: Vec<&[u8]> = Vec::new();
    for index in 0..tensors.len() {
        let view = tensors.view(index)?;
        let spec = view.spec();
        let node = encoder.tensor_like(&mut graph, spec, &spec.storage.key);
        if encoder.storages().len() > storage_bytes.len() {
            storage_bytes.push(view.storage_bytes());
        }
        let key = graph.add(Value::Str(PyStr::from(tensors.path(index))));
        items.push((key, node));
    }
    let root = graph.add(Value::OrderedDict { items, state: None });
    graph.set_root(root);
    let options = WriteOptions {
        layout: ArchiveLayout::TorchSave,
        ..WriteOptions::default()
    };
    let mut writer = PackageWriter::create(out, options)?;
    writer.write_record("data.pkl", &tpkg_pickle::encode(&graph, 2)?)?;
    for (storage, bytes) in encoder.storages().iter().zip(&storage_bytes) {
        writer.write_record(&format!("data/{}", storage.key), bytes)?;
    }
    writer.finish()?;
    Ok(ConvertReport {
        tensors: tensors.len(),
        storages: storage_bytes.len(),
        copied_contiguous: Vec::new(),
    })
}
