//! Scenarios where tpkg writes packages and pickles and PyTorch reads them.

use std::collections::BTreeMap;

use anyhow::{bail, ensure};
use serde_json::{Value, json};
use tpkg::archive::{PackageMetadata, PackageReader, PackageWriter, WriteOptions};
use tpkg::pickle::ValueGraph;

use super::{Checked, hex, sha256_hex};
use crate::oracle;

pub(super) const README: &str = "written by tpkg\nread by PyTorch\n";
pub(super) const INIT_PY: &str =
    "import math\nfrom . import sub\nVALUE = sub.X + 1\nROOT2 = math.sqrt(2)\n";
pub(super) const SUB_PY: &str = "X = 41\n";

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

/// A value with what PyTorch's pickles hold: an OrderedDict with a
/// `_metadata` attribute, torch.Size, dtypes, devices, big ints, bytes,
/// sets, nested and shared containers, and a cycle.
pub(super) fn rich_value() -> ValueGraph {
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
