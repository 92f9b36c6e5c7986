"""Oracle: PyTorch's own import scanner (find_file_dependencies).

stdin: JSON list of [path, package]; stdout: JSON list, per file, of the
references [[module, attribute-or-null], ...] or {"error": "..."} when the
scanner raises (syntax errors, relative imports beyond the top level), and
the total scanning time in seconds.
"""
import json
import sys
import time

from torch.package.find_file_dependencies import find_files_source_depends_on


def main():
    requests = json.load(sys.stdin)
    out = []
    total = 0.0
    for path, package in requests:
        with open(path, "rb") as f:
            data = f.read()
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            out.append({"error": "not UTF-8"})
            continue
        start = time.perf_counter()
        try:
            refs = find_files_source_depends_on(source, package)
            result = [[m if isinstance(m, str) else repr(m), a if a is None or isinstance(a, str) else repr(a)] for m, a in refs]
        except Exception as error:
            result = {"error": f"{type(error).__name__}: {error}"}
        total += time.perf_counter() - start
        out.append(result)
    json.dump({"results": out, "seconds": total}, sys.stdout)


if __name__ == "__main__":
    main()
