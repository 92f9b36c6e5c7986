//! Shared pieces of tpkg's end-to-end scenarios and Python-oracle tests.
//!
//! PyTorch is the oracle: scenarios have PyTorch write and tpkg read, or tpkg
//! write and PyTorch read, through the small scripts in `tests/oracle/`.
//! Nothing here imitates PyTorch.

pub mod corpus;
#[cfg(feature = "oracle")]
pub mod model_scenarios;
pub mod oracle;
#[cfg(feature = "oracle")]
pub mod scenarios;
