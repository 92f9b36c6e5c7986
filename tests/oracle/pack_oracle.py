"""Oracle: PyTorch's exporter packaging a whole library, and PyTorch's
importer running a library from a package.

usage: pack_oracle.py export OUT TOP [RECURSION_LIMIT]
           -> {"seconds", "records": [[name, sha256], ...], "externs", "failing"}
       pack_oracle.py run-networkx PKG
           -> {"path": [...], "expected": [...], "from_package": bool}
"""
import hashlib
import json
import sys
import time
import zipfile

from torch.package import PackageExporter, PackageImporter


def export(out, top, limit=None):
    if limit:
        sys.setrecursionlimit(int(limit))
    start = time.perf_counter()
    with PackageExporter(out) as e:
        e.intern(f"{top}.**")
        e.extern("**")
        e.save_module(top)
    seconds = time.perf_counter() - start
    with zipfile.ZipFile(out) as z:
        name = next(n for n in z.namelist() if n.endswith("/.data/extern_modules"))
        externs = z.read(name).decode().split()
    return {
        "seconds": seconds,
        "records": records(out),
        "externs": externs,
        "failing": failing(top),
    }


def failing(top):
    """Modules of `top` that raise when imported: PyTorch's exporter, which
    imports to test existence, does not see them."""
    import importlib
    import io
    import pkgutil

    package = importlib.import_module(top)
    names = [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")]
    out = []
    real_stdout, sys.stdout = sys.stdout, io.StringIO()
    try:
        for name in sorted(set(names)):
            try:
                importlib.import_module(name)
            except BaseException:  # the answer is data: which modules raise
                out.append(name)
    finally:
        sys.stdout = real_stdout
    return out


def records(path):
    with zipfile.ZipFile(path) as z:
        out = []
        for name in z.namelist():
            short = name.split("/", 1)[1]
            if short != ".data/serialization_id":
                out.append([short, hashlib.sha256(z.read(name)).hexdigest()])
        return out


def run_networkx(path):
    import networkx as host

    importer = PackageImporter(path)
    nx = importer.import_module("networkx")
    edges = [(0, 1, 4), (0, 2, 1), (2, 1, 2), (1, 3, 1), (2, 3, 5), (3, 4, 3)]
    packaged = nx.Graph()
    packaged.add_weighted_edges_from(edges)
    reference = host.Graph()
    reference.add_weighted_edges_from(edges)
    return {
        "path": nx.shortest_path(packaged, 0, 4, weight="weight"),
        "expected": host.shortest_path(reference, 0, 4, weight="weight"),
        "from_package": nx.__name__.startswith("<torch_package_") and nx is not host,
    }


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "export":
        answer = export(*sys.argv[2:])
    else:
        answer = run_networkx(sys.argv[2])
    json.dump(answer, sys.stdout)
