//! `tpkg.load`: a file's tensors described for Python, each storage
//! located in the file or, when the file does not hold it as it is, copied
//! into a `bytearray`.
//!
//! The Python glue (`tpkg/__init__.py`) builds the tensors with the user's
//! torch from what [`load_plan`] returns: one `torch.UntypedStorage` per
//! storage, then `set_` for each tensor, so views of one storage share
//! memory as in PyTorch. A storage in the file becomes a slice of the file
//! mapped shared (`mmap=True`, as `torch.load(mmap=True)` maps it) or a
//! private mapping of its pages whose every page is copied at once
//! ([`populate_private`]: the kernel copies page cache to new pages, with
//! no zeroing pass, on every core), which the process then owns as it owns
//! any memory. The extension never links libtorch.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyList, PyTuple};
use std::collections::HashMap;
use tpkg::formats::PyTorchFile;
use tpkg::tensors::{PackageTensors, TensorView};

use crate::errors::{self, TpkgError};
use crate::safety;

/// Below this many bytes in all, storages are copied on one thread.
const PARALLEL_COPY_MIN: usize = 64 << 20;

/// Owned storages smaller than this are copied into a `bytearray`; larger
/// ones in the file become private mappings (one `mmap` each, which costs
/// more than copying a small storage).
const PRIVATE_MAP_MIN: usize = 1 << 20;

/// At most this many owned storages become private mappings (the kernel
/// limits mappings per process); the rest are copied.
const PRIVATE_MAP_MAX: usize = 1024;

/// How the tensors will be used: owned, or views of the mapped file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Tensors own their memory: large storages in the file are mapped
    /// privately and copied by the kernel, the others copied here.
    Owned,
    /// Storages in the file are slices of one shared mapping of it.
    Mapped,
}

/// One storage as Python gets it.
#[derive(Debug)]
struct StoragePlan<'a> {
    /// Its bytes (in the file's map, or owned by the loader).
    bytes: &'a [u8],
    /// Where those bytes start in the file, when they are the file's own
    /// bytes (and aligned for their dtype), so Python may map them.
    file_offset: Option<usize>,
    /// The storage key as [`PackageTensors`] names it, for releasing the
    /// map's pages after a copy.
    key: Option<String>,
}

/// One tensor as Python gets it.
#[derive(Debug)]
struct TensorPlan {
    path: String,
    dtype: &'static str,
    shape: Vec<u64>,
    stride: Vec<u64>,
    storage: usize,
    storage_offset: u64,
    /// A legacy storage view: `(first byte, bytes)` of the root storage.
    view: Option<(u64, u64)>,
    requires_grad: bool,
    parameter: bool,
}

/// The whole file's bytes when the storages may be slices of them: the
/// zip's map, or a legacy file's.
fn file_bytes(file: &PyTorchFile) -> Option<&[u8]> {
    match file {
        PyTorchFile::Zip { reader, .. } => reader.zip_bytes(),
        PyTorchFile::Legacy(legacy) => Some(legacy.bytes()),
        PyTorchFile::Pickle(_) => None,
    }
}

/// `bytes`' offset in `whole`, if `bytes` lies inside it.
fn offset_in(whole: &[u8], bytes: &[u8]) -> Option<usize> {
    let start = whole.as_ptr() as usize;
    let at = bytes.as_ptr() as usize;
    (at >= start && at + bytes.len() <= start + whole.len()).then(|| at - start)
}

