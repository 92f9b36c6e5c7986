//! PyTorch's `test_dependency_hooks.py`, on in-memory packages.
use std::cell::RefCell;
use std::rc::Rc;

use tpkg_archive::InMemory;

use super::*;

fn exporter() -> PackageExporter<InMemory> {
    let writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
    let finder = ModuleFinder::new(Vec::new(), ["sys"]).with_known_modules([
        "package_a",
        "package_a.subpackage",
        "module_a",
    ]);
    PackageExporter::with_writer(writer, finder)
}

fn recorder() -> (Rc<RefCell<Vec<String>>>, impl FnMut(&str) + 'static) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&seen);
    (seen, move |m: &str| sink.borrow_mut().push(m.to_owned()))
}

#[test]
fn single_hook_sees_only_modules_reached() {
    let (seen, hook) = recorder();
    let mut e = exporter();
    e.extern_modules(vec!["package_a.subpackage", "module_a"])
        .unwrap();
    e.register_hook(Action::Extern, hook);
    e.save_source_string("foo", "import module_a").unwrap();
    e.close().unwrap();
    assert_eq!(*seen.borrow(), ["module_a"]);
}

#[test]
fn multiple_hooks_run_in_registration_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut e = exporter();
    e.extern_modules(vec!["package_a.subpackage", "module_a"])
        .unwrap();
    for tag in ["first", "second"] {
        let order = Rc::clone(&order);
        e.register_hook(Action::Extern, move |m| {
            order.borrow_mut().push(format!("{tag}:{m}"))
        });
    }
    e.save_source_string("foo", "import module_a").unwrap();
    e.close().unwrap();
    assert_eq!(*order.borrow(), ["first:module_a", "second:module_a"]);
}

#[test]
fn removed_hooks_do_not_run() {
    let (seen, hook) = recorder();
    let (kept, kept_hook) = recorder();
    let mut e = exporter();
    e.extern_modules(vec!["package_a.subpackage", "module_a"])
        .unwrap();
    let handle = e.register_hook(Action::Extern, hook);
    e.register_hook(Action::Extern, kept_hook);
    assert!(e.remove_hook(handle));
    assert!(!e.remove_hook(handle));
    e.save_source_string("foo", "import module_a").unwrap();
    e.close().unwrap();
    assert!(seen.borrow().is_empty());
    assert_eq!(*kept.borrow(), ["module_a"]);
}

#[test]
fn extern_and_mock_hooks_are_independent() {
    let (externs, extern_hook) = recorder();
    let (mocks, mock_hook) = recorder();
    let (interns, intern_hook) = recorder();
    let mut e = exporter();
    e.extern_modules("module_a").unwrap();
    e.mock("package_a").unwrap();
    e.register_hook(Action::Extern, extern_hook);
    e.register_hook(Action::Mock, mock_hook);
    e.register_hook(Action::Intern, intern_hook);
    e.save_source_string("foo", "import module_a\nimport package_a\nimport os\n")
        .unwrap();
    e.close().unwrap();
    // Implicit externs fire extern hooks too; save_source_string interns.
    assert_eq!(*externs.borrow(), ["module_a", "os"]);
    assert_eq!(*mocks.borrow(), ["package_a"]);
    assert_eq!(*interns.borrow(), ["foo"]);
}

#[test]
fn unsupported_protocols_and_duplicate_records_are_refused() {
    let mut e = exporter();
    assert_eq!(
        e.save_pickle_bytes("a", "b.pkl", b"\x80\x02N.")
            .unwrap_err()
            .to_string(),
        "torch.package only supports pickle protocols 3 and 4, got 2"
    );
    e.save_text("a", "x.txt", "1").unwrap();
    assert!(matches!(
        e.save_text("a", "x.txt", "2"),
        Err(ExportError::DuplicateRecord(_))
    ));
    assert!(matches!(
        e.save_text("<torch_package_0>.a", "y.txt", "2"),
        Err(ExportError::MangledName(_))
    ));
}

#[test]
fn options_carry_pytorchs_keywords() {
    // exclude=: the excluded module falls through to no action.
    let mut e = exporter();
    e.extern_modules_with(
        "package_a.**",
        PatternOptions::default().with_exclude("package_a.subpackage"),
    )
    .unwrap();
    e.save_source_string("foo", "import package_a.subpackage\nimport package_a\n")
        .unwrap();
    assert_eq!(e.externed_modules(), ["package_a"]);
    let error = e.packaging_error().unwrap();
    assert_eq!(error.groups.len(), 1);
    assert_eq!(error.groups[0].1[0].module, "package_a.subpackage");

    // deny(exclude=...): only the rest is denied.
    let mut e = exporter();
    e.deny_with("package_a.**", "package_a.subpackage").unwrap();
    e.extern_modules("package_a.subpackage").unwrap();
    e.save_source_string("foo", "import package_a.subpackage")
        .unwrap();
    assert_eq!(e.externed_modules(), ["package_a.subpackage"]);
    assert!(e.packaging_error().is_none());

    // dependencies=False and is_package=True.
    let mut e = exporter();
    let options = SourceOptions::default()
        .with_kind(SourceKind::Package)
        .with_dependencies(Dependencies::Skip);
    e.save_source_string_with("foo", "import module_a", options)
        .unwrap();
    assert!(e.externed_modules().is_empty());
    assert!(e.packaging_error().is_none());
    let bytes = e.close().unwrap();
    let reader = tpkg_archive::PackageReader::from_bytes(bytes).unwrap();
    assert!(reader.has_record("foo/__init__.py"));
}
