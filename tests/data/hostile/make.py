"""Writes tpkg's hostile corpus: packages and pickles built to attack a
reader, each listed in manifest.json with what tpkg must answer.

Run with any Python 3 (standard library only); the outputs are committed:
    python3 tests/data/hostile/make.py

Pickles are written opcode by opcode, so nothing here needs the code they
name (and nothing is ever unpickled).
"""
import json
import os
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = {}


def u(text):  # BINUNICODE
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def global_(module, name):  # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def fixed(name, compress=zipfile.ZIP_STORED):
    """An entry with a fixed date, so the corpus is the same on every run."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compress
    return info


def package(name, records, expect, folder=None):
    """A zip package in PyTorch's layout with `records` (name -> bytes)."""
    folder = folder or name[:-3]
    path = os.path.join(HERE, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for record, data in records.items():
            z.writestr(fixed(f"{folder}/{record}"), data)
        z.writestr(fixed(f"{folder}/.data/version"), "6\n")
        z.writestr(fixed(f"{folder}/.data/extern_modules"), "\n")
    MANIFEST[name] = expect


def raw(name, data, expect):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    MANIFEST[name] = expect


P3 = b"\x80\x03"
# --- pickles that run code ---------------------------------------------
package("os_system_global.pt", {"x/p.pkl": P3 + global_("os", "system") + u("id") + b"\x85R."},
        {"audit": 1, "finding": ["unsafe", "call", "os.system"]})
package("eval_global.pt", {"x/p.pkl": P3 + global_("builtins", "eval") + u("1+1") + b"\x85R."},
        {"audit": 1, "finding": ["unsafe", "call", "builtins.eval"]})
package("subprocess_global.pt",
        {"x/p.pkl": P3 + global_("subprocess", "check_output") + u("id") + b"\x85\x85R."},
        {"audit": 1, "finding": ["unsafe", "call", "subprocess.check_output"]})
# STACK_GLOBAL whose operands come through the memo, as SHORT_BINUNICODE:
# scanners that pair the two strings before the opcode are fooled.
stack_memo = (b"\x80\x04" + b"\x8c\x05posix\x94" + b"\x8c\x06system\x94" + b"\x8c\x04junk"
              + b"0" + b"h\x00h\x01\x93" + b"\x8c\x02id\x85R.")
package("stack_global_memo.pt", {"x/p.pkl": stack_memo},
        {"audit": 1, "finding": ["unsafe", "call", "posix.system"]})
# BINSTRING (protocol 1 str) operands to STACK_GLOBAL.
binstring = (b"\x80\x04" + b"T" + struct.pack("<I", 2) + b"os" + b"T" + struct.pack("<I", 6) + b"system"
             + b"\x93" + b"\x8c\x02id\x85R.")
package("binstring_operands.pt", {"x/p.pkl": binstring},
        {"audit": 1, "finding": ["unsafe", "call", "os.system"]})
# INST and OBJ: calls without REDUCE (CPython calls `klass(*args)`).
package("inst_opcode.pt", {"x/p.pkl": b"(S'id'\nios\nsystem\n."},
        {"audit": 1, "finding": ["unsafe", "call", "os.system"]})
package("obj_opcode.pt", {"x/p.pkl": P3 + b"(" + global_("os", "system") + u("id") + b"o."},
        {"audit": 1, "finding": ["unsafe", "call", "os.system"]})
# PyTorch's __reduce_package__ persistent id calling a dangerous function.
reduce_package = (P3 + b"(" + u("reduce_package") + b"K\x07" + global_("os", "system") + u("id")
                  + b"\x85tQ.")
package("reduce_package.pt", {"x/p.pkl": reduce_package},
        {"audit": 1, "finding": ["unsafe", "call", "os.system"]})
# --- interned source that runs at import ---------------------------------
package("import_time_code.pt",
        {"evil/__init__.py": b"import subprocess\nsubprocess.run(['id'])\n",
         "x/p.pkl": P3 + global_("evil", "thing") + b"."},
        {"audit": 1, "finding": ["unsafe", "import-time-code", "subprocess.run"]})
# --- container attacks -----------------------------------------------------
# PyTorch reads these names as they are; extracting them would escape.
package("path_traversal.pt", {"../../escape.txt": b"x", "ok.txt": b"y"},
        {"audit": 1, "finding": ["unsafe", "container", "unsafe-name"]}, folder="pkg")
# The folder PyTorch takes is "" (up to the first "/"), so it finds no
# version record under it and refuses the archive.
package("absolute_name.pt", {"ok.txt": b"y"}, {"open_error": "no version record", "audit": 2},
        folder="/abs")
with open(os.path.join(HERE, "os_system_global.pt"), "rb") as f:
    good = f.read()
raw("truncated.pt", good[: len(good) // 2], {"open_error": "", "audit": 2})
flipped = bytearray(good)
flipped[good.index(b"cos\nsystem") + 6] ^= 0x01  # inside the stored pickle: CRC mismatch
# PyTorch loads the flipped bytes (it checks no CRC-32): audit reports the
# damage and audits what PyTorch would load.
raw("bit_flipped.pt", bytes(flipped), {"audit": 1, "finding": ["unsafe", "container", "unreadable-record"]})
# A central directory entry declaring 1 TiB.
big = bytearray(good)
cd = big.rfind(b"PK\x01\x02")
struct.pack_into("<I", big, cd + 24, 0xFFFFFFFE)
raw("terabyte_size.pt", bytes(big), {"open_error": "", "audit": 2})
# A deflate bomb: 1 GiB of zeros in about 1 MB.
bomb_path = os.path.join(HERE, "deflate_bomb.pt")
with zipfile.ZipFile(bomb_path, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(fixed("bomb/.data/version"), "6\n")
    info = fixed("bomb/x/p.pkl", zipfile.ZIP_DEFLATED)
    with z.open(info, "w", force_zip64=True) as w:
        chunk = bytes(1 << 20)
        for _ in range(1024):
            w.write(chunk)
MANIFEST["deflate_bomb.pt"] = {"audit": 1, "finding": ["unsafe", "unreadable", "x/p.pkl"]}
# --- decoder abuse -----------------------------------------------------------
package("deep_nesting.pt", {"x/p.pkl": P3 + b"(" * 1_000_000 + b"."},
        {"audit": 1, "finding": ["unsafe", "unreadable", "x/p.pkl"]})
package("deep_lists.pt", {"x/p.pkl": P3 + b"]" * 200_000 + b"a" * 199_999 + b"."},
        {"audit": 0})
package("memo_abuse.pt", {"x/p.pkl": P3 + b"N" + b"r\xff\xff\xff\x7f" + b"."}, {"audit": 0})
package("memo_missing.pt", {"x/p.pkl": P3 + b"j\x00\x00\x00\x01."},
        {"audit": 1, "finding": ["unsafe", "unreadable", "x/p.pkl"]})
package("stack_underflow.pt", {"x/p.pkl": P3 + b"R."},
        {"audit": 1, "finding": ["unsafe", "unreadable", "x/p.pkl"]})
# --- tensors past their storage -------------------------------------------
def tensor_pickle(offset, size, stride, numel):
    storage = (b"(" + u("storage") + global_("torch", "FloatStorage") + u("0") + u("cpu")
               + b"\x8a\x08" + struct.pack("<q", numel) + b"tQ")
    def ints(values):
        return b"(" + b"".join(b"\x8a\x08" + struct.pack("<q", v) for v in values) + b"t"
    return (P3 + global_("torch._utils", "_rebuild_tensor_v2") + b"(" + storage
            + b"\x8a\x08" + struct.pack("<q", offset) + ints(size) + ints(stride)
            + b"\x89" + global_("collections", "OrderedDict") + b")R" + b"tR.")
storage4 = struct.pack("<4f", 1, 2, 3, 4)
package("tensor_offset_past_storage.pt",
        {"x/t.pkl": tensor_pickle(3, [4], [1], 4), ".data/0.storage": storage4},
        {"tensors_error": "storage", "audit": 0})
package("tensor_stride_past_storage.pt",
        {"x/t.pkl": tensor_pickle(0, [2, 2], [3, 1], 4), ".data/0.storage": storage4},
        {"tensors_error": "storage", "audit": 0})
package("tensor_shape_overflow.pt",
        {"x/t.pkl": tensor_pickle(0, [2**62, 2**62], [1, 1], 4), ".data/0.storage": storage4},
        {"tensors_error": "", "audit": 0})
package("storage_wrong_length.pt",
        {"x/t.pkl": tensor_pickle(0, [4], [1], 4), ".data/0.storage": storage4[:7]},
        {"tensors_error": "", "audit": 0})
TENSOR_BODY = tensor_pickle(0, [4], [1], 4)[len(P3):-1]


# --- cost per input byte (issue 18 item 11) ---------------------------------
# Each of these costs a walk that writes shared values out at every
# reference exponential (or quadratic) work in its size; tpkg bounds every
# walk by the graph's size, so each answers in milliseconds.
def memo_get(i):  # BINGET or LONG_BINGET
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)


def memo_put(i):  # BINPUT or LONG_BINPUT
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


# 59 levels of tuples, each holding the previous level twice, over one
# tensor: 2^59 paths to the tensor (a reader listing tensors or a value
# image without a bound runs for ever).
shared = P3 + TENSOR_BODY + memo_put(0)
for level in range(1, 60):
    shared += memo_get(level - 1) + memo_get(level - 1) + b"\x86" + memo_put(level)
package("shared_tuples.pt",
        {"x/p.pkl": shared + b".", "x/t.pkl": shared + b".", ".data/0.storage": storage4},
        {"audit": 0, "tensors_error": "shares values too much"})
# The shape of a decoder fuzz finding (2,117 bytes): 20 lists, each holding
# the previous one 100 times (DUP, then APPENDS), 100^20 paths to a float.
wide = P3 + b"]" + memo_put(0) + b"(G" + struct.pack(">d", 1.5) + b"e"
for level in range(1, 21):
    wide += b"]" + memo_put(level) + b"(" + memo_get(level - 1) + b"2" * 99 + b"e"
package("shared_lists_dup.pt", {"x/p.pkl": wide + b".", "x/t.pkl": wide + b"."},
        {"audit": 0, "tensors_error": "shares values too much"})
# STACK_GLOBAL of two memoized 1,000-byte strings, 2,000 times: 2 MB of
# names copied from a 16 kB pickle (quadratic) unless copies are bounded.
names = P3 + b"X" + struct.pack("<I", 1000) + b"m" * 1000 + memo_put(0)
names += b"X" + struct.pack("<I", 1000) + b"n" * 1000 + memo_put(1) + b"0" * 2
names += b"]" + b"(" + (memo_get(0) + memo_get(1) + b"\x93") * 2000 + b"e"
package("global_copies.pt", {"x/p.pkl": names + b"."},
        {"audit": 1, "finding": ["unsafe", "unreadable", "x/p.pkl", "copied"]})
# pickle.loads(_codecs.encode(text, 'latin1')) called 300 times on one
# memoized argument, three files deep: an audit of each call's file would
# audit 300^3 files (the text of each is audited once).
def loads_layer(inner, calls):
    text = inner.decode("latin1").encode("utf-8")
    return (b"\x80\x02" + global_("pickle", "loads") + memo_put(0) + global_("_codecs", "encode")
            + u(text.decode("utf-8")) + u("latin1") + b"\x86R\x85" + memo_put(1) + b"00"
            + b"](" + (memo_get(0) + memo_get(1) + b"R") * calls + b"e.")


nested = b"\x80\x02" + u("a" * 900) + b"."
for _ in range(3):
    nested = loads_layer(nested, 300)
package("nested_loads_shared.pt", {"x/p.pkl": nested},
        {"audit": 1, "finding": ["unsafe", "call", "pickle.loads"]})
# LONG_BINPUTs 1,000 slots apart: a dense memo would reserve 8 kB per 5 input bytes.
spread = P3 + b"N" + b"".join(memo_put(256 + 1000 * i) for i in range(2000)) + b"."
package("memo_spread.pt", {"x/p.pkl": spread}, {"audit": 0})

# --- the other formats: legacy torch.save, .pt2, TorchScript ---------------
# Each file is a realistic base built by hand (no torch), damaged in one
# place past the reader's first checks. Entries of these formats say what
# they read as ("format", as `inspect --json` reports it); the "tensors"
# and "verify" expectations then apply to the file's main object. A fourth
# item of "finding" is text its reason must contain; "verify" is verify's
# exit status when it is not 1.


def long8(n):  # LONG1 of 8 bytes
    return b"\x8a\x08" + struct.pack("<q", n)


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def pickle2(body):
    return b"\x80\x02" + body + b"."


def pdict(items):
    return b"}(" + b"".join(u(k) + v for k, v in items) + b"u"


LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
LEGACY_VERSION = b"\x80\x02M\xe9\x03."  # 1001


def sys_info(little_endian=True):
    return pickle2(pdict([
        ("protocol_version", long8(1001)),
        ("little_endian", b"\x88" if little_endian else b"\x89"),
        ("type_sizes", pdict([("short", long8(2)), ("int", long8(4)), ("long", long8(4))])),
    ]))


def legacy_pid(storage_type, key, numel, view=None):
    """('storage', torch.<storage_type>, key, 'cpu', numel, view_metadata)."""
    meta = b"N" if view is None else tup(u(view[0]), long8(view[1]), long8(view[2]))
    return tup(u("storage"), global_("torch", storage_type), u(key), u("cpu"), long8(numel), meta) + b"Q"


def rebuild(pid, offset, size, stride):
    """_rebuild_tensor_v2(pid, offset, size, stride, False, OrderedDict())."""
    return (global_("torch._utils", "_rebuild_tensor_v2")
            + tup(pid, long8(offset), tup(*map(long8, size)), tup(*map(long8, stride)), b"\x89",
                  global_("collections", "OrderedDict") + b")R")
            + b"R")


def key_list(keys):
    return pickle2(b"](" + b"".join(u(k) for k in keys) + b"e")


def legacy_object(a=None, b=None):
    """{"a": 2x3 float32 on storage "1", "b": int64 [2] on storage "2"}:
    what torch.save(state, f, _use_new_zipfile_serialization=False) writes."""
    a = a or rebuild(legacy_pid("FloatStorage", "1", 6), 0, [2, 3], [3, 1])
    b = b or rebuild(legacy_pid("LongStorage", "2", 2), 0, [2], [1])
    return pickle2(pdict([("a", a), ("b", b)]))


FLOATS6 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
LONGS2 = struct.pack("<2q", 7, -1)


def legacy(name, expect, magic=LEGACY_MAGIC, version=LEGACY_VERSION, info=None, obj=None,
           keys=None, storages=None, cut=None):
    """A legacy torch.save stream: magic, protocol version, sys_info, object,
    storage keys, then each storage as an 8-byte count and its elements."""
    data = (magic + version + (info or sys_info()) + (obj or legacy_object())
            + (keys if keys is not None else key_list(["1", "2"])))
    for count, elements in storages if storages is not None else [(6, FLOATS6), (2, LONGS2)]:
        data += struct.pack("<Q", count) + elements
    raw(name, data[:cut] if cut else data, dict(expect, format=expect.get("format", "torch.save-legacy")))
    return data


LEGACY_UNREADABLE = ["unsafe", "unreadable", "(file)"]
# Ends after the object pickle: the key list and the storages are missing.
legacy("legacy_truncated_after_object.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["storage keys pickle does not decode"],
        "tensors_error": "storage keys pickle does not decode"},
       keys=b"", storages=[])
# Storage "1" declares (in the pickle and its count) 2^40 floats, and the
# file ends after 6.
legacy("legacy_count_past_end.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["file ends inside the data of storage"],
        "tensors_error": "file ends inside the data of storage"},
       obj=legacy_object(a=rebuild(legacy_pid("FloatStorage", "1", 1 << 40), 0, [2, 3], [3, 1])),
       storages=[(1 << 40, FLOATS6), (2, LONGS2)])
# A count whose size in bytes (x 4) wraps past 2^64: torch.load computes it
# modulo 2^64 and would read 4 bytes.
legacy("legacy_count_overflow.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["overflows"], "tensors_error": "overflows"},
       obj=legacy_object(a=rebuild(legacy_pid("FloatStorage", "1", (1 << 62) + 1), 0, [1], [1])),
       storages=[((1 << 62) + 1, FLOATS6), (2, LONGS2)])
# One byte of the magic number changed: not a legacy file (torch.load:
# "Invalid magic number; corrupt file?"). It reads as a plain pickle file,
# five pickles then storage bytes that are no pickle: unreadable, never clean
# (and verify, which reads zips and legacy files, cannot read it).
bad_magic = LEGACY_MAGIC[:5] + bytes([LEGACY_MAGIC[5] ^ 0x01]) + LEGACY_MAGIC[6:]
stream_end = len(bad_magic + LEGACY_VERSION + sys_info() + legacy_object() + key_list(["1", "2"]))
legacy("legacy_bad_magic.pt",
       {"format": "pickle", "audit": 1,
        "finding": ["unsafe", "unreadable", f"pickle[5] (byte {stream_end})"],
        "tensors_error": "pickle", "verify": 1},
       magic=bad_magic)
legacy("legacy_protocol_999.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["protocol version 999"],
        "tensors_error": "protocol version 999"},
       version=b"\x80\x02M\xe7\x03.")
