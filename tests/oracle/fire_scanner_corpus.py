"""Fires the bypass corpus in PyTorch: proves each payload is real.

    python fire_scanner_corpus.py BYPASS_DIR [FILE...]
    python fire_scanner_corpus.py --clean CLEAN_DIR

The second form loads every clean file the same way; it must load (exit 0).

For every file of BYPASS_DIR/manifest.json (or only the FILEs named), runs
the manifest's loader call (`pickle.load`, `torch.load(weights_only=False)`,
`PackageImporter(...).load_pickle(...)`, `torch.jit.load`,
`torch.export.load`) in a process of its own: a child forked from this one
after it imported torch (so a load costs the load, not torch's import), in
its own session, in a fresh temporary folder, with
TPKG_MARKER=<folder>/tpkg-marker, standard input from /dev/null and a
timeout; the child's process group is killed afterwards (payloads that start
processes leave none behind). A payload fired when the marker exists (after
waiting a few seconds for payloads that start a process in the background).
The loader may raise after the payload ran (many payloads return junk to
the loader): that is recorded, not a failure.

Prints {"files": {file: {"fired": bool, "seconds": float, "exit": int|null,
"error": str}}}.
"""

import json
import os
import signal
import sys
import tempfile
import time

import torch  # noqa: F401  (imported once, before the forks)
import torch.export  # noqa: F401
import torch.package  # noqa: F401

TIMEOUT = 120  # seconds per load
SETTLE = 5.0  # seconds to wait for a marker from a background process


def load(path, spec):
    call = spec["call"]
    if call == "pickle.load":
        import pickle

        with open(path, "rb") as f:
            pickle.load(f)
    elif call == "torch.load":
        torch.load(path, weights_only=spec["weights_only"])
    elif call == "torch.jit.load":
        torch.jit.load(path)
    elif call == "torch.export.load":
        torch.export.load(path)
    elif call == "PackageImporter.load_pickle":
        torch.package.PackageImporter(path).load_pickle(spec["package"], spec["resource"])
    else:
        raise SystemExit("unknown loader " + call)


def child(path, spec, folder, log):
    """Runs in the forked child; never returns."""
    status = 1
    try:
        os.setsid()
        os.chdir(folder)
        os.environ["TPKG_MARKER"] = os.path.join(folder, "tpkg-marker")
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.stdin = open(0, closefd=False)
        load(path, spec)
        status = 0
    except BaseException as error:  # noqa: BLE001  (report, whatever it was)
        try:
            sys.stderr.write(f"{type(error).__name__}: {error}\n")
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(status)


def fire(directory, entry, settle_seconds=SETTLE):
    path = os.path.join(directory, entry["file"])
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tpkg-fire-") as folder:
        marker = os.path.join(folder, "tpkg-marker")
        log = os.path.join(tempfile.gettempdir(), f"tpkg-fire-{os.getpid()}.log")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(path, entry["load"], folder, log)
        exit_code = None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_code = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.02)
        else:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        settle = time.monotonic() + settle_seconds
        while not os.path.exists(marker) and time.monotonic() < settle:
            time.sleep(0.05)
        fired = os.path.exists(marker)
        try:  # whatever the payload started is done with
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        with open(log, errors="replace") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        os.unlink(log)
    except OSError:
        lines = []
    error = lines[-1] if lines else ""
    if exit_code is None:
        error = f"timed out after {TIMEOUT} s; {error}"
    return {
        "fired": fired,
        "seconds": round(time.monotonic() - start, 2),
        "exit": exit_code,
        "error": error[-400:],
    }


def main():
    args = sys.argv[1:]
    settle = SETTLE
    if args[:1] == ["--clean"]:
        args, settle = args[1:], 0.0
    directory = os.path.abspath(args[0])
    only = set(args[1:])
    with open(os.path.join(directory, "manifest.json")) as f:
        entries = json.load(f)["files"]
    if only:
        entries = [e for e in entries if e["file"] in only]
    results = {entry["file"]: fire(directory, entry, settle) for entry in entries}
    print(json.dumps({"files": results}, sort_keys=True))


if __name__ == "__main__":
    main()
