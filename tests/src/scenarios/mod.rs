//! The end-to-end scenarios, each a real computation compared with PyTorch.
//!
//! `cargo xtask e2e` runs them all and prints a table; the integration tests
//! in `tests/suite/` run them too, so `cargo xtask test` covers them.

use std::time::Instant;

use sha2::{Digest, Sha256};
use tpkg::archive::PackageReader;

mod read;
mod tch;
mod tensors;
mod write;

pub use read::{
    corpus_packages_read, golden_packages_read, importer_reads_packages,
    packages_read_as_manifests_say, pytorch_writes_tpkg_reads,
};
pub use tch::tch_tensors_both_ways;
pub(crate) use tch::{resnet_in_tch, resnet_named_in_tch};
pub use tensors::{resnet_converts_to_safetensors_and_pt, tpkg_tensors_load_in_pytorch};
pub use write::{tpkg_pickles_load_in_package_importer, tpkg_writes_pytorch_reads};

/// One scenario: a name, which way it crosses the language border, and the
/// code that runs it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Short name, e.g. `corpus`.
    pub name: &'static str,
    /// `PyTorch → tpkg` or `tpkg → PyTorch`.
    pub direction: &'static str,
    /// Runs the scenario; returns what was checked.
    pub run: fn() -> anyhow::Result<Checked>,
}

/// What a passing scenario checked.
#[derive(Debug, Clone)]
pub struct Checked {
    /// One line: what was compared.
    pub summary: String,
    /// Largest absolute difference between tpkg's and PyTorch's numbers,
    /// for scenarios that compare numbers.
    pub max_abs_diff: Option<f64>,
}

/// The result of running one scenario.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario.
    pub scenario: Scenario,
    /// Seconds it took.
    pub seconds: f64,
    /// What it checked, or why it failed.
    pub result: anyhow::Result<Checked>,
}

/// Every scenario, in the order `cargo xtask e2e` runs them.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "corpus",
            direction: "PyTorch → tpkg",
            run: corpus_packages_read,
        },
        Scenario {
            name: "fresh-archive",
            direction: "PyTorch → tpkg",
            run: pytorch_writes_tpkg_reads,
        },
        Scenario {
            name: "tpkg-archive",
            direction: "tpkg → PyTorch",
            run: tpkg_writes_pytorch_reads,
        },
        Scenario {
            name: "tpkg-tensors",
            direction: "tpkg → PyTorch",
            run: tpkg_tensors_load_in_pytorch,
        },
        Scenario {
            name: "tch",
            direction: "PyTorch ↔ tch",
            run: tch_tensors_both_ways,
        },
        Scenario {
            name: "convert-resnet18",
            direction: "PyTorch → tpkg → PyTorch",
            run: resnet_converts_to_safetensors_and_pt,
        },
        Scenario {
            name: "resnet18-in-tch",
            direction: "PyTorch → tpkg → tch",
            run: crate::model_scenarios::resnet18_whole_runs_in_tch,
        },
        Scenario {
            name: "repack-resnet18",
            direction: "PyTorch → tpkg → PyTorch",
            run: crate::model_scenarios::resnet18_repackaged_runs_in_pytorch,
        },
        Scenario {
            name: "tch-model-save",
            direction: "tch → tpkg → PyTorch",
            run: crate::model_scenarios::tch_resnet18_package_runs_in_pytorch,
        },
        Scenario {
            name: "torchscript-resnet18",
            direction: "PyTorch → tpkg → tch, PyTorch",
            run: crate::model_scenarios::torchscript_resnet18_runs_in_tch_and_pytorch,
        },
        Scenario {
            name: "resnet18-formats",
            direction: "PyTorch → tpkg → tch",
            run: crate::model_scenarios::resnet18_every_format_runs_in_tch,
        },
        Scenario {
            name: "networkx-pack",
            direction: "tpkg → PyTorch",
            run: crate::model_scenarios::networkx_package_runs_in_pytorch,
        },
        Scenario {
            name: "tpkg-pickle",
            direction: "tpkg → PyTorch",
            run: tpkg_pickles_load_in_package_importer,
        },
    ]
}

/// Runs one scenario, timing it.
pub fn run(scenario: Scenario) -> Outcome {
    let start = Instant::now();
    let result = (scenario.run)();
    Outcome {
        scenario,
        seconds: start.elapsed().as_secs_f64(),
        result,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn sorted_names(reader: &PackageReader) -> Vec<String> {
    let mut names: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
    names.sort();
    names
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