# sys_info says big-endian: a refusal, never numbers read in the wrong order.
legacy("legacy_big_endian.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["big-endian"], "tensors_error": "big-endian"},
       info=sys_info(little_endian=False))
legacy("legacy_key_twice.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["in the key list twice"],
        "tensors_error": "in the key list twice"},
       keys=key_list(["1", "1", "2"]), storages=[(6, FLOATS6), (6, FLOATS6), (2, LONGS2)])
# A listed key no storage of the object pickle has (torch.load: KeyError).
legacy("legacy_key_unknown.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["no storage of the object pickle has it"],
        "tensors_error": "no storage of the object pickle has it"},
       keys=key_list(["1", "2", "9"]), storages=[(6, FLOATS6), (2, LONGS2), (1, FLOATS6[:4])])
# A storage the object uses but the key list lacks: torch.load would hand
# out uninitialised memory.
legacy("legacy_key_unlisted.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE + ["missing from the storage key list"],
        "tensors_error": "missing from the storage key list"},
       keys=key_list(["1"]), storages=[(6, FLOATS6)])
# Storage views (view_metadata): a negative offset, and one 2^62 elements
# into a 6-element root.
legacy("legacy_view_negative.pt",
       {"audit": 1, "finding": LEGACY_UNREADABLE, "tensors_error": "non-negative"},
       obj=legacy_object(a=rebuild(legacy_pid("FloatStorage", "1", 6, ("v", -1, 3)), 0, [2], [1])))
