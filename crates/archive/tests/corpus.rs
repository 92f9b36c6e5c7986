//! Every package real PyTorch (2.13.0 and 2.0.1) wrote opens, in zip and
//! directory form, and says what its manifest says.

mod common;

use common::{corpus_packages, strings};
use tpkg_archive::{Compression, PackageFormat, PackageMetadata, PackageReader};

#[test]
fn every_corpus_zip_matches_its_manifest() {
    for package in corpus_packages() {
        let context = format!("{}/{}", package.torch, package.file);
        let reader = PackageReader::open(&package.path).unwrap();
        assert_eq!(reader.format(), PackageFormat::Zip);
        assert_eq!(reader.prefix(), package.manifest["prefix"], "{context}");

        let mut names: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
        names.sort();
        assert_eq!(names, strings(&package.manifest["records"]), "{context}");

        let metadata = PackageMetadata::read(&reader).unwrap();
        assert_eq!(
            metadata.extern_modules.unwrap(),
            strings(&package.manifest["extern_modules"]),
            "{context}"
        );
        assert_eq!(
            metadata.python_version.as_deref(),
            package.manifest["python_version"].as_str(),
            "{context}"
        );
        assert_eq!(metadata.version, Some(6), "{context}");
        reader.verify().unwrap();
    }
}

#[test]
fn pytorch_stores_every_record_64_byte_aligned_and_zero_copy_readable() {
    for package in corpus_packages() {
        let reader = PackageReader::open(&package.path).unwrap();
        for record in reader.records() {
            assert_eq!(record.compression, Compression::Stored);
            assert_eq!(record.data_offset.unwrap() % 64, 0, "{}", record.name);
            let slice = reader.stored_slice(&record.name).unwrap().unwrap();
            assert_eq!(slice, &reader.read(&record.name).unwrap()[..]);
            assert_eq!(slice.len() as u64, record.size);
        }
    }
}

#[test]
fn pytorch_2_13_writes_byteorder_and_serialization_id_and_2_0_does_not() {
    for package in corpus_packages() {
        let reader = PackageReader::open(&package.path).unwrap();
        let metadata = PackageMetadata::read(&reader).unwrap();
        if package.torch == "torch-2.13.0" {
            assert_eq!(metadata.byteorder.as_deref(), Some("little"));
            let id = metadata.serialization_id.unwrap();
            assert_eq!(id.len(), 40);
            assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
        } else {
            assert_eq!(metadata.byteorder, None);
            assert_eq!(metadata.serialization_id, None);
        }
    }
}

#[test]
fn directory_form_lists_the_same_records_with_the_same_bytes() {
    for package in corpus_packages() {
        let Some(dir_form) = package.manifest["directory_form"].as_str() else {
            continue;
        };
        let zip = PackageReader::open(&package.path).unwrap();
        let folder = package
            .path
            .parent()
            .unwrap()
            .join(dir_form)
            .join(zip.prefix());
        let dir = PackageReader::open(&folder).unwrap();
        assert_eq!(dir.format(), PackageFormat::Directory);
        assert_eq!(dir.prefix(), zip.prefix());
        assert!(dir.has_record("model/__init__.py"));
        assert!(!dir.has_record("model"));
        let mut zip_names: Vec<&str> = zip.records().iter().map(|r| r.name.as_str()).collect();
        zip_names.sort();
        let dir_names: Vec<&str> = dir.records().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(dir_names, zip_names, "{}", package.file);
        for name in dir_names {
            assert_eq!(dir.read(name).unwrap(), zip.read(name).unwrap(), "{name}");
            assert_eq!(dir.stored_slice(name).unwrap(), None);
        }
        assert_eq!(
            PackageMetadata::read(&dir).unwrap(),
            PackageMetadata::read(&zip).unwrap()
        );
    }
}

#[test]
fn reading_a_missing_record_names_it() {
    let package = &corpus_packages()[0];
    let reader = PackageReader::open(&package.path).unwrap();
    let error = reader.read("no/such.txt").unwrap_err().to_string();
    assert!(error.contains("no record named \"no/such.txt\""), "{error}");
    assert!(error.contains(&package.file), "{error}");
}
