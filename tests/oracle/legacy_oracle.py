"""Oracle: legacy torch.save files, written and read back by PyTorch itself.

usage: legacy_oracle.py OUT_DIR
       legacy_oracle.py list-tars < paths.json   (what tarfile lists in each)

Writes legacy files into OUT_DIR: streams with this PyTorch's
torch.save(..., _use_new_zipfile_serialization=False), and tar files (the
pre-0.4 form) the way torch 0.1-0.3's torch.save wrote them (old_torch_save,
ported from its source). Prints one JSON object, per file name:

  form       "stream" or "tar"

  loaded     whether this PyTorch's torch.load reads the file back
  error      torch.load's error when it does not
  value      the value image (value_image.py) of what torch.load returns
  tensors    every tensor reachable, as the corpus manifests list them
             (path, dtype, shape, stride, storage_offset, requires_grad,
             parameter, sha256 of the row-major little-endian elements)
  shared_storages  the tensor paths that share one storage, in load order
  pickles    [start, end] of each pickle of the stream (or of the tar's
             members), found by walking the opcodes (pickletools.genops)
             without unpickling anything, in file order
  storages   [key, count, data_start, data_end] per storage key, in order
  members    (tar) [name, data offset, size] of each member tarfile lists
  length     the file's size
"""
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import sys
import tarfile
import tempfile
from contextlib import closing

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import tensors, tiny_cnn  # noqa: E402
from value_image import image  # noqa: E402


def dtypes():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(3, 4, generator=g)
    out = collections.OrderedDict()
    out["float32"] = base
    out["float64"] = base.double() * 1e-3
    out["float16"] = base.half()
    out["bfloat16"] = base.bfloat16()
    out["int8"] = torch.arange(-6, 6, dtype=torch.int8).reshape(3, 4)
    out["uint8"] = torch.arange(244, 256, dtype=torch.uint8).reshape(3, 4)
    out["int16"] = torch.arange(-600, 600, 100, dtype=torch.int16).reshape(3, 4)
    out["int32"] = torch.tensor([-(2**31), 0, 2**31 - 1, 7], dtype=torch.int32)
    out["int64"] = torch.tensor([-(2**63), 0, 2**63 - 1, -7], dtype=torch.int64)
    out["bool"] = base > 0
    out["complex64"] = torch.complex(base, -base)
    out["complex128"] = torch.complex(base.double(), base.double() * 3)
    out["scalar"] = torch.tensor(3.25)
    out["empty"] = torch.zeros(0, 3)
    out["empty_int"] = torch.zeros(2, 0, dtype=torch.int64)
    out["large"] = torch.randn(300, 500, generator=g)
    return out


def views():
    g = torch.Generator().manual_seed(3)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    out = collections.OrderedDict()
    out["base"] = base
    out["transposed"] = base.t()
    out["offset"] = base[2:]
    out["strided"] = base[:, ::2]
    out["middle"] = base[1:3, 2:5]
    out["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(4, 3)
    out["expanded_scalar"] = torch.tensor(5.0).expand(2, 2)
    out["channels_last"] = torch.randn(2, 3, 4, 5, generator=g).contiguous(
        memory_format=torch.channels_last)
    shared = torch.arange(12, dtype=torch.int64)
    out["shared_a"] = shared[:6]
    out["shared_b"] = shared[6:].view(2, 3)
    out["requires_grad"] = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out["parameter"] = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    out["frozen_parameter"] = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    return out


def nested():
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    return {
        "config": {"lr": 0.1, "name": "legacy", "layers": [1, 2, 3], "none": None},
        "list": [t, [t[0], (t[1], torch.tensor([True, False]))], "text", 5],
        "tuple": (torch.tensor([1, 2], dtype=torch.int16), {"deep": {"deeper": t.t()}}),
        "ordered": collections.OrderedDict([("z", torch.tensor(1.5)), ("a", t[:, 1])]),
        7: torch.tensor([7], dtype=torch.int32),
    }


def whole_module():
    torch.manual_seed(0)
    model = tiny_cnn()
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 8, 8))
    return model.eval()