/// Groups the tensors by storage: one [`StoragePlan`] per distinct storage
/// (a legacy storage view shares its root's plan).
fn plan<'a>(
    file: &'a PyTorchFile,
    tensors: &'a PackageTensors<'a>,
    placement: Placement,
) -> Result<(Vec<TensorPlan>, Vec<StoragePlan<'a>>), PyErr> {
    let whole = file_bytes(file);
    let mut storages: Vec<StoragePlan<'a>> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut alignment: Vec<usize> = Vec::new();
    let mut plans = Vec::with_capacity(tensors.len());
    for index in 0..tensors.len() {
        let view: TensorView<'a> = tensors.view(index).map_err(errors::tensor)?;
        let spec = view.spec();
        let element = spec.storage.dtype.element_size() as u64;
        // The root storage's bytes, and where the tensor's view starts.
        let (key, root, view_range) = match (&spec.storage.view, file) {
            (None, _) => (spec.storage.key.clone(), view.storage_bytes(), None),
            (Some(v), PyTorchFile::Legacy(legacy)) => match legacy.storage_bytes(&spec.storage.key)
            {
                Some(root) => (
                    spec.storage.key.clone(),
                    root,
                    Some((v.offset * element, v.numel * element)),
                ),
                None => (
                    format!("{}/{}", spec.storage.key, v.key),
                    view.storage_bytes(),
                    None,
                ),
            },
            (Some(v), _) => (
                format!("{}/{}", spec.storage.key, v.key),
                view.storage_bytes(),
                None,
            ),
        };
        let storage = match by_key.get(&key) {
            Some(&storage) => storage,
            None => {
                storages.push(StoragePlan {
                    bytes: root,
                    file_offset: whole.and_then(|whole| offset_in(whole, root)),
                    key: (spec.storage.view.is_none()).then(|| spec.storage.key.clone()),
                });
                alignment.push(1);
                by_key.insert(key, storages.len() - 1);
                storages.len() - 1
            }
        };
        alignment[storage] = alignment[storage].max(spec.dtype.element_size());
        plans.push(TensorPlan {
            path: tensors.path(index).to_owned(),
            dtype: spec.dtype.name(),
            shape: spec.shape.clone(),
            stride: spec.stride.clone(),
            storage,
            storage_offset: spec.storage_offset,
            view: view_range,
            requires_grad: spec.requires_grad,
            parameter: spec.parameter,
        });
    }
    // A storage the file holds misaligned for its dtype is copied instead,
    // and so are small ones, or too many, when tensors are owned.
    let mut private_maps = 0;
    for (storage, align) in storages.iter_mut().zip(alignment) {
        let Some(offset) = storage.file_offset else {
            continue;
        };
        let copied = match placement {
            Placement::Mapped => false,
            Placement::Owned => {
                let copied =
                    storage.bytes.len() < PRIVATE_MAP_MIN || private_maps >= PRIVATE_MAP_MAX;
                private_maps += usize::from(!copied);
                copied
            }
        };
        if copied || offset % align != 0 {
            storage.file_offset = None;
        }
    }
    Ok((plans, storages))
}

/// A `bytearray` of `len` bytes whose contents are not initialised yet
/// (`PyByteArray_FromStringAndSize(NULL, len)`), so its pages are first
/// touched by the copy, not by zeroing.
fn uninit_bytearray(py: Python<'_>, len: usize) -> PyResult<Bound<'_, PyByteArray>> {
    let len = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| TpkgError::new_err(format!("a storage of {len} bytes is too large")))?;
    // SAFETY: a NULL pointer asks CPython for an uninitialised buffer of
    // `len` bytes; the result is a new reference or NULL with an exception.
    unsafe {
        let object = pyo3::ffi::PyByteArray_FromStringAndSize(std::ptr::null(), len);
        Ok(Bound::from_owned_ptr_or_err(py, object)?.cast_into_unchecked())
    }
}

/// A destination the copy threads write: the address and length of a
/// `bytearray`'s buffer no Python code has seen yet.
#[derive(Debug, Clone, Copy)]
struct Destination {
    address: usize,
    len: usize,
}

