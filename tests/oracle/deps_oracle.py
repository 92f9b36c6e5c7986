"""Oracle: the dependencies PyTorch's exporter adds for a module's source
(`PackageExporter._get_dependencies`, which imports to test existence).

usage: deps_oracle.py PACKAGE
Prints, for PACKAGE and every submodule, its source file, whether it is a
package, and its dependencies in PyTorch's order.
"""
import importlib.util
import io
import json
import pkgutil
import sys

from torch.package import PackageExporter


def main():
    top = sys.argv[1]
    package = importlib.import_module(top)
    names = [top] + [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")]
    exporter = PackageExporter(io.BytesIO())
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
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
