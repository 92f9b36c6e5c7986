"""Oracle: what PyTorch's PackageImporter makes of a package's tensors.

usage: tensor_oracle.py PATH PACKAGE RESOURCE
Loads the pickle (a dict of name -> tensor) and prints, per name: dtype,
shape, stride, storage_offset, requires_grad, parameter, the SHA-256 of the
elements in row-major order as little-endian bytes (shared/corpus/README.md),
and which names share one storage.
"""
import hashlib
import json
import sys

import torch
from torch.package import PackageImporter


def element_bytes(t):
    t = t.detach().contiguous()
    if t.numel() == 0:
        return b""
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def main():
    path, package, resource = sys.argv[1:4]
    value = PackageImporter(path).load_pickle(package, resource)
    out, pointers = {}, {}
    for name, t in value.items():
        out[name] = {
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "storage_offset": t.storage_offset(),
            "requires_grad": t.requires_grad,
            "parameter": isinstance(t, torch.nn.Parameter),
            "sha256": hashlib.sha256(element_bytes(t)).hexdigest(),
        }
        pointers.setdefault(t.untyped_storage().data_ptr(), []).append(name)
    json.dump({"tensors": out, "shared": sorted(v for v in pointers.values() if len(v) > 1)}, sys.stdout)


if __name__ == "__main__":
    main()
