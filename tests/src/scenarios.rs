//! The end-to-end scenarios, each a real computation compared with PyTorch.
//!
//! `cargo xtask e2e` runs them all and prints a table; the integration tests
//! in `tests/suite/` run them too, so `cargo xtask test` covers them.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, Value as Json, json};
use sha2::{Digest, Sha256};
use tpkg::archive::{PackageMetadata, PackageReader, PackageWriter, WriteOptions};
use tpkg::pickle::ValueGraph;

use crate::{corpus, oracle};

/// One scenario: a name, which way it crosses the language border, and the
/// code that runs it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Short name, e.g. `corpus`.
    pub name: &'static str,
    /// `PyTorch → tpkg` or `tpkg → PyTorch`.
    pub direction: &'static str,
    /// Runs the scenario; returns what was checked.
    pub run: fn() -> anyhow::Result<Checked>,
}

/// What a passing scenario checked.
#[derive(Debug, Clone)]
pub struct Checked {
    /// One line: what was compared.
    pub summary: String,
    /// Largest absolute difference between tpkg's and PyTorch's numbers,
    /// for scenarios that compare numbers.
    pub max_abs_diff: Option<f64>,
}

/// The result of running one scenario.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario.
    pub scenario: Scenario,
    /// Seconds it took.
    pub seconds: f64,
    /// What it checked, or why it failed.
    pub result: anyhow::Result<Checked>,
}

/// Every scenario, in the order `cargo xtask e2e` runs them.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "corpus",
            direction: "PyTorch → tpkg",
            run: corpus_packages_read,
        },
        Scenario {
            name: "fresh-archive",
            direction: "PyTorch → tpkg",
            run: pytorch_writes_tpkg_reads,
        },
        Scenario {
            name: "tpkg-archive",
            direction: "tpkg → PyTorch",
            run: tpkg_writes_pytorch_reads,
        },
        Scenario {
            name: "tpkg-tensors",
            direction: "tpkg → PyTorch",
            run: tpkg_tensors_load_in_pytorch,
        },
        Scenario {
            name: "tch",
            direction: "PyTorch ↔ tch",
            run: tch_tensors_both_ways,
        },
        Scenario {
            name: "convert-resnet18",
            direction: "PyTorch → tpkg → PyTorch",
            run: resnet_converts_to_safetensors_and_pt,
        },
        Scenario {
            name: "resnet18-in-tch",
            direction: "PyTorch → tpkg → tch",
            run: crate::model_scenarios::resnet18_whole_runs_in_tch,
        },
        Scenario {
            name: "repack-resnet18",
            direction: "PyTorch → tpkg → PyTorch",
            run: crate::model_scenarios::resnet18_repackaged_runs_in_pytorch,
        },
        Scenario {
            name: "tch-model-save",
            direction: "tch → tpkg → PyTorch",
            run: crate::model_scenarios::tch_resnet18_package_runs_in_pytorch,
        },
        Scenario {
            name: "torchscript-resnet18",
            direction: "PyTorch → tpkg → tch, PyTorch",
            run: crate::model_scenarios::torchscript_resnet18_runs_in_tch_and_pytorch,
        },
        Scenario {
            name: "resnet18-formats",
            direction: "PyTorch → tpkg → tch",
            run: crate::model_scenarios::resnet18_every_format_runs_in_tch,
        },
        Scenario {
            name: "networkx-pack",
            direction: "tpkg → PyTorch",
            run: crate::model_scenarios::networkx_package_runs_in_pytorch,
        },
        Scenario {
            name: "tpkg-pickle",
            direction: "tpkg → PyTorch",
            run: tpkg_pickles_load_in_package_importer,
        },
    ]
}