legacy("legacy_view_huge.pt", {"audit": 0, "tensors_error": "storage"},
       obj=legacy_object(a=rebuild(legacy_pid("FloatStorage", "1", 6, ("v", 1 << 62, 3)), 0, [2], [1])))
# The key list pickle calls posix.system, then POPs the result, so the
# stream still reads (a list of keys) and torch.load runs the call before
# any storage: a scanner that reads only the object pickle misses it.
keys_reduce = pickle2(b"](" + u("1") + u("2") + b"e" + global_("posix", "system") + u("id") + b"\x85R0")
legacy("legacy_keys_reduce.pt", {"audit": 1, "finding": ["unsafe", "call", "posix.system"]},
       keys=keys_reduce)


# The pre-0.4 tar form: sys_info, pickle, tensors, storages members.
def tar_header(name, size, kind=b"0"):
    block = bytearray(512)
    block[:len(name)] = name.encode()
    block[100:107] = b"0000644"
    block[108:115] = b"0000000"
    block[116:123] = b"0000000"
    block[124:135] = b"%011o" % size
    block[136:147] = b"00000000000"
    block[156:157] = kind
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[148:156] = b"        "
    block[148:155] = b"%06o\0" % sum(block)
    return bytes(block)


def tar_member(name, data, size=None):
    out = tar_header(name, len(data) if size is None else size) + data
    return out + bytes(-len(out) % 512)


