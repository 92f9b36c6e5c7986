//! A tensor's bytes: a bounds-checked view into its storage.

use std::borrow::Cow;

use crate::dtype::DType;
use crate::error::TensorError;
use crate::spec::TensorSpec;

/// One tensor over its storage's bytes (borrowed: views of one storage
/// share them, as in PyTorch). Creating it checks everything the bytes and
/// the rebuild call promise, so reading it cannot go out of bounds.
///
/// ```
/// use tpkg_tensors::{DType, StorageRef, TensorSpec, TensorView};
/// let storage: Vec<u8> = (0..6u32).flat_map(|x| (x as f32).to_le_bytes()).collect();
/// let spec = TensorSpec {
///     storage: StorageRef { key: "0".into(), dtype: DType::Float32, location: "cpu".into(), numel: 6, view: None },
///     dtype: DType::Float32,
///     storage_offset: 0,
///     shape: vec![3, 2],
///     stride: vec![1, 3], // a transposed 2x3
///     requires_grad: false,
///     parameter: false,
/// };
/// let view = TensorView::new(spec, "t", &storage).unwrap();
/// let values: Vec<f32> = view.contiguous_bytes().chunks(4)
///     .map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
/// assert_eq!(values, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
/// ```
#[derive(Debug, Clone)]
pub struct TensorView<'a> {
    spec: TensorSpec,
    storage: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// Checks `spec` against the storage's bytes: the length fits the
    /// storage dtype and the declared size, and every element the view can
    /// reach (offset plus the largest index) lies inside, with no overflow.
    /// For a legacy storage view (`spec.storage.view`), `storage` is the
    /// root storage's bytes; the view must lie inside them, and the tensor
    /// inside the view.
    pub fn new(spec: TensorSpec, path: &str, storage: &'a [u8]) -> Result<Self, TensorError> {
        let bytes = storage.len() as u64;
        let key = &spec.storage.key;
        let size_error = |reason: String| TensorError::StorageSize {
            key: key.clone(),
            bytes,
            reason,
        };
        let storage_element = spec.storage.dtype.element_size() as u64;
        if !bytes.is_multiple_of(storage_element) {
            return Err(size_error(format!(
                "that is not a whole number of {} elements",
                spec.storage.dtype
            )));
        }
        if bytes / storage_element != spec.storage.numel {
            return Err(size_error(format!(
                "the pickle declares {} elements of {}",
                spec.storage.numel, spec.storage.dtype
            )));
        }
        // A legacy storage view: the tensor sees only its slice of the root.
        let (storage, bytes, key) = match &spec.storage.view {
            None => (storage, bytes, key),
            Some(view) => {
                let end = u128::from(view.offset) + u128::from(view.numel);
                if end > u128::from(spec.storage.numel) {
                    return Err(size_error(format!(
                        "its view {:?} takes elements {}..{end} of its {}",
                        view.key, view.offset, spec.storage.numel
                    )));
                }
                // In bounds of `storage` (checked just above, and
                // `storage` holds `numel` elements), so no overflow.
                let start = view.offset as usize * storage_element as usize;
                let len = view.numel as usize * storage_element as usize;
                (&storage[start..start + len], len as u64, &view.key)
            }
        };
        let size_error = |reason: String| TensorError::StorageSize {
            key: key.clone(),
            bytes,
            reason,
        };
        let element = spec.dtype.element_size() as u64;
        if !bytes.is_multiple_of(element) {
            return Err(size_error(format!(
                "that is not a whole number of {} elements",
                spec.dtype
            )));
        }
        if spec.shape.len() != spec.stride.len() {
            return Err(TensorError::Malformed {
                path: path.to_owned(),
                reason: format!(
                    "{} sizes but {} strides",
                    spec.shape.len(),
                    spec.stride.len()
                ),
            });
        }
        let available = bytes / element;
        if !spec.shape.contains(&0) {
            // Largest reachable index: offset + sum((size - 1) * stride).
            let mut last = u128::from(spec.storage_offset);
            for (&size, &stride) in spec.shape.iter().zip(&spec.stride) {
                last += u128::from(size - 1) * u128::from(stride);
            }
            if last >= u128::from(available) {
                return Err(TensorError::OutOfBounds {
                    path: path.to_owned(),
                    key: key.clone(),
                    needed: last + 1,
                    available,
                });
            }
        }
        Ok(TensorView { spec, storage })
    }

    /// What the rebuild call said.
    pub fn spec(&self) -> &TensorSpec {
        &self.spec
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.spec.dtype
    }

    /// Sizes.
    pub fn shape(&self) -> &[u64] {
        &self.spec.shape
    }

    /// Strides, in elements.
    pub fn stride(&self) -> &[u64] {
        &self.spec.stride
    }

    /// Offset of the first element, in elements.
    pub fn storage_offset(&self) -> u64 {
        self.spec.storage_offset
    }

    /// Number of elements.
    pub fn numel(&self) -> u64 {
        self.spec.shape.iter().product()
    }

    /// The whole storage the view looks into (shared with other views); for
    /// a legacy storage view, the view's slice of its root storage.
    pub fn storage_bytes(&self) -> &'a [u8] {
        self.storage
    }

    /// Whether the elements lie in row-major order without gaps.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1u64;
        for (&size, &stride) in self.spec.shape.iter().zip(&self.spec.stride).rev() {
            if size != 1 && stride != expected {
                return false;
            }
            expected = expected.saturating_mul(size);
        }
        true
    }

    /// The elements in row-major order: borrowed when already contiguous,
    /// gathered otherwise (transposes, strides, expanded dimensions).
    pub fn contiguous_bytes(&self) -> Cow<'a, [u8]> {
        let element = self.spec.dtype.element_size();
        let numel = self.numel() as usize;
        let offset = self.spec.storage_offset as usize;
        if numel == 0 {
            return Cow::Borrowed(&[]);
        }
        if self.is_contiguous() {
            return Cow::Borrowed(&self.storage[offset * element..(offset + numel) * element]);
        }
        let dims = self.spec.shape.len();
        let mut out = Vec::with_capacity(numel * element);
        let mut index = vec![0u64; dims];
        for _ in 0..numel {
            let position: u64 = offset as u64
                + index
                    .iter()
                    .zip(&self.spec.stride)
                    .map(|(i, s)| i * s)
                    .sum::<u64>();
            let start = position as usize * element;
            out.extend_from_slice(&self.storage[start..start + element]);
            // Odometer increment, last dimension fastest.
            for dim in (0..dims).rev() {
                index[dim] += 1;
                if index[dim] < self.spec.shape[dim] {
                    break;
                }
                index[dim] = 0;
            }
        }
        Cow::Owned(out)
    }
}
