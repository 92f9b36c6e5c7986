#!/usr/bin/env python3
"""Differential harness: PyTorch's archive reader against tpkg's (issue 16).

For many archives, PyTorch (`torch._C.PyTorchFileReader`, miniz) and tpkg
(`PackageReader`, through the `tpkg-zipdiff-reader` binary) must agree on
refusing or reading, and where both read, on every record's name (in order)
and bytes (SHA-256).

Cases:
  a<k>   a random archive written by `torch._C.PyTorchFileWriter`, seeded by
         (seed, k): folder, 1-400 records, 0-70 kB each, sometimes
         torch.package's bookkeeping records; 4% have one name with a '.'
         or '..' component, 2% one name over miniz's 511-byte limit;
  m<j>   a seeded mutation of archive a<j mod archives>: a bit flip, a random
         byte or a chosen field value in a region found by parsing the
         writer's layout (local headers, data, data descriptors, central
         directory entries field by field, zip64 end record, zip64 locator,
         end record), a truncation, appended or prepended bytes, a duplicate
         or case-duplicate central name, or an edit of the prefix;
  big-many, big-huge, bm<j>, bh<j> (with --big): 70,000 records, a record
         over 4 GiB, and a few mutations of each.

Outcomes (as issue 16 defines them):
  PyTorch: open, get_all_records(), get_record(name) for each name in order;
           any exception -> {"read": false, "error": first 200 chars}, else
           {"read": true, "records": [[name, sha256], ...]}.
  tpkg:    PackageReader::open_zip (no CRC check), records(), read(name).
A case is *indeterminate* (reported apart, not a disagreement) when PyTorch
read a record it fills with uninitialised memory, and tpkg either refuses
the archive or reads the same names with bytes differing only in such
records. Such a record has an uncompressed size above 0 and a central
entry that is a directory (name ending in '/' or external attribute bit
0x10) or has compressed size 0 (miniz returns success without writing the
buffer), or is deflated with a stream that does not inflate to that size
(tinfl fails part way; miniz sets no error and PyTorch ignores the return
value, so the rest of the buffer is uninitialised).

The driver starts W worker processes (this script with --worker); each
holds one tpkg reader process and takes units (a base archive and its
mutations) over pipes, so nothing starts a process per case. A worker that
dies inside PyTorch (or hangs) is replaced; the case is retried with PyTorch
skipped and counted as a PyTorch crash (PyTorch refused it).

  python zip_differential.py --reader BIN [--archives N] [--mutations M]
      [--seed S] [--big] [--workers W] [--report PATH] [--keep DIR]
      [--case ID[,ID...]]

Prints a summary table; writes the report JSON to --report; with --keep,
copies the archives of cases that do not agree there (a few per class). Exits 1 if
any case disagrees (unless --exit-zero). `--case m123 --keep DIR` replays
single cases (use the same --seed and --archives).
"""

import argparse
import hashlib
import json
import os
import random
import re
import selectors
import shutil
import string
import struct
import subprocess
import sys
import tempfile
import time
import zlib

# ---------------------------------------------------------------------------
# Random archives

FOLDER_CHARS = string.ascii_letters + string.digits + "_"
NAME_CHARS = string.ascii_letters + string.digits + "._-" + "..--__"
UNICODE_CHARS = "éüßøñçΩжπ中文字한글😀"


def folder_name(rng):
    length = rng.randint(1, 12) if rng.random() < 0.7 else rng.randint(1, 40)
    return "".join(rng.choice(FOLDER_CHARS) for _ in range(length))


def component(rng, unicode_ok):
    length = rng.randint(1, 12) if rng.random() < 0.8 else rng.randint(1, 40)
    while True:
        chars = []
        for _ in range(length):
            if unicode_ok and rng.random() < 0.1:
                chars.append(rng.choice(UNICODE_CHARS))
            else:
                chars.append(rng.choice(NAME_CHARS))
        text = "".join(chars)
        if text not in (".", ".."):  # those come only from odd_name
            return text


def record_name(rng, unicode_ok):
    parts = rng.choice((1, 1, 2, 2, 2, 3))
    return "/".join(component(rng, unicode_ok) for _ in range(parts))


def odd_name(rng, kind, unicode_ok):
    """A name PyTorch writes without complaint that a strict reader may
    not take: a '.' or '..' component, or one over miniz's 511 bytes."""
    if kind == "dot":
        parts = [component(rng, unicode_ok) for _ in range(rng.randint(1, 3))]
        parts.insert(rng.randint(0, len(parts)), rng.choice((".", "..")))
        return "/".join(parts)
    return "/".join("".join(rng.choice(NAME_CHARS) for _ in range(rng.randint(170, 250)))
                    for _ in range(3))


def record_count(rng):
    roll = rng.random()
    if roll < 0.6:
        return rng.randint(1, 20)
    if roll < 0.9:
        return rng.randint(20, 100)
    return rng.randint(100, 400)


def record_size(rng):
    roll = rng.random()
    if roll < 0.1:
        return 0
    if roll < 0.55:
        return rng.randint(1, 256)
    if roll < 0.88:
        return rng.randint(256, 8192)
    return rng.randint(8192, 70 * 1024)


BOOKKEEPING_NAMES = {"version", "byteorder", ".data/version", ".data/serialization_id"}


def write_random_archive(seed, k, directory):
    """Writes archive a<k> with PyTorchFileWriter; returns its path."""
    import torch

    rng = random.Random(f"{seed}:archive:{k}")
    folder = folder_name(rng)
    path = os.path.join(directory, folder + ".pt")
    unicode_ok = rng.random() < 0.2
    count = record_count(rng)
    bookkeeping = rng.random() < 0.3
    roll = rng.random()
    odd = "dot" if roll < 0.04 else "long" if roll < 0.06 else None
    odd_at = rng.randrange(count)
    names = set()
    writer = torch._C.PyTorchFileWriter(path)
    for i in range(count):
        name = odd_name(rng, odd, unicode_ok) if odd and i == odd_at else record_name(rng, unicode_ok)
        while name in names or name in BOOKKEEPING_NAMES:
            name = record_name(rng, unicode_ok)
        names.add(name)
        data = rng.randbytes(record_size(rng))
        writer.write_record(name, data, len(data))
    if bookkeeping:
        # What torch.package's exporter writes before closing.
        modules = [component(rng, False).replace(".", "_") for _ in range(rng.randint(0, 4))]
        extern = "".join(m + "\n" for m in modules).encode()
        writer.write_record(".data/extern_modules", extern, len(extern))
        writer.write_record(".data/python_version", b"3.11", 4)
        if rng.random() < 0.7:
            writer.write_record(".data/version", b"6\n", 2)
    writer.write_end_of_file()
    del writer
    return path


