"""The baseline side of `cargo xtask bench`, run with the oracle venv.

usage:
  baseline.py make-inputs DIR      writes the benchmark inputs into DIR
  baseline.py make-big-inputs DIR  writes the 1 GiB inputs into DIR (cached)
  baseline.py BENCHMARK INPUT REPETITIONS
      times the CPython/PyTorch way of doing BENCHMARK and prints
      {"baseline": name, "seconds": [...], "peak_rss_bytes": n}, or
      {"baseline": name, "not_applicable": why} when PyTorch refuses it
"""
import json
import os
import pickle
import resource
import sys
import time


WORDS = ["torch", "nn", "functional", "utils", "data", "models", "resnet", "vision", "core",
         "networkx", "algorithms", "shortest_paths", "sympy", "matrices", "io", "common",
         "layers", "_private", "testing", "jit", "ops", "transforms", "backend", "cuda"]


def make_inputs(out):
    os.makedirs(out, exist_ok=True)
    # 100 exporter-style patterns and 200k module names.
    import random
    r = random.Random(4)
    w = lambda: r.choice(WORDS)
    patterns = ([f"{w()}.{w()}.{w()}" for _ in range(40)] + [f"{w()}.{w()}.**" for _ in range(40)]
                + [f"{w()}.*.{w()}" for _ in range(10)] + [f"**.{w()[:2]}*" for _ in range(10)])
    names = [".".join(w() for _ in range(2 + r.randrange(4))) for _ in range(200_000)]
    with open(os.path.join(out, "globs.json"), "w") as f:
        json.dump({"patterns": patterns, "names": names}, f)
    # Every .py file of site-packages with the package name PyTorch's
    # exporter scans it under.
    import sysconfig
    root = sysconfig.get_paths()["purelib"]
    files = []
    for folder, _, names_in in os.walk(root):
        for name in sorted(names_in):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if any("." in p or "-" in p for p in parts):
                continue
            if parts[-1] == "__init__":
                package = ".".join(parts[:-1])
            else:
                module = ".".join(parts)
                package = module.rsplit(".", 1)[0]
            files.append([path, package])
    with open(os.path.join(out, "scan_files.json"), "w") as f:
        json.dump(sorted(files), f)
    # Whole-library packaging jobs: which library, and the interpreter whose
    # sys.path tpkg resolves modules on.
    for top in ("networkx", "sympy"):
        with open(os.path.join(out, f"pack_{top}.json"), "w") as f:
            json.dump({"top": top, "python": sys.executable}, f)
    # 500k small dicts, protocol 4 (the pickler memoizes the repeated keys).
    values = [{"id": i, "score": i * 0.5, "tag": "row", "ok": i % 2 == 0, "n": i % 7} for i in range(500_000)]
    with open(os.path.join(out, "dicts.pkl"), "wb") as f:
        pickle.dump(values, f, protocol=4)


def make_small_tensors(out):
    """10,000 small tensors (64 float32 each) in one state dict, as a
    torch.package, unless it exists already."""
    package = os.path.join(out, "small10k.pt")
    if os.path.exists(package):
        return
    import collections

    import torch
    from torch.package import PackageExporter

    torch.manual_seed(1)
    state = collections.OrderedDict((f"block{i}.bias", torch.randn(64)) for i in range(10_000))
    with PackageExporter(package + ".tmp") as exporter:
        exporter.save_pickle("model", "state_dict.pkl", state)
    os.replace(package + ".tmp", package)


GIB = 1 << 30


def has_size(path, low, high):
    """Whether `path` exists with a size in low..=high (a cached input from
    an interrupted or different run is made again)."""
    try:
        return low <= os.path.getsize(path) <= high
    except OSError:
        return False


