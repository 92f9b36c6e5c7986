"""Oracle: PyTorch's PackageExporter on the exporter test cases, and
PyTorch's PackageImporter on the packages tpkg wrote for the same cases.

usage: export_oracle.py run FIXTURES OUT      -> {case: outcome}
       export_oracle.py check FIXTURES PKGS   -> {case: "ok" | failure}

Each case is also written in Rust (tests/suite/export_api.rs); the two must
agree: the same error type and text, or the same records (names, order and
bytes) and module lists.
"""
import hashlib
import io
import json
import os
import sys
import zipfile

from torch.package import PackageExporter, PackageImporter
from torch.package._package_pickler import create_pickler
from torch.package.importer import sys_importer


def obj2_pickle(protocol=3):
    buffer = io.BytesIO()
    pickler = create_pickler(buffer, sys_importer, protocol=protocol)
    pickler.dump(obj2_pickle_object())
    return buffer.getvalue()


def save_obj2(e):
    e.save_pickle("obj", "obj.pkl", obj2_pickle_object())


def obj2_pickle_object():
    import package_a
    import package_a.subpackage

    return package_a.PackageAObject(package_a.subpackage.PackageASubpackageObject())


CASES = {
    "extern": lambda e: (
        e.extern(["package_a.subpackage", "module_a"]),
        e.save_source_string("foo", "import package_a.subpackage; import module_a"),
    ),
    "extern_glob": lambda e: (
        e.extern(["package_a.*", "module_*"]),
        e.save_module("package_a"),
        e.save_source_string("test_module", "import package_a.subpackage\nimport module_a\n"),
    ),
    "extern_glob_allow_empty": lambda e: (
        e.extern(include=["package_b.*"], allow_empty=False),
        e.save_module("package_a.subpackage"),
    ),
    "deny": lambda e: (
        e.deny(["package_a.subpackage", "module_a"]),
        e.save_source_string("foo", "import package_a.subpackage"),
    ),
    "deny_glob": lambda e: (
        e.deny(["package_a.*", "module_*"]),
        e.save_source_string("test_module", "import package_a.subpackage\nimport module_a\n"),
    ),
    "mock": lambda e: (
        e.mock(["package_a.subpackage", "module_a"]),
        e.save_source_string("foo", "import package_a.subpackage"),
    ),
    "mock_glob": lambda e: (
        e.mock(["package_a.*", "module*"]),
        e.save_module("package_a"),
        e.save_source_string("test_module", "import package_a.subpackage\nimport module_a\n"),
    ),
    "mock_glob_allow_empty": lambda e: (
        e.mock(include=["package_b.*"], allow_empty=False),
        e.save_module("package_a.subpackage"),
    ),
    "pickle_mocked": lambda e: (
        e.mock(include="package_a.subpackage"),
        e.intern("**"),
        save_obj2(e),
    ),
    "allow_empty_with_error": lambda e: (
        e.extern("foo", allow_empty=False),
        e.save_module("aodoifjodisfj"),
    ),
    "implicit_intern": lambda e: e.save_module("package_a"),
    "intern_error": lambda e: save_obj2(e),
    "intern_pickle": lambda e: (
        e.intern(["package_a", "package_a.subpackage"]),
        save_obj2(e),
    ),
    "intern_pickle_protocol_4": lambda e: (
        e.intern(["package_a", "package_a.subpackage"]),
        e.save_pickle("obj", "obj.pkl", obj2_pickle_object(), pickle_protocol=4),
    ),
    "invalid_import": lambda e: e.save_source_string("foo", "from ........ import lol"),
    "first_pattern_wins": lambda e: (
        e.extern("package_a.*"),
        e.intern("package_a.**"),
        e.intern("package_a"),
        e.mock("module_a"),
        e.save_source_string("main", "import package_a.subpackage\nimport module_a\nimport package_a\n"),
    ),
    "sys_and_io": lambda e: e.save_source_string("foo", "import sys\nimport io\n"),
    "implicit_externs": lambda e: e.save_source_string(
        "foo", "import os\nimport torch.nn\nimport json.decoder\nfrom collections import abc\n"
    ),
    "invalid_pattern": lambda e: e.intern("package_**"),
    "from_package_import": lambda e: (
        e.intern(["package_a", "package_a.**", "package_b.**"]),
        e.save_module("package_b"),
    ),
    "resources_and_source_tree": lambda e: (
        e.intern("package_a.**"),
        e.save_source_file("foodir", os.path.join(FIXTURES, "package_b")),
        e.save_text("res", "a.txt", "hello"),
        e.save_binary("res.deep", "b.bin", b"\x00\x01\xff"),
    ),
}


