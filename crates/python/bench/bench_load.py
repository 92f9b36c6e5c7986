"""Benchmarks of the Python package against PyTorch, in one process.

    python crates/python/bench/bench_load.py [--inputs target/bench] [--repetitions 5] [--check]

Inputs are `cargo xtask bench`'s (bench/baseline.py make-big-inputs):
`state1g.pt` (a 1 GiB state dict as a torch.package: 64 float32 tensors of
16 MiB) and `state1g_torchsave.pt` (the same tensors as a torch.save zip).
Rows (medians of warm runs, inputs read once first so they are in the page
cache):

- load_owned: `tpkg.load(state1g.pt)` vs `PackageImporter.load_pickle` of
  the same package and `torch.load` of the torch.save file (target: at
  least 2x faster than both);
- load_mmap: `tpkg.load(state1g.pt, mmap=True)` vs `torch.load(mmap=True)`
  of the torch.save file (target: within 2x);
- pack_networkx: `tpkg.PackageExporter` vs PyTorch's packing networkx
  (`intern("networkx.**")`, `extern("**")`; target: at least 10x faster).

Prints a Markdown table and writes JSON to `--json` (default
`<inputs>/python-report.json`); `--check` exits 1 when a target is missed.
"""

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time


def timed(fn, repetitions):
    """Median and spread (min, max) of `fn()` over `repetitions` runs; each
    result is dropped before the next run."""
    seconds = []
    for _ in range(repetitions):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
        del result
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def load_rows(inputs, repetitions):
    import torch
    from torch.package import PackageImporter

    import tpkg

    package = os.path.join(inputs, "state1g.pt")
    saved = os.path.join(inputs, "state1g_torchsave.pt")
    for path in (package, saved):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `cargo xtask bench load_copy` (or bench/baseline.py make-big-inputs) first")
        warm(path)
    name = "model/state_dict.pkl"
    # Same tensors both ways.
    ours = tpkg.load(package, name)
    theirs = torch.load(saved, weights_only=True)
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    del ours, theirs
    owned = timed(lambda: tpkg.load(package, name), repetitions)
    load_pickle = timed(
        lambda: PackageImporter(package).load_pickle("model", "state_dict.pkl"), repetitions
    )
    torch_load = timed(lambda: torch.load(saved, weights_only=True), repetitions)
    mapped = timed(lambda: tpkg.load(package, name, mmap=True), repetitions)
    torch_mmap = timed(lambda: torch.load(saved, mmap=True, weights_only=True), repetitions)
    return [
        {
            "row": "load_owned",
            "what": "1 GiB state-dict package into owned tensors",
            "tpkg": owned,
            "baselines": {"PackageImporter.load_pickle": load_pickle, "torch.load": torch_load},
            "target": "tpkg at most 0.5x each baseline",
            "met": owned["median"] <= 0.5 * min(load_pickle["median"], torch_load["median"]),
        },
        {
            "row": "load_mmap",
            "what": "1 GiB state-dict package as views of the mapped file",
            "tpkg": mapped,
            "baselines": {"torch.load(mmap=True)": torch_mmap},
            "target": "tpkg at most 2x the baseline",
            "met": mapped["median"] <= 2.0 * torch_mmap["median"],
        },
    ]


def pack_row(repetitions):
    import torch.package

    import tpkg

    try:
        import networkx  # noqa: F401
    except ImportError:
        return []

    def pack(cls):
        def run():
            with tempfile.TemporaryDirectory() as folder:
                with cls(os.path.join(folder, "nx.pt")) as exporter:
                    exporter.intern("networkx.**")
                    exporter.extern("**")
                    exporter.save_module("networkx")
        return run

    ours = timed(pack(tpkg.PackageExporter), repetitions)
    theirs = timed(pack(torch.package.PackageExporter), repetitions)
    return [
        {
            "row": "pack_networkx",
            "what": "package networkx (intern networkx.**, extern the rest)",
            "tpkg": ours,
            "baselines": {"torch.package.PackageExporter": theirs},
            "target": "tpkg at most 0.1x the baseline",
            "met": ours["median"] <= 0.1 * theirs["median"],
        }
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    parser.add_argument("--inputs", default=os.path.join(root, "target", "bench"))
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--json")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("rows", nargs="*", help="load, pack (default: both)")
    args = parser.parse_args()
    rows = []
    if not args.rows or "load" in args.rows:
        rows += load_rows(args.inputs, args.repetitions)
    if not args.rows or "pack" in args.rows:
        rows += pack_row(args.repetitions)
    print("| row | tpkg s | baseline | baseline s | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for name, base in row["baselines"].items():
            ratio = row["tpkg"]["median"] / base["median"]
            print(
                f"| {row['row']} | {row['tpkg']['median']:.4f} | {name} | {base['median']:.4f} "
                f"| {ratio:.3f}x | {row['target']} | {'yes' if row['met'] else 'NO'} |"
            )
    out = args.json or os.path.join(args.inputs, "python-report.json")
    with open(out, "w") as f:
        json.dump({"rows": rows, "note": "medians of warm runs, seconds"}, f, indent=2)
    if args.check and not all(row["met"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
