"""Oracle: the dependencies PyTorch's exporter adds for a module's source
(`PackageExporter._get_dependencies`, which imports to test existence).

usage: deps_oracle.py PACKAGE
Prints, for PACKAGE and every submodule, its source file, whether it is a
package, and its dependencies in PyTorch's order; and the submodules that
raise when imported (PyTorch's answer for those depends on running code).
"""
import importlib.util
import io
import json
import pkgutil
import sys

from torch.package import PackageExporter


def main():
    # Modules may print when imported; keep stdout for the answer.
    real_stdout = sys.stdout
    sys.stdout = io.StringIO()
    try:
        answer = collect(sys.argv[1])
    finally:
        sys.stdout = real_stdout
    json.dump(answer, sys.stdout)


def collect(top):
    package = importlib.import_module(top)
    names = [top] + [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")]
    exporter = PackageExporter(io.BytesIO())
    failing = []
    for name in sorted(set(names)):
        try:
            importlib.import_module(name)
        except BaseException:  # the answer is data: which modules raise
            failing.append(name)
    out = {}
    for name in sorted(set(names)):
        spec = importlib.util.find_spec(name)
        if spec is None or not (spec.origin or "").endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            source = f.read()
        is_package = spec.submodule_search_locations is not None
        out[name] = {
            "origin": spec.origin,
            "is_package": is_package,
            "deps": exporter._get_dependencies(source, name, is_package),
        }
    return {"modules": out, "failing": failing}


if __name__ == "__main__":
    main()
