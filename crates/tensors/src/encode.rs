//! Writing tensors the way PyTorch pickles them.

use std::collections::HashMap;

use tpkg_pickle::{PyStr, Value, ValueGraph, ValueId};

use crate::dtype::DType;
use crate::spec::{StorageRef, TensorSpec};

/// Builds PyTorch's pickled form of tensors into a [`ValueGraph`] and keeps
/// the storage table: one key per distinct storage, however many tensors
/// view it, numbered from 0 as PyTorch's exporter does.
///
/// ```
/// use tpkg_pickle::{decode, encode, Value, ValueGraph};
/// use tpkg_tensors::{find_tensors, DType, TensorEncoder, TensorSpec};
///
/// let mut tensors = TensorEncoder::new();
/// let storage = tensors.storage("weights", DType::Float32, 6, "cpu");
/// let mut graph = ValueGraph::new(Value::None);
/// let spec = |shape: &[u64], stride: &[u64], offset| TensorSpec {
///     storage: storage.clone(),
///     dtype: DType::Float32,
///     storage_offset: offset,
///     shape: shape.to_vec(),
///     stride: stride.to_vec(),
///     requires_grad: false,
///     parameter: false,
/// };
/// let whole = tensors.tensor(&mut graph, &spec(&[2, 3], &[3, 1], 0));
/// let row = tensors.tensor(&mut graph, &spec(&[3], &[1], 3));
/// let root = graph.add(Value::List(vec![whole, row]));
/// graph.set_root(root);
///
/// let back = decode(&encode(&graph, 3).unwrap()).unwrap();
/// let found = find_tensors(&back).unwrap();
/// assert_eq!(found.len(), 2);
/// assert_eq!(found[0].1.storage.key, found[1].1.storage.key); // one storage
/// assert_eq!(tensors.storages().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct TensorEncoder {
    storages: Vec<StorageRef>,
    by_identity: HashMap<String, usize>,
}

impl TensorEncoder {
    /// An encoder with no storages yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The storage known by `identity` (any caller-chosen name for the
    /// buffer), registering it with the next key if it is new. `numel`
    /// counts elements of `dtype`.
    pub fn storage(
        &mut self,
        identity: &str,
        dtype: DType,
        numel: u64,
        location: &str,
    ) -> StorageRef {
        if let Some(&index) = self.by_identity.get(identity) {
            return self.storages[index].clone();
        }
        // Dtypes without a legacy storage class are written as untyped
        // (byte) storages, as PyTorch does; the tensor carries the dtype.
        let (storage_dtype, storage_numel) = if dtype.storage_type() == "UntypedStorage" {
            (DType::UInt8, numel * dtype.element_size() as u64)
        } else {
            (dtype, numel)
        };
        let storage = StorageRef {
            key: self.storages.len().to_string(),
            dtype: storage_dtype,
            location: location.to_owned(),
            numel: storage_numel,
            view: None,
        };
        self.by_identity
            .insert(identity.to_owned(), self.storages.len());
        self.storages.push(storage.clone());
        storage
    }

    /// Every storage registered, in key order.
    pub fn storages(&self) -> &[StorageRef] {
        &self.storages
    }

    /// Adds the tensor `spec` describes to `graph` as PyTorch pickles it:
    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
    /// OrderedDict())` — or `_rebuild_tensor_v3` with the dtype when the
    /// storage is untyped (`spec.dtype` differs from `spec.storage.dtype`) —
    /// wrapped in `_rebuild_parameter` for parameters. `spec.storage` is
    /// one this encoder registered with [`storage`](Self::storage).
    pub fn tensor(&self, graph: &mut ValueGraph, spec: &TensorSpec) -> ValueId {
        let TensorSpec {
            storage,
            dtype,
            storage_offset,
            shape,
            stride,
            requires_grad,
            parameter,
        } = spec;
        let (dtype, storage_offset, requires_grad, parameter) =
            (*dtype, *storage_offset, *requires_grad, *parameter);
        let int = |graph: &mut ValueGraph, n: u64| {
            graph.add(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
        };
        let global = |graph: &mut ValueGraph, module: &str, name: &str| {
            graph.add(Value::Global {
                module: module.to_owned(),
                name: name.to_owned(),
            })
        };
        let untyped = storage.dtype != dtype;
        let typename = graph.add(Value::Str(PyStr::from("storage")));
        let storage_type_name = if untyped {
            "UntypedStorage"
        } else {
            storage.dtype.storage_type()
        };
        let storage_type = global(graph, "torch", storage_type_name);
        let key = match storage.key.parse::<u64>() {
            Ok(number) => int(graph, number),
            Err(_) => graph.add(Value::Str(PyStr::from(storage.key.as_str()))),
        };
        let location = graph.add(Value::Str(PyStr::from(storage.location.as_str())));
        let numel = int(graph, storage.numel);
        let pid_tuple = graph.add(Value::Tuple(vec![
            typename,
            storage_type,
            key,
            location,
            numel,
        ]));
        let pid = graph.add(Value::PersistentId(pid_tuple));
        let offset = int(graph, storage_offset);
        let size: Vec<ValueId> = shape.iter().map(|&d| int(graph, d)).collect();
        let size = graph.add(Value::Tuple(size));
        let strides: Vec<ValueId> = stride.iter().map(|&s| int(graph, s)).collect();
        let strides = graph.add(Value::Tuple(strides));
        // A parameter's data is pickled without requires_grad.
        let grad = graph.add(Value::Bool(requires_grad && !parameter));
        let hooks = empty_hooks(graph);
        let mut args = vec![pid, offset, size, strides, grad, hooks];
        if untyped {
            args.push(graph.add(Value::TorchDtype(dtype.name().to_owned())));
        }
        let args = graph.add(Value::Tuple(args));
        let function = if untyped {
            "_rebuild_tensor_v3"
        } else {
            "_rebuild_tensor_v2"
        };
        let callable = global(graph, "torch._utils", function);
        let tensor = graph.add(Value::Reduce {
            callable,
            args,
            extra: Box::default(),
        });
        if !parameter {
            return tensor;
        }
        let callable = global(graph, "torch._utils", "_rebuild_parameter");
        let grad = graph.add(Value::Bool(requires_grad));
        let hooks = empty_hooks(graph);
        let args = graph.add(Value::Tuple(vec![tensor, grad, hooks]));
        graph.add(Value::Reduce {
            callable,
            args,
            extra: Box::default(),
        })
    }

    /// A [`TensorSpec`]'s tensor (e.g. one read from another package),
    /// keeping its storage's identity by key.
    pub fn tensor_like(
        &mut self,
        graph: &mut ValueGraph,
        spec: &TensorSpec,
        identity: &str,
    ) -> ValueId {
        let element_numel = spec.storage.numel * spec.storage.dtype.element_size() as u64
            / spec.dtype.element_size() as u64;
        let storage = self.storage(identity, spec.dtype, element_numel, &spec.storage.location);
        self.tensor(
            graph,
            &TensorSpec {
                storage,
                ..spec.clone()
            },
        )
    }
}

/// The `OrderedDict()` of backward hooks every rebuild call carries.
fn empty_hooks(graph: &mut ValueGraph) -> ValueId {
    graph.add(Value::OrderedDict {
        items: Vec::new(),
        state: None,
    })
}