def make_big_inputs(out):
    """A 1 GiB state dict (64 float32 tensors of 16 MiB) as a torch.package
    and as torch.save files (zip, and legacy with
    `_use_new_zipfile_serialization=False`), unless they exist already; and
    the package of 10,000 small tensors."""
    make_small_tensors(out)
    package = os.path.join(out, "state1g.pt")
    saved = os.path.join(out, "state1g_torchsave.pt")
    legacy = os.path.join(out, "state1g_torchsave_legacy.pt")
    # 1 GiB of tensor data, plus pickles and headers (well under 1 MiB).
    wanted = {
        path: has_size(path, GIB, GIB + (1 << 20)) for path in (package, saved, legacy)
    }
    if all(wanted.values()):
        return
    import collections

    import torch
    from torch.package import PackageExporter

    torch.manual_seed(0)
    state = collections.OrderedDict(
        (f"layer{i}.weight", torch.randn(2048, 2048)) for i in range(64)
    )
    if not wanted[package]:
        with PackageExporter(package + ".tmp") as exporter:
            exporter.save_pickle("model", "state_dict.pkl", state)
        os.replace(package + ".tmp", package)
    if not wanted[saved]:
        torch.save(state, saved + ".tmp")
        os.replace(saved + ".tmp", saved)
    if not wanted[legacy]:
        torch.save(state, legacy + ".tmp", _use_new_zipfile_serialization=False)
        os.replace(legacy + ".tmp", legacy)


def touch_pages(state):
    """Reads one byte of every 4 KiB page of every tensor's bytes (and the
    last byte), as tpkg's side does: a memory-mapped tensor is then really
    read, and an owned one costs almost nothing more."""
    import torch

    total = 0
    for tensor in state.values():
        data = tensor.reshape(-1).view(torch.uint8)
        total += int(data[::4096].sum()) + int(data[-1])
    return total


def settle_disk(out):
    """Starts a write from a quiet disk, as tpkg's side does (untimed)."""
    if os.path.exists(out):
        os.remove(out)
    os.sync()


def load_state(path):
    """The 1 GiB state dict as PyTorch reads it: a package's pickle, or a
    torch.save file."""
    import torch
    from torch.package import PackageImporter
    if "torchsave" in os.path.basename(path):
        return torch.load(path, weights_only=True)
    return PackageImporter(path).load_pickle("model", "state_dict.pkl")


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cli_baseline(benchmark, path, repetitions):
    """PyTorch's equivalent of a `tpkg` command (`cargo xtask bench cli`):
    `cli-JOB` or `cli-JOB-fsync` (the output fsynced, as tpkg's default).
    Timed after `import torch`, load and write included. Returns the name
    and the seconds."""
    import hashlib
    import torch
    from safetensors.torch import save_file
    from torch.package import PackageExporter
    job = benchmark[len("cli-"):]
    fsync = job.endswith("-fsync")
    job = job.removesuffix("-fsync")
    source = "torch.load" if "torchsave" in os.path.basename(path) else "load_pickle"
    writers = {
        "convert-safetensors": (f"{source} + safetensors save_file",
                                lambda state, out: save_file(dict(state), out)),
        "convert-pt": (f"{source} + torch.save", lambda state, out: torch.save(state, out)),
        "repack": (f"{source} + PackageExporter.save_pickle", None),
        "tensors": (f"{source} + SHA-256 of every tensor", None),
    }
    name, write = writers[job]
    if fsync:
        name += " + fsync"
    out = path + ".pytorch-cli-out"
    seconds = []
    for _ in range(repetitions):
        settle_disk(out)
        start = time.perf_counter()
        state = load_state(path)
        if job == "tensors":
            for tensor in state.values():
                hashlib.sha256(tensor.contiguous().reshape(-1).view(torch.uint8).numpy()).hexdigest()
        elif job == "repack":
            with PackageExporter(out) as exporter:
                exporter.save_pickle("model", "state_dict.pkl", state)
        else:
            write(state, out)
        if fsync:
            fsync_file(out)
        seconds.append(time.perf_counter() - start)
        del state
    if os.path.exists(out):
        os.remove(out)
    return name, seconds