def tar_storages():
    """One root storage 100 of 6 floats, no views."""
    return (pickle2(long8(1)) + pickle2(tup(long8(100), u("cpu"), global_("torch", "FloatStorage")))
            + struct.pack("<Q", 6) + FLOATS6 + pickle2(b"]"))


def tar_tensors():
    """Tensor 1: [2, 3] over storage 100."""
    meta = struct.pack("<i4x", 2) + struct.pack("<5q", 2, 3, 3, 1, 0)
    return pickle2(long8(1)) + pickle2(tup(long8(1), long8(100), global_("torch", "FloatTensor"))) + meta


def tar_form(name, expect, members):
    raw(name, b"".join(members) + bytes(1024), dict(expect, format="torch.save-legacy"))


TAR_OBJECT = pickle2(pdict([("a", u("1") + b"Q")]))
TAR_BASE = [tar_member("sys_info", sys_info()), tar_member("pickle", TAR_OBJECT),
            tar_member("tensors", tar_tensors())]
# A member named ../x: torch.load extracts only storages and tensors by
# name, so it never touches it, and the file reads.
tar_form("legacy_tar_dotdot.pt", {"audit": 0},
         TAR_BASE[:1] + [tar_member("../x", b"escape\n")] + TAR_BASE[1:]
         + [tar_member("storages", tar_storages())])
