"""Golden files: packages written by an old PyTorch's own PackageExporter.

usage: make_golden.py OUT_DIR

Run by `cargo xtask golden` (never by the test suite) with the interpreter of
a cached venv holding an old torch: Python 3.8 + torch 1.10.2, or Python 3.11
+ torch 2.0.1. Keep this file runnable on Python 3.8.

Writes into OUT_DIR (which must be empty or absent):
  *.pt and tiny_state_dict_dir/   packages (tests/data/golden/README.md)
  manifest.json                   what a reader must find in each package,
                                  in the corpus format (tests/data/corpus/README.md),
                                  computed from what this PyTorch's own
                                  PackageImporter loads back
  torch_save/*.pt, torch_save/plain.pkl, torch_save/manifest.json
                                  the torch.save family: torch.save (zip and
                                  legacy) of a state dict, every dtype, a
                                  training checkpoint and a whole module;
                                  torch.jit.save; pickle.dump

Prints one JSON object: the files written and their sizes.
"""
import collections
import hashlib
import inspect
import json
import os
import pickle
import sys
import zipfile

import torch
import torch.package.package_exporter as package_exporter
from torch.package import PackageExporter, PackageImporter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from value_image import element_bytes, image, join, key  # noqa: E402

VERSION = torch.__version__.split("+")[0]
# torch 1.10's save_pickle has no pickle_protocol argument (always 3).
PROTOCOLS = (3, 4) if "pickle_protocol" in inspect.signature(
    PackageExporter.save_pickle).parameters else (3,)


# ----------------------------------------------------------------------------
# What a reader must find


def tensor_entry(path, t):
    return {
        "path": path,
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": t.storage_offset(),
        "requires_grad": t.requires_grad,
        "parameter": isinstance(t, torch.nn.Parameter),
        "sha256": hashlib.sha256(element_bytes(t)).hexdigest(),
    }


def tensors(v):
    """Every tensor reachable in v, as the corpus manifests list them
    (see walk_tensors)."""
    return [tensor_entry(path, t) for path, t in walk_tensors(v)]


def walk_tensors(v, path="", on_path=None, out=None):
    """(path, tensor) for every tensor reachable in v: dict keys and
    list/tuple indexes joined with '.', a module's tensors by their
    state_dict() key (the module's own tensors: parameters stay
    parameters)."""
    on_path = set() if on_path is None else on_path
    out = [] if out is None else out
    if isinstance(v, torch.Tensor):
        out.append((path, v))
        return out
    if id(v) in on_path:
        return out
    on_path.add(id(v))
    if isinstance(v, torch.nn.Module):
        for k, t in v.state_dict(keep_vars=True).items():
            if isinstance(t, torch.Tensor):
                out.append((join(path, k), t))
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            walk_tensors(x, join(path, str(i)), on_path, out)
    elif isinstance(v, dict):
        for k, x in v.items():
            walk_tensors(x, join(path, key(k)), on_path, out)
    on_path.discard(id(v))
    return out


def shared_storages(v):
    """The paths of v's tensors that share one storage, grouped in order of
    first use (groups of one left out)."""
    groups = collections.OrderedDict()
    for path, t in walk_tensors(v):
        storage = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
        # Empty storages may all have data pointer 0: never shared.
        ident = storage.data_ptr() if t.numel() and storage.data_ptr() else ("empty", path)
        groups.setdefault(ident, []).append(path)
    return [g for g in groups.values() if len(g) > 1]


