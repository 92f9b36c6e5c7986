//! tpkg's `PackageExporter` against PyTorch's, case by case.
//!
//! The cases port PyTorch's `test/package/test_dependency_api.py` (and the
//! content-list, `sys`/`io` and resource cases of `test_misc.py` and
//! `test_resources.py`) onto tpkg's own fixtures in `data/export_fixtures`.
//! `oracle/export_oracle.py` runs each case with PyTorch's exporter; the
//! same case runs here with tpkg's, and the two must agree exactly: the
//! same error type and text (so the same modules flagged for the same
//! reasons), or the same records in the same order with the same bytes, the
//! same module lists and the same `dependency_graph_string()`. Then PyTorch's importer loads every package tpkg
//! wrote and uses it (mocked objects raise, externs are the host's modules,
//! pickles and resources load).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tpkg::exporter::{ExportError, PackageExporter, PatternOptions};
use tpkg::pysource::ModuleFinder;
use tpkg_tests::oracle;

type Case = fn(&mut PackageExporter, &Fixtures) -> Result<(), ExportError>;

struct Fixtures {
    root: PathBuf,
    obj2_pickle: Vec<u8>,
    obj2_pickle4: Vec<u8>,
}

/// The cases of `export_oracle.py`, in Rust.
fn cases() -> Vec<(&'static str, Case)> {
    vec![
        ("extern", |e, _| {
            e.extern_modules(vec!["package_a.subpackage", "module_a"])?;
            e.save_source_string("foo", "import package_a.subpackage; import module_a")
        }),
        ("extern_glob", |e, _| {
            e.extern_modules(vec!["package_a.*", "module_*"])?;
            e.save_module("package_a")?;
            e.save_source_string(
                "test_module",
                "import package_a.subpackage\nimport module_a\n",
            )
        }),
        ("extern_glob_allow_empty", |e, _| {
            e.extern_modules_with(
                vec!["package_b.*"],
                PatternOptions::default().disallow_empty(),
            )?;
            e.save_module("package_a.subpackage")
        }),
        ("deny", |e, _| {
            e.deny(vec!["package_a.subpackage", "module_a"])?;
            e.save_source_string("foo", "import package_a.subpackage")
        }),
        ("deny_glob", |e, _| {
            e.deny(vec!["package_a.*", "module_*"])?;
            e.save_source_string(
                "test_module",
                "import package_a.subpackage\nimport module_a\n",
            )
        }),
        ("mock", |e, _| {
            e.mock(vec!["package_a.subpackage", "module_a"])?;
            e.save_source_string("foo", "import package_a.subpackage")
        }),
        ("mock_glob", |e, _| {
            e.mock(vec!["package_a.*", "module*"])?;
            e.save_module("package_a")?;
            e.save_source_string(
                "test_module",
                "import package_a.subpackage\nimport module_a\n",
            )
        }),
        ("mock_glob_allow_empty", |e, _| {
            e.mock_with(
                vec!["package_b.*"],
                PatternOptions::default().disallow_empty(),
            )?;
            e.save_module("package_a.subpackage")
        }),
        ("pickle_mocked", |e, f| {
            e.mock("package_a.subpackage")?;
            e.intern("**")?;
            e.save_pickle_bytes("obj", "obj.pkl", &f.obj2_pickle)
        }),
        ("allow_empty_with_error", |e, _| {
            e.extern_modules_with("foo", PatternOptions::default().disallow_empty())?;
            e.save_module("aodoifjodisfj")
        }),
        ("implicit_intern", |e, _| e.save_module("package_a")),
        ("intern_error", |e, f| {
            e.save_pickle_bytes("obj", "obj.pkl", &f.obj2_pickle)
        }),
        ("intern_pickle", |e, f| {
            e.intern(vec!["package_a", "package_a.subpackage"])?;
            e.save_pickle_bytes("obj", "obj.pkl", &f.obj2_pickle)
        }),
        ("intern_pickle_protocol_4", |e, f| {
            e.intern(vec!["package_a", "package_a.subpackage"])?;
            e.save_pickle_bytes("obj", "obj.pkl", &f.obj2_pickle4)
        }),
        ("invalid_import", |e, _| {
            e.save_source_string("foo", "from ........ import lol")
        }),
        ("first_pattern_wins", |e, _| {
            e.extern_modules("package_a.*")?;
            e.intern("package_a.**")?;
            e.intern("package_a")?;
            e.mock("module_a")?;
            e.save_source_string(
                "main",
                "import package_a.subpackage\nimport module_a\nimport package_a\n",
            )
        }),
        ("sys_and_io", |e, _| {
            e.save_source_string("foo", "import sys\nimport io\n")
        }),
        ("implicit_externs", |e, _| {
            e.save_source_string(
                "foo",
                "import os\nimport torch.nn\nimport json.decoder\nfrom collections import abc\n",
            )
        }),
        ("invalid_pattern", |e, _| e.intern("package_**")),
        ("from_package_import", |e, _| {
            e.intern(vec!["package_a", "package_a.**", "package_b.**"])?;
            e.save_module("package_b")
        }),
        ("resources_and_source_tree", |e, f| {
            e.intern("package_a.**")?;
            e.save_source_file("foodir", &f.root.join("package_b"))?;
            e.save_text("res", "a.txt", "hello")?;
            e.save_binary("res.deep", "b.bin", b"\x00\x01\xff")
        }),
    ]
}

