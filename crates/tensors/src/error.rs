//! Why a pickled tensor cannot be read.

/// A tensor that cannot be rebuilt, with where it is (its path in the
/// pickled value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// A rebuild function tpkg does not read (quantized, sparse, nested,
    /// meta, wrapper subclasses, ...); never read as something else.
    #[error(
        "tensor at {path:?} is rebuilt by {function}, which tpkg does not read (quantized, sparse, nested and meta tensors are not supported)"
    )]
    UnsupportedRebuild {
        /// Path of the tensor in the value.
        path: String,
        /// `module.name` of the rebuild function.
        function: String,
    },
    /// A storage class tpkg does not know.
    #[error("tensor at {path:?} uses storage type torch.{storage_type}, which tpkg does not read")]
    UnsupportedStorage {
        /// Path of the tensor.
        path: String,
        /// The storage class name.
        storage_type: String,
    },
    /// The rebuild call's arguments do not have the shape PyTorch writes.
    #[error("tensor at {path:?}: {reason}")]
    Malformed {
        /// Path of the tensor.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Shape, stride and offset reach outside the storage.
    #[error(
        "tensor at {path:?} reaches element {needed} but its storage {key:?} holds {available}"
    )]
    OutOfBounds {
        /// Path of the tensor.
        path: String,
        /// Storage key.
        key: String,
        /// Elements the view needs (largest index + 1).
        needed: u128,
        /// Elements the storage holds.
        available: u64,
    },
    /// The storage record's length does not fit its dtype or its declared size.
    #[error("storage {key:?} has {bytes} bytes, but {reason}")]
    StorageSize {
        /// Storage key.
        key: String,
        /// Its length in bytes.
        bytes: u64,
        /// The inconsistency.
        reason: String,
    },
    /// Shared references would make the walk longer than the graph's
    /// size allows ([`Budget`](crate::module::Budget)): values sharing each
    /// other level after level list exponentially many tensors.
    #[error(
        "the pickle shares values too much: listing its tensors would take more than {limit} steps for a graph of {nodes} values (the limit is 64 per value and reference, plus 65,536)"
    )]
    TooMuchSharing {
        /// Values in the graph.
        nodes: usize,
        /// The walk's budget ([`Budget::limit`](crate::module::Budget::limit)).
        limit: u64,
    },
}
