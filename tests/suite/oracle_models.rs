//! PyTorch's `test_model.py` scenarios across the language border, as
//! `cargo xtask e2e` runs them (repackaging and networkx have their own
//! suites: `oracle_repack`, `oracle_export`).

use tpkg_tests::{model_scenarios, scenarios};

fn assert_passes(run: fn() -> anyhow::Result<scenarios::Checked>) {
    if let Err(error) = run() {
        panic!("{error:?}");
    }
}

#[test]
fn resnet18_pickled_whole_with_torchvision_interned_runs_in_tch() {
    assert_passes(model_scenarios::resnet18_whole_runs_in_tch);
}

#[test]
fn tch_resnet18_packaged_with_a_load_function_runs_in_pytorch() {
    assert_passes(model_scenarios::tch_resnet18_package_runs_in_pytorch);
}

#[test]
fn torchscript_resnet18_from_a_package_runs_in_tch_and_pytorch() {
    assert_passes(model_scenarios::torchscript_resnet18_runs_in_tch_and_pytorch);
}

#[test]
fn resnet18_saved_every_way_runs_in_tch() {
    assert_passes(model_scenarios::resnet18_every_format_runs_in_tch);
}
