//! The pickle virtual machine, run as data.
//!
//! Every opcode of protocols 0 to 5 is read; none imports, calls or
//! allocates beyond what the input itself holds (strings are checked against
//! the remaining bytes before any allocation; every node comes from an
//! opcode). The machine is a loop over opcodes with an explicit stack, so no
//! input can overflow the Rust stack.

use std::collections::HashMap;

use crate::error::DecodeError;
use crate::policy::{Policy, TorchData};
use crate::value::{Value, ValueGraph};
use machine::Machine;

mod known;
mod machine;
mod objects;
mod ops;
#[cfg(test)]
mod tests;

/// Limits and out-of-band inputs for [`decode_with`].
///
/// ```
/// use tpkg_pickle::DecodeOptions;
/// let options = DecodeOptions::default().with_max_mark_depth(100);
/// assert_eq!(options.max_mark_depth, 100);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Deepest MARK nesting accepted.
    pub max_mark_depth: usize,
    /// Most memo entries accepted.
    pub max_memo: usize,
    /// Longest decimal text of a protocol-0 `int` (CPython's own limit is 4300
    /// digits; parsing longer text is quadratic).
    pub max_int_digits: usize,
    /// `copyreg` extension registry for EXT1/EXT2/EXT4: code → (module, name).
    pub extensions: HashMap<u32, (String, String)>,
    /// Out-of-band buffers for protocol 5's NEXT_BUFFER, in order.
    pub buffers: Vec<Vec<u8>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_mark_depth: 10_000,
            max_memo: 1 << 26,
            max_int_digits: 4300,
            extensions: HashMap::new(),
            buffers: Vec::new(),
        }
    }
}

impl DecodeOptions {
    /// Sets [`DecodeOptions::max_mark_depth`].
    pub fn with_max_mark_depth(mut self, max_mark_depth: usize) -> Self {
        self.max_mark_depth = max_mark_depth;
        self
    }

    /// Sets [`DecodeOptions::max_memo`].
    pub fn with_max_memo(mut self, max_memo: usize) -> Self {
        self.max_memo = max_memo;
        self
    }

    /// Sets [`DecodeOptions::max_int_digits`].
    pub fn with_max_int_digits(mut self, max_int_digits: usize) -> Self {
        self.max_int_digits = max_int_digits;
        self
    }

    /// Sets [`DecodeOptions::extensions`], the `copyreg` extension registry.
    pub fn with_extensions(mut self, extensions: HashMap<u32, (String, String)>) -> Self {
        self.extensions = extensions;
        self
    }

    /// Sets [`DecodeOptions::buffers`], protocol 5's out-of-band buffers.
    pub fn with_buffers(mut self, buffers: Vec<Vec<u8>>) -> Self {
        self.buffers = buffers;
        self
    }
}

/// Decodes a pickle with default limits and the [`TorchData`] policy.
///
/// ```
/// use tpkg_pickle::{decode, Value};
/// // pickle.dumps(None, protocol=3)
/// let graph = decode(b"\x80\x03N.").unwrap();
/// assert_eq!(graph.get(graph.root()), &Value::None);
/// ```
pub fn decode(data: &[u8]) -> Result<ValueGraph, DecodeError> {
    decode_with(data, &DecodeOptions::default(), &TorchData)
}

/// Decodes a pickle with the given limits and policy.
pub fn decode_with(
    data: &[u8],
    options: &DecodeOptions,
    policy: &dyn Policy,
) -> Result<ValueGraph, DecodeError> {
    decode_prefix(data, options, policy).map(|(graph, _)| graph)
}

