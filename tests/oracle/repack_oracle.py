"""Oracle: whole-model packages written by PyTorch, and PyTorch running
the packages tpkg repackaged from them.

usage:
  repack_oracle.py make DIR
      DIR/first.pt: a torchvision resnet18 (seed 0) pickled whole with
      torchvision interned (numpy/PIL extern, everything else mocked), as
      in PyTorch's test_model.py. DIR/second.pt: first.pt loaded and
      re-exported by PyTorch with importer=(importer, sys_importer).
      DIR/io.pt: the input and PyTorch's output.
  repack_oracle.py check DIR PKG...
      Loads each PKG's model/model.pkl, runs the input, prints per package
      the max abs difference to PyTorch's output and whether the model's
      classes came from the package.
"""
import json
import os
import sys

import torch
from torch.package import PackageExporter, PackageImporter, sys_importer


def patterns(exporter):
    exporter.intern("torchvision.**")
    exporter.extern(["numpy.**", "PIL.**"])
    exporter.mock("**")


def make(out):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
    first = os.path.join(out, "first.pt")
    with PackageExporter(first) as exporter:
        patterns(exporter)
        exporter.save_pickle("model", "model.pkl", model)
    importer = PackageImporter(first)
    loaded = importer.load_pickle("model", "model.pkl")
    with PackageExporter(os.path.join(out, "second.pt"), importer=(importer, sys_importer)) as exporter:
        patterns(exporter)
        exporter.save_pickle("model", "model.pkl", loaded)
    torch.save({"input": x, "output": y}, os.path.join(out, "io.pt"))
    return {"ok": True}


def check(out, packages):
    io = torch.load(os.path.join(out, "io.pt"), weights_only=True)
    result = {}
    for path in packages:
        model = PackageImporter(path).load_pickle("model", "model.pkl")
        with torch.no_grad():
            y = model(io["input"])
        result[os.path.basename(path)] = {
            "max_abs_diff": (y - io["output"]).abs().max().item(),
            "from_package": type(model).__module__.startswith("<torch_package_"),
        }
    return result


if __name__ == "__main__":
    if sys.argv[1] == "make":
        answer = make(sys.argv[2])
    else:
        answer = check(sys.argv[2], sys.argv[3:])
    json.dump(answer, sys.stdout)
