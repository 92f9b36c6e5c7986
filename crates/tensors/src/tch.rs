//! `tch::Tensor`s in and out (feature `tch`).
//!
//! Reading makes one libtorch buffer per storage and every tensor a strided
//! view of it, so tensors that shared a storage in PyTorch share it here too.
//! Writing finds the storage each tch tensor views (its data pointer minus
//! its offset) so views of one buffer become one storage record.

use std::collections::HashMap;

use tch::{Kind, Tensor};
use tpkg_pickle::{ValueGraph, ValueId};

use crate::dtype::DType;
use crate::encode::TensorEncoder;
use crate::view::TensorView;

/// A conversion between tpkg and tch that cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TchError {
    /// tch has no `Kind` for this dtype (unsigned 16/32/64-bit), or tpkg no
    /// dtype for this kind (quantized).
    #[error("tensor {path:?}: no tch/PyTorch dtype match for {what}")]
    UnsupportedDtype {
        /// The tensor.
        path: String,
        /// The dtype or kind.
        what: String,
    },
    /// libtorch refused an operation.
    #[error("tensor {path:?}: libtorch: {source}")]
    Torch {
        /// The tensor.
        path: String,
        /// libtorch's error.
        #[source]
        source: tch::TchError,
    },
}

/// tch's `Kind` for a dtype.
pub fn kind(dtype: DType) -> Option<Kind> {
    Some(match dtype {
        DType::Float32 => Kind::Float,
        DType::Float64 => Kind::Double,
        DType::Float16 => Kind::Half,
        DType::BFloat16 => Kind::BFloat16,
        DType::UInt8 => Kind::Uint8,
        DType::Int8 => Kind::Int8,
        DType::Int16 => Kind::Int16,
        DType::Int32 => Kind::Int,
        DType::Int64 => Kind::Int64,
        DType::Bool => Kind::Bool,
        DType::Complex32 => Kind::ComplexHalf,
        DType::Complex64 => Kind::ComplexFloat,
        DType::Complex128 => Kind::ComplexDouble,
        DType::Float8E4M3Fn => Kind::Float8e4m3fn,
        DType::Float8E5M2 => Kind::Float8e5m2,
        DType::Float8E4M3FnUz => Kind::Float8e4m3fnuz,
        DType::Float8E5M2FnUz => Kind::Float8e5m2fnuz,
        DType::UInt16 | DType::UInt32 | DType::UInt64 => return None,
    })
}

/// The dtype of a tch `Kind`.
pub fn dtype(kind: Kind) -> Option<DType> {
    DType::ALL
        .into_iter()
        .find(|d| self::kind(*d) == Some(kind))
}

fn to_i64(values: &[u64]) -> Vec<i64> {
    values
        .iter()
        .map(|&v| i64::try_from(v).unwrap_or(i64::MAX))
        .collect()
}

