"""Writes one file of each zip PyTorch format into OUT_DIR with the pinned
PyTorch, and prints, for each, what PyTorch's own loader gives: every
tensor's path, dtype, shape, stride, storage offset and the sha256 of its
elements (row-major, little-endian bytes).

usage: formats_oracle.py OUT_DIR
"""
import hashlib
import io
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
    elif isinstance(value, torch.jit.ScriptModule):
        for key, tensor in value.state_dict().items():
            out.append(row(prefix + key, tensor))
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


def write_packages(out, report):
    """Tensors where PyTorch's own torch.package tests put them: TorchScript
    modules pickled into a package, fx GraphModules, plain tensor
    attributes, a float8 tensor over an UntypedStorage."""
    import torchvision
    from torch.package import PackageExporter, PackageImporter
    import torch.package.package_exporter as package_exporter

    package_exporter._gate_torchscript_serialization = False
    torch.manual_seed(0)
    resnet = torch.jit.script(torchvision.models.resnet18().eval())
    small = torch.jit.script(Net().eval())
    traced = torch.fx.symbolic_trace(Net())
    cases = {
        "scripted": {"resnet": resnet, "small": [small, small], "plain": torch.ones(2)},
        "fx": traced,
        "attributes": WithAttributes(),
        "float8": {"f8": torch.randn(5).to(torch.float8_e4m3fn), "u16": torch.arange(3).to(torch.uint16)},
    }
    path = os.path.join(out, "package_places.pt")
    with PackageExporter(path) as exporter:
        exporter.extern("**", exclude=["__main__"])
        exporter.intern("__main__")
        for name, value in cases.items():
            exporter.save_pickle("cases", name + ".pkl", value)
    importer = PackageImporter(path)
    for name in cases:
        tensors = []
        object_tensors(importer.load_pickle("cases", name + ".pkl"), "", tensors)
        report["package_places.pt:cases/%s.pkl" % name] = {
            "format": "package", "tensors": tensors}

    path = os.path.join(out, "fx_module.pt")
    torch.save(traced, path)
    tensors = []
    object_tensors(torch.load(path, weights_only=False), "", tensors)
    report["fx_module.pt"] = {"format": "torch.save", "tensors": tensors}


def write_pickles(out, report):
    """Plain pickle files: each protocol, and several pickles in a row.
    (Without uint16-64 and float8: their storages pickle as legacy
    torch.save bytes of an UntypedStorage, which torch.load refuses.)"""
    import pickle

    values = {k: v for k, v in state_dict_values().items()
              if not k.startswith(("uint16", "uint32", "uint64", "float8"))}
    for protocol in range(0, 6):
        name = "plain_p%d.pkl" % protocol
        with open(os.path.join(out, name), "wb") as f:
            pickle.dump(values, f, protocol=protocol)
        with open(os.path.join(out, name), "rb") as f:
            loaded = pickle.load(f)
        tensors = []
        object_tensors(loaded, "", tensors)
        report[name] = {"format": "pickle", "tensors": tensors}
    name = "plain_several.pkl"
    with open(os.path.join(out, name), "wb") as f:
        pickle.dump({"a": values["float32"]}, f, protocol=2)
        pickle.dump([values["int64"], values["bool"]], f, protocol=4)
    tensors = []
    with open(os.path.join(out, name), "rb") as f:
        for index in range(2):
            object_tensors(pickle.load(f), str(index), tensors)
    report[name] = {"format": "pickle", "tensors": tensors}


def write_big_endian(out, report):
    """A zip torch.save whose byteorder record says big, its storages
    swapped as a big-endian machine writes them: torch.load swaps them
    back (by the storage type's element size)."""
    import zipfile

    little = os.path.join(out, "little.pt")
    torch.save(state_dict_values(), little)
    units = storage_units(little)
    path = os.path.join(out, "big_endian.pt")
    with zipfile.ZipFile(little) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            rest = info.filename.partition("/")[2]
            if rest == "byteorder":
                data = b"big"
            elif rest.startswith("data/"):
                data = swapped(data, units[rest[len("data/"):]])
            dst.writestr(info.filename, data)
    os.remove(little)
    tensors = [row(k, v) for k, v in torch.load(path, weights_only=True).items()]
    report["big_endian.pt"] = {"format": "torch.save", "tensors": tensors}


def swapped(data, unit):
    """Each `unit`-byte run of `data` reversed."""
    out = bytearray(data)
    for start in range(0, len(out) - unit + 1, unit):
        out[start:start + unit] = out[start:start + unit][::-1]
    return bytes(out)


def storage_units(path):
    """Storage key -> the unit torch.load byte-swaps it by: the storage
    type's element size (complex: each part's), 1 for UntypedStorage."""
    import pickle
    import zipfile

    units = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module in ("torch._utils", "collections"):
                return lambda *args: None
            return super().find_class(module, name)

        def persistent_load(self, pid):
            _, storage_type, key, _, _ = pid
            if storage_type is torch.UntypedStorage:
                units[key] = 1
            else:
                dtype = storage_type(0).dtype
                unit = torch.empty((), dtype=dtype).element_size()
                units[key] = unit // 2 if dtype.is_complex else unit
            return None

    with zipfile.ZipFile(path) as z:
        name = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        Unpickler(io.BytesIO(z.read(name))).load()
    return units


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
    write_packages(out, report)
    write_pickles(out, report)
    write_big_endian(out, report)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
