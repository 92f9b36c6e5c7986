"""Hostile files: tpkg.load raises and runs nothing; audit matches the CLI's shape."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import tpkg
from conftest import DATA

RUNNER = textwrap.dedent(
    """
    import json, sys, tpkg
    out = []
    for path, name in json.loads(sys.argv[1]):
        try:
            tensors = tpkg.load(path, name)
            out.append({"path": path, "raised": None, "tensors": len(tensors)})
        except Exception as error:
            out.append({
                "path": path,
                "raised": type(error).__name__,
                "tpkg": isinstance(error, tpkg.TpkgError),
                "global": getattr(error, "global_name", None),
                "offset": getattr(error, "offset", None),
                "message": str(error),
            })
    print(json.dumps(out))
    """
)


def run_loads(jobs, tmp_path):
    """tpkg.load on each (path, name) in a fresh process whose working folder
    and TPKG_MARKER are `tmp_path`: a payload that ran would create the marker."""
    marker = tmp_path / "tpkg-marker"
    env = dict(os.environ, TPKG_MARKER=str(marker))
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(jobs)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "a payload ran"
    return json.loads(done.stdout)


def bypass_jobs():
    manifest = json.loads((DATA / "bypass" / "manifest.json").read_text())
    jobs = []
    for entry in manifest["files"]:
        load = entry.get("load", {})
        name = None
        if load.get("call") == "PackageImporter.load_pickle":
            name = f"{load['package']}/{load['resource']}"
        jobs.append((str(DATA / "bypass" / entry["file"]), name))
    return jobs


def test_malicious_files_raise_and_run_nothing(tmp_path):
    results = run_loads(bypass_jobs(), tmp_path)
    cli_unsafe = {
        r["path"] for r in results
        if tpkg.audit(r["path"]).get("findings") and any(
            f["level"] == "unsafe" for f in tpkg.audit(r["path"])["findings"]
        )
    }
    for result in results:
        if result["path"] in cli_unsafe:
            assert result["raised"] is not None and result["tpkg"], result
    unsafe = [r for r in results if r["raised"] == "UnsafeFileError"]
    assert len(unsafe) >= 60, len(unsafe)
    # Known payloads name their global and its offset.
    by_file = {os.path.basename(r["path"]): r for r in results}
    zip_os = by_file["torch_os_system.zip.pt"]
    assert zip_os["raised"] == "UnsafeFileError"
    assert "system" in zip_os["global"] and zip_os["offset"] is not None
    package = by_file["collect_env_run.package.pt"]
    assert package["raised"] == "UnsafeFileError"
    assert package["global"] == "torch.utils.collect_env.run"


def test_hostile_corpus_never_crashes(tmp_path):
    folder = DATA / "hostile"
    jobs = [(str(folder / n), None) for n in sorted(os.listdir(folder)) if n.endswith((".pt", ".pt2", ".pkl"))]
    for result in run_loads(jobs, tmp_path):
        assert result["raised"] is None or result["tpkg"] or result["raised"] == "FileNotFoundError", result


def test_unsafe_error_attributes():
    path = DATA / "hostile" / "os_system_global.pt"
    with pytest.raises(tpkg.UnsafeFileError) as raised:
        tpkg.load(path, "x/p.pkl") if False else tpkg.load(path)
    error = raised.value
    assert error.global_name == "os.system"
    assert isinstance(error.offset, int)
    assert error.finding["level"] == "unsafe"
    assert "os.system" in str(error)


def test_policy_can_mark_a_global_unsafe(tmp_path):
    import torch

    path = tmp_path / "state.pt"
    torch.save({"a": torch.ones(2)}, path)
    assert tpkg.load(path)["a"].tolist() == [1.0, 1.0]
    with pytest.raises(tpkg.UnsafeFileError):
        tpkg.load(path, policy={"unsafe": ["torch._utils._rebuild_tensor_v2"]})


def test_audit_json_shape_matches_the_cli():
    import shutil

    path = DATA / "bypass" / "torch_os_system.zip.pt"
    ours = tpkg.audit(path)
    assert set(ours) == {"format", "findings", "pickles", "sources"}
    assert ours["format"] == "torch.save"
    cli = shutil.which("tpkg") or str(DATA.parents[1] / "target" / "release" / "tpkg")
    if os.path.exists(cli):
        done = subprocess.run([cli, "audit", "--json", str(path)], capture_output=True, text=True)
        assert json.loads(done.stdout) == ours
    many = tpkg.audit([path, DATA / "clean" / "mlp_state_dict.pt"])
    assert [f["verdict"] for f in many["files"]] == ["unsafe", "clean"]
    assert many["summary"]["files"] == 2 and many["summary"]["unsafe"] == 1


def test_inspect_and_convert(tmp_path):
    import torch

    path = DATA / "clean" / "mlp_state_dict.pt"
    info = tpkg.inspect(path)
    assert info["format"] == "torch.save" and "data.pkl" in info["records"]
    out = tmp_path / "w.safetensors"
    report = tpkg.convert(path, out)
    assert report["tensors"] == info["tensors"]
    pt = tmp_path / "w.pt"
    tpkg.convert(path, pt, to="pt")
    state = torch.load(pt, weights_only=True)
    for key, tensor in tpkg.load(path).items():
        assert torch.equal(state[key], tensor)
    with pytest.raises(ValueError):
        tpkg.convert(path, out, to="onnx")


def test_inspect_overview_says_what_each_pickle_holds():
    overview = tpkg.inspect(DATA / "clean" / "mlp_state_dict.pt")["overview"]
    assert overview["format"] == "torch.save"
    assert overview["pickles"][0]["name"] == "data.pkl"
    assert overview["pickles"][0]["holds"] == {"kind": "state_dict"}
    assert overview["tensors"]["count"] == overview["pickles"][0]["tensors"] == 4
    assert overview["tensors"]["dtypes"]["float32"]["count"] == 4
    assert overview["modules"] is None