/// PyTorch's exception class for each error.
fn python_type(error: &ExportError) -> &'static str {
    match error {
        ExportError::Packaging(_) => "PackagingError",
        ExportError::EmptyMatch { .. } => "EmptyMatchError",
        ExportError::ModuleNotFound { .. } => "ModuleNotFoundError",
        ExportError::Pattern(_) => "ValueError",
        _ => "other",
    }
}

fn run_case(case: Case, path: &Path, finder: &ModuleFinder, fixtures: &Fixtures) -> Value {
    let mut exporter = PackageExporter::create(path, finder.clone()).unwrap();
    let outcome = case(&mut exporter, fixtures).map(|()| {
        json!({
            "interned": exporter.interned_modules(),
            "externed": exporter.externed_modules(),
            "mocked": exporter.mocked_modules(),
            "denied": exporter.denied_modules(),
            "graph": exporter.dependency_graph_string(),
        })
    });
    let lists = match outcome.and_then(|lists| exporter.close().map(|_| lists)) {
        Ok(lists) => lists,
        Err(error) => return json!({"error": python_type(&error), "text": error.to_string()}),
    };
    let reader = tpkg::archive::PackageReader::open(path).unwrap();
    let records: Vec<Value> = reader
        .records()
        .iter()
        .filter(|r| r.name != ".data/serialization_id")
        .map(|r| {
            let bytes = reader.read(&r.name).unwrap();
            json!([r.name, format!("{:x}", Sha256::digest(&bytes[..]))])
        })
        .collect();
    let mut out = lists;
    out["records"] = Value::from(records);
    out
}

/// `_mock.py` is tpkg's own implementation of `MockedObject` (same
/// behaviour, checked by loading in PyTorch); its bytes differ by design.
fn without_mock_bytes(mut outcome: Value) -> Value {
    if let Some(records) = outcome.get_mut("records").and_then(Value::as_array_mut) {
        for record in records {
            if record[0] == "_mock.py" {
                record[1] = Value::from("(tpkg's _mock.py)");
            }
        }
    }
    outcome
}

