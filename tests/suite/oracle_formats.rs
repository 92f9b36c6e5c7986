//! Every zip PyTorch format, written live by the pinned PyTorch, reads in
//! tpkg with the tensors PyTorch's own loader gives (`torch.load`,
//! `torch.export.load`, `torch.jit.load`): same paths, dtypes, shapes, strides, offsets and
//! element bytes.

use serde_json::Value;
use tpkg::archive::PackageReader;
use tpkg::formats::{FileFormat, main_pickle, zip_format};
use tpkg::tensors::{PackageTensors, tensor_json};
use tpkg_tests::oracle;

/// The fields both sides give, by path.
fn rows(tensors: &[Value]) -> Vec<(String, Value)> {
    let mut rows: Vec<(String, Value)> = tensors
        .iter()
        .map(|row| {
            let kept: serde_json::Map<String, Value> =
                ["dtype", "shape", "stride", "storage_offset", "sha256"]
                    .iter()
                    .map(|field| ((*field).to_owned(), row[*field].clone()))
                    .collect();
            (
                row["path"].as_str().unwrap_or_default().to_owned(),
                Value::Object(kept),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn zip_formats_read_as_pytorch_loads_them() {
    let dir = tempfile::tempdir().unwrap();
    let report = oracle::run_json("formats_oracle.py", &[dir.path().to_str().unwrap()]).unwrap();
    let files = report.as_object().unwrap();
    assert_eq!(files.len(), 4);
    for (file, expected) in files {
        let reader = PackageReader::open(dir.path().join(file)).unwrap();
        let format = zip_format(&reader);
        assert_eq!(format.name(), expected["format"], "{file}");
        let tensors = if format == FileFormat::Pt2 {
            tpkg::pt2::pt2_tensors(&reader).unwrap()
        } else {
            let record = main_pickle(&reader, format).unwrap();
            PackageTensors::load(&reader, &record).unwrap()
        };
        let ours: Vec<Value> = (0..tensors.len())
            .map(|i| tensor_json(tensors.path(i), &tensors.view(i).unwrap()))
            .collect();
        let theirs = expected["tensors"].as_array().unwrap();
        assert!(
            theirs.len() >= 4,
            "{file}: the oracle gave {} tensors",
            theirs.len()
        );
        assert_eq!(rows(&ours), rows(theirs), "{file}");
    }
}