def outcome(path, case):
    e = PackageExporter(path)
    try:
        CASES[case](e)
        lists = {
            "interned": e.interned_modules(),
            "externed": e.externed_modules(),
            "mocked": e.mocked_modules(),
            "denied": e.denied_modules(),
            "graph": e.dependency_graph_string(),
        }
        e.close()
    except Exception as error:
        return {"error": type(error).__name__, "text": str(error)}
    with zipfile.ZipFile(path) as z:
        records = []
        for name in z.namelist():
            short = name.split("/", 1)[1]
            if short == ".data/serialization_id":
                continue
            records.append([short, hashlib.sha256(z.read(name)).hexdigest()])
    return {"records": records, **lists}


def check(pkgs, case):
    """PyTorch loads what tpkg wrote for `case` and uses it."""
    path = os.path.join(pkgs, case + ".pt")
    if case in ("extern", "extern_glob"):
        hi = PackageImporter(path)
        import module_a
        import package_a.subpackage

        assert hi.import_module("module_a") is module_a
        hi.import_module("package_a.subpackage")
        package_a_im = hi.import_module("package_a")
        assert package_a_im.subpackage is package_a.subpackage
    elif case in ("mock", "mock_glob"):
        hi = PackageImporter(path)
        m = hi.import_module("package_a.subpackage")
        try:
            m.result()
        except NotImplementedError as error:
            assert "was mocked out" in str(error), str(error)
        else:
            raise AssertionError("a mocked object could be called")
        assert repr(m.result).startswith("MockedObject(<torch_package_"), repr(m.result)
    elif case in ("intern_pickle", "intern_pickle_protocol_4"):
        hi = PackageImporter(path)
        obj = hi.load_pickle("obj", "obj.pkl")
        assert obj.return_result() == "package_a"
        assert type(obj).__module__.startswith("<torch_package_")
    elif case == "from_package_import":
        hi = PackageImporter(path)
        b = hi.import_module("package_b")
        assert b.value == 42 and b.helpers.table()["a"] == "a/b"
    elif case == "resources_and_source_tree":
        hi = PackageImporter(path)
        assert hi.load_text("res", "a.txt") == "hello"
        assert hi.load_binary("res.deep", "b.bin") == b"\x00\x01\xff"
        assert hi.import_module("foodir").value == 42
    elif case == "tpkg_pickle":
        import torch

        hi = PackageImporter(path)
        data = hi.load_pickle("data", "weights.pkl")
        expected = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        assert torch.equal(data["weight"], expected), data["weight"]
        assert torch.equal(data["row"], expected[1]), data["row"]
        assert data["row"].untyped_storage().data_ptr() == data["weight"].untyped_storage().data_ptr()
        assert type(data["obj"]).__name__ == "PackageASubpackageObject"
        assert type(data["obj"]).__module__.startswith("<torch_package_")
    elif case in ("implicit_intern", "first_pattern_wins", "implicit_externs"):
        hi = PackageImporter(path)
        for name in hi.file_structure().children:
            pass
        if case == "first_pattern_wins":
            main = hi.import_module("main")
            assert main.package_a.subpackage.result == "package_a.subpackage"
    else:
        raise AssertionError(f"no check for {case}")
    return "ok"


def main():
    global FIXTURES
    command, FIXTURES, out = sys.argv[1:4]
    sys.path.insert(0, FIXTURES)
    answer = {}
    if command == "run":
        for case in CASES:
            answer[case] = outcome(os.path.join(out, case + ".pt"), case)
        answer["_obj2_pickle"] = obj2_pickle().hex()
        answer["_obj2_pickle4"] = obj2_pickle(4).hex()
    else:
        for case in sys.argv[4].split(","):
            try:
                answer[case] = check(out, case)
            except Exception as error:  # the answer is data
                answer[case] = f"{type(error).__name__}: {error}"
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