def cases():
    """(file name, object, torch.save keyword arguments)."""
    out = [
        ("dtypes.pt", dtypes(), {}),
        ("views.pt", views(), {}),
        ("nested.pt", nested(), {}),
        ("whole_module.pt", whole_module(), {}),
        ("state_dict.pt", whole_module().state_dict(), {}),
        ("module_list.pt", [whole_module(), {"extra": torch.ones(2)}], {}),
        ("no_tensors.pt", {"epoch": 3, "names": ["a", "b"]}, {}),
    ]
    small = collections.OrderedDict(
        [("w", torch.arange(6, dtype=torch.float32).reshape(2, 3)), ("b", torch.ones(3))])
    for protocol in (0, 1, 3, 4, 5):
        out.append(("protocol_%d.pt" % protocol, small, {"pickle_protocol": protocol}))
    # Element types without a legacy storage class: torch.save writes them
    # (as UntypedStorage) but torch.load cannot read them back.
    for dtype in (torch.uint16, torch.uint32, torch.uint64, torch.float8_e4m3fn,
                  torch.float8_e5m2, torch.complex32):
        name = str(dtype).replace("torch.", "")
        out.append(("untyped_%s.pt" % name, {"x": torch.zeros(3, dtype=dtype)}, {}))
    return out


def pickle_spans(data):
    """[start, end] of each of the five pickles, by walking opcodes."""
    f = io.BytesIO(data)
    spans = []
    for _ in range(5):
        start = f.tell()
        for _ in pickletools.genops(f):
            pass
        spans.append([start, f.tell()])
    return spans


def storage_layout(data, keys_end, key_list, element_sizes):
    out, pos = [], keys_end
    for key in key_list:
        (count,) = struct.unpack("<q", data[pos:pos + 8])
        start = pos + 8
        end = start + count * element_sizes[key]
        out.append([key, count, start, end])
        pos = end
    return out


def element_sizes(data, object_span):
    """Storage key -> element size, from the object pickle's persistent ids
    (the first one naming a key wins, as in torch.load)."""
    sizes = {}

    class Anything:
        """Stands for every global but storage classes: accepts any call,
        state and items, runs nothing."""

        def __init__(self, *args, **kwargs):
            pass

        def __setstate__(self, state):
            pass

        def __setitem__(self, key, value):
            pass

        def append(self, item):
            pass

        def extend(self, items):
            pass

    class Ids(pickle.Unpickler):
        def persistent_load(self, saved_id):
            if saved_id[0] == "storage":
                _, storage_type, key, _, _, _ = saved_id
                sizes.setdefault(key, torch._utils._element_size(storage_type.dtype))
            return Anything

        def find_class(self, module, name):
            if module == "torch" and name.endswith("Storage"):
                return getattr(torch, name)
            return Anything

    Ids(io.BytesIO(data[object_span[0]:object_span[1]])).load()
    return sizes


def describe(path):
    with open(path, "rb") as f:
        data = f.read()
    entry = {"length": len(data)}
    try:
        loaded = torch.load(path, weights_only=False)
    except Exception as e:  # noqa: BLE001 - the answer is that it fails
        entry.update({"loaded": False, "error": "%s: %s" % (type(e).__name__, e)})
        return entry
    spans = pickle_spans(data)
    key_list = pickle.loads(data[spans[4][0]:spans[4][1]])
    groups = collections.OrderedDict()
    found = tensors(loaded)
    for path_, t in walk_tensors(loaded):
        storage = t.untyped_storage()
        # Empty storages all have data pointer 0: each is its own.
        group = storage.data_ptr() if storage.nbytes() else ("empty", id(storage))
        groups.setdefault(group, []).append(path_)
    entry.update({
        "loaded": True,
        "value": image(loaded),
        "tensors": found,
        "shared_storages": [g for g in groups.values() if len(g) > 1],
        "pickles": spans,
        "storages": storage_layout(data, spans[4][1], key_list,
                                   element_sizes(data, spans[3])),
    })
    return entry


def walk_tensors(v, path=""):
    """(path, tensor) for every tensor `tensors` lists, in the same order."""
    from value_image import join, key
    if isinstance(v, torch.Tensor):
        yield path, v
    elif isinstance(v, torch.nn.Module):
        for k, t in v.state_dict(keep_vars=True).items():
            if isinstance(t, torch.Tensor):
                yield join(path, k), t
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            yield from walk_tensors(x, join(path, str(i)))
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from walk_tensors(x, join(path, key(k)))


# ----------------------------------------------------------------------------
# The pre-0.4 tar form, written as torch 0.1-0.3's torch.save wrote it