def main():
    if sys.argv[1] == "make-big-inputs":
        make_big_inputs(sys.argv[2])
        return
    if sys.argv[1] == "make-inputs":
        make_inputs(sys.argv[2])
        return
    benchmark, path, repetitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seconds = []
    if benchmark == "pickle_decode":
        name = "CPython pickle.loads (C unpickler)"
        with open(path, "rb") as f:
            data = f.read()
        for _ in range(repetitions):
            start = time.perf_counter()
            value = pickle.loads(data)
            seconds.append(time.perf_counter() - start)
            del value
    elif benchmark == "glob_match":
        from torch.package.glob_group import GlobGroup
        name = "PyTorch GlobGroup.matches"
        with open(path) as f:
            spec = json.load(f)
        group = GlobGroup(spec["patterns"])
        for _ in range(repetitions):
            start = time.perf_counter()
            matched = sum(1 for n in spec["names"] if group.matches(n))
            seconds.append(time.perf_counter() - start)
    elif benchmark == "scan_imports":
        from torch.package.find_file_dependencies import find_files_source_depends_on
        name = "PyTorch find_files_source_depends_on (ast)"
        with open(path) as f:
            files = json.load(f)
        for _ in range(repetitions):
            start = time.perf_counter()
            for file, package in files:
                try:
                    with open(file, encoding="utf-8") as f:
                        find_files_source_depends_on(f.read(), package)
                except Exception:
                    pass
            seconds.append(time.perf_counter() - start)
    elif benchmark == "load_pickle":
        import torch  # noqa: F401  (imported before timing)
        from torch.package import PackageImporter
        name = "PyTorch PackageImporter.load_pickle"
        for _ in range(repetitions):
            start = time.perf_counter()
            state = PackageImporter(path).load_pickle("model", "state_dict.pkl")
            seconds.append(time.perf_counter() - start)
            del state
    elif benchmark == "torch_load_mmap":
        import torch
        name = "torch.load(mmap=True) of the same tensors"
        saved = path.replace("state1g.pt", "state1g_torchsave.pt")
        for _ in range(repetitions):
            start = time.perf_counter()
            state = torch.load(saved, mmap=True, weights_only=True)
            seconds.append(time.perf_counter() - start)
            del state
    elif benchmark in ("torch_load_touch", "torch_load_mmap_touch"):
        # A torch.save file (zip or legacy) loaded whole, every page of every
        # tensor touched, as the torchsave_* rows of tpkg do.
        import torch

        mmap = benchmark == "torch_load_mmap_touch"
        name = "torch.load(mmap=True) + touch every page" if mmap else "torch.load + touch every page"
        for _ in range(repetitions):
            start = time.perf_counter()
            try:
                state = torch.load(path, mmap=mmap, weights_only=True)
            except RuntimeError as error:
                if mmap and "mmap can only be used" in str(error):
                    # torch.load refuses mmap on legacy files: not applicable.
                    print(json.dumps({"baseline": name, "not_applicable": str(error)}))
                    return
                raise
            touch_pages(state)
            seconds.append(time.perf_counter() - start)
            del state
    elif benchmark == "convert_safetensors":
        import torch  # noqa: F401  (imported before timing)
        from safetensors.torch import save_file
        from torch.package import PackageImporter
        name = "PyTorch load_pickle + safetensors save_file"
        out = path + ".pytorch-out.safetensors"
        for _ in range(repetitions):
            settle_disk(out)
            start = time.perf_counter()
            state = PackageImporter(path).load_pickle("model", "state_dict.pkl")
            save_file(dict(state), out)
            seconds.append(time.perf_counter() - start)
            del state
        os.remove(out)
    elif benchmark == "save_pickle":
        import torch
        from torch.package import PackageExporter, PackageImporter
        name = "PyTorch PackageExporter.save_pickle"
        state = PackageImporter(path).load_pickle("model", "state_dict.pkl")
        out = path + ".pytorch-out.pt"
        for _ in range(repetitions):
            settle_disk(out)
            start = time.perf_counter()
            with PackageExporter(out) as exporter:
                exporter.save_pickle("model", "state_dict.pkl", state)
            seconds.append(time.perf_counter() - start)
        os.remove(out)
    elif benchmark in ("pack_networkx", "pack_sympy"):
        import torch  # noqa: F401  (imported before timing)
        from torch.package import PackageExporter
        with open(path) as f:
            top = json.load(f)["top"]
        name = f"PyTorch PackageExporter (intern {top}.**, extern **, save_module)"
        if top == "sympy":
            # At the default limit PyTorch's exporter fails with RecursionError.
            sys.setrecursionlimit(100_000)
        out = path + ".pytorch-out.pt"
        for _ in range(repetitions):
            start = time.perf_counter()
            with PackageExporter(out) as exporter:
                exporter.intern(f"{top}.**")
                exporter.extern("**")
                exporter.save_module(top)
            seconds.append(time.perf_counter() - start)
        os.remove(out)
    elif benchmark.startswith("cli-"):
        name, seconds = cli_baseline(benchmark, path, repetitions)
    else:
        raise SystemExit(f"unknown benchmark {benchmark!r}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"baseline": name, "seconds": seconds, "peak_rss_bytes": rss}))


if __name__ == "__main__":
    main()