#[test]
fn exporter_cases_equal_pytorchs_and_load_in_pytorch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/export_fixtures");
    let theirs_dir = tempfile::tempdir().unwrap();
    let ours_dir = tempfile::tempdir().unwrap();
    let root_str = root.to_str().unwrap();
    let theirs = oracle::run_json(
        "export_oracle.py",
        &["run", root_str, theirs_dir.path().to_str().unwrap()],
    )
    .unwrap();
    let fixtures = Fixtures {
        root: root.clone(),
        obj2_pickle: hex_decode(theirs["_obj2_pickle"].as_str().unwrap()),
        obj2_pickle4: hex_decode(theirs["_obj2_pickle4"].as_str().unwrap()),
    };
    let finder = ModuleFinder::from_python(&oracle::python().unwrap()).unwrap();
    let mut path = vec![root.clone()];
    path.extend(finder.path().iter().cloned());
    let finder = finder.with_path(path);

    let mut disagreements = Vec::new();
    let mut loadable = Vec::new();
    for (name, case) in cases() {
        let ours = run_case(
            case,
            &ours_dir.path().join(format!("{name}.pt")),
            &finder,
            &fixtures,
        );
        let theirs = &theirs[name];
        // tpkg's pattern errors add where the pattern is wrong to
        // PyTorch's words.
        let same_pattern_error = ours["error"] == "ValueError"
            && theirs["error"] == "ValueError"
            && ours["text"]
                .as_str()
                .zip(theirs["text"].as_str())
                .is_some_and(|(o, t)| o.ends_with(t));
        if !same_pattern_error
            && without_mock_bytes(ours.clone()) != without_mock_bytes(theirs.clone())
        {
            disagreements.push(format!(
                "{name}:\n  tpkg    {}\n  PyTorch {}",
                serde_json::to_string_pretty(&ours).unwrap(),
                serde_json::to_string_pretty(theirs).unwrap()
            ));
        }
        if ours.get("records").is_some() {
            loadable.push(name);
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));

    // PyTorch's importer on what tpkg wrote.
    let checks = oracle::run_json(
        "export_oracle.py",
        &[
            "check",
            root_str,
            ours_dir.path().to_str().unwrap(),
            &loadable.join(","),
        ],
    )
    .unwrap();
    let failures: BTreeMap<&str, &Value> = checks
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.as_str() != Some("ok"))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(checks.as_object().unwrap().len(), loadable.len());
}

