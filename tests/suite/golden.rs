//! Backward compatibility: the golden files old PyTorch wrote
//! (`tests/data/golden`, made once by `cargo xtask golden`: PyTorch 1.10.2
//! on Python 3.8, PyTorch 2.0.1 on Python 3.11) read in tpkg exactly as their
//! manifests say. No Python runs here.

use std::path::Path;

use serde_json::Value;
use tpkg::formats::{FileFormat, PyTorchFile};
use tpkg_tests::{corpus, scenarios};

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_golden_package_reads_as_its_manifest_says() {
    if let Err(error) = scenarios::golden_packages_read() {
        panic!("{error:?}");
    }
}

#[test]
fn importer_reads_every_golden_package() {
    let packages = corpus::golden_packages().unwrap();
    let pickles = scenarios::importer_reads_packages(&packages).unwrap();
    assert!(pickles >= 20, "{pickles}");
}

/// The `torch.save`-family files each version wrote (`torch_save/`), by
/// their manifest's `format`.
const TORCH_SAVE_FILES: [(&str, &[&str]); 4] = [
    (
        "zip",
        &[
            "checkpoint.pt",
            "dtypes.pt",
            "state_dict.pt",
            "whole_module.pt",
        ],
    ),
    (
        "legacy",
        &[
            "checkpoint_legacy.pt",
            "dtypes_legacy.pt",
            "state_dict_legacy.pt",
        ],
    ),
    ("torchscript", &["torchscript_module.pt"]),
    ("pickle", &["plain.pkl"]),
];

/// The format `PyTorchFile` must tell for a manifest's `format`.
fn file_format(manifest_format: &str) -> FileFormat {
    match manifest_format {
        "zip" => FileFormat::TorchSave,
        "legacy" => FileFormat::TorchSaveLegacy,
        "torchscript" => FileFormat::TorchScript,
        "pickle" => FileFormat::Pickle,
        other => panic!("unknown torch_save format {other:?}"),
    }
}

/// Both versions have every package kind, and every `torch.save`-family
/// file with its manifest entry.
#[test]
fn golden_sets_are_complete() {
    for version in corpus::GOLDEN_VERSIONS {
        let dir = corpus::golden_root().join(version);
        let manifest = read_json(&dir.join("manifest.json"));
        for file in [
            "values_p3.pt",
            "tiny_state_dict.pt",
            "tiny_whole_module.pt",
            "torchvision_squeezenet.pt",
            "torchscript.pt",
            "many_tensors.pt",
            "cycle.pt",
            "sources_and_resources.pt",
            "mocked.pt",
        ] {
            assert!(manifest.get(file).is_some(), "{version}: no {file}");
            assert!(dir.join(file).is_file(), "{version}: no {file}");
        }
        let saves = dir.join("torch_save");
        let manifest = read_json(&saves.join("manifest.json"));
        let files = manifest.as_object().unwrap();
        let mut expected: Vec<(&str, &str)> = TORCH_SAVE_FILES
            .iter()
            .flat_map(|(format, names)| names.iter().map(move |name| (*name, *format)))
            .collect();
        expected.sort();
        let listed: Vec<(&str, &str)> = files
            .iter()
            .map(|(file, entry)| (file.as_str(), entry["format"].as_str().unwrap()))
            .collect();
        assert_eq!(listed, expected, "{version}: torch_save/manifest.json");
        for (file, entry) in files {
            assert!(
                saves.join(file).is_file(),
                "{version}: no torch_save/{file}"
            );
            assert!(
                !entry["tensors"].as_array().unwrap().is_empty(),
                "{version}: {file}"
            );
            assert_eq!(
                entry["torch"].as_str(),
                version.strip_prefix("torch-"),
                "{version}: {file}"
            );
        }
    }
}

/// Every `torch.save`-family file is told apart by its content, through
/// the one entry point.
#[test]
fn golden_torch_save_family_formats_are_told_from_content() {
    let mut files = 0;
    for version in corpus::GOLDEN_VERSIONS {
        let dir = corpus::golden_root().join(version).join("torch_save");
        let manifest = read_json(&dir.join("manifest.json"));
        for (file, entry) in manifest.as_object().unwrap() {
            let opened = PyTorchFile::open(dir.join(file))
                .unwrap_or_else(|e| panic!("{version}/torch_save/{file}: {e}"));
            let want = file_format(entry["format"].as_str().unwrap());
            assert_eq!(opened.format(), want, "{version}/torch_save/{file}");
            files += 1;
        }
    }
    let per_version: usize = TORCH_SAVE_FILES.iter().map(|(_, names)| names.len()).sum();
    assert_eq!(files, per_version * corpus::GOLDEN_VERSIONS.len());
}

