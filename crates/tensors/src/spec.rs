//! Reading PyTorch's tensor rebuild calls out of a value graph.

use tpkg_pickle::{Value, ValueGraph, ValueId};

use crate::dtype::DType;
use crate::error::TensorError;

/// A storage a tensor views: persistent id
/// `('storage', torch.<Type>Storage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageRef {
    /// The key (`.data/<key>.storage` in a package); older writers used
    /// strings, current ones ints, both printed in decimal here.
    pub key: String,
    /// The storage's element type (`uint8` for `UntypedStorage`).
    pub dtype: DType,
    /// Where the storage lived when saved (`cpu`, `cuda:0`).
    pub location: String,
    /// Elements in the storage (bytes for `UntypedStorage`). For a legacy
    /// storage view, the elements of the root storage `key` names.
    pub numel: u64,
    /// Set when the tensor views a slice of the storage rather than all of
    /// it: legacy `torch.save` files (before PyTorch 1.0) could pickle
    /// storage views, `view_metadata` in their persistent ids. Always
    /// `None` in zip formats.
    pub view: Option<StorageView>,
}

/// A slice of a root storage that tensors view as if it were a storage of
/// its own: the `view_metadata` `(view_key, offset, size)` of a legacy
/// `torch.save` persistent id. A tensor's `storage_offset` and strides then
/// count from the view's first element, as in PyTorch (`torch.load` makes
/// the view a storage sharing the root's memory).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageView {
    /// The view's own key (other tensors naming it share it).
    pub key: String,
    /// Its first element in the root storage, in elements of the storage
    /// dtype.
    pub offset: u64,
    /// Its length in elements of the storage dtype.
    pub numel: u64,
}

/// The layout of a pickle's storage persistent ids, which differs between
/// PyTorch's file formats; each loader refuses the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StorageIds {
    /// `('storage', torch.<Type>Storage, key, location, numel)`: zip
    /// `torch.save` files, torch.package, TorchScript.
    #[default]
    Zip,
    /// `('storage', torch.<Type>Storage, root_key, location, numel,
    /// view_metadata)`, `view_metadata` `None` or `(view_key, offset,
    /// size)`: the legacy `torch.save` stream (`_use_new_zipfile_serialization=False`).
    Legacy,
}

/// Everything a rebuild call says about one tensor, before its storage is
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The storage it views.
    pub storage: StorageRef,
    /// Element type of the tensor (differs from the storage's only for
    /// `_rebuild_tensor_v3` over an untyped storage).
    pub dtype: DType,
    /// First element, counted in elements of `dtype`.
    pub storage_offset: u64,
    /// Size of each dimension.
    pub shape: Vec<u64>,
    /// Step of each dimension, in elements.
    pub stride: Vec<u64>,
    /// `requires_grad`.
    pub requires_grad: bool,
    /// Whether it is an `nn.Parameter`.
    pub parameter: bool,
}

/// Functions that rebuild a plain tensor or parameter, which tpkg reads.
const READ: &[&str] = &[
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
    "torch._tensor._rebuild_from_type",
];

fn global(graph: &ValueGraph, id: ValueId) -> Option<String> {
    match graph.get(id) {
        Value::Global { module, name } => Some(format!("{module}.{name}")),
        _ => None,
    }
}

/// The rebuild function, if `id` is a call of one of PyTorch's tensor
/// rebuild functions (`torch._utils._rebuild_*`, `torch._tensor._rebuild_*`).
pub fn rebuild_function(graph: &ValueGraph, id: ValueId) -> Option<String> {
    let Value::Reduce { callable, .. } = graph.get(id) else {
        return None;
    };
    let function = global(graph, *callable)?;
    let is_rebuild = (function.starts_with("torch._utils._rebuild_")
        || function.starts_with("torch._tensor._rebuild_"))
        && function != "torch._utils._rebuild_device_tensor_from_cpu_tensor_numpy";
    is_rebuild.then_some(function)
}

