//! `tpkg convert`: a pickle's tensors to safetensors, torch.save or a
//! standalone TorchScript file.

use std::path::{Path, PathBuf};

use tpkg::archive::Durability;
use tpkg::convert::ConvertOptions;

use crate::Format;

/// `tpkg convert --to FORMAT PACKAGE [RESOURCE] OUT`; `paths` is
/// `[RESOURCE] OUT` as given.
pub fn run(
    package: &Path,
    paths: &[String],
    to: Format,
    durability: Durability,
) -> anyhow::Result<()> {
    let (resource, out) = match paths {
        [out] => (None, PathBuf::from(out)),
        [resource, out] => (Some(resource.clone()), PathBuf::from(out)),
        _ => anyhow::bail!("convert takes [RESOURCE] OUT"),
    };
    let file = tpkg::formats::PyTorchFile::open(package)?;
    if to == Format::Torchscript {
        return to_torchscript(package, &file, resource, &out, durability);
    }
    let tensors = file.tensors(resource.as_deref())?;
    let report = super::progress::with_bytes("converting", |progress| {
        let options = ConvertOptions::default()
            .with_durable(durability == Durability::Fsync)
            .with_progress(progress);
        match to {
            Format::Safetensors => tpkg::convert::to_safetensors_with(&tensors, &out, options),
            Format::Pt | Format::Torchscript => {
                tpkg::convert::to_torch_save_with(&tensors, &out, options)
            }
        }
    })?;
    println!(
        "wrote {} tensors ({} storages) to {}",
        report.tensors,
        report.storages,
        out.display()
    );
    if !report.copied_contiguous.is_empty() {
        println!(
            "note: {} views were copied contiguous (safetensors has no views): {}",
            report.copied_contiguous.len(),
            report.copied_contiguous.join(", ")
        );
    }
    Ok(())
}

/// `--to torchscript`: the one ScriptModule pickled into `resource`,
/// written as a standalone TorchScript file.
fn to_torchscript(
    package: &Path,
    file: &tpkg::formats::PyTorchFile,
    resource: Option<String>,
    out: &Path,
    durability: Durability,
) -> anyhow::Result<()> {
    let tpkg::formats::PyTorchFile::Zip { reader, .. } = file else {
        anyhow::bail!(
            "{}: --to torchscript reads a ScriptModule pickled into a package",
            package.display()
        );
    };
    let resource = super::main_pickle(reader, resource)?;
    let ids = tpkg::torchscript::script_modules(reader, &resource)?;
    let [ts_id] = ids.as_slice() else {
        anyhow::bail!(
            "{resource} holds {} TorchScript modules ({ids:?}); expected exactly one",
            ids.len()
        );
    };
    tpkg::torchscript::write_standalone_with(reader, ts_id, out, durability)?;
    println!("wrote TorchScript module {ts_id} to {}", out.display());
    Ok(())
}
