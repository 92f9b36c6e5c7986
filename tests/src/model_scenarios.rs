//! The model scenarios of PyTorch's `test/package/test_model.py`, across the
//! language border: a torchvision resnet18 pickled whole (with torchvision
//! interned) and run in tch; the same package repackaged by tpkg and run in
//! PyTorch; a package written from tch (state dict + a `model` package with
//! `load()`) run in PyTorch; a TorchScript resnet18 from a package run by
//! tch's `CModule` and by `torch.jit.load`; and networkx packaged by tpkg,
//! run in PyTorch. Each compares real outputs.

use std::path::Path;

use anyhow::{Context, ensure};
use serde_json::Value;
use tpkg::exporter::{PackageExporter, PatternOptions, SourceKind, SourceOptions};
use tpkg::importer::PackageImporter;
use tpkg::pysource::ModuleFinder;

use crate::oracle;
use crate::scenarios::{Checked, resnet_in_tch};

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("temporary path is not UTF-8")
}

/// The interpreter's module finder (torchvision, networkx resolve on it).
fn host_finder() -> anyhow::Result<ModuleFinder> {
    Ok(ModuleFinder::from_python(&oracle::python()?)?)
}

/// Scenario 1: PyTorch pickles resnet18 whole, torchvision interned; tpkg
/// loads the package and fills tch's resnet18 from the module's state dict.
pub fn resnet18_whole_runs_in_tch() -> anyhow::Result<Checked> {
    let dir = tempfile::tempdir()?;
    oracle::run_json("repack_oracle.py", &["make", path_str(dir.path())?])?;
    let importer = PackageImporter::open(dir.path().join("first.pt"))?;
    let sources = importer.interned_modules();
    ensure!(
        sources.iter().any(|m| m == "torchvision.models.resnet"),
        "torchvision is not interned: {sources:?}"
    );
    let tensors = importer.load_pickle("model", "model.pkl")?;
    let diff = resnet_in_tch(&tensors, &dir.path().join("io.pt"))?;
    ensure!(
        diff <= 1e-4,
        "tch's output differs from PyTorch's by {diff}"
    );
    Ok(Checked {
        summary: format!(
            "resnet18 pickled whole ({} interned sources, {} tensors) → tch resnet18; same output",
            sources.len(),
            tensors.len()
        ),
        max_abs_diff: Some(diff),
    })
}

