"""Oracle: real PyTorch writes packages for tpkg to read.

usage: write_package.py OUT_DIR

Writes OUT_DIR/fresh.pt with PackageExporter (text, binary, source, a pickle
with a tensor) and OUT_DIR/buffer.pt from an in-memory buffer (folder
`archive/`). Prints JSON: for each file, every record PyTorch's own reader
lists with the SHA-256 of its bytes.
"""
import hashlib
import io
import json
import os
import sys

import torch
from torch.package import PackageExporter


def fill(exporter):
    exporter.save_text("notes", "readme.txt", "hello from PyTorch\n")
    exporter.save_binary("blobs", "data.bin", bytes(range(256)) * 3)
    exporter.save_source_string("pkg", "from . import sub\nVALUE = sub.X + 1\n", is_package=True)
    exporter.save_source_string("pkg.sub", "X = 41\n")
    exporter.extern("torch.**")
    exporter.save_pickle("weights", "w.pkl", {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4)})


def records_of(path):
    reader = torch._C.PyTorchFileReader(path)
    return {
        name: hashlib.sha256(reader.get_record(name)).hexdigest()
        for name in sorted(reader.get_all_records())
    }


def main():
    out = sys.argv[1]
    path = os.path.join(out, "fresh.pt")
    with PackageExporter(path) as exporter:
        fill(exporter)
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        fill(exporter)
    buffer_path = os.path.join(out, "buffer.pt")
    with open(buffer_path, "wb") as f:
        f.write(buffer.getvalue())
    json.dump({"fresh.pt": records_of(path), "buffer.pt": records_of(buffer_path)}, sys.stdout)


if __name__ == "__main__":
    main()
