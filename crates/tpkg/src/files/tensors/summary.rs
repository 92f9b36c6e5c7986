//! One tensor summarised as the corpus manifests give it.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tpkg_archive::Progress;
use tpkg_tensors::{DType, TensorError, TensorView};

/// SHA-256 of a tensor's elements in row-major order as little-endian bytes
/// (the corpus manifests' `sha256`), as lowercase hex.
pub fn tensor_sha256(view: &TensorView<'_>) -> String {
    Sha256::digest(view.contiguous_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// One tensor as the corpus manifests (and `tpkg tensors --json`) describe
/// it; serialises to `{path, dtype, shape, stride, storage_offset,
/// requires_grad, parameter, sha256}` (`dtype` by PyTorch's name,
/// `float32`).
///
/// ```
/// use tpkg::tensors::{DType, TensorSummary};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let path = "../../tests/data/golden/torch-1.10.2/torch_save/state_dict_legacy.pt";
/// let file = tpkg::legacy::LegacyFile::open(path)?;
/// let tensors = file.tensors()?;
/// let (name, view) = &tensors[0];
/// let summary = TensorSummary::of(name, view);
/// assert_eq!((summary.dtype, &summary.shape[..]), (DType::Float32, &[8u64, 3, 3, 3][..]));
/// let json = serde_json::to_value(&summary)?;
/// assert_eq!((&json["path"], &json["dtype"]), (&"0.weight".into(), &"float32".into()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TensorSummary {
    /// Where the tensor is in the object.
    pub path: String,
    /// Its dtype (serialised as PyTorch's name).
    #[serde(serialize_with = "dtype_name")]
    pub dtype: DType,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its strides, in elements.
    pub stride: Vec<u64>,
    /// Its offset into its storage, in elements.
    pub storage_offset: u64,
    /// `requires_grad`.
    pub requires_grad: bool,
    /// Whether it is an `nn.Parameter`.
    pub parameter: bool,
    /// [`tensor_sha256`] of its elements.
    pub sha256: String,
}

impl TensorSummary {
    /// The tensor `view` at `path`, summarised (its elements hashed).
    pub fn of(path: &str, view: &TensorView<'_>) -> Self {
        TensorSummary {
            path: path.to_owned(),
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            stride: view.stride().to_vec(),
            storage_offset: view.storage_offset(),
            requires_grad: view.spec().requires_grad,
            parameter: view.spec().parameter,
            sha256: tensor_sha256(view),
        }
    }
}

fn dtype_name<S: serde::Serializer>(dtype: &DType, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(dtype.name())
}

impl super::PackageTensors<'_> {
    /// Every tensor summarised ([`TensorSummary::of`]), in order, hashed on
    /// all of the machine's cores; each storage's mapped pages are
    /// released once its tensor is hashed
    /// ([`release_storage`](super::PackageTensors::release_storage)), so
    /// summarising a file of any size holds a few storages' pages at a time.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let path = "../../tests/data/corpus/torch-2.13.0/tiny_state_dict.pt";
    /// let file = tpkg::formats::PyTorchFile::open(path)?;
    /// let tensors = file.tensors(None)?;
    /// let summaries = tensors.summaries()?;
    /// assert_eq!(summaries.len(), tensors.len());
    /// assert_eq!(summaries[0].sha256.len(), 64);
    /// # Ok(()) }
    /// ```
    pub fn summaries(&self) -> Result<Vec<TensorSummary>, TensorError> {
        self.summaries_with_progress(Progress::default())
    }

    /// [`summaries`](Self::summaries), reporting to `progress` after each
    /// tensor the bytes of elements hashed so far (of the sum of every
    /// tensor's elements' bytes), in increasing order whichever core
    /// finishes first.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Mutex;
    /// use tpkg::archive::{Progress, ProgressEvent};
    /// # let path = "../../tests/data/corpus/torch-2.13.0/tiny_state_dict.pt";
    /// let file = tpkg::formats::PyTorchFile::open(path)?;
    /// let tensors = file.tensors(None)?;
    /// let last = Mutex::new(None);
    /// let hook = |event: ProgressEvent| *last.lock().unwrap() = Some(event);
    /// tensors.summaries_with_progress(Progress::new(&hook))?;
    /// let last = last.lock().unwrap().unwrap();
    /// assert!(last.total > 0 && last.done == last.total);
    /// # Ok(()) }
    /// ```
    pub fn summaries_with_progress(
        &self,
        progress: Progress<'_>,
    ) -> Result<Vec<TensorSummary>, TensorError> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let bytes = |view: &TensorView<'_>| view.numel() * view.dtype().element_size() as u64;
        let total = if progress.is_active() {
            (0..self.len())
                .filter_map(|index| self.view(index).ok())
                .map(|view| bytes(&view))
                .sum()
        } else {
            0
        };
        let progress = progress.counter(total);
        let next = AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(self.len())
            .max(1);
        let summarise = || {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= self.len() {
                    return done;
                }
                let summary = self.view(index).map(|view| {
                    let summary = TensorSummary::of(self.path(index), &view);
                    self.release_storage(&view.spec().storage.key);
                    progress.add(bytes(&view));
                    summary
                });
                done.push((index, summary));
            }
        };
        let mut results: Vec<(usize, Result<TensorSummary, TensorError>)> =
            std::thread::scope(|scope| {
                let workers: Vec<_> = (1..threads).map(|_| scope.spawn(summarise)).collect();
                let mut results = summarise();
                for worker in workers {
                    match worker.join() {
                        Ok(done) => results.extend(done),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                results
            });
        results.sort_by_key(|(index, _)| *index);
        results.into_iter().map(|(_, summary)| summary).collect()
    }
}