/// Scenario 2: tpkg repackages that package (and PyTorch's own re-export of
/// it); PyTorch loads the new packages and gets the same output.
pub fn resnet18_repackaged_runs_in_pytorch() -> anyhow::Result<Checked> {
    let dir = tempfile::tempdir()?;
    let out = path_str(dir.path())?;
    oracle::run_json("repack_oracle.py", &["make", out])?;
    let finder = host_finder()?;
    let mut outputs = Vec::new();
    for input in ["first.pt", "second.pt"] {
        let importer = PackageImporter::open(dir.path().join(input))?;
        let output = dir.path().join(format!("tpkg_{input}"));
        tpkg::repackage::repackage(
            &importer,
            &output,
            finder.clone(),
            &tpkg::repackage::Rules::default(),
        )?;
        outputs.push(output);
    }
    let mut args = vec!["check".to_owned(), out.to_owned()];
    for output in &outputs {
        args.push(path_str(output)?.to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = oracle::run_json("repack_oracle.py", &args)?;
    let mut worst = 0.0f64;
    for name in ["tpkg_first.pt", "tpkg_second.pt"] {
        let diff = checked[name]["max_abs_diff"]
            .as_f64()
            .context("no difference reported")?;
        ensure!(diff <= 1e-4, "{name}: output differs by {diff}: {checked}");
        ensure!(checked[name]["from_package"] == true, "{name}: {checked}");
        worst = worst.max(diff);
    }
    Ok(Checked {
        summary: "resnet18 package (and PyTorch's re-export of it) repackaged by tpkg; PyTorch loads both; same output".to_owned(),
        max_abs_diff: Some(worst),
    })
}

/// The `model` package's source: PyTorch's test_model_save convention, a
/// `load()` that builds torchvision's resnet18 and fills it from the
/// package's state dict.
const MODEL_SOURCE: &str = "\
import torch_package_importer as resources
from torchvision.models.resnet import resnet18


def load():
    model = resnet18()
    model.load_state_dict(resources.load_pickle(\"model\", \"state_dict.pkl\"))
    return model.eval()
";

/// Scenario 3: tpkg writes a package from a tch resnet18 — its state dict
/// and a `model` package with `load()`, torchvision externed; PyTorch
/// imports `model`, calls `load()` and gets tch's output.
pub fn tch_resnet18_package_runs_in_pytorch() -> anyhow::Result<Checked> {
    use tpkg::pickle::{PyStr, Value, ValueGraph};
    use tpkg::tch::nn::ModuleT;
    use tpkg::tch::{Device, Kind, Tensor};
    use tpkg::tensors::TensorEncoder;
    use tpkg::tensors::tch::encode_tch;

    tpkg::tch::manual_seed(0);
    let store = tpkg::tch::nn::VarStore::new(Device::Cpu);
    let net = tpkg::tch::vision::resnet::resnet18(&store.root(), 1000);
    let input = Tensor::rand([1, 3, 224, 224], (Kind::Float, Device::Cpu));
    let output = tpkg::tch::no_grad(|| net.forward_t(&input, false));

    // The state dict torchvision's resnet18 expects: tch's variables plus
    // the `num_batches_tracked` counters tch's batch norm does not keep.
    let mut state: Vec<(String, Tensor)> = store.variables().into_iter().collect();
    let counters: Vec<(String, Tensor)> = state
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(".running_var"))
        .map(|layer| (format!("{layer}.num_batches_tracked"), Tensor::from(0i64)))
        .collect();
    state.extend(counters);
    state.sort_by(|a, b| a.0.cmp(&b.0));

    let mut graph = ValueGraph::new(Value::None);
    let mut encoder = TensorEncoder::new();
    let named: Vec<(&str, &Tensor, bool)> = state
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor, false))
        .collect();
    let (nodes, storages) = encode_tch(&mut graph, &mut encoder, &named)?;
    let items = state
        .iter()
        .zip(nodes)
        .map(|((name, _), node)| (graph.add(Value::Str(PyStr::from(name.as_str()))), node))
        .collect();
    let root = graph.add(Value::OrderedDict { items, state: None });
    graph.set_root(root);

    let mut io_graph = ValueGraph::new(Value::None);
    let mut io_encoder = TensorEncoder::new();
    let io_named = [("input", &input, false), ("output", &output, false)];
    let (io_nodes, io_storages) = encode_tch(&mut io_graph, &mut io_encoder, &io_named)?;
    let io_items = ["input", "output"]
        .into_iter()
        .zip(io_nodes)
        .map(|(name, node)| (io_graph.add(Value::Str(PyStr::from(name))), node))
        .collect();
    let io_root = io_graph.add(Value::Dict(io_items));
    io_graph.set_root(io_root);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tch_resnet18.pt");
    let mut exporter = PackageExporter::create(&path, host_finder()?)?;
    exporter.extern_modules_with("torchvision.**", PatternOptions::default().disallow_empty())?;
    exporter.save_pickle(
        "model",
        "state_dict.pkl",
        &graph,
        encoder.storages(),
        &storages,
        3,
    )?;
    exporter.save_pickle(
        "check",
        "io.pkl",
        &io_graph,
        io_encoder.storages(),
        &io_storages,
        3,
    )?;
    exporter.save_source_string_with(
        "model",
        MODEL_SOURCE,
        SourceOptions::default().with_kind(SourceKind::Package),
    )?;
    let externs = exporter.externed_modules();
    exporter.close()?;

    let checked = oracle::run_json("tch_model_oracle.py", &[path_str(&path)?])?;
    let diff = checked["max_abs_diff"]
        .as_f64()
        .context("no difference reported")?;
    ensure!(
        diff <= 1e-4,
        "PyTorch's output differs from tch's by {diff}"
    );
    ensure!(checked["model_module_from_package"] == true, "{checked}");
    Ok(Checked {
        summary: format!(
            "tch resnet18 → {} state-dict tensors + `model` package with load() (externs {externs:?}); PyTorch's load() runs it",
            state.len()
        ),
        max_abs_diff: Some(diff),
    })
}

/// Scenario 4: PyTorch packages a TorchScript resnet18; tpkg extracts the
/// scripted module as a standalone TorchScript file, which tch's `CModule`
/// and `torch.jit.load` both run with PyTorch's output.
pub fn torchscript_resnet18_runs_in_tch_and_pytorch() -> anyhow::Result<Checked> {
    use tpkg::tch::{CModule, IValue};
    use tpkg::tensors::tch::to_tch;

    let dir = tempfile::tempdir()?;
    let out = path_str(dir.path())?;
    let made = oracle::run_json("torchscript_oracle.py", &["make", out])?;
    let reader = tpkg::archive::PackageReader::open(dir.path().join("scripted.pt"))?;
    let ids = tpkg::torchscript::script_modules(&reader, "model/model.pkl")?;
    ensure!(ids.len() == 1, "expected one script module, found {ids:?}");
    let standalone = dir.path().join("resnet18.jit.pt");
    tpkg::torchscript::write_standalone(&reader, &ids[0], &standalone)?;

    let io_reader = tpkg::archive::PackageReader::open(dir.path().join("io.pt"))?;
    let io = tpkg::tensors::PackageTensors::load(&io_reader, "data.pkl")?;
    let mut views = Vec::new();
    for index in 0..io.len() {
        views.push((io.path(index), io.view(index)?));
    }
    let tensors = to_tch(&views)?;
    let find = |name: &str| {
        views
            .iter()
            .position(|(p, _)| *p == name)
            .context("io tensor")
    };
    let (input, expected) = (&tensors[find("input")?], &tensors[find("output")?]);
    let module = CModule::load(&standalone)?;
    let output =
        tpkg::tch::no_grad(|| module.forward_is(&[IValue::Tensor(input.shallow_clone())]))?;
    let IValue::Tensor(output) = output else {
        anyhow::bail!("the scripted module returned {output:?}");
    };
    let tch_diff = (output - expected).abs().max().double_value(&[]);
    ensure!(tch_diff <= 1e-4, "tch's CModule differs by {tch_diff}");

    let checked = oracle::run_json(
        "torchscript_oracle.py",
        &["check", out, path_str(&standalone)?],
    )?;
    let torch_diff = checked["max_abs_diff"]
        .as_f64()
        .context("no difference reported")?;
    ensure!(torch_diff <= 1e-4, "torch.jit.load differs by {torch_diff}");
    let _ = made;
    Ok(Checked {
        summary: format!(
            "torch.jit.script(resnet18) in a package → standalone TorchScript ({} records) → tch CModule and torch.jit.load; same output",
            tpkg::archive::PackageReader::open(&standalone)?
                .records()
                .len()
        ),
        max_abs_diff: Some(tch_diff.max(torch_diff)),
    })
}

/// Scenario 5: tpkg packages networkx statically; the package holds what
/// PyTorch's exporter writes for the same job, and PyTorch imports networkx
/// from it and computes a shortest path.
pub fn networkx_package_runs_in_pytorch() -> anyhow::Result<Checked> {
    use sha2::{Digest, Sha256};

    let dir = tempfile::tempdir()?;
    let theirs_path = dir.path().join("theirs.pt");
    let theirs = oracle::run_json(
        "pack_oracle.py",
        &["export", path_str(&theirs_path)?, "networkx"],
    )?;
    let ours_path = dir.path().join("networkx.pt");
    let finder = host_finder()?;
    let mut options = tpkg::archive::WriteOptions::default();
    if let Some(release) = finder.python_release() {
        options.python_version = release.to_owned();
    }
    let start = std::time::Instant::now();
    let mut exporter = PackageExporter::create_with(&ours_path, finder, options)?;
    exporter.intern("networkx.**")?;
    exporter.extern_modules("**")?;
    exporter.save_module("networkx")?;
    exporter.close()?;
    let seconds = start.elapsed().as_secs_f64();

    let reader = tpkg::archive::PackageReader::open(&ours_path)?;
    let mut ours = Vec::new();
    for record in reader.records() {
        if record.name != ".data/serialization_id" {
            let bytes = reader.read(&record.name)?;
            ours.push(serde_json::json!([
                record.name,
                format!("{:x}", Sha256::digest(&bytes[..]))
            ]));
        }
    }
    ensure!(
        Value::from(ours.clone()) == theirs["records"],
        "tpkg's networkx package differs from PyTorch's exporter's"
    );
    let ran = oracle::run_json("pack_oracle.py", &["run-networkx", path_str(&ours_path)?])?;
    ensure!(
        ran["path"] == ran["expected"] && ran["from_package"] == true,
        "{ran}"
    );
    Ok(Checked {
        summary: format!(
            "networkx packaged by tpkg in {seconds:.2}s (PyTorch's exporter {:.2}s): {} records byte-identical to PyTorch's; PyTorch runs shortest_path from it",
            theirs["seconds"].as_f64().unwrap_or(f64::NAN),
            ours.len()
        ),
        max_abs_diff: None,
    })
}

/// Scenario: PyTorch saves resnet18 each way it saves models (`torch.save`
/// of the state dict, zip and legacy, TorchScript, `torch.export`); tpkg
/// tells each format from its content, reads its tensors and fills tch's
/// resnet18; the output equals PyTorch's.
pub fn resnet18_every_format_runs_in_tch() -> anyhow::Result<Checked> {
    use tpkg::archive::PackageReader;
    use tpkg::formats::{FileFormat, main_pickle, zip_format};
    use tpkg::tensors::PackageTensors;

    let dir = tempfile::tempdir()?;
    let made = oracle::run_json(
        "formats_resnet_oracle.py",
        &[path_str(dir.path())?, "legacy"],
    )?;
    let files = made["files"].as_array().context("oracle: no files")?;
    let mut worst = 0f64;
    let mut seen = Vec::new();
    for file in files {
        let file = file.as_str().context("oracle: file name")?;
        let path = dir.path().join(file);
        if tpkg::legacy::looks_legacy(&std::fs::read(&path)?) {
            let legacy = tpkg::legacy::LegacyFile::open(&path)?;
            let views = legacy.tensors()?;
            let borrowed: Vec<(&str, tpkg::tensors::TensorView<'_>)> =
                views.iter().map(|(p, v)| (p.as_str(), v.clone())).collect();
            let copied = tpkg::tensors::tch::to_tch(&borrowed)?;
            let named: Vec<(&str, tpkg::tch::Tensor)> =
                borrowed.iter().map(|(p, _)| *p).zip(copied).collect();
            let diff = crate::scenarios::resnet_named_in_tch(&named, &dir.path().join("io.pt"))
                .with_context(|| format!("{file} (torch.save-legacy)"))?;
            ensure!(
                diff <= 1e-4,
                "{file} (legacy): tch's output differs by {diff}"
            );
            worst = worst.max(diff);
            seen.push(format!("torch.save-legacy ({} tensors)", named.len()));
            continue;
        }
        let reader = PackageReader::open(dir.path().join(file))?;
        let format = zip_format(&reader);
        let tensors = if format == FileFormat::Pt2 {
            tpkg::pt2::pt2_tensors(&reader)?
        } else {
            let record = main_pickle(&reader, format).context("no main pickle")?;
            PackageTensors::load(&reader, &record)?
        };
        let diff = resnet_in_tch(&tensors, &dir.path().join("io.pt"))
            .with_context(|| format!("{file} ({format})"))?;
        ensure!(
            diff <= 1e-4,
            "{file} ({format}): tch's output differs from PyTorch's by {diff}"
        );
        worst = worst.max(diff);
        seen.push(format!("{format} ({} tensors)", tensors.len()));
    }
    Ok(Checked {
        summary: format!(
            "resnet18 saved as {} → format told from content → tch resnet18; same output",
            seen.join(", ")
        ),
        max_abs_diff: Some(worst),
    })
}