def _add_to_tar(fn, tar_file, name):
    tmp_file = tempfile.NamedTemporaryFile(delete=False)
    fn(tmp_file)
    tmp_file.close()
    tar_file.add(tmp_file.name, arcname=name)
    if os.path.isfile(tmp_file.name):
        os.remove(tmp_file.name)


class StorageView:
    """Marks a tensor to be saved over a storage view: `numel` elements of
    its storage from element `offset` on (the tensor's own offset then
    counts from there), as torch 0.x saved tensors of sliced storages."""

    def __init__(self, tensor, offset, numel):
        self.tensor, self.offset, self.numel = tensor, offset, numel


def old_torch_save(obj, f, views=(), pickle_protocol=2):
    """torch 0.1-0.3's `_save`: a PAX tar of sys_info, pickle, tensors and
    storages, each member a temporary file added with `tar.add`. Tensors
    are persistent ids str(key); storages are written with `_write_file`
    (an 8-byte count, then the elements), tensors with `_write_metadata`
    (ndim as 4 bytes and 4 ignored, sizes, strides, offset)."""
    import torch.nn as nn
    serialized_tensors = collections.OrderedDict()
    serialized_container_types = {}
    storage_keys = {}  # data_ptr -> key
    roots = collections.OrderedDict()  # key -> (flat uint8 bytes, storage type)
    storage_views = []
    view_of = {id(v.tensor): v for v in views}
    next_key = [1000]

    def fresh():
        next_key[0] += 8
        return next_key[0]

    def storage_key(t):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr == 0 or ptr not in storage_keys:
            key = fresh()
            if ptr:
                storage_keys[ptr] = key
            data = bytes(storage) if storage.nbytes() else b""
            roots[key] = (data, getattr(torch, t.type().split(".")[-1].replace("Tensor", "Storage")))
            return key
        return storage_keys[ptr]

    def persistent_id(obj):
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            if obj in serialized_container_types:
                return None
            serialized_container_types[obj] = True
            return (obj, None, None)
        if torch.is_tensor(obj):
            key = fresh()
            serialized_tensors[key] = obj
            return str(key)
        return None

    def save_tensors(f):
        pickle.dump(len(serialized_tensors), f, protocol=pickle_protocol)
        for key, tensor in serialized_tensors.items():
            storage_id = storage_key(tensor)
            offset = tensor.storage_offset()
            view = view_of.get(id(tensor))
            if view is not None:
                view_key = fresh()
                storage_views.append((view_key, storage_id, view.offset, view.numel))
                storage_id = view_key
                offset -= view.offset
            tensor_type = getattr(torch, tensor.type().split(".")[-1])
            pickle.dump((key, storage_id, tensor_type), f, protocol=pickle_protocol)
            f.flush()
            f.write(struct.pack("<i", tensor.dim()) + b"\0\0\0\0")
            f.write(struct.pack("<%dq" % tensor.dim(), *tensor.shape))
            f.write(struct.pack("<%dq" % tensor.dim(), *tensor.stride()))
            f.write(struct.pack("<q", offset))

    def save_storages(f):
        pickle.dump(len(roots), f, protocol=pickle_protocol)
        for key, (data, storage_type) in roots.items():
            pickle.dump((key, "cpu", storage_type), f, protocol=pickle_protocol)
            f.flush()
            element = torch._utils._element_size(storage_type.dtype)
            f.write(struct.pack("<q", len(data) // element))
            f.write(data)
        pickle.dump(storage_views, f, protocol=pickle_protocol)

    def pickle_objects(f):
        pickler = pickle.Pickler(f, protocol=pickle_protocol)
        pickler.persistent_id = persistent_id
        pickler.dump(obj)

    def save_sys_info(f):
        sys_info = dict(
            protocol_version=1000,
            little_endian=sys.byteorder == "little",
            type_sizes=dict(short=2, int=4, long=8),
        )
        pickle.dump(sys_info, f, protocol=pickle_protocol)

    with closing(tarfile.open(fileobj=f, mode="w:", format=tarfile.PAX_FORMAT)) as tar:
        _add_to_tar(save_sys_info, tar, "sys_info")
        _add_to_tar(pickle_objects, tar, "pickle")
        _add_to_tar(save_tensors, tar, "tensors")
        _add_to_tar(save_storages, tar, "storages")


def tar_cases():
    """(file name, object, storage views)."""
    g = torch.Generator().manual_seed(4)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    in_view = base[1:3, 1:4]
    state = collections.OrderedDict([
        ("float32", torch.randn(3, 4, generator=g)),
        ("float64", torch.randn(5, generator=g).double()),
        ("int64", torch.tensor([-(2**63), 0, 2**63 - 1])),
        ("uint8", torch.arange(250, 256, dtype=torch.uint8)),
        ("half", torch.linspace(-1, 1, 5).half()),
        ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0)),
        ("base", base),
        ("transposed", base.t()),
        ("offset", base[2:]),
        ("in_view", in_view),
    ])
    views = [StorageView(in_view, 6, 12)]
    nested = {"config": {"lr": 0.5, "layers": [1, 2]}, "weights": [base[0], (base[:, 1], 7)]}
    return [
        ("tar_state_dict.pt", state, views),
        ("tar_nested.pt", nested, []),
        ("tar_whole_module.pt", whole_module(), []),
    ]


