//! `inspect`'s summary of a `.pt2` archive.

use std::io::{self, Write};

use serde::Serialize;
use tpkg::archive::PackageReader;

use super::{TensorStats, error_text, write_errors};

/// A `.pt2` archive (`torch.export.save`).
#[derive(Debug, Default, Serialize)]
pub struct Pt2Summary {
    /// `archive_version`.
    pub archive_version: Option<String>,
    /// Models, by name (`models/<name>.json`).
    pub models: Vec<String>,
    /// Weights and constants together.
    pub tensors: Option<TensorStats>,
    /// `data/weights/`.
    pub weights: Pt2Group,
    /// `data/constants/`.
    pub constants: Pt2Group,
    /// Models with sample inputs (`data/sample_inputs/<name>.pt`).
    pub sample_inputs: Vec<String>,
    /// AOTInductor folders (`data/aotinductor/<folder>/`).
    pub aotinductor: Vec<String>,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// One folder of a `.pt2` archive's tensors.
#[derive(Debug, Default, Serialize)]
pub struct Pt2Group {
    /// Tensors its configs describe (null when unreadable).
    pub tensors: Option<usize>,
    /// Its data records (configs aside).
    pub records: usize,
    /// Their bytes.
    pub bytes: u64,
}

impl Pt2Summary {
    pub(super) fn of(reader: &PackageReader) -> Pt2Summary {
        let mut summary = Pt2Summary {
            archive_version: reader
                .read("archive_version")
                .ok()
                .map(|text| String::from_utf8_lossy(text.trim_ascii()).into_owned()),
            ..Default::default()
        };
        let mut aotinductor = std::collections::BTreeSet::new();
        for record in reader.records() {
            let name = record.name.as_str();
            let is_config = name.ends_with("_config.json");
            if let Some(model) = name
                .strip_prefix("models/")
                .and_then(|rest| rest.strip_suffix(".json"))
            {
                summary.models.push(model.to_owned());
            } else if let Some(model) = name
                .strip_prefix("data/sample_inputs/")
                .and_then(|rest| rest.strip_suffix(".pt"))
            {
                summary.sample_inputs.push(model.to_owned());
            } else if let Some((folder, _)) = name
                .strip_prefix("data/aotinductor/")
                .and_then(|rest| rest.split_once('/'))
            {
                aotinductor.insert(folder.to_owned());
            } else if name.starts_with("data/weights/") && !is_config {
                summary.weights.records += 1;
                summary.weights.bytes += record.size;
            } else if name.starts_with("data/constants/") && !is_config {
                summary.constants.records += 1;
                summary.constants.bytes += record.size;
            }
        }
        summary.aotinductor = aotinductor.into_iter().collect();
        match tpkg::pt2::pt2_tensors(reader) {
            Ok(tensors) => {
                let (mut weights, mut constants) = (0, 0);
                for index in 0..tensors.len() {
                    if let Ok(view) = tensors.view(index) {
                        if view.spec().storage.key.starts_with("data/weights/") {
                            weights += 1;
                        } else {
                            constants += 1;
                        }
                    }
                }
                summary.weights.tensors = Some(weights);
                summary.constants.tensors = Some(constants);
                summary.tensors = Some(TensorStats::of(&tensors));
            }
            Err(error) => summary.errors.push(error_text(&error)),
        }
        summary
    }

    pub(super) fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let list = |names: &[String]| {
            if names.is_empty() {
                "(none)".to_owned()
            } else {
                names.join(", ")
            }
        };
        if let Some(version) = &self.archive_version {
            writeln!(out, "pt2 version     {version}")?;
        }
        writeln!(out, "models          {}", list(&self.models))?;
        for (label, group) in [
            ("weights         ", &self.weights),
            ("constants       ", &self.constants),
        ] {
            let tensors = group
                .tensors
                .map_or_else(|| "?".to_owned(), |n| n.to_string());
            writeln!(
                out,
                "{label}{tensors} tensors in {} records ({})",
                group.records,
                super::human_bytes(group.bytes)
            )?;
        }
        writeln!(out, "sample inputs   {}", list(&self.sample_inputs))?;
        writeln!(out, "aotinductor     {}", list(&self.aotinductor))?;
        write_errors(out, &self.errors)
    }
}
