//! PyTorch's `test_mangling.py`, and properties over arbitrary names.

use proptest::prelude::*;
use tpkg_mangling::{Mangler, demangle, is_mangled, mangle_prefix};

#[test]
fn unique_manglers() {
    let (a, b) = (Mangler::new(), Mangler::new());
    assert_ne!(a.parent_name(), b.parent_name());
    assert_ne!(a.mangle("foo").unwrap(), b.mangle("foo").unwrap());
}

#[test]
fn mangler_is_consistent() {
    let mangler = Mangler::new();
    assert_eq!(
        mangler.mangle("foo").unwrap(),
        mangler.mangle("foo").unwrap()
    );
}

#[test]
fn mangle_empty_errors() {
    assert!(Mangler::new().mangle("").is_err());
}

#[test]
fn demangle_base() {
    let mangler = Mangler::new();
    assert_eq!(demangle(mangler.parent_name()), "");
}

#[test]
fn roundtrip_and_multiple_manglers() {
    let (a, b) = (Mangler::new(), Mangler::new());
    for name in ["foo", "foo.bar", "a.b.c.d"] {
        let mangled_a = a.mangle(name).unwrap();
        let mangled_b = b.mangle(&mangled_a).unwrap();
        assert_eq!(demangle(&mangled_a), name);
        assert_eq!(a.demangle(&mangled_a), name);
        // Another mangler's names pass through its own demangle.
        assert_eq!(b.demangle(&mangled_a), mangled_a);
        // Double mangling peels one layer at a time.
        assert_eq!(b.demangle(&mangled_b), mangled_a);
    }
}

#[test]
fn mangle_prefix_rebuilds_the_name() {
    let mangler = Mangler::new();
    let mangled = mangler.mangle("foo.bar").unwrap();
    assert_eq!(mangle_prefix(&mangled), mangler.parent_name());
    assert_eq!(
        format!("{}.{}", mangle_prefix(&mangled), demangle(&mangled)),
        mangled
    );
    assert_eq!(mangle_prefix("foo.bar"), "foo.bar");
}

#[test]
fn manglers_made_on_many_threads_are_distinct() {
    let parents: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..1000)
                        .map(|_| Mangler::new().parent_name().to_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let unique: std::collections::HashSet<_> = parents.iter().collect();
    assert_eq!(unique.len(), parents.len());
}

/// Python module names: dotted identifiers.
fn module_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,8}", 1..5).prop_map(|parts| parts.join("."))
}

proptest! {
    #[test]
    fn demangle_inverts_mangle(name in module_name(), index in 0u64..1_000_000) {
        let mangler = Mangler::with_index(index);
        let mangled = mangler.mangle(&name).unwrap();
        prop_assert_eq!(demangle(&mangled), name.as_str());
        prop_assert_eq!(mangler.demangle(&mangled), name.as_str());
        prop_assert!(is_mangled(&mangled));
        prop_assert!(!is_mangled(demangle(&mangled)));
    }

    #[test]
    fn demangle_is_idempotent_on_demangled_names(name in module_name(), index in 0u64..100) {
        let mangled = Mangler::with_index(index).mangle(&name).unwrap();
        let once = demangle(&mangled);
        prop_assert_eq!(demangle(once), once);
    }

    #[test]
    fn mangled_names_are_not_importable_module_names(name in module_name(), index in 0u64..100) {
        let mangled = Mangler::with_index(index).mangle(&name).unwrap();
        let first = mangled.split('.').next().unwrap();
        // A Python identifier cannot contain '<' or '>'.
        prop_assert!(!first.chars().all(|c| c == '_' || c.is_alphanumeric()));
    }

    #[test]
    fn other_manglers_names_pass_through(name in module_name(), a in 0u64..50, b in 50u64..100) {
        let mangled = Mangler::with_index(a).mangle(&name).unwrap();
        prop_assert_eq!(Mangler::with_index(b).demangle(&mangled), mangled.as_str());
    }

    #[test]
    fn arbitrary_strings_never_panic(text in ".*") {
        let _ = (is_mangled(&text), demangle(&text), mangle_prefix(&text));
    }
}
