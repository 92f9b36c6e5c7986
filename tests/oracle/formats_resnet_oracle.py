"""Oracle: a torchvision resnet18 saved every way PyTorch saves models.

usage: formats_resnet_oracle.py DIR [legacy]
    Writes into DIR: state_dict.pt (torch.save of the state dict, zip),
    scripted.pt (torch.jit.save of torch.jit.script(model)), exported.pt2
    (torch.export.save), optionally state_dict_legacy.pt
    (_use_new_zipfile_serialization=False), and io.pt (input, output).
    Prints {"files": [...]}.
"""
import json
import os
import sys

import torch
import torchvision


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
    files = ["state_dict.pt", "scripted.pt", "exported.pt2"]
    torch.save(model.state_dict(), os.path.join(out, "state_dict.pt"))
    torch.jit.save(torch.jit.script(model), os.path.join(out, "scripted.pt"))
    torch.export.save(torch.export.export(model, (x,)), os.path.join(out, "exported.pt2"))
    if "legacy" in sys.argv[2:]:
        torch.save(model.state_dict(), os.path.join(out, "state_dict_legacy.pt"),
                   _use_new_zipfile_serialization=False)
        files.append("state_dict_legacy.pt")
    torch.save({"input": x, "output": y}, os.path.join(out, "io.pt"))
    print(json.dumps({"files": files}))


if __name__ == "__main__":
    main()
