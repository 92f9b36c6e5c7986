//! tpkg's static dependency rule against PyTorch's exporter (which imports
//! things to decide), on every module of networkx.

use tpkg::pysource::ModuleFinder;
use tpkg_tests::oracle;

#[test]
fn dependencies_equal_pytorchs_exporter_on_networkx() {
    // TPKG_DEPS_PACKAGE=sympy (or another package) compares that instead.
    let package = std::env::var("TPKG_DEPS_PACKAGE").unwrap_or_else(|_| "networkx".to_owned());
    let expected = oracle::run_json("deps_oracle.py", &[&package]).unwrap();
    let finder = ModuleFinder::from_python(&oracle::python().unwrap()).unwrap();
    let failing: Vec<String> = serde_json::from_value(expected["failing"].clone()).unwrap();
    // PyTorch's exporter imports to check existence: a module file that
    // raises when imported (a missing optional dependency, pytest in test
    // modules) does not exist for it, and `from pack import mod` then falls
    // back to `pack`. Differences made only of such modules are exempt.
    let runtime_dependent = |name: &str| {
        failing
            .iter()
            .any(|f| f == name || f.starts_with(&format!("{name}.")))
    };
    let mut disagreements = Vec::new();
    let mut exempt = Vec::new();
    let modules = expected["modules"].as_object().unwrap();
    let mut compared = 0;
    for (module, info) in modules {
        compared += 1;
        let source = std::fs::read_to_string(info["origin"].as_str().unwrap()).unwrap();
        let is_package = info["is_package"].as_bool().unwrap();
        let ours = finder
            .dependencies(&source, module, is_package)
            .unwrap()
            .modules;
        let theirs: Vec<String> = serde_json::from_value(info["deps"].clone()).unwrap();
        if ours != theirs {
            let differing: Vec<&String> = ours
                .iter()
                .filter(|d| !theirs.contains(d))
                .chain(theirs.iter().filter(|d| !ours.contains(d)))
                .collect();
            let report = format!("{module}:\n  tpkg    {ours:?}\n  PyTorch {theirs:?}");
            if !differing.is_empty() && differing.iter().all(|d| runtime_dependent(d)) {
                exempt.push(report);
            } else {
                disagreements.push(report);
            }
        }
    }
    println!(
        "{compared} modules compared, {} disagreements, {} exempt (modules that raise when imported: {})",
        disagreements.len(),
        exempt.len(),
        failing.len()
    );
    for report in &exempt {
        println!("exempt (depends on running code): {report}");
    }
    assert!(compared > 200, "{compared}");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn embedded_stdlib_table_equals_the_interpreters() {
    let version = oracle::python_version().unwrap();
    let answer = oracle::run_python_json(
        "import sys, json; print(json.dumps(sorted(sys.stdlib_module_names)))",
    )
    .unwrap();
    let theirs: Vec<String> = serde_json::from_value(answer).unwrap();
    let ours: Vec<&str> = tpkg::pysource::stdlib_module_names(version).collect();
    assert_eq!(ours, theirs, "Python {version}");
}