def zip_layout(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    prefix = names[0].split("/", 1)[0]
    return prefix, sorted(name[len(prefix) + 1:] for name in names)


def manifest_entry(path, note, pickles, torchscript=None):
    """The manifest entry of one package, from the zip's own listing and
    what this PyTorch's PackageImporter reads back."""
    importer = PackageImporter(path)
    prefix, records = zip_layout(path)
    python_version = None
    if hasattr(importer, "python_version"):
        python_version = importer.python_version()
    entry = {
        "note": note,
        "torch": VERSION,
        "prefix": prefix,
        "records": records,
        "extern_modules": list(importer.extern_modules),
        "python_version": python_version,
        "pickles": {},
    }
    for package, resource in pickles:
        value = importer.load_pickle(package, resource)
        entry["pickles"][package.replace(".", "/") + "/" + resource] = {
            "value": image(value),
            "tensors": tensors(value),
        }
    if torchscript:
        entry["torchscript"] = torchscript
    return entry, importer


# ----------------------------------------------------------------------------
# The values


def rich_values():
    shared = [1, 2, 3]
    return {
        "ints": [0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -(2**31), 2**31,
                 2**63 - 1, 2**64, -(2**100)],
        "floats": [0.0, -0.0, 1.5, -2.25e-300, 1e308, float("inf"), float("-inf")],
        "strings": ["", "ascii", "\u00fcn\u00efc\u00f6d\u00e9 \U0001f680", "x" * 300],
        "bytes": [b"", b"\x00\xff", bytes(range(256)) * 2],
        "bytearray": bytearray(b"abc"),
        "singletons": [None, True, False],
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        "nested": {"a": [{"b": (1, [2, {"c": None}])}]},
        "int_keys": {1: "one", 2: "two", (3, 4): "tuple-key"},
        "set": {1, 2, 3},
        "frozenset": frozenset({"x", "y"}),
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "complex": complex(1.5, -2.0),
        "shared_twice": [shared, shared],
        "torch_size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "device": torch.device("cpu"),
    }


def rich_tensors():
    g = torch.Generator().manual_seed(1)
    out = collections.OrderedDict()
    base = torch.randn(2, 3, generator=g)
    out["float32"] = base
    out["float64"] = base.double()
    out["float16"] = base.half()
    out["bfloat16"] = base.bfloat16()
    out["int8"] = torch.arange(-3, 3, dtype=torch.int8).reshape(2, 3)
    out["uint8"] = torch.arange(250, 256, dtype=torch.uint8).reshape(2, 3)
    out["int16"] = torch.arange(-300, 300, 100, dtype=torch.int16).reshape(2, 3)
    out["int32"] = torch.tensor([[-(2**31), 0, 2**31 - 1], [1, 2, 3]], dtype=torch.int32)
    out["int64"] = torch.tensor([[-(2**63), 0, 2**63 - 1], [1, 2, 3]], dtype=torch.int64)
    out["bool"] = base > 0
    out["complex64"] = torch.complex(base, -base)
    out["complex128"] = torch.complex(base.double(), base.double() * 2)
    out["scalar"] = torch.tensor(3.25)
    out["empty"] = torch.zeros(0, 3)
    out["transposed"] = torch.arange(24, dtype=torch.float32).reshape(4, 6).t()
    out["strided"] = torch.arange(24, dtype=torch.float32).reshape(4, 6)[:, ::2]
    out["offset_view"] = torch.arange(24, dtype=torch.float32).reshape(4, 6)[2:]
    out["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(4, 3)
    out["channels_last"] = torch.randn(2, 3, 4, 5, generator=g).contiguous(
        memory_format=torch.channels_last)
    shared = torch.arange(12, dtype=torch.float32)
    out["shared_a"] = shared
    out["shared_b"] = shared[4:8]
    out["requires_grad"] = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out["parameter"] = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    return out


def many_tensors():
    """300 small tensors: 200 in a dict, 100 in a list, dtypes and shapes
    cycling."""
    g = torch.Generator().manual_seed(2)
    dtypes = [torch.float32, torch.int64, torch.float16, torch.bool, torch.float64, torch.int32]

    def make(i):
        shape = (i % 4 + 1, i % 3 + 1)
        x = torch.randn(*shape, generator=g)
        dtype = dtypes[i % len(dtypes)]
        if dtype == torch.bool:
            return x > 0
        if dtype in (torch.int64, torch.int32):
            return (x * 1000).to(dtype)
        return x.to(dtype)

    return {
        "named": {"t%03d" % i: make(i) for i in range(200)},
        "listed": [make(200 + i) for i in range(100)],
    }


def cyclic():
    """A list containing itself, a dict referencing itself, a tensor inside
    the cycle."""
    loop = [1, "two"]
    loop.append(loop)
    node = {"name": "node"}
    node["self"] = node
    node["tensor"] = torch.arange(4, dtype=torch.int64)
    node["loop"] = loop
    return {"list": loop, "dict": node}


def tiny_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    )


MODEL_SOURCE = """import torch
import torch_package_importer as resources

def build():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    )

def load():
    m = build()
    m.load_state_dict(resources.load_pickle('model', 'state_dict.pkl'))
    return m.eval()
"""


class Scripted(torch.nn.Module):
    """A small module for torch.jit.script: a conv, a parameter, a branch."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.scale = torch.nn.Parameter(torch.full([1], 0.5))

    def forward(self, x):
        y = self.conv(x)
        if bool(y.sum() > 0):
            y = y * self.scale
        return torch.relu(y).flatten(1)


def trained_cnn():
    torch.manual_seed(0)
    model = tiny_cnn()
    # Non-trivial batch norm statistics.
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 8, 8))
    return model.eval()


def max_diff(a, b):
    return (a - b).abs().max().item()


# ----------------------------------------------------------------------------
# The packages


def write_values(out, protocol):
    path = os.path.join(out, "values_p%d.pt" % protocol)
    kwargs = {} if PROTOCOLS == (3,) else {"pickle_protocol": protocol}
    with PackageExporter(path) as e:
        e.save_pickle("data", "values.pkl", rich_values(), **kwargs)
        e.save_pickle("data", "tensors.pkl", rich_tensors(), **kwargs)
    note = ("python values and tensors of every dtype and layout, pickle protocol %d"
            % protocol)
    entry, _ = manifest_entry(path, note, [("data", "values.pkl"), ("data", "tensors.pkl")])
    return entry


def write_tiny_state_dict(out):
    path = os.path.join(out, "tiny_state_dict.pt")
    model = trained_cnn()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = model(x)
    with PackageExporter(path) as e:
        e.save_source_string("model", MODEL_SOURCE, is_package=True)
        e.save_pickle("model", "state_dict.pkl", model.state_dict())
        e.save_pickle("check", "io.pkl", {"input": x, "output": y})
    note = ("a small CNN as a state dict plus a load() entry point; check/io.pkl "
            "holds an input and the expected output")
    entry, importer = manifest_entry(path, note, [("check", "io.pkl"), ("model", "state_dict.pkl")])
    with torch.no_grad():
        again = importer.import_module("model").load()(x)
    assert max_diff(again, y) == 0.0, "model.load() does not reproduce the output"
    # PyTorch's directory form: the same package unzipped.
    folder = os.path.join(out, "tiny_state_dict_dir")
    with zipfile.ZipFile(path) as z:
        z.extractall(folder)
    entry["directory_form"] = "tiny_state_dict_dir"
    return entry


def write_tiny_whole_module(out):
    path = os.path.join(out, "tiny_whole_module.pt")
    model = trained_cnn()
    with PackageExporter(path) as e:
        e.save_pickle("model", "model.pkl", model)
    entry, importer = manifest_entry(path, "the same CNN pickled as a whole nn.Module",
                                     [("model", "model.pkl")])
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert max_diff(importer.load_pickle("model", "model.pkl")(x), model(x)) == 0.0
    return entry


def write_torchvision_model(out):
    """squeezenet1_1 (1.2M parameters, about 5 MB) pickled whole with its
    torchvision code interned; resnet18 (45 MB) is too big for git."""
    import torchvision

    path = os.path.join(out, "torchvision_squeezenet.pt")
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1().eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    with PackageExporter(path) as e:
        e.intern("torchvision.**")
        e.extern("**", exclude=["torchvision.**"])
        e.save_pickle("model", "model.pkl", model)
        e.save_pickle("check", "io.pkl", {"input": x, "output": y})
    note = ("torchvision squeezenet1_1 (seed 0) pickled whole, torchvision's code "
            "interned, everything else externed; check/io.pkl holds an input and output")
    entry, importer = manifest_entry(path, note, [("model", "model.pkl"), ("check", "io.pkl")])
    with torch.no_grad():
        again = importer.load_pickle("model", "model.pkl")(x)
    assert max_diff(again, y) == 0.0, "the packaged squeezenet gives another output"
    return entry


def write_torchscript(out):
    path = os.path.join(out, "torchscript.pt")
    torch.manual_seed(0)
    model = torch.jit.script(Scripted().eval())
    x = torch.rand(2, 3, 6, 6)
    with torch.no_grad():
        y = model(x)
    # PyTorch gates TorchScript in packages behind this flag (beta).
    package_exporter._gate_torchscript_serialization = False
    with PackageExporter(path) as e:
        e.save_pickle("model", "scripted.pkl", model)
        e.save_pickle("check", "io.pkl", {"input": x, "output": y})
    note = ("torch.jit.script of a small module (conv, parameter, branch) saved "
            "with save_pickle; check/io.pkl holds an input and the output")
    with zipfile.ZipFile(path) as z:
        ts_ids = sorted({
            name.split("/")[3] for name in z.namelist()
            if name.split("/")[1:3] == [".data", "ts_code"] and name.endswith("/data.pkl")
        })
    torchscript = {"model/scripted.pkl": {"ts_ids": ts_ids, "check": "check/io.pkl"}}
    entry, importer = manifest_entry(path, note, [("check", "io.pkl")], torchscript)
    loaded = importer.load_pickle("model", "scripted.pkl")
    with torch.no_grad():
        assert max_diff(loaded(x), y) == 0.0, "the packaged script module gives another output"
    return entry


def write_many_tensors(out):
    path = os.path.join(out, "many_tensors.pt")
    with PackageExporter(path) as e:
        e.save_pickle("data", "many.pkl", many_tensors())
    note = "300 small tensors (200 in a dict, 100 in a list), dtypes and shapes cycling"
    entry, _ = manifest_entry(path, note, [("data", "many.pkl")])
    return entry


def write_cycle(out):
    path = os.path.join(out, "cycle.pt")
    with PackageExporter(path) as e:
        e.save_pickle("data", "cycle.pkl", cyclic())
    note = "a list containing itself and a dict referencing itself (with a tensor inside)"
    entry, importer = manifest_entry(path, note, [("data", "cycle.pkl")])
    value = importer.load_pickle("data", "cycle.pkl")
    assert value["list"][2] is value["list"] and value["dict"]["self"] is value["dict"]
    return entry


def write_sources_and_resources(out):
    path = os.path.join(out, "sources_and_resources.pt")
    with PackageExporter(path) as e:
        e.extern(["math", "json"])
        e.save_source_string("pkg", "from . import sub\nfrom .sub import helper\nVALUE = 1\n",
                             is_package=True)
        e.save_source_string("pkg.sub", "import math\nfrom pkg import VALUE\n\n"
                             "def helper():\n    return math.pi + VALUE\n")
        e.save_source_string("pkg.deep.mod", "import json\n")
        e.save_text("assets", "readme.txt", "hello from a package\n")
        e.save_text("assets.nested", "a.md", "# nested resource\n")
        e.save_binary("assets", "blob.bin", bytes(range(256)))
    entry, importer = manifest_entry(
        path, "source strings in nested packages, text and binary resources", [])
    assert importer.load_binary("assets", "blob.bin") == bytes(range(256))
    return entry


def write_mocked(out):
    """numpy is mocked: it is installed in every golden venv (the exporter
    imports a mocked module to learn whether it is a package)."""
    path = os.path.join(out, "mocked.pt")
    with PackageExporter(path) as e:
        e.mock("numpy.**")
        e.save_source_string("uses_mocked", "import numpy\nimport numpy.linalg\nimport torch\n")
    entry, importer = manifest_entry(path, "a module whose dependency (numpy) is mocked", [])
    importer.import_module("uses_mocked")
    return entry


# ----------------------------------------------------------------------------
# torch.save files


def save_state_dict():
    """The CNN's state dict plus two views of one storage, a float16 and an
    int64 tensor."""
    state = trained_cnn().state_dict()
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state["extra.transposed"] = base.t()
    state["extra.offset_view"] = base[2:]
    state["extra.float16"] = torch.linspace(-2, 2, 7).half()
    state["extra.int64"] = torch.tensor([-(2**63), 0, 2**63 - 1])
    return state


def save_dtypes():
    """One tensor per dtype both versions have (quantized dtypes left out:
    tpkg reads no quantized tensors)."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(2, 3, generator=g)
    return collections.OrderedDict([
        ("float32", base),
        ("float64", base.double()),
        ("float16", base.half()),
        ("bfloat16", base.bfloat16()),
        ("int8", torch.arange(-3, 3, dtype=torch.int8).reshape(2, 3)),
        ("int16", torch.arange(-300, 300, 100, dtype=torch.int16).reshape(2, 3)),
        ("int32", torch.tensor([[-(2**31), 0, 2**31 - 1], [1, 2, 3]], dtype=torch.int32)),
        ("int64", torch.tensor([[-(2**63), 0, 2**63 - 1], [1, 2, 3]], dtype=torch.int64)),
        ("uint8", torch.arange(250, 256, dtype=torch.uint8).reshape(2, 3)),
        ("bool", base > 0),
        ("complex64", torch.complex(base, -base)),
        ("complex128", torch.complex(base.double(), base.double() * 2)),
    ])


def save_checkpoint():
    """A training checkpoint: the CNN and its SGD (momentum) state after one
    step."""
    model = trained_cnn().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    loss = model(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {
        "epoch": 3,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "loss": loss.item(),
        "note": "one SGD step with momentum 0.9",
    }


def save_plain_pickle():
    return {
        "weights": torch.linspace(-1, 1, 6).reshape(2, 3),
        "ids": torch.tensor([3, -1, 2**40], dtype=torch.int64),
        "meta": {"name": "x", "n": 3},
    }


def torch_save_entry(path, note, kind, loaded, value=True):
    """A torch_save/manifest.json entry from what this PyTorch's loader
    returned (value=False: no value image, the loader ran code)."""
    entry = {
        "note": note,
        "torch": VERSION,
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "format": kind,
        "value": image(loaded) if value else None,
        "tensors": tensors(loaded),
        "shared_storages": shared_storages(loaded),
    }
    if kind in ("zip", "torchscript"):
        entry["prefix"], entry["records"] = zip_layout(path)
    return entry


def write_torch_save(out):
    folder = os.path.join(out, "torch_save")
    os.makedirs(folder)
    manifest = {}
    legacy = {"_use_new_zipfile_serialization": False}

    # torch.save of plain values, in both formats.
    values = [
        ("state_dict", save_state_dict(),
         "a small CNN's state dict plus views sharing one storage"),
        ("dtypes", save_dtypes(), "one tensor per dtype (%d dtypes)" % len(save_dtypes())),
        ("checkpoint", save_checkpoint(),
         "a training checkpoint: epoch, the CNN's state dict, an SGD (momentum) "
         "state dict after one step, loss, note"),
    ]
    for stem, value, note in values:
        for name, kind, kwargs in [(stem + ".pt", "zip", {}),
                                   (stem + "_legacy.pt", "legacy", legacy)]:
            path = os.path.join(folder, name)
            torch.save(value, path, **kwargs)
            loaded = torch.load(path)
            entry = torch_save_entry(path, "%s, torch.save (%s format)" % (note, kind),
                                     kind, loaded)
            assert entry["tensors"] == tensors(value), "%s: tensors changed" % name
            manifest[name] = entry

    # A whole nn.Module: torch.load rebuilds it from torch's own classes.
    path = os.path.join(folder, "whole_module.pt")
    model = trained_cnn()
    torch.save(model, path)
    loaded = torch.load(path)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert max_diff(loaded(x), model(x)) == 0.0, "the loaded module gives another output"
    manifest["whole_module.pt"] = torch_save_entry(
        path, "the small CNN (nn.Sequential) saved whole, torch.save (zip format)", "zip",
        loaded)

    # TorchScript: torch.jit.load runs the module's code, so no value image;
    # the tensors are the loaded module's state_dict() items.
    path = os.path.join(folder, "torchscript_module.pt")
    torch.manual_seed(0)
    scripted = torch.jit.script(Scripted().eval())
    torch.jit.save(scripted, path)
    loaded = torch.jit.load(path)
    x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert max_diff(loaded(x), scripted(x)) == 0.0, "the loaded script module differs"
    manifest["torchscript_module.pt"] = torch_save_entry(
        path, "torch.jit.save of torch.jit.script of a small module (conv, parameter, "
        "branch)", "torchscript", loaded, value=False)

    # A plain pickle: each storage is torch.storage._load_from_bytes of the
    # bytes of a (legacy) torch.save of that storage.
    path = os.path.join(folder, "plain.pkl")
    with open(path, "wb") as f:
        pickle.dump(save_plain_pickle(), f, protocol=2)
    with open(path, "rb") as f:
        loaded = pickle.load(f)
    manifest["plain.pkl"] = torch_save_entry(
        path, "pickle.dump (protocol 2) of a dict with a float and an int64 tensor "
        "and plain values", "pickle", loaded)

    write_json(os.path.join(folder, "manifest.json"), manifest)


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    out = sys.argv[1]
    if os.path.exists(out) and os.listdir(out):
        sys.exit("%s is not empty" % out)
    os.makedirs(out, exist_ok=True)
    manifest = {}
    for protocol in PROTOCOLS:
        manifest["values_p%d.pt" % protocol] = write_values(out, protocol)
    manifest["tiny_state_dict.pt"] = write_tiny_state_dict(out)
    manifest["tiny_whole_module.pt"] = write_tiny_whole_module(out)
    manifest["torchvision_squeezenet.pt"] = write_torchvision_model(out)
    manifest["torchscript.pt"] = write_torchscript(out)
    manifest["many_tensors.pt"] = write_many_tensors(out)
    manifest["cycle.pt"] = write_cycle(out)
    manifest["sources_and_resources.pt"] = write_sources_and_resources(out)
    manifest["mocked.pt"] = write_mocked(out)
    write_json(os.path.join(out, "manifest.json"), manifest)
    write_torch_save(out)
    sizes = {}
    for folder, _, files in os.walk(out):
        for file in files:
            full = os.path.join(folder, file)
            sizes[os.path.relpath(full, out)] = os.path.getsize(full)
    json.dump({"torch": VERSION, "python": sys.version.split()[0], "files": sizes},
              sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
