//! Python pickles as data.
//!
//! A torch.package stores its objects as pickles. Loading a pickle in
//! Python runs code: every global it names is imported and called. This
//! crate reads pickles without doing any of that. The decoder runs the
//! pickle machine over data only: a global stays a name
//! ([`Value::Global`]), a call stays a record of what would be called with
//! what ([`Value::Reduce`], [`Value::Object`]). A [`Policy`] lets the caller
//! accept the harmless constructors of plain data (an `OrderedDict`, a
//! `set`, `torch.Size`) as plain values.
//!
//! Values live in a [`ValueGraph`]: shared references stay shared and cycles
//! are representable, as in Python.
//!
//! ```
//! use tpkg_pickle::{decode, Value};
//!
//! // pickle.dumps({"lr": 0.1}, protocol=3)
//! let graph = decode(b"\x80\x03}q\x00X\x02\x00\x00\x00lrq\x01G?\xb9\x99\x99\x99\x99\x99\x9as.").unwrap();
//! let Value::Dict(items) = graph.get(graph.root()) else { panic!("a dict") };
//! let (key, value) = items[0];
//! assert_eq!(graph.get(key).as_str(), Some("lr"));
//! assert_eq!(graph.get(value), &Value::Float(0.1));
//! ```
//!
//! - [`decode`] / [`decode_with`]: protocols 0 to 5, every opcode, typed
//!   errors with byte offsets, bounded by the input and [`DecodeOptions`];
//!   [`decode_prefix`] for one pickle of a stream (its length too).
//! - [`encode`] / [`Encoder`]: protocols 2 to 5 (3 is PyTorch's default),
//!   sharing and cycles kept, a persistent-id hook.
//! - [`scan_globals`]: the globals a pickle references, as PyTorch's
//!   exporter finds them.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod decode;
mod encode;
mod error;
mod opcode;
mod policy;
mod repr;
mod scan;
mod text;
mod value;

pub use decode::{
    DecodeOptions, PickleStream, decode, decode_partial, decode_prefix, decode_stream, decode_with,
};
pub use encode::{Encoder, MAX_ENCODE_DEPTH, PersistentIdHook, encode};
pub use error::{DecodeError, DecodeErrorKind, DecodeLimit, EncodeError};
pub use opcode::Opcode;
pub use policy::{Known, Policy, PythonData, Symbolic, TorchData};
pub use repr::{python_float_repr, python_repr, python_repr_limited};
pub use scan::{GlobalRef, scan_globals};
pub use value::{Extra, PyStr, Value, ValueGraph, ValueId, ValueKind};
