//! tpkg's static dependency rule against PyTorch's exporter (which imports
//! things to decide), on every module of networkx.

use tpkg::pysource::ModuleFinder;
use tpkg_tests::oracle;

#[test]
fn dependencies_equal_pytorchs_exporter_on_networkx() {
    let expected = oracle::run_json("deps_oracle.py", &["networkx"]).unwrap();
    let finder = ModuleFinder::from_python(&oracle::python().unwrap()).unwrap();
    let mut disagreements = Vec::new();
    let modules = expected.as_object().unwrap();
    let mut compared = 0;
    for (module, info) in modules {
        // networkx's own tests import pytest, which the venv does not have:
        // importing them raises, so PyTorch's exporter (which imports to
        // check existence) drops them while they exist as files.
        if module.contains(".tests.") {
            continue;
        }
        compared += 1;
        let source = std::fs::read_to_string(info["origin"].as_str().unwrap()).unwrap();
        let is_package = info["is_package"].as_bool().unwrap();
        let ours = finder
            .dependencies(&source, module, is_package)
            .unwrap()
            .modules;
        let theirs: Vec<String> = serde_json::from_value(info["deps"].clone()).unwrap();
        if ours != theirs {
            disagreements.push(format!(
                "{module}:\n  tpkg    {ours:?}\n  PyTorch {theirs:?}"
            ));
        }
    }
    println!(
        "{compared} modules compared, {} disagreements",
        disagreements.len()
    );
    assert!(compared > 200, "{compared}");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