# The last member's size runs 1 GiB past the end of the file (tarfile:
# "unexpected end of data"), and the file is no stream either.
tar_form("legacy_tar_size_past_end.pt",
         {"audit": 1, "finding": ["unsafe", "unreadable", "pickle[0] (byte 0)"],
          "tensors_error": "unexpected end of data"},
         TAR_BASE + [tar_member("storages", tar_storages(), size=1 << 30)])


# torch.export .pt2: archive_format, models/model.json, weights as raw
# records described by data/weights/model_weights_config.json.
def tensor_meta(dtype, sizes, strides, offset=0):
    return {"dtype": dtype, "sizes": [{"as_int": s} for s in sizes], "requires_grad": True,
            "device": {"type": "cpu", "index": None},
            "strides": [{"as_int": s} for s in strides], "storage_offset": {"as_int": offset},
            "layout": 7}


def weights_config(entries):
    return json.dumps({"config": {
        fqn: {"path_name": path, "is_param": True, "use_pickle": False, "tensor_meta": meta}
        for fqn, (path, meta) in entries.items()}}).encode()


PT2_WEIGHTS = {"l.weight": ("weight_0", tensor_meta(7, [2, 3], [3, 1])),
               "l.bias": ("weight_1", tensor_meta(7, [2], [1]))}
