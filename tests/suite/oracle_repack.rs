//! Repackaging against PyTorch: whole-model packages PyTorch wrote (a
//! torchvision resnet18, as in PyTorch's `test_model.py`), repackaged by
//! tpkg, load in PyTorch and give PyTorch's output exactly.

use std::path::Path;

use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
use tpkg::importer::PackageImporter;
use tpkg::pickle::{DecodeOptions, Symbolic, Value};
use tpkg::pysource::ModuleFinder;
use tpkg::repackage::{Rules, repackage};
use tpkg_tests::oracle;

fn record_names(path: &Path) -> Vec<String> {
    let reader = PackageReader::open(path).unwrap();
    let mut names: Vec<String> = reader
        .records()
        .iter()
        .map(|r| r.name.clone())
        .filter(|n| n != ".data/serialization_id")
        .collect();
    names.sort();
    names
}

/// `input` with every `torchvision` global of `model/model.pkl` mangled as
/// a pickler without the importer would leave it
/// (`<torch_package_0>.torchvision.models.resnet`), everything else copied.
fn with_mangled_globals(input: &Path, output: &Path) {
    let reader = PackageReader::open(input).unwrap();
    let mut writer = PackageWriter::create(output, WriteOptions::default()).unwrap();
    for record in reader.records() {
        let name = record.name.as_str();
        if [
            ".data/extern_modules",
            ".data/python_version",
            ".data/version",
            ".data/serialization_id",
            "byteorder",
        ]
        .contains(&name)
        {
            continue;
        }
        let bytes = reader.read(name).unwrap();
        if name == "model/model.pkl" {
            let mut graph =
                tpkg::pickle::decode_with(&bytes, &DecodeOptions::default(), &Symbolic).unwrap();
            let ids: Vec<_> = graph.iter().map(|(id, _)| id).collect();
            for id in ids {
                if let Value::Global { module, .. } = graph.get_mut(id)
                    && module.starts_with("torchvision")
                {
                    *module = format!("<torch_package_0>.{module}");
                }
            }
            let mangled = tpkg::pickle::encode(&graph, bytes[1]).unwrap();
            assert!(
                tpkg::pickle::scan_globals(&mangled)
                    .iter()
                    .any(|g| g.module.starts_with("<torch_package_0>.")),
            );
            writer.write_record(name, &mangled).unwrap();
        } else {
            writer.write_record(name, &bytes).unwrap();
        }
    }
    let metadata = tpkg::archive::PackageMetadata::read(&reader).unwrap();
    writer
        .write_extern_modules(&metadata.extern_modules.unwrap_or_default())
        .unwrap();
    writer.finish().unwrap();
}

#[test]
fn repackaged_whole_models_run_in_pytorch_with_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let dir_str = dir.path().to_str().unwrap();
    oracle::run_json("repack_oracle.py", &["make", dir_str]).unwrap();
    let finder = ModuleFinder::from_python(&oracle::python().unwrap()).unwrap();

    let first = dir.path().join("first.pt");
    let second = dir.path().join("second.pt");
    let mangled = dir.path().join("mangled.pt");
    with_mangled_globals(&first, &mangled);

    let mut outputs = Vec::new();
    for (input, name) in [
        (&first, "r_first.pt"),
        (&second, "r_second.pt"),
        (&mangled, "r_mangled.pt"),
    ] {
        let importer = PackageImporter::open(input).unwrap();
        let output = dir.path().join(name);
        let report = repackage(&importer, &output, finder.clone(), &Rules::default()).unwrap();
        assert!(
            report
                .interned
                .iter()
                .any(|m| m == "torchvision.models.resnet")
        );
        if input == &mangled {
            assert_eq!(report.reencoded_pickles, ["model/model.pkl"]);
        } else {
            assert!(report.reencoded_pickles.is_empty());
            // The same records: sources, mocks, pickle, storages, bookkeeping.
            let (ours, theirs) = (record_names(&output), record_names(input));
            let only_ours: Vec<_> = ours.iter().filter(|n| !theirs.contains(n)).collect();
            let only_theirs: Vec<_> = theirs.iter().filter(|n| !ours.contains(n)).collect();
            assert!(
                only_ours.is_empty() && only_theirs.is_empty(),
                "{name}: only in tpkg's {only_ours:?}, only in the input {only_theirs:?}"
            );
        }
        outputs.push(output);
    }
    let mut args = vec!["check".to_owned(), dir_str.to_owned()];
    args.extend(outputs.iter().map(|p| p.to_str().unwrap().to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = oracle::run_json("repack_oracle.py", &args).unwrap();
    for name in ["r_first.pt", "r_second.pt", "r_mangled.pt"] {
        assert_eq!(checked[name]["max_abs_diff"], 0.0, "{name}: {checked}");
        assert_eq!(checked[name]["from_package"], true, "{name}: {checked}");
    }
}
