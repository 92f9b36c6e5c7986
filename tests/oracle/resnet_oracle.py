"""Oracle: a torchvision resnet18 pickled whole by PyTorch, and checks of
what tpkg converts it to.

usage:
  resnet_oracle.py make DIR
      Writes DIR/resnet.pt (PackageExporter, the model pickled whole at
      model/model.pkl, torchvision externed) and DIR/io.pt (input, output).
  resnet_oracle.py check DIR SAFETENSORS PT
      Loads both conversions into a fresh torchvision resnet18 (strict
      key match), runs the input, and prints the max abs differences.
"""
import json
import os
import sys

import torch
import torchvision
from safetensors.torch import load_file
from torch.package import PackageExporter


def main():
    if sys.argv[1] == "make":
        out = sys.argv[2]
        torch.manual_seed(0)
        model = torchvision.models.resnet18().eval()
        x = torch.rand(1, 3, 224, 224)
        with torch.no_grad():
            y = model(x)
        with PackageExporter(os.path.join(out, "resnet.pt")) as exporter:
            exporter.extern(["torchvision.**"])
            exporter.save_pickle("model", "model.pkl", model)
        torch.save({"input": x, "output": y}, os.path.join(out, "io.pt"))
        print(json.dumps({"ok": True}))
        return
    out, safetensors_path, pt_path = sys.argv[2:5]
    io = torch.load(os.path.join(out, "io.pt"), weights_only=True)
    result = {}
    for name, state in [("safetensors", load_file(safetensors_path)), ("pt", torch.load(pt_path, weights_only=True))]:
        model = torchvision.models.resnet18().eval()
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            y = model(io["input"])
        result[name] = (y - io["output"]).abs().max().item()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