/// Runs one scenario, timing it.
pub fn run(scenario: Scenario) -> Outcome {
    let start = Instant::now();
    let result = (scenario.run)();
    Outcome {
        scenario,
        seconds: start.elapsed().as_secs_f64(),
        result,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn sorted_names(reader: &PackageReader) -> Vec<String> {
    let mut names: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
    names.sort();
    names
}

/// Every package real PyTorch 2.13.0 and 2.0.1 wrote opens in tpkg, in zip
/// and directory form, with the records, folder, externs and Python version
/// its manifest lists, every CRC intact, and every pickle decoding (without
/// running anything) to the value image the manifest gives.
pub fn corpus_packages_read() -> anyhow::Result<Checked> {
    packages_read_as_manifests_say(&corpus::packages()?)
}

/// The golden files (`tests/data/golden`): packages PyTorch 1.10.2 (Python
/// 3.8) and 2.0.1 wrote, checked as the corpus is, plus their TorchScript
/// modules run in libtorch. Needs no Python.
pub fn golden_packages_read() -> anyhow::Result<Checked> {
    packages_read_as_manifests_say(&corpus::golden_packages()?)
}

/// Whether the package holds `module`'s source (`a/b.py` or
/// `a/b/__init__.py`): the exporter interned it.
fn has_source(reader: &PackageReader, module: &str) -> bool {
    let path = module.replace('.', "/");
    reader.has_record(&format!("{path}.py")) || reader.has_record(&format!("{path}/__init__.py"))
}

/// Each package opens in tpkg, in zip and directory form, exactly as its
/// manifest entry (the corpus format, `tests/data/corpus/README.md`) says:
/// records, folder, externs, Python version, CRCs, value images, tensors
/// (with SHA-256), and the TorchScript modules it lists run in libtorch with
/// the recorded output.
pub fn packages_read_as_manifests_say(packages: &[corpus::Package]) -> anyhow::Result<Checked> {
    ensure!(!packages.is_empty(), "no packages to check");
    let mut directory_forms = 0;
    let mut script_modules = 0;
    let mut pickles = 0;
    let mut scans = 0;
    let mut tensors = 0;
    for package in packages {
        let context = || format!("{}/{}", package.torch, package.file);
        let zip = PackageReader::open(&package.path).with_context(context)?;
        zip.verify().with_context(context)?;
        let manifest = &package.manifest;
        ensure!(
            zip.prefix() == manifest["prefix"],
            "{}: folder {}",
            context(),
            zip.prefix()
        );
        ensure!(
            sorted_names(&zip) == corpus::strings(&manifest["records"]),
            "{}: records differ from the manifest",
            context()
        );
        let metadata = PackageMetadata::read(&zip).with_context(context)?;
        ensure!(
            metadata.extern_modules == Some(corpus::strings(&manifest["extern_modules"])),
            "{}: extern modules {:?}",
            context(),
            metadata.extern_modules
        );
        ensure!(
            metadata.python_version.as_deref() == manifest["python_version"].as_str(),
            "{}: python version {:?}",
            context(),
            metadata.python_version
        );
        // PyTorch's exporter externs the modules its opcode scan of each
        // pickle finds, in order: tpkg's scanner must find the same. (The
        // pickles TorchScript writes under `.data/ts_code/` are not scanned.)
        let mut scanned: Vec<String> = Vec::new();
        let saved_pickles = zip
            .records()
            .iter()
            .filter(|r| r.name.ends_with(".pkl") && !r.name.starts_with(".data/"));
        for record in saved_pickles {
            for global in tpkg::pickle::scan_globals(&zip.read(&record.name)?) {
                if !scanned.contains(&global.module) {
                    scanned.push(global.module);
                }
            }
        }
        if !scanned.is_empty() {
            let externs = metadata.extern_modules.clone().unwrap_or_default();
            // With Python source in the package, the source's imports join
            // the list in the order the exporter was called (PyTorch 1.10
            // puts a saved source's `torch` first): then every global must
            // be externed or interned, in whatever order.
            let has_sources = zip.records().iter().any(|r| r.name.ends_with(".py"));
            ensure!(
                if has_sources {
                    scanned
                        .iter()
                        .all(|module| externs.contains(module) || has_source(&zip, module))
                } else {
                    scanned == externs
                },
                "{}: scanned globals {scanned:?}, externs {externs:?}",
                context(),
            );
            scans += 1;
        }
        for (record, expected) in manifest["pickles"].as_object().into_iter().flatten() {
            let graph = tpkg::show::decode_record(&zip, record).with_context(context)?;
            let image = tpkg::show::image(&graph).with_context(context)?;
            ensure!(
                image == expected["value"],
                "{}: {record}: tpkg sees {image}\nthe manifest says {}",
                context(),
                expected["value"]
            );
            pickles += 1;
            // Every tensor: dtype, shape, stride, offset, flags and the
            // SHA-256 of its elements, read from the storages.
            let loaded = tpkg::tensors::PackageTensors::load(&zip, record).with_context(context)?;
            let mut ours = Vec::new();
            for index in 0..loaded.len() {
                ours.push(serde_json::to_value(tpkg::tensors::TensorSummary::of(
                    loaded.path(index),
                    &loaded.view(index)?,
                ))?);
            }
            let theirs = expected["tensors"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            if let Some((index, (ours, theirs))) = ours
                .iter()
                .zip(theirs)
                .enumerate()
                .find(|(_, (ours, theirs))| ours != theirs)
            {
                bail!(
                    "{}: {record}: tensor {index}: tpkg reads {ours}\nthe manifest says {theirs}",
                    context()
                );
            }
            ensure!(
                ours.len() == theirs.len(),
                "{}: {record}: tpkg finds {} tensors, the manifest lists {}",
                context(),
                ours.len(),
                theirs.len()
            );
            tensors += loaded.len();
        }
        for (record, expected) in manifest["torchscript"].as_object().into_iter().flatten() {
            script_modules += script_modules_run(&zip, record, expected).with_context(context)?;
        }
        if let Some(folder) = &package.directory_form {
            let dir = PackageReader::open(folder).with_context(context)?;
            ensure!(
                sorted_names(&dir) == sorted_names(&zip),
                "{}: directory form differs",
                context()
            );
            for name in sorted_names(&dir) {
                ensure!(
                    dir.read(&name)? == zip.read(&name)?,
                    "{}: {name} differs",
                    context()
                );
            }
            directory_forms += 1;
        }
    }
    Ok(Checked {
        summary: format!(
            "{} packages + {directory_forms} folder forms: records, externs, CRCs; {pickles} pickles = manifest values; {tensors} tensors = manifest (sha256); {scans} extern lists = global scan; {script_modules} TorchScript modules run in tch",
            packages.len()
        ),
        max_abs_diff: None,
    })
}

/// Each package (zip and directory form) opens in tpkg's `PackageImporter`:
/// every source, every pickle (values and tensor count equal to the
/// manifest's), every resource, the extern list and the Python version.
/// Returns how many pickles it loaded.
pub fn importer_reads_packages(packages: &[corpus::Package]) -> anyhow::Result<usize> {
    use tpkg::importer::{PackageImporter, module_of_record};

    let mut pickles = 0;
    for package in packages {
        let paths = std::iter::once(package.path.clone()).chain(package.directory_form.clone());
        for path in paths {
            let label = format!("{} {}", package.torch, path.display());
            let importer = PackageImporter::open(&path).with_context(|| label.clone())?;
            ensure!(
                Json::from(importer.extern_modules()) == package.manifest["extern_modules"],
                "{label}: extern modules {:?}",
                importer.extern_modules()
            );
            ensure!(
                importer.python_version() == package.manifest["python_version"].as_str(),
                "{label}: python version {:?}",
                importer.python_version()
            );
            for name in corpus::strings(&package.manifest["records"]) {
                if name.starts_with(".data/") || name == "byteorder" {
                    continue;
                }
                let context = || format!("{label} {name}");
                let (folder, file) = name.rsplit_once('/').unwrap_or(("", name.as_str()));
                let package_name = folder.replace('/', ".");
                if let Some(module) = module_of_record(&name) {
                    importer.get_source(&module).with_context(context)?;
                } else if let Some(expected) = package.manifest["pickles"].get(&name) {
                    let loaded = importer
                        .load_pickle(&package_name, file)
                        .with_context(context)?;
                    let image = tpkg::show::image(loaded.graph()).with_context(context)?;
                    ensure!(image == expected["value"], "{}: image {image}", context());
                    let count = expected["tensors"].as_array().map_or(0, Vec::len);
                    ensure!(
                        loaded.len() == count,
                        "{}: {} tensors, the manifest {count}",
                        context(),
                        loaded.len()
                    );
                    pickles += 1;
                } else {
                    importer
                        .load_binary(&package_name, file)
                        .with_context(context)?;
                }
            }
        }
    }
    Ok(pickles)
}

/// The TorchScript modules pickled at `record` are the manifest's
/// `ts_ids`; each, written out standalone by tpkg, loads in libtorch (tch's
/// `CModule`) and maps the `input` of the manifest's `check` pickle to its
/// `output` (within 1e-5). Returns how many ran.
fn script_modules_run(
    zip: &PackageReader,
    record: &str,
    expected: &Value,
) -> anyhow::Result<usize> {
    use tpkg::tch::{CModule, IValue};

    let ids = tpkg::torchscript::script_modules(zip, record)?;
    ensure!(
        Json::from(ids.clone()) == expected["ts_ids"],
        "{record}: tpkg finds script modules {ids:?}, the manifest {}",
        expected["ts_ids"]
    );
    let check = expected["check"]
        .as_str()
        .context("a torchscript entry without its check pickle")?;
    let io = tpkg::tensors::PackageTensors::load(zip, check)?;
    let tensors = io.to_tch()?;
    let find = |name: &str| {
        (0..io.len())
            .find(|&index| io.path(index) == name)
            .map(|index| &tensors[index])
            .with_context(|| format!("{check} has no {name:?}"))
    };
    let (input, output) = (find("input")?, find("output")?);
    let dir = tempfile::tempdir()?;
    for id in &ids {
        let standalone = dir.path().join(format!("{id}.jit.pt"));
        tpkg::torchscript::write_standalone(zip, id, &standalone)?;
        let module = CModule::load(&standalone)
            .with_context(|| format!("{record}: libtorch cannot load script module {id}"))?;
        let ours =
            tpkg::tch::no_grad(|| module.forward_is(&[IValue::Tensor(input.shallow_clone())]))?;
        let IValue::Tensor(ours) = ours else {
            bail!("{record}: script module {id} returned {ours:?}");
        };
        let diff = (ours - output).abs().max().double_value(&[]);
        // Another libtorch may pick another convolution kernel.
        ensure!(
            diff <= 1e-5,
            "{record}: script module {id} differs from PyTorch's output by {diff}"
        );
    }
    Ok(ids.len())
}

/// Packages the venv's PyTorch writes now (to a file and to a buffer) read
/// in tpkg with exactly the records and bytes PyTorch's own reader sees.
pub fn pytorch_writes_tpkg_reads() -> anyhow::Result<Checked> {
    let dir = tempfile::tempdir()?;
    let out = dir
        .path()
        .to_str()
        .context("temporary folder is not UTF-8")?;
    let expected = oracle::run_json("write_package.py", &[out])?;
    let files = expected.as_object().context("oracle printed no object")?;
    let mut records = 0;
    for (file, records_sha256) in files {
        let reader = PackageReader::open(dir.path().join(file))?;
        let expected: BTreeMap<String, String> = serde_json::from_value(records_sha256.clone())?;
        let ours: BTreeMap<String, String> = reader
            .records()
            .iter()
            .map(|record| Ok((record.name.clone(), sha256_hex(&reader.read(&record.name)?))))
            .collect::<anyhow::Result<_>>()?;
        ensure!(
            ours == expected,
            "{file}: tpkg sees {ours:#?}\nPyTorch sees {expected:#?}"
        );
        records += ours.len();
    }
    Ok(Checked {
        summary: format!(
            "{} packages (file + buffer), {records} records byte-identical to PyTorchFileReader",
            files.len()
        ),
        max_abs_diff: None,
    })
}

const README: &str = "written by tpkg\nread by PyTorch\n";
const INIT_PY: &str = "import math\nfrom . import sub\nVALUE = sub.X + 1\nROOT2 = math.sqrt(2)\n";
const SUB_PY: &str = "X = 41\n";

/// Packages tpkg writes (to a file, in memory, and extracted to a folder)
/// open in PyTorch's `PackageImporter` and `PyTorchFileReader`: same records
/// and bytes, text
/// and binary resources, extern list, and interned source that imports and
/// runs.
pub fn tpkg_writes_pytorch_reads() -> anyhow::Result<Checked> {
    let dir = tempfile::tempdir()?;
    let blob: Vec<u8> = (0..=255u8).cycle().take(3 * 256 + 7).collect();
    let fill = |writer: &mut dyn FnMut(&str, &[u8]) -> tpkg::archive::Result<()>| {
        writer("notes/readme.txt", README.as_bytes())?;
        writer("blobs/data.bin", &blob)?;
        writer("pkg/__init__.py", INIT_PY.as_bytes())?;
        writer("pkg/sub.py", SUB_PY.as_bytes())
    };

    let file_path = dir.path().join("from_tpkg.pt");
    let mut file_writer = PackageWriter::create(&file_path, WriteOptions::default())?;
    fill(&mut |name, data| file_writer.write_record(name, data))?;
    file_writer.write_extern_modules(&["math"])?;
    file_writer.finish()?;

    let mut memory_writer = PackageWriter::in_memory(WriteOptions::default())?;
    fill(&mut |name, data| memory_writer.write_record(name, data))?;
    memory_writer.write_extern_modules(&["math"])?;
    let memory_path = dir.path().join("from_memory.pt");
    std::fs::write(&memory_path, memory_writer.finish()?)?;

    // `tpkg extract` output: PyTorch's directory form.
    let extracted = tpkg::archive::extract(
        &PackageReader::open(&file_path)?,
        &dir.path().join("extracted"),
    )?;

    for path in [&file_path, &memory_path, &extracted] {
        let spec = json!({
            "path": path,
            "text": [["notes", "readme.txt"]],
            "binary": [["blobs", "data.bin"]],
            "import": [["pkg", "VALUE"], ["pkg", "ROOT2"]],
        });
        let seen = oracle::run_json("read_package.py", &[&spec.to_string()])?;
        let reader = PackageReader::open(path)?;
        let ours_sha: BTreeMap<String, String> = reader
            .records()
            .iter()
            .map(|record| Ok((record.name.clone(), sha256_hex(&reader.read(&record.name)?))))
            .collect::<anyhow::Result<_>>()?;
        let theirs_sha: BTreeMap<String, String> =
            serde_json::from_value(seen["record_sha256"].clone())?;
        ensure!(ours_sha == theirs_sha, "{}: records differ", path.display());
        let metadata = PackageMetadata::read(&reader)?;
        let expectations: [(&str, Value); 6] = [
            ("text", json!([README])),
            ("binary", json!([hex(&blob)])),
            ("import", json!(["42", "1.4142135623730951"])),
            ("extern_modules", json!(["math"])),
            ("python_version", json!(metadata.python_version)),
            ("serialization_id", json!(metadata.serialization_id)),
        ];
        for (key, expected) in expectations {
            if seen[key] != expected {
                bail!(
                    "{}: PyTorch's {key} is {} but tpkg expected {expected}",
                    path.display(),
                    seen[key]
                );
            }
        }
    }
    Ok(Checked {
        summary:
            "3 packages (file, memory, extracted folder): records, load_text, load_binary, externs, import + run"
                .to_owned(),
        max_abs_diff: None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A value with what PyTorch's pickles hold: an OrderedDict with a
/// `_metadata` attribute, torch.Size, dtypes, devices, big ints, bytes,
/// sets, nested and shared containers, and a cycle.
fn rich_value() -> ValueGraph {
    use tpkg::pickle::{PyStr, Value};
    let mut graph = ValueGraph::new(Value::None);
    let text = |graph: &mut ValueGraph, s: &str| graph.add(Value::Str(PyStr::from(s)));
    let version = text(&mut graph, "version");
    let one = graph.add(Value::Int(1));
    let inner_meta = graph.add(Value::Dict(vec![(version, one)]));
    let empty_key = text(&mut graph, "");
    let metadata = graph.add(Value::OrderedDict {
        items: vec![(empty_key, inner_meta)],
        state: None,
    });
    let metadata_key = text(&mut graph, "_metadata");
    let state = graph.add(Value::Dict(vec![(metadata_key, metadata)]));
    let dims: Vec<_> = [2i64, 3]
        .iter()
        .map(|d| graph.add(Value::Int(*d)))
        .collect();
    let size = graph.add(Value::TorchSize(dims));
    let dtype = graph.add(Value::TorchDtype("bfloat16".to_owned()));
    let device = graph.add(Value::TorchDevice("cuda:1".to_owned()));
    let big = graph.add(Value::BigInt(num_bigint::BigInt::from(1) << 100));
    let bytes = graph.add(Value::Bytes((0..=255).collect()));
    let members: Vec<_> = [3i64, 1, 2]
        .iter()
        .map(|m| graph.add(Value::Int(*m)))
        .collect();
    let set = graph.add(Value::Set(members));
    let shared = graph.add(Value::List(vec![one, big]));
    let cycle = graph.add(Value::List(vec![]));
    if let Value::List(items) = graph.get_mut(cycle) {
        items.push(cycle);
    }
    let float = graph.add(Value::Float(-0.0));
    let tuple = graph.add(Value::Tuple(vec![size, dtype, device, float]));
    let keys: Vec<_> = [
        "torch", "big", "bytes", "set", "shared_a", "shared_b", "cycle",
    ]
    .iter()
    .map(|k| text(&mut graph, k))
    .collect();
    let items = vec![
        (keys[0], tuple),
        (keys[1], big),
        (keys[2], bytes),
        (keys[3], set),
        (keys[4], shared),
        (keys[5], shared),
        (keys[6], cycle),
    ];
    let root = graph.add(Value::OrderedDict {
        items,
        state: Some(state),
    });
    graph.set_root(root);
    graph
}

/// Pickles tpkg encodes (protocols 3 and 4, the two PyTorch allows) inside
/// a tpkg-written package load with PyTorch's `PackageImporter.load_pickle`
/// as the same value.
pub fn tpkg_pickles_load_in_package_importer() -> anyhow::Result<Checked> {
    let graph = rich_value();
    let expected = tpkg::show::image(&graph)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pickles.pt");
    let mut writer = PackageWriter::create(&path, WriteOptions::default())?;
    writer.write_record("data/p3.pkl", &tpkg::pickle::encode(&graph, 3)?)?;
    writer.write_record("data/p4.pkl", &tpkg::pickle::encode(&graph, 4)?)?;
    writer.write_extern_modules(&["collections", "torch"])?;
    writer.finish()?;
    let spec = json!({ "path": path, "pickle": [["data", "p3.pkl"], ["data", "p4.pkl"]] });
    let seen = oracle::run_json("read_package.py", &[&spec.to_string()])?;
    for (protocol, theirs) in [3, 4]
        .iter()
        .zip(seen["pickle"].as_array().into_iter().flatten())
    {
        ensure!(
            *theirs == expected,
            "protocol {protocol}: PyTorch loaded {theirs}\ntpkg wrote {expected}"
        );
    }
    Ok(Checked {
        summary: "protocols 3 and 4: OrderedDict+_metadata, Size, dtype, device, big int, bytes, set, sharing, cycle".to_owned(),
        max_abs_diff: None,
    })
}

/// Writes `dir/tensors.pt`: the storages and `graph` pickled at
/// `tensors/all.pkl`, with the externs a tensor pickle needs.
fn write_tensor_package(
    dir: &std::path::Path,
    graph: &ValueGraph,
    storages: &[tpkg::tensors::StorageRef],
    bytes: &[Vec<u8>],
) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("tensors.pt");
    let mut writer = PackageWriter::create(&path, WriteOptions::default())?;
    tpkg::tensors::write_tensor_pickle(&mut writer, "tensors/all.pkl", graph, storages, bytes)?;
    writer.write_extern_modules(&["collections", "torch._utils", "torch"])?;
    writer.finish()?;
    Ok(path)
}

/// Makes `{name: value, ...}` the pickle's result.
fn set_dict_root<'n>(
    graph: &mut ValueGraph,
    entries: impl IntoIterator<Item = (&'n str, tpkg::pickle::ValueId)>,
) {
    use tpkg::pickle::{PyStr, Value};
    let items = entries
        .into_iter()
        .map(|(name, value)| (graph.add(Value::Str(PyStr::from(name))), value))
        .collect::<Vec<_>>();
    let root = graph.add(Value::Dict(items));
    graph.set_root(root);
}

/// Storage bytes of `numel` finite, recognisable elements of `dtype`.
fn sample_storage(dtype: tpkg::tensors::DType, numel: usize) -> Vec<u8> {
    use tpkg::tensors::DType as D;
    let mut bytes = Vec::with_capacity(numel * dtype.element_size());
    for i in 0..numel {
        let k = i as u32;
        match dtype {
            D::Float32 => bytes.extend((k as f32 * 0.5 - 3.0).to_le_bytes()),
            D::Float64 => bytes.extend((f64::from(k) * 0.25 - 1.0).to_le_bytes()),
            D::Complex64 => {
                bytes.extend((k as f32).to_le_bytes());
                bytes.extend((-(k as f32)).to_le_bytes());
            }
            D::Complex128 => {
                bytes.extend(f64::from(k).to_le_bytes());
                bytes.extend((f64::from(k) + 0.5).to_le_bytes());
            }
            // Finite half-precision patterns: [1, 2) and sign flips.
            D::Float16 => {
                let sign = ((k % 2) << 15) as u16;
                bytes.extend(((0x3C00u16 + (k % 0x400) as u16) | sign).to_le_bytes());
            }
            D::BFloat16 => bytes.extend((0x3F80u16 + (k % 0x80) as u16).to_le_bytes()),
            D::Complex32 => {
                bytes.extend((0x3C00u16 + (k % 0x400) as u16).to_le_bytes());
                bytes.extend((0x4000u16 + (k % 0x200) as u16).to_le_bytes());
            }
            D::Float8E4M3Fn | D::Float8E5M2 | D::Float8E4M3FnUz | D::Float8E5M2FnUz => {
                bytes.push((k % 0x70) as u8 + 1);
            }
            D::Bool => bytes.push((k % 2) as u8),
            _ => {
                let size = dtype.element_size();
                let value = (u64::from(k) * 2_654_435_761) ^ 0x5a5a;
                bytes.extend_from_slice(&value.to_le_bytes()[..size]);
            }
        }
    }
    bytes
}

/// One tensor's layout over its storage: (shape, stride, storage offset).
struct Layout<'a>(&'a [u64], &'a [u64], u64);

/// Builds the graph of the `tpkg-tensors` scenario and remembers what each
/// tensor must look like once PyTorch has loaded it.
struct TensorCase {
    tensors: tpkg::tensors::TensorEncoder,
    graph: ValueGraph,
    storages: Vec<Vec<u8>>,
    /// (name, node, expected image of the tensor)
    entries: Vec<(String, tpkg::pickle::ValueId, Value)>,
}

impl TensorCase {
    fn add(
        &mut self,
        name: &str,
        identity: &str,
        dtype: tpkg::tensors::DType,
        numel: u64,
        Layout(shape, stride, offset): Layout<'_>,
        (requires_grad, parameter): (bool, bool),
    ) -> anyhow::Result<()> {
        use tpkg::tensors::{TensorSpec, TensorView, tensor_sha256};
        let storage = self.tensors.storage(identity, dtype, numel, "cpu");
        let index: usize = storage.key.parse()?;
        if index == self.storages.len() {
            self.storages.push(sample_storage(dtype, numel as usize));
        }
        let spec = TensorSpec {
            storage,
            dtype,
            storage_offset: offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
            requires_grad,
            parameter,
        };
        let node = self.tensors.tensor(&mut self.graph, &spec);
        let view = TensorView::new(spec, name, &self.storages[index])?;
        let expected = json!({
            "dtype": dtype.name(),
            "shape": shape,
            "stride": stride,
            "storage_offset": offset,
            "requires_grad": requires_grad,
            "parameter": parameter,
            "sha256": tensor_sha256(&view),
        });
        self.entries.push((name.to_owned(), node, expected));
        Ok(())
    }
}

/// Tensors of every dtype and layout, written by tpkg (one record per
/// storage, views sharing one), load in PyTorch's `PackageImporter` with
/// equal values, dtypes, shapes, strides, offsets, requires_grad,
/// Parameter type and storage sharing.
pub fn tpkg_tensors_load_in_pytorch() -> anyhow::Result<Checked> {
    use tpkg::pickle::Value;
    use tpkg::tensors::{DType, TensorEncoder};

    let mut case = TensorCase {
        tensors: TensorEncoder::new(),
        graph: ValueGraph::new(Value::None),
        storages: Vec::new(),
        entries: Vec::new(),
    };
    let plain = (false, false);
    for dtype in DType::ALL {
        case.add(
            dtype.name(),
            dtype.name(),
            dtype,
            24,
            Layout(&[4, 6], &[6, 1], 0),
            plain,
        )?;
    }
    case.add(
        "scalar",
        "scalar",
        DType::Float32,
        1,
        Layout(&[], &[], 0),
        plain,
    )?;
    case.add(
        "empty",
        "empty",
        DType::Float32,
        0,
        Layout(&[0, 3], &[3, 1], 0),
        plain,
    )?;
    case.add(
        "transposed",
        "t",
        DType::Float32,
        24,
        Layout(&[6, 4], &[1, 6], 0),
        plain,
    )?;
    case.add(
        "transposed_f16",
        "t16",
        DType::Float16,
        24,
        Layout(&[6, 4], &[1, 6], 0),
        plain,
    )?;
    case.add(
        "strided",
        "s",
        DType::Float32,
        24,
        Layout(&[4, 3], &[6, 2], 0),
        plain,
    )?;
    case.add(
        "offset_view",
        "o",
        DType::Float32,
        24,
        Layout(&[2, 6], &[6, 1], 12),
        plain,
    )?;
    case.add(
        "expanded",
        "e",
        DType::Float32,
        3,
        Layout(&[4, 3], &[0, 1], 0),
        plain,
    )?;
    let channels_last = Layout(&[2, 3, 4, 5], &[60, 1, 15, 3], 0);
    case.add(
        "channels_last",
        "cl",
        DType::Float32,
        120,
        channels_last,
        plain,
    )?;
    case.add(
        "shared_a",
        "shared",
        DType::Float32,
        12,
        Layout(&[12], &[1], 0),
        plain,
    )?;
    case.add(
        "shared_b",
        "shared",
        DType::Float32,
        12,
        Layout(&[4], &[1], 4),
        plain,
    )?;
    case.add(
        "requires_grad",
        "g",
        DType::Float32,
        3,
        Layout(&[3], &[1], 0),
        (true, false),
    )?;
    case.add(
        "parameter",
        "p",
        DType::Float32,
        4,
        Layout(&[2, 2], &[2, 1], 0),
        (true, true),
    )?;
    case.add(
        "frozen_parameter",
        "f",
        DType::Float64,
        4,
        Layout(&[4], &[1], 0),
        (false, true),
    )?;
    let TensorCase {
        tensors,
        mut graph,
        storages,
        entries,
    } = case;

    set_dict_root(
        &mut graph,
        entries.iter().map(|(name, node, _)| (name.as_str(), *node)),
    );

    let dir = tempfile::tempdir()?;
    let path = write_tensor_package(dir.path(), &graph, tensors.storages(), &storages)?;

    let path_text = path.to_str().context("temporary path is not UTF-8")?;
    let seen = oracle::run_json("tensor_oracle.py", &[path_text, "tensors", "all.pkl"])?;
    for (name, _, expected) in &entries {
        let theirs = &seen["tensors"][name];
        ensure!(
            theirs == expected,
            "{name}: PyTorch loaded {theirs}\ntpkg wrote {expected}"
        );
    }
    ensure!(
        seen["shared"] == json!([["shared_a", "shared_b"]]),
        "storage sharing: PyTorch sees {}",
        seen["shared"]
    );
    ensure!(
        tensors.storages().len() == storages.len(),
        "one record per storage"
    );
    Ok(Checked {
        summary: format!(
            "{} tensors ({} dtypes, 8 layouts, shared views, requires_grad, Parameters) in {} storage records",
            entries.len(),
            DType::ALL.len(),
            storages.len()
        ),
        max_abs_diff: Some(0.0),
    })
}

/// A torchvision resnet18 pickled whole by PyTorch, converted by tpkg (no
/// Python) to safetensors and to a `torch.save` file: both load into a fresh
/// torchvision resnet18 (strict key match) and give PyTorch's output.
pub fn resnet_converts_to_safetensors_and_pt() -> anyhow::Result<Checked> {
    let dir = tempfile::tempdir()?;
    let out = dir
        .path()
        .to_str()
        .context("temporary folder is not UTF-8")?;
    oracle::run_json("resnet_oracle.py", &["make", out])?;
    let reader = PackageReader::open(dir.path().join("resnet.pt"))?;
    let tensors = tpkg::tensors::PackageTensors::load(&reader, "model/model.pkl")?;
    let safetensors = dir.path().join("resnet.safetensors");
    let pt = dir.path().join("resnet_state.pt");
    tpkg::convert::to_safetensors(&tensors, &safetensors)?;
    tpkg::convert::to_torch_save(&tensors, &pt)?;
    let diffs = oracle::run_json(
        "resnet_oracle.py",
        &[
            "check",
            out,
            safetensors.to_str().context("path")?,
            pt.to_str().context("path")?,
        ],
    )?;
    let worst = ["safetensors", "pt"]
        .iter()
        .map(|k| diffs[k].as_f64().unwrap_or(f64::INFINITY))
        .fold(0.0, f64::max);
    ensure!(worst <= 1e-4, "outputs differ: {diffs}");

    // The same state dict fills tch's own resnet18, which runs the input.
    let tch_diff = resnet_in_tch(&tensors, &dir.path().join("io.pt"))?;
    ensure!(
        tch_diff <= 1e-4,
        "tch's resnet18 differs from PyTorch's by {tch_diff}"
    );
    Ok(Checked {
        summary: format!(
            "{} state-dict tensors → safetensors, torch.save (torchvision loads both, strict) and tch's resnet18; same output",
            tensors.len()
        ),
        max_abs_diff: Some(worst.max(tch_diff)),
    })
}

/// Corpus tensors become tch tensors with equal elements, views sharing one
/// libtorch buffer; tch tensors (a base, a transposed view, a narrowed view,
/// a Parameter) written by tpkg load in PyTorch with equal values and one
/// shared storage.
pub fn tch_tensors_both_ways() -> anyhow::Result<Checked> {
    use tpkg::tch::{Kind, Tensor};
    use tpkg::tensors::tch::{encode_tch, to_tch};

    // PyTorch → tch.
    let corpus = corpus::root().join("torch-2.13.0/values_p3.pt");
    let reader = PackageReader::open(&corpus)?;
    let loaded = tpkg::tensors::PackageTensors::load(&reader, "data/tensors.pkl")?;
    let mut views = Vec::new();
    for index in 0..loaded.len() {
        views.push((loaded.path(index), loaded.view(index)?));
    }
    let tch_tensors = to_tch(&views)?;
    for ((path, view), tensor) in views.iter().zip(&tch_tensors) {
        let contiguous = tensor.contiguous();
        let mut bytes = vec![0u8; view.contiguous_bytes().len()];
        contiguous.f_copy_data_u8(&mut bytes, view.numel() as usize)?;
        ensure!(
            bytes == view.contiguous_bytes().as_ref(),
            "{path}: tch holds other elements"
        );
        ensure!(
            tensor.requires_grad() == view.spec().requires_grad,
            "{path}: requires_grad"
        );
        ensure!(
            tensor
                .stride()
                .iter()
                .map(|&s| s as u64)
                .collect::<Vec<_>>()
                == view.stride(),
            "{path}: strides"
        );
    }
    // Zero-copy: the same tensors over the memory map itself.
    // SAFETY: `reader` outlives `borrowed`, which is only read.
    let borrowed = unsafe { tpkg::tensors::tch::to_tch_borrowed(&views)? };
    for (((path, view), copied), zero_copy) in views.iter().zip(&tch_tensors).zip(&borrowed) {
        ensure!(copied.equal(zero_copy), "{path}: borrowed tensor differs");
        let map = view.storage_bytes().as_ptr_range();
        let pointer = zero_copy.data_ptr() as *const u8;
        ensure!(
            view.numel() == 0 || map.contains(&pointer),
            "{path}: not a view of the memory map"
        );
    }
    let position = |name: &str| views.iter().position(|(p, _)| *p == name).unwrap_or(0);
    let (a, b) = (
        &tch_tensors[position("shared_a")],
        &tch_tensors[position("shared_b")],
    );
    ensure!(
        b.data_ptr() as usize == a.data_ptr() as usize + 4 * 4,
        "shared_a and shared_b do not alias in tch"
    );

    // tch → PyTorch.
    let base = Tensor::arange(24, (Kind::Float, tpkg::tch::Device::Cpu)).reshape([4, 6]);
    let transposed = base.transpose(0, 1);
    let narrowed = base.narrow(0, 1, 2);
    let weight = Tensor::ones([3], (Kind::Double, tpkg::tch::Device::Cpu)).set_requires_grad(true);
    let named: Vec<(&str, &Tensor, bool)> = vec![
        ("base", &base, false),
        ("transposed", &transposed, false),
        ("narrowed", &narrowed, false),
        ("weight", &weight, true),
    ];
    let mut encoder = tpkg::tensors::TensorEncoder::new();
    let mut graph = ValueGraph::new(tpkg::pickle::Value::None);
    let (nodes, storages) = encode_tch(&mut graph, &mut encoder, &named)?;
    set_dict_root(
        &mut graph,
        named.iter().map(|(name, _, _)| *name).zip(nodes),
    );
    let dir = tempfile::tempdir()?;
    let path = write_tensor_package(dir.path(), &graph, encoder.storages(), &storages)?;
    let seen = oracle::run_json(
        "tensor_oracle.py",
        &[path.to_str().context("path")?, "tensors", "all.pkl"],
    )?;
    for (name, tensor, parameter) in &named {
        let theirs = &seen["tensors"][*name];
        ensure!(
            theirs["parameter"] == *parameter,
            "{name}: parameter flag {theirs}"
        );
        ensure!(
            theirs["requires_grad"] == tensor.requires_grad(),
            "{name}: requires_grad"
        );
        let shape: Vec<i64> = serde_json::from_value(theirs["shape"].clone())?;
        let stride: Vec<i64> = serde_json::from_value(theirs["stride"].clone())?;
        ensure!(
            shape == tensor.size() && stride == tensor.stride(),
            "{name}: layout {theirs}"
        );
        let ours = tensor.contiguous();
        let mut bytes = vec![0u8; ours.numel() * ours.kind().elt_size_in_bytes()];
        ours.f_copy_data_u8(&mut bytes, ours.numel())?;
        ensure!(
            theirs["sha256"] == sha256_hex(&bytes).as_str(),
            "{name}: values differ"
        );
    }
    ensure!(
        seen["shared"] == json!([["base", "transposed", "narrowed"]]),
        "sharing in PyTorch: {}",
        seen["shared"]
    );
    ensure!(
        storages.len() == 2,
        "{} storage records for 2 buffers",
        storages.len()
    );
    Ok(Checked {
        summary: format!(
            "{} corpus tensors into tch, copied or zero-copy over the map (views alias); 4 tch tensors (3 views of one buffer, a Parameter) load in PyTorch with 1 shared storage",
            tch_tensors.len()
        ),
        // Elements are compared bit for bit (SHA-256).
        max_abs_diff: Some(0.0),
    })
}

/// Fills `tch::vision::resnet::resnet18` from the package's tensors, runs the
/// saved input (read from the `torch.save` file by tpkg) and returns the max
/// abs difference from PyTorch's saved output.
pub(crate) fn resnet_in_tch(
    tensors: &tpkg::tensors::PackageTensors<'_>,
    io: &std::path::Path,
) -> anyhow::Result<f64> {
    // Copied into libtorch storage by storage, the map released behind.
    let named: Vec<(&str, tpkg::tch::Tensor)> = (0..tensors.len())
        .map(|index| tensors.path(index))
        .zip(tensors.to_tch()?)
        .collect();
    resnet_named_in_tch(&named, io)
}

/// [`resnet_in_tch`] for tensors already in tch, by state-dict name.
pub(crate) fn resnet_named_in_tch(
    named: &[(&str, tpkg::tch::Tensor)],
    io: &std::path::Path,
) -> anyhow::Result<f64> {
    use tpkg::tch::nn::ModuleT;
    use tpkg::tensors::tch::{fill_var_store, to_tch};

    let store = tpkg::tch::nn::VarStore::new(tpkg::tch::Device::Cpu);
    let model = tpkg::tch::vision::resnet::resnet18(&store.root(), 1000);
    let report = fill_var_store(&store, named)?;
    ensure!(
        report.missing.is_empty(),
        "tch variables not filled: {:?}",
        report.missing
    );
    ensure!(
        report
            .unexpected
            .iter()
            .all(|name| name.ends_with("num_batches_tracked")),
        "state-dict entries tch has no variable for: {:?}",
        report.unexpected
    );

    let io_reader = PackageReader::open(io)?;
    let io_tensors = tpkg::tensors::PackageTensors::load(&io_reader, "data.pkl")?;
    let mut io_views = Vec::new();
    for index in 0..io_tensors.len() {
        io_views.push((io_tensors.path(index), io_tensors.view(index)?));
    }
    let io = to_tch(&io_views)?;
    let find = |name: &str| {
        io_views
            .iter()
            .position(|(p, _)| *p == name)
            .context("io tensor")
    };
    let (input, expected) = (&io[find("input")?], &io[find("output")?]);
    let output = tpkg::tch::no_grad(|| model.forward_t(input, false));
    Ok((output - expected).abs().max().double_value(&[]))
}
