"""The value image of shared/corpus/README.md, in Python: the reference the
Rust side (tpkg::show::image) is compared with. Plain data only (no tensors).
A reference back to a container being rendered (a cycle) is {"cycle": path}."""
import collections

import torch


def _key(k):
    return k if isinstance(k, str) else repr(k)


def _join(path, part):
    return part if path == "" else f"{path}.{part}"


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
    if isinstance(v, frozenset):
        return {"frozenset": sorted(repr(x) for x in v)}
    if isinstance(v, set):
        return {"set": sorted(repr(x) for x in v)}
    active[id(v)] = path
    try:
        if isinstance(v, torch.Size):
            return {"torch.Size": [image(x, _join(path, str(i)), active) for i, x in enumerate(v)]}
        if isinstance(v, tuple):
            return {"tuple": [image(x, _join(path, str(i)), active) for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [image(x, _join(path, str(i)), active) for i, x in enumerate(v)]
        if isinstance(v, dict):
            kind = "OrderedDict" if isinstance(v, collections.OrderedDict) else "dict"
            return {kind: [[_key(k), image(x, _join(path, _key(k)), active)] for k, x in v.items()]}
        return {"object": type(v).__module__ + "." + type(v).__qualname__}
    finally:
        del active[id(v)]
