"""tpkg.PackageExporter writes packages PyTorch's PackageImporter loads and runs."""

import collections
import os
import zipfile

import pytest
import torch
from torch.package import PackageExporter as TorchExporter
from torch.package import PackageImporter

import tpkg


def test_networkx_packed_by_tpkg_runs_in_pytorch(tmp_path):
    pytest.importorskip("networkx")
    path = tmp_path / "nx.pt"
    with tpkg.PackageExporter(path) as exporter:
        exporter.intern("networkx.**")
        exporter.extern("**")
        exporter.save_module("networkx")
        interned = exporter.interned_modules()
    assert "networkx" in interned and len(interned) > 100
    importer = PackageImporter(str(path))
    nx = importer.import_module("networkx")
    graph = nx.path_graph(5)
    assert nx.shortest_path(graph, 0, 4) == [0, 1, 2, 3, 4]


def test_same_records_as_pytorch(tmp_path):
    pytest.importorskip("networkx")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours, theirs = tmp_path / "a" / "nx.pt", tmp_path / "b" / "nx.pt"
    with tpkg.PackageExporter(ours) as exporter:
        exporter.intern("networkx.**")
        exporter.extern("**")
        exporter.save_module("networkx")
    with TorchExporter(str(theirs)) as exporter:
        exporter.intern("networkx.**")
        exporter.extern("**")
        exporter.save_module("networkx")
    # PyTorch before 2.1 wrote neither `byteorder` nor a serialization id;
    # tpkg writes the current layout.
    skipped = ("serialization_id", "byteorder")
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        names_a = [n for n in a.namelist() if not n.endswith(skipped)]
        names_b = [n for n in b.namelist() if not n.endswith(skipped)]
        assert names_a == names_b
        for name in names_a:
            if not name.endswith("python_version"):
                assert a.read(name) == b.read(name), name


def test_save_pickle_state_dict_loads_in_pytorch(tmp_path):
    path = tmp_path / "state.pt"
    base = torch.arange(12.0).reshape(3, 4)
    state = collections.OrderedDict(
        weight=base,
        view=base[1:],
        half=torch.ones(3, dtype=torch.float16),
        param=torch.nn.Parameter(torch.zeros(2)),
        nested={"list": [torch.tensor([1, 2, 3]), 7, 2.5, "text", None, True, b"raw"]},
    )
    with tpkg.PackageExporter(path) as exporter:
        exporter.save_pickle("model", "state.pkl", state)
        exporter.save_text("model", "note.txt", "hello")
        exporter.save_binary("model", "blob.bin", b"\x00\x01")
    importer = PackageImporter(str(path))
    loaded = importer.load_pickle("model", "state.pkl")
    for key in ("weight", "view", "half", "param"):
        assert torch.equal(loaded[key], state[key])
        assert loaded[key].stride() == state[key].stride()
    assert isinstance(loaded["param"], torch.nn.Parameter)
    assert loaded["view"].untyped_storage().data_ptr() == loaded["weight"].untyped_storage().data_ptr()
    assert loaded["nested"]["list"][1:] == [7, 2.5, "text", None, True, b"raw"]
    assert importer.load_text("model", "note.txt") == "hello"
    assert importer.load_binary("model", "blob.bin") == b"\x00\x01"
    ours = tpkg.load(path, "model/state.pkl")
    assert torch.equal(ours["view"], state["view"])


def test_save_pickle_bytes_equal_pytorch(tmp_path):
    state = {"a": torch.arange(4.0), "b": [torch.ones(2, dtype=torch.int64)]}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours, theirs = tmp_path / "a" / "s.pt", tmp_path / "b" / "s.pt"
    with tpkg.PackageExporter(ours) as exporter:
        exporter.save_pickle("m", "s.pkl", state)
    with TorchExporter(str(theirs)) as exporter:
        exporter.save_pickle("m", "s.pkl", state)
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        for name in b.namelist():
            if name.endswith((".pkl", ".storage", "extern_modules")):
                assert a.read(name) == b.read(name), name


def test_source_string_and_packaging_error(tmp_path):
    good = tmp_path / "good.pt"
    with tpkg.PackageExporter(good) as exporter:
        exporter.save_source_string("mymod", "import json\n\ndef f():\n    return json.dumps([1])\n")
        exporter.extern("json")
    assert PackageImporter(str(good)).import_module("mymod").f() == "[1]"

    bad = tmp_path / "bad.pt"
    exporter = tpkg.PackageExporter(bad)
    exporter.deny("networkx.**")
    exporter.save_source_string("mymod", "import networkx\n")
    with pytest.raises(tpkg.PackagingError) as raised:
        exporter.close()
    assert "denied" in str(raised.value).lower()
    assert not bad.exists()

    with pytest.raises(tpkg.PackagingError):
        with tpkg.PackageExporter(bad) as exporter:
            exporter.intern("nothing.**", allow_empty=False)
    assert not bad.exists()


def test_packaging_error_text_equals_pytorch(tmp_path):
    def run(cls, path):
        try:
            with cls(str(path)) as exporter:
                exporter.deny("networkx.**")
                exporter.save_source_string("mymod", "import networkx\nimport nosuchmodule_xyz\n")
        except Exception as error:  # noqa: BLE001
            return type(error).__name__, str(error)
        return None

    ours = run(tpkg.PackageExporter, tmp_path / "a.pt")
    theirs = run(TorchExporter, tmp_path / "b.pt")
    assert ours is not None and ours[0] == "PackagingError"
    assert ours == theirs
    assert not (tmp_path / "a.pt").exists()


def test_exception_in_with_block_writes_nothing(tmp_path):
    path = tmp_path / "x.pt"
    with pytest.raises(RuntimeError):
        with tpkg.PackageExporter(path) as exporter:
            exporter.save_text("a", "b.txt", "c")
            raise RuntimeError("boom")
    assert not path.exists()


def test_module_not_found(tmp_path):
    with pytest.raises(ModuleNotFoundError):
        tpkg.PackageExporter(tmp_path / "x.pt").save_module("no_such_module_here")


def test_buffer_output_and_debug(tmp_path):
    import io

    buffer = io.BytesIO()
    with tpkg.PackageExporter(buffer) as exporter:
        exporter.save_text("a", "b.txt", "c")
    assert PackageImporter(io.BytesIO(buffer.getvalue())).load_text("a", "b.txt") == "c"

    def run(cls, path):
        try:
            with cls(str(path), debug=True) as exporter:
                exporter.deny("networkx.**")
                exporter.save_source_string("mymod", "import networkx\n")
        except Exception as error:  # noqa: BLE001
            return type(error).__name__, str(error)

    assert run(tpkg.PackageExporter, tmp_path / "a.pt") == run(TorchExporter, tmp_path / "b.pt")
