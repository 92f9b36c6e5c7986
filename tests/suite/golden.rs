//! Backward compatibility: the golden files old PyTorch wrote
//! (`tests/data/golden`, made once by `cargo xtask golden`: PyTorch 1.10.2
//! on Python 3.8, PyTorch 2.0.1 on Python 3.11) read in tpkg exactly as their
//! manifests say. No Python runs here.

use std::path::Path;

use serde_json::Value;
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

/// Both versions have every package kind, and the torch.save files the
/// formats work will read are there with their manifests.
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
        assert!(files.contains_key("state_dict.pt"), "{version}");
        for (file, entry) in files {
            assert!(
                saves.join(file).is_file(),
                "{version}: no torch_save/{file}"
            );
            assert!(
                !entry["tensors"].as_array().unwrap().is_empty(),
                "{version}: {file}"
            );
        }
    }
}

/// The zip-format `torch.save` files read in tpkg as their manifest says:
/// records, value image and every tensor (with SHA-256). (The legacy file:
/// `golden_legacy_torch_save_file_reads_as_its_manifest_says`.)
#[test]
fn golden_torch_save_zip_files_read_as_their_manifests_say() {
    use tpkg::archive::PackageReader;
    use tpkg::tensors::{PackageTensors, tensor_json};

    let mut files = 0;
    for version in corpus::GOLDEN_VERSIONS {
        let dir = corpus::golden_root().join(version).join("torch_save");
        let manifest = read_json(&dir.join("manifest.json"));
        for (file, entry) in manifest.as_object().unwrap() {
            if entry["format"] != "zip" {
                continue;
            }
            let label = format!("{version}/torch_save/{file}");
            let reader = PackageReader::open(dir.join(file)).unwrap();
            reader.verify().unwrap();
            assert_eq!(reader.prefix(), entry["prefix"], "{label}");
            let mut names: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
            names.sort();
            assert_eq!(names, corpus::strings(&entry["records"]), "{label}");
            let loaded = PackageTensors::load(&reader, "data.pkl").unwrap();
            let image = tpkg::show::image(loaded.graph()).unwrap();
            assert_eq!(image, entry["value"], "{label}");
            let ours: Vec<_> = (0..loaded.len())
                .map(|index| tensor_json(loaded.path(index), &loaded.view(index).unwrap()))
                .collect();
            assert_eq!(Value::from(ours), entry["tensors"], "{label}");
            files += 1;
        }
    }
    assert_eq!(files, corpus::GOLDEN_VERSIONS.len());
}

/// The legacy `torch.save` file torch 1.10.2 wrote
/// (`_use_new_zipfile_serialization=False`) reads in tpkg as its manifest
/// says: value image, every tensor (with SHA-256) and which tensors share a
/// storage.
#[test]
fn golden_legacy_torch_save_file_reads_as_its_manifest_says() {
    use tpkg::legacy::{LegacyFile, looks_legacy};
    use tpkg::tensors::tensor_json;

    let mut files = 0;
    for version in corpus::GOLDEN_VERSIONS {
        let dir = corpus::golden_root().join(version).join("torch_save");
        let manifest = read_json(&dir.join("manifest.json"));
        for (file, entry) in manifest.as_object().unwrap() {
            if entry["format"] != "legacy" {
                continue;
            }
            let label = format!("{version}/torch_save/{file}");
            let path = dir.join(file);
            assert!(looks_legacy(&std::fs::read(&path).unwrap()), "{label}");
            let legacy = LegacyFile::open(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(legacy.pickles().len(), 5, "{label}");
            assert_eq!(legacy.sys_info().little_endian, Some(true), "{label}");
            assert!(legacy.trailing().is_empty(), "{label}");
            let image = tpkg::show::image(legacy.graph()).unwrap();
            assert_eq!(image, entry["value"], "{label}");
            let tensors = legacy.tensors().unwrap();
            let ours: Vec<_> = tensors
                .iter()
                .map(|(path, view)| tensor_json(path, view))
                .collect();
            assert_eq!(Value::from(ours), entry["tensors"], "{label}");
            // Paths sharing a storage, grouped in order of first use.
            let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
            for (path, view) in &tensors {
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
                "{label}"
            );
            files += 1;
        }
    }
    assert_eq!(files, 1, "torch 1.10.2 wrote the only legacy file");
}
