//! PyTorch's tensor wire format, read as data.
//!
//! In a pickle, a tensor is a call: `torch._utils._rebuild_tensor_v2(storage,
//! offset, size, stride, requires_grad, hooks)`, where `storage` is a
//! persistent id `('storage', torch.FloatStorage, key, location, numel)`
//! naming raw little-endian bytes kept outside the pickle. This crate reads
//! those calls out of a decoded [`ValueGraph`](tpkg_pickle::ValueGraph)
//! ([`find_tensors`], [`tensor_spec`]) and, given the storage bytes, makes a
//! bounds-checked [`TensorView`]. Where the bytes live (a zip record, a
//! file) is the caller's business.
//!
//! ```
//! use tpkg_pickle::decode;
//! use tpkg_tensors::{find_tensors, DType};
//!
//! // A float32 tensor [2, 3] on storage "0", as PyTorch pickles it (protocol 2).
//! let pickle = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89ccollections\nOrderedDict\n)RtR.";
//! let graph = decode(pickle).unwrap();
//! let tensors = find_tensors(&graph).unwrap();
//! assert_eq!(tensors[0].1.dtype, DType::Float32);
//! assert_eq!(tensors[0].1.shape, [2, 3]);
//! assert_eq!(tensors[0].1.storage.key, "0");
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod dtype;
mod encode;
mod error;
pub mod module;
mod spec;
#[cfg(feature = "tch")]
pub mod tch;
mod view;
mod walk;

pub use dtype::DType;
pub use encode::TensorEncoder;
pub use error::TensorError;
pub use spec::{
    StorageIds, StorageRef, StorageView, TensorSpec, is_tensor, rebuild_function, storage_ref,
    tensor_spec, tensor_spec_with,
};
pub use view::TensorView;
pub use walk::{Found, find_tensors, find_tensors_with, walk_tensors};
