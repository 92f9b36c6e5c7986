"""Oracle: PyTorch loading the package tpkg wrote from a tch resnet18 — a
state dict plus a `model` package whose `load()` builds torchvision's
resnet18 and fills it, as in PyTorch's test_model.py (test_model_save).

usage: tch_model_oracle.py PKG
    imports `model`, calls load(), runs check/io.pkl's input, prints the max
    abs difference to tch's output.
"""
import json
import sys

import torch
from torch.package import PackageImporter


def main():
    importer = PackageImporter(sys.argv[1])
    model = importer.import_module("model").load()
    io = importer.load_pickle("check", "io.pkl")
    with torch.no_grad():
        y = model(io["input"])
    json.dump(
        {
            "max_abs_diff": (y - io["output"]).abs().max().item(),
            "model_module_from_package": importer.import_module("model").__name__.startswith("<torch_package_"),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
