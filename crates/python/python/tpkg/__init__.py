"""tpkg: PyTorch files without running them.

Read every tensor of a torch.package, torch.save (zip or legacy), pickle,
TorchScript or .pt2 file without importing or running anything from it;
audit, inspect and convert files; write packages PyTorch's
``PackageImporter`` loads, resolving modules statically.

    import tpkg
    state = tpkg.load("model.pt")                 # {path: torch.Tensor}
    report = tpkg.audit("model.pt")               # tpkg audit --json
    with tpkg.PackageExporter("nx.pt") as exporter:
        exporter.intern("networkx.**"); exporter.extern("**")
        exporter.save_module("networkx")

The native extension (``tpkg._native``) never links libtorch: tensors are
made here with the installed torch, from buffers the extension fills.
"""

import json as _json
import os as _os

from . import _native
from ._exporter import PackageExporter
from ._native import PackagingError, TpkgError, UnreadableFileError, UnsafeFileError

__all__ = [
    "load",
    "audit",
    "inspect",
    "convert",
    "PackageExporter",
    "TpkgError",
    "UnsafeFileError",
    "UnreadableFileError",
    "PackagingError",
]

__version__ = _native.__version__


def _policy_json(policy):
    """A policy dict (``{"safe": [...], "unsafe": [...]}``), JSON text or None."""
    if policy is None or isinstance(policy, str):
        return policy
    return _json.dumps(policy)


def _address(mapping):
    """The address of a writable mmap's first byte."""
    import ctypes

    view = ctypes.c_char.from_buffer(mapping)
    try:
        return ctypes.addressof(view)
    finally:
        del view


def _owned_from_file(torch, path, wanted):
    """Storages `wanted` ({index: (file_offset, nbytes)}) as memory the
    process owns: a private mapping of each storage's pages, every page
    copied at once by the kernel (no zeroing pass, on every core)."""
    import mmap as _mmap

    built = {}
    ranges = []
    fd = _os.open(path, _os.O_RDONLY)
    try:
        for index, (offset, nbytes) in wanted.items():
            start = offset - offset % _mmap.ALLOCATIONGRANULARITY
            delta = offset - start
            mapping = _mmap.mmap(
                fd,
                delta + nbytes,
                flags=_mmap.MAP_PRIVATE,
                prot=_mmap.PROT_READ | _mmap.PROT_WRITE,
                offset=start,
            )
            ranges.append((_address(mapping), delta + nbytes))
            built[index] = (mapping, delta, nbytes)
    finally:
        _os.close(fd)
    _native.populate_private(ranges)
    return {
        index: torch.frombuffer(mapping, dtype=torch.uint8, count=nbytes, offset=delta).untyped_storage()
        for index, (mapping, delta, nbytes) in built.items()
    }


def _storages(torch, path, storages, mmap):
    """One ``torch.UntypedStorage`` per storage the native plan describes:
    over its bytearray; for a storage the file holds, a slice of the file
    mapped shared as ``torch.load(mmap=True)`` maps it (``mmap``), else a
    private copy of its pages."""
    built = [None] * len(storages)
    in_file = {}
    for index, (nbytes, file_offset, buffer) in enumerate(storages):
        if nbytes == 0:
            built[index] = torch.UntypedStorage(0)
        elif buffer is not None:
            built[index] = torch.frombuffer(buffer, dtype=torch.uint8).untyped_storage()
        else:
            in_file[index] = (file_offset, nbytes)
    if in_file and mmap:
        size = _os.path.getsize(path)
        mapped = torch.UntypedStorage.from_file(path, shared=False, nbytes=size)
        for index, (offset, nbytes) in in_file.items():
            built[index] = mapped[offset : offset + nbytes]
    elif in_file:
        for index, storage in _owned_from_file(torch, path, in_file).items():
            built[index] = storage
    return built


def load(path, name=None, *, mmap=False, policy=None):
    """Every tensor of a PyTorch file, keyed by its state-dict path.

    ``path`` is a torch.package, a torch.save file (zip or legacy), a
    pickle, a TorchScript or a ``.pt2`` file, told apart by content.
    ``name`` is the pickle record to read (``"model/model.pkl"``); by
    default the file's main object (``data.pkl``, a package's first pickle,
    a ``.pt2`` archive's weights).

    Tensors have the dtype, shape, strides, storage offset and storage
    sharing PyTorch would give them (views of one storage share memory);
    ``requires_grad`` and ``nn.Parameter`` are kept. Nothing from the file
    is imported or run. If the pickles the load reads hold anything the
    audit calls unsafe, :class:`UnsafeFileError` is raised naming the
    global and its byte offset (:class:`UnreadableFileError` when part of
    them cannot be read); ``policy`` adds safe or unsafe globals as in
    :func:`audit`.

    With ``mmap=True`` the tensors are views of the file mapped privately
    (as ``torch.load(mmap=True)``: writes never reach the file); storages
    the file does not hold as they are (deflated records, byte-swapped
    big-endian files, storages pickled inside pickles) are copied.
    Otherwise every tensor owns its memory.
    """
    path = _os.fspath(path)
    _format, (storages, tensors) = _native.load_plan(path, name, _policy_json(policy), mmap)
    import torch
    built = _storages(torch, path, storages, mmap)
    views = {}
    result = {}
    for key, dtype, shape, stride, index, offset, view, info in tensors:
        storage = built[index]
        if view is not None:
            cached = views.get((index, view))
            if cached is None:
                start, length = view
                cached = views[(index, view)] = storage[start : start + length]
            storage = cached
        tensor = torch.empty(0, dtype=getattr(torch, dtype))
        tensor.set_(storage, offset, shape, stride)
        if info["parameter"]:
            tensor = torch.nn.Parameter(tensor, requires_grad=info["requires_grad"])
        elif info["requires_grad"]:
            tensor.requires_grad_(True)
        result[key] = tensor
    return result


def audit(paths, *, policy=None):
    """``tpkg audit --json`` as a dict: for one file its report
    (``format``, ``findings``, ``pickles``, ``sources``); for a list of
    paths or a folder ``{"files": [...], "summary": {...}}`` with a
    ``verdict`` per file. ``policy`` is ``{"safe": [...], "unsafe":
    [...]}`` (globals as ``module.name`` or ``module.*``)."""
    single = isinstance(paths, (str, bytes, _os.PathLike))
    if single:
        paths = [paths]
    return _native.audit([_os.fspath(p) for p in paths], single, _policy_json(policy))


def inspect(path):
    """``tpkg inspect --json``'s fields as a dict (``format``, ``prefix``,
    ``records``, ``extern_modules``, ``python_version``, ``version``,
    ``entries``, ``overview``: the summary block of ``tpkg inspect``, with
    ``pickles`` and what each holds, ``tensors`` by dtype, versions and
    module counts), plus ``tensors``: how many the main object holds."""
    return _native.inspect(_os.fspath(path))


def convert(path, out, *, to="safetensors", name=None):
    """``tpkg convert``: the tensors of ``name`` (default: the main
    object) written to ``out`` as ``"safetensors"``, ``"pt"``
    (``torch.save``, loadable with ``weights_only=True``) or, for a
    ScriptModule pickled in a package, ``"torchscript"``. Returns what was
    written."""
    return _native.convert(_os.fspath(path), _os.fspath(out), to, name)
