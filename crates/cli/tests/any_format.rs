//! `tpkg diff` and `tpkg inspect` on every PyTorch format: zip and legacy
//! `torch.save`, pickle files, TorchScript and `.pt2`, compared across
//! formats by their main objects. Golden files of torch 1.10.2 and 2.0.1
//! (`tests/data/golden/*/torch_save`), and files the pinned PyTorch writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn tpkg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args(args)
        .output()
        .expect("the tpkg binary runs")
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `tpkg args`, checks its exit status, and returns its stdout as JSON.
fn json_of(args: &[&str], status: i32) -> Value {
    let output = tpkg(args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(status),
        "tpkg {args:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("tpkg {args:?}: not JSON:\n{stdout}"))
}

/// `tpkg diff --json A B`, expecting `status`.
fn diff(a: &Path, b: &Path, status: i32) -> Value {
    json_of(&["diff", "--json", path_str(a), path_str(b)], status)
}

/// `tpkg inspect --json FILE`'s summary, after checking the format and
/// container fields of the contract.
fn summary(file: &Path, format: &str, container: &str) -> Value {
    let report = json_of(&["inspect", "--json", path_str(file)], 0);
    assert_eq!(report["format"], format, "{}", file.display());
    assert_eq!(report["container"], container, "{}", file.display());
    report["summary"].clone()
}

fn element_size(dtype: &str) -> u64 {
    match dtype {
        "bool" | "int8" | "uint8" => 1,
        "float16" | "bfloat16" | "int16" => 2,
        "float32" | "int32" => 4,
        "float64" | "int64" | "complex64" => 8,
        "complex128" => 16,
        other => panic!("no element size for {other}"),
    }
}

/// The tensors a manifest entry lists: paths, dtype histogram, bytes.
fn manifest_tensors(entry: &Value) -> (Vec<String>, Value, u64) {
    let tensors = entry["tensors"].as_array().unwrap();
    let paths = tensors
        .iter()
        .map(|t| t["path"].as_str().unwrap().to_owned())
        .collect();
    let mut dtypes = serde_json::Map::new();
    let mut bytes = 0;
    for tensor in tensors {
        let dtype = tensor["dtype"].as_str().unwrap();
        let count = dtypes.get(dtype).and_then(Value::as_u64).unwrap_or(0);
        dtypes.insert(dtype.to_owned(), json!(count + 1));
        let numel: u64 = tensor["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .product();
        bytes += numel * element_size(dtype);
    }
    (paths, Value::Object(dtypes), bytes)
}

fn golden(torch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/golden")
        .join(torch)
        .join("torch_save")
}

/// A zip `torch.save` and its legacy twin hold the same object: `diff`
/// compares main objects across the two formats and finds them equal,
/// either way round; different objects differ, by tensor path.
#[test]
fn diff_compares_zip_and_legacy_torch_save_by_their_objects() {
    for torch in ["torch-1.10.2", "torch-2.0.1"] {
        let dir = golden(torch);
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        for (zip, legacy) in [
            ("state_dict.pt", "state_dict_legacy.pt"),
            ("checkpoint.pt", "checkpoint_legacy.pt"),
            ("dtypes.pt", "dtypes_legacy.pt"),
        ] {
            let (paths, _, _) = manifest_tensors(&manifest[zip]);
            for (a, b, formats) in [
                (
                    zip,
                    legacy,
                    json!({"a": "torch.save", "b": "torch.save-legacy"}),
                ),
                (
                    legacy,
                    zip,
                    json!({"a": "torch.save-legacy", "b": "torch.save"}),
                ),
            ] {
                let report = diff(&dir.join(a), &dir.join(b), 0);
                let at = format!("{torch}: {a} vs {b}");
                assert_eq!(report["formats"], formats, "{at}");
                assert_eq!(report["compared"], json!(["object"]), "{at}");
                // Records are not compared between a zip and a stream.
                assert_eq!(report["same"], 0, "{at}");
                assert_eq!(report["only_in_a"], json!([]), "{at}");
                let object = &report["object"];
                assert_eq!(object["tensors"]["same"], paths.len(), "{at}");
                assert_eq!(object["tensors"]["differ"], json!([]), "{at}");
                assert_eq!(object["tensors"]["only_in_a"], json!([]), "{at}");
                assert_eq!(object["tensors"]["only_in_b"], json!([]), "{at}");
                assert_eq!(object["values"]["status"], "same", "{at}");
            }
        }

        // Two zips of one format: records, as ever (the object is null).
        let report = diff(&dir.join("dtypes.pt"), &dir.join("state_dict.pt"), 1);
        assert_eq!(report["compared"], json!(["records"]), "{torch}");
        assert_eq!(report["object"], Value::Null, "{torch}");
        assert!(
            report["differ"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["record"] == "data.pkl" && d["kind"] == "pickle"),
            "{torch}: {report}"
        );

        // Different objects across formats: tensors by path, each side's own.
        let report = diff(&dir.join("dtypes.pt"), &dir.join("state_dict_legacy.pt"), 1);
        let object = &report["object"];
        let (dtypes_paths, _, _) = manifest_tensors(&manifest["dtypes.pt"]);
        let (state_paths, _, _) = manifest_tensors(&manifest["state_dict_legacy.pt"]);
        assert_eq!(
            object["tensors"]["only_in_a"],
            json!(dtypes_paths),
            "{torch}"
        );
        assert_eq!(
            object["tensors"]["only_in_b"],
            json!(state_paths),
            "{torch}"
        );
        assert_eq!(object["tensors"]["same"], 0, "{torch}");
        // Their dicts differ only where tensors are: no value differs.
        assert_eq!(object["values"]["status"], "same", "{torch}");

        // A checkpoint (a dict) against a state dict (an OrderedDict): the
        // values differ at the top.
        let report = diff(
            &dir.join("checkpoint_legacy.pt"),
            &dir.join("state_dict.pt"),
            1,
        );
        let values = &report["object"]["values"];
        assert_eq!(values["status"], "differ", "{torch}");
        let difference = &values["differences"][0];
        assert_eq!(difference["path"], "", "{torch}: {values}");
        assert!(
            difference["a"]
                .as_str()
                .unwrap()
                .starts_with(r#"{"dict":[["epoch",3]"#)
                && difference["b"]
                    .as_str()
                    .unwrap()
                    .starts_with(r#"{"OrderedDict":"#),
            "{torch}: {values}"
        );

        // One flipped byte in the legacy file's last storage: one tensor's
        // elements differ, and nothing else.
        let scratch = tempfile::tempdir().unwrap();
        let mut bytes = std::fs::read(dir.join("state_dict_legacy.pt")).unwrap();
        *bytes.last_mut().unwrap() ^= 0x40;
        let flipped = scratch.path().join("flipped_legacy.pt");
        std::fs::write(&flipped, &bytes).unwrap();
        let report = diff(&dir.join("state_dict.pt"), &flipped, 1);
        let tensors = &report["object"]["tensors"];
        assert_eq!(tensors["differ"].as_array().unwrap().len(), 1, "{tensors}");
        let changed = &tensors["differ"][0];
        assert_eq!(changed["changed"], json!(["elements"]), "{changed}");
        assert_eq!(changed["a"]["dtype"], changed["b"]["dtype"]);
        assert_eq!(changed["a"]["shape"], changed["b"]["shape"]);
        assert_ne!(changed["a"]["sha256"], changed["b"]["sha256"]);
        assert_eq!(tensors["same"], state_paths.len() - 1);

        // The text form says the same.
        let output = tpkg(&[
            "diff",
            path_str(&dir.join("state_dict.pt")),
            path_str(&dir.join("state_dict_legacy.pt")),
        ]);
        assert_eq!(output.status.code(), Some(0));
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.contains(&format!(
                "main objects: {} tensors identical, 0 differ, 0 only in one file; same values",
                state_paths.len()
            )),
            "{text}"
        );

        // Unreadable: a missing file, a legacy file cut short.
        let cut = scratch.path().join("cut_legacy.pt");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        for bad in [Path::new("/nonexistent/x.pt"), cut.as_path()] {
            let output = tpkg(&["diff", path_str(&dir.join("state_dict.pt")), path_str(bad)]);
            assert_eq!(output.status.code(), Some(2), "{}", bad.display());
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert!(stderr.starts_with("tpkg: error: "), "{stderr}");
            // One line, each cause once.
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.matches("os error").count() <= 1, "{stderr}");
        }
    }
}

/// `inspect` summarises the torch.save family: pickles, the main object's
/// type and keys, tensors (count, bytes, storages, dtypes), and for legacy
/// files sys_info, form and the bytes after the data.
#[test]
fn inspect_summarises_torch_save_pickle_and_torchscript_files() {
    for torch in ["torch-1.10.2", "torch-2.0.1"] {
        let dir = golden(torch);
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        for (file, format, container, pickles) in [
            ("state_dict.pt", "torch.save", "zip", 1),
            ("state_dict_legacy.pt", "torch.save-legacy", "stream", 5),
            ("dtypes.pt", "torch.save", "zip", 1),
            ("dtypes_legacy.pt", "torch.save-legacy", "stream", 5),
            ("checkpoint_legacy.pt", "torch.save-legacy", "stream", 5),
            ("plain.pkl", "pickle", "stream", 1),
        ] {
            let at = format!("{torch}/{file}");
            let summary = summary(&dir.join(file), format, container);
            let (paths, dtypes, bytes) = manifest_tensors(&manifest[file]);
            assert_eq!(summary["pickles"], pickles, "{at}");
            assert_eq!(summary["tensors"]["count"], paths.len(), "{at}");
            assert_eq!(summary["tensors"]["dtypes"], dtypes, "{at}");
            assert_eq!(summary["tensors"]["bytes"], bytes, "{at}");
            // Views sharing a storage count it once.
            let shared: usize = manifest[file]["shared_storages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|group| group.as_array().unwrap().len() - 1)
                .sum();
            assert_eq!(summary["tensors"]["storages"], paths.len() - shared, "{at}");
            assert_eq!(summary["errors"], json!([]), "{at}");
            if format == "torch.save-legacy" {
                assert_eq!(
                    summary["sys_info"],
                    json!({"protocol_version": 1001, "little_endian": true,
                           "type_sizes": {"short": 2, "int": 4, "long": 4}}),
                    "{at}"
                );
                assert_eq!(summary["legacy_form"], "stream", "{at}");
                assert_eq!(summary["trailing_bytes"], 0, "{at}");
            } else {
                assert_eq!(summary["sys_info"], Value::Null, "{at}");
                assert_eq!(summary["trailing_bytes"], Value::Null, "{at}");
            }
        }
        // Keys of the main object, in order: a state dict's are its tensors'.
        let summary = summary(
            &dir.join("state_dict_legacy.pt"),
            "torch.save-legacy",
            "stream",
        );
        let (paths, _, _) = manifest_tensors(&manifest["state_dict_legacy.pt"]);
        assert_eq!(summary["object"], "collections.OrderedDict");
        assert_eq!(summary["keys"], json!(paths));
        assert_eq!(summary["key_count"], paths.len());
        let checkpoint = self::summary(&dir.join("checkpoint.pt"), "torch.save", "zip");
        assert_eq!(checkpoint["object"], "dict");
        assert_eq!(
            checkpoint["keys"],
            json!(["epoch", "model", "optimizer", "loss", "note"])
        );
        let whole = self::summary(&dir.join("whole_module.pt"), "torch.save", "zip");
        assert_eq!(whole["object"], "torch.nn.modules.container.Sequential");
        assert_eq!(whole["key_count"], 9);

        // Bytes after the data: torch.load never reads them; inspect counts.
        let scratch = tempfile::tempdir().unwrap();
        let mut bytes = std::fs::read(dir.join("state_dict_legacy.pt")).unwrap();
        bytes.extend_from_slice(b"hidden!");
        let trailing = scratch.path().join("trailing_legacy.pt");
        std::fs::write(&trailing, &bytes).unwrap();
        let summary = self::summary(&trailing, "torch.save-legacy", "stream");
        assert_eq!(summary["trailing_bytes"], 7);

        // TorchScript: the module's class, code, tensors, constants.
        let file = dir.join("torchscript_module.pt");
        let summary = self::summary(&file, "torchscript", "zip");
        let (paths, dtypes, _) = manifest_tensors(&manifest["torchscript_module.pt"]);
        assert_eq!(summary["module_class"], "__torch__.Scripted", "{torch}");
        assert_eq!(summary["code_files"], 2, "{torch}");
        assert_eq!(summary["tensors"]["count"], paths.len(), "{torch}");
        assert_eq!(summary["tensors"]["dtypes"], dtypes, "{torch}");
        assert!(summary["constants"].is_u64(), "{torch}: {summary}");

        // A file whose tensors do not read still gets a summary, with why.
        let cut = scratch.path().join("cut_legacy.pt");
        std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
        let summary = self::summary(&cut, "torch.save-legacy", "stream");
        assert_eq!(summary["tensors"], Value::Null);
        let errors = summary["errors"].as_array().unwrap();
        assert!(
            errors.len() == 1 && errors[0].as_str().unwrap().contains("ends inside"),
            "{summary}"
        );
    }
}

/// Files the pinned PyTorch writes: one model's state dict as torch.save
/// (zip, legacy), pickle.dump, torch.export (.pt2) and torch.jit.save.
#[cfg(feature = "oracle")]
const WRITE_FILES: &str = r#"
import os, pickle, sys, zipfile
import torch

out = sys.argv[1]
def at(name):
    return os.path.join(out, name)

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.register_buffer("half_buffer", torch.arange(6, dtype=torch.float16))
        self.register_buffer("steps", torch.tensor([7], dtype=torch.int64))

    def forward(self, x):
        return self.linear(x) + self.half_buffer[:3].float() + self.steps.float()

torch.manual_seed(0)
net = Net().eval()
sd = net.state_dict()
torch.save(sd, at("sd.pt"))
torch.save(sd, at("sd_legacy.pt"), _use_new_zipfile_serialization=False)
with open(at("sd.pkl"), "wb") as f:
    pickle.dump(sd, f)
torch.export.save(torch.export.export(net, (torch.randn(2, 4),)), at("net.pt2"))
torch.jit.save(torch.jit.script(net), at("net_ts.pt"))

torch.manual_seed(1)
other = Net().eval()
torch.export.save(torch.export.export(other, (torch.randn(2, 4),)), at("other.pt2"))

double = dict(sd)
double["linear.weight"] = sd["linear.weight"].double()
torch.save(double, at("double_legacy.pt"), _use_new_zipfile_serialization=False)

w = torch.arange(6.0).reshape(2, 3)
torch.save({"epoch": 3, "w": w, "note": "a"}, at("epoch3.pt"))
# The same elements, column-major: strides do not matter.
torch.save({"epoch": 4, "w": w.t().contiguous().t(), "note": "a"}, at("epoch4_legacy.pt"),
           _use_new_zipfile_serialization=False)

# Two pickles in a row, and a torch.save of the list of their objects.
with open(at("two.pkl"), "wb") as f:
    pickle.dump({"a": w}, f)
    pickle.dump([sd["steps"]], f)
torch.save([{"a": w}, [sd["steps"]]], at("two.pt"))

# An AOTInductor folder, as aoti_compile_and_package writes one.
with zipfile.ZipFile(at("net.pt2")) as src, zipfile.ZipFile(at("aoti.pt2"), "w") as dst:
    for info in src.infolist():
        dst.writestr(info, src.read(info))
    dst.writestr("net/data/aotinductor/model/model.wrapper.so", b"\x7fELF")
"#;

#[test]
#[cfg(feature = "oracle")]
fn diff_and_inspect_across_every_format_pytorch_writes() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let python = PathBuf::from(env!("TPKG_ORACLE_PYTHON"));
    // A script file: torch.jit.script reads the module's source.
    let script = dir.join("write_files.py");
    std::fs::write(&script, WRITE_FILES).unwrap();
    let output = Command::new(&python)
        .args([path_str(&script), path_str(dir)])
        .output()
        .expect("the oracle Python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = |name: &str| dir.join(name);

    // The same state dict in four formats: the same main object.
    for (a, b) in [
        ("sd.pt", "sd.pkl"),
        ("sd.pkl", "sd_legacy.pt"),
        ("sd_legacy.pt", "net.pt2"),
    ] {
        let report = diff(&file(a), &file(b), 0);
        assert_eq!(report["compared"], json!(["object"]), "{a} vs {b}");
        assert_eq!(report["object"]["tensors"]["same"], 4, "{a} vs {b}");
    }
    // Zips of two formats: records for information, the objects decide.
    for (a, b) in [("sd.pt", "net.pt2"), ("net_ts.pt", "net.pt2")] {
        let report = diff(&file(a), &file(b), 0);
        assert_eq!(
            report["compared"],
            json!(["records", "object"]),
            "{a} vs {b}"
        );
        assert!(
            !report["only_in_a"].as_array().unwrap().is_empty(),
            "{a} vs {b}"
        );
        assert_eq!(report["object"]["tensors"]["same"], 4, "{a} vs {b}");
        // A .pt2's main object is its tensors alone.
        assert_eq!(report["object"]["values"]["status"], "not compared");
    }
    // A TorchScript module is not a state dict, though its tensors are.
    let report = diff(&file("sd.pt"), &file("net_ts.pt"), 1);
    let object = &report["object"];
    assert_eq!(object["tensors"]["same"], 4);
    assert_eq!(object["values"]["status"], "differ");
    assert_eq!(object["values"]["differences"][0]["path"], "");
    assert!(
        object["values"]["differences"][0]["b"]
            .as_str()
            .unwrap()
            .contains("__torch__.Net"),
        "{object}"
    );

    // Other weights: elements differ, nothing else.
    let report = diff(&file("sd.pt"), &file("other.pt2"), 1);
    let differ = report["object"]["tensors"]["differ"].as_array().unwrap();
    let changed: Vec<(&str, &Value)> = differ
        .iter()
        .map(|d| (d["path"].as_str().unwrap(), &d["changed"]))
        .collect();
    assert_eq!(
        changed,
        [
            ("linear.weight", &json!(["elements"])),
            ("linear.bias", &json!(["elements"]))
        ]
    );
    assert_eq!(report["object"]["tensors"]["same"], 2);

    // One tensor's dtype.
    let report = diff(&file("sd.pkl"), &file("double_legacy.pt"), 1);
    let changed = &report["object"]["tensors"]["differ"][0];
    assert_eq!(changed["path"], "linear.weight");
    assert_eq!(changed["changed"], json!(["dtype", "elements"]));
    assert_eq!(
        (&changed["a"]["dtype"], &changed["b"]["dtype"]),
        (&json!("float32"), &json!("float64"))
    );
    assert_eq!(changed["a"]["shape"], json!([3, 4]));

    // A value outside tensors; the same elements under other strides.
    let report = diff(&file("epoch3.pt"), &file("epoch4_legacy.pt"), 1);
    let object = &report["object"];
    assert_eq!(object["tensors"]["same"], 1, "{object}");
    assert_eq!(
        object["values"]["differences"],
        json!([{"path": "epoch", "a": "3", "b": "4"}])
    );
    let output = tpkg(&[
        "diff",
        path_str(&file("epoch3.pt")),
        path_str(&file("epoch4_legacy.pt")),
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("value differs: epoch: 3 vs 4\n"), "{text}");

    // Several pickles in a row read as the list of their objects.
    assert_eq!(
        diff(&file("two.pkl"), &file("two.pt"), 0)["object"]["tensors"]["same"],
        2
    );

    inspect_across_every_format(dir);
}

/// The inspect half of [`diff_and_inspect_across_every_format_pytorch_writes`],
/// over the files its script wrote in `dir`.
#[cfg(feature = "oracle")]
fn inspect_across_every_format(dir: &Path) {
    let file = |name: &str| dir.join(name);
    // inspect: a pickle file of two pickles.
    let summary_two = summary(&file("two.pkl"), "pickle", "stream");
    assert_eq!(summary_two["pickles"], 2);
    assert_eq!(summary_two["object"], "dict");
    assert_eq!(summary_two["tensors"]["count"], 2);
    assert_eq!(
        summary_two["tensors"]["dtypes"],
        json!({"float32": 1, "int64": 1})
    );

    // inspect: a .pt2 archive, with and without an AOTInductor folder.
    let pt2 = summary(&file("net.pt2"), "pt2", "zip");
    assert_eq!(pt2["models"], json!(["model"]));
    assert_eq!(pt2["sample_inputs"], json!(["model"]));
    assert_eq!(pt2["aotinductor"], json!([]));
    assert_eq!(pt2["weights"]["tensors"], 4);
    assert_eq!(pt2["weights"]["bytes"], 12 * 4 + 3 * 4 + 6 * 2 + 8);
    assert_eq!(pt2["constants"]["tensors"], 0);
    assert_eq!(
        pt2["tensors"]["dtypes"],
        json!({"float16": 1, "float32": 2, "int64": 1})
    );
    assert_eq!(pt2["errors"], json!([]));
    let aoti = summary(&file("aoti.pt2"), "pt2", "zip");
    assert_eq!(aoti["aotinductor"], json!(["model"]));

    // inspect: TorchScript.
    let script = summary(&file("net_ts.pt"), "torchscript", "zip");
    assert_eq!(script["module_class"], "__torch__.Net");
    assert_eq!(script["tensors"]["count"], 4);
    assert!(script["code_files"].as_u64().unwrap() >= 2, "{script}");

    // Text: aligned key/value lines.
    let output = tpkg(&["inspect", path_str(&file("sd_legacy.pt"))]);
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        "format          torch.save, legacy (stream)\n",
        "pickles         1\n",
        "  object  state dict of 4 tensors\n",
        "tensors         4, 80 B (80 B in 4 storages)\n",
        "  float16       1        12 B\n",
        "  float32       2        60 B\n",
        "  int64         1         8 B\n",
        "keys            4: half_buffer, steps, linear.weight, linear.bias\n",
        "trailing bytes  0\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
}