def tar_layout(path, data):
    """The members tarfile lists, and every pickle and storage inside the
    members torch.load reads, walked without unpickling anything."""
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        listed = [[m.name, m.offset_data, m.size] for m in members]
        by_name = {m.name: m for m in members}
    spans, storages = [], []

    def walk(pos):
        f = io.BytesIO(data)
        f.seek(pos)
        for _ in pickletools.genops(f):
            pass
        spans.append([pos, f.tell()])
        return f.tell()

    def load(span):
        return pickle.loads(data[span[0]:span[1]])

    m = by_name["storages"]
    pos = walk(m.offset_data)
    for _ in range(load(spans[-1])):
        pos = walk(pos)
        key, _, storage_type = load(spans[-1])
        (count,) = struct.unpack("<q", data[pos:pos + 8])
        end = pos + 8 + count * torch._utils._element_size(storage_type.dtype)
        storages.append([str(key), count, pos + 8, end])
        pos = end
    walk(pos)
    m = by_name["tensors"]
    pos = walk(m.offset_data)
    for _ in range(load(spans[-1])):
        pos = walk(pos)
        (ndim,) = struct.unpack("<i", data[pos:pos + 4])
        pos += 8 + 16 * ndim + 8
    walk(by_name["pickle"].offset_data)
    walk(by_name["sys_info"].offset_data)
    return listed, sorted(spans), storages


def describe_tar(path):
    with open(path, "rb") as f:
        data = f.read()
    entry = {"length": len(data), "form": "tar"}
    loaded = torch.load(path, weights_only=False)
    groups = collections.OrderedDict()
    for path_, t in walk_tensors(loaded):
        storage = t.untyped_storage()
        group = storage.data_ptr() if storage.nbytes() else ("empty", id(storage))
        groups.setdefault(group, []).append(path_)
    members, spans, storages = tar_layout(path, data)
    entry.update({
        "loaded": True,
        "value": image(loaded),
        "tensors": tensors(loaded),
        "shared_storages": [g for g in groups.values() if len(g) > 1],
        "members": members,
        "pickles": spans,
        "storages": storages,
    })
    return entry


def text(name):
    """A member name as tpkg shows it: the header bytes (tarfile decodes
    them with surrogateescape) as UTF-8, bad bytes replaced."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def list_tars(paths):
    """What tarfile.open(mode="r:") lists for each file: [name, data
    offset, size, type] per member, or the error it raises."""
    out = {}
    for path in paths:
        try:
            with tarfile.open(path, mode="r:") as tar:
                out[path] = {"members": [[text(m.name), m.offset_data, m.size,
                                          m.type[0] if m.type else 0]
                                         for m in tar.getmembers()]}
        except Exception as e:  # noqa: BLE001 - the answer is that it fails
            out[path] = {"error": "%s: %s" % (type(e).__name__, e)}
    return out


def main():
    if sys.argv[1] == "list-tars":
        json.dump(list_tars(json.load(sys.stdin)), sys.stdout)
        return
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    result = {}
    for name, obj, kwargs in cases():
        path = os.path.join(out_dir, name)
        torch.save(obj, path, _use_new_zipfile_serialization=False, **kwargs)
        result[name] = describe(path)
        result[name]["form"] = "stream"
    for name, obj, views in tar_cases():
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            old_torch_save(obj, f, views)
        result[name] = describe_tar(path)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
