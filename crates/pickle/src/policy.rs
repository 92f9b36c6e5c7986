//! What globals mean: the caller's policy.
//!
//! The decoder never imports or calls anything. A [`Policy`] tells it which
//! globals are harmless constructors of plain data; a `REDUCE`/`NEWOBJ` of
//! one, with arguments of the expected shape, becomes a plain [`Value`]
//! (`OrderedDict`, `set`, `torch.Size`, ...). Everything else stays
//! symbolic ([`Value::Global`], [`Value::Reduce`], [`Value::Object`]).
//!
//! [`Value`]: crate::Value
//! [`Value::Global`]: crate::Value::Global
//! [`Value::Reduce`]: crate::Value::Reduce
//! [`Value::Object`]: crate::Value::Object

/// A constructor the decoder may apply as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Known {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `builtins.set`.
    Set,
    /// `builtins.frozenset`.
    FrozenSet,
    /// `builtins.bytearray`.
    ByteArray,
    /// `builtins.bytes` (protocols 0-2 write `b""` as `bytes()`).
    Bytes,
    /// `builtins.complex`.
    Complex,
    /// `_codecs.encode` (how protocol 2 writes `bytes`).
    CodecsEncode,
    /// `copyreg._reconstructor` (how protocols 0-1 write plain objects).
    Reconstructor,
    /// `torch.Size`.
    TorchSize,
    /// `torch.device`.
    TorchDevice,
    /// A `torch` dtype global such as `torch.float16`; the name without `torch.`.
    TorchDtype(&'static str),
}

/// Decides which globals are known constructors.
pub trait Policy {
    /// What `module.name` is, or `None` to keep it symbolic.
    fn classify(&self, module: &str, name: &str) -> Option<Known>;
}

/// Keeps every global symbolic.
///
/// ```
/// use tpkg_pickle::{decode_with, DecodeOptions, Symbolic, Value};
/// // pickle.dumps({1, 2}, protocol=2): builtins.set([1, 2])
/// let data = b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.";
/// let graph = decode_with(data, &DecodeOptions::default(), &Symbolic).unwrap();
/// assert!(matches!(graph.get(graph.root()), Value::Reduce { .. }));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Symbolic;

impl Policy for Symbolic {
    fn classify(&self, _module: &str, _name: &str) -> Option<Known> {
        None
    }
}

/// Python's built-in data constructors (both the Python 3 and the
/// Python 2 compatible module names that protocols 0-2 use).
///
/// ```
/// use tpkg_pickle::{Known, Policy, PythonData};
/// assert_eq!(PythonData.classify("collections", "OrderedDict"), Some(Known::OrderedDict));
/// assert_eq!(PythonData.classify("os", "system"), None);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonData;

impl Policy for PythonData {
    fn classify(&self, module: &str, name: &str) -> Option<Known> {
        Some(match (module, name) {
            ("collections", "OrderedDict") => Known::OrderedDict,
            ("builtins" | "__builtin__", "set") => Known::Set,
            ("builtins" | "__builtin__", "frozenset") => Known::FrozenSet,
            ("builtins" | "__builtin__", "bytearray") => Known::ByteArray,
            ("builtins" | "__builtin__", "bytes") => Known::Bytes,
            ("builtins" | "__builtin__", "complex") => Known::Complex,
            ("_codecs", "encode") => Known::CodecsEncode,
            ("copyreg" | "copy_reg", "_reconstructor") => Known::Reconstructor,
            _ => return None,
        })
    }
}

/// Every dtype name PyTorch pickles as a `torch.<name>` global.
const TORCH_DTYPES: &[&str] = &[
    "float32",
    "float",
    "float64",
    "double",
    "float16",
    "half",
    "bfloat16",
    "complex32",
    "chalf",
    "complex64",
    "cfloat",
    "complex128",
    "cdouble",
    "uint8",
    "int8",
    "int16",
    "short",
    "int32",
    "int",
    "int64",
    "long",
    "bool",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "uint16",
    "uint32",
    "uint64",
    "bits8",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "int1",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
    "uint1",
    "uint2",
    "uint3",
    "uint4",
    "uint5",
    "uint6",
    "uint7",
];

/// [`PythonData`] plus PyTorch's plain values: `torch.Size`, `torch.device`
/// and dtypes. Tensors and storages stay symbolic here; the `tensors` crate
/// gives them meaning.
///
/// ```
/// use tpkg_pickle::{Known, Policy, TorchData};
/// assert_eq!(TorchData.classify("torch", "float16"), Some(Known::TorchDtype("float16")));
/// assert_eq!(TorchData.classify("torch", "Size"), Some(Known::TorchSize));
/// assert_eq!(TorchData.classify("torch", "load"), None);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TorchData;

impl Policy for TorchData {
    fn classify(&self, module: &str, name: &str) -> Option<Known> {
        if module == "torch" {
            match name {
                "Size" => return Some(Known::TorchSize),
                "device" => return Some(Known::TorchDevice),
                _ => {}
            }
            if let Some(dtype) = TORCH_DTYPES.iter().find(|dtype| **dtype == name) {
                return Some(Known::TorchDtype(dtype));
            }
        }
        PythonData.classify(module, name)
    }
}