PT2_MODEL = json.dumps({"graph_module": {"graph": {
    "inputs": [{"as_tensor": {"name": "p_l_weight"}}, {"as_tensor": {"name": "p_l_bias"}},
               {"as_tensor": {"name": "x"}}],
    "outputs": [{"as_tensor": {"name": "linear"}}],
    "nodes": [{"target": "torch.ops.aten.linear.default", "inputs": [
        {"name": "input", "arg": {"as_tensor": {"name": "x"}}, "kind": 1},
        {"name": "weight", "arg": {"as_tensor": {"name": "p_l_weight"}}, "kind": 1},
        {"name": "bias", "arg": {"as_tensor": {"name": "p_l_bias"}}, "kind": 1}],
        "outputs": [{"as_tensor": {"name": "linear"}}], "metadata": {}}]}},
    "schema_version": {"major": 8, "minor": 0}}).encode()


def pt2(name, expect, config=None, weights=None, archive_format=b"pt2"):
    records = {
        "data/weights/model_weights_config.json": config or weights_config(PT2_WEIGHTS),
        "data/constants/model_constants_config.json": b'{"config": {}}',
        "models/model.json": PT2_MODEL,
        "archive_format": archive_format,
        "archive_version": b"0",
        ".data/version": b"6\n",
        "byteorder": b"little",
    }
    weights = weights if weights is not None else {"weight_0": FLOATS6, "weight_1": FLOATS6[:8]}
    for path, data in weights.items():
        records[f"data/weights/{path}"] = data
    with zipfile.ZipFile(os.path.join(HERE, name), "w", zipfile.ZIP_STORED) as z:
        for record, data in records.items():
            z.writestr(fixed(f"{name[:-4]}/{record}"), data)
    MANIFEST[name] = dict(expect, format=expect.get("format", "pt2"))


