"""Oracle: what real PyTorch sees in a package.

usage: read_package.py SPEC_JSON
SPEC_JSON: {"path": str, "text": [[package, resource], ...],
            "binary": [[package, resource], ...], "import": [[module, attr], ...]}

Prints one JSON object: the records PyTorch's own zip reader lists and their
SHA-256, what PackageImporter's load_text/load_binary return, the extern
list, python_version, serialization_id, and attributes of imported modules.
"""
import hashlib
import json
import sys

import torch
from torch.package import PackageImporter


def main():
    spec = json.loads(sys.argv[1])
    path = spec["path"]
    reader = torch._C.PyTorchFileReader(path)
    records = sorted(reader.get_all_records())
    importer = PackageImporter(path)
    result = {
        "torch": torch.__version__,
        "records": records,
        "record_sha256": {
            name: hashlib.sha256(reader.get_record(name)).hexdigest() for name in records
        },
        "serialization_id": reader.serialization_id(),
        "extern_modules": importer.extern_modules,
        "python_version": importer.python_version(),
        "text": [importer.load_text(p, r) for p, r in spec.get("text", [])],
        "binary": [importer.load_binary(p, r).hex() for p, r in spec.get("binary", [])],
        "import": [
            repr(getattr(importer.import_module(m), a)) for m, a in spec.get("import", [])
        ],
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