def write_many_records(directory):
    """70,000 small records: past zip's 65,535-entry limit."""
    import torch

    rng = random.Random("big-many")
    path = os.path.join(directory, "many.pt")
    writer = torch._C.PyTorchFileWriter(path)
    for i in range(70_000):
        data = rng.randbytes(rng.randint(0, 16))
        writer.write_record(f"r/{i:05d}", data, len(data))
    writer.write_end_of_file()
    del writer
    return path


HUGE_SIZE = 4 * 1024**3 + 100 * 1024**2 + 13  # 4.1 GiB and a bit: odd on purpose


def write_huge_record(directory):
    """A record over 4 GiB between two small ones: zip64 sizes and offsets."""
    import torch

    path = os.path.join(directory, "huge.pt")
    writer = torch._C.PyTorchFileWriter(path)
    writer.write_record("a/first", b"before the big one", 18)
    # Position-dependent content (8-byte counters), so a shifted read differs.
    pattern = torch.arange((HUGE_SIZE + 7) // 8, dtype=torch.int64)
    writer.write_record("big/blob", pattern.untyped_storage(), HUGE_SIZE)
    del pattern
    writer.write_record("a/last", b"after the big one", 17)
    writer.write_end_of_file()
    del writer
    return path


# ---------------------------------------------------------------------------
# The writer's layout

LOCAL_FIELDS = [
    ("signature", 0, 4), ("version", 4, 2), ("flags", 6, 2), ("method", 8, 2),
    ("time", 10, 2), ("date", 12, 2), ("crc", 14, 4), ("comp_size", 18, 4),
    ("uncomp_size", 22, 4), ("name_len", 26, 2), ("extra_len", 28, 2),
]
CENTRAL_FIELDS = [
    ("signature", 0, 4), ("made_by", 4, 2), ("version", 6, 2), ("flags", 8, 2),
    ("method", 10, 2), ("time", 12, 2), ("date", 14, 2), ("crc", 16, 4),
    ("comp_size", 20, 4), ("uncomp_size", 24, 4), ("name_len", 28, 2),
    ("extra_len", 30, 2), ("comment_len", 32, 2), ("disk", 34, 2),
    ("int_attr", 36, 2), ("ext_attr", 38, 4), ("local_offset", 42, 4),
]
ZIP64_EOCD_FIELDS = [
    ("signature", 0, 4), ("record_size", 4, 8), ("made_by", 12, 2),
    ("version", 14, 2), ("disk", 16, 4), ("cd_disk", 20, 4),
    ("entries_disk", 24, 8), ("entries", 32, 8), ("cd_size", 40, 8),
    ("cd_offset", 48, 8),
]
ZIP64_LOCATOR_FIELDS = [
    ("signature", 0, 4), ("eocd_disk", 4, 4), ("eocd_offset", 8, 8), ("disks", 16, 4),
]
EOCD_FIELDS = [
    ("signature", 0, 4), ("disk", 4, 2), ("cd_disk", 6, 2), ("entries_disk", 8, 2),
    ("entries", 10, 2), ("cd_size", 12, 4), ("cd_offset", 16, 4), ("comment_len", 20, 2),
]


def u16(buf, at):
    return struct.unpack_from("<H", buf, at)[0]


def u32(buf, at):
    return struct.unpack_from("<I", buf, at)[0]


def u64(buf, at):
    return struct.unpack_from("<Q", buf, at)[0]


def zip64_values(extra, comp, uncomp, offset):
    """miniz's reading of the zip64 extra field: each 0xFFFFFFFF in turn."""
    at = 0
    while at + 4 <= len(extra):
        field_id, size = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + size]
        if field_id == 1:
            pos = 0
            if uncomp == 0xFFFFFFFF and pos + 8 <= len(body):
                uncomp = u64(body, pos)
                pos += 8
            if comp == 0xFFFFFFFF and pos + 8 <= len(body):
                comp = u64(body, pos)
                pos += 8
            if offset == 0xFFFFFFFF and pos + 8 <= len(body):
                offset = u64(body, pos)
            break
        at += 4 + size
    return comp, uncomp, offset