/// Whether `id` is a tensor tpkg reads (a call of a supported rebuild
/// function).
pub fn is_tensor(graph: &ValueGraph, id: ValueId) -> bool {
    rebuild_function(graph, id).is_some_and(|f| READ.contains(&f.as_str()))
}

struct Reader<'g> {
    graph: &'g ValueGraph,
    path: &'g str,
    ids: StorageIds,
}

impl Reader<'_> {
    fn malformed(&self, reason: impl Into<String>) -> TensorError {
        TensorError::Malformed {
            path: self.path.to_owned(),
            reason: reason.into(),
        }
    }

    fn args(&self, id: ValueId) -> Result<&[ValueId], TensorError> {
        let Value::Reduce { args, .. } = self.graph.get(id) else {
            return Err(self.malformed("not a rebuild call"));
        };
        match self.graph.get(*args) {
            Value::Tuple(items) => Ok(items),
            _ => Err(self.malformed("rebuild arguments are not a tuple")),
        }
    }

    fn int(&self, id: ValueId, what: &str) -> Result<u64, TensorError> {
        match self.graph.get(id) {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            other => Err(self.malformed(format!(
                "{what} is {}, not a non-negative int",
                other.kind()
            ))),
        }
    }

    fn ints(&self, id: ValueId, what: &str) -> Result<Vec<u64>, TensorError> {
        match self.graph.get(id) {
            Value::Tuple(items) | Value::List(items) | Value::TorchSize(items) => {
                items.iter().map(|i| self.int(*i, what)).collect()
            }
            other => Err(self.malformed(format!("{what} is a {}, not a tuple", other.kind()))),
        }
    }

    fn bool(&self, id: ValueId, what: &str) -> Result<bool, TensorError> {
        match self.graph.get(id) {
            Value::Bool(b) => Ok(*b),
            Value::Int(i) => Ok(*i != 0),
            other => Err(self.malformed(format!("{what} is a {}, not a bool", other.kind()))),
        }
    }

    fn text(&self, id: ValueId) -> Option<String> {
        match self.graph.get(id) {
            Value::Str(text) => text.as_str().map(str::to_owned),
            Value::Bytes(bytes) => std::str::from_utf8(bytes).ok().map(str::to_owned),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    fn storage(&self, id: ValueId) -> Result<StorageRef, TensorError> {
        let Value::PersistentId(pid) = self.graph.get(id) else {
            return Err(self.malformed("the storage is not a persistent id"));
        };
        self.storage_fields(*pid)
    }

    /// The storage a persistent id's tuple names.
    fn storage_fields(&self, pid: ValueId) -> Result<StorageRef, TensorError> {
        let Value::Tuple(fields) = self.graph.get(pid) else {
            return Err(self.malformed("the storage persistent id is not a tuple"));
        };
        let (typename, storage_type, key, location, numel, view) =
            match (self.ids, fields.as_slice()) {
                (StorageIds::Zip, [typename, storage_type, key, location, numel]) => {
                    (typename, storage_type, key, location, numel, None)
                }
                (StorageIds::Legacy, [typename, storage_type, key, location, numel, view]) => {
                    (typename, storage_type, key, location, numel, Some(view))
                }
                (ids, _) => {
                    return Err(self.malformed(format!(
                        "the storage persistent id has {} fields, not {}",
                        fields.len(),
                        if ids == StorageIds::Legacy { 6 } else { 5 }
                    )));
                }
            };
        if self.text(*typename).as_deref() != Some("storage") {
            return Err(self.malformed("the persistent id is not a storage"));
        }
        let storage_type = match self.graph.get(*storage_type) {
            Value::Global { module, name } if module == "torch" => name.clone(),
            // torch.save names the untyped storage of dtypes that have no
            // typed storage class (uint16-64, float8) by its full path.
            Value::Global { module, name }
                if module == "torch.storage" && name == "UntypedStorage" =>
            {
                // The legacy loader asks the storage type for its dtype,
                // which UntypedStorage lacks: torch.load fails on these
                // files (pickle.dump of a uint16 or float8 tensor too).
                if self.ids == StorageIds::Legacy {
                    return Err(self.malformed(
                        "a legacy-format storage of type torch.storage.UntypedStorage, which \
                         torch.load cannot read (the legacy loader needs the storage type's dtype)",
                    ));
                }
                name.clone()
            }
            _ => return Err(self.malformed("the storage type is not a torch global")),
        };
        let dtype = DType::from_storage_type(&storage_type).ok_or_else(|| {
            TensorError::UnsupportedStorage {
                path: self.path.to_owned(),
                storage_type: storage_type.clone(),
            }
        })?;
        Ok(StorageRef {
            key: self
                .text(*key)
                .ok_or_else(|| self.malformed("the storage key is not an int or a string"))?,
            dtype,
            location: self
                .text(*location)
                .ok_or_else(|| self.malformed("the storage location is not a string"))?,
            numel: self.int(*numel, "storage size")?,
            view: match view {
                Some(view) => self.storage_view(*view)?,
                None => None,
            },
        })
    }

    /// A legacy persistent id's `view_metadata`: `None`, or `(view_key,
    /// offset, size)` in elements of the storage dtype.
    fn storage_view(&self, id: ValueId) -> Result<Option<StorageView>, TensorError> {
        match self.graph.get(id) {
            Value::None => Ok(None),
            Value::Tuple(items) => {
                let [key, offset, numel] = items.as_slice() else {
                    return Err(self.malformed(format!(
                        "the storage view metadata has {} fields, not 3",
                        items.len()
                    )));
                };
                Ok(Some(StorageView {
                    key: self
                        .text(*key)
                        .ok_or_else(|| self.malformed("the storage view key is not a string"))?,
                    offset: self.int(*offset, "storage view offset")?,
                    numel: self.int(*numel, "storage view size")?,
                }))
            }
            other => Err(self.malformed(format!(
                "the storage view metadata is a {}, not None or a tuple",
                other.kind()
            ))),
        }
    }

    fn spec(&self, id: ValueId, depth: usize) -> Result<TensorSpec, TensorError> {
        let function = rebuild_function(self.graph, id)
            .ok_or_else(|| self.malformed("not a tensor rebuild call"))?;
        if depth > 8 {
            return Err(self.malformed("rebuild calls nest too deeply"));
        }
        let args = self.args(id)?;
        let base = |extra_dtype: Option<ValueId>| -> Result<TensorSpec, TensorError> {
            let storage = self.storage(args[0])?;
            let dtype = match extra_dtype.map(|d| self.graph.get(d)) {
                None => storage.dtype,
                Some(Value::TorchDtype(name)) => DType::from_torch_name(name).ok_or_else(|| {
                    self.malformed(format!("dtype torch.{name} is not supported"))
                })?,
                Some(other) => {
                    return Err(self.malformed(format!("the dtype is a {}", other.kind())));
                }
            };
            let requires_grad = match args.get(4) {
                Some(flag) => self.bool(*flag, "requires_grad")?,
                None => false,
            };
            Ok(TensorSpec {
                storage,
                dtype,
                storage_offset: self.int(args[1], "storage offset")?,
                shape: self.ints(args[2], "size")?,
                stride: self.ints(args[3], "stride")?,
                requires_grad,
                parameter: false,
            })
        };
        match function.as_str() {
            "torch._utils._rebuild_tensor" if args.len() >= 4 => base(None),
            "torch._utils._rebuild_tensor_v2" if args.len() >= 6 => base(None),
            "torch._utils._rebuild_tensor_v3" if args.len() >= 7 => base(Some(args[6])),
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state"
                if args.len() >= 2 =>
            {
                let mut spec = self.spec(args[0], depth + 1)?;
                spec.requires_grad = self.bool(args[1], "requires_grad")?;
                spec.parameter = true;
                Ok(spec)
            }
            "torch._tensor._rebuild_from_type_v2" | "torch._tensor._rebuild_from_type"
                if args.len() >= 3 =>
            {
                // func(*args), then re-typed as new_type.
                let inner_function = global(self.graph, args[0]).unwrap_or_default();
                let new_type = global(self.graph, args[1]).unwrap_or_default();
                let Value::Tuple(inner_args) = self.graph.get(args[2]) else {
                    return Err(self.malformed("_rebuild_from_type arguments are not a tuple"));
                };
                let mut spec = self.spec_from_parts(&inner_function, inner_args)?;
                spec.parameter = new_type == "torch.nn.parameter.Parameter";
                Ok(spec)
            }
            known if READ.contains(&known) => {
                Err(self.malformed(format!("{function} has {} arguments", args.len())))
            }
            _ => Err(TensorError::UnsupportedRebuild {
                path: self.path.to_owned(),
                function,
            }),
        }
    }

    /// A rebuild given as (function, args) rather than a REDUCE node.
    fn spec_from_parts(&self, function: &str, args: &[ValueId]) -> Result<TensorSpec, TensorError> {
        let needed = match function {
            "torch._utils._rebuild_tensor" => 4,
            "torch._utils._rebuild_tensor_v2" => 6,
            _ => {
                return Err(TensorError::UnsupportedRebuild {
                    path: self.path.to_owned(),
                    function: function.to_owned(),
                });
            }
        };
        if args.len() < needed {
            return Err(self.malformed(format!("{function} has {} arguments", args.len())));
        }
        Ok(TensorSpec {
            storage: self.storage(args[0])?,
            dtype: self.storage(args[0])?.dtype,
            storage_offset: self.int(args[1], "storage offset")?,
            shape: self.ints(args[2], "size")?,
            stride: self.ints(args[3], "stride")?,
            requires_grad: match args.get(4) {
                Some(flag) if needed == 6 => self.bool(*flag, "requires_grad")?,
                _ => false,
            },
            parameter: false,
        })
    }
}

/// The tensor `id` rebuilds, or `None` if `id` is no tensor rebuild call.
/// `path` names the tensor in errors.
pub fn tensor_spec(
    graph: &ValueGraph,
    id: ValueId,
    path: &str,
) -> Result<Option<TensorSpec>, TensorError> {
    tensor_spec_with(graph, id, path, StorageIds::Zip)
}

/// [`tensor_spec`] for a pickle whose storage persistent ids have the
/// layout `ids` ([`StorageIds::Legacy`] for a legacy `torch.save` stream).
pub fn tensor_spec_with(
    graph: &ValueGraph,
    id: ValueId,
    path: &str,
    ids: StorageIds,
) -> Result<Option<TensorSpec>, TensorError> {
    if rebuild_function(graph, id).is_none() {
        return Ok(None);
    }
    Reader { graph, path, ids }.spec(id, 0).map(Some)
}

/// The storage a persistent id names, `pid` being the
/// [`Value::PersistentId`] node or its tuple, in the layout `ids`; `path`
/// names the tensor (or whatever holds the id) in errors.
///
/// ```
/// use tpkg_pickle::decode;
/// use tpkg_tensors::{storage_ref, DType, StorageIds};
/// // A legacy persistent id: ('storage', torch.FloatStorage, '7', 'cpu', 6, None)
/// let graph = decode(b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x007X\x03\x00\x00\x00cpuK\x06Nt.").unwrap();
/// let storage = storage_ref(&graph, graph.root(), StorageIds::Legacy, "x").unwrap();
/// assert_eq!((storage.key.as_str(), storage.dtype, storage.numel), ("7", DType::Float32, 6));
/// assert!(storage_ref(&graph, graph.root(), StorageIds::Zip, "x").is_err());
/// ```
pub fn storage_ref(
    graph: &ValueGraph,
    pid: ValueId,
    ids: StorageIds,
    path: &str,
) -> Result<StorageRef, TensorError> {
    let reader = Reader { graph, path, ids };
    match graph.get(pid) {
        Value::PersistentId(_) => reader.storage(pid),
        Value::Tuple(_) => reader.storage_fields(pid),
        other => Err(reader.malformed(format!(
            "the storage persistent id is a {}, not a tuple",
            other.kind()
        ))),
    }
}
