"""tpkg.load gives the tensors PyTorch loads, for every corpus file and format."""

import json
import os
import pickle
import zipfile

import pytest
import torch
from torch.package import PackageImporter

import tpkg
from conftest import DATA


def join(path, part):
    return f"{path}.{part}" if path else str(part)


def walk(value, path, out):
    """(path, tensor) as tpkg names them: dict keys, list indices, a module's
    state_dict(keep_vars=True), then its other attributes."""
    if isinstance(value, torch.Tensor):
        out.setdefault(path, value)
    elif isinstance(value, torch.jit.ScriptModule):
        for key, tensor in value.state_dict(keep_vars=True).items():
            out.setdefault(join(path, key), tensor)
    elif isinstance(value, torch.nn.Module):
        for key, tensor in value.state_dict(keep_vars=True).items():
            out.setdefault(join(path, key), tensor)
        attributes(value, path, out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            walk(item, join(path, index), out)
    elif isinstance(value, dict):
        for key, item in value.items():
            walk(item, join(path, key), out)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        for key, item in vars(value).items():
            walk(item, join(path, key), out)
    return out


def attributes(module, path, out):
    for key, value in vars(module).items():
        if not key.startswith("_"):
            walk(value, join(path, key), out)
    for name, sub in module._modules.items():
        if sub is not None:
            attributes(sub, join(path, name), out)


def raw(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).tolist() if t.numel() else []


def assert_same(ours, theirs):
    """Same tensors: paths, dtype, shape, strides, offsets, values, and the
    same storage sharing."""
    assert set(ours) <= set(theirs), sorted(set(ours) - set(theirs))
    for path, t in ours.items():
        ref = theirs[path]
        assert t.dtype == ref.dtype, path
        assert t.shape == ref.shape, path
        assert t.stride() == ref.stride(), path
        assert t.storage_offset() == ref.storage_offset(), path
        assert t.requires_grad == ref.requires_grad, path
        assert isinstance(t, torch.nn.Parameter) == isinstance(ref, torch.nn.Parameter), path
        assert raw(t) == raw(ref), path
    paths = sorted(ours)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            same_ours = ours[a].untyped_storage().data_ptr() == ours[b].untyped_storage().data_ptr()
            same_theirs = theirs[a].untyped_storage().data_ptr() == theirs[b].untyped_storage().data_ptr()
            if ours[a].untyped_storage().nbytes() and ours[b].untyped_storage().nbytes():
                assert same_ours == same_theirs, (a, b)


def package_pickles(path):
    with zipfile.ZipFile(path) as z:
        names = [n.split("/", 1)[1] for n in z.namelist()]
    return [n for n in names if n.endswith(".pkl") and not n.startswith(".data/")]


def torch_load(path):
    return torch.load(path, weights_only=False, map_location="cpu")


def files(*folders, suffixes=(".pt", ".pkl", ".pt2")):
    found = []
    for folder in folders:
        base = DATA / folder
        if not base.is_dir():
            continue
        for root, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if not d.endswith("_dir")]
            for name in sorted(names):
                if name.endswith(suffixes):
                    found.append(os.path.join(root, name))
    return sorted(found)


CORPUS = files("corpus", "golden", "clean")


def pytorch_tensors(path, fmt, name):
    """What PyTorch loads from `path` (record `name` of a package)."""
    if fmt == "package":
        package, resource = name.rsplit("/", 1)
        return walk(PackageImporter(path).load_pickle(package, resource), "", {})
    if fmt == "torchscript":
        return walk(torch.jit.load(path, map_location="cpu"), "", {})
    if fmt == "pt2":
        program = torch.export.load(path)
        out = walk(dict(program.state_dict), "", {})
        walk(dict(program.constants), "", out)
        return out
    if fmt == "pickle":
        values = []
        with open(path, "rb") as f:
            while True:
                try:
                    values.append(pickle.load(f))
                except EOFError:
                    break
        if len(values) == 1:
            return walk(values[0], "", {})
        return walk(values, "", {})
    return walk(torch_load(path), "", {})