/// Copies each storage into its destination, largest first, on as many
/// threads as the machine has cores (copying from the page cache is bound
/// by memory bandwidth, which one core does not saturate), releasing the
/// map's pages of each storage once copied.
fn copy_all(tensors: &PackageTensors<'_>, jobs: &[(&StoragePlan<'_>, Destination)]) {
    let total: usize = jobs.iter().map(|(_, d)| d.len).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len())
        .min(total / PARALLEL_COPY_MIN + 1)
        .max(1);
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].1.len));
    let mut shares: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); threads];
    for job in order {
        if let Some(share) = shares.iter_mut().min_by_key(|(load, _)| *load) {
            share.0 += jobs[job].1.len;
            share.1.push(job);
        }
    }
    let copy = |job: usize| {
        let (storage, destination) = &jobs[job];
        // SAFETY: `destination` is the buffer of a bytearray created for
        // this copy, `len` bytes long, reachable from no Python code and
        // written by this thread only; the GIL keeps it alive (its owner
        // holds a reference until the copy returns).
        let target = unsafe {
            std::slice::from_raw_parts_mut(destination.address as *mut u8, destination.len)
        };
        populate(destination.address, destination.len, Populate::Write);
        populate(
            storage.bytes.as_ptr() as usize,
            storage.bytes.len(),
            Populate::Read,
        );
        target.copy_from_slice(storage.bytes);
        if let Some(key) = &storage.key {
            tensors.release_storage(key);
        }
    };
    if threads == 1 {
        (0..jobs.len()).for_each(copy);
        return;
    }
    std::thread::scope(|scope| {
        for (_, share) in shares {
            let copy = &copy;
            scope.spawn(move || share.into_iter().for_each(copy));
        }
    });
}

/// Which page tables [`populate`] fills.
#[derive(Debug, Clone, Copy)]
enum Populate {
    /// Map existing pages for reading (the file's page cache).
    Read,
    /// Allocate and map pages for writing (the destination).
    Write,
}

/// Maps the whole pages of `address..address + len` in one call
/// (`madvise(MADV_POPULATE_READ/WRITE)`, Linux 5.14) instead of one page
/// fault per page during the copy, which costs most of a copy's time in a
/// virtual machine. Best effort: older kernels refuse (false), and the
/// copy then faults as usual.
fn populate(address: usize, len: usize, how: Populate) -> bool {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = address.div_ceil(PAGE) * PAGE;
        let end = (address + len) / PAGE * PAGE;
        if end <= start {
            return true;
        }
        let advice = match how {
            Populate::Read => libc::MADV_POPULATE_READ,
            Populate::Write => libc::MADV_POPULATE_WRITE,
        };
        // SAFETY: madvise only changes page tables of memory this process
        // has mapped (a failure, e.g. on an old kernel, changes nothing).
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, advice) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (address, len, how);
        false
    }
}

/// What [`load_plan`] returns: `(tensors, storages)` for the glue.
fn to_python<'py>(
    py: Python<'py>,
    tensors: &PackageTensors<'_>,
    plans: Vec<TensorPlan>,
    storages: &[StoragePlan<'_>],
) -> PyResult<Bound<'py, PyTuple>> {
    // Owned storages: allocated with the GIL, filled without it.
    let mut buffers: Vec<Option<Bound<'py, PyByteArray>>> = Vec::with_capacity(storages.len());
    let mut jobs = Vec::new();
    for storage in storages {
        if storage.file_offset.is_some() {
            buffers.push(None);
            continue;
        }
        let buffer = uninit_bytearray(py, storage.bytes.len())?;
        let address = buffer.data() as usize;
        jobs.push((
            storage,
            Destination {
                address,
                len: storage.bytes.len(),
            },
        ));
        buffers.push(Some(buffer));
    }
    py.detach(|| copy_all(tensors, &jobs));
    let storage_list = PyList::empty(py);
    for (storage, buffer) in storages.iter().zip(buffers) {
        let entry = match buffer {
            Some(buffer) => (storage.bytes.len(), None, Some(buffer)),
            None => (storage.bytes.len(), storage.file_offset, None),
        };
        storage_list.append(entry)?;
    }
    let tensor_list = PyList::empty(py);
    for t in plans {
        let info = PyDict::new(py);
        info.set_item("requires_grad", t.requires_grad)?;
        info.set_item("parameter", t.parameter)?;
        tensor_list.append((
            t.path,
            t.dtype,
            t.shape,
            t.stride,
            t.storage,
            t.storage_offset,
            t.view,
            info,
        ))?;
    }
    PyTuple::new(py, [storage_list.into_any(), tensor_list.into_any()])
}