def parse_layout(buf, file_len=None):
    """The regions of an archive PyTorchFileWriter wrote (no comment,
    zip64 end record and locator always present). `buf` may be just the
    file's tail when `file_len` says where it ends (the >4 GiB case):
    offsets are file offsets."""
    file_len = len(buf) if file_len is None else file_len
    base = file_len - len(buf)  # file offset of buf[0]

    def at(offset):
        return offset - base

    eocd = file_len - 22
    assert buf[at(eocd) : at(eocd) + 4] == b"PK\x05\x06", "no end record"
    locator = eocd - 20
    assert buf[at(locator) : at(locator) + 4] == b"PK\x06\x07", "no zip64 locator"
    z64 = u64(buf, at(locator) + 8)
    assert buf[at(z64) : at(z64) + 4] == b"PK\x06\x06", "no zip64 end record"
    entries_total = u64(buf, at(z64) + 32)
    cd_size = u64(buf, at(z64) + 40)
    cd_offset = u64(buf, at(z64) + 48)
    entries = []
    pos = cd_offset
    for _ in range(entries_total):
        p = at(pos)
        assert buf[p : p + 4] == b"PK\x01\x02", "bad central entry"
        comp, uncomp = u32(buf, p + 20), u32(buf, p + 24)
        name_len, extra_len, comment_len = u16(buf, p + 28), u16(buf, p + 30), u16(buf, p + 32)
        local = u32(buf, p + 42)
        extra = bytes(buf[p + 46 + name_len : p + 46 + name_len + extra_len])
        comp, uncomp, local = zip64_values(extra, comp, uncomp, local)
        entries.append({
            "central": pos,
            "name": bytes(buf[p + 46 : p + 46 + name_len]),
            "name_len": name_len,
            "extra_len": extra_len,
            "comment_len": comment_len,
            "local": local,
            "comp": comp,
            "uncomp": uncomp,
            "flags": u16(buf, p + 8),
        })
        pos += 46 + name_len + extra_len + comment_len
    assert pos == cd_offset + cd_size
    for i, entry in enumerate(entries):
        local = entry["local"]
        following = entries[i + 1]["local"] if i + 1 < len(entries) else cd_offset
        if local >= base:
            p = at(local)
            entry["local_name_len"] = u16(buf, p + 26)
            entry["local_extra_len"] = u16(buf, p + 28)
            data = local + 30 + entry["local_name_len"] + entry["local_extra_len"]
            entry["data"] = data
            data_end = data + entry["comp"]
            entry["descriptor"] = (data_end, following - data_end) if following > data_end else None
        else:
            entry["data"] = None
            entry["descriptor"] = None
    return {
        "file_len": file_len,
        "entries": entries,
        "cd_offset": cd_offset,
        "cd_size": cd_size,
        "zip64_eocd": z64,
        "zip64_locator": locator,
        "eocd": eocd,
    }


def layout_fields(layout, region, rng):
    """One (label, offset, length, is_integer) in `region`; None if there is
    none (e.g. no data)."""
    entries = layout["entries"]

    def pick_entry(predicate=lambda e: True):
        candidates = [i for i, e in enumerate(entries) if predicate(e)]
        if not candidates:
            return None
        roll = rng.random()
        if roll < 0.15:
            return candidates[0]
        if roll < 0.25:
            return candidates[-1]
        return rng.choice(candidates)

    if region == "local":
        i = pick_entry(lambda e: e["data"] is not None)
        if i is None:
            return None
        e = entries[i]
        fields = [(n, e["local"] + o, w, True) for n, o, w in LOCAL_FIELDS]
        name_at = e["local"] + 30
        fields.append(("name", name_at, e["local_name_len"], False))
        if e["local_extra_len"]:
            fields.append(("extra", name_at + e["local_name_len"], e["local_extra_len"], False))
        name, offset, width, integer = rng.choice(fields)
        return (f"local.{name}", f"local[{i}].{name}", offset, width, integer)
    if region == "data":
        i = pick_entry(lambda e: e["data"] is not None and e["comp"] > 0)
        if i is None:
            return None
        e = entries[i]
        return ("data", f"data[{i}]", e["data"], e["comp"], False)
    if region == "descriptor":
        i = pick_entry(lambda e: e["descriptor"] is not None)
        if i is None:
            return None
        start, length = entries[i]["descriptor"]
        size_width = (length - 8) // 2
        fields = [("signature", 0, 4), ("crc", 4, 4), ("comp_size", 8, size_width),
                  ("uncomp_size", 8 + size_width, size_width)]
        name, offset, width = rng.choice(fields)
        return (f"descriptor.{name}", f"descriptor[{i}].{name}", start + offset, width, True)
    if region == "central":
        i = pick_entry()
        e = entries[i]
        fields = [(n, e["central"] + o, w, True) for n, o, w in CENTRAL_FIELDS]
        fields.append(("name", e["central"] + 46, e["name_len"], False))
        if e["extra_len"]:
            fields.append(("extra", e["central"] + 46 + e["name_len"], e["extra_len"], False))
        name, offset, width, integer = rng.choice(fields)
        return (f"central.{name}", f"central[{i}].{name}", offset, width, integer)
    table, start = {
        "zip64_eocd": (ZIP64_EOCD_FIELDS, layout["zip64_eocd"]),
        "zip64_locator": (ZIP64_LOCATOR_FIELDS, layout["zip64_locator"]),
        "eocd": (EOCD_FIELDS, layout["eocd"]),
    }[region]
    name, offset, width = rng.choice(table)
    return (f"{region}.{name}", f"{region}.{name}", start + offset, width, True)


# ---------------------------------------------------------------------------
# Mutations

BYTE_REGIONS = [
    ("local", 14), ("data", 6), ("descriptor", 3), ("central", 34),
    ("zip64_eocd", 7), ("zip64_locator", 5), ("eocd", 9),
]
OTHER_OPS = [("truncate", 5), ("append", 3), ("prepend", 4), ("dupname", 5), ("prefix", 5)]


def weighted(rng, table):
    total = sum(w for _, w in table)
    roll = rng.uniform(0, total)
    for item, w in table:
        roll -= w
        if roll <= 0:
            return item
    return table[-1][0]


def byte_patch(layout, rng, read_bytes, regions=BYTE_REGIONS):
    """A flip / set-byte / set-field in a weighted region: (region, text,
    [(offset, new bytes)]). `read_bytes(offset, n)` gives the current bytes."""
    for _ in range(20):
        field = layout_fields(layout, weighted(rng, regions), rng)
        if field is not None and field[3] > 0:
            break
    else:
        return None
    region, where, offset, width, integer = field
    op = weighted(rng, [("flip", 50), ("set", 35), ("field", 15 if integer else 0)])
    if op == "flip":
        pos = offset + rng.randrange(width)
        old = read_bytes(pos, 1)[0]
        bit = rng.randrange(8)
        new = old ^ (1 << bit)
        return region, f"flip {where} @{pos:#x} bit {bit} ({old:#04x}->{new:#04x})", [(pos, bytes([new]))]
    if op == "set":
        pos = offset + rng.randrange(width)
        old = read_bytes(pos, 1)[0]
        new = rng.choice([v for v in range(256) if v != old])
        return region, f"set {where} @{pos:#x} ({old:#04x}->{new:#04x})", [(pos, bytes([new]))]
    old = int.from_bytes(read_bytes(offset, width), "little")
    top = (1 << (8 * width)) - 1
    candidates = [0, 1, top, top - 1, top >> 1, (top >> 1) + 1, old + 1, old - 1,
                  old * 2, old // 2, 0xFFFF, 0xFFFFFFFF, layout["file_len"],
                  old ^ (1 << rng.randrange(8 * width)), rng.randrange(top + 1)]
    candidates = [v & top for v in candidates if v >= 0]
    candidates = [v for v in candidates if v != old] or [old ^ 1]
    new = rng.choice(candidates)
    return region, f"field {where} @{offset:#x} {old:#x}->{new:#x}", [(offset, new.to_bytes(width, "little"))]


