//! `inspect`'s summary block: format, versions, module counts, pickles and
//! what each holds, tensors by dtype (from [`tpkg::inspect::Summary`]).

use std::io::{self, Write};

use tpkg::formats::FileFormat;
use tpkg::inspect::{Holds, PickleSummary, Summary};

use super::Container;

/// Keys of a checkpoint dict shown on its pickle's line.
const KEYS_SHOWN: usize = 8;

/// Bytes as a person reads them: `512 B`, `1.5 KiB`, `44.7 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The format as people call it.
fn format_name(format: FileFormat, container: Container) -> String {
    let name = match format {
        FileFormat::Package => "torch.package",
        FileFormat::TorchSave => "torch.save",
        FileFormat::TorchSaveLegacy => "torch.save, legacy",
        FileFormat::TorchScript => "TorchScript",
        FileFormat::Pt2 => "torch.export (.pt2)",
        _ => "pickle",
    };
    format!("{name} ({container})")
}

/// `n things` with `thing` made plural when `n` is not 1.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// What one pickle holds, in words.
pub fn holds_text(pickle: &PickleSummary) -> String {
    let tensors = pickle.tensors.unwrap_or(0);
    let with_tensors = if tensors > 0 {
        format!(", {}", plural(tensors, "tensor"))
    } else {
        String::new()
    };
    match &pickle.holds {
        Holds::StateDict => format!("state dict of {}", plural(tensors, "tensor")),
        Holds::Module { class } => format!("whole module {class}{with_tensors}"),
        Holds::ScriptModule { class } => format!("TorchScript module {class}{with_tensors}"),
        Holds::Checkpoint { key_count, keys } => {
            let what = if tensors > 0 {
                "checkpoint dict"
            } else {
                "dict"
            };
            let shown: Vec<&str> = keys.iter().take(KEYS_SHOWN).map(String::as_str).collect();
            let more = key_count.saturating_sub(shown.len());
            let more = if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            };
            let keys = if shown.is_empty() {
                "no keys".to_owned()
            } else {
                format!("keys {}{more}", shown.join(", "))
            };
            format!("{what} with {keys}{with_tensors}")
        }
        Holds::Tensor => "one tensor".to_owned(),
        Holds::Other { type_name } => format!("{type_name}{with_tensors}"),
        Holds::Unreadable => "unreadable".to_owned(),
        _ => "?".to_owned(),
    }
}

/// The summary block, first in `inspect`'s text.
pub fn write_overview(
    out: &mut impl Write,
    summary: &Summary,
    container: Container,
) -> io::Result<()> {
    writeln!(
        out,
        "format          {}",
        format_name(summary.format, container)
    )?;
    if let Some(version) = summary.format_version {
        writeln!(out, "format version  {version}")?;
    }
    if let Some(version) = &summary.pytorch_version {
        writeln!(out, "pytorch         {version}")?;
    }
    if let Some(version) = &summary.python_version {
        writeln!(out, "python          {version}")?;
    }
    if let Some(order) = &summary.byteorder {
        writeln!(out, "byte order      {order}")?;
    }
    if let Some(modules) = summary.modules {
        writeln!(
            out,
            "modules         {} interned, {} extern, {} mocked",
            modules.interned, modules.extern_, modules.mocked
        )?;
    }
    if !summary.pickles.is_empty() {
        writeln!(out, "pickles         {}", summary.pickles.len())?;
        let width = summary
            .pickles
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(0);
        for pickle in &summary.pickles {
            writeln!(out, "  {:<width$}  {}", pickle.name, holds_text(pickle))?;
        }
    }
    let tensors = &summary.tensors;
    if tensors.count == 0 {
        writeln!(out, "tensors         none")?;
    } else {
        writeln!(
            out,
            "tensors         {}, {} ({} in {})",
            tensors.count,
            human_bytes(tensors.bytes),
            human_bytes(tensors.storage_bytes),
            plural(tensors.storages, "storage")
        )?;
    }
    let width = tensors.dtypes.keys().map(String::len).max().unwrap_or(0);
    for (dtype, totals) in &tensors.dtypes {
        writeln!(
            out,
            "  {dtype:<width$}  {:>6}  {:>10}",
            totals.count,
            human_bytes(totals.bytes)
        )?;
    }
    for error in &summary.errors {
        writeln!(out, "error           {error}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(46_827_520), "44.7 MiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn pickles_say_what_they_hold() {
        let pickle = |holds, tensors| PickleSummary {
            name: "data.pkl".into(),
            holds,
            tensors,
        };
        assert_eq!(
            holds_text(&pickle(Holds::StateDict, Some(1))),
            "state dict of 1 tensor"
        );
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        assert_eq!(
            holds_text(&pickle(
                Holds::Checkpoint {
                    key_count: 12,
                    keys
                },
                Some(3)
            )),
            "checkpoint dict with keys k0, k1, k2, k3, k4, k5, k6, k7, and 4 more, 3 tensors"
        );
        assert_eq!(
            holds_text(&pickle(
                Holds::Module {
                    class: "m.Net".into()
                },
                None
            )),
            "whole module m.Net"
        );
    }
}
