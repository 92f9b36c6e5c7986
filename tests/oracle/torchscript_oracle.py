"""Oracle: a TorchScript resnet18 inside a package, as PyTorch's
test_model.py packages one, and checks of the standalone file tpkg writes.

usage:
  torchscript_oracle.py make DIR
      DIR/scripted.pt: torch.jit.script(resnet18) (seed 0) saved with
      save_pickle into a package; DIR/io.pt: input and PyTorch's output.
  torchscript_oracle.py check DIR STANDALONE
      torch.jit.load(STANDALONE), runs the input, prints the max abs
      difference to PyTorch's output.
"""
import json
import os
import sys

import torch
import torch.package.package_exporter as package_exporter
from torch.package import PackageExporter, PackageImporter


def make(out):
    import torchvision

    torch.manual_seed(0)
    model = torch.jit.script(torchvision.models.resnet18().eval())
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
    # PyTorch gates TorchScript in packages behind this flag (beta).
    package_exporter._gate_torchscript_serialization = False
    with PackageExporter(os.path.join(out, "scripted.pt")) as exporter:
        exporter.save_pickle("model", "model.pkl", model)
    loaded = PackageImporter(os.path.join(out, "scripted.pt")).load_pickle("model", "model.pkl")
    with torch.no_grad():
        same = (loaded(x) - y).abs().max().item()
    torch.save({"input": x, "output": y}, os.path.join(out, "io.pt"))
    return {"reloaded_in_pytorch_max_abs_diff": same}


def check(out, standalone):
    io = torch.load(os.path.join(out, "io.pt"), weights_only=True)
    model = torch.jit.load(standalone)
    with torch.no_grad():
        y = model(io["input"])
    return {"max_abs_diff": (y - io["output"]).abs().max().item()}


if __name__ == "__main__":
    if sys.argv[1] == "make":
        answer = make(sys.argv[2])
    else:
        answer = check(sys.argv[2], sys.argv[3])
    json.dump(answer, sys.stdout)
