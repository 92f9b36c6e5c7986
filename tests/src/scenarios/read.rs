//! Scenarios where PyTorch writes and tpkg reads: the corpus, the golden
//! files, fresh packages.

use std::collections::BTreeMap;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, Value as Json};
use tpkg::archive::{PackageMetadata, PackageReader};

use super::{Checked, sha256_hex, sorted_names};
use crate::{corpus, oracle};

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
pub(super) fn has_source(reader: &PackageReader, module: &str) -> bool {
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
pub(super) fn script_modules_run(
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