/// Reads every golden `torch.save`-family file of manifest format `format`
/// through `PyTorchFile` and checks it against its manifest entry; panics
/// on the first difference. Returns the files checked, and fails unless
/// they are exactly the files of that format in every version.
fn check_torch_save_files(format: &str) -> usize {
    let mut checked = Vec::new();
    for version in corpus::GOLDEN_VERSIONS {
        let dir = corpus::golden_root().join(version).join("torch_save");
        let manifest = read_json(&dir.join("manifest.json"));
        for (file, entry) in manifest.as_object().unwrap() {
            if entry["format"] != format {
                continue;
            }
            let label = format!("{version}/torch_save/{file}");
            check_torch_save_file(&dir.join(file), entry, &label);
            checked.push(label);
        }
    }
    let names = TORCH_SAVE_FILES
        .iter()
        .find(|(name, _)| *name == format)
        .map(|(_, names)| *names)
        .unwrap_or_else(|| panic!("unknown torch_save format {format:?}"));
    let mut expected: Vec<String> = corpus::GOLDEN_VERSIONS
        .iter()
        .flat_map(|version| {
            names
                .iter()
                .map(move |n| format!("{version}/torch_save/{n}"))
        })
        .collect();
    expected.sort();
    checked.sort();
    assert_eq!(checked, expected, "{format} files checked");
    checked.len()
}

/// One file as its manifest entry says: the format told from its content;
/// for zips the records and prefix, for legacy streams their layout; the
/// value image of the main object (where PyTorch's loader gives one: not
/// for TorchScript, which `torch.jit.load` builds by running code); every
/// tensor (with SHA-256), in order; which tensors share a storage.
fn check_torch_save_file(path: &Path, entry: &Value, label: &str) {
    use tpkg::legacy::looks_legacy;
    use tpkg::tensors::TensorSummary;

    let file = PyTorchFile::open(path).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(
        file.format(),
        file_format(entry["format"].as_str().unwrap()),
        "{label}"
    );
    assert_eq!(
        entry.get("records").is_some(),
        file.format().is_zip(),
        "{label}: records listed for zip formats only"
    );
    match &file {
        PyTorchFile::Zip { reader, .. } => {
            reader.verify().unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(reader.prefix(), entry["prefix"], "{label}");
            let mut names: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
            names.sort();
            assert_eq!(names, corpus::strings(&entry["records"]), "{label}");
        }
        PyTorchFile::Legacy(legacy) => {
            assert!(looks_legacy(&std::fs::read(path).unwrap()), "{label}");
            assert_eq!(legacy.pickles().len(), 5, "{label}");
            assert_eq!(legacy.sys_info().little_endian, Some(true), "{label}");
            assert!(legacy.trailing().is_empty(), "{label}");
        }
        PyTorchFile::Pickle(_) => {}
    }
    let tensors = file
        .tensors(None)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    if entry["value"].is_null() {
        assert_eq!(
            file.format(),
            FileFormat::TorchScript,
            "{label}: no value image"
        );
    } else {
        let image = tpkg::show::image(tensors.graph()).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(image, entry["value"], "{label}: value image");
    }
    let views: Vec<_> = (0..tensors.len())
        .map(|index| {
            let view = tensors
                .view(index)
                .unwrap_or_else(|e| panic!("{label}: {}: {e}", tensors.path(index)));
            (tensors.path(index), view)
        })
        .collect();
    let ours: Vec<Value> = views
        .iter()
        .map(|(path, view)| serde_json::to_value(TensorSummary::of(path, view)).unwrap())
        .collect();
    assert_eq!(Value::from(ours), entry["tensors"], "{label}: tensors");
    // Paths sharing a storage, grouped in order of first use.
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (path, view) in &views {
        let key = view.spec().storage.key.as_str();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, paths)) => paths.push(path),
            None => groups.push((key, vec![path])),
        }
    }
    let shared: Vec<Vec<&str>> = groups
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|(_, paths)| paths)
        .collect();
    assert_eq!(
        serde_json::json!(shared),
        entry["shared_storages"],
        "{label}: shared storages"
    );
}

/// Zip `torch.save` files (a state dict, every dtype, a training
/// checkpoint, a whole `nn.Module`) read as their manifests say.
#[test]
fn golden_torch_save_zip_files_read_as_their_manifests_say() {
    assert_eq!(check_torch_save_files("zip"), 8);
}

/// Legacy `torch.save` files (`_use_new_zipfile_serialization=False`) of
/// the same values read as their manifests say.
#[test]
fn golden_legacy_torch_save_files_read_as_their_manifests_say() {
    assert_eq!(check_torch_save_files("legacy"), 6);
}

/// `torch.jit.save` files: the tensors are the loaded module's state dict.
#[test]
fn golden_torchscript_files_read_as_their_manifests_say() {
    assert_eq!(check_torch_save_files("torchscript"), 2);
}

/// `pickle.dump` files: each storage is `torch.storage._load_from_bytes`
/// of a nested legacy `torch.save` of it.
#[test]
fn golden_pickle_files_read_as_their_manifests_say() {
    assert_eq!(check_torch_save_files("pickle"), 2);
}
