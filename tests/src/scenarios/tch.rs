//! Scenarios with tch (libtorch from Rust): tensors both ways, resnet18.

use anyhow::{Context, ensure};
use serde_json::json;
use tpkg::archive::PackageReader;
use tpkg::pickle::ValueGraph;

use super::tensors::{set_dict_root, write_tensor_package};
use super::{Checked, sha256_hex};
use crate::{corpus, oracle};

/// Corpus tensors become tch tensors with equal elements, views sharing one
/// libtorch buffer; tch tensors (a base, a transposed view, a narrowed view,
/// a Parameter) written by tpkg load in PyTorch with equal values and one
/// shared storage.
pub fn tch_tensors_both_ways() -> anyhow::Result<Checked> {
    use tpkg::tch::{Kind, Tensor};
    use tpkg::tensors::tch::{encode_tch, to_tch};

    // PyTorch → tch.
    let corpus = corpus::root().join("torch-2.13.0/values_p3.pt");
    let reader = PackageReader::open(&corpus)?;
    let loaded = tpkg::tensors::PackageTensors::load(&reader, "data/tensors.pkl")?;
    let mut views = Vec::new();
    for index in 0..loaded.len() {
        views.push((loaded.path(index), loaded.view(index)?));
    }
    let tch_tensors = to_tch(&views)?;
    for ((path, view), tensor) in views.iter().zip(&tch_tensors) {
        let contiguous = tensor.contiguous();
        let mut bytes = vec![0u8; view.contiguous_bytes().len()];
        contiguous.f_copy_data_u8(&mut bytes, view.numel() as usize)?;
        ensure!(
            bytes == view.contiguous_bytes().as_ref(),
            "{path}: tch holds other elements"
        );
        ensure!(
            tensor.requires_grad() == view.spec().requires_grad,
            "{path}: requires_grad"
        );
        ensure!(
            tensor
                .stride()
                .iter()
                .map(|&s| s as u64)
                .collect::<Vec<_>>()
                == view.stride(),
            "{path}: strides"
        );
    }
    // Zero-copy: the same tensors over the memory map itself.
    // SAFETY: `reader` outlives `borrowed`, which is only read.
    let borrowed = unsafe { tpkg::tensors::tch::to_tch_borrowed(&views)? };
    for (((path, view), copied), zero_copy) in views.iter().zip(&tch_tensors).zip(&borrowed) {
        ensure!(copied.equal(zero_copy), "{path}: borrowed tensor differs");
        let map = view.storage_bytes().as_ptr_range();
        let pointer = zero_copy.data_ptr() as *const u8;
        ensure!(
            view.numel() == 0 || map.contains(&pointer),
            "{path}: not a view of the memory map"
        );
    }
    let position = |name: &str| views.iter().position(|(p, _)| *p == name).unwrap_or(0);
    let (a, b) = (
        &tch_tensors[position("shared_a")],
        &tch_tensors[position("shared_b")],
    );
    ensure!(
        b.data_ptr() as usize == a.data_ptr() as usize + 4 * 4,
        "shared_a and shared_b do not alias in tch"
    );

    // tch → PyTorch.
    let base = Tensor::arange(24, (Kind::Float, tpkg::tch::Device::Cpu)).reshape([4, 6]);
    let transposed = base.transpose(0, 1);
    let narrowed = base.narrow(0, 1, 2);
    let weight = Tensor::ones([3], (Kind::Double, tpkg::tch::Device::Cpu)).set_requires_grad(true);
    let named: Vec<(&str, &Tensor, bool)> = vec![
        ("base", &base, false),
        ("transposed", &transposed, false),
        ("narrowed", &narrowed, false),
        ("weight", &weight, true),
    ];
    let mut encoder = tpkg::tensors::TensorEncoder::new();
    let mut graph = ValueGraph::new(tpkg::pickle::Value::None);
    let (nodes, storages) = encode_tch(&mut graph, &mut encoder, &named)?;
    set_dict_root(
        &mut graph,
        named.iter().map(|(name, _, _)| *name).zip(nodes),
    );
    let dir = tempfile::tempdir()?;
    let path = write_tensor_package(dir.path(), &graph, encoder.storages(), &storages)?;
    let seen = oracle::run_json(
        "tensor_oracle.py",
        &[path.to_str().context("path")?, "tensors", "all.pkl"],
    )?;
    for (name, tensor, parameter) in &named {
        let theirs = &seen["tensors"][*name];
        ensure!(
            theirs["parameter"] == *parameter,
            "{name}: parameter flag {theirs}"
        );
        ensure!(
            theirs["requires_grad"] == tensor.requires_grad(),
            "{name}: requires_grad"
        );
        let shape: Vec<i64> = serde_json::from_value(theirs["shape"].clone())?;
        let stride: Vec<i64> = serde_json::from_value(theirs["stride"].clone())?;
        ensure!(
            shape == tensor.size() && stride == tensor.stride(),
            "{name}: layout {theirs}"
        );
        let ours = tensor.contiguous();
        let mut bytes = vec![0u8; ours.numel() * ours.kind().elt_size_in_bytes()];
        ours.f_copy_data_u8(&mut bytes, ours.numel())?;
        ensure!(
            theirs["sha256"] == sha256_hex(&bytes).as_str(),
            "{name}: values differ"
        );
    }
    ensure!(
        seen["shared"] == json!([["base", "transposed", "narrowed"]]),
        "sharing in PyTorch: {}",
        seen["shared"]
    );
    ensure!(
        storages.len() == 2,
        "{} storage records for 2 buffers",
        storages.len()
    );
    Ok(Checked {
        summary: format!(
            "{} corpus tensors into tch, copied or zero-copy over the map (views alias); 4 tch tensors (3 views of one buffer, a Parameter) load in PyTorch with 1 shared storage",
            tch_tensors.len()
        ),
        // Elements are compared bit for bit (SHA-256).
        max_abs_diff: Some(0.0),
    })
}