#[test]
fn extension_modules_and_debug_paths_are_reported_like_pytorch() {
    // PyTorch's `test_broken_dependency` with real files: a compiled module
    // cannot be interned.
    let dir = tempfile::tempdir().unwrap();
    for name in ["foo", "bar"] {
        std::fs::write(
            dir.path()
                .join(format!("{name}.cpython-311-x86_64-linux-gnu.so")),
            b"",
        )
        .unwrap();
    }
    let finder = ModuleFinder::new(vec![dir.path().to_owned()], ["sys"]);
    let out = dir.path().join("out.pt");
    let mut exporter = PackageExporter::create(&out, finder).unwrap();
    exporter.intern(vec!["foo", "bar"]).unwrap();
    exporter
        .save_source_string("my_module", "import foo; import bar")
        .unwrap();
    exporter.enable_debug();
    let error = exporter.close().unwrap_err();
    assert_eq!(
        error.to_string(),
        "\n* Module is a C extension module. torch.package supports Python modules only.\n    foo\n      A path to foo: my_module -> foo\n    bar\n      A path to bar: my_module -> bar\n"
    );
    assert!(!out.exists(), "a failed export leaves nothing behind");
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A library packaged by tpkg.
struct Packed {
    /// `[name, sha256]` of every record but the serialization id, in order.
    records: Vec<Value>,
    /// The extern modules.
    externs: Vec<String>,
    /// Who depends on each interned or extern module.
    rdeps: BTreeMap<String, Vec<String>>,
    seconds: f64,
}

/// Packages `top` as `tpkg pack OUT --intern 'TOP.**' --extern '**' TOP`
/// does, through the facade.
fn pack_library(top: &str, out: &Path) -> Packed {
    let start = std::time::Instant::now();
    let finder = ModuleFinder::from_python(&oracle::python().unwrap()).unwrap();
    let mut options = tpkg::archive::WriteOptions::default();
    if let Some(release) = finder.python_release() {
        options.python_version = release.to_owned();
    }
    let mut exporter = PackageExporter::create_with(out, finder, options).unwrap();
    exporter.intern(format!("{top}.**").as_str()).unwrap();
    exporter.extern_modules("**").unwrap();
    exporter.save_module(top).unwrap();
    let externs = exporter.externed_modules();
    let rdeps = exporter
        .externed_modules()
        .into_iter()
        .chain(exporter.interned_modules())
        .map(|m| {
            let rdeps = exporter.get_rdeps(&m);
            (m, rdeps)
        })
        .collect();
    exporter.close().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let reader = tpkg::archive::PackageReader::open(out).unwrap();
    let records = reader
        .records()
        .iter()
        .filter(|r| r.name != ".data/serialization_id")
        .map(|r| {
            let bytes = reader.read(&r.name).unwrap();
            json!([r.name, format!("{:x}", Sha256::digest(&bytes[..]))])
        })
        .collect();
    Packed {
        records,
        externs,
        rdeps,
        seconds,
    }
}

/// tpkg's package of a library equals PyTorch's, except for what PyTorch
/// cannot see because it imports to decide: modules that raise when
/// imported (`failing`) are missing from PyTorch's package, and so is
/// everything reached only through them.
fn assert_same_library(ours: &Packed, theirs: &Value) {
    let failing: Vec<String> = serde_json::from_value(theirs["failing"].clone()).unwrap();
    // Modules whose every dependent is failing or itself only reached that way.
    let mut hidden: std::collections::BTreeSet<String> = failing.iter().cloned().collect();
    loop {
        let more: Vec<String> = ours
            .rdeps
            .iter()
            .filter(|(m, r)| {
                !hidden.contains(*m) && !r.is_empty() && r.iter().all(|d| hidden.contains(d))
            })
            .map(|(m, _)| m.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        hidden.extend(more);
    }
    let theirs_records = theirs["records"].as_array().unwrap();
    let theirs_names: Vec<&Value> = theirs_records.iter().map(|r| &r[0]).collect();
    let (shared, extra): (Vec<&Value>, Vec<&Value>) = ours
        .records
        .iter()
        .partition(|r| theirs_names.contains(&&r[0]));
    for record in &extra {
        let name = record[0].as_str().unwrap();
        let module = name
            .trim_end_matches(".py")
            .trim_end_matches("/__init__")
            .replace('/', ".");
        assert!(hidden.contains(&module), "{name} is only in tpkg's package");
    }
    println!(
        "{} records only in tpkg's package, all modules that raise when imported or reached only through them",
        extra.len()
    );
    let without_externs = |records: Vec<&Value>| -> Vec<Value> {
        records
            .into_iter()
            .filter(|r| r[0] != ".data/extern_modules")
            .cloned()
            .collect()
    };
    assert_eq!(
        without_externs(shared),
        without_externs(theirs_records.iter().collect())
    );
    let theirs_externs: Vec<String> = serde_json::from_value(theirs["externs"].clone()).unwrap();
    for module in &theirs_externs {
        assert!(
            ours.externs.contains(module),
            "extern {module} missing from tpkg's list"
        );
    }
    for module in &ours.externs {
        if !theirs_externs.contains(module) {
            assert!(
                hidden.contains(module),
                "extern {module} is not in PyTorch's list"
            );
        }
    }
}

/// Issue 8: `tpkg pack` of networkx writes what PyTorch's exporter writes
/// (every record, in order, byte for byte but the serialization id), and
/// PyTorch imports networkx from it and computes a shortest path.
#[test]
fn networkx_package_equals_pytorchs_and_runs_in_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let theirs_path = dir.path().join("theirs.pt");
    let theirs = oracle::run_json(
        "pack_oracle.py",
        &["export", theirs_path.to_str().unwrap(), "networkx"],
    )
    .unwrap();
    let ours_path = dir.path().join("nx.pt");
    let ours = pack_library("networkx", &ours_path);
    assert!(ours.records.len() > 250, "{}", ours.records.len());
    // networkx has no module that fails to import here: byte-identical.
    assert_eq!(Value::from(ours.records.clone()), theirs["records"]);
    println!(
        "networkx: tpkg {:.3}s (debug build), PyTorch {}s",
        ours.seconds, theirs["seconds"]
    );
    let ran = oracle::run_json(
        "pack_oracle.py",
        &["run-networkx", ours_path.to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(ran["path"], ran["expected"], "{ran}");
    assert_eq!(ran["path"], json!([0, 2, 1, 3, 4]));
    assert_eq!(ran["from_package"], true);
}

/// Issue 8: sympy packaged the same way holds the same records as PyTorch's
/// exporter writes with its recursion limit raised (at the default limit
/// PyTorch's exporter fails with a RecursionError).
#[test]
fn sympy_package_equals_pytorchs_with_a_raised_recursion_limit() {
    let dir = tempfile::tempdir().unwrap();
    let theirs_path = dir.path().join("theirs.pt");
    let theirs = oracle::run_json(
        "pack_oracle.py",
        &["export", theirs_path.to_str().unwrap(), "sympy", "100000"],
    )
    .unwrap();
    let ours = pack_library("sympy", &dir.path().join("sympy.pt"));
    assert!(ours.records.len() > 500, "{}", ours.records.len());
    assert_same_library(&ours, &theirs);
    println!(
        "sympy: tpkg {:.3}s (debug build), PyTorch {}s",
        ours.seconds, theirs["seconds"]
    );
}

/// A pickle tpkg encodes itself (protocol 4): a dict with a tensor, a view
/// of the same storage and an object of an interned class. The exporter
/// interns the class's module from the pickle's globals; PyTorch's importer
/// loads it, the tensors share their storage and the object's class comes
/// from the package.
#[test]
fn tpkg_encoded_pickles_with_tensors_load_in_pytorch() {
    use tpkg::pickle::{Extra, PyStr, Value, ValueGraph};
    use tpkg::tensors::{DType, TensorEncoder, TensorSpec};

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/export_fixtures");
    let dir = tempfile::tempdir().unwrap();
    let finder = ModuleFinder::from_python(&oracle::python().unwrap()).unwrap();
    let mut path = vec![root.clone()];
    path.extend(finder.path().iter().cloned());
    let finder = finder.with_path(path);

    let mut graph = ValueGraph::new(Value::None);
    let mut encoder = TensorEncoder::new();
    let storage = encoder.storage("weights", DType::Float32, 6, "cpu");
    let values: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let spec = |offset: u64, shape: Vec<u64>, stride: Vec<u64>| TensorSpec {
        storage: storage.clone(),
        dtype: DType::Float32,
        storage_offset: offset,
        shape,
        stride,
        requires_grad: false,
        parameter: false,
    };
    let weight = encoder.tensor(&mut graph, &spec(0, vec![2, 3], vec![3, 1]));
    let row = encoder.tensor(&mut graph, &spec(3, vec![3], vec![1]));
    let class = graph.add(Value::Global {
        module: "package_a.subpackage".into(),
        name: "PackageASubpackageObject".into(),
    });
    let no_args = graph.add(Value::Tuple(Vec::new()));
    let object = graph.add(Value::Object {
        class,
        args: no_args,
        kwargs: None,
        extra: Box::new(Extra::default()),
    });
    let items = [("weight", weight), ("row", row), ("obj", object)]
        .into_iter()
        .map(|(k, v)| (graph.add(Value::Str(PyStr::from(k))), v))
        .collect();
    let dict = graph.add(Value::Dict(items));
    graph.set_root(dict);

    let out = dir.path().join("tpkg_pickle.pt");
    let mut exporter = PackageExporter::create(&out, finder).unwrap();
    exporter.intern("package_a.**").unwrap();
    exporter
        .save_pickle(
            "data",
            "weights.pkl",
            &graph,
            encoder.storages(),
            &[&values],
            4,
        )
        .unwrap();
    assert_eq!(exporter.interned_modules(), ["package_a.subpackage"]);
    assert!(matches!(
        exporter.save_pickle("data", "p2.pkl", &graph, encoder.storages(), &[&values], 2),
        Err(ExportError::UnsupportedProtocol(2))
    ));
    exporter.close().unwrap();

    let checks = oracle::run_json(
        "export_oracle.py",
        &[
            "check",
            root.to_str().unwrap(),
            dir.path().to_str().unwrap(),
            "tpkg_pickle",
        ],
    )
    .unwrap();
    assert_eq!(checks["tpkg_pickle"], "ok", "{checks}");
}

/// Issue 8: every package of the PyTorch-written corpus (both versions, zip
/// and directory form) opens in tpkg's `PackageImporter`: every source, every
/// pickle (values and tensors equal to the manifest's), every resource, the
/// extern list and the Python version.
#[test]
fn importer_reads_every_corpus_package() {
    let packages = tpkg_tests::corpus::packages().unwrap();
    let pickles = tpkg_tests::scenarios::importer_reads_packages(&packages).unwrap();
    assert!(pickles >= 14, "{pickles}");
}
