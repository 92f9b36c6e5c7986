//! Every zip PyTorch format, written live by the pinned PyTorch, reads in
//! tpkg with the tensors PyTorch's own loader gives (`torch.load`,
//! `torch.export.load`, `torch.jit.load`): same paths, dtypes, shapes, strides, offsets and
//! element bytes.

use serde_json::Value;
use tpkg::formats::PyTorchFile;
use tpkg::tensors::TensorSummary;
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

/// Every case of `formats_oracle.py` (a file, or `file:pickle` for a
/// pickle of a package) through the one entry point,
/// [`PyTorchFile`]: zip and big-endian `torch.save`, TorchScript, `.pt2`,
/// TorchScript modules and fx `GraphModule`s pickled into a package, plain
/// tensor attributes, float8 over an `UntypedStorage`, plain pickle files
/// of every protocol and several pickles in a row.
#[test]
fn every_format_reads_as_pytorch_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let report = oracle::run_json("formats_oracle.py", &[dir.path().to_str().unwrap()]).unwrap();
    let cases = report.as_object().unwrap();
    assert_eq!(cases.len(), 17, "{:?}", cases.keys());
    let mut formats = std::collections::BTreeSet::new();
    for (case, expected) in cases {
        let (file, pickle) = match case.split_once(':') {
            Some((file, pickle)) => (file, Some(pickle)),
            None => (case.as_str(), None),
        };
        let opened = PyTorchFile::open(dir.path().join(file)).unwrap();
        assert_eq!(opened.format().name(), expected["format"], "{case}");
        formats.insert(opened.format().name());
        let tensors = opened
            .tensors(pickle)
            .unwrap_or_else(|error| panic!("{case}: {error:?}"));
        let ours: Vec<Value> = (0..tensors.len())
            .map(|i| {
                serde_json::to_value(TensorSummary::of(
                    tensors.path(i),
                    &tensors.view(i).unwrap(),
                ))
                .unwrap()
            })
            .collect();
        let theirs = expected["tensors"].as_array().unwrap();
        assert!(
            theirs.len() >= 2,
            "{case}: the oracle gave {} tensors",
            theirs.len()
        );
        assert_eq!(rows(&ours), rows(theirs), "{case}");
    }
    assert_eq!(formats.len(), 5, "{formats:?}");
}
