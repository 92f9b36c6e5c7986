"""Oracle: what real PyTorch sees in a package.

usage: read_package.py SPEC_JSON
SPEC_JSON: {"path": str, "text": [[package, resource], ...],
            "binary": [[package, resource], ...], "pickle": [[package, resource], ...],
            "import": [[module, attr], ...]}

PATH may be a zip or a package folder (PyTorch's directory form).
Prints one JSON object: the records PyTorch's own zip reader lists and their
SHA-256, what PackageImporter's load_text/load_binary return, the extern
list, python_version, serialization_id, the value image of load_pickle results,
and attributes of imported modules.
"""
import hashlib
import json
import os
import sys

import torch
from torch.package import PackageImporter

from value_image import image


def main():
    spec = json.loads(sys.argv[1])
    path = spec["path"]
    importer = PackageImporter(path)
    if os.path.isdir(path):
        # PyTorch's DirectoryReader lists no hidden records; walk the folder.
        contents = {}
        for folder, _, files in os.walk(path):
            for file in files:
                full = os.path.join(folder, file)
                with open(full, "rb") as f:
                    contents[os.path.relpath(full, path).replace(os.sep, "/")] = f.read()
        serialization_id = importer.zip_reader.serialization_id()
        # PyTorch quirk: DirectoryReader returns the record's bytes here.
        if isinstance(serialization_id, bytes):
            serialization_id = serialization_id.decode("utf-8")
    else:
        reader = torch._C.PyTorchFileReader(path)
        contents = {name: reader.get_record(name) for name in reader.get_all_records()}
        serialization_id = reader.serialization_id()
    records = sorted(contents)
    result = {
        "torch": torch.__version__,
        "records": records,
        "record_sha256": {name: hashlib.sha256(contents[name]).hexdigest() for name in records},
        "serialization_id": serialization_id,
        "extern_modules": importer.extern_modules,
        "python_version": importer.python_version(),
        "text": [importer.load_text(p, r) for p, r in spec.get("text", [])],
        "binary": [importer.load_binary(p, r).hex() for p, r in spec.get("binary", [])],
        "pickle": [image(importer.load_pickle(p, r)) for p, r in spec.get("pickle", [])],
        "import": [
            repr(getattr(importer.import_module(m), a)) for m, a in spec.get("import", [])
        ],
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