def cases():
    out = []
    for path in CORPUS:
        fmt = tpkg.inspect(path)["format"]
        if fmt == "package":
            out.extend((path, fmt, name) for name in package_pickles(path))
        else:
            out.append((path, fmt, None))
    return out


@pytest.mark.parametrize("path,fmt,name", cases(), ids=lambda v: os.path.relpath(v, DATA) if isinstance(v, str) and v.startswith("/") else str(v))
@pytest.mark.parametrize("mmap", [False, True], ids=["owned", "mmap"])
def test_tensors_equal_pytorch(path, fmt, name, mmap):
    try:
        theirs = pytorch_tensors(path, fmt, name)
    except Exception as error:  # noqa: BLE001 - PyTorch cannot load it here
        pytest.skip(f"PyTorch does not load it: {error}")
    try:
        ours = tpkg.load(path, name, mmap=mmap)
    except tpkg.TpkgError as error:
        if "which tpkg does not read" in str(error):
            pytest.xfail(f"a tensor kind tpkg does not read: {error}")
        raise
    assert_same(ours, theirs)
    assert len(ours) == len(theirs) or fmt in ("package", "pickle", "torch.save", "torch.save-legacy")


def test_shared_storage_views_share_memory():
    path = DATA / "golden" / "torch-2.0.1" / "torch_save" / "dtypes.pt"
    for mmap in (False, True):
        tensors = tpkg.load(path, mmap=mmap)
        by_storage = {}
        for t in tensors.values():
            by_storage.setdefault(t.untyped_storage().data_ptr(), []).append(t)
        assert by_storage


def test_owned_tensors_own_their_memory(tmp_path):
    source = tmp_path / "state.pt"
    base = torch.arange(12.0)
    torch.save({"a": base, "b": base[2:8].view(2, 3)}, source)
    loaded = tpkg.load(source)
    assert loaded["a"].untyped_storage().data_ptr() == loaded["b"].untyped_storage().data_ptr()
    assert loaded["b"].storage_offset() == 2
    loaded["a"][3] = 100.0
    assert loaded["b"][0, 1] == 100.0
    assert torch.load(source)["a"][3] == 3.0


def test_mmap_is_private_to_the_process(tmp_path):
    source = tmp_path / "state.pt"
    torch.save({"a": torch.arange(1024.0)}, source)
    before = source.read_bytes()
    loaded = tpkg.load(source, mmap=True)
    loaded["a"][0] = 7.0
    assert loaded["a"][0] == 7.0
    del loaded
    assert source.read_bytes() == before


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        tpkg.load(tmp_path / "absent.pt")


def test_owned_tensors_survive_the_file_changing(tmp_path):
    source = tmp_path / "state.pt"
    torch.save({"a": torch.arange(100000.0)}, source)
    loaded = tpkg.load(source)
    size = source.stat().st_size
    with open(source, "r+b") as f:
        f.write(b"\0" * size)
    source.unlink()
    assert torch.equal(loaded["a"], torch.arange(100000.0))


def test_unaligned_and_empty_storages(tmp_path):
    source = tmp_path / "state.pt"
    torch.save({"empty": torch.zeros(0), "bytes": torch.arange(3, dtype=torch.uint8)}, source)
    for mmap in (False, True):
        loaded = tpkg.load(source, mmap=mmap)
        assert loaded["empty"].shape == (0,)
        assert loaded["bytes"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("folder", sorted(str(p) for p in DATA.glob("*/*/tiny_state_dict_dir/*")))
def test_directory_form_equals_zip(folder):
    zipped = folder.replace("tiny_state_dict_dir/tiny_state_dict", "tiny_state_dict.pt")
    for name in package_pickles(zipped):
        expected = tpkg.load(zipped, name)
        for mmap in (False, True):
            got = tpkg.load(folder, name, mmap=mmap)
            assert set(got) == set(expected)
            for key in got:
                assert torch.equal(got[key], expected[key]) and got[key].stride() == expected[key].stride()
