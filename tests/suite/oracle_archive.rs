//! The container crosses the language border both ways: real PyTorch reads
//! what tpkg writes, tpkg reads what real PyTorch writes.

use tpkg_tests::scenarios;

fn assert_passes(run: fn() -> anyhow::Result<scenarios::Checked>) {
    if let Err(error) = run() {
        panic!("{error:?}");
    }
}

#[test]
fn every_corpus_package_reads_as_its_manifest_says() {
    assert_passes(scenarios::corpus_packages_read);
}

#[test]
fn packages_pytorch_writes_now_read_byte_identical() {
    assert_passes(scenarios::pytorch_writes_tpkg_reads);
}

#[test]
fn packages_tpkg_writes_load_and_run_in_pytorch() {
    assert_passes(scenarios::tpkg_writes_pytorch_reads);
}

#[test]
fn pickles_tpkg_writes_load_with_package_importer() {
    assert_passes(scenarios::tpkg_pickles_load_in_package_importer);
}

#[test]
fn tensors_tpkg_writes_load_in_pytorch_with_equal_values_and_layout() {
    assert_passes(scenarios::tpkg_tensors_load_in_pytorch);
}

#[test]
fn resnet18_pickled_whole_converts_to_safetensors_and_pt() {
    assert_passes(scenarios::resnet_converts_to_safetensors_and_pt);
}

#[test]
fn tensors_cross_between_pytorch_and_tch_both_ways() {
    assert_passes(scenarios::tch_tensors_both_ways);
}