/// Fills `tch::vision::resnet::resnet18` from the package's tensors, runs the
/// saved input (read from the `torch.save` file by tpkg) and returns the max
/// abs difference from PyTorch's saved output.
pub(crate) fn resnet_in_tch(
    tensors: &tpkg::tensors::PackageTensors<'_>,
    io: &std::path::Path,
) -> anyhow::Result<f64> {
    // Copied into libtorch storage by storage, the map released behind.
    let named: Vec<(&str, tpkg::tch::Tensor)> = (0..tensors.len())
        .map(|index| tensors.path(index))
        .zip(tensors.to_tch()?)
        .collect();
    resnet_named_in_tch(&named, io)
}

/// [`resnet_in_tch`] for tensors already in tch, by state-dict name.
pub(crate) fn resnet_named_in_tch(
    named: &[(&str, tpkg::tch::Tensor)],
    io: &std::path::Path,
) -> anyhow::Result<f64> {
    use tpkg::tch::nn::ModuleT;
    use tpkg::tensors::tch::{fill_var_store, to_tch};

    let store = tpkg::tch::nn::VarStore::new(tpkg::tch::Device::Cpu);
    let model = tpkg::tch::vision::resnet::resnet18(&store.root(), 1000);
    let report = fill_var_store(&store, named)?;
    ensure!(
        report.missing.is_empty(),
        "tch variables not filled: {:?}",
        report.missing
    );
    ensure!(
        report
            .unexpected
            .iter()
            .all(|name| name.ends_with("num_batches_tracked")),
        "state-dict entries tch has no variable for: {:?}",
        report.unexpected
    );

    let io_reader = PackageReader::open(io)?;
    let io_tensors = tpkg::tensors::PackageTensors::load(&io_reader, "data.pkl")?;
    let mut io_views = Vec::new();
    for index in 0..io_tensors.len() {
        io_views.push((io_tensors.path(index), io_tensors.view(index)?));
    }
    let io = to_tch(&io_views)?;
    let find = |name: &str| {
        io_views
            .iter()
            .position(|(p, _)| *p == name)
            .context("io tensor")
    };
    let (input, expected) = (&io[find("input")?], &io[find("output")?]);
    let output = tpkg::tch::no_grad(|| model.forward_t(input, false));
    Ok((output - expected).abs().max().double_value(&[]))
}
