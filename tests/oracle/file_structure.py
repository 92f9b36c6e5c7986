"""Oracle: PyTorch's file_structure() rendering.

stdin: JSON list of {"path": str, "include": str | [str], "exclude": str | [str]}
stdout: JSON list of str(PackageImporter(path).file_structure(include=..., exclude=...))
"""
import json
import sys

from torch.package import PackageImporter


def main():
    requests = json.load(sys.stdin)
    out = []
    for request in requests:
        importer = PackageImporter(request["path"])
        tree = importer.file_structure(include=request["include"], exclude=request["exclude"])
        out.append(str(tree))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
