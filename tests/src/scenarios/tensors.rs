//! Scenarios over tensors: tpkg's tensors loaded by PyTorch, a resnet18
//! converted to safetensors and torch.save.

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
use tpkg::pickle::ValueGraph;

use super::Checked;
use super::tch::resnet_in_tch;
use crate::oracle;

/// Writes `dir/tensors.pt`: the storages and `graph` pickled at
/// `tensors/all.pkl`, with the externs a tensor pickle needs.
pub(super) fn write_tensor_package(
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
pub(super) fn set_dict_root<'n>(
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
pub(super) fn sample_storage(dtype: tpkg::tensors::DType, numel: usize) -> Vec<u8> {
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
pub(super) struct Layout<'a>(&'a [u64], &'a [u64], u64);

/// Builds the graph of the `tpkg-tensors` scenario and remembers what each
/// tensor must look like once PyTorch has loaded it.
pub(super) struct TensorCase {
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

/// The tensors of the `tpkg-tensors` scenario: every dtype, then every
/// layout (scalar, empty, transposed, strided, offset, expanded,
/// channels-last, shared views, requires_grad, Parameters).
fn tensor_case() -> anyhow::Result<TensorCase> {
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
    Ok(case)
}

/// Tensors of every dtype and layout, written by tpkg (one record per
/// storage, views sharing one), load in PyTorch's `PackageImporter` with
/// equal values, dtypes, shapes, strides, offsets, requires_grad,
/// Parameter type and storage sharing.
pub fn tpkg_tensors_load_in_pytorch() -> anyhow::Result<Checked> {
    use tpkg::tensors::DType;

    let TensorCase {
        tensors,
        mut graph,
        storages,
        entries,
    } = tensor_case()?;

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