def rebuild_central(buf, layout, names):
    """The archive with central names replaced ({index: full name bytes});
    the central directory is rewritten and the tail records patched."""
    cd_start = layout["cd_offset"]
    out = bytearray(buf[:cd_start])
    for i, e in enumerate(layout["entries"]):
        p = e["central"]
        header = bytearray(buf[p : p + 46])
        name = names.get(i, e["name"])
        struct.pack_into("<H", header, 28, len(name))
        rest = buf[p + 46 + e["name_len"] : p + 46 + e["name_len"] + e["extra_len"] + e["comment_len"]]
        out += header + name + rest
    cd_size = len(out) - cd_start
    tail = bytearray(buf[layout["zip64_eocd"] :])
    struct.pack_into("<Q", tail, 40, cd_size)  # zip64 end record: cd size
    locator = layout["zip64_locator"] - layout["zip64_eocd"]
    struct.pack_into("<Q", tail, locator + 8, cd_start + cd_size)
    eocd = layout["eocd"] - layout["zip64_eocd"]
    if u32(tail, eocd + 12) != 0xFFFFFFFF:
        struct.pack_into("<I", tail, eocd + 12, min(cd_size, 0xFFFFFFFF))
    return bytes(out + tail)


def swap_case(name, rng):
    letters = [i for i, c in enumerate(name) if chr(c).isalpha() and c < 128]
    if not letters:
        return None
    chosen = rng.sample(letters, rng.randint(1, len(letters)))
    out = bytearray(name)
    for i in chosen:
        out[i] = ord(chr(out[i]).swapcase())
    return bytes(out)


def mutate(seed, j, base, layout, scratch):
    """Mutation m<j> of `base`: (bytes, region, description)."""
    rng = random.Random(f"{seed}:mutation:{j}")
    entries = layout["entries"]
    total = sum(w for _, w in BYTE_REGIONS) + sum(w for _, w in OTHER_OPS)
    kind = "byte" if rng.uniform(0, total) < sum(w for _, w in BYTE_REGIONS) else weighted(rng, OTHER_OPS)
    if kind == "dupname" and len(entries) < 2:
        kind = "byte"
    if kind == "byte":
        patch = byte_patch(layout, rng, lambda pos, n: base[pos : pos + n])
        region, text, patches = patch
        out = bytearray(base)
        for pos, new in patches:
            out[pos : pos + len(new)] = new
        return bytes(out), region, text
    if kind == "truncate":
        if rng.random() < 0.5:
            cut = rng.randrange(len(base))
        else:
            tail = min(len(base), layout["file_len"] - layout["cd_offset"] + 64)
            cut = len(base) - 1 - rng.randrange(tail)
        return base[:cut], "truncate", f"truncate to {cut} of {len(base)} bytes"
    if kind == "append":
        roll = rng.random()
        if roll < 0.4:
            extra = rng.randbytes(rng.randint(1, 64))
            what = "random"
        elif roll < 0.7:
            extra = rng.randbytes(rng.randint(65, 70_000))
            what = "random"
        else:
            extra = base[layout["zip64_eocd"] :]
            what = "tail-copy"
        return base + extra, f"append.{what}", f"append {len(extra)} {what} bytes"
    if kind == "prepend":
        roll = rng.random()
        if roll < 0.4:
            extra = rng.randbytes(rng.randint(1, 64) if rng.random() < 0.6 else rng.randint(65, 5000))
            what = "random"
        elif roll < 0.7:
            extra = base[: rng.randint(1, min(len(base), 5000))]
            what = "self-prefix"
        else:
            other = write_random_archive(seed, f"other-{j}", scratch)
            with open(other, "rb") as f:
                whole = f.read()
            os.unlink(other)
            extra = whole if rng.random() < 0.5 else whole[: rng.randint(1, len(whole))]
            what = "other-archive"
        return extra + base, f"prepend.{what}", f"prepend {len(extra)} {what} bytes"
    if kind == "dupname":
        i, k = rng.sample(range(len(entries)), 2)
        source = entries[i]["name"]
        if rng.random() < 0.5:
            new = swap_case(source, rng)
            what = "case"
            if new is None:
                new, what = source, "exact"
        else:
            new, what = source, "exact"
        out = rebuild_central(base, layout, {k: new})
        return out, f"dupname.{what}", f"central[{k}] name := {new[:60]!r} (from central[{i}])"
    # Prefix edits: the first entry's name, or every entry's.
    first = entries[0]["name"]
    folder, slash, rest = first.partition(b"/")
    variant = rng.choice(["char", "shorten", "lengthen", "noslash", "case", "all", "all-odd", "dir"])
    names = {}
    if variant == "char" and folder:
        pos = rng.randrange(len(folder))
        new_char = rng.choice([c for c in (FOLDER_CHARS + ".-/ ").encode() if c != folder[pos]])
        names[0] = folder[:pos] + bytes([new_char]) + folder[pos + 1 :] + slash + rest
    elif variant == "shorten" and len(folder) > 1:
        names[0] = folder[:-1] + slash + rest
    elif variant == "lengthen":
        names[0] = folder + rng.choice(FOLDER_CHARS).encode() + slash + rest
    elif variant == "noslash":
        names[0] = folder + rest
    elif variant == "case" and swap_case(folder, rng):
        names[0] = swap_case(folder, rng) + slash + rest
    elif variant == "dir":
        names[0] = folder + b"/"
    else:
        if variant == "all-odd":
            new_folder = rng.choice([b"", b".", b"..", b" ", "é".encode(), b"a/b", b"A", b"x" * 300])
        else:
            variant = "all"
            new_folder = folder_name(rng).encode()
        for i, e in enumerate(entries):
            _, s, r = e["name"].partition(b"/")
            names[i] = new_folder + s + r
        variant = f"{variant}:{new_folder[:12]!r}" if variant == "all-odd" else variant
    if not names:
        names[0] = folder + b"/"
        variant = "dir"
    out = rebuild_central(base, layout, names)
    shown = names.get(0, first)
    return out, f"prefix.{variant.split(':')[0]}", f"prefix {variant}: first name := {shown[:60]!r}"