# A path_name leaving data/weights/: PyTorch's reader has no such record,
# and tpkg never looks outside the archive.
pt2("pt2_path_outside.pt2", {"audit": 0, "tensors_error": "etc/passwd"},
    config=weights_config(dict(PT2_WEIGHTS, **{"l.weight": ("../../../../etc/passwd", PT2_WEIGHTS["l.weight"][1])})))
pt2("pt2_missing_record.pt2", {"audit": 0, "tensors_error": "weight_9"},
    config=weights_config(dict(PT2_WEIGHTS, **{"l.weight": ("weight_9", PT2_WEIGHTS["l.weight"][1])})))
# weight_0 holds 2 floats; the config says [2, 3].
pt2("pt2_short_record.pt2", {"audit": 0, "tensors_error": "storage"},
    weights={"weight_0": FLOATS6[:8], "weight_1": FLOATS6[:8]})
pt2("pt2_shape_overflow.pt2", {"audit": 0, "tensors_error": ""},
    config=weights_config(dict(PT2_WEIGHTS, **{"l.weight": ("weight_0", tensor_meta(7, [2**62, 2**62], [1, 1]))})))
pt2("pt2_config_not_json.pt2", {"audit": 0, "tensors_error": "not JSON"},
    config=b'{"config": {"l.weight": {"path_name": "weight_0",')
pt2("pt2_config_deep.pt2", {"audit": 0, "tensors_error": "not JSON"},
    config=b'{"config": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
# archive_format says something else: torch.export.load refuses it; tpkg
# reads a zip with no other mark as a package (whose tensors need a pickle).
pt2("pt2_wrong_archive_format.pt2", {"format": "package", "audit": 0, "tensors_error": "no pickle"},
    archive_format=b"pt3")


# A TorchScript file (torch.jit.save) whose data.pkl calls os.system.
def torchscript(name, data_pkl, expect):
    records = {
        "data.pkl": data_pkl,
        "code/__torch__.py": b"class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n"
                             b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    return x\n",
        "constants.pkl": b"\x80\x02).",
        "version": b"3\n",
        "byteorder": b"little",
    }
    with zipfile.ZipFile(os.path.join(HERE, name), "w", zipfile.ZIP_STORED) as z:
        for record, data in records.items():
            z.writestr(fixed(f"archive/{record}"), data)
    MANIFEST[name] = dict(expect, format="torchscript")


torchscript("torchscript_os_system.pt", P3 + global_("os", "system") + u("id") + b"\x85R.",
            {"audit": 1, "finding": ["unsafe", "call", "os.system"]})


# `tpkg audit` exits 2 for a file it cannot read whole (what it cannot
# read, it cannot vouch for), 1 for a finding at --fail-on, 0 otherwise.
for expect in MANIFEST.values():
    if expect.get("finding", [None, None])[:2] == ["unsafe", "unreadable"]:
        expect["audit"] = 2

with open(os.path.join(HERE, "manifest.json"), "w") as f:
    json.dump(MANIFEST, f, indent=1, sort_keys=True)
    f.write("\n")
print(len(MANIFEST), "hostile inputs")