/// `_native.load_plan(path, name, policy, mmap)`: audits what loading reads
/// ([`safety::check_loadable`]), then returns `(format, (storages,
/// tensors))`: each storage `(nbytes, file_offset | None, bytearray |
/// None)` (a bytearray, already filled, when the file does not hold the
/// storage as it is, or when owned tensors are asked for and the storage
/// is small), each tensor `(path, dtype, shape, stride,
/// storage index, storage offset, view | None, {"requires_grad",
/// "parameter"})`.
#[pyfunction]
#[pyo3(signature = (path, name=None, policy=None, mmap=false))]
pub(crate) fn load_plan<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    name: Option<String>,
    policy: Option<String>,
    mmap: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let policy = safety::policy(policy.as_deref())?;
    let file = py
        .detach(|| PyTorchFile::open(&path))
        .map_err(|error| errors::open(&path, &error))?;
    py.detach(|| safety::check_loadable(&path, &file, name.as_deref(), &policy))
        .map_err(|refusal| refusal.into_py_err(&path))?;
    let tensors = py
        .detach(|| file.tensors(name.as_deref()))
        .map_err(|error| errors::open(&path, &error))?;
    let placement = if mmap {
        Placement::Mapped
    } else {
        Placement::Owned
    };
    let (plans, storages) = plan(&file, &tensors, placement)?;
    let parts = to_python(py, &tensors, plans, &storages)?;
    let format = file.format().name();
    PyTuple::new(py, [format.into_pyobject(py)?.into_any(), parts.into_any()])
}

/// `_native.populate_private(ranges)`: makes every page of each `(address,
/// length)` range (private writable mappings of the file, made by the
/// glue) the process's own copy at once, on every core, without the GIL:
/// `MADV_POPULATE_WRITE` breaks copy-on-write page by page inside the
/// kernel (a page-cache copy, no zeroing), or, on a kernel without it, a
/// write to each page does.
#[pyfunction]
pub(crate) fn populate_private(py: Python<'_>, ranges: Vec<(usize, usize)>) {
    const PAGE: usize = 4096;
    let own = |&(address, len): &(usize, usize)| {
        // A mapping's last page is whole: populate it too.
        if populate(address, len.div_ceil(PAGE) * PAGE, Populate::Write) {
            return;
        }
        let mut at = address;
        while at < address + len {
            // SAFETY: the glue passes writable mappings it keeps alive
            // during the call; rewriting a byte with itself changes no
            // data and makes the page private.
            unsafe {
                let byte = at as *mut u8;
                byte.write_volatile(byte.read_volatile());
            }
            at = (at / PAGE + 1) * PAGE;
        }
    };
    py.detach(|| {
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(ranges.len())
            .max(1);
        let mut shares: Vec<(usize, Vec<(usize, usize)>)> = vec![(0, Vec::new()); threads];
        let mut by_size = ranges;
        by_size.sort_by_key(|&(_, len)| std::cmp::Reverse(len));
        for range in by_size {
            if let Some(share) = shares.iter_mut().min_by_key(|(load, _)| *load) {
                share.0 += range.1;
                share.1.push(range);
            }
        }
        std::thread::scope(|scope| {
            for (_, share) in shares {
                let own = &own;
                scope.spawn(move || share.iter().for_each(own));
            }
        });
    });
}