# ---------------------------------------------------------------------------
# Outcomes


def pytorch_outcome(path):
    import torch

    try:
        reader = torch._C.PyTorchFileReader(path)
        records = []
        for name in reader.get_all_records():
            data = reader.get_record(name)
            records.append([name, hashlib.sha256(data).hexdigest()])
            del data
        return {"read": True, "records": records}
    except Exception as error:  # any exception anywhere is a refusal
        return {"read": False, "error": f"{type(error).__name__}: {error}"[:200]}


def inflates_partly(data, size):
    """Whether miniz would leave part of a `size`-byte buffer unwritten
    inflating `data`, and still not report an error: tinfl fails on the
    stream, or the input ends before the stream does (miniz sets an error
    only when a complete stream inflates to the wrong size, and PyTorch
    ignores extract_to_mem's return value)."""
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, size) if size else b""
    except zlib.error:
        return True
    return len(out) < size and not inflater.eof


def indeterminate_names(path, file_len):
    """Lower-cased names (after the folder, and whole) of every central
    header in the file whose record miniz 'reads' as uninitialised memory,
    with an uncompressed size above 0: a directory (name ending in '/' or
    external attribute 0x10), compressed size 0, or a deflated record whose
    stream does not inflate to its size. Over-inclusive on purpose (every
    PK\\1\\2 in the file counts); it only matters for cases the readers
    disagree on."""
    with open(path, "rb") as f:
        start = max(0, file_len - 64 * 1024 * 1024) if file_len > 256 * 1024 * 1024 else 0
        f.seek(start)
        buf = f.read()
    found = set()
    pos = buf.find(b"PK\x01\x02")
    while pos != -1 and pos + 46 <= len(buf):
        method = u16(buf, pos + 10)
        comp, uncomp = u32(buf, pos + 20), u32(buf, pos + 24)
        name_len, extra_len = u16(buf, pos + 28), u16(buf, pos + 30)
        ext_attr = u32(buf, pos + 38)
        name = buf[pos + 46 : pos + 46 + name_len]
        extra = buf[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        comp, uncomp, local = zip64_values(extra, comp, uncomp, u32(buf, pos + 42))
        is_dir = name.endswith(b"/") or bool(ext_attr & 0x10)
        undefined = uncomp > 0 and (is_dir or comp == 0)
        at = local - start
        if not undefined and uncomp > 0 and method == 8 and 0 <= at and at + 30 <= len(buf):
            data = at + 30 + u16(buf, at + 26) + u16(buf, at + 28)
            undefined = inflates_partly(buf[data : data + comp], uncomp)
        if undefined:
            found.add(name.partition(b"/")[2].lower())
            found.add(name.lower())
        pos = buf.find(b"PK\x01\x02", pos + 1)
    return found


CLASSES = [
    "agree", "indeterminate", "tpkg-panicked", "both-read/names-differ",
    "both-read/bytes-differ", "pytorch-reads/tpkg-refuses", "pytorch-refuses/tpkg-reads",
]


def classify(pt, tp, indeterminate):
    if tp.get("panic"):
        return "tpkg-panicked"
    if pt["read"] and tp["read"]:
        if pt["records"] == tp["records"]:
            return "agree"
        if [n for n, _ in pt["records"]] != [n for n, _ in tp["records"]]:
            return "both-read/names-differ"
        differing = [a[0] for a, b in zip(pt["records"], tp["records"]) if a[1] != b[1]]
        keys = indeterminate()
        if all(n.encode("utf-8", "surrogatepass").lower() in keys for n in differing):
            return "indeterminate"
        return "both-read/bytes-differ"
    if not pt["read"] and not tp["read"]:
        return "agree"
    if pt["read"]:
        # PyTorch's result is undefined if it read such a record: refusing
        # the archive is not a disagreement.
        keys = indeterminate()
        if any(n.encode("utf-8", "surrogatepass").lower() in keys for n, _ in pt["records"]):
            return "indeterminate"
        return "pytorch-reads/tpkg-refuses"
    return "pytorch-refuses/tpkg-reads"


def brief(outcome, other=None):
    """An outcome in a few fields: the error, or the count and where it
    first differs from `other`."""
    if not outcome["read"]:
        out = {"read": False, "error": outcome["error"][:200]}
        if outcome.get("crashed"):
            out["crashed"] = True
        return out
    records = outcome["records"]
    out = {"read": True, "count": len(records), "first": [r[0][:80] for r in records[:3]]}
    if other is not None and other["read"]:
        theirs = other["records"]
        for i in range(max(len(records), len(theirs))):
            mine = records[i] if i < len(records) else None
            if mine is None or i >= len(theirs) or mine != theirs[i]:
                out["first_difference"] = {"index": i, "record": mine and [mine[0][:120], mine[1][:16]]}
                break
    return out


# ---------------------------------------------------------------------------
# Worker


class TpkgReader:
    def __init__(self, binary):
        self.binary = binary
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [self.binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, encoding="utf-8", bufsize=1,
        )

    def send(self, path):
        try:
            self.process.stdin.write(path + "\n")
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def receive(self):
        line = self.process.stdout.readline()
        if line:
            return json.loads(line)
        code = self.process.wait()
        self.start()
        return {"read": False, "error": f"tpkg reader process died (exit {code})", "panic": True}


class Worker:
    def __init__(self, args):
        self.args = args
        self.reader = TpkgReader(args.reader)
        self.scratch = tempfile.mkdtemp(prefix="w", dir=args.tmp)
        self.kept = {}

    def evaluate(self, case, path, region, text, skip_pytorch, file_len, keep=True):
        sent = self.reader.send(path)
        if skip_pytorch:
            pt = {"read": False, "error": "PyTorch crashed on this archive (worker died)", "crashed": True}
        else:
            pt = pytorch_outcome(path)
        tp = self.reader.receive() if sent else {
            "read": False, "error": "tpkg reader process died", "panic": True}
        if not sent:
            self.reader.start()
        cached = []

        def indeterminate():
            if not cached:
                cached.append(indeterminate_names(path, file_len))
            return cached[0]

        cls = classify(pt, tp, indeterminate)
        result = {"case": case, "region": region, "class": cls, "size": file_len}
        if pt.get("crashed"):
            result["pytorch_crashed"] = True
        if cls != "agree":
            result["what"] = text
            result["pytorch"] = brief(pt, tp)
            result["tpkg"] = brief(tp, pt)
            if keep and self.args.keep and file_len < 64 * 1024 * 1024:
                folder = os.path.join(self.args.keep, cls.replace("/", "_"))
                if self.kept.get(cls, 0) < self.args.keep_per_class:
                    self.kept[cls] = self.kept.get(cls, 0) + 1
                    os.makedirs(folder, exist_ok=True)
                    kept = os.path.join(folder, f"{case}.zip")
                    shutil.copyfile(path, kept)
                    result["kept"] = kept
        return result

    def run_unit(self, unit, emit):
        if "big" in unit:
            return self.run_big(unit, emit)
        seed = self.args.seed
        k = unit["base"]
        crashed = set(unit.get("crashed", []))
        base_dir = os.path.join(self.scratch, "base")
        os.makedirs(base_dir, exist_ok=True)
        base_path = write_random_archive(seed, k, base_dir)
        with open(base_path, "rb") as f:
            base = f.read()
        layout = parse_layout(base)
        case_path = os.path.join(self.scratch, "case.zip")
        base_class = None
        for case in unit["cases"]:
            if case == f"a{k}":
                result = self.evaluate(case, base_path, "random", "random archive", case in crashed, len(base))
                base_class = result["class"]
                emit(result)
                continue
            if base_class is None:
                # Mutations of an archive the readers already disagree on
                # are told apart from disagreements the mutation made.
                base_class = self.evaluate(f"a{k}", base_path, "random", "", False, len(base), keep=False)["class"]
            j = int(case[1:])
            data, region, text = mutate(seed, j, base, layout, base_dir)
            with open(case_path, "wb") as f:
                f.write(data)
            result = self.evaluate(case, case_path, region, f"a{k}: {text}", case in crashed, len(data))
            result["base_class"] = base_class
            emit(result)
        shutil.rmtree(base_dir, ignore_errors=True)

    def run_big(self, unit, emit):
        crashed = set(unit.get("crashed", []))
        directory = tempfile.mkdtemp(prefix="big", dir=self.args.big_dir)
        try:
            if unit["big"] == "many":
                path = write_many_records(directory)
                with open(path, "rb") as f:
                    base = f.read()
                layout = parse_layout(base)
                case_path = os.path.join(directory, "case.zip")
                base_class = None
                for case in unit["cases"]:
                    if case == "big-many":
                        result = self.evaluate(case, path, "big", "70,000 records", case in crashed, len(base))
                        base_class = result["class"]
                        emit(result)
                        continue
                    data, region, text = mutate(self.args.seed, f"bm{case[2:]}", base, layout, directory)
                    with open(case_path, "wb") as f:
                        f.write(data)
                    result = self.evaluate(case, case_path, region, f"big-many: {text}", case in crashed, len(data))
                    result["base_class"] = base_class
                    emit(result)
                return
            path = write_huge_record(directory)
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                f.seek(size - 1024 * 1024)
                tail = f.read()
            # Layout of the tail (the central directory and end records).
            layout = parse_layout(tail, size)
            regions = [(r, w) for r, w in BYTE_REGIONS if r not in ("local", "data", "descriptor")]
            for case in unit["cases"]:
                if case == "big-huge":
                    emit(self.evaluate(case, path, "big", "a record over 4 GiB", case in crashed, size))
                    continue
                rng = random.Random(f"{self.args.seed}:huge:{case}")

                def read_bytes(pos, n):
                    return tail[pos - (size - len(tail)) : pos - (size - len(tail)) + n]

                region, text, patches = byte_patch(layout, rng, read_bytes, regions)
                with open(path, "r+b") as f:
                    for pos, new in patches:
                        f.seek(pos)
                        f.write(new)
                try:
                    emit(self.evaluate(case, path, region, f"big-huge: {text}", case in crashed, size))
                finally:
                    with open(path, "r+b") as f:
                        for pos, new in patches:
                            f.seek(pos)
                            f.write(read_bytes(pos, len(new)))
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def worker_main(args):
    # The protocol gets its own descriptor; anything PyTorch prints goes to
    # standard error.
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker(args)

    def emit(result):
        protocol.write(json.dumps(result) + "\n")

    try:
        for line in sys.stdin:
            unit = json.loads(line)
            worker.run_unit(unit, emit)
            protocol.write(json.dumps({"done": True}) + "\n")
    finally:
        shutil.rmtree(worker.scratch, ignore_errors=True)


# ---------------------------------------------------------------------------
# Driver


def case_units(args):
    """Units of work: a base archive with its mutations (and the big ones
    first: they take longest)."""
    units = []
    if args.big:
        units.append({"big": "huge", "cases": ["big-huge"] + [f"bh{i}" for i in range(8)]})
        units.append({"big": "many", "cases": ["big-many"] + [f"bm{i}" for i in range(20)]})
    n, m = args.archives, args.mutations
    if m and not n:
        raise SystemExit("--mutations needs --archives >= 1 (mutation m<j> mutates archive a<j mod archives>)")
    for k in range(n):
        cases = [f"a{k}"] + [f"m{j}" for j in range(k, m, n)]
        # Long lists split so workers share the load near the end.
        for start in range(0, len(cases), 60):
            units.append({"base": k, "cases": cases[start : start + 60]})
    if args.case:
        wanted = set(args.case.split(","))
        filtered = []
        for unit in units:
            cases = [c for c in unit["cases"] if c in wanted]
            if cases:
                filtered.append(dict(unit, cases=cases))
        units = filtered
    return units


class WorkerHandle:
    def __init__(self, args, index):
        command = [sys.executable, os.path.abspath(__file__), "--worker",
                   "--reader", args.reader, "--seed", str(args.seed),
                   "--tmp", args.tmp, "--big-dir", args.big_dir,
                   "--keep-per-class", str(args.keep_per_class)]
        if args.keep:
            command += ["--keep", args.keep]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.index = index
        self.unit = None
        self.reported = set()
        self.buffer = b""
        self.last = time.monotonic()

    def assign(self, unit):
        self.unit = unit
        self.reported = set()
        self.last = time.monotonic()
        self.process.stdin.write((json.dumps(unit) + "\n").encode())
        self.process.stdin.flush()


def run_driver(args):
    start = time.monotonic()
    units = case_units(args)
    total = sum(len(u["cases"]) for u in units)
    pending = list(reversed(units))
    results = []
    crashes = 0
    selector = selectors.DefaultSelector()
    workers = []

    def spawn(index):
        handle = WorkerHandle(args, index)
        os.set_blocking(handle.process.stdout.fileno(), False)
        selector.register(handle.process.stdout, selectors.EVENT_READ, handle)
        return handle

    def feed(handle):
        if pending:
            handle.assign(pending.pop())
        else:
            handle.unit = None

    for index in range(min(args.workers, max(1, len(units)))):
        handle = spawn(index)
        workers.append(handle)
        feed(handle)

    last_progress = time.monotonic()
    disagreements = 0

    def replace(handle, reason):
        nonlocal crashes
        unit = handle.unit
        selector.unregister(handle.process.stdout)
        try:
            handle.process.kill()
        except OSError:
            pass
        handle.process.wait()
        new = spawn(handle.index)
        workers[workers.index(handle)] = new
        if unit is None:
            feed(new)
            return
        left = [c for c in unit["cases"] if c not in handle.reported]
        if left:
            crashes += 1
            print(f"zipdiff: worker {handle.index} {reason} on case {left[0]}; retrying it without PyTorch",
                  file=sys.stderr)
            rest = dict(unit, cases=left, crashed=unit.get("crashed", []) + [left[0]])
            new.assign(rest)
        else:
            feed(new)

    while any(w.unit is not None for w in workers):
        events = selector.select(timeout=5)
        now = time.monotonic()
        for key, _ in events:
            handle = key.data
            try:
                chunk = os.read(handle.process.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                code = handle.process.wait()
                replace(handle, f"died (exit {code})")
                continue
            handle.buffer += chunk
            handle.last = now
            *lines, handle.buffer = handle.buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if message.get("done"):
                    feed(handle)
                    continue
                handle.reported.add(message["case"])
                results.append(message)
                if message["class"] not in ("agree", "indeterminate"):
                    disagreements += 1
        for handle in list(workers):
            if handle.unit is not None and now - handle.last > args.case_timeout:
                replace(handle, f"timed out ({args.case_timeout:.0f} s without a result)")
        if not args.quiet and now - last_progress > 10:
            last_progress = now
            elapsed = now - start
            print(f"zipdiff: {len(results)}/{total} cases, {disagreements} disagreements, "
                  f"{elapsed:.0f} s ({len(results) / max(elapsed, 1e-9):.0f} cases/s)", file=sys.stderr)
    for handle in workers:
        handle.process.stdin.close()
        handle.process.wait()
    return results, crashes, time.monotonic() - start


def error_signature(text):
    """An error with its file, names and numbers blanked, to group by."""
    text = re.sub(r"/\S*?(case|many|huge|[A-Za-z0-9_]+\.pt)\.?\S*", "<file>", text)
    text = re.sub(r'(entry|record) "[^"]*"', r'\1 "…"', text)
    text = re.sub(r"(locating file|subdirectory) .*", r"\1 …", text)
    text = re.sub(r"0x[0-9a-fA-F]+|\d+", "N", text)
    return text[:110]


def is_bad(r):
    return r["class"] not in ("agree", "indeterminate")


def inherited(r):
    """A mutation of an archive the readers already disagree on."""
    return r.get("base_class") not in (None, "agree", "indeterminate")


def summarise(args, results, crashes, seconds):
    count = lambda predicate: sum(1 for r in results if predicate(r))
    bad = [r for r in results if is_bad(r)]
    indeterminate = [r for r in results if r["class"] == "indeterminate"]
    by_region = {}
    for r in results:
        row = by_region.setdefault(r["region"], {"cases": 0, "disagree": 0, "new": 0, "indeterminate": 0})
        row["cases"] += 1
        if r["class"] == "indeterminate":
            row["indeterminate"] += 1
        elif is_bad(r):
            row["disagree"] += 1
            row["new"] += 0 if inherited(r) else 1
    by_class = {}
    for r in results:
        by_class[r["class"]] = by_class.get(r["class"], 0) + 1
    by_error = {}
    for r in bad:
        if inherited(r):
            continue
        for side in ("tpkg", "pytorch"):
            if not r[side]["read"]:
                key = f"{side}: {error_signature(r[side]['error'])}"
                by_error.setdefault(r["class"], {}).setdefault(key, 0)
                by_error[r["class"]][key] += 1
    examples = {}
    for r in sorted(bad, key=lambda r: (r["region"] != "random", inherited(r), case_order(r))):
        examples.setdefault(r["class"], [])
        if len(examples[r["class"]]) < args.examples:
            examples[r["class"]].append(r)
    return {
        "seed": args.seed,
        "archives": args.archives,
        "mutations": args.mutations,
        "big": args.big,
        "workers": args.workers,
        "seconds": round(seconds, 1),
        "cases": len(results),
        "agree": count(lambda r: r["class"] == "agree"),
        "disagreements": len(bad),
        "disagreements_inherited": count(lambda r: is_bad(r) and inherited(r)),
        "indeterminate": len(indeterminate),
        "pytorch_crashes": crashes,
        "tpkg_panics": count(lambda r: r["class"] == "tpkg-panicked"),
        "random_archives": {
            "cases": count(lambda r: r["region"] == "random"),
            "disagree": count(lambda r: r["region"] == "random" and is_bad(r)),
        },
        "by_class": by_class,
        "by_region": dict(sorted(by_region.items())),
        "errors_by_class": {c: dict(sorted(e.items(), key=lambda kv: -kv[1])) for c, e in by_error.items()},
        "examples": examples,
        "disagreement_list": sorted(bad, key=case_order)[: args.list_limit],
        "indeterminate_list": sorted(indeterminate, key=case_order)[:200],
        "pytorch_crash_list": sorted((r for r in results if r.get("pytorch_crashed")), key=case_order),
        "replay": (f"{os.path.basename(__file__)} --reader BIN --seed {args.seed} "
                   f"--archives {args.archives} --case <id> --keep DIR"),
    }


def case_order(r):
    match = re.match(r"([a-z-]+?)(\d*)$", r["case"])
    return (match.group(1), int(match.group(2) or 0)) if match else (r["case"], 0)


def print_table(report, out):
    w = out.write
    w(f"zipdiff: seed {report['seed']}, {report['archives']} archives + {report['mutations']} mutations"
      f"{' + big cases' if report['big'] else ''}, {report['workers']} workers, "
      f"{report['seconds']} s ({report['cases'] / max(report['seconds'], 1e-9):.0f} cases/s)\n\n")
    w(f"  {'cases':>8} {'agree':>8} {'disagree':>9} {'(inherited)':>12} {'indeterminate':>14} "
      f"{'pytorch crashes':>16} {'tpkg panics':>12}\n")
    w(f"  {report['cases']:>8} {report['agree']:>8} {report['disagreements']:>9} "
      f"{report['disagreements_inherited']:>12} {report['indeterminate']:>14} "
      f"{report['pytorch_crashes']:>16} {report['tpkg_panics']:>12}\n")
    w(f"  random archives PyTorch wrote: {report['random_archives']['cases']}, "
      f"disagreeing: {report['random_archives']['disagree']}\n")
    w("  (inherited: mutations of a random archive the readers already disagree on)\n\n")
    w("  by outcome pair:\n")
    for cls, n in sorted(report["by_class"].items(), key=lambda kv: -kv[1]):
        w(f"    {cls:<32} {n:>8}\n")
    w(f"\n  by region: {'cases':>7} {'disagree':>9} {'not inherited':>14} {'indeterminate':>14}\n")
    for region, row in report["by_region"].items():
        mark = "  <--" if row["new"] else ""
        w(f"    {region:<27} {row['cases']:>7} {row['disagree']:>9} {row['new']:>14} "
          f"{row['indeterminate']:>14}{mark}\n")
    for cls, errors in report["errors_by_class"].items():
        w(f"\n  errors in {cls} (not inherited):\n")
        for key, n in list(errors.items())[:8]:
            w(f"    {n:>6}  {key}\n")
    if report["pytorch_crash_list"]:
        w("\n  PyTorch crashed (or hung) on: "
          + ", ".join(r["case"] for r in report["pytorch_crash_list"][:20]) + "\n")
    for cls, examples in report["examples"].items():
        w(f"\n  examples of {cls}:\n")
        for r in examples:
            w(f"    {r['case']}: {r['what']}\n")
            w(f"        pytorch: {json.dumps(r['pytorch'], ensure_ascii=False)[:300]}\n")
            w(f"        tpkg:    {json.dumps(r['tpkg'], ensure_ascii=False)[:300]}\n")
            if r.get("kept"):
                w(f"        kept:    {r['kept']}\n")
    w("\n")


def default_tmp():
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return tempfile.gettempdir()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reader", required=True, help="the tpkg-zipdiff-reader binary")
    parser.add_argument("--archives", type=int, default=300)
    parser.add_argument("--mutations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--big", action="store_true", help="add the 70,000-record and >4 GiB cases")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tmp", help="scratch folder for archives (default: /dev/shm)")
    parser.add_argument("--big-dir", help="scratch folder for the big archives, on disk (default: the report's folder)")
    parser.add_argument("--report", help="write the report JSON here")
    parser.add_argument("--keep", help="copy archives of cases that do not agree here")
    parser.add_argument("--keep-per-class", type=int, default=5)
    parser.add_argument("--case", help="only these case ids (comma-separated), e.g. m123,a4")
    parser.add_argument("--examples", type=int, default=3, help="examples per class in the table")
    parser.add_argument("--list-limit", type=int, default=2000)
    parser.add_argument("--case-timeout", type=float, default=900)
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even with disagreements")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.reader = os.path.abspath(args.reader)
    if args.keep:
        args.keep = os.path.abspath(args.keep)
    if args.worker:
        return worker_main(args)

    own_tmp = tempfile.mkdtemp(prefix="tpkg-zipdiff-", dir=args.tmp or default_tmp())
    args.tmp = own_tmp
    if not args.big_dir:
        args.big_dir = os.path.dirname(os.path.abspath(args.report)) if args.report else tempfile.gettempdir()
    os.makedirs(args.big_dir, exist_ok=True)
    if args.big:
        free = shutil.disk_usage(args.big_dir).free
        if free < 12 * 1024**3:
            raise SystemExit(f"--big needs 12 GB free in {args.big_dir} (has {free / 1024**3:.1f} GB)")
    if args.keep:
        for cls in CLASSES:  # only what earlier runs kept there
            shutil.rmtree(os.path.join(args.keep, cls.replace("/", "_")), ignore_errors=True)
        os.makedirs(args.keep, exist_ok=True)
    try:
        results, crashes, seconds = run_driver(args)
    finally:
        shutil.rmtree(own_tmp, ignore_errors=True)
    report = summarise(args, results, crashes, seconds)
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
    if not args.quiet:
        print_table(report, sys.stdout)
    sys.stdout.flush()
    return 1 if report["disagreements"] and not args.exit_zero else 0


if __name__ == "__main__":
    sys.exit(main() or 0)
