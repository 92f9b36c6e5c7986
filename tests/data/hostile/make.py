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
# INST and OBJ: instantiation without REDUCE.
package("inst_opcode.pt", {"x/p.pkl": b"(S'id'\nios\nsystem\n."},
        {"audit": 1, "finding": ["unsafe", "instantiate", "os.system"]})
package("obj_opcode.pt", {"x/p.pkl": P3 + b"(" + global_("os", "system") + u("id") + b"o."},
        {"audit": 1, "finding": ["unsafe", "instantiate", "os.system"]})
# PyTorch's __reduce_package__ persistent id calling a dangerous function.
reduce_package = (P3 + b"(" + u("reduce_package") + b"K\x07" + global_("os", "system") + u("id")
                  + b"\x85tQ.")
package("reduce_package.pt", {"x/p.pkl": reduce_package},
        {"audit": 1, "finding": ["unsafe", "call", "os.system"]})
# --- interned source that runs at import ---------------------------------
package("import_time_code.pt",
        {"evil/__init__.py": b"import subprocess\nsubprocess.run(['id'])\n",
         "x/p.pkl": P3 + global_("evil", "thing") + b"."},
        {"audit": 1, "finding": ["unsafe", "dangerous-import", "subprocess"]})
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

with open(os.path.join(HERE, "manifest.json"), "w") as f:
    json.dump(MANIFEST, f, indent=1, sort_keys=True)
    f.write("\n")
print(len(MANIFEST), "hostile inputs")
