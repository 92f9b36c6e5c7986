//! What tpkg adds on top of PyTorch's API: [`audit`] (the scanner),
//! [`verify`], [`diff`], [`inspect`] (what a file is and holds), [`show`]
//! (value images and Python-like text), [`convert`] (to safetensors or
//! `torch.save`) and [`graph`] (module dependency graphs).
//!
//! Builds on [`crate::files`] and [`crate::api`]; nothing below uses it.

pub mod audit;
pub mod convert;
pub mod diff;
pub mod graph;
pub mod inspect;
pub mod show;
pub mod verify;
