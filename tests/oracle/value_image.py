"""The value image of shared/corpus/README.md, in Python: the reference the
Rust side (tpkg::show::image) is compared with. A reference back to a
container being rendered (a cycle) is {"cycle": path}; a tensor is
{"tensor": path}; an nn.Module is {"module": class, "state_dict": ...} with
its state_dict() keys. Class names are demangled (a class a PackageImporter
loaded is named as the package's pickle names it).

Runs on every Python a golden venv uses (3.8 and later): keep it free of
newer syntax and library calls.
"""
import collections

import torch

try:
    from torch.package._mangling import demangle
except ImportError:  # a torch without torch.package

    def demangle(name):
        return name


def key(k):
    """A dict key in an image or a path: strings as themselves, anything
    else by its Python repr."""
    return k if isinstance(k, str) else repr(k)


def join(path, part):
    """A child's path: the parts joined with '.', the top value's path ''."""
    return part if path == "" else path + "." + part


def class_name(v):
    cls = type(v)
    return demangle(cls.__module__) + "." + cls.__qualname__


def element_bytes(t):
    """A tensor's elements in row-major order as little-endian bytes (bool
    as one byte, complex as real/imag pairs), as the manifests' sha256 hashes
    them. Works on torch 1.10 (no Tensor.view(dtype) across sizes there)."""
    t = t.detach().contiguous()
    if t.numel() == 0:
        return b""
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.reshape(-1).numpy().tobytes()


def image(v, path="", active=None):
    active = {} if active is None else active
    if id(v) in active:
        return {"cycle": active[id(v)]}
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if abs(v) < 2**53 else {"int": str(v)}
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, complex):
        return {"complex": [v.real, v.imag]}
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    if isinstance(v, bytearray):
        return {"bytearray": bytes(v).hex()}
    if isinstance(v, torch.dtype):
        return {"torch.dtype": str(v)}
    if isinstance(v, torch.device):
        return {"torch.device": str(v)}
    if isinstance(v, torch.Tensor):
        return {"tensor": path}
    if isinstance(v, torch.nn.Module):
        keys = [k for k, t in v.state_dict().items() if isinstance(t, torch.Tensor)]
        return {
            "module": class_name(v),
            "state_dict": {"OrderedDict": [[k, {"tensor": join(path, k)}] for k in keys]},
        }
    if isinstance(v, frozenset):
        return {"frozenset": sorted(repr(x) for x in v)}
    if isinstance(v, set):
        return {"set": sorted(repr(x) for x in v)}
    active[id(v)] = path
    try:
        if isinstance(v, torch.Size):
            return {"torch.Size": [image(x, join(path, str(i)), active) for i, x in enumerate(v)]}
        if isinstance(v, tuple):
            return {"tuple": [image(x, join(path, str(i)), active) for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [image(x, join(path, str(i)), active) for i, x in enumerate(v)]
        if isinstance(v, dict):
            kind = "OrderedDict" if isinstance(v, collections.OrderedDict) else "dict"
            return {kind: [[key(k), image(x, join(path, key(k)), active)] for k, x in v.items()]}
        return {"object": class_name(v)}
    finally:
        del active[id(v)]
