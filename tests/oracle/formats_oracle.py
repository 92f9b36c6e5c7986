"""Writes one file of each zip PyTorch format into OUT_DIR with the pinned
PyTorch, and prints, for each, what PyTorch's own loader gives: every
tensor's path, dtype, shape, stride, storage offset and the sha256 of its
elements (row-major, little-endian bytes).

usage: formats_oracle.py OUT_DIR
"""
import hashlib
import json
import os
import sys

import torch


def element_sha256(t):
    t = t.detach().contiguous().reshape(-1)
    data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return hashlib.sha256(data).hexdigest()


def row(path, t):
    return {
        "path": path,
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": t.storage_offset(),
        "sha256": element_sha256(t),
    }


def state_dict_values():
    g = torch.Generator().manual_seed(0)
    values = {}
    for dtype in [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                  torch.complex64, torch.complex128]:
        values[str(dtype)[6:]] = torch.randn(3, 4, generator=g).to(dtype)
    for dtype in [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8,
                  torch.uint16, torch.uint32, torch.uint64]:
        values[str(dtype)[6:]] = torch.randint(0, 100, (5,), generator=g).to(dtype)
    values["bool"] = torch.tensor([True, False, True])
    values["float8_e4m3fn"] = torch.randn(6, generator=g).to(torch.float8_e4m3fn)
    values["float8_e5m2"] = torch.randn(6, generator=g).to(torch.float8_e5m2)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    values["base"] = base
    values["transposed"] = base.t()
    values["offset_view"] = base[1:, 2:]
    values["scalar"] = torch.tensor(3.5)
    values["empty"] = torch.zeros(0, 3)
    return values


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.register_buffer("half_buffer", torch.arange(6, dtype=torch.float16))
        self.register_buffer("steps", torch.tensor([7], dtype=torch.int64))

    def forward(self, x):
        return self.linear(x) + self.half_buffer[:3].float() + self.steps.float()


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.tensor = torch.ones(3)


class WithAttributes(torch.nn.Module):
    """Tensors outside the state dict: plain attributes, modules in a
    list, a dict of tensors, a submodule's plain attribute."""

    def __init__(self):
        super().__init__()
        self.sub_mod = Block()
        self.tensor = torch.arange(4.0)
        self.blocks = [torch.nn.Linear(1, 1), torch.nn.Linear(1, 2)]
        self.table = {"k": torch.zeros(2)}


def object_tensors(value, path, out):
    """Every tensor of a loaded object with its attribute path: a module's
    state_dict() entries, then its other attributes and its submodules'."""
    prefix = path + "." if path else ""
    if isinstance(value, torch.Tensor):
        out.append(row(path, value))
    elif isinstance(value, torch.nn.Module):
        for key, tensor in value.state_dict(keep_vars=True).items():
            out.append(row(prefix + key, tensor))
        module_attributes(value, path, out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            object_tensors(item, prefix + str(index), out)
    elif isinstance(value, dict):
        for key, item in value.items():
            object_tensors(item, prefix + str(key), out)


def module_attributes(module, path, out):
    prefix = path + "." if path else ""
    for key, value in vars(module).items():
        if not key.startswith("_"):
            object_tensors(value, prefix + key, out)
    for name, sub in module._modules.items():
        module_attributes(sub, prefix + name, out)


def main():
    out = sys.argv[1]
    report = {}
    values = state_dict_values()
    path = os.path.join(out, "checkpoint.pt")
    torch.save(values, path)
    loaded = torch.load(path, weights_only=True)
    report["checkpoint.pt"] = {"format": "torch.save",
                               "tensors": [row(k, v) for k, v in loaded.items()]}

    torch.manual_seed(0)
    net = Net().eval()
    path = os.path.join(out, "net.pt2")
    torch.export.save(torch.export.export(net, (torch.randn(2, 4),)), path)
    program = torch.export.load(path)
    tensors = dict(program.state_dict)
    tensors.update(program.constants)
    report["net.pt2"] = {"format": "pt2",
                         "tensors": [row(k, v) for k, v in tensors.items()
                                     if isinstance(v, torch.Tensor)]}

    path = os.path.join(out, "module_attributes.pt")
    torch.save(WithAttributes(), path)
    tensors = []
    object_tensors(torch.load(path, weights_only=False), "", tensors)
    report["module_attributes.pt"] = {"format": "torch.save", "tensors": tensors}

    path = os.path.join(out, "net_scripted.pt")
    torch.jit.save(torch.jit.script(net), path)
    scripted = torch.jit.load(path)
    report["net_scripted.pt"] = {"format": "torchscript",
                                 "tensors": [row(k, v) for k, v in scripted.state_dict().items()]}
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