/// Decodes the pickle at the start of `data`, which may go on past its
/// STOP (a stream of pickles, as `pickle.load` reads one from a file), and
/// returns it with its length: the bytes up to and including STOP, where
/// the next `pickle.load` would start.
///
/// ```
/// use tpkg_pickle::{decode_prefix, DecodeOptions, TorchData, Value};
/// // pickle.dumps(1001, protocol=2) + pickle.dumps(None, protocol=2)
/// let stream = b"\x80\x02M\xe9\x03.\x80\x02N.";
/// let (first, len) = decode_prefix(stream, &DecodeOptions::default(), &TorchData).unwrap();
/// assert_eq!((first.get(first.root()), len), (&Value::Int(1001), 6));
/// let (second, _) = decode_prefix(&stream[len..], &DecodeOptions::default(), &TorchData).unwrap();
/// assert_eq!(second.get(second.root()), &Value::None);
/// ```
pub fn decode_prefix(
    data: &[u8],
    options: &DecodeOptions,
    policy: &dyn Policy,
) -> Result<(ValueGraph, usize), DecodeError> {
    let mut machine = Machine::new(data, options, policy);
    let (root, used) = machine.run()?;
    Ok((machine.into_graph(root), used))
}

/// Decodes as [`decode_prefix`] does, but on failure keeps what was
/// decoded before it: the values the opcodes before the failing one made
/// (their root is `None`). CPython's unpickler has run those opcodes by
/// the time it fails, so a scanner audits them (a payload followed by
/// garbage is still a payload).
///
/// ```
/// use tpkg_pickle::{decode_partial, DecodeOptions, Symbolic, Value};
/// // GLOBAL os.system, then a memo lookup that fails.
/// let (graph, result) = decode_partial(b"cos\nsystem\nh\x07.", &DecodeOptions::default(), &Symbolic);
/// assert!(result.is_err());
/// assert!(graph.iter().any(|(_, v)| matches!(v, Value::Global { name, .. } if name == "system")));
/// ```
pub fn decode_partial(
    data: &[u8],
    options: &DecodeOptions,
    policy: &dyn Policy,
) -> (ValueGraph, Result<usize, DecodeError>) {
    let mut machine = Machine::new(data, options, policy);
    match machine.run() {
        Ok((root, used)) => (machine.into_graph(root), Ok(used)),
        Err(error) => {
            let root = machine.add(Value::None);
            (machine.into_graph(root), Err(error))
        }
    }
}

/// The pickles of a stream, one after another, as repeated `pickle.load`
/// calls on one file read them ([`decode_stream`]).
pub struct PickleStream<'a> {
    data: &'a [u8],
    at: usize,
    options: &'a DecodeOptions,
    policy: &'a dyn Policy,
    done: bool,
}

impl std::fmt::Debug for PickleStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickleStream")
            .field("len", &self.data.len())
            .field("at", &self.at)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Iterator for PickleStream<'_> {
    /// A pickle's byte offset and graph; or the offset of the first pickle
    /// that does not decode and why, after which the stream ends.
    type Item = Result<(usize, ValueGraph), (usize, DecodeError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.data.len() {
            return None;
        }
        let at = self.at;
        match decode_prefix(&self.data[at..], self.options, self.policy) {
            Ok((graph, used)) => {
                // A pickle is at least PROTO-less STOP (one byte); a zero
                // length cannot happen, but must not loop forever.
                self.done = used == 0;
                self.at += used;
                Some(Ok((at, graph)))
            }
            Err(error) => {
                self.done = true;
                Some(Err((at, error)))
            }
        }
    }
}

/// Every pickle of `data`, one after another ([`decode_prefix`] in a
/// loop): what a file of several `pickle.dump`s holds, and what a scanner
/// must read whole (a payload may hide in any pickle but the first).
///
/// ```
/// use tpkg_pickle::{decode_stream, DecodeOptions, TorchData, Value};
/// // pickle.dumps(1001, protocol=2) + pickle.dumps(None, protocol=2) + junk
/// let stream = b"\x80\x02M\xe9\x03.\x80\x02N.\xff";
/// let options = DecodeOptions::default();
/// let pickles: Vec<_> = decode_stream(stream, &options, &TorchData).collect();
/// assert_eq!(pickles.len(), 3);
/// assert_eq!(pickles[1].as_ref().unwrap().0, 6);
/// assert_eq!(pickles[2].as_ref().unwrap_err().0, 10);
/// ```
pub fn decode_stream<'a>(
    data: &'a [u8],
    options: &'a DecodeOptions,
    policy: &'a dyn Policy,
) -> PickleStream<'a> {
    PickleStream {
        data,
        at: 0,
        options,
        policy,
        done: false,
    }
}
