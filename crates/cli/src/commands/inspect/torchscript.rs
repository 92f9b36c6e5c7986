//! `inspect`'s summary of a TorchScript file.

use std::io::{self, Write};

use serde::Serialize;
use tpkg::archive::PackageReader;
use tpkg::pickle::Value;
use tpkg::tensors::PackageTensors;

use super::object::type_name;
use super::{TensorStats, error_text, write_errors};

/// A TorchScript file (`torch.jit.save`).
#[derive(Debug, Default, Serialize)]
pub struct TorchScriptSummary {
    /// The module's class (`__torch__.Net`).
    pub module_class: Option<String>,
    /// Python sources under `code/`.
    pub code_files: usize,
    /// The tensors of `data.pkl` (parameters, buffers, attributes).
    pub tensors: Option<TensorStats>,
    /// Entries of `constants.pkl` (the constants the code uses).
    pub constants: Option<usize>,
    /// What could not be read.
    pub errors: Vec<String>,
}

impl TorchScriptSummary {
    pub(super) fn of(reader: &PackageReader) -> TorchScriptSummary {
        let mut summary = TorchScriptSummary {
            code_files: reader
                .records()
                .iter()
                .filter(|record| record.name.starts_with("code/") && record.name.ends_with(".py"))
                .count(),
            ..Default::default()
        };
        match PackageTensors::load(reader, "data.pkl") {
            Ok(tensors) => {
                let graph = tensors.graph();
                summary.module_class = Some(type_name(graph, graph.root()));
                summary.tensors = Some(TensorStats::of(&tensors));
            }
            Err(error) => {
                summary.errors.push(error_text(&error));
                if let Ok(graph) = tpkg::show::decode_record(reader, "data.pkl") {
                    summary.module_class = Some(type_name(&graph, graph.root()));
                }
            }
        }
        match tpkg::show::decode_record(reader, "constants.pkl") {
            Ok(graph) => match graph.get(graph.root()) {
                Value::Tuple(items) | Value::List(items) => summary.constants = Some(items.len()),
                _ => summary
                    .errors
                    .push("constants.pkl: not a tuple of constants".to_owned()),
            },
            Err(error) => summary.errors.push(error_text(&error)),
        }
        summary
    }

    pub(super) fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "code files      {}", self.code_files)?;
        if let Some(constants) = self.constants {
            writeln!(out, "constants       {constants}")?;
        }
        write_errors(out, &self.errors)
    }
}
