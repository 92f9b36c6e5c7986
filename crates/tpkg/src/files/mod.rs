//! The lower layer: reading PyTorch's files without running them.
//!
//! Format sniffing ([`formats`]), the legacy `torch.save` layout
//! ([`legacy`]), `torch.export` archives ([`pt2`]), TorchScript
//! ([`torchscript`]), tensors wherever PyTorch's loaders find them
//! ([`tensors`]) and the record-level helpers every layer above shares
//! ([`records`]). Nothing here knows about the torch.package API
//! ([`crate::api`]) or the tools ([`crate::tools`]).

pub mod formats;
pub mod legacy;
pub mod pt2;
pub mod records;
pub mod tensors;
pub mod torchscript;