/// Copies the views into libtorch: one buffer per (storage, dtype), each
/// view an `as_strided` view of it with its shape, strides and offset, and
/// `requires_grad` as saved.
pub fn to_tch(views: &[(&str, TensorView<'_>)]) -> Result<Vec<Tensor>, TchError> {
    make_tch(views, false)
}

/// Like [`to_tch`], but without copying: each storage's bytes (a slice of
/// the archive's memory map) become the libtorch buffer. Storages whose
/// bytes are not aligned to their element size are copied instead.
///
/// # Safety
///
/// The returned tensors (and every tensor derived from them that shares
/// their memory) borrow the storage bytes without a lifetime libtorch can
/// track: the caller must keep the `PackageReader` (and the file) alive and
/// unchanged for as long as any of them lives, and must not modify them in
/// place (the map is read-only; `.copy()` first to get writable tensors).
pub unsafe fn to_tch_borrowed(views: &[(&str, TensorView<'_>)]) -> Result<Vec<Tensor>, TchError> {
    make_tch(views, true)
}

fn make_tch(views: &[(&str, TensorView<'_>)], borrow: bool) -> Result<Vec<Tensor>, TchError> {
    let mut buffers: HashMap<(String, DType), Tensor> = HashMap::new();
    let mut out = Vec::with_capacity(views.len());
    for (path, view) in views {
        let torch_error = |source| TchError::Torch {
            path: (*path).to_owned(),
            source,
        };
        let dtype = view.dtype();
        let kind = kind(dtype).ok_or_else(|| TchError::UnsupportedDtype {
            path: (*path).to_owned(),
            what: dtype.name().to_owned(),
        })?;
        // One buffer per storage the views see: a legacy storage view is
        // a storage of its own (its slice of the root), as in PyTorch.
        let storage = &view.spec().storage;
        let seen = storage.view.as_ref().map_or(&storage.key, |v| &v.key);
        let key = (seen.clone(), dtype);
        if !buffers.contains_key(&key) {
            let bytes = view.storage_bytes();
            let numel = (bytes.len() / dtype.element_size()) as i64;
            let aligned = (bytes.as_ptr() as usize).is_multiple_of(dtype.element_size());
            let buffer = if borrow && aligned && !bytes.is_empty() {
                // SAFETY: `bytes` holds `numel` elements of `kind`, aligned
                // (checked above); the caller of `to_tch_borrowed` keeps
                // them alive and unmodified while the tensors live.
                unsafe {
                    Tensor::f_from_blob(bytes.as_ptr(), &[numel], &[1], kind, tch::Device::Cpu)
                }
            } else {
                Tensor::f_from_data_size(bytes, &[numel], kind)
            }
            .map_err(torch_error)?;
            buffers.insert(key.clone(), buffer);
        }
        let buffer = &buffers[&key];
        let tensor = buffer
            .f_as_strided(
                to_i64(view.shape()),
                to_i64(view.stride()),
                Some(i64::try_from(view.storage_offset()).unwrap_or(i64::MAX)),
            )
            .map_err(torch_error)?;
        let tensor = if view.spec().requires_grad {
            tensor.set_requires_grad(true)
        } else {
            tensor
        };
        out.push(tensor);
    }
    Ok(out)
}

/// Adds tch tensors to `graph` as PyTorch pickles them, and returns their
/// nodes and the bytes of each storage in `encoder`'s key order. Tensors
/// that view one libtorch buffer share one storage, which covers every
/// element any of them reaches. `parameters[i]` marks tensor `i` as an
/// `nn.Parameter`.
pub fn encode_tch(
    graph: &mut ValueGraph,
    encoder: &mut TensorEncoder,
    tensors: &[(&str, &Tensor, bool)],
) -> Result<(Vec<ValueId>, Vec<Vec<u8>>), TchError> {
    // Pass 1: each tensor's buffer (base pointer) and how far it reaches.
    let mut cpu = Vec::with_capacity(tensors.len());
    let mut extent: HashMap<(usize, DType), u64> = HashMap::new();
    for (path, tensor, _) in tensors {
        let torch_error = |source| TchError::Torch {
            path: (*path).to_owned(),
            source,
        };
        let tensor = tensor.f_to_device(tch::Device::Cpu).map_err(torch_error)?;
        let dtype = dtype(tensor.kind()).ok_or_else(|| TchError::UnsupportedDtype {
            path: (*path).to_owned(),
            what: format!("{:?}", tensor.kind()),
        })?;
        let element = dtype.element_size();
        let offset = tensor.storage_offset().max(0) as u64;
        let base = (tensor.data_ptr() as usize).wrapping_sub(offset as usize * element);
        let shape: Vec<u64> = tensor.size().iter().map(|&d| d.max(0) as u64).collect();
        let stride: Vec<u64> = tensor.stride().iter().map(|&s| s.max(0) as u64).collect();
        let reach = if shape.contains(&0) {
            offset
        } else {
            offset
                + 1
                + shape
                    .iter()
                    .zip(&stride)
                    .map(|(d, s)| (d - 1) * s)
                    .sum::<u64>()
        };
        let entry = extent.entry((base, dtype)).or_insert(0);
        *entry = (*entry).max(reach);
        cpu.push((tensor, dtype, base, offset, shape, stride));
    }
    // Pass 2: nodes, and each storage's bytes read through a view of the
    // whole buffer (libtorch checks the bounds).
    let mut nodes = Vec::with_capacity(tensors.len());
    let mut storages: Vec<Vec<u8>> = Vec::new();
    for ((path, _, parameter), (tensor, dtype, base, offset, shape, stride)) in
        tensors.iter().zip(&cpu)
    {
        let torch_error = |source| TchError::Torch {
            path: (*path).to_owned(),
            source,
        };
        let numel = extent[&(*base, *dtype)];
        let storage = encoder.storage(&format!("tch:{base:x}:{dtype}"), *dtype, numel, "cpu");
        let index: usize = storage.key.parse().unwrap_or(usize::MAX);
        if index == storages.len() {
            let whole = tensor
                .f_as_strided([numel as i64], [1i64], Some(0))
                .map_err(torch_error)?
                .f_contiguous()
                .map_err(torch_error)?;
            let mut bytes = vec![0u8; numel as usize * dtype.element_size()];
            whole
                .f_copy_data_u8(&mut bytes, numel as usize)
                .map_err(torch_error)?;
            storages.push(bytes);
        }
        nodes.push(encoder.tensor(
            graph,
            &crate::spec::TensorSpec {
                storage,
                dtype: *dtype,
                storage_offset: *offset,
                shape: shape.clone(),
                stride: stride.clone(),
                requires_grad: tensor.requires_grad(),
                parameter: *parameter,
            },
        ));
    }
    Ok((nodes, storages))
}

/// What [`fill_var_store`] matched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillReport {
    /// Variables copied.
    pub filled: usize,
    /// Variables of the store with no tensor of that name.
    pub missing: Vec<String>,
    /// Tensors with no variable of that name (e.g. `num_batches_tracked`,
    /// which tch's batch norm does not keep).
    pub unexpected: Vec<String>,
}

/// Copies tensors into the variables of a tch `VarStore` by name (a state
/// dict into a model built with tch, e.g. `tch::vision::resnet::resnet18`).
/// Shapes must match.
pub fn fill_var_store(
    store: &tch::nn::VarStore,
    named: &[(&str, Tensor)],
) -> Result<FillReport, TchError> {
    let variables = store.variables();
    let mut report = FillReport::default();
    let mut used = std::collections::HashSet::new();
    for (name, source) in named {
        match variables.get(*name) {
            Some(variable) => {
                let torch_error = |source| TchError::Torch {
                    path: (*name).to_owned(),
                    source,
                };
                if variable.size() != source.size() {
                    return Err(TchError::UnsupportedDtype {
                        path: (*name).to_owned(),
                        what: format!(
                            "shape {:?} into a variable of shape {:?}",
                            source.size(),
                            variable.size()
                        ),
                    });
                }
                let source = source.f_to_kind(variable.kind()).map_err(torch_error)?;
                tch::no_grad(|| variable.shallow_clone().f_copy_(&source)).map_err(torch_error)?;
                report.filled += 1;
                used.insert(*name);
            }
            None => report.unexpected.push((*name).to_owned()),
        }
    }
    let mut missing: Vec<String> = variables
        .keys()
        .filter(|name| !used.contains(name.as_str()))
        .cloned()
        .collect();
    missing.sort();
    report.missing = missing;
    Ok(report)
}
